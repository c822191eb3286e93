"""Speed and memory of a packaged real model on this machine: conversion, load, preflight, a short study.

    python benchmarks/real_models.py [smollm2-135m] [--keep-cache]

Conversion runs into a fresh temporary cache (so it is measured, not reused); load time and peak resident memory
in float32 and bfloat16; then the README's real-model commands as subprocesses, timed: preflight in float32 and
bfloat16, and a short study (2 repeats x 8 prompts x 32 tokens) with hooks, nnsight, pyvene and, when installed,
transformer_lens. Prints one line per figure; paste them into benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def timed(label: str, cmd: list[str], env: dict[str, str]) -> None:
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    tail = [ln for ln in done.stdout.splitlines() if " passed" in ln or " failed" in ln or "Phase 1:" in ln]
    print(f"{label}: {time.perf_counter() - started:.0f} s wall, exit {done.returncode}; {' | '.join(tail[-2:])}",
          flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?", default="smollm2-135m")
    ap.add_argument("--keep-cache", action="store_true", help="reuse the user cache instead of converting anew")
    args = ap.parse_args()
    env = dict(os.environ)
    if not args.keep_cache:
        env["PARITY_CACHE_DIR"] = os.environ["PARITY_CACHE_DIR"] = tempfile.mkdtemp(prefix="parity-cache-")
    import torch

    from parity_lib.models import loading, registry
    from parity_lib.models import packaged as real_models

    print(f"# {args.model} on {os.cpu_count()} CPU cores, torch {torch.__version__}, threads {torch.get_num_threads()}")
    started = time.perf_counter()
    path = real_models.ensure(args.model, say=lambda line: None)
    size = sum(p.stat().st_size for p in path.iterdir()) / 2**20
    print(f"conversion: {time.perf_counter() - started:.1f} s ({size:.0f} MiB directory)", flush=True)
    for dtype in ("float32", "bfloat16"):
        started = time.perf_counter()
        lm = loading.load(registry.parse_model(args.model), dtype)
        print(f"load {dtype}: {time.perf_counter() - started:.1f} s", flush=True)
        del lm
    print(f"peak resident memory so far: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")
    base = [sys.executable, "-m", "pytest", "parity_lib/suite", "-q", "-p", "no:cacheprovider",
            "--parity-model", args.model]
    with tempfile.TemporaryDirectory() as out:
        for dtype in ("float32", "bfloat16"):
            timed(f"preflight {dtype}", [*base, "-m", "preflight", "--parity-dtype", dtype,
                                        f"--parity-results-dir={out}/{dtype}/results",
                                        f"--parity-reports-dir={out}/{dtype}/reports"], env)
        tools = "hooks,nnsight,pyvene" + (",transformer_lens" if importlib.util.find_spec("transformer_lens") else "")
        timed(f"preflight + short study ({tools}; 2 x 8 x 32)",
              [*base, "-m", "preflight or study", "--parity-tools", tools, "--parity-repeats", "2",
               "--parity-n-eval", "8", "--parity-max-new-tokens", "32", f"--parity-results-dir={out}/s/results",
               f"--parity-reports-dir={out}/s/reports"], env)


if __name__ == "__main__":
    main()
