#!/usr/bin/env bash
# A sweep of both 7B/9B shapes on one GPU, bf16, timed, with the GPU's peak memory, for benchmarks/RESULTS.md.
# Usage: bash benchmarks/gpu_sweep.sh OUTDIR [extra pytest options]
# Environment: LAYERS (default 0.25,0.5,0.75: three depths, plus each model's own layer), SWEEP_TIMEOUT (s, 540).
# Wheels for the tools may travel in .whl/ (a GPU box without an index); they are installed first.
set -u
out=$1; shift
. "$(dirname "$0")/gpu_env.sh"
nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 500 > "$out/memory.txt" 2>&1 &
watcher=$!
start=$(date +%s)
PYTHONUNBUFFERED=1 timeout "${SWEEP_TIMEOUT:-540}" python3 -m pytest parity_lib/suite -m sweep -p no:cacheprovider \
  --parity-model qwen-7b-shape --parity-model gemma-9b-shape --parity-device cuda --parity-dtype bfloat16 \
  --parity-layers "${LAYERS:-0.25,0.5,0.75}" --parity-gen-batch-size 10 \
  --parity-results-dir="$out/results" --parity-reports-dir="$out/reports" -rs "$@" > "$out/pytest.txt" 2>&1
status=$?
kill $watcher 2>/dev/null
echo "exit $status wall $(( $(date +%s) - start )) s; peak GPU memory $(sort -n "$out/memory.txt" | tail -1) MiB" \
  | tee -a "$out/pytest.txt"
grep -E "parity: sweep .* L[0-9]+:" "$out/pytest.txt" | sed 's/^[.sEF]*//'
tail -n 8 "$out/pytest.txt"
