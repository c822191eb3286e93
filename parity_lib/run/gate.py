"""The protocol's hard stop: "do not proceed to direction extraction until raw activations match
across all three tools". A study first consults the checklist for the same configuration; when none
covers its models and tools, it runs the checks itself."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any, Mapping, Sequence

from parity_lib.models.loading import LoadedModel
from parity_lib.prompts import PromptSet
from parity_lib.run import checklist
from parity_lib.run.checklist import CheckResult
from parity_lib.storage.results import read_json
from parity_lib.tools.registry import get_extractor

GATE_CHECKS = ("residual_location", "token_position", "cross_tool")


@dataclass(frozen=True)
class GateStatus:
    model: str
    passed: bool
    source: str  # "checklist file" or "ran now"
    failed: tuple[str, ...]
    results: tuple[CheckResult, ...] = ()

    def message(self) -> str:
        if self.passed:
            return f"gate open for {self.model} ({self.source})"
        return (f"GATE CLOSED for {self.model}: raw activations do not match across tools "
                f"({self.source}); failing: {', '.join(self.failed)}. Run `pytest -m preflight --parity-model "
                f"{self.model}` for the numbers, fix the extractor, or pass --parity-override-gate to investigate.")


def _from_file(entries: Sequence[Mapping[str, Any]], model: str, tools: Sequence[str]) -> tuple[str, ...] | None:
    mine = {(e["check"], e["tool"]): e["passed"] for e in entries if e["model"] == model}
    wanted = [(c, t) for c in GATE_CHECKS[:2] for t in tools]
    wanted += [("cross_tool", f"{a}~{b}") for a, b in combinations(tools, 2)]
    if not all(w in mine for w in wanted):
        return None
    return tuple(f"{c} [{t}]" for c, t in wanted if not mine[(c, t)])


def run_gate_checks(lm: LoadedModel, tools: Sequence[str], prompts: PromptSet) -> tuple[CheckResult, ...]:
    layer, given = lm.spec.layer, checklist.inputs(lm, prompts)
    out = []
    for tool in tools:
        ex = get_extractor(tool)
        out.append(checklist.residual_location(lm, ex, given.one, layer))
        out.append(checklist.token_position(lm, ex, given.position, layer))
    out += [checklist.cross_tool(lm, get_extractor(a), get_extractor(b), given.cross_tool, layer)
            for a, b in combinations(tools, 2)]
    return tuple(out)


def gate(lm: LoadedModel, tools: Sequence[str], prompts: PromptSet, checklist_file: Path,
         config: Mapping[str, Any]) -> GateStatus:
    data = read_json(checklist_file)
    if data and data.get("config") == dict(config):
        failed = _from_file(data.get("entries", []), lm.spec.name, tools)
        if failed is not None:
            return GateStatus(lm.spec.name, not failed, "checklist file", failed)
    results = run_gate_checks(lm, tools, prompts)
    failed = tuple(f"{r.check} [{r.tool}]" for r in results if not r.passed)
    return GateStatus(lm.spec.name, not failed, "ran now", failed, results)
