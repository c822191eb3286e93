"""The compiled reference generation: exact where proven, refused where the proof fails.

On a CPU transformers' compiled decode step runs through dynamo alone (no CUDA graphs, no speed), which is
the same capture the GPU replays: hooks, the steering table and the static cache go through it unchanged,
so the proof's mechanics and its planted failures are tested here; the GPU run measures the speed.
"""

from __future__ import annotations

import pytest
import torch

from parity_lib.models.batching import encode
from parity_lib.prompts import format_all, load_prompts
from parity_lib.run.compiled import CompiledHooksSteerer, prove, reference_generation
from parity_lib.tools.hooks import HooksSteerer
from parity_lib.tools.spec import SteeringSpec
from tests.planted import PLANTED_COMPILED

PROMPTS = load_prompts()
TOKENS = 10


def setup(lm, multiplier: float = 0.5):
    unit = torch.ones(lm.hidden_size, dtype=torch.float64) / lm.hidden_size ** 0.5
    spec = SteeringSpec.build(unit, 16, lm.n_layers, multiplier, "target_to_final")
    batch = encode(lm.tokenizer, format_all(lm.tokenizer, PROMPTS.eval[:3]), templated=True)
    return spec, batch


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_compiled_path_is_proven_and_equals_eager(tiny, dtype):
    lm = tiny("qwen2-tiny", dtype)
    spec, batch = setup(lm)
    steerer = CompiledHooksSteerer(lm)
    proof = prove(lm, steerer, batch, spec, TOKENS)
    assert proof.ok, proof.reason
    assert proof.details["firing_target"]["mismatches"] == 0
    assert proof.details["firing_target_to_final"]["mismatches"] == 0
    # steering is data: another multiplier and the unsteered run through the same capture, token for token
    for other in (SteeringSpec.build(-spec.unit, 16, lm.n_layers, 3.0, "target"),
                  SteeringSpec((), 0.0, torch.zeros(lm.hidden_size, dtype=torch.float64), "target")):
        eager = HooksSteerer().generate(lm, batch, other, TOKENS)
        assert torch.equal(steerer.generate(lm, batch, other, TOKENS), eager)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("planted", PLANTED_COMPILED, ids=["stale-vector", "layers-fixed-at-capture"])
def test_proof_refuses_a_planted_compiled_steerer(tiny, planted, dtype):
    lm = tiny("gemma2-tiny", dtype)
    spec, batch = setup(lm)
    proof = prove(lm, planted(lm), batch, spec, TOKENS)
    assert not proof.ok and "firing map under the compiled path" in proof.reason


def test_unproven_path_falls_back_to_eager_and_says_why(tiny):
    lm = tiny("qwen2-tiny")
    spec, batch = setup(lm)
    lm.extras["compiled-steerer"] = PLANTED_COMPILED[0](lm)
    try:
        steerer, how = reference_generation(lm, batch, spec, TOKENS, "compiled")
    finally:
        del lm.extras["compiled-steerer"], lm.extras["compiled-proofs"]
    assert isinstance(steerer, HooksSteerer) and not isinstance(steerer, CompiledHooksSteerer)
    assert how["tried"] and how["path"].startswith("eager") and "firing map" in how["proof"]


def test_eager_is_the_default_and_says_so(tiny):
    lm = tiny("qwen2-tiny")
    spec, batch = setup(lm)
    steerer, how = reference_generation(lm, batch, spec, TOKENS, "eager")
    assert type(steerer) is HooksSteerer and not how["tried"] and "eager" in how["path"]
