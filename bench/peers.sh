#!/usr/bin/env bash
# Builds the benchmark peers that the test cluster does not already provide, from their Go
# modules, into ~/.cache/seclab-test/peers/<tool>-<version>/ and prints the binary's path.
# Cached: a second run only prints the path. (kubectl comes from scripts/testcluster: the
# multicall binary of the same Kubernetes build.)
#
#   bench/peers.sh kapp
set -euo pipefail

# kapp's module path is carvel.dev/kapp (github.com/carvel-dev/kapp is the repository, not
# the module). The proxy here serves pinned versions but refuses the version list, so
# @latest cannot be resolved: the version is pinned. v0.66.0 (2026-02-16) says `go 1.25.7`
# and builds with Go 1.26.
KAPP_VERSION=v0.66.0
PEERS="${SECLAB_TESTCLUSTER_CACHE:-$HOME/.cache/seclab-test}/peers"

build_kapp() {
  local dir="$PEERS/kapp-$KAPP_VERSION"
  if [ ! -x "$dir/kapp" ]; then
    mkdir -p "$dir"
    # One build at a time; the loser then finds the binary.
    exec 9>"$dir.lock"
    flock 9
    if [ ! -x "$dir/kapp" ]; then
      echo "peers: building kapp $KAPP_VERSION (a few minutes the first time)" >&2
      # Not `go install carvel.dev/kapp/cmd/kapp@VERSION`: it reads the version list for the
      # deprecation notice, which the proxy refuses. The same build instead, in the module's
      # own directory in the module cache (its go.mod and go.sum, read-only).
      local src
      src=$(GOTOOLCHAIN=local go mod download -json "carvel.dev/kapp@$KAPP_VERSION" |
        sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
      # The version stamp is what kapp's own hack/build.sh sets. nice: the machine is shared.
      (cd "$src" && GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" \
        nice -n 10 go build -trimpath -o "$dir/kapp.tmp" \
        -ldflags "-s -w -X carvel.dev/kapp/pkg/kapp/version.Version=${KAPP_VERSION#v}" ./cmd/kapp)
      mv -f "$dir/kapp.tmp" "$dir/kapp"
    fi
    exec 9>&-
  fi
  echo "$dir/kapp"
}

case "${1:-}" in
  kapp) build_kapp ;;
  *) echo "usage: $0 kapp" >&2; exit 2 ;;
esac
