"""A fault of the machine is never a tool's fault, and every run writes its own verdict.

Real study runs on the organisms with planted faults: a device that runs out of memory on one model, a model that
overflows float16, SIGTERM in the middle of the study, a failed run after a green one in the same reports
directory. Each time the first line names the fault, blames no tool and gives no Section E action."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.unit.test_headline_scenarios import REPO, SMALL, first_line, study

TOOL_BLAME = ("do not match", "fix the extractor", "FAILED:", "Section E Outcome", "Stop", "Proceed")


def _report(where: Path) -> dict:
    return json.loads((where / "reports" / "phase1_outcome.json").read_text())


def _assert_blames_no_tool(line: str) -> None:
    assert not any(word in line for word in TOOL_BLAME), line


def test_out_of_memory_on_one_model_is_not_run_and_blames_no_tool(tmp_path):
    """The tool extracts correctly; the device runs out of memory on Gemma2 (a 9B model on a 24 GB card): its
    checks and cycles are not run, the first line says so with what to do, and Qwen2's cycles still ran."""
    done = study(tmp_path, "--parity-tools", "hooks,planted-oom-gemma", marker="preflight or study")
    line = first_line(tmp_path)
    assert line.startswith("# OUT OF DEVICE MEMORY on gemma2-organism ("), line
    assert "no tool was judged on it" in line and "use a card with more memory" in line, line
    _assert_blames_no_tool(line)
    report = _report(tmp_path)
    assert "planted-oom-gemma" not in report["headline"]["blocked_tools"], report["headline"]
    assert report["headline"]["next_step"].startswith("Fix the machine first"), report["headline"]["next_step"]
    assert set(report["models"]) == {"qwen2-organism"}, report["models"].keys()
    assert done.returncode != 0, "checks that did not run must not make the run green"
    junit = (tmp_path / "reports" / "junit.xml").read_text()
    assert "NOT RUN (OUT OF DEVICE MEMORY)" in junit
    assert "<failure" not in junit, "a fault of the machine is not run, never failed"


def test_a_full_disk_is_named_and_blames_no_tool(tmp_path):
    done = study(tmp_path, "-k", "test_cycle_completes", env={"PARITY_TEST_DISK_FULL_ON": "gemma2-organism"})
    line = first_line(tmp_path)
    assert line.startswith("# DISK FULL on gemma2-organism ("), line
    assert "No space left on device" in line and "free disk space" in line, line
    _assert_blames_no_tool(line)
    assert done.returncode != 0


@pytest.fixture(scope="module")
def overflowing(tmp_path_factory) -> str:
    from parity_lib.models.registry import MODELS_DIR
    from tests.planted import overflowing_model

    return overflowing_model(str(MODELS_DIR / "qwen2-organism"), str(tmp_path_factory.mktemp("m") / "overflowing"))


def test_float16_overflow_is_named_with_its_layer_and_blames_no_tool(tmp_path, overflowing):
    done = study(tmp_path, "--parity-model", f"{overflowing}:16:3", "--parity-dtype", "float16",
                 marker="preflight or study")
    line = first_line(tmp_path)
    assert line.startswith("# FLOAT16 OVERFLOW on overflowing from layer 20 (the model's own forward"), line
    assert "--parity-dtype bfloat16" in line, line
    _assert_blames_no_tool(line)
    assert done.returncode != 0


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_the_same_model_in_a_dtype_with_range_runs(tmp_path, overflowing, dtype):
    """Where the dtype has float32's range the model is finite and the preflight judges the tools as usual."""
    done = study(tmp_path, "--parity-model", f"{overflowing}:16:3", "--parity-dtype", dtype, marker="preflight")
    line = first_line(tmp_path)
    assert "OVERFLOW" not in line and line.startswith("# No study ran in this run"), line
    assert done.returncode == 0, done.stdout[-2000:]


@pytest.mark.parametrize("workers", [[], ["-n", "2", "--dist", "loadgroup"]], ids=["one-process", "xdist"])
def test_sigterm_mid_study_is_an_interrupted_run(tmp_path, workers):
    """SLURM's time limit or preemption: finished cycles stay on disk, the report says [INTERRUPTED]."""
    cmd = [sys.executable, "-m", "pytest", "parity_lib/suite", "-m", "study", "-q", *SMALL, *workers,
           f"--parity-results-dir={tmp_path / 'results'}", f"--parity-reports-dir={tmp_path / 'reports'}"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 600
    while not list((tmp_path / "results").glob("phase1/*/*/r1.json")) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGTERM)  # the whole job step, as SLURM signals it
    out, _ = proc.communicate(timeout=300)
    line = first_line(tmp_path)
    assert line.startswith("# [INTERRUPTED"), (line, out[-3000:])
    assert list((tmp_path / "results").glob("phase1/*/*/r1.json")), "finished cycles stay on disk"
    assert proc.returncode != 0


def test_a_failed_run_after_a_green_one_writes_its_own_verdict(tmp_path):
    """The outcome file always describes the run that just ended; the earlier complete outcome is kept aside."""
    assert study(tmp_path, "-k", "test_cycle_completes").returncode == 0
    green = first_line(tmp_path)
    assert "The tools agree on every model" in green, green

    study(tmp_path, "--parity-tools", "hooks,planted-oom-gemma", "-k", "test_cycle_completes")
    line = first_line(tmp_path)
    assert line.startswith("# OUT OF DEVICE MEMORY on gemma2-organism"), line
    kept = tmp_path / "reports" / "phase1_outcome.last-complete.md"
    assert kept.read_text().splitlines()[0] == green
    assert "The last complete outcome was kept" in (tmp_path / "reports" / "phase1_outcome.md").read_text()
    html = (tmp_path / "reports" / "report.html").read_text()
    assert "OUT OF DEVICE MEMORY" in html and "The tools agree on every model" not in html.split("</h2>")[0]

    assert study(tmp_path, marker="preflight").returncode == 0
    line = first_line(tmp_path)
    assert line.startswith("# No study ran in this run"), line
    text = (tmp_path / "reports" / "phase1_outcome.md").read_text()
    assert "Last complete study outcome" in text and green.lstrip("# ") in text, text
