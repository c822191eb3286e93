"""One process or several xdist workers: the same cycles, the same tokens, directions and verdict, each
result saying which process and device computed it. (On a GPU box each worker pins `cuda:<i % n_gpus>`:
`tests/unit/test_worker_device.py`; here the workers share the CPU.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.unit.test_plugin import pytest_run

# both organisms, so `--dist loadgroup` puts one model on each worker; short, so three full runs stay cheap
ARGS = ["parity_lib/suite", "-m", "study", "--parity-repeats", "2", "--parity-n-eval", "4",
        "--parity-max-new-tokens", "8", "--parity-tools", "hooks", "-p", "no:cacheprovider", "-q"]


def run(where: Path, *workers: str) -> dict[str, dict]:
    done = pytest_run(*ARGS, *workers, f"--parity-results-dir={where / 'results'}",
                      f"--parity-reports-dir={where / 'reports'}", timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    return {str(p.relative_to(where / "results")): json.loads(p.read_text())
            for p in sorted((where / "results" / "phase1").rglob("r*.json"))}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("workers")
    return {"base": base, "one": run(base / "one", "-p", "no:xdist"),
            "two": run(base / "two", "-n", "2", "--dist", "loadgroup"),
            "four": run(base / "four", "-n", "4", "--dist", "loadgroup")}


@pytest.mark.parametrize("which", ["two", "four"])
def test_workers_compute_the_same_cycles_as_one_process(runs, which):
    one, more = runs["one"], runs[which]
    assert sorted(one) == sorted(more) and len(one) == 2 * 2
    for name, record in one.items():
        other = more[name]
        assert record["new_tokens"] == other["new_tokens"], f"{name}: tokens differ between one and several workers"
        assert record["labels"] == other["labels"], name
        assert record["direction"]["unit"] == other["direction"]["unit"], f"{name}: direction differs"


def test_four_workers_for_two_models_still_keep_each_model_on_one_worker(runs):
    """`-n 4` with two models: the scheduler has two units (one per model), so two workers do the work and
    no model is loaded twice."""
    by_model: dict[str, set] = {}
    for r in runs["four"].values():
        by_model.setdefault(r["model"], set()).add(r["provenance"].get("worker"))
    assert all(len(w) == 1 for w in by_model.values()) and len(set().union(*by_model.values())) == 2, by_model


def test_each_result_names_its_process_and_device(runs):
    two = runs["two"]
    by_model: dict[str, set] = {}
    for r in two.values():
        by_model.setdefault(r["model"], set()).add(r["provenance"].get("worker"))
    assert all(len(w) == 1 for w in by_model.values()), f"a model's cycles ran on several workers: {by_model}"
    assert set().union(*by_model.values()) == {"gw0", "gw1"}, f"-n 2 --dist loadgroup: one model per worker, " \
                                                             f"got {by_model}"
    assert {r["provenance"]["device"] for r in two.values()} == {"cpu"}


def test_the_verdict_is_the_same(runs):
    base = runs["base"]
    verdicts = {d: json.loads((base / d / "reports" / "phase1_outcome.json").read_text())["headline"]["text"]
                for d in ("one", "two", "four")}
    assert len(set(verdicts.values())) == 1, verdicts


def test_a_test_id_names_its_model_longest_name_first():
    from parity_lib.plugin.xdist_hooks import model_of

    models = ["qwen", "qwen-big", "gemma2-organism"]
    assert model_of("t.py::test_x[qwen-big-hooks-r1]", models) == "qwen-big"
    assert model_of("t.py::test_x[qwen-hooks~nnsight]", models) == "qwen"
    assert model_of("t.py::test_x[gemma2-organism]", models) == "gemma2-organism"
    assert model_of("t.py::test_x[hooks]", models) is None
    assert model_of("t.py::test_x", models) is None
