"""Decision rules of PROTOCOL Section E at and around every threshold, with missing data and ties."""

from __future__ import annotations

import itertools
import json
from typing import Mapping

import pytest

from parity_lib.protocol.metrics import ModelSummary, PairSummary, RateStat, ToolSummary
from parity_lib.protocol.outcome import decide, outcome_1, outcome_2, outcome_3, outcome_4

TOOLS = ("hooks", "nnsight", "pyvene")
QWEN, GEMMA, LLAMA = "qwen2-organism", "gemma2-organism", "llama-organism"
DIVERGE = {"cos": 0.5, "gap": 50.0}
AGREE = {"cos": 1.0, "gap": 0.0}
BETWEEN = {"cos": 0.97, "gap": 10.0}


def tool(name: str, *, refusal: float = 0.9, within: float = 1.0, n_ok: int = 5) -> ToolSummary:
    rates = None if n_ok == 0 else {
        label: RateStat(v, 0.0, round(v * 30 * n_ok), 30 * n_ok, 0.0, 1.0)
        for label, v in (("refusal", refusal), ("garbled", 0.0), ("normal", 1.0 - refusal))}
    has_within = n_ok >= 2
    return ToolSummary(name, n_ok, 5 - n_ok, ("boom",) * (5 - n_ok), tuple(range(1, n_ok + 1)),
                       within if has_within else None, within if has_within else None,
                       within > 0.999 if has_within else None, None, rates, None)


def model(name: str, *, cos: float = 1.0, gap: float = 0.0, pairs: Mapping | None = None,
          within: Mapping[str, float] | float = 1.0, refusal: Mapping[str, float] | None = None,
          n_ok: Mapping[str, int] | None = None, absent: tuple[str, ...] = ()) -> ModelSummary:
    """A summary where hooks–nnsight has `cos` and `gap` (or `pairs` gives (cos, gap) per pair) and
    every other pair agrees perfectly; tools default to 5 ok repeats at 90% refusal."""
    within_of = within if isinstance(within, Mapping) else {t: within for t in TOOLS}
    pairs = pairs or {("hooks", "nnsight"): (cos, gap)}
    tools = {t: tool(t, refusal=(refusal or {}).get(t, 0.9), within=within_of.get(t, 1.0),
                     n_ok=(n_ok or {}).get(t, 5)) for t in TOOLS if t not in absent}
    summaries = []
    for a, b in itertools.combinations(sorted(tools), 2):
        if tools[a].n_ok == 0 or tools[b].n_ok == 0:
            summaries.append(PairSummary((a, b), 0, None, None, None, None, None))
        else:
            c, g = pairs.get((a, b), (1.0, 0.0))
            summaries.append(PairSummary((a, b), 25, c, c, c, g, None))
    return ModelSummary(name, tools, tuple(summaries), {})


def checklist(models=(QWEN, GEMMA), failing=()) -> dict:
    return {m: {t: t not in failing for t in TOOLS} for m in models}


def both(**kwargs) -> dict[str, ModelSummary]:
    return {QWEN: model(QWEN, **kwargs), GEMMA: model(GEMMA, **kwargs)}


# Outcome 1: divergence on at least two models.

# Each threshold, just below, at and just above it (strict inequalities, as Section E writes them); the
# other quantity held where it cannot decide: (rule, cosine, gap in pp, triggered).
THRESHOLDS = [
    (1, 0.9499, 50.0, True), (1, 0.95, 50.0, False), (1, 0.9501, 50.0, False),  # diverge: cos < 0.95
    (1, 0.5, 19.9, False), (1, 0.5, 20.0, False), (1, 0.5, 20.1, True),          # ... and gap > 20
    (4, 0.9899, 0.0, False), (4, 0.99, 0.0, False), (4, 0.9901, 0.0, True),      # agree: cos > 0.99
    (4, 1.0, 4.9, True), (4, 1.0, 5.0, False), (4, 1.0, 5.1, False),             # ... and gap < 5
]


@pytest.mark.parametrize(("rule", "cos", "gap", "expected"), THRESHOLDS,
                         ids=[f"outcome{r}-cos{c}-gap{g}" for r, c, g, _ in THRESHOLDS])
def test_thresholds_of_outcomes_1_and_4(rule, cos, gap, expected):
    assert {1: outcome_1, 4: outcome_4}[rule](both(cos=cos, gap=gap)).triggered is expected


def test_outcome_1_needs_cosine_and_gap_on_the_same_pair():
    split = {("hooks", "nnsight"): (0.5, 0.0), ("hooks", "pyvene"): (1.0, 50.0)}
    assert outcome_1(both(pairs=split)).triggered is False


