"""Decision rules of PROTOCOL Section E, one pure function per outcome, and `decide` to combine them.

Each rule reads `ModelSummary` objects and returns a `RuleResult` with the numbers that drove it.
Comparisons are strict, as the protocol writes them: a cosine of exactly 0.95 does not diverge and a
gap of exactly 20 pp is not "> 20 pp". Cosines are the *minimum* over all repeat pairs, so one model
can never both diverge (< 0.95) and agree (> 0.99). Missing data never reads as zero: a rule that
needs it does not trigger and says why.

Precedence (`PRECEDENCE` = 1, 2, 4, 3): outcomes 1, 2 and 4 answer the study's question (is the
tooling effect general, model-specific, or absent?) and exclude each other; 1 before 2 because with
three or more models both can hold and the general finding is the stronger one. Outcome 3 is a gate
(a deterministic, validated tool exists) that can hold alongside any of them, so it is primary only on
its own and is otherwise reported as "also triggered", its tool named in the next step. When 4 and 3
both hold, the stop wins: a hard stop is never overridden by a "proceed".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from parity_lib.protocol.metrics import DETERMINISM_THRESHOLD, ModelSummary, PairSummary, jsonable

CROSS_DIVERGE_COS = 0.95
GAP_DIVERGE_PP = 20.0
CROSS_AGREE_COS = 0.99
GAP_AGREE_PP = 5.0
WITHIN_COS = DETERMINISM_THRESHOLD
# The protocol runs two models and asks for divergence (1) or agreement (4) on *both*: one model
# cannot show that a finding generalises, so outcomes 1 and 4 cannot trigger with a single model.
MIN_MODELS = 2
# Mean refusal rates are means of k/n; this only absorbs float error, it is not a tolerance band.
TIE_ABS_TOL = 1e-9
PRECEDENCE = (1, 2, 4, 3)

NAMES = {
    1: "Tooling issue is real and generalizable",
    2: "Model-specific artifact",
    3: "Proceed to Phase 2",
    4: "Stop — tooling divergence is not generalizable",
}
ACTIONS = {
    1: "Write up as a reproducibility finding. Investigate the root cause (likely an extraction-point "
       "mismatch, Section D). Proceed to Phase 2 with the tool that passes the parity checklist.",
    2: "Report as a finding specific to the diverging model(s). Investigate whether their architecture "
       "(grouped-query attention, LayerNorm placement) causes it. Proceed to Phase 2 with the tool "
       "that passes parity on all models.",
    3: "Lock in the validated tool and proceed to Phase 2 (Transfer Protocol).",
    4: "Write up as 'tooling divergence is model-specific or an artifact of the original "
       "implementation' (a reproducibility confirmation). Do NOT extend to more models.",
}
Checklist = Mapping[str, Mapping[str, bool]]


@dataclass(frozen=True)
class RuleResult:
    """One outcome's verdict: whether it triggered, why (plain sentences), and the numbers behind it."""

    outcome: int
    name: str
    triggered: bool
    reasons: tuple[str, ...]
    numbers: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return jsonable(self)


@dataclass(frozen=True)
class Expected:
    """The models and tools the study should have covered; what is absent from the results is missing."""

    models: tuple[str, ...]
    tools: tuple[str, ...]


@dataclass(frozen=True)
class Decision:
    """The combined verdict; `primary` is None when no rule triggered (verdict 'inconclusive')."""

    primary: RuleResult | None
    triggered: tuple[RuleResult, ...]
    all: tuple[RuleResult, ...]
    missing: tuple[str, ...]
    verdict: str
    next_step: str

    def to_dict(self) -> dict[str, Any]:
        return jsonable(self)


def expected_from(summaries: Mapping[str, ModelSummary], checklist: Checklist | None = None,
                  models: Sequence[str] | None = None, tools: Sequence[str] | None = None) -> Expected:
    """Default expectation: every model and tool seen anywhere (results or checklist) was meant to run."""
    checklist = checklist or {}
    seen_models = set(summaries) | set(checklist)
    seen_tools = {t for s in summaries.values() for t in s.tools} | {t for c in checklist.values() for t in c}
    return Expected(tuple(models or sorted(seen_models)), tuple(tools or sorted(seen_tools)))


