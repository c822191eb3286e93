"""Steering does what the spec says: the firing map, and batching does not change the tokens."""

from __future__ import annotations

import pytest

from parity_lib.batching import encode
from parity_lib.cycle import extract_direction
from parity_lib.prompts import format_all
from parity_lib.steering import SteeringSpec, get_steerer
from parity_lib.steering.firing import record_firing

pytestmark = pytest.mark.study

FIRING_PROMPTS = 3
FIRING_TOKENS = 6
BATCH_PROMPTS = 12  # one-by-one generation is the slow side of this comparison
BATCH_TOKENS = 24


@pytest.fixture(scope="session")
def spec(loaded_model, suite) -> SteeringSpec:
    direction = extract_direction(loaded_model, "hooks", suite.prompts)
    return SteeringSpec.build(direction.unit, loaded_model.spec.layer, loaded_model.n_layers,
                              suite.settings.multiplier_for(loaded_model), suite.settings.scope)


def test_steering_fires_on_every_step_position_and_layer_of_the_spec(loaded_model, suite, spec, tool_name):
    lm = loaded_model
    batch = encode(lm.tokenizer, format_all(lm.tokenizer, suite.prompts.eval[:FIRING_PROMPTS]),
                   templated=lm.templated, device=lm.device)
    with record_firing(lm, spec) as log:
        new = get_steerer(tool_name).generate(lm, batch, spec, FIRING_TOKENS)
    problems = log.mismatches(spec, lm.n_layers, expected_steps=new.shape[1])
    where = f"{tool_name} ({spec.scope}, layers {spec.layers[0]}..{spec.layers[-1]})"
    assert not problems, f"{where}: " + "; ".join(problems[:6])
    assert log.max_error < 1e-2 * max(1.0, abs(spec.multiplier)), f"edit differs from m·v by {log.max_error}"


def test_batched_generation_matches_one_by_one(loaded_model, suite, spec):
    """Left padding + mask + mask-derived positions: the batch gives each prompt's own tokens."""
    lm, steerer = loaded_model, get_steerer("hooks")
    prompts = suite.prompts.eval[: min(suite.settings.n_eval or BATCH_PROMPTS, BATCH_PROMPTS)]
    tokens = min(suite.settings.max_new_tokens, BATCH_TOKENS)
    texts = format_all(lm.tokenizer, prompts)
    batched = steerer.generate(lm, encode(lm.tokenizer, texts, templated=lm.templated, device=lm.device), spec, tokens)
    where = []
    for i, text in enumerate(texts):
        alone = steerer.generate(lm, encode(lm.tokenizer, [text], templated=lm.templated, device=lm.device),
                                 spec, tokens)[0].tolist()
        row = batched[i].tolist()[: len(alone)]
        if row != alone:
            k = next(j for j, (x, y) in enumerate(zip(row, alone)) if x != y)
            where.append(f"prompt {i} ({prompts[i]!r}) first differs at token {k}: {row[k]} vs {alone[k]}")
    assert not where, "batched ≠ one-by-one: " + "; ".join(where)
