#!/usr/bin/env bash
# The test cluster's real node (testcluster/README.md "The real node"; figures in
# BENCHMARKS.md "Real node"):
#  1. start time: `scripts/testcluster up` without the real node and with it, RUNS times each
#     (peer: the control plane alone, in the same run), and the node's own part as `up` logs it;
#  2. scan to alert: a tenant's scan group on the real node; its CronJob triggered as a Job
#     (`kubectl create job --from`), nmap runs in the pod, writes its XML on the scan volume,
#     `seclab watch` ingests it and POSTs the alert to a webhook on loopback. Timed from the
#     Job's creation to the webhook's receipt, SCANS times (a port of the tenant's pod opened
#     and closed in turn, so that every scan has one change to alert), beside the time until
#     `kubectl wait` reports the Job complete (the peer: what kubectl sees of the same scan).
#   RUNS=2 SCANS=3 bench/real_node.sh     a quick check
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${RUNS:-5}"
scans="${SCANS:-5}"
CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}" cargo build --release --quiet
seclab="$PWD/target/release/seclab"

work=$(mktemp -d)
export SECLAB_TESTCLUSTER_DIR="$work/cluster"
watch_pid= receiver_pid=
trap 'kill "$watch_pid" "$receiver_pid" 2>/dev/null || true; scripts/testcluster down >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
now_ms() { date +%s%3N; }

echo "== start time, $runs runs each" >&2
: >"$work/up-plain" && : >"$work/up-node" && : >"$work/node-only"
for ((i = 0; i < runs; i++)); do
  for real in 0 1; do
    SECLAB_TESTCLUSTER_REAL_NODE=$real scripts/testcluster up >"$work/up.log" 2>&1 || { cat "$work/up.log" >&2; exit 1; }
    up=$(sed -n 's/.*: up in \([0-9]*\)ms.*/\1/p' "$work/up.log")
    if ((real)); then
      echo "$up" >>"$work/up-node"
      sed -n 's/.*real node .* up in \([0-9]*\)ms.*/\1/p' "$work/up.log" >>"$work/node-only"
    else
      echo "$up" >>"$work/up-plain"
    fi
    scripts/testcluster down >/dev/null 2>&1
  done
done
plain=$(median <"$work/up-plain") node=$(median <"$work/up-node") own=$(median <"$work/node-only")
printf 'control plane alone: median %s ms (%s)\n' "$plain" "$(tr '\n' ' ' <"$work/up-plain")"
printf 'with the real node:  median %s ms (%s); the node itself %s ms; +%s ms (target: a cached start adds under 60 s)\n' \
  "$node" "$(tr '\n' ' ' <"$work/up-node")" "$own" "$((node - plain))"

echo "== scan to alert, $scans scans" >&2
scripts/testcluster up >"$work/up.log" 2>&1 || { cat "$work/up.log" >&2; exit 1; }
# shellcheck source=/dev/null
source "$SECLAB_TESTCLUSTER_DIR/env"
kubectl() { "$SECLAB_TESTCLUSTER_KUBECTL" --kubeconfig "$SECLAB_TESTCLUSTER_ADMIN_KUBECONFIG" "$@"; }
mkdir -p "$work/hook" "$work/data/scans"
python3 tests/support/receivers.py http "$work/hook" &
receiver_pid=$!
until [ -s "$work/hook/port" ]; do sleep 0.1; done
placement="nodeSelector: {kubernetes.io/hostname: $SECLAB_TESTCLUSTER_REAL_NODE_NAME}
    tolerations: [{key: $SECLAB_TESTCLUSTER_REAL_NODE_TAINT, operator: Exists}]"
