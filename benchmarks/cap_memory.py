"""Cap each pytest process's CUDA memory: a stand-in for a 24 GB / 40 GB card on a big GPU (an 80 GB H100).

`PARITY_CAP_GIB=22 python -m pytest -p benchmarks.cap_memory ...` (repo root on sys.path) limits PyTorch's
caching allocator to that many GiB on every visible device, so an out-of-memory on a smaller card shows up
here as the same `torch.cuda.OutOfMemoryError`. The cap is per process: each xdist worker gets its own (xdist
hands workers the controller's -p options and environment); the controller runs no tests and takes no CUDA
context. The CUDA context itself (~0.5 GiB) is outside the cap.
"""

from __future__ import annotations

import os
import sys

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    cap = os.environ.get("PARITY_CAP_GIB")
    opt = config.option  # an xdist controller (distributing to workers) runs no tests: no CUDA context there
    controller = getattr(opt, "dist", "no") != "no" and bool(getattr(opt, "tx", None))
    if not cap or (controller and not hasattr(config, "workerinput")):
        return
    import torch

    if not torch.cuda.is_available():
        return
    cap_bytes = float(cap) * 2**30
    fractions = []
    for device in range(torch.cuda.device_count()):
        fraction = min(1.0, cap_bytes / torch.cuda.get_device_properties(device).total_memory)
        torch.cuda.set_per_process_memory_fraction(fraction, device)
        fractions.append(f"cuda:{device} {fraction:.3f}")
    worker = getattr(config, "workerinput", {}).get("workerid", "main")
    print(f"cap_memory[{worker}]: {cap} GiB per device ({', '.join(fractions)})", file=sys.stderr)
