"""Shards through submitit (`python -m parity_lib.launch`): the same answer as one process, a crashed shard
resumed from its finished files, a shard that fails for good reported as missing data (never a zero rate), one
results directory written by many processes at once, and the SLURM script as a fake `sbatch` receives it."""

from __future__ import annotations

import importlib.util
import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STUDY = ["parity_lib/suite", "-m", "study", "--parity-repeats", "2", "--parity-n-eval", "4",
         "--parity-max-new-tokens", "8", "--parity-tools", "hooks,nnsight", "-p", "tests.planted_tools"]
SWEEP = ["parity_lib/suite", "-m", "sweep", "--parity-layers", "8,16", "--parity-multipliers", "2,4.46",
         "--parity-n-eval", "4", "--parity-max-new-tokens", "8", "--parity-tools", "hooks,nnsight",
         "--parity-model", "qwen2-organism", "--parity-model", "gemma2-organism", "-q"]


def dirs(where: Path) -> list[str]:
    return [f"--parity-results-dir={where / 'results'}", f"--parity-reports-dir={where / 'reports'}"]


def launch(where: Path, pytest_args: list[str], *ours: str, env: dict | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "parity_lib.launch", "--logs", str(where / "logs"), "--poll-s", "1", *ours, "--",
           *pytest_args, *dirs(where)]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=1500,
                          env={**os.environ, **(env or {})})


def one_process(where: Path, pytest_args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *pytest_args, *dirs(where)],
                          cwd=REPO, capture_output=True, text=True, timeout=1500)


def records(where: Path, kind: str) -> dict[str, dict]:
    keep = ("labels", "new_tokens", "direction", "unit")
    return {str(p.relative_to(where / "results")): {k: v for k, v in json.loads(p.read_text()).items() if k in keep}
            for p in sorted((where / "results" / kind).rglob("*.json")) if "error" not in p.name}


needs_submitit = pytest.mark.skipif(not importlib.util.find_spec("submitit"),
                                    reason="the launcher needs submitit: pip install 'parity-suite[slurm]'")


@needs_submitit
def test_two_model_shards_give_the_study_of_one_process(tmp_path):
    done = launch(tmp_path / "sharded", STUDY)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "2 shard(s) by model" in done.stdout and "report step (computes nothing)" in done.stdout
    report_step = done.stdout.split("report step (computes nothing)")[1]
    assert "--parity-reuse-only" in report_step.splitlines()[0]  # it could not compute: a hole would be an error
    assert "computed in" not in report_step and "reused from" in report_step, report_step[-2000:]
    assert one_process(tmp_path / "single", STUDY).returncode == 0
    sharded, single = records(tmp_path / "sharded", "phase1"), records(tmp_path / "single", "phase1")
    assert sharded == single and len(single) == 2 * 2 * 2 + 2  # 2 models × 2 tools × 2 repeats + 2 baselines
    verdict = [json.loads((tmp_path / w / "reports" / "phase1_outcome.json").read_text())["headline"]["text"]
               for w in ("sharded", "single")]
    assert verdict[0] == verdict[1], verdict


@needs_submitit
def test_four_layer_shards_give_the_sweep_of_one_process(tmp_path):
    done = launch(tmp_path / "sharded", SWEEP)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "4 shard(s) by layer" in done.stdout, done.stdout[:500]
    assert one_process(tmp_path / "single", SWEEP).returncode == 0
    assert records(tmp_path / "sharded", "sweep") == records(tmp_path / "single", "sweep")
    models = [json.loads((tmp_path / w / "reports" / "sweep.json").read_text())["models"]
              for w in ("sharded", "single")]
    assert models[0] == models[1]


