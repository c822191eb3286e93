"""Registered only when pytest-xdist is present (its hook specs exist only then): each model's tests go to
one worker, and a worker's run data reaches the controller when the worker goes down.

Why a scheduler of our own: `--dist loadgroup` groups by a suffix xdist appends to each node id on the
worker (`item._nodeid += "@group"`). Since pytest 9 a node's id lives elsewhere (`Node._id`), so that
assignment no longer changes the id and every `xdist_group` mark is silently ignored (measured: pytest
9.1/9.2 with pytest-xdist 3.8 spread one model's cycles over both workers, each loading every model).
The controller sees only node ids, so the model is read from the id's parameter part, which starts with
the model name (the plugin parametrizes `model_name` first)."""

from __future__ import annotations

from typing import Any

from parity_lib.plugin.run_data import run_of, suite_of


def model_of(nodeid: str, models: list[str]) -> str | None:
    """The model a test belongs to, from its id `path::test[MODEL-...]`; the longest matching name wins."""
    if not nodeid.endswith("]") or "[" not in nodeid:
        return None
    params = nodeid[nodeid.index("[") + 1:-1]
    for name in sorted(models, key=len, reverse=True):
        if params == name or params.startswith(name + "-"):
            return name
    return None


def unit_of(nodeid: str, models: list[str]) -> str:
    """One unit of work per model, and per (model, layer) for a sweep (ids `MODEL-L<layer>…`): sweeps of two
    models keep more than two workers busy, each loading a model once."""
    model = model_of(nodeid, models)
    if model is None:
        return nodeid
    rest = nodeid[nodeid.index("[") + 1 + len(model):-1]
    if rest.startswith("-L") and rest[2:].split("-")[0].isdigit():
        return f"{model}-L{rest[2:].split('-')[0]}"
    return model


class XdistHooks:
    def pytest_xdist_make_scheduler(self, config: Any, log: Any) -> Any:
        if config.getvalue("dist") != "loadgroup":
            return None
        from xdist.scheduler import LoadGroupScheduling

        models = [m.name for m in suite_of(config).models]

        class ModelGroups(LoadGroupScheduling):
            """xdist's own `@group` when the id carries one (a test's own `xdist_group` mark, pytest < 9),
            else one unit per model."""

            def _split_scope(self, nodeid: str) -> str:
                scope = super()._split_scope(nodeid)
                return scope if scope != nodeid else unit_of(nodeid, models)

        return ModelGroups(config, log)

    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        raw = getattr(node, "workeroutput", {}).get("parity_run")
        if raw:
            run_of(node.config).merge(raw)
