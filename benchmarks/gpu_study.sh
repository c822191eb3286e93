#!/usr/bin/env bash
# The full bf16 study of both 7B/9B shapes on one GPU, as measured for benchmarks/RESULTS.md.
# Usage: bash benchmarks/gpu_study.sh OUTDIR [extra pytest options, e.g. --parity-deterministic -n 2]
# Environment: MODELS (default: both shapes), STUDY_TIMEOUT (seconds, default 540).
# Wheels for the tools may travel in .whl/ (a GPU box without an index); they are installed first.
set -u
out=$1; shift
. "$(dirname "$0")/gpu_env.sh"
start=$(date +%s)
timeout "${STUDY_TIMEOUT:-540}" python3 -m pytest -m "preflight or study" -p no:cacheprovider \
  ${MODELS:---parity-model qwen-7b-shape --parity-model gemma-9b-shape} --parity-device cuda --parity-dtype bfloat16 \
  --parity-results-dir="$out/results" --parity-reports-dir="$out/reports" -rs "$@" > "$out/pytest.txt" 2>&1
echo "exit $? wall $(( $(date +%s) - start )) s" | tee -a "$out/pytest.txt"
tail -n 30 "$out/pytest.txt"
