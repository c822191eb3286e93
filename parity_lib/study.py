"""Running and resuming cycles: each finished cycle is a file; a rerun reuses what matches.

A cycle's file is reused when its configuration key (model spec, tool, prompts, settings, dtype,
device, code) matches this run's; `fresh=True` recomputes once per process. A cycle that fails
writes an error record beside its file and re-raises: the report shows it as an error, never as a
zero rate.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .cycle import StudySettings, config_key, run_cycle, unsteered_eval
from .models import LoadedModel
from .prompts import PromptSet
from .provenance import code_fingerprint
from .results import baseline_path, current_record, cycle_path, write_cycle, write_json_atomic


@dataclass
class CycleStore:
    results_dir: Path
    prompts: PromptSet
    settings: StudySettings
    provenance: Callable[..., dict[str, Any]]
    fresh: bool = False
    _done: dict[tuple[str, str, int], dict[str, Any]] = field(default_factory=dict)
    _computed: set[tuple[str, str, int]] = field(default_factory=set)  # computed by this process (not reused)
    _code: str = field(default_factory=code_fingerprint)
    log: Callable[[str], None] = print

    def key(self, lm: LoadedModel, tool: str) -> str:
        return config_key(lm, tool, self.prompts, self.settings, self._code)

    def ensure(self, lm: LoadedModel, tool: str, repeat: int) -> tuple[dict[str, Any], bool]:
        """The cycle's record and whether it was computed now (False: reused from disk)."""
        ident = (lm.spec.name, tool, repeat)
        if ident in self._done:  # asked for again (a parity test may have computed it first): computed here?
            return self._done[ident], ident in self._computed
        key = self.key(lm, tool)
        path = cycle_path(self.results_dir, *ident)
        cached = None if self.fresh else current_record(path, key)
        if cached is not None:
            self._done[ident] = cached
            return cached, False
        record = self._compute(lm, tool, repeat, key, path)
        self._done[ident] = record
        self._computed.add(ident)
        return record, True

    def baseline(self, lm: LoadedModel) -> tuple[dict[str, Any], bool]:
        """The model's unsteered rates on the evaluation prompts (cached like a cycle) and whether they
        were computed now."""
        key = self.key(lm, "unsteered")
        path = baseline_path(self.results_dir, lm.spec.name)
        cached = None if self.fresh else current_record(path, key)
        if cached is not None:
            return cached, False
        record = {**unsteered_eval(lm, self.prompts, self.settings), "config_key": key,
                  "provenance": self.provenance(model=lm.describe())}
        write_json_atomic(path, record)
        return record, True

    def _compute(self, lm: LoadedModel, tool: str, repeat: int, key: str, path: Path) -> dict[str, Any]:
        started = time.perf_counter()
        prov = self.provenance(model=lm.describe())
        try:
            result = run_cycle(lm, tool, self.prompts, self.settings, repeat)
        except Exception as exc:
            write_cycle(path, {"schema": 1, "model": lm.spec.name, "tool": tool, "repeat": repeat,
                               "status": "error", "error": f"{type(exc).__name__}: {exc}",
                               "config_key": key, "provenance": prov})
            raise
        record = result.to_record(config_key=key, provenance=prov)
        write_cycle(path, record)
        self.log(f"cycle {lm.spec.name}/{tool}/r{repeat}: {time.perf_counter() - started:.2f}s "
                 f"refusal={record['rates']['refusal']:.2f} garbled={record['rates']['garbled']:.2f}")
        return record
