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
#  2. parser throughput vs a bare quick-xml event loop over the same file (default shape), and
#     the host check `scan diff` makes of the hosts it does not parse, on one thread;
#  3. `seclab scan ingest` of the default pair on SQLite and on PostgreSQL (a server of Debian's
#     started for it on loopback, fsync on): the first scan and the next one, against 2 s and
#     4 s; and its peak memory on a 1x and a 4x file (streaming: flat).
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
  echo "== scan ingest (default shape)"
  pair default
  big="$work/before-$((hosts * 4)).xml"
  [ -f "$big" ] || python3 bench/gen_scans.py "$((hosts * 4))" "$big" "$work/after-$((hosts * 4)).xml"
  # ingest DATABASE FILE...: ingests each file in turn into a fresh scan database (`sqlite`, or
  # `postgres` on the server started below); prints "seconds peak-KiB" per file.
  ingest() {
    local database="$1" dir n=0
    shift
    dir=$(mktemp -d)
    mkdir -p "$dir/scans/bench/net"
    local where="path: bench.db"
    if [ "$database" = postgres ]; then
      "$pg/psql" -h 127.0.0.1 -p "$pg_port" -U seclab -d postgres -qc "DROP DATABASE IF EXISTS bench" -c "CREATE DATABASE bench" >/dev/null
      where='url: "env:SECLAB_BENCH_DB_URL"'
    fi
    cat > "$dir/seclab.yaml" <<YAML
apiVersion: seclab.dev/v1alpha1
kind: Lab
metadata: {name: bench}
tenants:
  - name: bench
    scans:
      - {name: net, targets: [127.64.0.0/10], schedule: "@daily"}
scanDatabase: {$where, scanDirectory: scans}
YAML
    for file in "$@"; do
      n=$((n + 1))
      cp "$file" "$dir/scans/bench/net/$n.xml"
      SECLAB_BENCH_DB_URL="postgres://seclab@127.0.0.1:${pg_port:-0}/bench" \
        /usr/bin/time -f '%e %M' -o "$dir/time" "$seclab" --file "$dir/seclab.yaml" scan ingest --no-deliver >/dev/null
      cat "$dir/time"
      rm "$dir/scans/bench/net/$n.xml" # the next run ingests the next file only
    done
    rm -rf "$dir"
  }
  # A PostgreSQL server of Debian's on loopback, as the tests start one, but with fsync on.
  pg=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -n "$pg" ] || { echo "PostgreSQL is missing: apt-get install postgresql" >&2; exit 1; }
  pg_dir=$(mktemp -d) pg_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  as_postgres=()
  if [ "$(id -u)" = 0 ]; then chown postgres: "$pg_dir"; as_postgres=(runuser -u postgres --); fi
  "${as_postgres[@]}" "$pg/initdb" -A trust -U seclab -E UTF8 -D "$pg_dir/data" >/dev/null
  "${as_postgres[@]}" "$pg/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/log" -w \
    -o "-p $pg_port -k $pg_dir -c listen_addresses=127.0.0.1" start >/dev/null
  trap '"${as_postgres[@]}" "$pg/pg_ctl" -D "$pg_dir/data" -m fast stop >/dev/null 2>&1; rm -rf "$pg_dir"' EXIT

  for database in sqlite postgres; do
    { read -r first_s first_kb; read -r next_s next_kb; } < <(ingest "$database" "$a" "$b")
    limit=$([ "$database" = sqlite ] && echo 2 || echo 4)
    printf '%-8s first scan (baseline) %.2f s, %.0f MiB; the next one (compared) %.2f s, %.0f MiB; target: under %s s: %s\n' \
      "$database" "$first_s" "$(echo "$first_kb / 1024" | bc -l)" "$next_s" "$(echo "$next_kb / 1024" | bc -l)" "$limit" \
      "$(yes_no "$first_s < $limit && $next_s < $limit")"
  done
  read -r s1 kb1 < <(ingest sqlite "$a")
  read -r s4 kb4 < <(ingest sqlite "$big")
  printf '1x file (%s hosts, %s): peak %.1f MiB, %.1f s (SQLite)\n' "$hosts" "$(du -h "$a" | cut -f1)" "$(echo "$kb1 / 1024" | bc -l)" "$s1"
  printf '4x file (%s hosts, %s): peak %.1f MiB, %.1f s\n' "$((hosts * 4))" "$(du -h "$big" | cut -f1)" "$(echo "$kb4 / 1024" | bc -l)" "$s4"
  printf 'growth: %+.1f%% (target: within 10%%)\n' "$(echo "($kb4 - $kb1) * 100 / $kb1" | bc -l)"
fi