def test_outcome_1_does_not_trigger_on_one_diverging_model():
    assert outcome_1({QWEN: model(QWEN, **DIVERGE), GEMMA: model(GEMMA, **AGREE)}).triggered is False


def test_outcome_1_cannot_trigger_with_a_single_model():
    result = outcome_1({QWEN: model(QWEN, **DIVERGE)})
    assert (result.triggered, result.reasons[-1]) == (False, "diverges on 1 model(s); needs at least 2")


def test_outcome_1_reports_a_model_without_results():
    result = outcome_1({QWEN: model(QWEN, **DIVERGE)}, checklist())
    assert f"{GEMMA}: no results" in result.reasons


def test_outcome_1_never_reads_a_failed_tool_as_divergent():
    summaries = both(n_ok={"hooks": 0}, **DIVERGE)
    assert outcome_1(summaries).triggered is False


def test_outcome_1_counts_a_divergent_pair_despite_another_failed_tool():
    summaries = both(n_ok={"pyvene": 0}, **DIVERGE)
    assert outcome_1(summaries).triggered is True


# Outcome 2: some models diverge, another agrees.

@pytest.mark.parametrize(("diverging", "agreeing"), [(QWEN, GEMMA), (GEMMA, QWEN)],
                         ids=["primary-diverges", "control-diverges"])
def test_outcome_2_triggers_when_one_model_diverges_and_another_agrees(diverging, agreeing):
    summaries = {diverging: model(diverging, **DIVERGE), agreeing: model(agreeing, **AGREE)}
    assert outcome_2(summaries).triggered is True


@pytest.mark.parametrize(("cos", "expected"), [(0.9899, False), (0.99, False), (0.9901, True)],
                         ids=["cos-0.9899", "cos-0.99", "cos-0.9901"])
def test_outcome_2_agreement_cosine_threshold(cos, expected):
    summaries = {QWEN: model(QWEN, **DIVERGE), GEMMA: model(GEMMA, cos=cos, gap=0.0)}
    assert outcome_2(summaries).triggered is expected


@pytest.mark.parametrize(("gap", "expected"), [(4.9, True), (5.0, False), (5.1, False)],
                         ids=["gap-4.9", "gap-5", "gap-5.1"])
def test_outcome_2_agreement_gap_threshold(gap, expected):
    summaries = {QWEN: model(QWEN, **DIVERGE), GEMMA: model(GEMMA, cos=1.0, gap=gap)}
    assert outcome_2(summaries).triggered is expected


def test_outcome_2_does_not_trigger_when_both_diverge():
    assert outcome_2(both(**DIVERGE)).triggered is False


def test_outcome_2_control_with_a_failed_tool_cannot_agree():
    summaries = {QWEN: model(QWEN, **DIVERGE), GEMMA: model(GEMMA, n_ok={"pyvene": 0})}
    assert outcome_2(summaries).triggered is False


def test_outcome_2_control_with_an_absent_tool_cannot_agree():
    summaries = {QWEN: model(QWEN, **DIVERGE), GEMMA: model(GEMMA, absent=("pyvene",))}
    assert outcome_2(summaries).triggered is False


# Outcome 3: deterministic tools and a validated one.

@pytest.mark.parametrize(("within", "expected"), [(0.9989, False), (0.999, False), (0.9991, True)],
                         ids=["within-0.9989", "within-0.999", "within-0.9991"])
def test_outcome_3_within_threshold(within, expected):
    summaries = both(within={"pyvene": within})
    assert outcome_3(summaries, checklist()).triggered is expected


def test_outcome_3_needs_two_ok_repeats_to_judge_determinism():
    result = outcome_3(both(n_ok={"pyvene": 1}), checklist())
    assert result.triggered is False and any("needs 2" in r for r in result.reasons)


def test_outcome_3_rejects_a_best_tool_that_fails_the_checklist():
    summaries = both(refusal={"nnsight": 1.0})
    assert outcome_3(summaries, checklist(failing=("nnsight",))).triggered is False


def test_outcome_3_names_every_tool_tied_for_best():
    result = outcome_3(both(refusal={"hooks": 0.1}), checklist())
    assert (result.numbers["validated_tools"], result.numbers["tied"]) == (["nnsight", "pyvene"], True)


def test_outcome_3_breaks_a_tie_with_the_checklist():
    result = outcome_3(both(refusal={"hooks": 0.1}), checklist(failing=("pyvene",)))
    assert result.numbers["validated_tools"] == ["nnsight"]


def test_outcome_3_treats_a_missing_checklist_entry_as_not_passed():
    result = outcome_3(both(refusal={"nnsight": 1.0}), {QWEN: {t: True for t in TOOLS}, GEMMA: {}})
    assert result.triggered is False


