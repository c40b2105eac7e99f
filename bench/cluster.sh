#!/usr/bin/env bash
# Cluster-side benchmark (targets in BENCHMARKS.md), each tool against its peers in the same run,
# each on a fresh test control plane of its own (scripts/testcluster), so that no tool pays
# for another's objects and the order of the tools does not matter:
#  1. apply of an N-tenant lab (bench/gen_lab.py, TENANTS=1000: 5,006 objects) into an empty
#     namespace by `seclab apply`, by `kubectl apply --server-side` of the same rendered
#     objects (the test cluster's kubectl: the same Kubernetes build) and by `kapp deploy`
#     (bench/peers.sh);
#  2. the unchanged re-apply by each, with the write requests it sent (audit log);
#  3. peak RSS of each tool's process, and the CPU time the control plane spent while each
#     measure ran: on a machine this small the control plane, not the client, sets the floor.
#   TENANTS=50 bench/cluster.sh       a quick check
#   SKIP_SECLAB=1 bench/cluster.sh    the peers only (render still uses target/release/seclab)
set -euo pipefail
cd "$(dirname "$0")/.."
tenants="${TENANTS:-1000}"
[ -x /usr/bin/time ] || { echo "/usr/bin/time is missing: apt-get install time" >&2; exit 1; }

kapp=$(bench/peers.sh kapp)
# Without seclab's apply only render is needed, which any recent release build has.
if [ -z "${SKIP_SECLAB:-}" ] || [ ! -x target/release/seclab ]; then
  CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}" cargo build --release --quiet
fi
seclab="$PWD/target/release/seclab"

work=$(mktemp -d)
export SECLAB_TESTCLUSTER_DIR="$work/cluster"
trap 'scripts/testcluster down >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
# shellcheck source=bench/control_plane.sh
source bench/control_plane.sh
k() { "$SECLAB_TESTCLUSTER_KUBECTL" --kubeconfig "$admin" "$@"; }

# fresh_cluster: a new, empty control plane, once it has finished starting up.
fresh_cluster() {
  scripts/testcluster down >/dev/null 2>&1 || true
  scripts/testcluster up >"$work/up.log" 2>&1 || { cat "$work/up.log" >&2; exit 1; }
  # shellcheck source=/dev/null
  source "$SECLAB_TESTCLUSTER_DIR/env"
  admin="$SECLAB_TESTCLUSTER_ADMIN_KUBECONFIG" audit="$SECLAB_TESTCLUSTER_AUDIT_LOG"
  settle
}

# Before each measure, wait until the controllers are done with what came before (start-up,
# ReplicaSets for the Deployments just applied, PV binding...): no write for 3 s, then the
# control plane using under a fifth of a core for 2 s.
settle() {
  local from quiet=0 deadline=$((SECONDS + 300))
  while ((quiet < 3 && SECONDS < deadline)); do
    from=$(stat -c %s "$audit")
    sleep 1
    if [ "$(writes "$from")" = 0 ]; then quiet=$((quiet + 1)); else quiet=0; fi
  done
  wait_idle "$deadline"
}

# measure TOOL PHASE cmd...: wall time, CPU time and peak RSS of cmd, the control plane's CPU
# time meanwhile, and the writes cmd sent (as user admin, the identity all three tools use,
# between its start and its end).
measure() {
  local tool=$1 phase=$2 from ticks secs user sys cpu kb
  shift 2
  settle
  from=$(stat -c %s "$audit") ticks=$(cpu_ticks)
  if ! /usr/bin/time -f '%e %U %S %M' -o "$work/time" "$@" >"$work/$tool-$phase.log" 2>&1; then
    echo "$tool $phase failed:" >&2
    tail -n 20 "$work/$tool-$phase.log" >&2
    exit 1
  fi
  ticks=$(($(cpu_ticks) - ticks))
  sleep 1 # an audit event is written once its response is complete
  read -r secs user sys kb <"$work/time"
  cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
  echo "$tool $phase $secs $kb $(writes "$from" admin) $cpu $(awk -v t="$ticks" -v hz="$hz" 'BEGIN { printf "%.2f", t / hz }')" >>"$work/results"
  echo "  $tool $phase: ${secs} s" >&2
}

# check TOOL LAB NAMESPACE OBJECTS: every rendered object is in the cluster.
check() {
  local want have
  want=$(grep -c '^kind:' "$4")
  have=$(( $(k get namespace,persistentvolume -l "app.kubernetes.io/part-of=$2" -o name | wc -l) +
    $(k get -n "$3" deployment,service,ingress,cronjob,persistentvolumeclaim -l "app.kubernetes.io/part-of=$2" -o name | wc -l) ))
  [ "$have" = "$want" ] || { echo "$1: $have objects of $want in the cluster" >&2; exit 1; }
}

for tool in kubectl kapp seclab; do
  python3 bench/gen_lab.py --tenants "$tenants" "bench-$tool" "bench-$tool" "$work/lab-$tool.yaml"
  # Rendering is not part of the measure for the peers.
  "$seclab" -f "$work/lab-$tool.yaml" render >"$work/objs-$tool.yaml"
