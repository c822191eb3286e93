"""The plugin behaves like a good pytest plugin: inert elsewhere, fast help, robust rootdir, reports where
asked, progress on the terminal, readable files. Each runs pytest in a subprocess, as a user would."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CYCLES = "parity_lib/suite/study/test_cycles.py"
SMALL = ["--parity-model", "qwen2-organism", "--parity-tools", "hooks", "--parity-repeats", "1",
         "--parity-n-eval", "2", "--parity-max-new-tokens", "4", "-p", "no:cacheprovider"]


def pytest_run(*args: str, cwd: Path = REPO, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def test_inert_in_an_unrelated_project(tmp_path):
    """Installed through its entry point, the plugin imports no torch, writes nothing, adds no header."""
    (tmp_path / "test_other.py").write_text(
        "import sys\n\n"
        "def test_nothing_heavy_was_imported():\n"
        "    assert 'torch' not in sys.modules, 'the parity plugin imported torch in an unrelated project'\n"
        "    assert 'parity_lib.run.session' not in sys.modules\n")
    done = pytest_run("-p", "no:cacheprovider", "-v", cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "parity-suite" in done.stdout, "the plugin must be installed (so loaded) for this test to mean anything"
    assert "parity:" not in done.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["test_other.py"], "the plugin wrote files"


def test_runs_without_xdist(tmp_path):
    done = pytest_run("-p", "no:xdist", "tests/unit/test_worker_device.py", "-q",
                      f"--parity-reports-dir={tmp_path}", "-p", "no:cacheprovider")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "INTERNALERROR" not in done.stdout + done.stderr


def test_help_is_fast_and_lists_models_and_tools():
    code = ("import sys, pytest\n"
            "pytest.main(['--help', '-p', 'no:cacheprovider'])\n"
            "print('TORCH_IMPORTED', 'torch' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    out = done.stdout
    assert "TORCH_IMPORTED False" in out, "pytest --help imported torch (slow help)"
    for name in ("qwen2-organism", "gemma-9b-shape", "hooks", "nnsight", "pyvene", "--parity-results-dir"):
        assert name in out, f"--help does not mention {name}"


def test_path_options_never_move_the_rootdir(tmp_path):
    """`--parity-results-dir DIR` (a space, a dir outside the clone) keeps rootdir, config and addopts."""
    results, reports = tmp_path / "results dir", tmp_path / "reports"
    results.mkdir()
    reports.mkdir()
    done = pytest_run("tests/unit/test_worker_device.py", "-v", "--parity-results-dir", str(results),
                      "--parity-reports-dir", str(reports))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert f"rootdir: {REPO}" in done.stdout
    assert "configfile: pyproject.toml" in done.stdout
    assert (reports / "junit.xml").is_file() and (reports / "report.html").is_file(), \
        "junit.xml and report.html must follow --parity-reports-dir"


def test_collect_only_writes_no_report(tmp_path):
    done = pytest_run("--collect-only", "-q", f"--parity-reports-dir={tmp_path}", "-p", "no:cacheprovider")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert list(tmp_path.iterdir()) == [], "a collect-only run wrote report files"


@pytest.fixture(scope="module")
def small_study(tmp_path_factory):
    """One tiny study run with 2 xdist workers, the default verbosity, shared by the checks below."""
    where = tmp_path_factory.mktemp("progress")
    done = pytest_run(CYCLES, "-m", "study", "-n", "2", *SMALL, f"--parity-results-dir={where / 'results'}",
                      f"--parity-reports-dir={where / 'reports'}")
    return where, done


def test_progress_line_per_cycle_without_dash_s(small_study):
    where, done = small_study
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "parity: qwen2-organism/hooks/r1: refusal" in done.stdout, done.stdout[-3000:]
    assert "computed in " in done.stdout
    assert "parity: qwen2-organism: gate open" in done.stdout


def test_quiet_run_prints_no_progress(tmp_path):
    done = pytest_run(CYCLES, "-m", "study", "-q", *SMALL, f"--parity-results-dir={tmp_path / 'results'}",
                      f"--parity-reports-dir={tmp_path / 'reports'}")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "parity: qwen2-organism/hooks" not in done.stdout


def test_result_and_report_files_are_readable_by_others(small_study):
    where, _ = small_study
    files = [p for p in where.rglob("*") if p.is_file()]
    assert any(p.suffix == ".json" for p in files) and any(p.name == "phase1_outcome.md" for p in files)
    umask = os.umask(0)
    os.umask(umask)
    for path in files:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == 0o666 & ~umask, f"{path.relative_to(where)} is {oct(mode)}; expected {oct(0o666 & ~umask)}"


def test_junit_carries_the_verdict(small_study):
    where, _ = small_study
    junit = (where / "reports" / "junit.xml").read_text()
    assert 'name="parity_verdict"' in junit and 'name="parity_qwen2-organism_hooks_refusal"' in junit


def test_sweeps_run_only_when_asked(tmp_path):
    """The test command (`pytest` with no -m) must not start a sweep of both organisms (tens of minutes)."""
    plain = pytest_run("parity_lib/suite", "--collect-only", "-q", "-p", "no:cacheprovider",
                       f"--parity-results-dir={tmp_path / 'r'}", f"--parity-reports-dir={tmp_path / 'p'}")
    asked = pytest_run("parity_lib/suite", "--collect-only", "-q", "-p", "no:cacheprovider", "-m", "sweep",
                       f"--parity-results-dir={tmp_path / 'r'}", f"--parity-reports-dir={tmp_path / 'p'}")
    assert "suite/sweep/" not in plain.stdout and "deselected" in plain.stdout, plain.stdout[-1500:]
    assert "test_sweep_points_are_recorded[qwen2-organism-L16]" in asked.stdout, asked.stdout[-1500:]
