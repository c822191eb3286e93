"""Does organism training give the same weights on another CPU? Simulated here by forcing the kernels another
machine would run: ATen's vector width (ATEN_CPU_CAPABILITY), MKL's code path (MKL_ENABLE_INSTRUCTIONS,
MKL_CBWR), oneDNN's (ONEDNN_MAX_CPU_ISA). Each variant trains the Qwen2 organism (one thread, deterministic
algorithms, the recipe's seed) for a few steps in its own process and prints the weights' sha256 and the largest
difference from the first variant.

    python benchmarks/organism_reproducibility.py [--steps 30] [--organism qwen2]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from parity_lib.organisms.kernels import PORTABLE

VARIANTS = {
    "this machine (AVX512 ATen, MKL auto)": {},
    "ATen AVX2": {"ATEN_CPU_CAPABILITY": "avx2"},
    "MKL AVX2": {"MKL_ENABLE_INSTRUCTIONS": "AVX2"},
    "an AVX2-only machine (ATen + MKL + oneDNN AVX2)": {"ATEN_CPU_CAPABILITY": "avx2",
                                                        "MKL_ENABLE_INSTRUCTIONS": "AVX2",
                                                        "ONEDNN_MAX_CPU_ISA": "AVX2"},
    "portable (ATen default, MKL_CBWR=COMPATIBLE)": {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE"},
    "portable on an AVX2-only machine": {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE",
                                         "MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
    "portable AVX2 (what the build uses: kernels.PORTABLE)": PORTABLE,
    "portable AVX2 on an AVX2-only machine": {**PORTABLE, "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
}

CHILD = r"""
import dataclasses, hashlib, json, sys, time, torch
from parity_lib.organisms import SPECS, build_corpus, load_paper
from parity_lib.organisms.build import tokenizer_texts
from parity_lib.organisms.tokenizer import build_tokenizer
from parity_lib.organisms.train import train
spec = SPECS[sys.argv[1]]
spec = dataclasses.replace(spec, train=dataclasses.replace(spec.train, steps=int(sys.argv[2])))
paper = load_paper()
corpus = build_corpus(paper, 0)
tok = build_tokenizer(tokenizer_texts(corpus))
start = time.perf_counter()
model, log = train(spec, tok, corpus, 0)
flat = torch.cat([p.detach().flatten() for p in model.parameters()]).double()
torch.save(flat, sys.argv[3])
print(json.dumps({"sha256": hashlib.sha256(flat.numpy().tobytes()).hexdigest(), "seconds": time.perf_counter() - start,
                  "loss": log.losses[-1][1], "capability": torch.backends.cpu.get_cpu_capability()}))
"""


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--organism", default="qwen2")
    parser.add_argument("--only", nargs="*", help="variant names (default: all)")
    args = parser.parse_args()
    import torch

    root = Path(__file__).resolve().parents[1]
    first = None
    print(f"{args.organism}, {args.steps} steps, torch {torch.__version__}, {os.cpu_count()} cores")
    for name, env in VARIANTS.items():
        if args.only and name not in args.only:
            continue
        out = Path(f"/tmp/organism-repro-{hashlib.sha1(name.encode()).hexdigest()[:8]}.pt")
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", CHILD, args.organism, str(args.steps), str(out)], cwd=root,
                              env={**os.environ, **env, "PYTHONPATH": str(root)}, capture_output=True, text=True)
        if done.returncode:
            print(f"{name}: failed\n{done.stderr[-2000:]}")
            continue
        got = json.loads(done.stdout.strip().splitlines()[-1])
        flat = torch.load(out)
        first = first if first is not None else flat
        diff = float((flat - first).abs().max())
        print(f"{name:50s} sha256 {got['sha256'][:12]}  max|Δw| vs first {diff:.3g}  loss {got['loss']}  "
              f"ATen {got['capability']}  {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
