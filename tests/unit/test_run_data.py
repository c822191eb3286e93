"""The run's data: warnings from the tools are counted with their first occurrence and reach the report;
a worker's data merges into the controller's without loss."""

from __future__ import annotations

import warnings

from parity_lib.plugin.run_data import ParityRun
from parity_lib.report.markdown import _warnings


def _message(text: str, filename: str, category: type[Warning] = DeprecationWarning) -> warnings.WarningMessage:
    return warnings.WarningMessage(category(text), category, filename, 12)


def run() -> ParityRun:
    return ParityRun(suite=None)  # type: ignore[arg-type]  # the suite is not needed to record warnings


def test_tool_warnings_are_counted_with_first_occurrence():
    r = run()
    site = "/env/lib/python3.11/site-packages"
    r.pytest_warning_recorded(_message("old API", f"{site}/nnsight/intervention/x.py"), "call", "test_a", None)
    r.pytest_warning_recorded(_message("old API", f"{site}/nnsight/intervention/x.py"), "call", "test_b", None)
    r.pytest_warning_recorded(_message("mine", "/work/project/tests/test_x.py"), "call", "test_c", None)
    assert list(r.warnings.values()) == [{"count": 2, "category": "DeprecationWarning", "message": "old API",
                                          "source": "nnsight", "first_seen": "test_a", "where": "x.py:12"}]


def test_worker_warnings_merge_into_the_controller():
    controller, worker = run(), run()
    site = "/env/lib/python3.11/site-packages"
    for r, test in ((controller, "test_a"), (worker, "test_b"), (worker, "test_c")):
        r.pytest_warning_recorded(_message("renamed", f"{site}/transformers/y.py", FutureWarning), "call", test, None)
    controller.merge(worker.to_json())
    (entry,) = controller.warnings.values()
    assert entry["count"] == 3 and entry["first_seen"] == "test_a" and entry["category"] == "FutureWarning"


def test_report_lists_the_warnings():
    text = _warnings({"warnings": [{"count": 3, "source": "pyvene", "category": "DeprecationWarning",
                                    "message": "x is deprecated", "where": "z.py:1", "first_seen": "test_q"}]})
    assert "| 3 | pyvene | DeprecationWarning | x is deprecated | z.py:1 | test_q |" in text
    assert "None recorded" in _warnings({"warnings": []})
