"""Result files: a rerun reuses what matches and computes only what is missing; nothing finished is
lost or overwritten by a failure; the checklist file keeps other configurations."""

from __future__ import annotations

import json

import pytest

from parity_lib.prompts import load_prompts
from parity_lib.run.cycle import StudySettings
from parity_lib.run.study import CycleStore
from parity_lib.storage import results
from tests.conftest import cycle_store

SETTINGS = StudySettings(repeats=2, max_new_tokens=3, n_eval=2)
PROMPTS = load_prompts()


def make_store(tmp_path, **kw):
    return cycle_store(tmp_path, SETTINGS, **kw)


@pytest.fixture
def lm(tiny):
    return tiny("qwen2-tiny")


def test_rerun_computes_only_the_missing_cycle(tmp_path, lm):
    first = make_store(tmp_path)
    for k in (1, 2):
        first.ensure(lm, "hooks", k)
    results.cycle_path(tmp_path, lm.spec.name, "hooks", 2).unlink()
    second = make_store(tmp_path)
    assert [second.ensure(lm, "hooks", k)[1] for k in (1, 2)] == [False, True]


def test_changed_settings_invalidate_the_cache(tmp_path, lm):
    make_store(tmp_path).ensure(lm, "hooks", 1)
    other = CycleStore(tmp_path, PROMPTS, StudySettings(repeats=2, max_new_tokens=4, n_eval=2),
                       make_store(tmp_path).provenance, log=lambda line: None)
    assert other.ensure(lm, "hooks", 1)[1] is True


def test_fresh_recomputes(tmp_path, lm):
    make_store(tmp_path).ensure(lm, "hooks", 1)
    assert make_store(tmp_path, fresh=True).ensure(lm, "hooks", 1)[1] is True


def test_failed_cycle_keeps_the_finished_result(tmp_path, lm, monkeypatch):
    make_store(tmp_path).ensure(lm, "hooks", 1)
    path = results.cycle_path(tmp_path, lm.spec.name, "hooks", 1)
    before = path.read_text()
    import parity_lib.run.study as study

    def boom(*args, **kwargs):
        raise RuntimeError("planted failure")

    monkeypatch.setattr(study, "run_cycle", boom)
    with pytest.raises(RuntimeError):
        make_store(tmp_path, fresh=True).ensure(lm, "hooks", 1)
    assert path.read_text() == before
    error = json.loads(results.error_path(path).read_text())
    assert error["status"] == "error" and "planted failure" in error["error"]


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "x.json"
    results.write_json_atomic(target, {"a": 1})
    with pytest.raises(TypeError):
        results.write_json_atomic(target, {"a": object.__new__(type("Unserialisable", (), {"__str__": None}))})
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_checklist_of_another_configuration_is_set_aside(tmp_path):
    path = tmp_path / results.CHECKLIST_NAME
    entry = {"model": "m", "tool": "hooks", "check": "shape", "passed": True}
    results.merge_checklist(path, [entry], {"dtype": "float32", "device": "cpu", "code": "aaaaaaaa1"}, {}, {})
    results.merge_checklist(path, [entry], {"dtype": "bfloat16", "device": "cpu", "code": "aaaaaaaa1"}, {}, {})
    kept = list(tmp_path.glob("phase1_parity_checklist.*.json"))
    assert len(kept) == 1 and json.loads(kept[0].read_text())["config"]["dtype"] == "float32"


def test_a_cycle_computed_earlier_in_the_same_run_is_not_called_reused(tmp_path):
    """The parity tests may compute r2..rk before their cycle tests ask: those count as computed, not reused."""
    from parity_lib.models import loading, registry
    from parity_lib.prompts import load_prompts
    from parity_lib.run.cycle import StudySettings
    from parity_lib.run.study import CycleStore

    lm = loading.load(registry.parse_model("qwen2-tiny"))
    store = CycleStore(tmp_path, load_prompts(None), StudySettings(repeats=1, n_eval=2, max_new_tokens=2),
                       lambda **kw: {}, log=lambda line: None)
    assert store.ensure(lm, "hooks", 1)[1] is True
    assert store.ensure(lm, "hooks", 1)[1] is True  # asked again in the same process
    again = CycleStore(tmp_path, load_prompts(None), StudySettings(repeats=1, n_eval=2, max_new_tokens=2),
                       lambda **kw: {}, log=lambda line: None)
    assert again.ensure(lm, "hooks", 1)[1] is False  # a new run finds the file: reused
