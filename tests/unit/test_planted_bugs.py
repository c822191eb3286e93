"""Every checklist item can fail: each planted wrong extractor is caught by the check it names."""

from __future__ import annotations

import pytest

from parity_lib.prompts import load_prompts
from parity_lib.run import checklist
from tests.planted import PLANTED

PROMPTS = load_prompts()
LAYER = 16


def run_check(name: str, lm, extractor):
    one = checklist.single(lm, PROMPTS.harmful[0])
    if name == "shape":
        return checklist.shape(lm, extractor, [one, checklist.divisible_length_batch(lm)], LAYER)
    if name == "token_position":
        return checklist.token_position(lm, extractor, checklist.position_batches(lm, PROMPTS), LAYER)
    return checklist.CHECKS[name](lm, extractor, one, LAYER)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("model", ["qwen2-tiny", "gemma2-tiny"])
@pytest.mark.parametrize("planted", PLANTED, ids=[p.name for p in PLANTED])
def test_planted_bug_is_caught(tiny, model, dtype, planted):
    result = run_check(planted.catches, tiny(model, dtype), planted())
    assert not result.passed, f"{planted.name} slipped past {planted.catches} in {dtype}: {result.message}"


@pytest.mark.parametrize("model", ["qwen2-tiny", "gemma2-tiny"])
def test_cross_tool_check_catches_wrong_layer(tiny, model):
    from parity_lib.tools.registry import get_extractor
    from tests.planted import LayerInput

    lm = tiny(model)
    result = checklist.cross_tool(lm, get_extractor("hooks"), LayerInput(), checklist.single(lm, PROMPTS.eval[0]),
                                  LAYER)
    assert not result.passed and "elements outside" in result.message


@pytest.mark.parametrize("model", ["qwen2-tiny", "gemma2-tiny"])
def test_isolation_check_catches_a_leaked_hook(tiny, model):
    from parity_lib.tools.registry import get_extractor

    lm = tiny(model)

    class LeaksHook:
        name = "planted-leak"

        def extract(self, lm, batch, layer):
            lm.layers[layer].register_forward_hook(lambda m, a, o: o + 1.0)
            return get_extractor("hooks").extract(lm, batch, layer)

    result = checklist.isolation(lm, get_extractor("nnsight"), [LeaksHook()],
                                 checklist.single(lm, PROMPTS.eval[0]), LAYER)
    for module in lm.model.modules():
        module._forward_hooks.clear()
    assert not result.passed, result.message