done
echo "== apply of a $tenants-tenant lab ($(grep -c '^kind:' "$work/objs-kubectl.yaml") objects) per tool, then the unchanged re-apply" >&2

# kubectl applies the objects in file order, and render puts the Namespace first.
fresh_cluster
for phase in apply reapply; do
  measure kubectl "$phase" "$SECLAB_TESTCLUSTER_KUBECTL" --kubeconfig "$admin" apply --server-side -f "$work/objs-kubectl.yaml"
done
check kubectl bench-kubectl bench-kubectl "$work/objs-kubectl.yaml"

# kapp keeps its app record (a ConfigMap) in an existing namespace, so in `default`.
# --wait=false: seclab apply does not wait for readiness either (it has --wait for that).
fresh_cluster
for phase in apply reapply; do
  measure kapp "$phase" "$kapp" deploy --kubeconfig "$admin" -n default -a bench-kapp \
    -f "$work/objs-kapp.yaml" --yes --wait=false --tty=false
done
check kapp bench-kapp bench-kapp "$work/objs-kapp.yaml"

if [ -z "${SKIP_SECLAB:-}" ]; then
  fresh_cluster
  # Its re-apply takes a fraction of a second, where one slow run shows: the median of five.
  for phase in apply reapply reapply reapply reapply reapply; do
    measure seclab "$phase" "$seclab" --kubeconfig "$admin" -f "$work/lab-seclab.yaml" apply --yes
  done
  check seclab bench-seclab bench-seclab "$work/objs-seclab.yaml"
fi

# The table: one row per tool, then seclab's ratios to each peer, then the floor: the CPU
# time the control plane and seclab spent on seclab's apply, spread over every core, is as
# fast as any client could have gone with that much server work.
cores=$(nproc)
awk -v cores="$cores" '
  # A phase measured more than once (seclab re-apply) shows its median time, its most writes.
  function median(key,   i, j, x, k) {
    k = runs[key]
    for (i = 2; i <= k; i++) { x = all[key, i]; for (j = i - 1; j >= 1 && all[key, j] > x; j--) all[key, j + 1] = all[key, j]; all[key, j + 1] = x }
    return k % 2 ? all[key, (k + 1) / 2] : (all[key, k / 2] + all[key, k / 2 + 1]) / 2
  }
  { t[$1] = 1; all[$1, $2, ++runs[$1, $2]] = $3; if ($5 > w[$1, $2]) w[$1, $2] = $5; c[$1, $2] = $6; p[$1, $2] = $7
    if ($4 > m[$1]) m[$1] = $4 }
  END {
    for (key in runs) s[key] = median(key)
    for (key in runs) if (runs[key] > 1) {
      split(key, part, SUBSEP); line = ""
      for (i = 1; i <= runs[key]; i++) line = line sprintf(" %.2f", all[key, i])
      printf "%s %s: %d runs, sorted:%s; the table shows the median\n", part[1], part[2], runs[key], line
    }
    printf "%-8s %9s %11s %13s %16s %13s %16s %17s\n", "tool", "apply s", "re-apply s", "apply writes",
      "re-apply writes", "peak RSS MiB", "tool CPU s", "cluster CPU s"
    n = split("seclab kubectl kapp", order, " ")
    for (i = 1; i <= n; i++) if (order[i] in t)
      printf "%-8s %9.2f %11.2f %13d %16d %13.1f %16s %17s\n", order[i], s[order[i], "apply"], s[order[i], "reapply"],
        w[order[i], "apply"], w[order[i], "reapply"], m[order[i]] / 1024,
        c[order[i], "apply"] " / " c[order[i], "reapply"], p[order[i], "apply"] " / " p[order[i], "reapply"]
    if ("seclab" in t) {
      for (i = 2; i <= n; i++) if (order[i] in t)
        printf "%s/seclab: apply %.1fx, re-apply %.1fx\n", order[i], s[order[i], "apply"] / s["seclab", "apply"],
          s[order[i], "reapply"] / s["seclab", "reapply"]
      floor = (p["seclab", "apply"] + c["seclab", "apply"]) / cores
      printf "floor of seclab apply on %d cores: (%.1f s cluster CPU + %.1f s seclab CPU) / %d = %.1f s; seclab took %.2f s (%.0f%% of the floor)\n",
        cores, p["seclab", "apply"], c["seclab", "apply"], cores, floor, s["seclab", "apply"], 100 * floor / s["seclab", "apply"]
      if ("kubectl" in t)
        printf "5x kubectl is %.1f s: %s\n", s["kubectl", "apply"] / 5,
          s["kubectl", "apply"] / 5 < floor ? "below the floor, out of reach of any client on this machine" : "above the floor"
    }
    print "targets: apply >= 5x kubectl and > 1x kapp; re-apply < 0.4 s and >= 40x kubectl with 0 writes; seclab peak RSS < 200 MiB"
  }' "$work/results"
