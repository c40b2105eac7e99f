#!/usr/bin/env bash
# Where a one-shot apply's cost goes as the lab grows (BENCHMARKS.md, "the cluster side as a
# curve"): at each size of SIZES (tenants; default 1000 5000), on a fresh test control plane,
# `seclab apply` of an N-tenant lab (bench/gen_lab.py) with the CPU time of seclab and of each
# control-plane process, and the apiserver's Go CPU profile over the apply (its top functions,
# by cumulative time). Needs Go's `go tool pprof` (the machine's Go).
#   SIZES="100 500" bench/apply_profile.sh    a quick check
set -euo pipefail
cd "$(dirname "$0")/.."
sizes="${SIZES:-1000 5000}"
command -v go >/dev/null || { echo "go is missing: its pprof reads the profiles" >&2; exit 1; }
CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}" cargo build --release --quiet
seclab="$PWD/target/release/seclab"

for tenants in $sizes; do
  work=$(mktemp -d)
  export SECLAB_TESTCLUSTER_DIR="$work/cluster" SECLAB_TESTCLUSTER_PROFILING=1
  trap 'scripts/testcluster down >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
  scripts/testcluster up >"$work/up.log" 2>&1 || { cat "$work/up.log" >&2; exit 1; }
  # shellcheck source=/dev/null
  source "$SECLAB_TESTCLUSTER_DIR/env"
  # shellcheck source=bench/control_plane.sh
  source bench/control_plane.sh
  admin="$SECLAB_TESTCLUSTER_ADMIN_KUBECONFIG"
  python3 bench/gen_lab.py --tenants "$tenants" bench-profile bench-profile "$work/lab.yaml"
  objects=$("$seclab" -f "$work/lab.yaml" render | grep -c '^kind:')
  wait_idle
  component_ticks >"$work/before"
  # The profile spans the apply and the controllers' work after it (about 16 s per 1,000
  # tenants here, and 10 s more).
  seconds=$((tenants * 16 / 1000 + 10))
  "$SECLAB_TESTCLUSTER_KUBECTL" --kubeconfig "$admin" get --raw "/debug/pprof/profile?seconds=$seconds" \
    >"$work/apiserver.pprof" &
  profile_pid=$!
  sleep 1
  /usr/bin/time -f '%e %U %S' -o "$work/apply.time" "$seclab" --kubeconfig "$admin" -f "$work/lab.yaml" apply --yes >/dev/null
  wait "$profile_pid"
  component_ticks >"$work/after"
  read -r wall user system <"$work/apply.time"
  echo "== $tenants tenants ($objects objects): apply ${wall} s wall, seclab CPU $(echo "$user + $system" | bc) s"
  paste "$work/before" "$work/after" | awk -v hz="$hz" -v n="$objects" \
    '{ s = ($4 - $2) / hz; printf "%-24s %7.1f s CPU  %6.2f ms per object\n", $1, s, 1000 * s / n }'
  echo "apiserver profile over ${seconds} s, top functions by cumulative CPU:"
  go tool pprof -top -cum -nodecount=40 "$work/apiserver.pprof" 2>/dev/null | sed -n '/flat%/,$p'
  scripts/testcluster down >/dev/null 2>&1 || true
  rm -rf "$work"
  trap - EXIT
done
