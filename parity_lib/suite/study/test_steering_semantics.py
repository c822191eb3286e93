"""Steering does what the spec says over the whole generation, and batching does not change the tokens."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from parity_lib.run.cycle import extract_direction
from parity_lib.run.firing import record_firing, record_packed_firing
from parity_lib.tools.registry import get_steerer, steering_tool
from parity_lib.tools.spec import SteeringSpec

pytestmark = pytest.mark.study

BATCH_PROMPTS = 12  # one-by-one generation is the slow side of this comparison
BATCH_TOKENS = 24
SHORT_STEPS = 32  # firing map of a steerer the study does not generate with: its mechanism, over this many steps


@pytest.fixture(scope="session")
def spec(loaded_model, suite) -> SteeringSpec:
    direction = extract_direction(loaded_model, "hooks", suite.prompts)
    return SteeringSpec.build(direction.unit, loaded_model.spec.layer, loaded_model.n_layers,
                              suite.settings.multiplier_for(loaded_model), suite.settings.scope)


def packed_specs(spec: SteeringSpec, n: int) -> list[SteeringSpec]:
    """`n` specs on the spec's layers with different unit vectors (the unit rotated by one coordinate each):
    a packed steerer that gave one block's vector to another block's rows shows in the firing map."""
    return [replace(spec, unit=torch.roll(spec.unit, shifts=i)) for i in range(n)]


def test_steering_fires_on_every_step_row_position_and_layer_of_the_spec(loaded_model, suite, spec, tool_name,
                                                                        store, record_note):
    """The study's own generation: every evaluation prompt, every decode step up to --parity-max-new-tokens,
    every layer; the edit is m·v up to the rounding of one add in the model dtype. Under packing the reference
    steerer is mapped as the study runs it: when this process generated the cycles, the map recorded during
    the model's first packed call (every tool's block with its own direction, the baseline block edited
    nowhere); otherwise one call with a different vector per block (split into as many calls as the device's
    memory needs, each mapped whole). A tool's own steerer that this study
    does not generate with (--parity-steer-with hooks) is mapped over the first SHORT_STEPS steps only: a
    check of its mechanism, not of the study's generation."""
    from parity_lib.tools.hooks import generate_packed

    lm, steerer, settings = loaded_model, get_steerer(tool_name), suite.settings
    if getattr(steerer, "unobserved", None):
        pytest.skip(steerer.unobserved)
    used = settings.steer_with == "same" or steering_tool(tool_name) == "hooks"
    steps = settings.max_new_tokens if used else min(settings.max_new_tokens, SHORT_STEPS)
    packed = used and steering_tool(tool_name) == "hooks" and settings.packs(len(suite.tools))
    recorded = store.firing.get(lm.spec.name) if packed else None
    steered_rows, source, blocks = None, "a generation of its own", len(suite.tools)
    if recorded is not None:
        log, spec, steered_rows = recorded["log"], recorded["spec"], recorded["steered_rows"]
        expected_steps, blocks = recorded["steps"], len(recorded["blocks"])
        source = f"the study's r{recorded['repeat']} call ({', '.join(recorded['blocks'])})"
        maps = [(log, expected_steps)]
    else:
        prompts = list(suite.prompts.eval[: settings.n_eval or None])
        specs = packed_specs(spec, len(suite.tools)) if packed else [spec]
        maps = []
        for chunk in _calls(lm, prompts, len(specs), steps):  # as many calls as the device's memory needs
            batch = lm.encode(chunk)
            if packed:
                with record_packed_firing(lm, specs, len(batch)) as log:
                    new = generate_packed(lm, batch, specs, steps)[0]
            else:
                with record_firing(lm, spec, steerer=steerer) as log:
                    new = steerer.generate(lm, batch, spec, steps)
            maps.append((log, new.shape[1]))
        if len(maps) > 1:
            source += f" in {len(maps)} calls (the device's memory)"
    problems = [p for log, expect in maps
                for p in log.mismatches(spec, lm.n_layers, expected_steps=expect, steered_rows=steered_rows)]
    rows, steps_seen = sum(log.rows for log, _ in maps), max(log.steps for log, _ in maps)
    record_note("firing map", tool_name, {"steerer": steering_tool(tool_name), "rows": rows, "steps": steps_seen,
                                          "max_error": max(log.max_error for log, _ in maps),
                                          "max_ulps": max(log.max_ulps for log, _ in maps),
                                          "mismatches": len(problems), "packed": packed, "of": source,
                                          "length": "the study's" if used else "short: not this study's steerer"})
    where = (f"{tool_name} ({spec.scope}, layers {spec.layers[0]}..{spec.layers[-1]}, {rows} rows"
             f"{f' in {blocks} packed blocks' if packed else ''}, {steps_seen} steps, {source})")
    assert not problems, f"{where}: " + "; ".join(problems[:6])
    sizes = [log.size_problem() for log, _ in maps]
    assert not any(sizes), f"{where}: {next(s for s in sizes if s)}"


