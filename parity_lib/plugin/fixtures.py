"""The suite's fixtures: they compute and record; the tests only assert.

`suite` (the run's configuration), `loaded_model` (once per process and model), `record_check`
(a Section D result into the checklist), `store` (cycle files and resume), `gate_open` (the protocol's
hard stop, per model) and `cycle` (one (model, tool, repeat) record). Each records on the plugin's
`ParityRun` and says what it did in a progress line. Heavy imports stay inside the fixtures.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import pytest

from parity_lib.plugin.run_data import ParityRun, run_of


def _run(config: pytest.Config) -> ParityRun:
    from parity_lib.plugin.activation import activate

    activate(config)
    return run_of(config)


@pytest.fixture(scope="session")
def suite(pytestconfig: pytest.Config):
    return _run(pytestconfig).suite


@pytest.fixture(scope="session")
def loaded_model(suite, model_name: str, pytestconfig: pytest.Config):
    run = _run(pytestconfig)
    if model_name not in run.models:
        run.announce(f"{model_name}: loading ({suite.dtype}, {suite.device})")
    started = time.perf_counter()
    waited: list[str] = []

    def on_wait(line: str) -> None:
        waited.append(line)
        run.announce(line)

    lm = suite.model(model_name, on_wait)
    loaded_s = time.perf_counter() - started
    plan = suite.study_plan(lm)
    lm.extras["memory_plan"] = plan.to_dict()
    if model_name not in run.models:
        from parity_lib.models.facts import activation_scale, asked

        run.device_peak(model_name, lm.device)
        run.models[model_name] = {**lm.describe(), "asked": asked(lm, suite.prompts),
                                  "activations": activation_scale(lm, suite.prompts)}
    turn = f"; waited {loaded_s:.0f}s for its turn on the GPU" if waited else ""
    run.progress(f"{model_name}: loaded in {loaded_s:.1f}s "
                 f"({lm.describe()['architecture']}, {lm.n_layers} layers, {suite.dtype}, {lm.device}{turn}); "
                 f"study's packed call: {plan.describe()}", once=f"loaded {model_name}")
    return lm


@pytest.fixture
def record_check(pytestconfig: pytest.Config, request: pytest.FixtureRequest) -> Callable[[str, Any], None]:
    """Record a CheckResult for the checklist file: `record_check(model_name, result)`."""
    run = _run(pytestconfig)

    def record(model: str, result: Any) -> None:
        run.record_check(model, result, request.node.nodeid)
    return record


@pytest.fixture
def record_note(pytestconfig: pytest.Config, model_name: str) -> Callable[[str, str, Any], None]:
    """`record_note(kind, key, value)`: a measured number for the report's "how parity was judged" table."""
    run = _run(pytestconfig)

    def record(kind: str, key: str, value: Any) -> None:
        run.notes.setdefault(model_name, {}).setdefault(kind, {})[key] = value
    return record


@pytest.fixture(scope="session")
def store(suite, pytestconfig: pytest.Config):
    from parity_lib.run.study import CycleStore

    return CycleStore(Path(pytestconfig.getoption("--parity-results-dir")), suite.prompts, suite.settings,
                      suite.provenance, fresh=pytestconfig.getoption("--parity-fresh"), tools=suite.tools,
                      log=lambda line: None, reuse_only=pytestconfig.getoption("--parity-reuse-only"))


@pytest.fixture(scope="session")
def gate_open(loaded_model, suite, pytestconfig: pytest.Config, model_name: str):
    """No cycle of a model runs until raw activations match across its tools (or the gate is overridden)."""
    return _gate(loaded_model, suite, pytestconfig, model_name)


def _gate(loaded_model: Any, suite: Any, pytestconfig: pytest.Config, model_name: str) -> Any:
    from parity_lib.run.gate import gate
    from parity_lib.storage.results import CHECKLIST_NAME

    run = _run(pytestconfig)
    started = time.perf_counter()
    status = run.gate_decided.get(model_name)  # pytest may set a session fixture up again when params alternate
    if status is None:
        run.announce(f"{model_name}: preflight gate ({', '.join(suite.tools)})")
        path = Path(pytestconfig.getoption("--parity-results-dir")) / CHECKLIST_NAME
        status = gate(loaded_model, suite.tools, suite.prompts, path, suite.checklist_config())
        run.gate_decided[model_name] = status
        for result in status.results:
            run.record_check(model_name, result, "gate")
    overridden = pytestconfig.getoption("--parity-override-gate")
    run.gate[model_name] = {"passed": status.passed, "source": status.source, "failed": list(status.failed),
                            "overridden": overridden and not status.passed}
    verdict = "open" if status.passed else ("OVERRIDDEN" if overridden else "CLOSED")
    run.progress(f"{model_name}: gate {verdict} ({status.source}, {time.perf_counter() - started:.1f}s)",
                 once=f"gate {model_name}")
    if not status.passed and not overridden:
        pytest.fail(status.message(), pytrace=False)
    return status


