#!/usr/bin/env bash
# The whole report at the report's own settings: every claim case at `paper` scale, timed.
#
#   bash benchmarks/gpu_paper.sh                 # on a GPU machine: paper scale, 8 xdist workers
#   bash benchmarks/gpu_paper.sh smoke 2         # the same script end to end on a CPU, in minutes
#
# Writes figures/<scale>/ (or $HW1_DEVICE_OUT): records, figures, INDEX.md, environment.json
# naming the device, the pytest log (run.log) and timing.md (every case's time; python -m
# benchmarks.timing). The run cache is the default one, so a rerun after an interruption trains
# only what is missing.
# Exit status: pytest's (a claim that does not reproduce at paper scale fails the run; the
# records and the timing are written either way).
set -uo pipefail
cd "$(dirname "$0")/.."
scale=${1:-paper}
workers=${2:-8}
out=${HW1_DEVICE_OUT:-figures/$scale}
mkdir -p "$out"
start=$(date +%s)
python3 -m pytest claims/ --scale "$scale" -n "$workers" --figures-dir "$out" --durations=0 -q 2>&1 | tee "$out/run.log"
status=${PIPESTATUS[0]}
wall=$(( $(date +%s) - start ))
python3 -m benchmarks.timing "$out" --wall "$wall" > "$out/timing.md"
cat "$out/timing.md"
exit "$status"
