"""The pytest plugin: options, activation, parametrization, progress and the session's reports.

Installed, it is loaded into every pytest run of the environment, so it is inert until asked: no torch
import, no model, no thread setting, no files — unless the project declares `parity_suite = true` in
its pytest configuration (this repository does), a `--parity-*` option is given, the run collects the
protocol's own tests (`--pyargs parity_lib.suite` or the installed suite's path: progress, verdict and reports
from any directory), or a test asks for one of the suite's fixtures (`suite`, `loaded_model`). Everything heavy
is imported inside functions. Fixtures that compute and record live in `pytest_fixtures`; the run's data in `run_data`.
"""

from __future__ import annotations

import time
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest

from parity_lib.plugin.activation import STARTED_KEY, activate, is_active
from parity_lib.plugin.run_data import RUN_KEY, ParityRun, finish_sweep, suite_of

# the options, and the fixtures (lightweight to import: heavy work is lazy)
pytest_plugins = ["parity_lib.plugin.options", "parity_lib.plugin.fixtures"]


WRITTEN_KEY = pytest.StashKey[Any]()


NO_STUDY_KEY = pytest.StashKey[dict]()  # a run without cycles: what its reports say instead of a verdict


SWEEP_KEY = pytest.StashKey[dict]()  # the sweep report written by this run


SUITE_PARAMS = ("model_name", "tool_name", "repeat", "tool_pair", "sweep_layer")


MARKERS = {
    "preflight": "protocol Section D tensor-site parity checklist (run before any study)",
    "study": "protocol Sections B/C extraction + steering cycles over (model, tool, repeat)",
    "sweep": "opt-in: layers × multipliers per tool: dose-response, working window, steering scale, recommended "
             "defaults; runs only when the -m expression names it",
    "golden": "compare checklist outcome, direction summary and steered labels/tokens with golden/ (syrupy)",
    "sweep_own_layer": "a sweep test collected only at each model's own layer",
    "rebuild": "opt-in: rebuild the shipped organisms from their seeds and compare behaviour (~20 min); "
               "runs only when the -m expression names it",
}


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    from parity_lib.plugin.rootdir import restore_rootdir

    restore_rootdir(early_config, args)


def _options_given(config: pytest.Config) -> bool:
    return any(str(a).startswith("--parity-") for a in config.invocation_params.args)


SUITE_DIR = Path(__file__).resolve().parents[1] / "suite"


def collects_suite(config: pytest.Config) -> bool:
    """The run collects the protocol's tests (`--pyargs parity_lib.suite`, or a path at or inside the installed
    suite): the suite is then active wherever it runs, with or without --parity-* options."""
    for arg in (str(a).split("::")[0] for a in config.args):
        if config.option.pyargs and (arg == "parity_lib" or arg.startswith("parity_lib.suite")):
            return True
        path = Path(arg).expanduser().resolve()
        if path == SUITE_DIR or SUITE_DIR in path.parents or path == SUITE_DIR.parent:
            return True
    return False


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    if not config.pluginmanager.hasplugin("xdist"):  # `-p no:xdist`: a test file's xdist_group mark stays legal
        config.addinivalue_line("markers", "xdist_group(name): keep tests on one xdist worker (xdist not active)")
    if config.option.help or config.option.version:
        return
    if not (config.getini("parity_suite") or _options_given(config) or collects_suite(config)):
        return
    activate(config)
    _route_reports(config)
    if config.pluginmanager.hasplugin("xdist"):
        from parity_lib.plugin.xdist_hooks import XdistHooks

        config.pluginmanager.register(XdistHooks(), "parity-xdist")


def _route_reports(config: pytest.Config) -> None:
    """junit.xml and report.html go under --parity-reports-dir unless given explicitly; a collect-only run
    writes neither, so it never overwrites the last real run's report."""
    if config.option.collectonly or hasattr(config, "workerinput"):
        return
    reports = Path(config.getoption("--parity-reports-dir"))
    if hasattr(config.option, "xmlpath") and not config.option.xmlpath:
        config.option.xmlpath = str(reports / "junit.xml")
    if hasattr(config.option, "htmlpath") and not config.option.htmlpath:
        config.option.htmlpath = str(reports / "report.html")
        config.option.self_contained_html = True


