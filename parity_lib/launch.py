"""Shards on SLURM (or on this machine) through submitit: `python -m parity_lib.launch [options] -- PYTEST_ARGS`.

A shard is the same pytest command restricted to its part (`--parity-shard MODEL`, or `MODEL@LAYER` for a sweep),
writing into the one shared results directory (every cycle and sweep point is its own atomic file; the checklist
is merged under a lock) and its own reports directory. The launcher only builds the commands, submits them, shows
each shard's progress, resubmits a shard that crashed or was preempted (its finished files are reused), and when
every shard has ended runs the report step: the whole command again with `--parity-reuse-only`, which reads every
shard's results, computes nothing, and writes the one verdict. A shard that failed for good is missing data in
that verdict (its cycles are errors naming the missing file), never a zero rate, and the launcher exits non-zero.

Exit codes of a shard: 0 passed, 1 tests failed (a parity finding: kept, not retried), anything else a fault
(interrupted, killed, internal error): retried up to --retries times.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

DEFAULT_MODELS = ("qwen2-organism", "gemma2-organism")
FINDING = 1  # pytest's "tests failed": the shard ran; its failures are results, not faults


@dataclass
class Shard:
    name: str
    command: list[str]
    attempts: int = 0
    job: Any = None
    state: str = "PENDING"
    exit_code: int | None = None
    log: str = ""
    history: list[str] = field(default_factory=list)


def run_pytest(command: list[str], log: str) -> int:
    """What a shard's job runs (on a SLURM node or in a local subprocess): the pytest command, its output kept."""
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        out.write(f"$ {shlex.join(command)}\n".encode())
        out.flush()
        return subprocess.run(command, stdout=out, stderr=subprocess.STDOUT).returncode


def _option(args: Sequence[str], name: str, default: str) -> str:
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return default


def _specs(args: Sequence[str]) -> list[Any]:
    """The run's models as pytest will name them (NAME=… → NAME, DIR:L:M → the directory's name)."""
    from parity_lib.models.registry import parse_model

    given = [a.split("=", 1)[1] for a in args if a.startswith("--parity-model=")]
    given += [args[i + 1] for i, a in enumerate(args) if a == "--parity-model" and i + 1 < len(args)]
    return [parse_model(m) for m in given or DEFAULT_MODELS]


def _sweep_layers(args: Sequence[str]) -> list[tuple[str, int]]:
    """Every (model, layer) the sweep visits, resolved as the plugin resolves them (configs read, nothing loaded)."""
    from parity_lib.models.packaged import ensure
    from parity_lib.plugin.validate import depth
    from parity_lib.run.sweep import resolve_layers

    out = []
    for spec in _specs(args):
        if spec.packaged:
            ensure(spec.packaged)
        layers = resolve_layers(_option(args, "--parity-layers", ""), depth(spec), spec.layer)
        out += [(spec.name, layer) for layer in layers]
    return out


def _without(args: Sequence[str], name: str) -> list[str]:
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg == name:
            skip = True
            continue
        if not arg.startswith(name + "="):
            out.append(arg)
    return out


def plan(pytest_args: Sequence[str], by: str) -> list[tuple[str, list[str]]]:
    """The shards: (name, pytest arguments). By model, or by (model, layer) for a sweep."""
    reports = _option(pytest_args, "--parity-reports-dir", "reports")
    base = _without(pytest_args, "--parity-reports-dir")
    if by == "layer":
        parts = [(f"{m}@{layer}", f"{m}-L{layer}") for m, layer in _sweep_layers(pytest_args)]
    else:
        parts = [(spec.name, spec.name) for spec in _specs(pytest_args)]
    return [(label, [*base, f"--parity-shard={shard}", f"--parity-reports-dir={reports}/shards/{label}"])
            for shard, label in parts]


def _executor(args: argparse.Namespace) -> Any:
    import submitit

    folder = Path(args.logs) / "submitit" / "%j"
    if args.executor == "local":
        executor = submitit.LocalExecutor(folder=folder)
        executor.update_parameters(timeout_min=args.time_min)
        return executor
    executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
    params: dict[str, Any] = {"timeout_min": args.time_min, "gpus_per_node": args.gpus_per_shard,
                              "cpus_per_task": args.cpus_per_shard, "mem_gb": args.mem_gb, "nodes": 1,
                              "tasks_per_node": 1, "slurm_array_parallelism": args.array_parallelism,
                              "name": "parity-shard"}
    if args.partition:
        params["slurm_partition"] = args.partition
    executor.update_parameters(**params)
    return executor


def _submit(executor: Any, shard: Shard, logs: Path) -> None:
    shard.attempts += 1
    shard.log = str(logs / f"{shard.name}.attempt{shard.attempts}.log")
    shard.job = executor.submit(run_pytest, shard.command, shard.log)
    shard.state = "SUBMITTED"


def submit_all(executor: Any, shards: Sequence[Shard], logs: Path) -> None:
    """The first attempt of every shard as one job array (SLURM runs --array-parallelism of them at once)."""
    with executor.batch():
        for shard in shards:
            _submit(executor, shard, logs)
    for shard in shards:
        shard.history.append(f"attempt 1: job {shard.job.job_id}, log {shard.log}")


