#!/usr/bin/env bash
# Continuous-mode benchmark (README "Continuous mode"; targets in BENCHMARKS.md), on a fresh
# test control plane with an N-tenant lab (bench/gen_lab.py, TENANTS=1000: 5,006 objects):
#  1. seclab's one-shot `apply` of the lab, then its unchanged re-apply once the control plane
#     is idle again (median of 5: the comparison row);
#  2. `seclab watch` holding the lab (debounce 50 ms, resync every second):
#     - save-to-applied latency of a one-line change (a tenant's image), SAVES times, from the
#       file's write to watch's log line for the Deployment it updated;
#     - drift repair: a managed Deployment deleted (DELETE to the API server) until watch has
#       created it again, REPAIRS times;
#     - resyncs of the unchanged lab from the caches: their duration (from /metrics), and the
#       LIST and write requests seclab sent meanwhile (audit log, by user agent; the Lease's
#       renewals excluded);
#     - watch's RSS at resync 10 and at resync RESYNCS.
#   TENANTS=50 SAVES=5 REPAIRS=5 RESYNCS=20 bench/watch.sh    a quick check
#   RESULTS=figures.json bench/watch.sh                           also the figures as JSON
set -euo pipefail
cd "$(dirname "$0")/.."
tenants="${TENANTS:-1000}"
[ -x /usr/bin/time ] || { echo "/usr/bin/time is missing: apt-get install time" >&2; exit 1; }
CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}" cargo build --release --quiet
seclab="$PWD/target/release/seclab"

work=$(mktemp -d)
export SECLAB_TESTCLUSTER_DIR="$work/cluster"
trap 'kill "$watch_pid" 2>/dev/null || true; scripts/testcluster down >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
watch_pid=
scripts/testcluster up >"$work/up.log" 2>&1 || { cat "$work/up.log" >&2; exit 1; }
# shellcheck source=/dev/null
source "$SECLAB_TESTCLUSTER_DIR/env"
admin="$SECLAB_TESTCLUSTER_ADMIN_KUBECONFIG"
# shellcheck source=bench/control_plane.sh
source bench/control_plane.sh

python3 bench/gen_lab.py --tenants "$tenants" bench-watch bench-watch "$work/lab.yaml"
printf 'watch:\n  debounce: 50ms\n  resyncInterval: 1s\n' >>"$work/lab.yaml"
echo "== one-shot apply of a $tenants-tenant lab, then its unchanged re-apply" >&2
/usr/bin/time -f '%e' -o "$work/apply.time" "$seclab" --kubeconfig "$admin" -f "$work/lab.yaml" apply --yes >/dev/null
wait_idle # the controllers are done with what the apply created
audit_from=$(stat -c %s "$SECLAB_TESTCLUSTER_AUDIT_LOG")
for i in 1 2 3 4 5; do
  /usr/bin/time -f '%e' -o "$work/reapply-$i.time" "$seclab" --kubeconfig "$admin" -f "$work/lab.yaml" apply --yes >/dev/null
done
sleep 1 # an audit event is written once its response is complete
reapply_writes=$(writes "$audit_from" admin)

echo "== seclab watch" >&2
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$seclab" --kubeconfig "$admin" -f "$work/lab.yaml" watch --listen "127.0.0.1:$port" 2>"$work/watch.log" &
watch_pid=$!
python3 bench/watch_driver.py --lab "$work/lab.yaml" --log "$work/watch.log" --pid "$watch_pid" \
  --endpoints "http://127.0.0.1:$port" --kubeconfig "$admin" --audit "$SECLAB_TESTCLUSTER_AUDIT_LOG" \
  --namespace bench-watch --saves "${SAVES:-20}" --repairs "${REPAIRS:-20}" --resyncs "${RESYNCS:-100}" \
  --apply "$(cat "$work/apply.time")" --reapply "$(sort -n "$work"/reapply-*.time | sed -n 3p)" \
  --reapply-writes "$reapply_writes" --objects "$("$seclab" -f "$work/lab.yaml" render | grep -c '^kind:')" \
  ${RESULTS:+--json "$RESULTS"}
kill -TERM "$watch_pid"
wait "$watch_pid" && echo "watch stopped on SIGTERM with exit code 0" >&2
