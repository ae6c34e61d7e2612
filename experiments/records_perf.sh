#!/usr/bin/env bash
# The per-run records' cost at 10 million restarts (README "Per-run records"): the default lab
# grid (99 cells) x 101,010 restarts = 9,999,990, with and without --keep-runs, and the reload of
# the per-run table; BEFORE (the commit before Parquet, its tree in $BASE) and AFTER (this tree),
# each pair back to back, the whole repeated. Wall time and peak RSS from /usr/bin/time -v.
#   git -C . archive COMMIT_BEFORE | tar -x -C /tmp/pqbase
#   BASE=/tmp/pqbase PY=/work/main/.venv/bin/python bash experiments/records_perf.sh /tmp/pqm
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
BASE=${BASE:?the tree before Parquet}
PY=${PY:-python}
W=${1:-/tmp/records-perf}
mkdir -p "$W"
cd "$W"  # not a source tree: `python -m` puts the working directory before PYTHONPATH
SWEEP=(-m jaxlab sweep --n-runs 101010 --no-figures --quiet)
measure() {  # name tree args...: one process, its wall time and peak RSS
  local name=$1 tree=$2; shift 2
  PYTHONPATH=$tree /usr/bin/time -v "$PY" "$@" 2> "$W/$name.time" > "$W/$name.out"
  local wall rss
  wall=$(grep 'Elapsed (wall clock)' "$W/$name.time" | awk '{print $NF}')
  rss=$(grep 'Maximum resident' "$W/$name.time" | awk '{print $NF}')
  printf '%-22s wall %8s  peak %6.0f MB  %s\n' "$name" "$wall" "$((rss / 1024))" "$(tr '\n' ' ' < "$W/$name.out")"
}
LOAD_BEFORE='import sys, time, jaxlab
t = time.perf_counter(); r = jaxlab.load_run(sys.argv[1]); n = len(r.runs["run"])
print(f"load_run + runs {time.perf_counter() - t:.1f} s, {n:,} rows")'
LOAD_TABLE='import sys, time, jaxlab
t = time.perf_counter(); r = jaxlab.load_run(sys.argv[1]); c = time.perf_counter() - t
tab = r.runs_table()
print(f"load_run {c:.2f} s; + runs_table() {time.perf_counter() - t:.1f} s, {tab.num_rows:,} rows, {tab.nbytes / 1e6:.0f} MB")'
LOAD_NUMPY='import sys, time, jaxlab
t = time.perf_counter(); r = jaxlab.load_run(sys.argv[1]); cols = r.runs.columns(); n = len(cols["run"])
print(f"load_run + runs.columns() {time.perf_counter() - t:.1f} s, {n:,} rows")'
lscpu | grep 'Model name'
for round in $(seq "${FIRST:-1}" "${ROUNDS:-2}"); do
  echo "== round $round"
  rm -rf "$W/before-keep" "$W/after-keep" "$W/before-lean" "$W/after-lean"
  measure "before-sweep-keep-$round" "$BASE" "${SWEEP[@]}" --keep-runs --out "$W/before-keep"
  measure "after-sweep-keep-$round" "$HERE" "${SWEEP[@]}" --keep-runs --out "$W/after-keep"
  du -sh "$W/before-keep/runs.csv" "$W/after-keep/runs" | tr '\n' ' '; echo
  measure "before-load-$round" "$BASE" -c "$LOAD_BEFORE" "$W/before-keep"
  measure "after-load-table-$round" "$HERE" -c "$LOAD_TABLE" "$W/after-keep"
  measure "after-load-numpy-$round" "$HERE" -c "$LOAD_NUMPY" "$W/after-keep"
  measure "before-sweep-lean-$round" "$BASE" "${SWEEP[@]}" --out "$W/before-lean"
  measure "after-sweep-lean-$round" "$HERE" "${SWEEP[@]}" --out "$W/after-lean"
done
rm -rf "$W/before-keep" "$W/after-keep" "$W/before-lean" "$W/after-lean"
