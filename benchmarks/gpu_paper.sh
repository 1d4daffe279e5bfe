#!/usr/bin/env bash
# The whole report at the report's own settings: every claim case at `paper` scale, timed.
#
#   bash benchmarks/gpu_paper.sh                 # on a GPU machine: paper scale, 8 xdist workers
#   bash benchmarks/gpu_paper.sh smoke 2         # the same script end to end on a CPU, in minutes
#   HW1_BUDGET_S=480 bash benchmarks/gpu_paper.sh paper 8 --claim cnn-depth --claim dnn-depth
#                                                # a part of it, stopped after 8 minutes
#
# Arguments after the scale and the worker count go to pytest (--claim, -k). HW1_BUDGET_S stops
# pytest (SIGINT, as Ctrl-C: the cases that finished keep their records) after that many seconds;
# a GPU session with minutes to spend runs the cases it can afford (benchmarks/README.md, "What
# `paper` scale costs", gives each case's measured cost) and says which ran.
#
# Writes figures/<scale>/ (or $HW1_DEVICE_OUT): records, figures, INDEX.md, environment.json
# naming the device, the pytest log (run.log) and timing.md (every case's time; python -m
# benchmarks.timing). The run cache is the default one, so a rerun after an interruption trains
# only what is missing.
# CUDA graphs (HW1_CUDA_GRAPH=1: each Adam step one graph, hw1.train.CudaGraphs) are turned on only
# where this device first passes their tests (graph replay = eager with the same fused Adam, bit
# for bit; = the eager loop to float rounding): graph_check.log. HW1_CUDA_GRAPH=0 or 1 beforehand
# skips the check and decides. The choice is in environment.json (knobs) and the run key.
# Exit status: pytest's (a claim that does not reproduce at paper scale fails the run; the
# records and the timing are written either way).
set -uo pipefail
cd "$(dirname "$0")/.."
scale=${1:-paper}
workers=${2:-8}
shift $(( $# < 2 ? $# : 2 ))
out=${HW1_DEVICE_OUT:-figures/$scale}
mkdir -p "$out"
if [ -z "${HW1_CUDA_GRAPH:-}" ]; then
  export HW1_CUDA_GRAPH=0
  if python3 -c "import sys, torch; sys.exit(not torch.cuda.is_available())" &&
     python3 -m pytest tests/test_train_loop.py -q -p no:cacheprovider -k cuda_graphs > "$out/graph_check.log" 2>&1; then
    export HW1_CUDA_GRAPH=1
  fi
fi
echo "HW1_CUDA_GRAPH=$HW1_CUDA_GRAPH (CUDA graphs $( [ "$HW1_CUDA_GRAPH" = 1 ] && echo on || echo off ))"
start=$(date +%s)
limit=()
[ -n "${HW1_BUDGET_S:-}" ] && limit=(timeout --signal=INT --kill-after=60 "$HW1_BUDGET_S")
"${limit[@]}" python3 -m pytest claims/ --scale "$scale" -n "$workers" --figures-dir "$out" --durations=0 -q "$@" 2>&1 | tee "$out/run.log"
status=${PIPESTATUS[0]}
wall=$(( $(date +%s) - start ))
notes=(--note "CUDA graphs: $( [ "$HW1_CUDA_GRAPH" = 1 ] && echo on || echo off ) (HW1_CUDA_GRAPH=$HW1_CUDA_GRAPH).")
[ $# -gt 0 ] && notes+=(--note "pytest arguments: $*")
[ "$status" = 124 ] && notes+=(--note "Stopped at the budget (HW1_BUDGET_S=$HW1_BUDGET_S s): only the cases below finished.")
python3 -m benchmarks.timing "$out" --wall "$wall" "${notes[@]}" > "$out/timing.md" ||
  printf '# Timing\n\nNo claim case finished (%s s).\n' "$wall" > "$out/timing.md"
cat "$out/timing.md"
exit "$status"