@needs_submitit
def test_a_crashed_shard_is_resubmitted_and_resumes_from_its_finished_files(tmp_path):
    flag = tmp_path / "interrupted-once"
    done = launch(tmp_path, STUDY, env={"PARITY_TEST_INTERRUPT_AFTER_CYCLES": "2",
                                        "PARITY_TEST_INTERRUPT_ONCE_FLAG": str(flag)})
    assert flag.exists(), "no shard was interrupted"
    assert done.returncode == 0 and "fault (exit 2) — resubmitting" in done.stdout, done.stdout[-4000:]
    shards = json.loads((tmp_path / "logs" / "shards.json").read_text())
    resumed = next(s for s in shards.values() if s["attempts"] == 2)
    second = Path(resumed["log"]).read_text()
    assert "reused from" in second, second[-3000:]  # what the killed attempt finished was not computed again


@needs_submitit
def test_a_shard_that_fails_for_good_is_missing_data_with_its_log(tmp_path):
    done = launch(tmp_path, STUDY, "--retries", "1", env={"PARITY_TEST_FAIL_SHARD": "gemma2-organism"})
    assert done.returncode != 0
    assert "gemma2-organism: FAILED for good after 2 attempt(s)" in done.stdout, done.stdout[-4000:]
    shards = json.loads((tmp_path / "logs" / "shards.json").read_text())
    assert shards["gemma2-organism"]["state"] == "FAILED" and Path(shards["gemma2-organism"]["log"]).exists()
    assert shards["qwen2-organism"]["state"] == "DONE"
    report = json.loads((tmp_path / "reports" / "phase1_outcome.json").read_text())
    assert "gemma2-organism" not in report["models"], "a failed shard's model has no rates at all, never 0%"
    assert "gemma2-organism: no results" in report["decision"]["missing"], report["decision"]["missing"]
    line = report["headline"]["text"]
    assert "PROTOCOL TESTS FAILED" in line and "shard gemma2-organism FAILED after 2 attempt(s), log " in line, line
    assert "Stop" not in line and "Proceed" not in line, line


def _merge(args: tuple[str, int]) -> None:
    from parity_lib.storage.results import merge_checklist

    path, i = args
    merge_checklist(Path(path), [{"model": f"m{i}", "check": "shape", "tool": "hooks", "passed": True}],
                    {"dtype": "float32"}, {"writer": i}, {f"m{i}": {}})


def test_many_writers_of_one_checklist_lose_no_entry(tmp_path):
    path = tmp_path / "results" / "phase1_parity_checklist.json"
    with multiprocessing.get_context("spawn").Pool(8) as pool:
        pool.map(_merge, [(str(path), i) for i in range(32)])
    data = json.loads(path.read_text())
    assert sorted(e["model"] for e in data["entries"]) == sorted(f"m{i}" for i in range(32))


FAKE_SBATCH = """#!/bin/sh
cp "$1" "{record}"
echo "Submitted batch job 4242"
"""


def test_the_slurm_script_is_what_a_fake_sbatch_receives(tmp_path, monkeypatch):
    """No cluster here: a fake `sbatch` on PATH records the script submitit generates for the shards."""
    pytest.importorskip("submitit", reason="the launcher needs submitit: pip install 'parity-suite[slurm]'")
    from parity_lib import launch

    record = tmp_path / "submitted.sh"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(FAKE_SBATCH.format(record=record))
    (bin_dir / "sbatch").chmod(0o755)
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")  # submitit only checks that it exists
    (bin_dir / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    args = launch.argparse.Namespace(executor="slurm", logs=str(tmp_path / "logs"), time_min=20, gpus_per_shard=1,
                                     cpus_per_shard=8, mem_gb=64, array_parallelism=4, partition="gpu")
    shards = [launch.Shard(name, ["python", "-m", "pytest", "--parity-shard=" + name])
              for name in ("qwen-7b", "gemma-9b")]
    launch.submit_all(launch._executor(args), shards, tmp_path / "logs")
    script = record.read_text()
    for line in ("#SBATCH --partition=gpu", "#SBATCH --gpus-per-node=1", "#SBATCH --cpus-per-task=8",
                 "#SBATCH --time=20", "#SBATCH --array=0-1%2", "#SBATCH --mem=64GB"):  # %: min(4, shards)
        assert line in script, script
    assert [s.job.job_id for s in shards] == ["4242_0", "4242_1"]
    print(script)  # the script docs/shards.md shows