def _fmt_pair(pair: PairSummary) -> str:
    a, b = pair.tools
    return f"{a} vs {b}: cosine min {pair.cos_min:.4f}, refusal gap {pair.refusal_gap_pp:.1f} pp"


def _diverges(pair: PairSummary) -> bool:
    return (pair.cos_min is not None and pair.refusal_gap_pp is not None
            and pair.cos_min < CROSS_DIVERGE_COS and pair.refusal_gap_pp > GAP_DIVERGE_PP)


def _tool_gaps(summary: ModelSummary, tools: Sequence[str]) -> list[str]:
    """Why a model cannot be fully compared: expected tools absent or without a successful repeat."""
    problems = [f"{summary.model}/{t}: no results" for t in tools if t not in summary.tools]
    problems += [f"{summary.model}/{t}: no successful repeat" for t in tools
                 if t in summary.tools and summary.tools[t].n_ok == 0]
    return problems


def _diverging(summary: ModelSummary, tools: Sequence[str]) -> list[PairSummary]:
    return [p for p in summary.pairs if set(p.tools) <= set(tools) and _diverges(p)]


def _agreement_problems(summary: ModelSummary, tools: Sequence[str]) -> list[str]:
    """Empty when every expected tool pair agrees (cosine > 0.99 and gap < 5 pp); else why not."""
    problems = _tool_gaps(summary, tools)
    present = [t for t in tools if t in summary.tools and summary.tools[t].n_ok > 0]
    if len(present) < 2 and not problems:
        problems.append(f"{summary.model}: fewer than two tools, nothing to compare")
    for pair in summary.pairs:
        if pair.cos_min is None or not set(pair.tools) <= set(present):
            continue
        gap = pair.refusal_gap_pp  # None when a tool has no rates: agreement is then not shown
        if gap is None or not (pair.cos_min > CROSS_AGREE_COS and gap < GAP_AGREE_PP):
            problems.append(f"{summary.model}: {_fmt_pair(pair)} (agreement needs cosine > "
                            f"{CROSS_AGREE_COS} and gap < {GAP_AGREE_PP:g} pp)")
    return problems


def _divergence_scan(summaries: Mapping[str, ModelSummary], exp: Expected) -> tuple[dict, list[str]]:
    """Diverging pairs per present model, and one reason line per model."""
    found: dict[str, list[dict[str, Any]]] = {}
    reasons: list[str] = []
    for model in exp.models:
        if model not in summaries:
            reasons.append(f"{model}: no results")
            continue
        pairs = _diverging(summaries[model], exp.tools)
        found[model] = [{"tools": list(p.tools), "cos_min": p.cos_min, "refusal_gap_pp": p.refusal_gap_pp}
                        for p in pairs]
        reasons += [f"{model}: diverges, {_fmt_pair(p)}" for p in pairs]
        if not pairs:
            gaps = _tool_gaps(summaries[model], exp.tools)
            reasons.append(f"{model}: no tool pair has cosine < {CROSS_DIVERGE_COS} and gap > "
                           f"{GAP_DIVERGE_PP:g} pp" + (f" (incomplete: {'; '.join(gaps)})" if gaps else ""))
    return found, reasons


def outcome_1(summaries: Mapping[str, ModelSummary], checklist: Checklist | None = None, *,
              expected: Expected | None = None) -> RuleResult:
    """Tooling divergence (cosine < 0.95 and refusal gap > 20 pp on one tool pair) on ≥ 2 models."""
    exp = expected or expected_from(summaries, checklist)
    found, reasons = _divergence_scan(summaries, exp)
    diverging = [m for m, pairs in found.items() if pairs]
    triggered = len(diverging) >= MIN_MODELS
    reasons.append(f"diverges on {len(diverging)} model(s); needs at least {MIN_MODELS}")
    return RuleResult(1, NAMES[1], triggered, tuple(reasons),
                      {"diverging_models": diverging, "diverging_pairs": found})


