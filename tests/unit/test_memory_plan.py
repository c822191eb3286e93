"""The memory planner: generate calls sized to the device, split without changing a token, an out-of-memory
retried smaller; processes that share a GPU take turns when their models do not fit together; faults of the
machine told apart from a tool's."""

from __future__ import annotations

import errno
import subprocess
import sys
import time

import pytest
import torch

from parity_lib.errors import DeviceOutOfMemoryError, ModelOverflowError, NonFiniteActivationError
from parity_lib.models import gpu_share, memory
from parity_lib.models.loading import load_once
from parity_lib.models.registry import parse_model
from parity_lib.prompts import load_prompts
from parity_lib.protocol import faults
from parity_lib.run.cycle import StudySettings, extract_direction
from parity_lib.run.generation import generate_packed_tokens, generate_tokens
from parity_lib.tools.spec import SteeringSpec

GIB = memory.GIB


@pytest.fixture(scope="module")
def prompts():
    return load_prompts()


def _specs(lm, prompts, n: int) -> list[SteeringSpec]:
    unit = extract_direction(lm, "hooks", prompts).unit
    settings = StudySettings()
    return [SteeringSpec.build(torch.roll(unit, i), lm.spec.layer, lm.n_layers, settings.multiplier_for(lm),
                               settings.scope) for i in range(n)]


def _room_for(monkeypatch, lm, rows: int, new_tokens: int, prompts=None) -> None:
    """The device has room for `rows` rows of this call (of `prompts`, else 64-token prompts) and no more."""
    from parity_lib.run.generation import prompt_width

    width = prompt_width(lm, prompts) if prompts else 64
    row = memory.row_cost(lm.model.config, lm.dtype, width, new_tokens).total
    monkeypatch.setattr(memory, "free_bytes", lambda device: int((memory.RESERVE + rows * row) / memory.USABLE) + 1)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_a_packed_call_split_to_fit_gives_the_unsplit_tokens(monkeypatch, prompts, dtype):
    lm = load_once(parse_model("qwen2-organism"), dtype)
    specs, evals = _specs(lm, prompts, 3), list(prompts.eval[:10])
    whole, plan = generate_packed_tokens(lm, specs, evals, 24)
    assert plan["calls_made"] == 1, plan
    _room_for(monkeypatch, lm, 7, 24, evals)
    split, plan = generate_packed_tokens(lm, specs, evals, 24)
    assert plan["calls_made"] == plan["calls"] > 3, plan
    assert split == whole


def test_a_generate_call_split_to_fit_gives_the_unsplit_tokens(monkeypatch, prompts):
    lm = load_once(parse_model("gemma2-organism"), "float32")
    spec, evals = _specs(lm, prompts, 1)[0], list(prompts.eval[:8])
    whole, how = generate_tokens(lm, "hooks", spec, evals, 24)
    _room_for(monkeypatch, lm, 3, 24, evals)
    split, how_split = generate_tokens(lm, "hooks", spec, evals, 24)
    assert how_split["plan"]["calls_made"] == 3 and how["plan"]["calls_made"] == 1, (how, how_split)
    assert split == whole


def test_an_out_of_memory_retries_smaller_before_failing():
    seen = []

    def call(chunk):
        seen.append(len(chunk))
        if len(chunk) > 3:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.00 GiB")
        return [x * 2 for x in chunk]

    out, calls = memory.in_calls(list(range(10)), 10, call, "test")
    assert out == [x * 2 for x in range(10)]
    assert seen[:3] == [10, 5, 2] and calls == 5, seen


def test_an_out_of_memory_on_one_row_names_the_figures():
    def call(chunk):
        raise torch.OutOfMemoryError("CUDA out of memory")

    with pytest.raises(DeviceOutOfMemoryError, match=r"gemma: out of device memory even one row at a time "
                                                     r"\(needs ≈ 2\.0 GiB for one row"):
        memory.in_calls([1, 2, 3, 4], 4, call, "gemma", row_bytes=2 * GIB, device="cpu")


def test_kv_cache_per_token_matches_the_configs():
    """Gemma-2-9B: 42 layers × 8 KV heads × 256 × 2 × 2 bytes; Qwen2.5-7B: 28 × 4 × 128 × 2 × 2 (bfloat16)."""
    from parity_lib.models.shapes import build_config

    gemma, qwen = (build_config(parse_model(n)) for n in ("gemma-9b-shape", "qwen-7b-shape"))
    assert memory.kv_bytes_per_token(gemma, torch.bfloat16) == 42 * 8 * 256 * 2 * 2
    assert memory.kv_bytes_per_token(qwen, torch.bfloat16) == 28 * 4 * 128 * 2 * 2
    weights = memory.estimate_weights(gemma, torch.bfloat16)
    assert 17.0 * GIB < weights < 17.5 * GIB, weights / GIB


