#!/usr/bin/env bash
# Cluster-side benchmark (DESIGN.md section 11), each tool against its peers in the same run
# on a fresh test cluster (scripts/testcluster):
#  1. apply of an N-tenant lab (bench/gen_lab.py, TENANTS=1000: 5,006 objects) into an empty
#     namespace by `seclab apply`, by `kubectl apply --server-side` of the same rendered
#     objects (the test cluster's kubectl: the same Kubernetes build) and by `kapp deploy`
#     (bench/peers.sh); each tool gets its own copy of the lab (own namespace and PV name);
#  2. the unchanged re-apply by each, with the write requests it sent (audit log);
#  3. peak RSS of each tool's process.
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
trap 'scripts/testcluster down 2>/dev/null || true; rm -rf "$work"' EXIT
scripts/testcluster up
# shellcheck source=/dev/null
source "$SECLAB_TESTCLUSTER_DIR/env"
admin="$SECLAB_TESTCLUSTER_ADMIN_KUBECONFIG" audit="$SECLAB_TESTCLUSTER_AUDIT_LOG"
k() { "$SECLAB_TESTCLUSTER_KUBECTL" --kubeconfig "$admin" "$@"; }

# writes FROM [USER]: write requests in the audit log after byte FROM (dry runs excluded),
# by USER; without USER, by anyone but the fake nodes' heartbeats and events.
writes() {
  python3 - "$audit" "$@" <<'PY'
import json, sys
path, start, user = sys.argv[1], int(sys.argv[2]), (sys.argv[3:] or [None])[0]
n = 0
with open(path, "rb") as f:
    f.seek(start)
    for line in f:
        try:
            e = json.loads(line)
        except ValueError:  # a line cut by the size taken mid-write
            continue
        if e["verb"] not in ("create", "update", "patch", "delete", "deletecollection"):
            continue
        if "dryRun" in e["requestURI"]:
            continue
        if user is not None:
            n += e["user"]["username"] == user
        else:
            n += e.get("objectRef", {}).get("resource") not in ("leases", "events", "nodes")
print(n)
PY
}

# Before each measure, wait until the controllers are done with the previous tool's objects
# (ReplicaSets, PV binding...), so that no tool pays for another's aftermath.
settle() {
  local from quiet=0 deadline=$((SECONDS + 300))
  while ((quiet < 3 && SECONDS < deadline)); do
    from=$(stat -c %s "$audit")
    sleep 1
    if [ "$(writes "$from")" = 0 ]; then quiet=$((quiet + 1)); else quiet=0; fi
  done
}

# measure TOOL PHASE cmd...: wall time and peak RSS of cmd, and the writes it sent (as user
# admin, the identity all three tools use, between its start and its end).
measure() {
  local tool=$1 phase=$2 from secs kb
  shift 2
  settle
  from=$(stat -c %s "$audit")
  if ! /usr/bin/time -f '%e %M' -o "$work/time" "$@" >"$work/$tool-$phase.log" 2>&1; then
    echo "$tool $phase failed:" >&2
    tail -n 20 "$work/$tool-$phase.log" >&2
    exit 1
  fi
  sleep 1 # an audit event is written once its response is complete
  read -r secs kb <"$work/time"
  echo "$tool $phase $secs $kb $(writes "$from" admin)" >>"$work/results"
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
for phase in apply reapply; do
  measure kubectl "$phase" "$SECLAB_TESTCLUSTER_KUBECTL" --kubeconfig "$admin" apply --server-side -f "$work/objs-kubectl.yaml"
done
check kubectl bench-kubectl bench-kubectl "$work/objs-kubectl.yaml"

# kapp keeps its app record (a ConfigMap) in an existing namespace, so in `default`.
# --wait=false: seclab apply does not wait for readiness either (it has --wait for that).
for phase in apply reapply; do
  measure kapp "$phase" "$kapp" deploy --kubeconfig "$admin" -n default -a bench-kapp \
    -f "$work/objs-kapp.yaml" --yes --wait=false --tty=false
done
check kapp bench-kapp bench-kapp "$work/objs-kapp.yaml"

if [ -z "${SKIP_SECLAB:-}" ]; then
  for phase in apply reapply; do
    measure seclab "$phase" "$seclab" --kubeconfig "$admin" -f "$work/lab-seclab.yaml" apply --yes
  done
  check seclab bench-seclab bench-seclab "$work/objs-seclab.yaml"
fi

# The table: one row per tool, then seclab's ratios to each peer.
awk '
  { t[$1] = 1; s[$1, $2] = $3; w[$1, $2] = $5; if ($4 > m[$1]) m[$1] = $4 }
  END {
    printf "%-8s %9s %11s %13s %16s %13s\n", "tool", "apply s", "re-apply s", "apply writes", "re-apply writes", "peak RSS MiB"
    n = split("seclab kubectl kapp", order, " ")
    for (i = 1; i <= n; i++) if (order[i] in t)
      printf "%-8s %9.2f %11.2f %13d %16d %13.1f\n", order[i], s[order[i], "apply"], s[order[i], "reapply"],
        w[order[i], "apply"], w[order[i], "reapply"], m[order[i]] / 1024
    if ("seclab" in t) for (i = 2; i <= n; i++)
      printf "%s/seclab: apply %.1fx, re-apply %.1fx\n", order[i], s[order[i], "apply"] / s["seclab", "apply"],
        s[order[i], "reapply"] / s["seclab", "reapply"]
    print "targets: apply >= 5x kubectl and > 1x kapp; re-apply >= 20x kubectl with 0 writes; seclab peak RSS < 200 MiB"
  }' "$work/results"

# The control plane's own peak memory, to see that the cluster was not the bottleneck.
while read -r component pid; do
  printf '%s %s MiB  ' "$component" "$(awk '/^VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$pid/status")"
done <"$SECLAB_TESTCLUSTER_DIR/pids"
echo "(test cluster peak RSS)"
