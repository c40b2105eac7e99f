# Sourced by scripts/testcluster: the real node's images, assembled from Debian's packages
# (no container registry can be reached). One root filesystem (debootstrap, then the
# packages below) is packed as one layer; each image is that layer with its own entrypoint
# (testcluster/image.py). Cached under $IMAGES by a hash of everything that goes in.

# The packages the images need, and the Debian release they come from.
IMAGE_SUITE=bookworm
IMAGE_PACKAGES=(nmap mariadb-server mariadb-client docker-registry python3 python3-pymysql)

# name -> config (Entrypoint/Cmd as the upstream image would have them).
image_configs() {
	cat <<'EOF'
{
  "seclab.test/pause:1": {"Entrypoint": ["/bin/sleep", "infinity"]},
  "seclab.test/debian:12": {"Cmd": ["/bin/sh"]},
  "seclab.test/nmap:debian12": {"Entrypoint": ["/usr/bin/nmap"]},
  "seclab.test/registry:debian12": {
    "Entrypoint": ["/usr/bin/docker-registry"],
    "Cmd": ["serve", "/etc/docker/registry/config.yml"]
  },
  "seclab.test/mariadb:debian12": {"Entrypoint": ["/usr/local/bin/mariadb-entrypoint"]},
  "seclab.test/tenant-app:1": {"Entrypoint": ["/usr/local/bin/seclab-tenant-app"]}
}
EOF
}

# The registry:2 image's contract (distribution-library-image's config-example.yml): images
# under /var/lib/registry, plain HTTP on :5000, no authentication. Debian's own config keeps
# them elsewhere and asks for an htpasswd file.
registry_config() {
	cat <<'EOF'
version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/registry
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
EOF
}

images_hash() {
	{
		echo "$IMAGE_SUITE" "${IMAGE_PACKAGES[@]}"
		image_configs
		cat "$SRC/image.py" "$SRC/images.sh" "$SRC"/standins/*
	} | sha256sum | cut -d' ' -f1
}

# Prints the path of the image archive, building it first when needed.
cmd_images() {
	local hash archive work
	command -v debootstrap >/dev/null || die "debootstrap not found (apt-get install debootstrap)"
	hash=$(images_hash)
	archive=$IMAGES/seclab-test-images-${hash:0:16}.tar
	mkdir -p "$IMAGES"
	exec 8>"$IMAGES/build.lock"
	flock 8
	if [[ ! -f $archive ]]; then
		log "assembling the real node's images from Debian's packages (${IMAGE_PACKAGES[*]})"
		work=$(mktemp -d "$IMAGES/build.XXXXXX")
		build_rootfs "$work/rootfs" || { rm -rf "$work"; die "image build failed (log: $IMAGES/debootstrap.log)"; }
		tar --numeric-owner --xattrs -C "$work/rootfs" -cf "$work/rootfs.tar" .
		image_configs >"$work/images.json"
		python3 "$SRC/image.py" "$work/rootfs.tar" "$archive.tmp" "$work/images.json"
		mv -f "$archive.tmp" "$archive"
		rm -rf "$work"
		# Older archives of other inputs.
		find "$IMAGES" -maxdepth 1 -name 'seclab-test-images-*.tar' ! -name "${archive##*/}" -delete
		log "images in $archive"
	fi
	exec 8>&-
	echo "$archive"
}

build_rootfs() {
	local root=$1 mirror
	mirror=$(debian_mirror)
	nice -n 19 debootstrap --variant=minbase "$IMAGE_SUITE" "$root" "$mirror" >"$IMAGES/debootstrap.log" 2>&1 || return 1
	# No service may start while packages install (there is no init in the chroot).
	printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
	chmod 755 "$root/usr/sbin/policy-rc.d"
	cp /etc/resolv.conf "$root/etc/resolv.conf"
	chroot "$root" /usr/bin/env DEBIAN_FRONTEND=noninteractive \
		sh -c "apt-get update -qq && apt-get install -y -qq --no-install-recommends ${IMAGE_PACKAGES[*]}" \
		>>"$IMAGES/debootstrap.log" 2>&1 || return 1
	chroot "$root" apt-get clean
	registry_config >"$root/etc/docker/registry/config.yml"
	# Stand-ins for the upstream images' entrypoints (testcluster/standins/, each says whose).
	install -m 755 "$SRC/standins/mariadb-entrypoint.sh" "$root/usr/local/bin/mariadb-entrypoint"
	install -m 755 "$SRC/standins/tenant-app.py" "$root/usr/local/bin/seclab-tenant-app"
	# What no test reads: documentation, manuals, translations.
	rm -rf "$root"/var/lib/apt/lists/* "$root/usr/sbin/policy-rc.d" "$root"/usr/share/doc/* \
		"$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/*
	: >"$root/etc/resolv.conf"
}

# The host's own Debian mirror (the one apt-get uses here).
debian_mirror() {
	local uri
	uri=$(sed -nE 's/^URIs:[[:space:]]*([^[:space:]]+).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null |
		grep -v security | head -n1)
	[[ -n $uri ]] || uri=$(sed -nE 's/^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+).*/\2/p' \
		/etc/apt/sources.list 2>/dev/null | grep -v security | head -n1)
	echo "${uri:-http://deb.debian.org/debian}"
}
