"""The pytest plugin: options, fixtures, parametrization, worker→controller facts, result files.

Thin glue over the library. Tests ask for `model_name`, `tool_name`, `tool_pair` or `repeat` and are
parametrized from the command line; facts recorded with `record_check` / `record_cycle` travel from
xdist workers to the controller through `workeroutput` and are written once, at session end.
"""

from __future__ import annotations

import json
import os
import time
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest

from .cycle import StudySettings
from .errors import ConfigError
from .extractors import parse_tools
from .models import DEFAULT_MODELS, DTYPES, parse_model
from .prompts import load_prompts
from .results import CHECKLIST_NAME, merge_checklist
from .session import Suite

SUITE_KEY = pytest.StashKey[Suite]()
STARTED_KEY = pytest.StashKey[float]()
WRITTEN_KEY = pytest.StashKey[Any]()
FACTS_KEY = pytest.StashKey[dict]()


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("parity", "tooling parity suite")
    g.addoption("--model", action="append", default=[], metavar="NAME|PATH_OR_ID[:LAYER[:MULT]]",
                help=f"model to test (repeatable); default: {', '.join(DEFAULT_MODELS)}")
    g.addoption("--tools", default="hooks,nnsight,pyvene", help="comma-separated tools")
    g.addoption("--dtype", default="float32", choices=sorted(DTYPES), help="model dtype")
    g.addoption("--device", default="cpu", help="cpu, cuda or cuda:N (xdist workers pin cuda:worker%%n)")
    g.addoption("--prompts", default=None, metavar="PATH",
                help="prompt set: JSON like fixtures/prompts/paper_prompts.json, or a Python file with "
                     "HARMFUL/HARMLESS/EVAL lists (executed, since you named it)")
    g.addoption("--seed", type=int, default=42)
    g.addoption("--results-dir", default="results", help="where result JSON files go")
    g.addoption("--reports-dir", default="reports", help="where outcome reports go")
    g.addoption("--repeats", type=int, default=5, help="K repeats per (model, tool) (study)")
    g.addoption("--steer-with", default="hooks", choices=["hooks", "same"],
                help="hooks: one reference steerer for every tool's direction; same: each tool its own")
    g.addoption("--scope", default="target_to_final", choices=["target", "target_to_final"],
                help="steer layer L only, or L and every later layer (the paper's scope)")
    g.addoption("--multiplier", type=float, default=None, help="override every model's multiplier")
    g.addoption("--max-new-tokens", type=int, default=256)
    g.addoption("--gen-batch-size", type=int, default=0, help="prompts per generate call; 0 = all")
    g.addoption("--n-eval", type=int, default=0, help="use only the first N eval prompts; 0 = all")
    g.addoption("--fresh", action="store_true", help="recompute cycles even when a result file matches")
    g.addoption("--override-gate", action="store_true",
                help="run the study although the preflight checklist failed (investigating a divergence)")
    g.addoption("--deterministic", action="store_true",
                help="deterministic algorithms, fixed cuBLAS workspace, no TF32, eager attention (GPU)")
    g.addoption("--allow-network", action="store_true", help="let from_pretrained download weights")
    g.addoption("--trust-remote-code", action="store_true", help="run model code from the checkpoint")


def _worker_device(device: str, config: pytest.Config) -> str:
    """Each xdist worker on its own GPU: worker index modulo visible GPUs, chosen before any CUDA use."""
    worker = getattr(config, "workerinput", {}).get("workerid")
    if device != "cuda" or worker is None:
        return device
    import torch

    count = torch.cuda.device_count()
    return f"cuda:{int(worker.removeprefix('gw')) % count}" if count else device


def _build_suite(config: pytest.Config) -> Suite:
    opt = config.getoption
    try:
        tools = parse_tools(opt("--tools"))
        specs = tuple(parse_model(m) for m in (opt("--model") or DEFAULT_MODELS))
        prompts = load_prompts(opt("--prompts"), allow_python=True)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise pytest.UsageError(f"--model given twice for the same name: {names}")
    device = _worker_device(opt("--device"), config)
    _check_device(device)
    try:
        settings = StudySettings(opt("--repeats"), opt("--scope"), opt("--steer-with"), opt("--max-new-tokens"),
                                 opt("--gen-batch-size"), opt("--n-eval"), opt("--multiplier"))
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    return Suite(specs, tools, prompts, opt("--dtype"), device, opt("--seed"),
                 opt("--allow-network"), opt("--trust-remote-code"), settings,
                 "eager" if opt("--deterministic") else None)


def _check_device(device: str) -> None:
    import torch

    if device == "cpu":
        return
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise pytest.UsageError(f"--device {device}: no CUDA device is visible (torch "
                                    f"{torch.__version__}); use --device cpu or check CUDA_VISIBLE_DEVICES")
        return
    raise pytest.UsageError(f"--device {device!r}: use cpu, cuda or cuda:N")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--deterministic"):
        from .determinism import enable_determinism

        enable_determinism(config.getoption("--seed"))
    config.stash[SUITE_KEY] = _build_suite(config)
    config.stash[FACTS_KEY] = {"checks": [], "models": {}, "cycles": [], "gate": {}}
    config.stash[STARTED_KEY] = time.perf_counter()
    if not os.environ.get("PARITY_KEEP_THREADS"):
        import torch

        torch.set_num_threads(max(1, min(torch.get_num_threads(), int(os.environ.get("PARITY_THREADS", "1")))))