@pytest.hookimpl(optionalhook=True)
def pytest_metadata(metadata: dict, config: pytest.Config) -> None:
    """The tool versions in pytest-html's Environment table. pytest-metadata builds the table in its own
    `pytest_configure`, before or after ours depending on plugin order, so activation is read from the config."""
    if config.option.help or config.option.version:  # --help stays fast: no torch import
        return
    if is_active(config) or config.getini("parity_suite") or _options_given(config):
        from parity_lib.storage.provenance import versions

        metadata.update({f"parity: {k}": v or "not installed" for k, v in versions().items()})


def pytest_report_header(config: pytest.Config) -> list[str]:
    if not is_active(config):
        return []
    return config.stash[RUN_KEY].header_lines()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    config = metafunc.config
    wanted = [n for n in SUITE_PARAMS if n in metafunc.fixturenames and n not in _explicit(metafunc)]
    if not wanted or not (is_active(config) or {"suite", "loaded_model"} & set(metafunc.fixturenames)):
        return
    activate(config)
    s = suite_of(config)
    shard_model, _, shard_layer = config.getoption("--parity-shard").partition("@")
    if "model_name" in wanted:
        metafunc.parametrize("model_name", [m.name for m in s.models if shard_model in ("", m.name)],
                             scope="session")
    if "tool_name" in wanted:
        metafunc.parametrize("tool_name", s.tools)
    if "repeat" in wanted:
        k = s.settings.repeats
        metafunc.parametrize("repeat", range(1, k + 1), ids=[f"r{i}" for i in range(1, k + 1)])
    if "sweep_layer" in wanted:  # one unit of work per (model, layer): ids start with the model, then L<layer>
        points = [(m.name, layer) for m in s.models for layer in _sweep_layers(s, m)
                  if shard_model in ("", m.name) and shard_layer in ("", str(layer))]
        if metafunc.definition.get_closest_marker("sweep_own_layer"):
            points = [(m, layer) for m, layer in points if layer == next(x for x in s.models if x.name == m).layer]
        metafunc.parametrize("sweep_layer", points, ids=[f"{m}-L{layer}" for m, layer in points], scope="session")
    if "tool_pair" in wanted:
        pairs = list(combinations(s.tools, 2))
        metafunc.parametrize("tool_pair", pairs, ids=[f"{a}~{b}" for a, b in pairs])


def _sweep_layers(s: Any, spec: Any) -> list[int]:
    """The layers a sweep visits on this model (its depth read from its config, nothing loaded)."""
    from parity_lib.plugin.validate import depth
    from parity_lib.run.sweep import resolve_layers

    return resolve_layers(s.sweep.layers, depth(spec, s.allow_network), spec.layer)


def _explicit(metafunc: pytest.Metafunc) -> set[str]:
    return {n.strip() for m in metafunc.definition.iter_markers("parametrize") for n in m.args[0].split(",")}


OPT_IN = ("rebuild", "sweep")  # long runs: collected only when the -m expression names them


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The organism rebuild and the sweeps run only when the -m expression names them (a plain `pytest` is the
    test command, not a 50-minute sweep). (`--dist loadgroup` keeps each model, or each sweep's (model, layer),
    on one worker through the scheduler in `xdist_hooks.py`, which reads them from the test id.)"""
    markexpr = config.option.markexpr or ""
    for mark in OPT_IN:
        if mark not in markexpr:
            skipped = [i for i in items if i.get_closest_marker(mark)]
            if skipped:
                config.hook.pytest_deselected(items=skipped)
                items[:] = [i for i in items if not i.get_closest_marker(mark)]


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Workers hand their data over; the controller writes the checklist and the outcome report (before
    junitxml and pytest-html write theirs, so the verdict goes into both)."""
    config = session.config
    if not is_active(config):
        return
    run = config.stash[RUN_KEY]
    run.device_peak()  # the last model's peak device memory
    if hasattr(config, "workerinput"):
        config.workeroutput["parity_run"] = run.to_json()  # type: ignore[attr-defined]  # set by xdist
        return
    interrupted = session.shouldstop or session.exitstatus == pytest.ExitCode.INTERRUPTED
    try:
        written = run.finish(config, time.perf_counter() - config.stash[STARTED_KEY], interrupted=bool(interrupted))
        swept = finish_sweep(run, config)
    except OSError as exc:  # a full disk at the very end: say it plainly, never a traceback about the report
        from parity_lib.protocol.faults import classify

        fault = classify(exc)
        if fault is None:
            raise
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"parity: {fault.title}: the outcome report could not be written ({fault.detail}); "
                                f"{fault.advice}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        return
    if swept is not None:
        config.stash[SWEEP_KEY] = swept
        _sweep_properties(config, swept)
    faulted = any(t.get("fault") for t in run.failed_tests)
    if faulted and session.exitstatus == pytest.ExitCode.OK:  # not-run checks are skips, but the run is not green
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if written is None:
        _no_study(config, run, bool(interrupted))
        return
    config.stash[WRITTEN_KEY] = written
    _junit_properties(config, written)
    if written.regressed and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _sweep_properties(config: pytest.Config, swept: dict[str, Any]) -> None:
    from _pytest.junitxml import xml_key

    xml = config.stash.get(xml_key, None)
    if xml is None:
        return
    xml.add_global_property("parity_sweep_verdict", swept["headline"])
    for model, concl in swept["models"].items():
        rec = concl["recommendation"]
        xml.add_global_property(f"parity_sweep_{model}_layer", str(rec["layer"]))
        xml.add_global_property(f"parity_sweep_{model}_multiplier", str(rec["multiplier"]))


