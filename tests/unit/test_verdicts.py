"""The verdict is valid: planted scenarios through the real pipeline on the organisms yield the expected
outcome, with and without xdist. Small runs: 2 repeats, 10 eval prompts, short generations."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

SCENARIOS = {
    "all-correct": ("hooks,nnsight,pyvene", {3, 4}),
    "planted-both-models": ("hooks,nnsight,planted-mlp", {1}),
    "planted-gemma-only": ("hooks,nnsight,planted-mlp-gemma-only", {2}),
}


def run_study(tmp_path: Path, tools: str, workers: int) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pytest", "parity_lib/suite/study/test_cycles.py", "-m", "study", "-q",
           "-p", "no:cacheprovider", "-p", "tests.planted_tools", "-n", str(workers), "--dist", "loadgroup",
           "--parity-tools", tools, "--parity-repeats", "2", "--parity-n-eval", "10", "--parity-max-new-tokens", "24",
           "--parity-override-gate", "--parity-results-dir", str(tmp_path / "results"),
           "--parity-reports-dir", str(tmp_path / "reports"), "--junitxml", str(tmp_path / "junit.xml"),
           "--html", str(tmp_path / "report.html")]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)


_RUNS: dict[tuple[str, int], tuple[Path, subprocess.CompletedProcess]] = {}


@pytest.fixture(scope="module")
def study_run(tmp_path_factory):
    """Each (scenario, workers) study runs once per session and is shared by the tests below."""
    def get(scenario: str, workers: int) -> tuple[Path, subprocess.CompletedProcess]:
        if (scenario, workers) not in _RUNS:
            where = tmp_path_factory.mktemp(f"{scenario}-n{workers}")
            _RUNS[(scenario, workers)] = where, run_study(where, SCENARIOS[scenario][0], workers)
        return _RUNS[(scenario, workers)]
    return get


@pytest.mark.parametrize("workers", [0, 2], ids=["n0", "n2"])
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_planted_scenario_yields_expected_outcome(study_run, scenario, workers):
    expected = SCENARIOS[scenario][1]
    tmp_path, done = study_run(scenario, workers)
    report_file = tmp_path / "reports" / "phase1_outcome.json"
    assert report_file.is_file(), done.stdout[-3000:] + done.stderr[-2000:]
    decision = json.loads(report_file.read_text())["decision"]
    got = decision["primary"]["outcome"] if decision["primary"] else None
    assert got in expected, f"{scenario}: expected outcome {sorted(expected)}, got {decision['verdict']}: " \
                            f"{[r['reasons'][-1] for r in decision['all']]}"
    assert (done.returncode == 0) == (got in (3, 4)), f"exit status {done.returncode} for {decision['verdict']}"


def test_xdist_run_writes_the_same_results_as_serial(study_run):
    serial, _ = study_run("all-correct", 0)
    parallel, _ = study_run("all-correct", 2)
    files = sorted(p.relative_to(serial) for p in (serial / "results" / "phase1").rglob("r*.json"))
    assert len(files) == 2 * 3 * 2
    for rel in files:
        a, b = (json.loads((root / rel).read_text()) for root in (serial, parallel))
        for field in ("direction", "labels", "new_tokens", "config_key", "rates"):
            assert a[field] == b[field], f"{rel}: {field} differs between -n 0 and -n 2"