def test_outcome_3_needs_the_same_best_tool_on_every_model():
    summaries = {QWEN: model(QWEN, refusal={"nnsight": 1.0}), GEMMA: model(GEMMA, refusal={"hooks": 1.0})}
    assert outcome_3(summaries, checklist()).triggered is False


def test_outcome_3_can_trigger_on_a_single_model():
    assert outcome_3({QWEN: model(QWEN, refusal={"nnsight": 1.0})}, checklist((QWEN,))).triggered is True


# Outcome 4: agreement everywhere.

def test_outcome_4_cannot_trigger_with_a_single_model():
    result = outcome_4({QWEN: model(QWEN, **AGREE)})
    assert result.triggered is False and any("at least 2" in r for r in result.reasons)


@pytest.mark.parametrize("kwargs", [{"n_ok": {"hooks": 0}}, {"absent": ("hooks",)}],
                         ids=["failed-tool", "absent-tool"])
def test_outcome_4_needs_every_tool(kwargs):
    summaries = {QWEN: model(QWEN), GEMMA: model(GEMMA, **kwargs)}
    assert outcome_4(summaries).triggered is False


def test_outcome_4_needs_every_expected_model():
    summaries = {QWEN: model(QWEN), GEMMA: model(GEMMA)}
    assert outcome_4(summaries, checklist((QWEN, GEMMA, LLAMA))).triggered is False


# decide: precedence, missing data, inconclusive.

@pytest.mark.parametrize(("summaries", "primary", "triggered"), [
    pytest.param(both(**DIVERGE), 1, [1, 3], id="diverge-both-plus-gate"),
    pytest.param({QWEN: model(QWEN, **DIVERGE), GEMMA: model(GEMMA)}, 2, [2, 3], id="diverge-one"),
    pytest.param({QWEN: model(QWEN, **DIVERGE), GEMMA: model(GEMMA, **DIVERGE), LLAMA: model(LLAMA)},
                 1, [1, 2, 3], id="three-models-1-beats-2"),
    pytest.param(both(**AGREE), 4, [4, 3], id="agree-stop-beats-proceed"),
    pytest.param(both(**BETWEEN), 3, [3], id="gate-only"),
])
def test_decide_orders_triggered_outcomes_by_precedence(summaries, primary, triggered):
    decision = decide(summaries, checklist(tuple(summaries)))
    assert (decision.primary.outcome, [r.outcome for r in decision.triggered]) == (primary, triggered)


def test_decide_says_the_stop_overrides_the_gate():
    assert "stop takes precedence" in decide(both(**AGREE), checklist()).next_step


def test_decide_is_inconclusive_when_no_rule_triggers():
    decision = decide(both(within=0.99, **BETWEEN), checklist())
    assert (decision.primary, decision.verdict) == (None, "inconclusive")


def test_inconclusive_next_step_names_the_missing_data():
    decision = decide({QWEN: model(QWEN, n_ok={"pyvene": 0})}, checklist())
    assert f"{GEMMA}: no results" in decision.next_step


@pytest.mark.parametrize(("summaries", "checks", "line"), [
    pytest.param({QWEN: model(QWEN)}, checklist(), f"{GEMMA}: no results", id="absent-model"),
    pytest.param({QWEN: model(QWEN, absent=("pyvene",))}, checklist((QWEN,)), f"{QWEN}/pyvene: no results",
                 id="absent-tool"),
    pytest.param({QWEN: model(QWEN, n_ok={"hooks": 3})}, checklist((QWEN,)),
                 f"{QWEN}/hooks: 2 of 5 repeat(s) failed", id="failed-repeats"),
    pytest.param({QWEN: model(QWEN, n_ok={"hooks": 1})}, checklist((QWEN,)),
                 f"{QWEN}/hooks: one successful repeat; within-method cosine needs two", id="single-repeat"),
    pytest.param({QWEN: model(QWEN)}, {QWEN: {"hooks": True}}, f"{QWEN}/nnsight: no parity checklist entry",
                 id="checklist-gap"),
])
def test_decide_lists_missing_data(summaries, checks, line):
    assert line in decide(summaries, checks).missing


def test_decide_reports_every_rule():
    assert [r.outcome for r in decide(both(), checklist()).all] == [1, 2, 3, 4]


def test_decide_expected_tools_makes_an_unrun_tool_missing():
    decision = decide(both(), checklist(), expected_tools=(*TOOLS, "baukit"))
    assert f"{QWEN}/baukit: no results" in decision.missing


def test_decision_is_json_serialisable():
    decision = decide(both(**DIVERGE), checklist())
    assert json.loads(json.dumps(decision.to_dict())) == decision.to_dict()