def outcome_2(summaries: Mapping[str, ModelSummary], checklist: Checklist | None = None, *,
              expected: Expected | None = None) -> RuleResult:
    """Some models diverge while at least one other model agrees (cosine > 0.99 and gap < 5 pp)."""
    exp = expected or expected_from(summaries, checklist)
    found, reasons = _divergence_scan(summaries, exp)
    diverging = [m for m, pairs in found.items() if pairs]
    problems = {m: _agreement_problems(summaries[m], exp.tools) for m in found if not found[m]}
    agreeing = [m for m, p in problems.items() if not p]
    reasons += [f"{m}: all tool pairs agree" for m in agreeing]
    reasons += [f"{m}: does not agree: {'; '.join(p)}" for m, p in problems.items() if p]
    reasons.append(f"{len(diverging)} diverging and {len(agreeing)} agreeing model(s); needs one of each")
    return RuleResult(2, NAMES[2], bool(diverging and agreeing), tuple(reasons),
                      {"diverging_models": diverging, "agreeing_models": agreeing, "diverging_pairs": found})


def _top_refusal(summary: ModelSummary) -> tuple[dict[str, float], list[str]]:
    means = {t: s.rates["refusal"].mean for t, s in summary.tools.items() if s.rates is not None}
    best = max(means.values(), default=math.nan)
    return means, [t for t, v in means.items() if math.isclose(v, best, rel_tol=0.0, abs_tol=TIE_ABS_TOL)]


def _determinism_problems(summaries: Mapping[str, ModelSummary], exp: Expected) -> list[str]:
    problems = [f"{m}: no results" for m in exp.models if m not in summaries]
    for model in (m for m in exp.models if m in summaries):
        for tool in exp.tools:
            ts = summaries[model].tools.get(tool)
            if ts is None or ts.within_min is None:
                problems.append(f"{model}/{tool}: within-method cosine unknown "
                                f"({ts.n_ok if ts else 0} ok repeat(s); needs 2)")
            elif not ts.within_min > WITHIN_COS:
                problems.append(f"{model}/{tool}: within-method cosine min {ts.within_min:.6f} "
                                f"is not > {WITHIN_COS}")
    return problems


def outcome_3(summaries: Mapping[str, ModelSummary], checklist: Checklist | None = None, *,
              expected: Expected | None = None) -> RuleResult:
    """Every tool deterministic (within cosine > 0.999) on every model, and a validated tool exists.

    Validated: passes the parity checklist on every model AND has the highest mean refusal rate on
    every model. Several tools may tie; all are named, and the rule still triggers.
    """
    checklist = checklist or {}
    exp = expected or expected_from(summaries, checklist)
    problems = _determinism_problems(summaries, exp)
    reasons = problems or [f"every tool has within-method cosine > {WITHIN_COS}"]
    present = [m for m in exp.models if m in summaries]
    passing = [t for t in exp.tools
               if present and all(checklist.get(m, {}).get(t) is True for m in exp.models)]
    tops = {m: _top_refusal(summaries[m]) for m in present}
    validated = [t for t in passing if all(t in top for _, top in tops.values())]
    reasons.append(f"passes the parity checklist on every model: {', '.join(passing) or 'no tool'}")
    reasons += [f"{m}: highest mean refusal rate: {', '.join(top) or 'no data'}"
                for m, (_, top) in tops.items()]
    failed = [p for p in problems if "is not >" in p]  # the rest are holes in the data: not shown, not "no"
    shown = "yes" if not problems else ("no" if failed else "not shown (missing data)")
    reasons.append(f"deterministic: {shown}; validated tool(s): "
                   f"{', '.join(validated) or 'none'}" + (" (tie)" if len(validated) > 1 else ""))
    numbers = {"checklist_passed": passing, "validated_tools": validated, "tied": len(validated) > 1,
               "refusal_mean": {m: means for m, (means, _) in tops.items()},
               "within_min": {m: {t: s.within_min for t, s in summaries[m].tools.items()} for m in present}}
    return RuleResult(3, NAMES[3], not problems and bool(validated), tuple(reasons), numbers)


