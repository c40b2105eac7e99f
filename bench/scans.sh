#!/usr/bin/env bash
# Scan-side benchmarks (targets in BENCHMARKS.md), each against its peer in the same run:
#  1. `seclab scan diff` vs nmap's `ndiff`, in text and in --xml mode, on a pair of
#     65,536-host scans of each shape, with the findings of seclab and of `ndiff --xml`
#     checked to be identical, and against a floor: one pass over both files' bytes that
#     finds the host elements (`LC_ALL=C grep -cP '<host '`, PCRE's JIT, the fastest native
#     search for it here; -F where grep has no -P; `wc -l`, a pass that searches nothing,
#     is shown beside it); all best of 5;
#       default: bench/gen_scans.py: 1-3 open ports per host with -sV fields, ~2% changed;
#       rich:    bench/gen_scans_rich.py: 10-40 open ports with -sV fields, one NSE script per
#                port and per host at most, OS detection, uptime, sequences, traceroute, UDP,
#                hosts listed twice, ~3% changed, and what changes on every real scan
#                (uptime, sequences, round-trip times) changed on every host;
#       rich-frozen (only when asked for): the rich shape with those values kept equal;
#  2. parser throughput vs a bare quick-xml event loop over the same file (default shape);
#  3. peak memory of `seclab scan ingest` on a 1x and a 4x file (streaming: flat; default).
# Files are generated data (127.64.0.0/10 addresses); nothing is scanned. They are kept in
# ~/.cache/seclab-test/bench/.
#
# Environment: HOSTS (65536) hosts per scan; SHAPES ("default rich"); SECTIONS ("diff parse
# ingest"); SECLAB=PATH times that binary and builds nothing (parse still needs cargo:
# leave it out of SECTIONS to run no cargo at all).
set -euo pipefail
cd "$(dirname "$0")/.."
hosts="${HOSTS:-65536}"
shapes="${SHAPES:-default rich}"
sections="${SECTIONS:-diff parse ingest}"
work="${HOME}/.cache/seclab-test/bench"
mkdir -p "$work"
command -v ndiff >/dev/null || { echo "ndiff is missing: apt-get install ndiff" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time is missing: apt-get install time" >&2; exit 1; }
# ndiff's own interpreter (its module is installed for that one), for bench/ndiff_py3fix.py.
ndiff_python=$(sed -n '1s/^#! *//p' "$(command -v ndiff)")
has() { case " $1 " in *" $2 "*) return 0 ;; esac; return 1; }

if [ -n "${SECLAB:-}" ]; then
  seclab=$(realpath "$SECLAB")
else
  CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}" cargo build --release --quiet
  seclab="$PWD/target/release/seclab"
fi

# The pair of files of a shape (generated once): sets $a and $b.
pair() {
  local shape="$1" count="${2:-$hosts}"
  case "$shape" in
    default) a="$work/before-$count.xml" b="$work/after-$count.xml" ;;
    rich) a="$work/rich-v1-before-$count.xml" b="$work/rich-v1-after-$count.xml" ;;
    rich-frozen) a="$work/rich-v1-frozen-before-$count.xml" b="$work/rich-v1-frozen-after-$count.xml" ;;
    *) echo "unknown shape $shape (default, rich, rich-frozen)" >&2; exit 1 ;;
  esac
  [ -f "$b" ] && return
  echo "generating the $shape pair, $count hosts per scan" >&2
  case "$shape" in
    default) python3 bench/gen_scans.py "$count" "$a.tmp" "$b.tmp" ;;
    rich) python3 bench/gen_scans_rich.py "$count" "$a.tmp" "$b.tmp" ;;
    rich-frozen) python3 bench/gen_scans_rich.py "$count" "$a.tmp" "$b.tmp" --frozen ;;
  esac
  mv "$a.tmp" "$a" && mv "$b.tmp" "$b"
}

# Runs a command; sets $elapsed (seconds) and $rc.
timed() {
  local start end
  start=$(date +%s.%N)
  set +e
  "$@"
  rc=$?
  set -e
  end=$(date +%s.%N)
  elapsed=$(echo "$end - $start" | bc -l)
}
# Best of $1 runs of a command that must exit with one of the codes in $2; sets $best.
best_of() {
  local runs="$1" ok="$2"
  shift 2
  best=999999
  for _ in $(seq "$runs"); do
    timed "$@"
    has "$ok" "$rc" || { echo "failed (exit $rc): $*" >&2; return 1; }
    best=$(echo "if ($elapsed < $best) $elapsed else $best" | bc -l)
  done
}
grep_mode=-P
echo '<host ' | LC_ALL=C grep -qP '<host ' 2>/dev/null || grep_mode=-F
floor_pass() { LC_ALL=C grep -c "$grep_mode" '<host ' "$1" "$2" > "$3"; }
read_pass() { wc -l "$1" "$2" > "$3"; }
seclab_diff() { "$seclab" scan diff --match ndiff --output json "$1" "$2" > "$3" 2> "$3.stderr"; }
ndiff_text() { ndiff "$1" "$2" > "$3" 2> "$3.stderr"; }
ndiff_text_fixed() { "$ndiff_python" bench/ndiff_py3fix.py "$1" "$2" > "$3" 2> "$3.stderr"; }
ndiff_xml() { ndiff --xml "$1" "$2" > "$3" 2> "$3.stderr"; }
ratio() { echo "$1 / $2" | bc -l; }
yes_no() { [ "$(echo "$1" | bc -l)" = 1 ] && echo yes || echo "**no**"; }

