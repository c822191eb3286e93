"""Registered only when pytest-xdist is present (its hook specs exist only then): a worker's run data
reaches the controller when the worker goes down."""

from __future__ import annotations

from typing import Any

from .run_data import run_of


class XdistHooks:
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        raw = getattr(node, "workeroutput", {}).get("parity_run")
        if raw:
            run_of(node.config).merge(raw)