lab() { # lab file with the scan group's target (empty: none yet)
  cat <<EOF
apiVersion: seclab.dev/v1alpha1
kind: Lab
metadata: {name: bench-scan}
cluster: {namespace: bench-scan}
registry: {enabled: false}
elasticsearch: {enabled: false}
cortex: {enabled: false}
storage:
  volumes: [{name: data, hostPath: $work/data}]
scanDatabase: {path: scans.db, scanVolume: data}
alerts:
  routes: [{name: hook, webhook: {url: "http://127.0.0.1:$(cat "$work/hook/port")/alerts"}}]
tenants:
  - name: site
    image: seclab.test/tenant-app:1
    $placement
EOF
  [ -z "$1" ] || cat <<EOF
    scans:
      - {name: dmz, targets: ["$1"], ports: "9004,9005", nmapArgs: [-sT, -n, -Pn], image: "seclab.test/nmap:debian12", schedule: "0 2 * * *", alerts: [hook]}
EOF
}
lab "" >"$work/lab.yaml"
"$seclab" --kubeconfig "$SECLAB_TESTCLUSTER_LIMITED_KUBECONFIG" -f "$work/lab.yaml" apply --wait --timeout 2m >/dev/null
pod=$(kubectl get pods -n bench-scan -l seclab.dev/tenant=site -o jsonpath='{.items[0].metadata.name}')
target=$(kubectl get pod -n bench-scan "$pod" -o jsonpath='{.status.podIP}')
ip route get "$target" | grep -q "dev $SECLAB_TESTCLUSTER_NODE_BRIDGE" || { echo "refusing: $target is not on the node's bridge" >&2; exit 1; }
lab "$target" >"$work/lab.yaml"
"$seclab" --kubeconfig "$SECLAB_TESTCLUSTER_LIMITED_KUBECONFIG" -f "$work/lab.yaml" apply --wait --timeout 2m >/dev/null
"$seclab" --kubeconfig "$SECLAB_TESTCLUSTER_LIMITED_KUBECONFIG" -f "$work/lab.yaml" watch --listen 127.0.0.1:0 2>"$work/watch.log" &
watch_pid=$!
until grep -q "endpoints on" "$work/watch.log"; do sleep 0.1; done

run_scan() { # name: prints "job-complete-ms alert-ms"
  local before t0 complete alert
  before=$(find "$work/hook" -name '*.json' | wc -l)
  t0=$(now_ms)
  kubectl create job "$1" -n bench-scan --from=cronjob/site-dmz-scan >/dev/null
  kubectl wait -n bench-scan --for=condition=Complete "job/$1" --timeout=120s >/dev/null
  complete=$(($(now_ms) - t0))
  until (($(find "$work/hook" -name '*.json' | wc -l) > before)); do sleep 0.02; done
  alert=$(($(now_ms) - t0))
  echo "$complete $alert"
}
# The first scan is the baseline, with nothing to alert: wait until watch has ingested it.
address=$(sed -n 's/.*endpoints on http:\/\/\([^;]*\);.*/\1/p' "$work/watch.log" | head -n1)
ingested() { curl -s "http://$address/metrics" | awk '/^seclab_scans_ingested_total.*result="ingested"/ {print $2}'; }
kubectl create job baseline -n bench-scan --from=cronjob/site-dmz-scan >/dev/null
kubectl wait -n bench-scan --for=condition=Complete job/baseline --timeout=120s >/dev/null
until v=$(ingested) && [ "${v%%.*}" -ge 1 ] 2>/dev/null; do sleep 0.1; done
: >"$work/scans"
for ((i = 1; i <= scans; i++)); do
  if ((i % 2)); then
    kubectl exec -n bench-scan "$pod" -- sh -c 'nohup python3 -m http.server 9005 >/dev/null 2>&1 & echo $! >/tmp/extra.pid'
  else
    kubectl exec -n bench-scan "$pod" -- sh -c 'kill "$(cat /tmp/extra.pid)"'
  fi
  sleep 1
  run_scan "scan-$i" >>"$work/scans"
done
complete=$(cut -d' ' -f1 "$work/scans" | median) alert=$(cut -d' ' -f2 "$work/scans" | median)
printf 'scan to alert: median %s ms (%s); kubectl sees the Job complete after %s ms: alert %s ms after it\n' \
  "$alert" "$(cut -d' ' -f2 "$work/scans" | tr '\n' ' ')" "$complete" "$((alert - complete))"