def _no_study(config: pytest.Config, run: ParityRun, interrupted: bool) -> None:
    """A run without cycles writes its own outcome file (no verdict, and why); its junit.xml, report.html and
    terminal say the same and name the last complete outcome, kept aside."""
    if config.option.collectonly:
        return
    from parity_lib.report.session_report import write_no_study

    lines = write_no_study(Path(config.getoption("--parity-reports-dir")), run.checklist_file,
                           {c.model for c in run.checks}, [m.name for m in run.suite.models], interrupted,
                           [t for t in run.failed_tests if not t.get("sweep")], run.suite.provenance(),
                           time.perf_counter() - config.stash[STARTED_KEY], swept=bool(run.sweeps))
    config.stash[NO_STUDY_KEY] = lines
    from _pytest.junitxml import xml_key

    xml = config.stash.get(xml_key, None)
    if xml is not None:
        for key, line in lines.items():
            xml.add_global_property(f"parity_{key}", line)


def _junit_properties(config: pytest.Config, written: Any) -> None:
    from _pytest.junitxml import xml_key

    xml = config.stash.get(xml_key, None)
    if xml is None:
        return
    for name, value in written.key_numbers().items():
        xml.add_global_property(f"parity_{name}", str(value))


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    swept = config.stash.get(SWEEP_KEY, None)
    if swept is not None:
        terminalreporter.section("parity: sweep")
        terminalreporter.write_line(f"Sweep: {swept['headline']}")
        for model, where in swept.get("defaults", {}).items():
            terminalreporter.write_line(f"  defaults for {model}: {where}")
        terminalreporter.write_line(f"  report: {swept['paths'][-1]}")
    written = config.stash.get(WRITTEN_KEY, None)
    if written is None:
        lines = config.stash.get(NO_STUDY_KEY, None)
        if lines:
            terminalreporter.section("parity: Phase 1 outcome")
            for line in lines.values():
                terminalreporter.write_line(line)
        return
    from parity_lib.report.session_report import terminal_lines

    terminalreporter.section("parity: Phase 1 outcome")
    for line in terminal_lines(written):
        terminalreporter.write_line(line)


def pytest_unconfigure(config: pytest.Config) -> None:
    """The verdict heads report.html, above pytest-html's Environment table (written by now)."""
    htmlpath = getattr(config.option, "htmlpath", None)
    if not htmlpath or hasattr(config, "workerinput"):
        return
    written = config.stash.get(WRITTEN_KEY, None)
    lines = config.stash.get(NO_STUDY_KEY, None)
    if written is None and not lines:
        return
    from parity_lib.report.html import put_verdict_first

    if written is not None:
        head = written.report["headline"]
        put_verdict_first(htmlpath, head["text"], [f"Section E verdict: {written.decision.verdict}",
                                                   f"Next: {head['next_step']}"])
    else:
        first, *rest = lines.values()
        put_verdict_first(htmlpath, first, rest[:1])


@pytest.hookimpl(optionalhook=True)
def pytest_html_results_summary(prefix: list, summary: list, postfix: list, session: pytest.Session) -> None:
    written = session.config.stash.get(WRITTEN_KEY, None)
    if written is not None:
        from parity_lib.report.html import summary_html

        prefix.extend(summary_html(written))
        return
    lines = session.config.stash.get(NO_STUDY_KEY, None)
    if lines:
        from parity_lib.report.html import no_study_html

        prefix.extend(no_study_html(lines))
