#!/usr/bin/env bash
# The both-shapes bf16 study on one big GPU, capped as a 24 GB and a 40 GB card would be, then uncapped; are the
# directions and tokens the same? (benchmarks/cap_memory.py caps each process's CUDA allocator.)
# Usage: bash benchmarks/gpu_hardware.sh OUT [extra pytest options, e.g. --parity-deterministic]
# Environment: STUDY_TIMEOUT (seconds per run, default 175: three runs fit one 10-minute device call only when
# each is that short), RUNS (default "cap22 cap38 uncapped": the most telling first, should time run out),
# MODELS (gpu_study.sh's), WORK (result trees, default /tmp/hw: deeper than OUT's files may be).
# Writes OUT/<run>/{pytest.txt,gpu.txt} (gpu.txt ends with nvidia-smi's peak memory.used), OUT/compare.txt
# (compare_results.py uncapped vs each cap) and OUT/results.tgz (every run's results and reports trees).
# gpu_study.sh installs the wheels in .whl/ (to /tmp/site) before each run.
set -u
out=$1; shift
work=${WORK:-/tmp/hw}
export STUDY_TIMEOUT=${STUDY_TIMEOUT:-175} PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
mkdir -p "$out" "$work"
for run in ${RUNS:-cap22 cap38 uncapped}; do
  rm -rf "${work:?}/$run"
  case $run in cap*) cap=(-p benchmarks.cap_memory); export PARITY_CAP_GIB=${run#cap} ;;
               *) cap=(); unset PARITY_CAP_GIB ;; esac
  echo "== $run (PARITY_CAP_GIB=${PARITY_CAP_GIB:-none}, timeout ${STUDY_TIMEOUT} s)"
  nvidia-smi --query-gpu=index,memory.used --format=csv,noheader,nounits -lms 500 > "$work/$run.smi" 2>/dev/null &
  smi=$!
  bash benchmarks/gpu_study.sh "$out/$run" "${cap[@]}" -n 2 --dist loadgroup \
    --parity-results-dir="$work/$run/results" --parity-reports-dir="$work/$run/reports" "$@"
  kill "$smi" 2>/dev/null; wait "$smi" 2>/dev/null
  awk -F', *' '$2 > m[$1] {m[$1] = $2} END {for (g in m) printf "peak memory.used gpu%s: %d MiB\n", g, m[g]}' \
    "$work/$run.smi" | tee -a "$out/$run/gpu.txt"
done
unset PARITY_CAP_GIB
for run in ${RUNS:-cap22 cap38 uncapped}; do
  [ "$run" != uncapped ] && [ -d "$work/uncapped/results" ] && [ -d "$work/$run/results" ] &&
    { echo "### uncapped (A) vs $run (B)"; python3 benchmarks/compare_results.py "$work/uncapped" "$work/$run"; echo; }
done > "$out/compare.txt" 2>&1
grep -E '^###|^same directions' "$out/compare.txt"
tar -czf "$out/results.tgz" -C "$work" $(cd "$work" && ls -d */ 2>/dev/null)