def _calls(lm, prompts: list[str], blocks: int, steps: int) -> list[list[str]]:
    """The prompts in chunks that fit the device with the firing map's copies (one chunk when all fit)."""
    from parity_lib.models import memory
    from parity_lib.run.generation import prompt_width

    plan = memory.plan(lm, blocks * len(prompts), prompt_width(lm, prompts), steps, firing=True)
    per = max(1, plan.rows_per_call // blocks)
    return [prompts[i:i + per] for i in range(0, len(prompts), per)]


def test_batched_generation_matches_one_by_one(loaded_model, suite, spec, record_note):
    """Left padding + mask + mask-derived positions give each prompt its own tokens: exactly in float32; in
    half precision a padded batch rounds differently from a prompt alone, so agreement is measured and
    reported (how many prompts differ, and from which token) in the report's "how parity was judged" table;
    the firing map and the token-position check carry the correctness claim there."""
    lm, steerer = loaded_model, get_steerer("hooks")
    prompts = suite.prompts.eval[: min(suite.settings.n_eval or BATCH_PROMPTS, BATCH_PROMPTS)]
    tokens = min(suite.settings.max_new_tokens, BATCH_TOKENS)
    batched = steerer.generate(lm, lm.encode(prompts), spec, tokens)
    where, firsts = [], []
    for i, prompt in enumerate(prompts):
        alone = steerer.generate(lm, lm.encode([prompt]), spec, tokens)[0].tolist()
        row = batched[i].tolist()[: len(alone)]
        if row != alone:
            k = next((j for j, (x, y) in enumerate(zip(row, alone)) if x != y), min(len(row), len(alone)))
            firsts.append(k)
            where.append(f"prompt {i} ({prompts[i]!r}) first differs at token {k}")
    exact = lm.dtype.is_floating_point and lm.dtype.itemsize >= 4
    record_note("batched vs one-by-one", "hooks", {"mode": "exact" if exact else "measured (half precision)",
                                                   "prompts": len(prompts), "differ": len(firsts),
                                                   "first_differing_token_min": min(firsts, default=None)})
    if exact:
        assert not where, "batched ≠ one-by-one: " + "; ".join(where)


def test_reference_generation_path_is_proven(loaded_model, suite, spec, record_note):
    """The study's reference generation runs compiled (static cache, CUDA graphs) only when the firing map,
    taken under that path on the study's own batch and length for two specs, is exact and, with
    deterministic algorithms, the tokens equal the eager path's. Asked for explicitly, an unproven
    compiled path is a failure (the study itself falls back to eager and records why)."""
    from parity_lib.run.compiled import reference_generation

    lm, mode = loaded_model, suite.settings.generation
    prompts = list(suite.prompts.eval[: suite.settings.n_eval or None])
    size = suite.settings.gen_batch_size or len(prompts)
    batch = lm.encode(prompts[:size])
    _, how = reference_generation(lm, batch, spec, suite.settings.max_new_tokens, mode)
    record_note("generation", "hooks", {k: v for k, v in how.items() if not isinstance(v, dict)})
    if not how["tried"]:
        pytest.skip(f"compiled generation not tried: {how['proof']}")
    assert how["path"].startswith("compiled"), (f"--parity-generation compiled not proven, the study generated "
                                                f"eagerly: {how['proof']}")