def _results_on_disk(results: Path, shard: Shard) -> int:
    """The shard's finished files so far: cycles of its model, or points of its (model, layer)."""
    model, _, layer = next(a.split("=", 1)[1] for a in shard.command if a.startswith("--parity-shard=")).partition("@")
    if layer:
        return sum(1 for _ in (results / "sweep" / model / f"L{layer}").rglob("x*.json"))
    return sum(1 for _ in (results / "phase1" / model).rglob("r*.json"))


def wait(shards: list[Shard], executor: Any, args: argparse.Namespace, results: Path) -> None:
    """Poll until every shard has ended; resubmit faults; one progress line per change of state."""
    logs = Path(args.logs)
    last: dict[str, str] = {}
    while any(s.state not in ("DONE", "FAILED", "FINDINGS") for s in shards):
        for shard in shards:
            if shard.state in ("DONE", "FAILED", "FINDINGS"):
                continue
            if not shard.job.done():
                shard.state = str(shard.job.state)
            else:
                try:
                    shard.exit_code = int(shard.job.result())
                except Exception as exc:  # killed, preempted, timed out, or the job itself broke
                    shard.exit_code = None
                    shard.history.append(f"attempt {shard.attempts}: {type(exc).__name__}: {str(exc)[:200]}")
                if shard.exit_code in (0, FINDING):
                    shard.state = "DONE" if shard.exit_code == 0 else "FINDINGS"
                elif shard.attempts <= args.retries:
                    print(f"launch: {shard.name}: fault (exit {shard.exit_code}) — resubmitting, finished results "
                          f"are reused (log {shard.log})", flush=True)
                    _submit(executor, shard, logs)
                    shard.history.append(f"attempt {shard.attempts}: job {shard.job.job_id}, log {shard.log}")
                else:
                    shard.state = "FAILED"
            line = f"{shard.state}, attempt {shard.attempts}, {_results_on_disk(results, shard)} result files"
            if last.get(shard.name) != line:
                last[shard.name] = line
                print(f"launch: {shard.name}: {line}", flush=True)
        time.sleep(args.poll_s)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ours, pytest_args = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    ap = argparse.ArgumentParser(prog="python -m parity_lib.launch", description=__doc__.splitlines()[0])
    ap.add_argument("--executor", choices=("local", "slurm"), default="local",
                    help="submitit's LocalExecutor (this machine) or SLURM (default: %(default)s)")
    ap.add_argument("--shard-by", choices=("model", "layer"), default=None,
                    help="one shard per model, or per (model, layer) for a sweep (default: layer under -m sweep)")
    ap.add_argument("--partition", default="", help="SLURM partition (default: the cluster's default)")
    ap.add_argument("--gpus-per-shard", type=int, default=1, help="SLURM: GPUs per shard (default: %(default)s)")
    ap.add_argument("--cpus-per-shard", type=int, default=8, help="SLURM: CPUs per shard (default: %(default)s)")
    ap.add_argument("--mem-gb", type=int, default=64, help="SLURM: memory per shard (default: %(default)s)")
    ap.add_argument("--time-min", type=int, default=30, help="time limit per shard, minutes (default: %(default)s)")
    ap.add_argument("--array-parallelism", type=int, default=16,
                    help="SLURM: shards running at once (default: %(default)s)")
    ap.add_argument("--retries", type=int, default=2, help="resubmissions of a crashed shard (default: %(default)s)")
    ap.add_argument("--logs", default="results/launch", help="shard logs and submitit's files (default: %(default)s)")
    ap.add_argument("--poll-s", type=float, default=5.0, help=argparse.SUPPRESS)
    ap.add_argument("--no-report", action="store_true", help="submit and wait only; no report step")
    args = ap.parse_args(ours)
    if not pytest_args:
        ap.error("give the pytest command after --, e.g. -- -m \"preflight or study\"")
    marker = _option(pytest_args, "-m", "")
    by = args.shard_by or ("layer" if "sweep" in marker else "model")
    results = Path(_option(pytest_args, "--parity-results-dir", "results"))
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"]
    shards = [Shard(name, [*command, *part]) for name, part in plan(pytest_args, by)]
    executor = _executor(args)
    print(f"launch: {len(shards)} shard(s) by {by} through submitit's {args.executor} executor: "
          f"{', '.join(s.name for s in shards)}", flush=True)
    submit_all(executor, shards, Path(args.logs))
    wait(shards, executor, args, results)
    summary = {s.name: {"state": s.state, "exit_code": s.exit_code, "attempts": s.attempts, "log": s.log,
                        "history": s.history} for s in shards}
    Path(args.logs).mkdir(parents=True, exist_ok=True)
    (Path(args.logs) / "shards.json").write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
    failed = [s for s in shards if s.state == "FAILED"]
    for shard in failed:
        print(f"launch: {shard.name}: FAILED for good after {shard.attempts} attempt(s); its results are missing "
              f"data in the verdict; log {shard.log}", flush=True)
    if args.no_report:
        return 1 if failed else 0
    report = [*command, *pytest_args, "--parity-reuse-only"]
    print(f"launch: report step (computes nothing): {shlex.join(report)}", flush=True)
    env = {**os.environ, "PARITY_SHARDS_FILE": str(Path(args.logs) / "shards.json")}
    code = subprocess.run(report, env=env).returncode
    return code or (1 if failed else 0)


if __name__ == "__main__":
    sys.exit(main())
