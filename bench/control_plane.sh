# Sourced by the benchmarks: the test control plane's CPU use and the writes in its audit log
# (scripts/testcluster, with SECLAB_TESTCLUSTER_DIR set and its env sourced).

hz=$(getconf CLK_TCK)

# component_ticks: "component ticks" per line, the CPU time (user + system, in clock ticks) of
# each control-plane process so far.
component_ticks() {
  local component pid
  while read -r component pid; do
    echo "$component $(awk '{print $14 + $15}' "/proc/$pid/stat")"
  done <"$SECLAB_TESTCLUSTER_DIR/pids"
}

# cpu_ticks: the CPU time of all control-plane processes so far, in clock ticks.
cpu_ticks() {
  component_ticks | awk '{total += $2} END {print total + 0}'
}

# wait_idle [DEADLINE]: until the control plane uses under a fifth of a core for 2 s (its
# controllers are done with what came before), or until SECONDS reaches DEADLINE (default:
# 300 s from now).
wait_idle() {
  local deadline=${1:-$((SECONDS + 300))} ticks
  while ((SECONDS < deadline)); do
    ticks=$(cpu_ticks)
    sleep 2
    (($(cpu_ticks) - ticks < 2 * hz / 5)) && break
  done
}

# writes FROM [USER]: write requests in the audit log after byte FROM (dry runs excluded),
# by USER; without USER, by anyone but the fake nodes' heartbeats and events.
writes() {
  python3 - "$SECLAB_TESTCLUSTER_AUDIT_LOG" "$@" <<'PY'
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
