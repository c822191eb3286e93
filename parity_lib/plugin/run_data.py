"""The run's data, owned by the plugin: what the fixtures record, merged across xdist workers.

One `ParityRun` per pytest process. Fixtures record checks, models, gate decisions and cycles on it;
an xdist worker hands its run to the controller as JSON at session end (`to_json` / `merge`), the way
syrupy merges its session; the controller writes the checklist and the outcome report once. It is also a
small pytest plugin of its own: it prints progress lines and collects warnings from the tools.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from parity_lib.plugin.configure import build_suite
from parity_lib.storage.results import CheckFact, CycleFact

if TYPE_CHECKING:
    from parity_lib.run.session import Suite


RUN_KEY = pytest.StashKey["ParityRun"]()


PROGRESS = "parity_progress"


FAILED = "parity_failed"  # a failed preflight/study test: what the first line must name (see `failure_of`)


PROTOCOL_MARKS = ("preflight", "study", "sweep")  # a sweep's failures head the sweep report, not the study's


WATCHED = ("transformers", "nnsight", "pyvene", "torch", "accelerate", "tokenizers")


def watched() -> tuple[str, ...]:
    """Where warnings come from that the report lists: the core libraries and every registered tool's package."""
    from parity_lib.tools import tools

    return tuple(dict.fromkeys((*WATCHED, *(t.package.replace("-", "_") for t in tools().values() if t.package))))