def outcome_4(summaries: Mapping[str, ModelSummary], checklist: Checklist | None = None, *,
              expected: Expected | None = None) -> RuleResult:
    """All tool pairs agree (cosine > 0.99, gap < 5 pp) on every expected model, with at least 2 models."""
    exp = expected or expected_from(summaries, checklist)
    problems = [f"{m}: no results" for m in exp.models if m not in summaries]
    agreeing = []
    for model in (m for m in exp.models if m in summaries):
        found = _agreement_problems(summaries[model], exp.tools)
        problems += found
        agreeing += [] if found else [model]
    if len(exp.models) < MIN_MODELS:
        problems.append(f"only {len(exp.models)} model(s); agreement must hold on at least {MIN_MODELS} "
                        "to show the divergence does not generalise")
    reasons = problems + [f"all tool pairs agree on {len(agreeing)} of {len(exp.models)} expected model(s)"]
    return RuleResult(4, NAMES[4], not problems, tuple(reasons), {"agreeing_models": agreeing})


RULES = (outcome_1, outcome_2, outcome_3, outcome_4)


def missing_data(summaries: Mapping[str, ModelSummary], checklist: Checklist | None,
                 exp: Expected) -> list[str]:
    """Every hole in the data, one line each: absent models/tools, failed repeats, checklist gaps."""
    checklist = checklist or {}
    lines = [f"{m}: no results" for m in exp.models if m not in summaries]
    for model in (m for m in exp.models if m in summaries):
        lines += [f"{model}/{t}: no results" for t in exp.tools if t not in summaries[model].tools]
        for tool, ts in summaries[model].tools.items():
            if ts.n_error:
                lines.append(f"{model}/{tool}: {ts.n_error} of {ts.n_ok + ts.n_error} repeat(s) failed")
            if ts.n_ok == 1:
                lines.append(f"{model}/{tool}: one successful repeat; within-method cosine needs two")
    lines += [f"{m}/{t}: no parity checklist entry" for m in exp.models for t in exp.tools
              if t not in checklist.get(m, {})]
    return lines


def _next_step(primary: RuleResult | None, triggered: Sequence[RuleResult], rules: Sequence[RuleResult],
               missing: Sequence[str]) -> str:
    if primary is None:
        why = " ".join(f"Outcome {r.outcome} not triggered: {r.reasons[-1]}." for r in rules)
        hole = f"Fill the missing data ({'; '.join(missing)}) and re-run. " if missing else (
            "All data is present, so the results fall between the protocol's thresholds (for example "
            "a cosine between 0.95 and 0.99), where it defines no action: take it to the study lead. ")
        return hole + why
    step = ACTIONS[primary.outcome]
    gate = next((r for r in triggered if r.outcome == 3 and r is not primary), None)
    if gate is not None:
        tools = ", ".join(gate.numbers["validated_tools"])
        verb = "would apply, but the stop takes precedence" if primary.outcome == 4 else "also holds"
        step += f" Outcome 3 {verb}: validated tool(s): {tools}."
    return step


def also_holds(primary: int, outcome: int, name: str) -> str:
    """A second triggered outcome, said so that it cannot read as contradicting the first ("Stop" beside
    "Proceed"): Outcome 3 under Outcome 4 is the gate's conditions holding while the stop decides."""
    if primary == 4 and outcome == 3:
        return ("Outcome 3's conditions hold too (every tool deterministic, one passes every check and steers "
                "best), but Outcome 4's stop takes precedence: the tools agree, so there is no better tool to lock in")
    return f"Also triggered: Outcome {outcome} ({name})"


def decide(summaries: Mapping[str, ModelSummary], checklist: Checklist | None = None, *,
           expected_models: Sequence[str] | None = None,
           expected_tools: Sequence[str] | None = None) -> Decision:
    """Run every rule and pick the primary outcome by `PRECEDENCE` (see the module docstring)."""
    exp = expected_from(summaries, checklist, expected_models, expected_tools)
    results = tuple(rule(summaries, checklist, expected=exp) for rule in RULES)
    triggered = tuple(sorted((r for r in results if r.triggered), key=lambda r: PRECEDENCE.index(r.outcome)))
    primary = triggered[0] if triggered else None
    missing = tuple(missing_data(summaries, checklist, exp))
    verdict = f"Outcome {primary.outcome}: {primary.name}" if primary else "inconclusive"
    step = _next_step(primary, triggered, results, missing)
    return Decision(primary, triggered, results, missing, verdict, step)
