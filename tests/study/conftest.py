"""Study fixtures: the cycle store (result files, resume) and the preflight gate per model."""

from __future__ import annotations

from pathlib import Path

import pytest

from parity_lib.gate import gate
from parity_lib.plugin import FACTS_KEY
from parity_lib.results import CHECKLIST_NAME, cycle_path
from parity_lib.study import CycleStore


@pytest.fixture(scope="session")
def store(suite, pytestconfig) -> CycleStore:
    reporter = pytestconfig.pluginmanager.get_plugin("terminalreporter")

    def log(line: str) -> None:
        if reporter is not None and pytestconfig.getoption("verbose") > 0:
            reporter.write_line(line)

    return CycleStore(Path(pytestconfig.getoption("--results-dir")), suite.prompts, suite.settings,
                      suite.provenance, fresh=pytestconfig.getoption("--fresh"), log=log)


@pytest.fixture(scope="session")
def gate_open(loaded_model, suite, pytestconfig, model_name, record_check_session):
    """No cycle of a model runs until raw activations match across its tools (or the gate is overridden)."""
    path = Path(pytestconfig.getoption("--results-dir")) / CHECKLIST_NAME
    status = gate(loaded_model, suite.tools, suite.prompts, path, suite.config_key())
    for result in status.results:
        record_check_session(model_name, result)
    overridden = pytestconfig.getoption("--override-gate")
    pytestconfig.stash[FACTS_KEY].setdefault("gate", {})[model_name] = {
        "passed": status.passed, "source": status.source, "failed": list(status.failed),
        "overridden": overridden and not status.passed}
    if not status.passed and not overridden:
        pytest.fail(status.message(), pytrace=False)
    return status


@pytest.fixture
def cycle(store, loaded_model, gate_open, tool_name, repeat, pytestconfig):
    """The cycle's record; its outcome (ok or error) is reported to the controller for the report."""
    fact = {"model": loaded_model.spec.name, "tool": tool_name, "repeat": repeat,
            "path": str(cycle_path(store.results_dir, loaded_model.spec.name, tool_name, repeat)),
            "config_key": store.key(loaded_model, tool_name)}
    try:
        record, computed = store.ensure(loaded_model, tool_name, repeat)
    except Exception as exc:
        pytestconfig.stash[FACTS_KEY]["cycles"].append({**fact, "status": "error", "error": f"{type(exc).__name__}: {exc}"})
        raise
    pytestconfig.stash[FACTS_KEY]["cycles"].append({**fact, "status": "ok", "computed": computed})
    return record
