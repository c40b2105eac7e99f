#!/usr/bin/env bash
# How the cluster side's cost grows with the lab (targets in BENCHMARKS.md): bench/watch.sh at
# each size of SIZES (tenants; default 100 1000 5000, that is 506, 5,006 and 25,006 objects),
# each on a fresh test control plane, then one table: each figure per size, per object, and
# the per-object cost at the largest size against the one at 1,000 tenants (target: at most
# 1.2x, that is, at most linear growth).
#   SIZES="50 200" SAVES=5 REPAIRS=5 RESYNCS=20 bench/curve.sh    a quick check
set -euo pipefail
cd "$(dirname "$0")/.."
sizes="${SIZES:-100 1000 5000}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for tenants in $sizes; do
  echo "== $tenants tenants" >&2
  TENANTS="$tenants" RESULTS="$work/$tenants.json" bench/watch.sh >&2
done
python3 - "$work" $sizes <<'PY'
import json, sys

work, sizes = sys.argv[1], [int(s) for s in sys.argv[2:]]
runs = {n: json.load(open(f"{work}/{n}.json")) for n in sizes}
rows = [
    ("one-shot apply", "apply_s", "s"),
    ("unchanged re-apply (median of 5)", "reapply_s", "s"),
    ("save-to-applied (median)", "save_median_s", "ms"),
    ("drift repair (median)", "repair_median_s", "ms"),
    ("unchanged resync (mean)", "resync_mean_s", "ms"),
    ("watch RSS at the last resync", "rss_last_mib", "MiB"),
]
base = 1000 if 1000 in runs else sizes[0]
top = sizes[-1]


def shown(value, unit):
    return f"{value * 1000:.0f} ms" if unit == "ms" else f"{value:.2f} s" if unit == "s" else f"{value:.0f} MiB"


print(f"{'tenants':<34}" + "".join(f"{n:>14}" for n in sizes))
print(f"{'objects':<34}" + "".join(f"{runs[n]['objects']:>14}" for n in sizes))
for name, key, unit in rows:
    print(f"{name:<34}" + "".join(f"{shown(runs[n][key], unit):>14}" for n in sizes))
print()
print(f"per object, {top} tenants against {base} (target: at most 1.2x)")
for name, key, unit in rows:
    per = {n: runs[n][key] / runs[n]["objects"] for n in (base, top)}
    ratio = per[top] / per[base]
    print(f"  {name:<32} {ratio:>6.2f}x  {'met' if ratio <= 1.2 else 'NOT met'}")
last = runs[top]
print()
print(f"unchanged re-apply at {top} tenants: {last['reapply_s']:.2f} s, {last['reapply_writes']} writes "
      f"(target: under 2 s, 0 writes)")
growth = 100 * (last["rss_last_mib"] - last["rss_first_mib"]) / last["rss_first_mib"]
print(f"watch RSS at {top} tenants: {last['rss_first_mib']:.0f} MiB at resync 10, {last['rss_last_mib']:.0f} MiB "
      f"at resync {last['resyncs']} ({growth:+.1f}%; target: under 1 GiB, flat)")
print(f"LISTs / writes during the resyncs: " + ", ".join(f"{runs[n]['resync_lists']} / {runs[n]['resync_writes']}" for n in sizes)
      + " (target: 0 / 0)")
PY
