"""Packed generation (`--parity-packing tools`, the default): one repeat's tools share one generate call,
each block of rows steered by its own tool's direction. It must give every row exactly what a call of its
own gives (float32), and the firing map must catch a packed steerer that hands one block's vector to
another block's rows (float32 and bfloat16)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from parity_lib.models.batching import encode
from parity_lib.prompts import format_all, load_prompts
from parity_lib.run.cycle import StudySettings, run_cycle, run_repeat, unsteered_eval
from parity_lib.run.firing import record_firing
from parity_lib.storage import results
from parity_lib.tools.hooks import HooksSteerer, generate_packed, packed_rows
from parity_lib.tools.spec import SteeringSpec
from tests.conftest import cycle_store

PROMPTS = load_prompts()
SETTINGS = StudySettings(repeats=1, max_new_tokens=10, n_eval=4)
TOOLS = ("hooks", "nnsight", "pyvene")


def distinct_specs(lm, n: int = 3, multiplier: float = 8.0) -> list[SteeringSpec]:
    """Same layers, different unit vectors: block i's rows must get vector i, nobody else's."""
    gen = torch.Generator().manual_seed(7)
    units = [u / u.norm() for u in torch.randn(n, lm.hidden_size, generator=gen, dtype=torch.float64)]
    return [SteeringSpec.build(u, lm.spec.layer, lm.n_layers, multiplier) for u in units]


def eval_batch(lm, n: int = 4):
    return encode(lm.tokenizer, format_all(lm.tokenizer, PROMPTS.eval[:n]), templated=lm.templated, device=lm.device)


def test_packed_rows_equal_one_call_per_spec_in_float32(tiny):
    lm = tiny("qwen2-tiny")
    specs, batch = distinct_specs(lm), eval_batch(lm)
    packed = generate_packed(lm, batch, specs, 12)
    alone = [HooksSteerer().generate(lm, batch, spec, 12) for spec in specs]
    assert len({tuple(map(tuple, a.tolist())) for a in alone}) > 1  # the specs steer to different tokens
    for got, want in zip(packed, alone):
        assert got.tolist() == want.tolist()


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_firing_map_checks_each_block_against_its_own_vector(tiny, dtype):
    lm = tiny("qwen2-tiny", dtype)
    specs, batch = distinct_specs(lm), eval_batch(lm)
    right = packed_rows(lm, specs, len(batch))
    with record_firing(lm, specs[0], rows=right) as log:
        new = generate_packed(lm, batch, specs, 6)[0]
    assert not log.mismatches(specs[0], lm.n_layers, expected_steps=new.shape[1])
    assert log.rows == 3 * len(batch) and log.size_problem() is None


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_firing_map_catches_a_packed_steerer_that_mixes_up_blocks(tiny, dtype, monkeypatch):
    """Planted: every row gets the first block's vector (a table built without the per-row repeat)."""
    import parity_lib.tools.hooks as hooks

    lm = tiny("qwen2-tiny", dtype)
    specs, batch = distinct_specs(lm), eval_batch(lm)
    right = packed_rows(lm, specs, len(batch))
    monkeypatch.setattr(hooks, "packed_rows", lambda lm, specs, n: packed_rows(lm, specs[:1] * len(specs), n))
    with record_firing(lm, specs[0], rows=right) as log:
        hooks.generate_packed(lm, batch, specs, 6)
    problem = log.size_problem()
    assert problem is not None and "ulp" in problem


def test_packed_repeat_gives_each_tool_the_cycle_it_would_get_alone(tiny):
    """And the baseline block (zero vector) the unsteered generation."""
    lm = tiny("qwen2-tiny")
    packed = run_repeat(lm, TOOLS, PROMPTS, SETTINGS, 1, baseline=True)
    for tool in TOOLS:
        alone = run_cycle(lm, tool, PROMPTS, replace(SETTINGS, packing="none"), 1)
        mine = packed.cycles[tool]
        assert mine.new_tokens == alone.new_tokens and mine.labels == alone.labels
        assert mine.logits_top == alone.logits_top
        assert mine.direction.unit.tolist() == alone.direction.unit.tolist()
        assert mine.steering["generation"]["packed_with"] == [*TOOLS, "unsteered"]
        assert "generation" in alone.steering and "packed_with" not in alone.steering["generation"]
    unsteered = unsteered_eval(lm, PROMPTS, SETTINGS)
    assert packed.baseline["texts"] == unsteered["texts"] and packed.baseline["labels"] == unsteered["labels"]
    assert packed.baseline["texts"] != packed.cycles["hooks"].texts  # steering changed something


