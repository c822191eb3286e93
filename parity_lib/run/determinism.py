"""`--parity-deterministic`: the switches that make GPU runs repeatable, applied before any CUDA work.

deterministic algorithms (error on an op without a deterministic kernel), a fixed cuBLAS workspace
(required by cuBLAS for deterministic GEMMs), no TF32, no reduced-precision bf16/fp16 reductions.
The attention implementation stays the model's own: measured on one H200 (Qwen2-7B shape, bf16, torch 2.11,
30 prompts x 256 tokens), SDPA under these switches gave token-identical reruns and tool runs, at 1.0x the
default run's wall time, where eager attention cost 2x. The study still measures reruns before it compares
tools, so a kernel that is not repeatable shows up as rerun noise, not as divergence. `--parity-attention
eager` forces eager attention.
"""

from __future__ import annotations

import os

import torch


def enable_determinism(seed: int) -> dict[str, object]:
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = False
    torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction = False
    torch.manual_seed(seed)
    return state()


def state() -> dict[str, object]:
    return {"deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
            "cublas_workspace": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
            "tf32": torch.backends.cuda.matmul.allow_tf32,
            "bf16_reduced_reduction": torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction}