@pytest.fixture(scope="session")
def baseline(store, loaded_model, gate_open, pytestconfig: pytest.Config) -> dict[str, Any]:
    """The model's unsteered rates on the evaluation prompts: the line every steered rate is read against.
    Behind the gate: under packing it is generated in the same call as the first repeat's cycles."""
    run = _run(pytestconfig)
    name = loaded_model.spec.name
    if name not in run.baselines:
        run.announce(f"{name}: unsteered baseline")
    started = time.perf_counter()
    record, computed = store.baseline(loaded_model)
    run.baselines[name] = {"rates": record["rates"], "n_prompts": record["n_prompts"],
                           "labels": record["labels"]}
    rates = record["rates"]
    run.progress(f"{name}: unsteered refusal {rates['refusal']:.0%} garbled {rates['garbled']:.0%} normal "
                 f"{rates['normal']:.0%}, {time.perf_counter() - started:.1f}s "
                 f"({'computed' if computed else 'reused'})", once=f"baseline {name}")
    return record


def _record_packed_siblings(run: Any, store: Any, lm: Any) -> None:
    """Cycles a packed call computed beside the one asked for are results too: recorded now, so a run stopped
    before their own tests (Ctrl-C, -x) still reports them instead of calling them missing."""
    name = lm.spec.name
    recorded = {c.ident for c in run.cycles}
    for tool, repeat, computed, exc in store.known(name):
        if (name, tool, repeat) in recorded:
            continue
        fact = replace(store.fact(lm, tool, repeat), computed=computed)
        if exc is not None:
            from parity_lib.protocol.faults import classify

            fact = replace(fact, status="not_run" if classify(exc) is not None else "error",
                           error=f"{type(exc).__name__}: {exc}")
        run.record_cycle(fact)


@pytest.fixture
def cycle(store, loaded_model, gate_open, baseline, tool_name: str, repeat: int, pytestconfig: pytest.Config):
    """The cycle's record; its outcome (ok or error) is recorded for the report."""
    run = _run(pytestconfig)
    name = loaded_model.spec.name
    fact = store.fact(loaded_model, tool_name, repeat)
    run.announce(f"{name}/{tool_name}/r{repeat}: extracting and generating")
    started = time.perf_counter()
    try:
        record, computed = store.ensure(loaded_model, tool_name, repeat)
    except Exception as exc:
        from parity_lib.protocol.faults import classify

        status = "not_run" if classify(exc) is not None else "error"
        run.record_cycle(replace(fact, status=status, error=f"{type(exc).__name__}: {exc}"))
        _record_packed_siblings(run, store, loaded_model)
        run.progress(f"{name}/{tool_name}/r{repeat}: ERROR {type(exc).__name__} after "
                     f"{time.perf_counter() - started:.1f}s")
        raise
    run.record_cycle(replace(fact, computed=computed))
    _record_packed_siblings(run, store, loaded_model)
    rates = record["rates"]
    timings = record.get("timings") or {}
    took = timings.get("total_s", time.perf_counter() - started)  # maybe computed earlier
    packed = ((record.get("steering") or {}).get("generation") or {}).get("packed_with")
    if computed and packed and "packed_generate_s" in timings:
        how = (f"computed in {took:.1f}s (its share of one {timings['packed_generate_s']:.1f}s call for "
               f"{', '.join(packed)})")
    else:
        how = f"computed in {took:.1f}s" if computed else f"reused from {fact.path}"
    run.progress(f"{name}/{tool_name}/r{repeat}: refusal {rates['refusal']:.0%} garbled {rates['garbled']:.0%} "
                 f"normal {rates['normal']:.0%}, {how}")
    return record


@pytest.fixture(scope="session")
def sweep_store(suite, pytestconfig: pytest.Config):
    from parity_lib.run.sweep import SweepStore
    from parity_lib.storage.provenance import code_fingerprint

    return SweepStore(Path(pytestconfig.getoption("--parity-results-dir")), suite.prompts, suite.settings,
                      suite.sweep, suite.tools, code_fingerprint(), suite.provenance,
                      fresh=pytestconfig.getoption("--parity-fresh"), log=lambda line: None,
                      reuse_only=pytestconfig.getoption("--parity-reuse-only"))


@pytest.fixture(scope="session")
def sweep_data(sweep_layer, sweep_store, suite, pytestconfig: pytest.Config) -> dict[str, Any]:
    """Every point of one (model, layer), behind the model's gate (a sweep extracts directions too); its summary
    is recorded for the sweep report."""
    from parity_lib.models.facts import activation_scale, asked
    from parity_lib.protocol.sweep_curves import summarize_layer

    run = _run(pytestconfig)
    model, layer = sweep_layer
    lm = suite.model(model)
    if model not in run.models:
        run.models[model] = {**lm.describe(), "asked": asked(lm, suite.prompts),
                             "activations": activation_scale(lm, suite.prompts)}
    _gate(lm, suite, pytestconfig, model)
    run.announce(f"sweep {model} L{layer}: extracting and generating")
    data = sweep_store.layer(lm, layer)
    summary = summarize_layer(data)
    run.sweeps[f"{model}@{layer}"] = summary
    how = f"computed {data['computed']} points in {data['seconds']:.1f}s" if data["computed"] else "reused"
    run.progress(f"sweep {model} L{layer}: {len(data['multipliers'])} multipliers × {len(data['points'])} tools, "
                 f"{how}")
    return summary
