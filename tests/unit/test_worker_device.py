"""xdist workers pin their own GPU: worker index modulo the visible GPUs, chosen before CUDA is used."""

from __future__ import annotations

import pytest
import torch

from parity_lib.plugin.configure import worker_device as _worker_device


class _Config:
    def __init__(self, worker: str | None) -> None:
        if worker is not None:
            self.workerinput = {"workerid": worker}


@pytest.mark.parametrize(("worker", "gpus", "want"), [
    ("gw0", 4, "cuda:0"), ("gw3", 4, "cuda:3"), ("gw5", 4, "cuda:1"), ("gw1", 1, "cuda:0"),
    (None, 4, "cuda"),
], ids=["gw0-of-4", "gw3-of-4", "gw5-wraps", "one-gpu", "controller"])
def test_worker_gets_its_own_gpu(monkeypatch, worker, gpus, want):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    assert _worker_device("cuda", _Config(worker)) == want


@pytest.mark.parametrize("device", ["cpu", "cuda:2"])
def test_explicit_device_is_kept(device):
    assert _worker_device(device, _Config("gw1")) == device