def test_the_plan_says_what_it_needs(monkeypatch, prompts):
    lm = load_once(parse_model("qwen2-organism"), "float32")
    _room_for(monkeypatch, lm, 30, 256)
    plan = memory.plan(lm, 120, 64, 256)
    assert (plan.rows_per_call, plan.calls) == (30, 4), plan
    assert plan.describe().startswith("weights 0.0 GiB, ") and "120 rows of ≈ " in plan.describe()
    assert memory.plan(lm, 120, 64, 256, at_most=20).rows_per_call == 20


@pytest.fixture
def ledger(monkeypatch, tmp_path):
    """A 10 GiB card whose ledger lives in tmp_path (the bookkeeping is the same on any device)."""
    monkeypatch.setattr(gpu_share, "ledger_path", lambda index: tmp_path / "ledger.json")
    monkeypatch.setattr(gpu_share, "card_bytes", lambda index: 10 * GIB)
    monkeypatch.setattr(gpu_share, "device_free_bytes", lambda device: 10 * GIB)
    monkeypatch.setattr(gpu_share, "POLL_S", 0.1)
    return tmp_path / "ledger.json"


def _hold(path, need: int, seconds: float) -> subprocess.Popen:
    """Another process (another xdist worker) holding `need` bytes of the card for `seconds`."""
    code = (f"import json, os, time, pathlib; p = pathlib.Path({str(path)!r}); "
            f"p.write_text(json.dumps({{'x': {{'pid': os.getpid(), 'bytes': {need}, 'label': 'gw1 gemma'}}}})); "
            f"time.sleep({seconds})")
    proc = subprocess.Popen([sys.executable, "-c", code])
    while not path.exists():
        time.sleep(0.05)
    return proc


def test_models_that_do_not_fit_together_take_turns(ledger):
    other = _hold(ledger, 7 * GIB, 2.0)
    heard, started = [], time.monotonic()
    booking = gpu_share.book(torch.device("cuda", 0), 6 * GIB, "gw0 qwen", heard.append)
    waited = time.monotonic() - started
    other.wait()
    assert waited > 1.0 and len(heard) == 1, (waited, heard)
    assert "gw0 qwen: waiting for cuda:0" in heard[0] and "gw1 gemma (7.0 GiB)" in heard[0], heard
    booking.release()


def test_models_that_fit_together_share_the_card(ledger):
    other = _hold(ledger, 4 * GIB, 5.0)
    heard, started = [], time.monotonic()
    booking = gpu_share.book(torch.device("cuda", 0), 5 * GIB, "gw0 qwen", heard.append)
    assert time.monotonic() - started < 1.0 and not heard
    assert gpu_share.booked_by_others(0) == 4 * GIB
    booking.release()
    other.kill()


@pytest.mark.parametrize("exc, title", [
    (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), faults.DEVICE_MEMORY),
    (DeviceOutOfMemoryError("gemma: out of device memory"), faults.DEVICE_MEMORY),
    (MemoryError(), faults.HOST_MEMORY),
    (ModelOverflowError("FLOAT16 OVERFLOW on m from layer 20: ..."), "FLOAT16 OVERFLOW"),
    (OSError(errno.ENOSPC, "No space left on device"), faults.DISK),
    (RuntimeError("CUDA error: an illegal memory access was encountered"), faults.CUDA),
], ids=["torch-oom", "planner-oom", "host", "float16", "disk", "cuda"])
def test_machine_faults_are_recognised(exc, title):
    fault = faults.classify(exc)
    assert fault is not None and fault.title == title, fault


@pytest.mark.parametrize("exc", [
    NonFiniteActivationError("planted: the layer output holds 3 NaN/Inf values"),  # one tool's NaN: the tool's
    AssertionError("cross_tool: max |Δ| 0.3"), ValueError("bad shape"), RuntimeError("shape mismatch"),
], ids=["tool-nan", "assertion", "value", "runtime"])
def test_a_tools_own_error_is_not_a_machine_fault(exc):
    assert faults.classify(exc) is None


def test_a_fault_wrapped_by_the_suite_is_still_a_fault():
    try:
        try:
            raise torch.OutOfMemoryError("CUDA out of memory")
        except torch.OutOfMemoryError as inner:
            raise RuntimeError("cycle failed") from inner
    except RuntimeError as outer:
        assert faults.classify(outer).kind == faults.DEVICE_MEMORY


def test_a_check_whose_extractor_runs_out_of_memory_is_not_a_failed_check(prompts):
    """A crashing extractor fails its check (the tool's fault); a machine fault inside it propagates instead."""
    from parity_lib.run import checklist
    from tests.planted import OutOfMemoryOnGemma

    lm = load_once(parse_model("gemma2-organism"), "float32")
    with pytest.raises(torch.OutOfMemoryError):
        checklist.residual_location(lm, OutOfMemoryOnGemma(), checklist.single(lm, prompts.harmful[0]), 16)
