"""The machine-readable Phase 1 report: one JSON-able dict, written atomically with sorted keys.

The dict is the single source for the Markdown report too (`render_markdown(report)`), so the two
can never disagree, and a report can be re-rendered later from the JSON alone.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

from parity_lib.protocol import outcome
from parity_lib.protocol.metrics import ModelSummary, jsonable
from parity_lib.protocol.outcome import Decision

SCHEMA = 1
# PROTOCOL Section F, on an A10G: 15 min/cycle for Qwen 7B, 20 for Gemma 9B, 9.75 GPU-hours in all
# (two 15-cycle studies plus an hour of pre-flight checks). Keys match model names by substring.
PROTOCOL_BUDGET: dict[str, Any] = {
    "device": "A10G",
    "source": "PROTOCOL Section F",
    "per_cycle_s": {"qwen": 15 * 60.0, "gemma": 20 * 60.0},
    "total_s": 9.75 * 3600.0,
    "arithmetic": "Qwen 5 repeats × 3 tools = 15 cycles × 15 min = 225 min, Gemma 15 cycles × 20 min = 300 min, "
                  "pre-flight 2 models × 30 min = 60 min: 585 min = 9.75 GPU-hours",
}


def dumps_report(report: Mapping[str, Any]) -> str:
    """Sorted keys and no NaN, so reports diff cleanly and load in any JSON reader."""
    return json.dumps(report, sort_keys=True, indent=2, allow_nan=False) + "\n"


def _thresholds() -> dict[str, Any]:
    return {
        "cross_diverge_cos": outcome.CROSS_DIVERGE_COS, "gap_diverge_pp": outcome.GAP_DIVERGE_PP,
        "cross_agree_cos": outcome.CROSS_AGREE_COS, "gap_agree_pp": outcome.GAP_AGREE_PP,
        "within_cos": outcome.WITHIN_COS, "min_models": outcome.MIN_MODELS,
        "precedence": list(outcome.PRECEDENCE),
        "outcomes": {str(k): {"name": v, "action": outcome.ACTIONS[k]} for k, v in outcome.NAMES.items()},
    }


def _tested(summaries: Mapping[str, ModelSummary]) -> dict[str, Any]:
    tools = sorted({t for s in summaries.values() for t in s.tools})
    return {"models": sorted(summaries), "tools": tools,
            "settings": {m: dict(s.settings) for m, s in sorted(summaries.items())}}


def _budget_cycle_s(model: str, budget: Mapping[str, Any]) -> float | None:
    matches = [v for k, v in budget.get("per_cycle_s", {}).items() if k.lower() in model.lower()]
    return float(matches[0]) if matches else None


def _model_cycle_s(summary: ModelSummary) -> float | None:
    """Mean cycle time over all of a model's tools, weighted by how many cycles each tool timed."""
    stats = [t.cycle_s for t in summary.tools.values() if t.cycle_s is not None]
    n = sum(s.n for s in stats)
    return sum(s.mean * s.n for s in stats) / n if n else None


def _timing(summaries: Mapping[str, ModelSummary], timing: Mapping[str, Any],
            budget: Mapping[str, Any]) -> dict[str, Any]:
    per_cycle: Sequence[float] = [float(x) for x in timing.get("per_cycle_s", [])]
    total = timing.get("total_s")
    budget_total = budget.get("total_s")
    return {
        "n_cycles": len(per_cycle),
        "mean_cycle_s": sum(per_cycle) / len(per_cycle) if per_cycle else None,
        "max_cycle_s": max(per_cycle, default=None),
        "total_s": None if total is None else float(total),
        "budget": jsonable(budget),
        "budget_fraction": float(total) / budget_total if total is not None and budget_total else None,
        "within_budget": float(total) <= budget_total if total is not None and budget_total else None,
        "per_model": {m: {"mean_cycle_s": _model_cycle_s(s), "budget_cycle_s": _budget_cycle_s(m, budget)}
                      for m, s in sorted(summaries.items())},
    }


def build_report(summaries: Mapping[str, ModelSummary], decision: Decision,
                 checklist: Mapping[str, Mapping[str, bool]] | None, provenance: Mapping[str, Any],
                 timing: Mapping[str, Any], budget: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Everything a reader (or `render_markdown`) needs, as plain JSON types.

    `budget` defaults to `PROTOCOL_BUDGET`, so the report always says how the run compares to Section F.
    """
    return {
        "schema": SCHEMA,
        "tested": _tested(summaries),
        "decision": decision.to_dict(),
        "thresholds": _thresholds(),
        "models": {m: s.to_dict() for m, s in sorted(summaries.items())},
        "checklist": jsonable(checklist or {}),
        "provenance": jsonable(provenance),
        "timing": _timing(summaries, timing, budget or PROTOCOL_BUDGET),
    }
