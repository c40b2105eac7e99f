# Sourced by scripts/testcluster: the real node, whose pods really run, beside kwok's
# simulated ones. The kubelet and kube-proxy come from the same Kubernetes build as the
# control plane (the multicall binary), CoreDNS and the CNI plugins from their Go modules,
# containerd and runc from Debian's packages. Everything stays on this machine: pods sit on the
# bridge $NODE_BRIDGE, the pod and Service ranges are routed to it, and nothing from the
# bridge is forwarded to another interface.
#
# One real node per machine (the bridge, kube-proxy's rules and the routes belong to the
# host's network namespace); /run/seclab-testcluster-node names the state directory of the
# cluster that has it.

REAL_NODE=real-node-0
NODE_BRIDGE=seclab0
POD_CIDR=10.244.0.0/24
NODE_GATEWAY=10.244.0.1
SERVICE_CIDR=10.96.0.0/16
NODE_MARKER=/run/seclab-testcluster-node
# Pods land here only when they ask: nodeSelector and a toleration of this taint.
REAL_NODE_TAINT=seclab.test/real-node
NODE_PACKAGES="containerd runc iptables conntrack debootstrap"

node_prerequisites() {
	local missing=() p
	for p in containerd runc ctr iptables conntrack debootstrap; do
		command -v "$p" >/dev/null || missing+=("$p")
	done
	((${#missing[@]} == 0)) ||
		die "the real node needs ${missing[*]}: apt-get install $NODE_PACKAGES (or SECLAB_TESTCLUSTER_REAL_NODE=0 for kwok's nodes only)"
	[[ -x $CNI_DIR/bridge ]] || die "the CNI plugins are not built in $CNI_DIR: run $0 build"
	[[ $(id -u) == 0 ]] || die "the real node runs containers and needs root (or SECLAB_TESTCLUSTER_REAL_NODE=0)"
}

node_claim() {
	local other
	if [[ -f $NODE_MARKER ]]; then
		other=$(<"$NODE_MARKER")
		if [[ $other != "$DIR" && -f $other/pids ]] && DIR=$other alive "$(DIR=$other pid_of kubelet)"; then
			die "a real node already runs for the test cluster in $other (one per machine): stop it with SECLAB_TESTCLUSTER_DIR=$other $0 down"
		fi
		# A node left behind by a cluster that was not stopped: clear the host's side.
		node_network_down
	fi
	echo "$DIR" >"$NODE_MARKER"
}

node_network_up() {
	ip link add "$NODE_BRIDGE" type bridge 2>/dev/null || true
	ip addr replace "$NODE_GATEWAY/${POD_CIDR#*/}" dev "$NODE_BRIDGE"
	ip link set "$NODE_BRIDGE" up
	# A Service address no rule answers for goes to the bridge too, never to the default route.
	ip route replace "$SERVICE_CIDR" dev "$NODE_BRIDGE"
	# Nothing from the pods is forwarded off the bridge, and nothing from elsewhere onto it
	# (the mangle table runs before kube-proxy's accepting rules in filter).
	iptables -t mangle -N SECLAB-NODE 2>/dev/null || iptables -t mangle -F SECLAB-NODE
	iptables -t mangle -A SECLAB-NODE -i "$NODE_BRIDGE" ! -o "$NODE_BRIDGE" -j DROP
	iptables -t mangle -A SECLAB-NODE -o "$NODE_BRIDGE" ! -i "$NODE_BRIDGE" -j DROP
	iptables -t mangle -C FORWARD -j SECLAB-NODE 2>/dev/null || iptables -t mangle -I FORWARD -j SECLAB-NODE
	# The kubelet answers anyone (tests only): not the pods.
	iptables -t mangle -N SECLAB-NODE-IN 2>/dev/null || iptables -t mangle -F SECLAB-NODE-IN
	iptables -t mangle -A SECLAB-NODE-IN -i "$NODE_BRIDGE" -p tcp --dport "$KUBELET_PORT" -j DROP
	iptables -t mangle -C INPUT -j SECLAB-NODE-IN 2>/dev/null || iptables -t mangle -I INPUT -j SECLAB-NODE-IN
	# Pod to Service to pod on the same bridge passes through iptables (kube-proxy's DNAT).
	sysctl -qw net.bridge.bridge-nf-call-iptables=1 net.ipv4.ip_forward=1
}

node_network_down() {
	"$BIN" kube-proxy --cleanup >/dev/null 2>&1 || true
	# The kubelet's own chains (kube-proxy --cleanup leaves them).
	local tool table chain
	for tool in iptables ip6tables; do
		for table in filter nat mangle; do
			for chain in INPUT OUTPUT; do
				while "$tool" -t "$table" -D "$chain" -j KUBE-FIREWALL 2>/dev/null; do :; done
			done
			for chain in KUBE-FIREWALL KUBE-KUBELET-CANARY KUBE-IPTABLES-HINT; do
				"$tool" -t "$table" -F "$chain" 2>/dev/null && "$tool" -t "$table" -X "$chain" 2>/dev/null || true
			done
		done
	done
	while iptables -t mangle -D FORWARD -j SECLAB-NODE 2>/dev/null; do :; done
	iptables -t mangle -F SECLAB-NODE 2>/dev/null || true
	iptables -t mangle -X SECLAB-NODE 2>/dev/null || true
	while iptables -t mangle -D INPUT -j SECLAB-NODE-IN 2>/dev/null; do :; done
	iptables -t mangle -F SECLAB-NODE-IN 2>/dev/null || true
	iptables -t mangle -X SECLAB-NODE-IN 2>/dev/null || true
	ip route del "$SERVICE_CIDR" dev "$NODE_BRIDGE" 2>/dev/null || true
	ip link del "$NODE_BRIDGE" 2>/dev/null || true
}

node_containerd_config() {
	local n=$DIR/node
	cat <<EOF
version = 2
root = "$n/containerd/root"
state = "$n/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "$n/containerd.sock"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "seclab.test/pause:1"
  # Without it runc dies with "can't get final child's PID from pipe" here.
  restrict_oom_score_adj = true
  # Pods' network namespaces under the state directory, not /var/run/netns.
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    snapshotter = "overlayfs"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_DIR"
    conf_dir = "$n/cni"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$n/registries"
EOF
}

# Every registry is a closed port on loopback: an image that is not imported fails to pull
# at once (ErrImagePull), and no pull ever leaves the machine.
node_registries_config() {
	cat <<EOF
server = "http://127.0.0.1:1"
[host."http://127.0.0.1:1"]
  capabilities = ["pull", "resolve"]
EOF
}

node_cni_config() {
	cat <<EOF
{
  "cniVersion": "0.4.0",
  "name": "seclab-test",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$NODE_BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$DIR/node/ipam",
        "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$NODE_GATEWAY"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
}

node_kubelet_config() {
	cat <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# The node's address is the bridge's (the kubelet refuses a loopback node IP); it is this
# machine's own, so the API server's requests for logs and exec stay on it.
address: $NODE_GATEWAY
port: $KUBELET_PORT
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
# This machine mounts cgroup v1 (hybrid): the kubelet refuses it unless told.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: []
failSwapOn: false
localStorageCapacityIsolation: false
# Tests only: the API server's requests (logs, exec) are not authenticated.
authentication:
  anonymous:
    enabled: true
  webhook:
    enabled: false
authorization:
  mode: AlwaysAllow
clusterDomain: cluster.local
clusterDNS: [$NODE_GATEWAY]
# Pods resolve cluster names only: no upstream resolver, nothing off the machine.
resolvConf: ""
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%
  imagefs.available: 1%
imageGCHighThresholdPercent: 100
serializeImagePulls: false
registerWithTaints:
- key: $REAL_NODE_TAINT
  value: "true"
  effect: NoSchedule
EOF
}

node_proxy_config() {
	cat <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection:
  kubeconfig: $DIR/kube-proxy.kubeconfig
hostnameOverride: $REAL_NODE
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:$PROXY_HEALTHZ_PORT
metricsBindAddress: 127.0.0.1:$PROXY_METRICS_PORT
clusterCIDR: $POD_CIDR
nodePortAddresses: [$NODE_GATEWAY/32]
iptables:
  localhostNodePorts: false
conntrack:
  maxPerCore: 0
EOF
}

node_corefile() {
	cat <<EOF
.:53 {
    bind $NODE_GATEWAY
    errors
    health 127.0.0.1:$DNS_HEALTH_PORT
    ready 127.0.0.1:$DNS_READY_PORT
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $DIR/coredns.kubeconfig
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 30
    loadbalance
}
EOF
}

# Starts containerd, imports the images, then CoreDNS, the kubelet and kube-proxy; waits for
# the node to be Ready. Called by `up` once the API server answers (node_claim came first).
node_up() { # images-archive
	local archive=$1 n=$DIR/node t0
	t0=$(date +%s%N)
	DIE_HINT=node_errors
	mkdir -p "$n/cni" "$n/kubelet" "$n/ipam" "$DIR/logs"
	node_network_up
	node_containerd_config >"$n/containerd.toml"
	mkdir -p "$n/registries/_default"
	node_registries_config >"$n/registries/_default/hosts.toml"
	node_cni_config >"$n/cni/10-seclab.conflist"
	start_program containerd containerd --config "$n/containerd.toml"
	wait_for containerd 30 ctr --address "$n/containerd.sock" version
	ctr --address "$n/containerd.sock" -n k8s.io images import "$archive" >/dev/null ||
		die "importing $archive into the real node's containerd failed"

	node_corefile >"$n/Corefile"
	start_program coredns "$DNS_BIN" -conf "$n/Corefile" -pidfile "$n/coredns.pid"
	node_kubelet_config >"$n/kubelet.yaml"
	start kubelet --config="$n/kubelet.yaml" --kubeconfig="$DIR/kubelet.kubeconfig" \
		--container-runtime-endpoint="unix://$n/containerd.sock" --root-dir="$n/kubelet" \
		--cert-dir="$n/kubelet/pki" --hostname-override="$REAL_NODE" --node-ip="$NODE_GATEWAY" \
		--node-labels="seclab.test/node=real"
	node_proxy_config >"$n/kube-proxy.yaml"
	start kube-proxy --config="$n/kube-proxy.yaml"
	wait_for "CoreDNS" 60 curl -sf --max-time 2 "http://127.0.0.1:$DNS_READY_PORT/ready"
	wait_for "the real node Ready" 90 kubectl wait --for=condition=Ready "node/$REAL_NODE" --timeout=2s
	wait_for "kube-proxy" 60 curl -sf --max-time 2 "http://127.0.0.1:$PROXY_HEALTHZ_PORT/healthz"
	DIE_HINT=
	log "real node $REAL_NODE up in $((($(date +%s%N) - t0) / 1000000))ms (pods on $NODE_BRIDGE $POD_CIDR)"
}

# What the node's programs said when it did not start, and the switch that leaves it out.
node_errors() {
	local c
	echo "the real node did not start. Its programs' last errors:"
	for c in "${NODE_COMPONENTS[@]}"; do
		[[ -f $DIR/logs/$c.log ]] || continue
		grep -E '^(E[0-9]{4} |time=.*level=(error|fatal)|\[ERROR\]|Error|error:)' "$DIR/logs/$c.log" | tail -n 3 |
			sed "s/^/  $c: /"
	done
	echo "A kubelet that refuses this machine's cgroups needs its KubeletConfiguration changed (testcluster/node.sh:"
	echo "failCgroupV1, cgroupDriver); SECLAB_TESTCLUSTER_REAL_NODE=0 starts kwok's nodes only (the real-node tests then fail)."
}

# Stops the real node and clears what it left on the host: containers, mounts, the bridge,
# kube-proxy's rules. Safe to call when the node never started.
node_down() {
	local n=$DIR/node sock=$DIR/node/containerd.sock t
	[[ -d $n ]] || return 0
	stop_group 10 kube-proxy kubelet coredns
	if alive "$(pid_of containerd)"; then
		for t in $(ctr --address "$sock" -n k8s.io tasks ls -q 2>/dev/null); do
			ctr --address "$sock" -n k8s.io tasks kill -s SIGKILL "$t" >/dev/null 2>&1 || true
		done
		sleep 0.5
		for t in $(ctr --address "$sock" -n k8s.io tasks ls -q 2>/dev/null); do
			ctr --address "$sock" -n k8s.io tasks delete -f "$t" >/dev/null 2>&1 || true
		done
	fi
	stop_group 10 containerd
	# Shims (and anything else) still naming this node's directory.
	pkill -KILL -f -- "$n/" 2>/dev/null || true
	# Mounts under the state directory (pods' volumes, rootfs, network namespaces), deepest first.
	awk -v d="$DIR/" 'index($2, d) == 1 {print $2}' /proc/self/mounts | sort -r |
		while read -r t; do umount -l "$t" 2>/dev/null || true; done
	if [[ -f $NODE_MARKER && $(<"$NODE_MARKER") == "$DIR" ]]; then
		node_network_down
		rm -f "$NODE_MARKER"
	fi
}