def make_store(tmp_path, **kw):
    return cycle_store(tmp_path, SETTINGS, tools=TOOLS, **kw)


def test_store_computes_a_repeat_once_and_reuses_what_is_on_disk(tmp_path, tiny, monkeypatch):
    import parity_lib.run.study as study

    lm = tiny("qwen2-tiny")
    calls = []
    real = study.run_repeat
    monkeypatch.setattr(study, "run_repeat",
                        lambda lm, tools, *a, **kw: calls.append(list(tools)) or real(lm, tools, *a, **kw))
    store = make_store(tmp_path)
    record, computed = store.baseline(lm)
    assert computed and record["generation"]["packed_with"] == [*TOOLS, "unsteered"]
    assert [store.ensure(lm, tool, 1)[1] for tool in TOOLS] == [True, True, True]
    assert calls == [list(TOOLS)]
    assert store.baseline(lm)[1] is False
    results.cycle_path(tmp_path, lm.spec.name, "nnsight", 1).unlink()
    again = make_store(tmp_path)
    assert [again.ensure(lm, tool, 1)[1] for tool in TOOLS] == [False, True, False]
    assert calls[-1] == ["nnsight"]


def test_a_tool_failing_in_a_packed_repeat_fails_alone(tmp_path, tiny, monkeypatch):
    import parity_lib.run.cycle as cycle

    lm = tiny("qwen2-tiny")
    real = cycle.extract_direction

    def extract(lm, tool, prompts):
        if tool == "nnsight":
            raise RuntimeError("planted extraction failure")
        return real(lm, tool, prompts)

    monkeypatch.setattr(cycle, "extract_direction", extract)
    store = make_store(tmp_path)
    assert store.ensure(lm, "hooks", 1)[0]["steering"]["generation"]["packed_with"] == ["hooks", "pyvene"]
    with pytest.raises(RuntimeError, match="planted extraction failure"):
        store.ensure(lm, "nnsight", 1)
    record = json.loads(results.error_path(results.cycle_path(tmp_path, lm.spec.name, "nnsight", 1)).read_text())
    assert record["status"] == "error" and "planted extraction failure" in record["error"]
    assert store.ensure(lm, "pyvene", 1)[0]["status"] == "ok"


def test_packing_applies_only_to_the_reference_steerers_eager_path():
    assert StudySettings().packs(3)
    assert not StudySettings().packs(1)
    assert not StudySettings(steer_with="same").packs(3)
    assert not StudySettings(generation="compiled").packs(3)
    assert not StudySettings(packing="none").packs(3)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_the_study_call_records_its_own_firing_map(tiny, dtype):
    lm = tiny("qwen2-tiny", dtype)
    done = run_repeat(lm, TOOLS, PROMPTS, SETTINGS, 1, baseline=True, firing=True)
    f = done.firing
    assert f["blocks"] == [*TOOLS, "unsteered"] and f["log"].rows == 4 * SETTINGS.n_eval
    assert not f["log"].mismatches(f["spec"], lm.n_layers, f["steps"], steered_rows=f["steered_rows"])
    assert f["log"].size_problem() is None


def test_the_study_calls_firing_map_catches_a_steered_baseline_block(tiny, monkeypatch):
    """Planted: the packed hook gives every row the first block's vector, the baseline block included."""
    import parity_lib.tools.hooks as hooks

    lm = tiny("qwen2-tiny")
    real = hooks.steering_hooks
    monkeypatch.setattr(hooks, "steering_hooks",
                        lambda lm, spec, rows=None: real(lm, spec, None if rows is None else rows[:1].expand_as(rows)))
    f = run_repeat(lm, TOOLS, PROMPTS, SETTINGS, 1, baseline=True, firing=True).firing
    problems = f["log"].mismatches(f["spec"], lm.n_layers, f["steps"], steered_rows=f["steered_rows"])
    assert problems and "expected" in problems[0]
    assert f["log"].size_problem() is not None