summary=()
diff_shape() {
  local shape="$1" out="$work/$1-$hosts"
  pair "$shape"
  echo "== scan diff, $shape shape: $hosts hosts per scan, $(du -h "$a" | cut -f1) + $(du -h "$b" | cut -f1)"
  cat "$a" "$b" > /dev/null  # both files in the page cache for every tool alike

  best_of 5 "0" floor_pass "$a" "$b" "$out.floor"
  local floor_s="$best" counts
  counts=$(cut -d: -f2 "$out.floor" | paste -sd+ | sed 's/+/ + /')
  printf 'floor:                  %.3f s  one pass over both files finding `<host ` (LC_ALL=C grep -c %s, best of 5): %s host elements\n' \
    "$floor_s" "$grep_mode" "$counts"
  best_of 5 "0" read_pass "$a" "$b" "$out.read"
  printf '(read only:             %.3f s  wc -l of both files, a pass that searches nothing, best of 5)\n' "$best"

  best_of 5 "0 3" seclab_diff "$a" "$b" "$out.seclab.json"
  local seclab_s="$best"
  printf 'seclab scan diff:       %.3f s  (--match ndiff --output json, best of 5)\n' "$seclab_s"

  local text_s text_note=""
  timed ndiff_text "$a" "$b" "$out.ndiff.txt"
  text_s="$elapsed"
  if [ "$rc" = 2 ] && grep -q "TypeError: '>' not supported between instances of 'list' and 'int'" "$out.ndiff.txt.stderr"; then
    printf "ndiff (text), stock:    FAILED after %.2f s: TypeError: '>' not supported between instances of 'list' and 'int' (a port whose only change is its script output)\n" "$text_s"
    timed ndiff_text_fixed "$a" "$b" "$out.ndiff.txt"
    text_s="$elapsed" text_note=" (with bench/ndiff_py3fix.py)"
  fi
  has "0 1" "$rc" || { echo "ndiff (text) failed (exit $rc): $(tail -1 "$out.ndiff.txt.stderr")" >&2; exit 1; }
  printf 'ndiff (text):           %.2f s%s\n' "$text_s" "$text_note"

  timed ndiff_xml "$a" "$b" "$out.ndiff.xml"
  has "0 1" "$rc" || { echo "ndiff --xml failed (exit $rc): $(tail -1 "$out.ndiff.xml.stderr")" >&2; exit 1; }
  local xml_s="$elapsed"
  printf 'ndiff --xml:            %.2f s\n' "$xml_s"

  python3 bench/findings.py ndiff "$out.ndiff.xml" > "$out.ndiff.findings"
  python3 bench/findings.py seclab "$out.seclab.json" > "$out.seclab.findings"
  local same total other
  total=$(wc -l < "$out.ndiff.findings")
  other=$(grep -c '\[' "$out.ndiff.findings" || true)
  if cmp -s "$out.ndiff.findings" "$out.seclab.findings"; then
    same="identical ($total findings: $((total - other)) hosts new or gone and ports, $other scripts, OS, extra ports, names...)"
  else
    same="**DIFFERENT**: diff $out.ndiff.findings $out.seclab.findings ($total vs $(wc -l < "$out.seclab.findings") lines)"
  fi
  local vs_text vs_xml vs_floor
  vs_text=$(ratio "$text_s" "$seclab_s") vs_xml=$(ratio "$xml_s" "$seclab_s") vs_floor=$(ratio "$seclab_s" "$floor_s")
  printf 'seclab vs ndiff (text): %.0fx faster (target: at least 60x): %s\n' "$vs_text" "$(yes_no "$vs_text >= 60")"
  printf 'seclab vs ndiff --xml:  %.0fx faster (target: at least 60x): %s\n' "$vs_xml" "$(yes_no "$vs_xml >= 60")"
  printf 'seclab vs floor:        %.1fx the floor (target: within 4x): %s\n' "$vs_floor" "$(yes_no "$vs_floor <= 4")"
  printf 'findings:               %s\n' "$same"
  summary+=("$(printf '| %s | %s | %.3f s | %.3f s | %.2f s%s | %.2f s | %.0fx | %.0fx | %.1fx | %s |' "$shape" \
    "$(du -h "$a" | cut -f1)" "$floor_s" "$seclab_s" "$text_s" "$text_note" "$xml_s" "$vs_text" "$vs_xml" "$vs_floor" \
    "$(cmp -s "$out.ndiff.findings" "$out.seclab.findings" && echo "identical ($total)" || echo DIFFERENT)")")
}

if has "$sections" diff; then
  for shape in $shapes; do
    diff_shape "$shape"
  done
  echo "== scan diff, summary ($hosts hosts per scan)"
  echo "| shape | file | floor | seclab | ndiff text | ndiff --xml | vs text | vs xml | vs floor | findings |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${summary[@]}"
fi

if has "$sections" parse || has "$sections" ingest; then
  pair default
fi
if has "$sections" parse; then
  echo "== parser throughput"
  SECLAB_BENCH_SCAN="$a" CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}" cargo bench --quiet --bench parse
fi

if has "$sections" ingest; then
  echo "== ingest peak memory (SQLite)"
  big="$work/before-$((hosts * 4)).xml"
  [ -f "$big" ] || python3 bench/gen_scans.py "$((hosts * 4))" "$big" "$work/after-$((hosts * 4)).xml"
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
fi
