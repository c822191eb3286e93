"""The real tools pass every Section D check in float32 *and* bfloat16 (on CPU here; the GPU run is in
benchmarks/RESULTS.md): the checks decide by hypothesis and measured noise floor, not by fp32 constants."""

from __future__ import annotations

from itertools import combinations

import pytest

from parity_lib.prompts import load_prompts
from parity_lib.run import checklist
from parity_lib.tools import required_attention
from parity_lib.tools.registry import get_extractor
from tests.conftest import registered_tools

PROMPTS = load_prompts()
BUILTIN = ("hooks", "nnsight", "pyvene")


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("model", ["qwen2-organism", "gemma2-organism", "qwen2-tiny"])
def test_real_tools_pass_every_check(tiny, model, dtype):
    _passes_every_check(tiny, model, dtype, BUILTIN)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("model", ["qwen2-organism", "gemma2-organism"])
@pytest.mark.parametrize("tool", [t for t in registered_tools() if t.values[0] not in BUILTIN])
def test_every_registered_tool_passes_every_check_beside_the_builtin_ones(tiny, model, dtype, tool):
    _passes_every_check(tiny, model, dtype, (*BUILTIN, tool))


def _passes_every_check(tiny, model, dtype, tools):
    lm = tiny(model, dtype, required_attention(tools)[0])
    layer, given = lm.spec.layer, checklist.inputs(lm, PROMPTS)
    one = given.one
    results = []
    for tool in tools:
        ex = get_extractor(tool)
        others = [get_extractor(t) for t in tools if t != tool]
        results += [checklist.residual_location(lm, ex, one, layer),
                    checklist.shape(lm, ex, [one, checklist.divisible_length_batch(lm)], layer),
                    checklist.dtype(lm, ex, one, layer),
                    checklist.token_position(lm, ex, given.position, layer),
                    checklist.timing(lm, ex, one, layer),
                    checklist.in_place_safety(lm, ex, one, layer),
                    checklist.isolation(lm, ex, others, one, layer)]
    results += [checklist.cross_tool(lm, get_extractor(a), get_extractor(b), given.cross_tool, layer)
                for a, b in combinations(tools, 2)]
    failed = [r.message for r in results if not r.passed]
    assert not failed, "\n".join(failed)
