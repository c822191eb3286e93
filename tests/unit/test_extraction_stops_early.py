"""Stopping the forward after layer L changes nothing: each extractor's early stop returns bitwise what the
full forward returns, leaves no hook behind, and the stop cannot leak into the next forward."""

from __future__ import annotations

import pytest
import torch

from parity_lib.models.batching import encode
from parity_lib.models.loading import replaced_forward
from parity_lib.prompts import format_all, load_prompts
from parity_lib.tools.hooks import HooksExtractor
from parity_lib.tools.pyvene_tool import PyveneExtractor

PROMPTS = load_prompts()


def hooks_left(lm) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in lm.model.modules())


@pytest.mark.parametrize("model", ["qwen2-tiny", "gemma2-tiny"])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("make", [HooksExtractor, PyveneExtractor], ids=["hooks", "pyvene"])
def test_early_stop_returns_the_full_forwards_tensor(tiny, model, dtype, make):
    lm = tiny(model, dtype)
    batch = encode(lm.tokenizer, format_all(lm.tokenizer, [*PROMPTS.harmful, *PROMPTS.harmless]),
                   templated=lm.templated, device=lm.device)
    before = hooks_left(lm)
    early = make().extract(lm, batch, lm.spec.layer)
    full = make(stop_early=False).extract(lm, batch, lm.spec.layer)
    assert torch.equal(early.resid, full.resid)
    assert hooks_left(lm) == before
    with torch.no_grad():  # the next plain forward runs to the end
        logits = lm.model(**batch.model_inputs(), use_cache=False).logits
    assert logits.shape[:2] == batch.input_ids.shape


@pytest.mark.parametrize("make", [HooksExtractor, PyveneExtractor], ids=["hooks", "pyvene"])
def test_early_stop_skips_the_layers_after_l(tiny, make):
    lm = tiny("qwen2-tiny")
    batch = encode(lm.tokenizer, format_all(lm.tokenizer, PROMPTS.harmful[:2]), templated=lm.templated,
                   device=lm.device)
    after = lm.layers[lm.spec.layer + 1]
    calls = []
    with replaced_forward(after, lambda inner: lambda *a, **kw: calls.append(1) or inner(*a, **kw)):
        make().extract(lm, batch, lm.spec.layer)
        assert calls == []
        make(stop_early=False).extract(lm, batch, lm.spec.layer)
        assert calls == [1]


def test_the_shared_model_guard_sees_a_removed_forward_and_a_left_hook(tiny):
    """The autouse guard of tests/conftest.py fails a test that deletes a tool's instance `forward` (what this
    file's own call counter once did to nnsight's controller on layer L+1) or leaves a hook registered, and
    passes one that restores both."""
    from tests.conftest import model_state, state_problems

    module = tiny("qwen2-tiny").layers[0].mlp
    with replaced_forward(module, lambda inner: inner):  # stands in for a tool's instrumentation
        before = model_state()
        with replaced_forward(module, lambda inner: lambda *a, **kw: inner(*a, **kw)):
            module.register_forward_hook(lambda *a: None).remove()
        assert state_problems(before, model_state()) == []
        del module.forward  # fault 1
        assert [p.split(" on ")[1].split(":")[:2] for p in state_problems(before, model_state())] == \
            [["qwen2-tiny", "model.layers.0.mlp"]]
        module.forward = before["forwards"][id(module)]
        handle = module.register_forward_hook(lambda *a: None)  # fault 2
        try:
            problems = state_problems(before, model_state())
        finally:
            handle.remove()
        assert len(problems) == 1 and "left 1 hook" in problems[0] and "model.layers.0.mlp" in problems[0]
