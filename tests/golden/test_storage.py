"""The golden storage inside a real pytest session (pytester): one file per (prompt set, model), one
entry per test shared by every tool, written only with --snapshot-update, missing and unused reported,
noise within the stated tolerance ignored, real changes shown field by field."""

from __future__ import annotations

import json

import pytest

CONFTEST = '''
from pathlib import Path

import pytest

from parity_lib.storage.golden_store import GoldenExtension


class TmpGolden(GoldenExtension):
    golden_dir = Path(__file__).parent / "golden"


def pytest_addoption(parser):
    parser.addoption("--parity-prompts", default=None)
    parser.addoption("--models", default="m1,m2")


def pytest_generate_tests(metafunc):
    if "model_name" in metafunc.fixturenames:
        metafunc.parametrize("model_name", metafunc.config.getoption("--models").split(","))
    if "tool_name" in metafunc.fixturenames:
        metafunc.parametrize("tool_name", ["hooks", "nnsight"])


@pytest.fixture
def golden(snapshot):
    return snapshot.use_extension(TmpGolden)
'''

TEST = '''
import json
from pathlib import Path

from parity_lib.storage.golden_store import GoldenEntry


def test_claim(golden, model_name, tool_name):
    record = json.loads((Path(__file__).parent / "record.json").read_text())
    assert golden == GoldenEntry(record, {"run_by": (Path(__file__).parent / "who.txt").read_text()})
'''

RECORD = {"direction": {"tolerance": 1e-4, "norm": 1.25, "first": [0.5, -0.25]}, "labels": ["refusal", "normal"]}


@pytest.fixture
def project(pytester, monkeypatch):
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)  # else syrupy defers its report to a controller
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_claims=TEST)
    write(pytester, RECORD, who="alice")
    return pytester


def write(pytester, record, who="alice") -> None:
    (pytester.path / "record.json").write_text(json.dumps(record))
    (pytester.path / "who.txt").write_text(who)


def golden_file(pytester, model="m1"):
    return pytester.path / "golden" / "paper_prompts" / model / "test_claims.json"


def run(pytester, *args):
    # The parity plugin defines --parity-prompts and model parametrization, which the inner conftest fakes;
    # hypothesis's plugin would re-import hypothesis on every run.
    quiet = ("parity_lib.plugin", "cacheprovider", "randomly", "xdist", "hypothesispytest", "html", "metadata")
    return pytester.runpytest(*(a for p in quiet for a in ("-p", f"no:{p}")), *args)


def test_missing_golden_fails(project):
    result = run(project)
    result.assert_outcomes(failed=4)
    result.stdout.fnmatch_lines(["*Snapshot 'test_claim' does not exist!*", "*--snapshot-update*"])


def test_update_writes_one_entry_per_test_for_all_tools(project):
    run(project, "--snapshot-update").assert_outcomes(passed=4)
    content = json.loads(golden_file(project).read_text())
    assert list(content["snapshots"]) == ["test_claim"]
    assert content["snapshots"]["test_claim"] == RECORD
    assert content["golden_schema"] == 1 and content["provenance"] == {"run_by": "alice"}
    assert sorted(p.name for p in (project.path / "golden" / "paper_prompts").iterdir()) == ["m1", "m2"]


def test_provenance_is_not_compared(project):
    run(project, "--snapshot-update")
    write(project, RECORD, who="bob")
    run(project).assert_outcomes(passed=4)


def test_noise_within_stated_tolerance_passes(project):
    run(project, "--snapshot-update")
    write(project, {**RECORD, "direction": {**RECORD["direction"], "norm": 1.25 + 9e-5}})
    run(project).assert_outcomes(passed=4)


def test_real_change_fails_naming_field_old_new_and_size(project):
    run(project, "--snapshot-update")
    write(project, {**RECORD, "direction": {**RECORD["direction"], "norm": 1.75}, "labels": ["refusal", "garbled"]})
    result = run(project)
    result.assert_outcomes(failed=4)
    result.stdout.fnmatch_lines(["*2 field(s) differ from the golden*",
                                 "*direction.norm: 1.25 -> 1.75  (|Δ| = 0.5, tolerance 0.0001)*",
                                 '*labels[[]1]: "normal" -> "garbled"*'])


def test_update_rewrites_a_changed_golden(project):
    run(project, "--snapshot-update")
    write(project, {**RECORD, "labels": ["refusal"]})
    run(project, "--snapshot-update").assert_outcomes(passed=4)
    assert json.loads(golden_file(project).read_text())["snapshots"]["test_claim"]["labels"] == ["refusal"]


def test_unused_entry_fails_the_run_and_update_deletes_it(project):
    run(project, "--snapshot-update")
    content = json.loads(golden_file(project).read_text())
    content["snapshots"]["test_removed"] = {"x": 1}
    golden_file(project).write_text(json.dumps(content))
    result = run(project)
    result.stdout.fnmatch_lines(["*1 snapshot unused*"])
    assert result.ret != 0
    run(project, "--snapshot-update")
    assert list(json.loads(golden_file(project).read_text())["snapshots"]) == ["test_claim"]


def test_goldens_of_models_not_in_the_run_are_not_unused(project):
    run(project, "--snapshot-update")
    result = run(project, "--models", "m1")
    result.assert_outcomes(passed=2)
    assert result.ret == 0
    assert golden_file(project, "m2").is_file()


def test_each_prompt_set_has_its_own_goldens(project):
    run(project, "--snapshot-update")
    result = run(project, "--parity-prompts", "other/my_prompts.py")
    result.assert_outcomes(failed=4)
    assert result.ret != 0 and golden_file(project).is_file()
