"""A sweep extracts every layer it visits in one forward pass per tool (`extract_layers`): the same bits as one
layer at a time, for every registered tool in float32 and bfloat16; and the sweep's own check at the model's layer
(`test_one_pass_extraction_is_the_one_layer_extraction`) catches a tool whose multi-layer path is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from parity_lib.prompts import load_prompts
from parity_lib.run.cycle import StudySettings
from parity_lib.run.sweep import SweepSettings, SweepStore
from parity_lib.storage.provenance import provenance
from parity_lib.tools import ToolPlugin, registered, required_attention
from parity_lib.tools.base import Activations, extract_layers
from parity_lib.tools.hooks import HooksExtractor
from parity_lib.tools.registry import get_extractor
from tests.conftest import registered_tools

PROMPTS = load_prompts()


class OnePassOffByOne(HooksExtractor):
    """Right one layer at a time; its all-layer path hands each layer the next layer's output."""

    name = "planted-one-pass-off-by-one"

    def extract(self, lm, batch, layer):
        return HooksExtractor.extract_many(self, lm, batch, [layer])[layer]

    def extract_many(self, lm, batch, layers):
        got = super().extract_many(lm, batch, [min(x + 1, lm.n_layers - 1) for x in layers])
        return {x: got[min(x + 1, lm.n_layers - 1)] for x in layers}


class ExtractOnlyOverride(HooksExtractor):
    """Overrides `extract` (its output doubled) and inherits `extract_many`: the sweep must use its own
    `extract`, not the parent's one-pass path."""

    name = "planted-extract-only"

    def extract(self, lm, batch, layer):
        acts = super().extract(lm, batch, layer)
        return Activations(acts.resid * 2, acts.last * 2)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("model", ["qwen2-organism", "gemma2-organism"])
@pytest.mark.parametrize("tool", registered_tools())
def test_one_pass_gives_every_layer_bitwise(tiny, model, dtype, tool):
    lm = tiny(model, dtype, required_attention((tool,))[0])
    batch = lm.encode([*PROMPTS.harmful, *PROMPTS.harmless])
    layers = [0, lm.spec.layer // 2, lm.spec.layer, lm.n_layers - 1]
    ex = get_extractor(tool)
    together = extract_layers(ex, lm, batch, layers)
    assert sorted(together) == layers
    for layer in layers:
        alone = ex.extract(lm, batch, layer)
        assert together[layer].resid.dtype == alone.resid.dtype == lm.dtype
        assert torch.equal(together[layer].resid, alone.resid), f"{tool} layer {layer}: one pass ≠ one layer"
    assert not torch.equal(together[0].resid, together[layers[1]].resid), "distinct layers must differ"


def test_a_tool_that_overrides_only_extract_is_extracted_one_layer_at_a_time(tiny):
    lm = tiny("qwen2-organism")
    batch = lm.encode(PROMPTS.harmful[:2])
    got = extract_layers(ExtractOnlyOverride(), lm, batch, [4, 8])
    want = HooksExtractor().extract(lm, batch, 8).resid * 2
    assert torch.equal(got[8].resid, want)


def _store(tmp_path: Path, tools: tuple[str, ...]) -> SweepStore:
    prov = lambda **extra: provenance(dtype="float32", device="cpu", seed=42, prompt_sha256=PROMPTS.sha256, **extra)
    return SweepStore(tmp_path, PROMPTS, StudySettings(n_eval=2, max_new_tokens=2),
                      SweepSettings(layers="4,16", multipliers=(4.0,)), tools, "code", prov, log=lambda line: None)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_the_sweep_check_catches_a_wrong_one_pass_path_and_passes_the_real_tools(tmp_path, tiny, dtype):
    planted = ToolPlugin(OnePassOffByOne.name, OnePassOffByOne, None, "planted: one pass off by one layer")
    lm = tiny("qwen2-organism", dtype)
    with registered(planted):
        data = _store(tmp_path, ("hooks", "nnsight", "pyvene", planted.name)).layer(lm, lm.spec.layer)
    checks = data["one_pass"]
    assert all(checks[t]["max_abs"] == 0.0 for t in ("hooks", "nnsight", "pyvene")), checks
    assert checks[planted.name]["max_abs"] > 0 and checks[planted.name]["cos"] < 1, checks[planted.name]
    assert checks["hooks"]["extracted_with"] == [4, 16]
    again = _store(tmp_path, ("hooks",)).layer(lm, 4)  # the other layer: on disk from that one pass
    assert again["one_pass"] is None and again["directions"]["hooks"]


def test_the_sweep_test_fails_on_the_wrong_one_pass_path(tmp_path, tiny):
    """The sweep's test function itself, given the planted tool's check."""
    from parity_lib.suite.sweep.test_sweep import test_one_pass_extraction_is_the_one_layer_extraction as check

    planted = ToolPlugin(OnePassOffByOne.name, OnePassOffByOne, None, "planted: one pass off by one layer")
    lm = tiny("qwen2-organism")
    with registered(planted):
        data = _store(tmp_path, ("hooks", planted.name)).layer(lm, lm.spec.layer)
    check(data, "hooks")
    with pytest.raises(AssertionError, match="multi-layer path returns other tensors"):
        check(data, planted.name)
