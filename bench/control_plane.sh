# Sourced by the benchmarks: the test control plane's CPU use (scripts/testcluster, with
# SECLAB_TESTCLUSTER_DIR set).

hz=$(getconf CLK_TCK)

# cpu_ticks: CPU time (user + system, in clock ticks) of all control-plane processes so far.
cpu_ticks() {
  local total=0 pid
  while read -r _ pid; do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
  done <"$SECLAB_TESTCLUSTER_DIR/pids"
  echo "$total"
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
