"""The firing map, the gate and the pairwise parity measures each fail on a planted fault."""

from __future__ import annotations

import pytest
import torch

from parity_lib.models.batching import encode
from parity_lib.prompts import format_all, load_prompts
from parity_lib.protocol.steering_parity import first_divergence, logit_gap
from parity_lib.run.firing import record_firing
from parity_lib.run.gate import gate
from parity_lib.tools import ToolPlugin, registered
from parity_lib.tools.registry import get_steerer
from parity_lib.tools.spec import SteeringSpec
from tests.conftest import registered_tools
from tests.planted import PLANTED_STEERERS, MlpOutput

PROMPTS = load_prompts()


FIRING_TOKENS = 12  # longer than any planted steerer's "first few steps"


def firing_problems(lm, steerer) -> list[str]:
    unit = torch.ones(lm.hidden_size, dtype=torch.float64) / lm.hidden_size ** 0.5
    spec = SteeringSpec.build(unit, 16, lm.n_layers, 0.5, "target_to_final")
    batch = encode(lm.tokenizer, format_all(lm.tokenizer, PROMPTS.eval[:3]), templated=True)
    with record_firing(lm, spec, steerer=steerer) as log:
        new = steerer.generate(lm, batch, spec, FIRING_TOKENS)
    size = log.size_problem()
    return log.mismatches(spec, lm.n_layers, new.shape[1]) + ([size] if size else [])


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("tool", registered_tools())
def test_firing_map_matches_spec_for_real_steerers(tiny, tool, dtype):
    steerer = get_steerer(tool)
    if getattr(steerer, "unobserved", None):
        pytest.skip(steerer.unobserved)
    assert firing_problems(tiny("gemma2-tiny", dtype), steerer) == []


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("planted", PLANTED_STEERERS,
                         ids=["nnsight-no-iter", "hooks-target-only", "pyvene-prompt-skipped", "stops-after-steps",
                              "some-rows"])
def test_firing_map_catches_planted_steerer(tiny, planted, dtype):
    assert firing_problems(tiny("gemma2-tiny", dtype), planted()) != []


def test_gate_closes_on_a_wrong_extractor(tiny, tmp_path):
    with registered(ToolPlugin("planted-mlp", MlpOutput)):
        status = gate(tiny("qwen2-tiny"), ("hooks", "planted-mlp"), PROMPTS, tmp_path / "none.json", {})
    assert not status.passed and "cross_tool [hooks~planted-mlp]" in status.failed
    assert "GATE CLOSED" in status.message()


def test_gate_opens_for_the_real_tools(tiny, tmp_path):
    assert gate(tiny("qwen2-tiny"), ("hooks", "nnsight", "pyvene"), PROMPTS, tmp_path / "none.json", {}).passed


def _record(tokens, logits):
    return {"new_tokens": tokens, "logits": {"ids": [[0, 1]], "values": [logits]}}


def test_pairwise_measures_see_a_one_token_and_a_small_logit_change():
    a, b = _record([[5, 6, 7]], [2.0, 1.0]), _record([[5, 9, 7]], [2.0, 1.002])
    assert first_divergence(a, b) == [{"prompt": 0, "token": 1, "a": [6, 7], "b": [9, 7]}]
    assert logit_gap(a, b)["max_abs"] == pytest.approx(0.002)
    assert first_divergence(a, a) == [] and logit_gap(a, a)["max_abs"] == 0.0
