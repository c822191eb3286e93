"""Portable CPU kernels: organism training that gives the same floats on any x86-64 CPU with AVX2.

One thread and deterministic algorithms make training bit-exact on one machine, not across machines: the
float rounding of a training step depends on which kernels run, and both of the libraries under torch pick
them by the CPU. Measured (`benchmarks/organism_reproducibility.py`, Qwen2 organism, 20 steps, this
project's AVX512+AMX machine): forcing ATen's vector width to AVX2 (`ATEN_CPU_CAPABILITY`) or MKL's code path to
AVX2 (`MKL_ENABLE_INSTRUCTIONS`) each change the weights by ~3e-7 after 20 steps, and 600 chaotic steps make
that a different organism (a rebuild on this machine gave direction cosine 0.78 with the one built elsewhere).

The portable setting pins both to AVX2, which every x86-64 CPU since 2013–2015 runs: ATen's AVX2 kernels and
MKL's conditional numerical reproducibility mode for AVX2 (`MKL_CBWR=AVX2`), and oneDNN capped at AVX2. With
it, this machine and this machine made to look AVX2-only give the same weights, at the speed of the machine's
own kernels (34 s vs 32 s for 20 steps). These variables are read when torch loads, so a build started without
them re-executes itself with them (`python -m parity_lib.organisms …`; `--native-kernels` opts out).
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Mapping

PORTABLE: dict[str, str] = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"}


def supported() -> bool:
    """x86-64 with AVX2 (read from /proc/cpuinfo; elsewhere, e.g. ARM or macOS, the setting does not apply)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    try:
        return " avx2" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """`base` (default: this process's environment) with the portable kernels set."""
    return {**(os.environ if base is None else base), **PORTABLE}


def in_effect() -> bool:
    """Whether this process runs the portable kernels (the variables set before torch loaded)."""
    import torch

    return all(os.environ.get(k) == v for k, v in PORTABLE.items()) and \
        torch.backends.cpu.get_cpu_capability() == "AVX2"


def describe() -> str:
    """What the card records about the kernels that trained the weights."""
    import torch

    if in_effect():
        return "portable: ATen AVX2, MKL_CBWR=AVX2, oneDNN ≤ AVX2 (the same floats on any x86-64 CPU with AVX2)"
    mkl = os.environ.get("MKL_CBWR", "auto")
    return (f"this machine's own: ATen {torch.backends.cpu.get_cpu_capability()}, MKL_CBWR={mkl} "
            f"({platform.machine()}; a rebuild elsewhere gives other floats)")