@dataclass(eq=False)  # registered as a plugin: hashed by identity
class ParityRun:
    suite: Suite
    checks: list[CheckFact] = field(default_factory=list)
    models: dict[str, Any] = field(default_factory=dict)
    cycles: list[CycleFact] = field(default_factory=list)
    gate: dict[str, Any] = field(default_factory=dict)
    baselines: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)  # model -> kind -> key -> measured value
    warnings: dict[str, dict[str, Any]] = field(default_factory=dict)
    failed_tests: list[dict[str, Any]] = field(default_factory=list)  # controller: failed preflight/study tests
    sweeps: dict[str, Any] = field(default_factory=dict)  # "model@layer" -> sweep_summary.summarize_layer
    config: pytest.Config | None = field(default=None, repr=False)
    gate_decided: dict[str, Any] = field(default_factory=dict, repr=False)  # this process's gate decisions
    _printed: set[str] = field(default_factory=set)
    _pending: list[str] = field(default_factory=list)
    _said: set[str] = field(default_factory=set)  # `progress(once=...)` keys already shown
    checklist_file: dict[str, Any] = field(default_factory=dict, repr=False)  # what `finish` wrote or read
    _on_device: tuple[str, Any] | None = None  # the model whose peak device memory is being measured, and where

    @classmethod
    def from_config(cls, config: pytest.Config) -> ParityRun:
        return cls(build_suite(config), config=config)

    # -- recording -------------------------------------------------------------------------------
    def record_check(self, model: str, result: Any, test: str) -> None:
        self.checks.append(CheckFact.of(model, result, test))

    def record_cycle(self, fact: CycleFact) -> None:
        self.cycles.append(fact)

    def device_peak(self, model: str | None = None, device: Any = None) -> None:
        """Peak device memory per model, on a GPU: the model measured so far gets its peak recorded; `model`
        (on `device`) is measured from now on (None: the end of this process's work)."""
        import sys

        if self._on_device is not None and "torch" in sys.modules:
            import torch

            name, where = self._on_device
            peak = torch.cuda.max_memory_allocated(where) / 2**30
            self.models.setdefault(name, {})["peak_device_gib"] = round(peak, 2)
        self._on_device = None
        if model is not None and device is not None and getattr(device, "type", "") == "cuda":
            import torch

            torch.cuda.reset_peak_memory_stats(device)
            self._on_device = (model, device)

    def to_json(self) -> str:
        return json.dumps({"checks": [asdict(c) for c in self.checks], "models": self.models,
                           "cycles": [asdict(c) for c in self.cycles], "gate": self.gate, "baselines": self.baselines,
                           "notes": self.notes, "warnings": self.warnings, "sweeps": self.sweeps}, default=str)

    def merge(self, raw: str) -> None:
        theirs = json.loads(raw)
        self.checks.extend(CheckFact(**c) for c in theirs["checks"])
        self.models.update(theirs["models"])
        self.cycles.extend(CycleFact(**c) for c in theirs["cycles"])
        self.gate.update(theirs["gate"])
        self.baselines.update(theirs["baselines"])
        self.sweeps.update(theirs.get("sweeps", {}))
        for model, kinds in theirs["notes"].items():
            for kind, values in kinds.items():
                self.notes.setdefault(model, {}).setdefault(kind, {}).update(values)
        for key, w in theirs["warnings"].items():
            self._add_warning(key, w)

    # -- progress --------------------------------------------------------------------------------
    def header_lines(self) -> list[str]:
        s = self.suite
        note = s.attention_note()
        return [f"parity: models={[m.name for m in s.models]} tools={list(s.tools)} dtype={s.dtype} "
                f"device={s.device} seed={s.seed}",
                f"parity: prompts={s.prompts.source} sha256={s.prompts.sha256[:16]}",
                *([f"parity: {note}"] if note else [])]

    def _reporter(self) -> Any:
        config = self.config
        if config is None or config.get_verbosity() < 0:
            return None
        return config.pluginmanager.get_plugin("terminalreporter")

    def announce(self, line: str) -> None:
        """Long work starts now: printed at once in a single process (an xdist worker's terminal is not
        shown; its lines arrive with its reports)."""
        reporter = None if hasattr(self.config, "workerinput") else self._reporter()
        if reporter is not None:
            reporter.ensure_newline()
            reporter.write_line(f"parity: {line} ...")

    def progress(self, line: str, *, once: str | None = None) -> None:
        """Work finished: the line rides on the current test's report to the controller's terminal. With
        `once`, only the first line of that key is shown (pytest sets a parametrized session fixture up
        again when the parameter alternates; a model loaded from the cache is not news)."""
        if once is not None:
            if once in self._said:
                return
            self._said.add(once)
        self._pending.append(line)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: Any) -> Any:
        report = yield
        if self._pending:
            report.user_properties = [*report.user_properties, *((PROGRESS, line) for line in self._pending)]
            self._pending.clear()
        if report.failed:
            failure = failure_of(item, call, report.when)
            if failure is not None:
                if failure.get("fault"):
                    _not_run(item, call, report, failure)
                report.user_properties = [*report.user_properties, (FAILED, json.dumps(failure))]
        return report

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Lines the fixtures attached to a test's report (cycle finished, gate decided, model loaded)
        print on the controller as the report arrives, so they show under xdist too; quiet with -q."""
        self.failed_tests += [json.loads(v) for k, v in report.user_properties if k == FAILED]
        lines = [str(v) for k, v in report.user_properties if k == PROGRESS and v not in self._printed]
        if not lines:
            return
        self._printed.update(lines)
        reporter = self._reporter()
        if reporter is None:
            return
        reporter.ensure_newline()
        for line in lines:
            reporter.write_line(f"parity: {line}")

    @pytest.hookimpl(trylast=True)
    def pytest_warning_recorded(self, warning_message: Any, when: str, nodeid: str,
                                location: Any) -> None:
        """Warnings from the tools (deprecations are the drift signal a regression gate needs): counted,
        with the first place each was seen, and listed in the report."""
        path = str(warning_message.filename).replace("\\", "/")
        source = next((p for p in watched() if f"/{p}/" in path), None)
        if source is None:
            return
        text = str(warning_message.message).strip().splitlines()[0][:300]
        key = f"{warning_message.category.__name__}|{text}"
        self._add_warning(key, {"count": 1, "category": warning_message.category.__name__, "message": text,
                                "source": source, "first_seen": nodeid or when,
                                "where": f"{Path(path).name}:{warning_message.lineno}"})

    def _add_warning(self, key: str, entry: dict[str, Any]) -> None:
        if key in self.warnings:
            self.warnings[key]["count"] += entry["count"]
        else:
            self.warnings[key] = dict(entry)

    # -- the end ---------------------------------------------------------------------------------
    def finish(self, config: pytest.Config, total_s: float, interrupted: bool) -> Any:
        """Write the checklist and, when cycles ran, the outcome report; return what was written."""
        from parity_lib.storage.results import CHECKLIST_NAME, merge_checklist, read_json

        checklist: dict[str, Any] = {}
        path = Path(config.getoption("--parity-results-dir")) / CHECKLIST_NAME
        before = read_json(path) or {}
        if self.checks:
            checklist = merge_checklist(path, [asdict(c) for c in self.checks], self.suite.checklist_config(),
                                        self.suite.provenance(), self.models)
        else:  # one source of truth: a preflight run earlier, same configuration, fills the report's table
            old = read_json(path)
            checklist = old if old and old.get("config") == self.suite.checklist_config() else {}
        # when the entries this run did not touch were written: the file's time before this run rewrote it
        self.checklist_file = {**checklist, "earlier_utc": (before.get("provenance") or {}).get("utc")}
        if not self.cycles:
            return None
        from parity_lib.report.session_report import write_outcome

        per_tool = {m: v["per_tool"] for m, v in checklist.get("summary", {}).items()}
        from parity_lib.tools import describe

        extra = {"gate": self.gate, "baselines": self.baselines, "notes": self.notes,
                 "tools": [describe(t) for t in self.suite.tools], "attention_note": self.suite.attention_note(),
                 "checklist_entries": checklist.get("entries", []),
                 "study_settings": self.suite.settings.__dict__, "models_loaded": self.models,
                 "warnings": sorted(self.warnings.values(), key=lambda w: -w["count"]),
                 "failed_tests": [t for t in self.failed_tests if not t.get("sweep")],
                 "run": {"interrupted": interrupted, "repeats": self.suite.settings.repeats,
                         "fresh": bool(config.getoption("--parity-fresh")),
                         "models_expected": [m.name for m in self.suite.models],
                         "models_with_cycles": sorted({c.model for c in self.cycles})}}
        return write_outcome(Path(config.getoption("--parity-reports-dir")), self.cycles, per_tool,
                             self.suite.tools, self.suite.provenance(), total_s, extra)


def finish_sweep(run: ParityRun, config: pytest.Config) -> dict[str, Any] | None:
    """The sweep report, when this run swept; with --parity-write-defaults, the recommendation written into each
    directory model (never into the shipped organisms, whose defaults come from their own measurement)."""
    if not run.sweeps:
        return None
    from parity_lib.models.registry import MODELS_DIR
    from parity_lib.protocol.headline import framing
    from parity_lib.report.sweep_report import write_defaults, write_sweep

    s = run.suite
    grid = (", ".join(f"×{m:g}" for m in s.sweep.multipliers) if s.sweep.multipliers else
            "1/32, 1/16, 1/8, 1/4, 1/2 and 1 × the median norm of the layer's output at the last prompt token "
            "(3 significant digits)")
    settings = {"tools": list(s.tools), "steer_with": s.settings.steer_with, "scope": s.settings.scope,
                "n_eval": s.settings.n_eval, "max_new_tokens": s.settings.max_new_tokens, "repeats": s.sweep.repeats,
                "grid": grid + ", plus the model's own multiplier", "layers": s.sweep.layers or "default depths"}
    failed = [t for t in run.failed_tests if t.get("sweep")]
    written = write_sweep(Path(config.getoption("--parity-reports-dir")), list(run.sweeps.values()), settings,
                          {m.name: {"layer": m.layer} for m in s.models}, failed, s.provenance(), framing(run.models))
    written["defaults"] = {}
    if config.getoption("--parity-write-defaults"):
        for spec in s.models:
            rec = written["models"].get(spec.name, {}).get("recommendation") or {}
            where = Path(spec.source).expanduser()
            if MODELS_DIR in where.resolve().parents:
                written["defaults"][spec.name] = "not written: a shipped organism keeps its measured defaults"
            elif rec.get("layer") is None or not where.is_dir():
                written["defaults"][spec.name] = "not written: " + ("no recommendation" if rec.get("layer") is None
                                                                    else "not a directory model")
            else:
                written["defaults"][spec.name] = str(write_defaults(where, rec, s.settings.scope, spec.name))
    return written


def failure_of(item: pytest.Item, call: Any, when: str) -> dict[str, Any] | None:
    """A failed or errored test of the protocol (preflight or study), as the first line names it: the test's
    claim with its parameters, the model and tools it was about, and the first line of its message (the number
    against its bar, as the tests word their assertions). Other tests (the self-tests) are not the protocol's."""
    if not any(item.get_closest_marker(m) for m in PROTOCOL_MARKS):
        return None
    params = getattr(getattr(item, "callspec", None), "params", {})
    tools = params.get("tool_pair") or ((params["tool_name"],) if "tool_name" in params else ())
    excinfo = getattr(call, "excinfo", None)
    text = str(excinfo.value) if excinfo is not None else ""
    message = next((ln.strip() for ln in text.splitlines() if ln.strip()), excinfo.typename if excinfo else "")
    model = params.get("model_name") or (params.get("sweep_layer") or (None,))[0]
    from parity_lib.protocol.faults import classify

    fault = classify(excinfo.value) if excinfo is not None else None
    return {"test": item.name, "when": when, "model": model, "tools": list(tools), "message": message[:300],
            "sweep": bool(item.get_closest_marker("sweep")),
            "fault": {**fault.to_dict(), "model": model} if fault is not None else None}


def _not_run(item: pytest.Item, call: Any, report: pytest.TestReport, failure: dict[str, Any]) -> None:
    """A fault of the machine: the test is reported *not run* (skipped, with the cause), never failed against a
    tool; what its exception held is let go at once, so one out-of-memory does not starve the tests after it."""
    import sys

    from parity_lib.protocol.faults import free_frames

    fault = failure["fault"]
    report.outcome = "skipped"
    report.longrepr = (str(item.path), (item.location[1] or 0) + 1, f"NOT RUN ({fault['title']}): {fault['detail']}")
    if call.excinfo is not None:
        free_frames(call.excinfo.value)
    sys.last_value = sys.last_traceback = None  # type: ignore[assignment]
    if "torch" in sys.modules:
        from parity_lib.models.memory import release

        release()


def run_of(config: pytest.Config) -> ParityRun:
    return config.stash[RUN_KEY]


def suite_of(config: pytest.Config) -> Suite:
    return config.stash[RUN_KEY].suite
