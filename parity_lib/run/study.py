"""Running and resuming cycles: each finished cycle is a file; a rerun reuses what matches.

A cycle's file is reused when its configuration key (model spec, tool, prompts, settings, dtype,
device, code) matches this run's; `fresh=True` recomputes once per process. A cycle that fails
writes an error record beside its file and re-raises: the report shows it as an error, never as a
zero rate. With packing (`StudySettings.packs`, the default under the reference steerer) the first cycle
asked for in a repeat computes that repeat for every tool of the run that has no current file, in one
generate call; the others are then served from memory. The unsteered baseline, when not on disk, joins
repeat 1's call as a block steered by the zero vector (so it needs the gate open, like the cycles).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from parity_lib.errors import MissingResultError
from parity_lib.models.loading import LoadedModel
from parity_lib.prompts import PromptSet
from parity_lib.run.cycle import CycleResult, StudySettings, config_key, run_cycle, run_repeat, unsteered_eval
from parity_lib.storage.provenance import code_fingerprint
from parity_lib.storage.results import (
    CycleFact,
    baseline_path,
    current_record,
    cycle_path,
    write_cycle,
    write_json_atomic,
)


@dataclass
class CycleStore:
    results_dir: Path
    prompts: PromptSet
    settings: StudySettings
    provenance: Callable[..., dict[str, Any]]
    fresh: bool = False
    tools: tuple[str, ...] = ()  # the run's tools: what one repeat packs together
    _done: dict[tuple[str, str, int], dict[str, Any]] = field(default_factory=dict)
    _computed: set[tuple[str, str, int]] = field(default_factory=set)  # computed by this process (not reused)
    _failed: dict[tuple[str, str, int], Exception] = field(default_factory=dict)  # failed in a packed repeat
    firing: dict[str, dict[str, Any]] = field(default_factory=dict)  # model -> firing map of its first packed call
    _code: str = field(default_factory=code_fingerprint)
    log: Callable[[str], None] = print
    reuse_only: bool = False  # the launcher's report step: results on disk or a MissingResultError, never computed

    def key(self, lm: LoadedModel, tool: str) -> str:
        return config_key(lm, tool, self.prompts, self.settings, self._code)

    def fact(self, lm: LoadedModel, tool: str, repeat: int) -> CycleFact:
        """The run's record of one cycle (where its file is, its configuration key), before its outcome is known."""
        name = lm.spec.name
        return CycleFact(name, tool, repeat, str(cycle_path(self.results_dir, name, tool, repeat)), self.key(lm, tool))

    def known(self, model: str) -> list[tuple[str, int, bool, Exception | None]]:
        """Every cycle of `model` this process holds, asked for or not (a packed call computes the repeat's
        other tools too): (tool, repeat, computed here, the error if it failed)."""
        out = [(tool, rep, (m, tool, rep) in self._computed, None) for (m, tool, rep) in self._done if m == model]
        return out + [(tool, rep, True, exc) for (m, tool, rep), exc in self._failed.items() if m == model]

    def ensure(self, lm: LoadedModel, tool: str, repeat: int) -> tuple[dict[str, Any], bool]:
        """The cycle's record and whether it was computed now (False: reused from disk)."""
        ident = (lm.spec.name, tool, repeat)
        if ident in self._failed:
            raise self._failed[ident]
        if ident in self._done:  # asked for again (a parity test may have computed it first): computed here?
            return self._done[ident], ident in self._computed
        key = self.key(lm, tool)
        path = cycle_path(self.results_dir, *ident)
        cached = None if self.fresh else current_record(path, key)
        if cached is not None:
            self._done[ident] = cached
            return cached, False
        self._refuse_if_reuse_only(path, lm.spec.name)
        if self.settings.packs(len(self.tools)) and tool in self.tools:
            self._compute_repeat(lm, repeat)
            if ident in self._failed:
                raise self._failed[ident]
            return self._done[ident], True
        record = self._compute(lm, tool, repeat, key, path)
        self._done[ident] = record
        self._computed.add(ident)
        return record, True

    def _compute_repeat(self, lm: LoadedModel, repeat: int, baseline: bool = False) -> dict[str, Any] | None:
        """Every tool of the run without a current record for this repeat, packed; files written per tool.
        With `baseline`, the unsteered baseline joins the call as one more block; its record is returned."""
        wanted = {}
        for tool in self.tools:
            ident = (lm.spec.name, tool, repeat)
            key, path = self.key(lm, tool), cycle_path(self.results_dir, *ident)
            cached = None if (self.fresh or ident in self._done) else current_record(path, key)
            if cached is not None:
                self._done[ident] = cached
            elif ident not in self._done:
                wanted[tool] = (key, path)
        started = time.perf_counter()
        prov = self.provenance(model=lm.describe())
        done = run_repeat(lm, list(wanted), self.prompts, self.settings, repeat, baseline=baseline,
                          firing=lm.spec.name not in self.firing)
        if done.firing is not None:
            self.firing[lm.spec.name] = done.firing
        for tool, outcome in done.cycles.items():
            key, path = wanted[tool]
            if isinstance(outcome, CycleResult):
                record = outcome.to_record(config_key=key, provenance=prov)
                write_cycle(path, record)
                self._done[(lm.spec.name, tool, repeat)] = record
                self._computed.add((lm.spec.name, tool, repeat))
                continue
            write_cycle(path, _error_record(lm, tool, repeat, outcome, key, prov))
            self._failed[(lm.spec.name, tool, repeat)] = outcome
        self.log(f"repeat {lm.spec.name}/r{repeat}: {', '.join(done.cycles)} in {time.perf_counter() - started:.2f}s")
        return done.baseline

    def baseline(self, lm: LoadedModel) -> tuple[dict[str, Any], bool]:
        """The model's unsteered rates on the evaluation prompts (cached like a cycle) and whether they
        were computed now."""
        key = self.key(lm, "unsteered")
        path = baseline_path(self.results_dir, lm.spec.name)
        cached = None if self.fresh else current_record(path, key)
        if cached is not None:
            return cached, False
        self._refuse_if_reuse_only(path, lm.spec.name)
        packed = self._compute_repeat(lm, 1, baseline=True) if self.settings.packs(len(self.tools)) else None
        record = {**(packed or unsteered_eval(lm, self.prompts, self.settings)), "config_key": key,
                  "provenance": self.provenance(model=lm.describe())}
        write_json_atomic(path, record)
        return record, True

    def _refuse_if_reuse_only(self, path: Path, model: str) -> None:
        if self.reuse_only:
            from parity_lib.storage.shard_status import shard_note

            raise MissingResultError(f"{shard_note(model)}no current result at {path} (--parity-reuse-only: this "
                                     f"step computes nothing; the shard that should have written it failed or has "
                                     f"not run)")

    def _compute(self, lm: LoadedModel, tool: str, repeat: int, key: str, path: Path) -> dict[str, Any]:
        started = time.perf_counter()
        prov = self.provenance(model=lm.describe())
        try:
            result = run_cycle(lm, tool, self.prompts, self.settings, repeat)
        except Exception as exc:
            write_cycle(path, _error_record(lm, tool, repeat, exc, key, prov))
            raise
        record = result.to_record(config_key=key, provenance=prov)
        write_cycle(path, record)
        self.log(f"cycle {lm.spec.name}/{tool}/r{repeat}: {time.perf_counter() - started:.2f}s "
                 f"refusal={record['rates']['refusal']:.2f} garbled={record['rates']['garbled']:.2f}")
        return record


def _error_record(lm: LoadedModel, tool: str, repeat: int, exc: BaseException, key: str,
                  prov: dict[str, Any]) -> dict[str, Any]:
    """What a failed cycle leaves beside its file (`write_cycle` never lets it replace a finished one)."""
    return {"schema": 1, "model": lm.spec.name, "tool": tool, "repeat": repeat, "status": "error",
            "error": f"{type(exc).__name__}: {exc}", "config_key": key, "provenance": prov}