def pytest_report_header(config: pytest.Config) -> list[str]:
    s = config.stash[SUITE_KEY]
    return [f"parity: models={[m.name for m in s.models]} tools={list(s.tools)} dtype={s.dtype} "
            f"device={s.device} seed={s.seed}",
            f"parity: prompts={s.prompts.source} sha256={s.prompts.sha256[:16]}"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    suite = metafunc.config.stash[SUITE_KEY]
    names = [s.name for s in suite.models]
    fixtures = metafunc.fixturenames
    if "model_name" in fixtures and "model_name" not in _explicit(metafunc):
        metafunc.parametrize("model_name", names, scope="session")
    if "tool_name" in fixtures and "tool_name" not in _explicit(metafunc):
        metafunc.parametrize("tool_name", suite.tools)
    if "repeat" in fixtures:
        metafunc.parametrize("repeat", range(1, suite.settings.repeats + 1),
                             ids=[f"r{k}" for k in range(1, suite.settings.repeats + 1)])
    if "tool_pair" in fixtures:
        pairs = list(combinations(suite.tools, 2))
        metafunc.parametrize("tool_pair", pairs, ids=[f"{a}~{b}" for a, b in pairs])


def _explicit(metafunc: pytest.Metafunc) -> set[str]:
    return {n for m in metafunc.definition.iter_markers("parametrize") for n in m.args[0].split(",")}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """One xdist group per model, so `--dist loadgroup` keeps each model on one worker."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec and "model_name" in callspec.params:
            item.add_marker(pytest.mark.xdist_group(callspec.params["model_name"]))


@pytest.fixture(scope="session")
def suite(pytestconfig: pytest.Config) -> Suite:
    return pytestconfig.stash[SUITE_KEY]


@pytest.fixture(scope="session")
def loaded_model(suite: Suite, model_name: str, pytestconfig: pytest.Config):
    lm = suite.model(model_name)
    pytestconfig.stash[FACTS_KEY]["models"][model_name] = lm.describe()
    return lm


@pytest.fixture
def record_check(pytestconfig: pytest.Config, request: pytest.FixtureRequest):
    """Record a CheckResult for the checklist file: `record_check(model_name, result)`."""
    def record(model: str, result) -> None:
        pytestconfig.stash[FACTS_KEY]["checks"].append({"model": model, **result.to_dict(),
                                                        "test": request.node.nodeid})
    return record


@pytest.fixture(scope="session")
def record_check_session(pytestconfig: pytest.Config):
    """Session-scoped variant of `record_check`, for checks run by a fixture (the study gate)."""
    def record(model: str, result) -> None:
        pytestconfig.stash[FACTS_KEY]["checks"].append({"model": model, **result.to_dict(), "test": "gate"})
    return record


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Workers hand their facts over; the controller writes the checklist and the outcome report
    (before pytest-html renders, so the verdict and plots can go into the HTML)."""
    config = session.config
    facts = config.stash[FACTS_KEY]
    if hasattr(config, "workerinput"):
        config.workeroutput["parity_facts"] = json.dumps(facts, default=str)
        return
    checklist = _write_checklist(config, facts)
    if facts["cycles"]:
        written = _write_outcome(config, facts, checklist)
        config.stash[WRITTEN_KEY] = written
        if _regressed(written, facts) and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _regressed(written, facts: dict) -> bool:
    """Exit status policy: a divergence verdict (Outcome 1 or 2) or a failed cycle fails the run."""
    primary = written.decision.primary
    return (primary is not None and primary.outcome in (1, 2)) or any(
        c["status"] != "ok" for c in facts["cycles"])


def _write_outcome(config: pytest.Config, facts: dict, checklist: dict):
    from .report.session_report import write_outcome

    suite = config.stash[SUITE_KEY]
    per_tool = {m: v["per_tool"] for m, v in checklist.get("summary", {}).items()}
    extra = {"gate": facts["gate"], "study_settings": suite.settings.__dict__,
             "models_loaded": facts["models"]}
    return write_outcome(Path(config.getoption("--reports-dir")), facts["cycles"], per_tool, suite.tools,
                         suite.provenance(), time.perf_counter() - config.stash[STARTED_KEY], extra)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    written = config.stash.get(WRITTEN_KEY, None)
    if written is None:
        return
    from .report.session_report import terminal_lines

    terminalreporter.section("parity: Phase 1 outcome")
    for line in terminal_lines(written):
        terminalreporter.write_line(line)


@pytest.hookimpl(optionalhook=True)
def pytest_html_results_summary(prefix: list, summary: list, postfix: list, session: pytest.Session) -> None:
    written = session.config.stash.get(WRITTEN_KEY, None)
    if written is None:
        return
    from html import escape

    d = written.decision
    parts = [f"<h2>Phase 1 outcome: {escape(d.verdict)}</h2>", f"<p>{escape(d.next_step)}</p>"]
    for model, images in written.plots.items():
        parts.append(f"<h3>{escape(model)}</h3>")
        parts += [f'<img alt="{escape(c)}" title="{escape(c)}" src="{uri}" style="max-width:45%">'
                  for c, uri in images.items()]
    prefix.extend(parts)


def pytest_testnodedown(node: Any, error: Any) -> None:
    raw = getattr(node, "workeroutput", {}).get("parity_facts")
    if raw:
        theirs = json.loads(raw)
        mine = node.config.stash[FACTS_KEY]
        mine["checks"].extend(theirs["checks"])
        mine["models"].update(theirs["models"])
        mine.setdefault("cycles", []).extend(theirs.get("cycles", []))
        mine.setdefault("gate", {}).update(theirs.get("gate", {}))


def _write_checklist(config: pytest.Config, facts: dict) -> dict:
    if not facts["checks"]:
        return {}
    suite = config.stash[SUITE_KEY]
    path = Path(config.getoption("--results-dir")) / CHECKLIST_NAME
    return merge_checklist(path, facts["checks"], suite.config_key(), suite.provenance(), facts["models"])
