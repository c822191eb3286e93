"""The report's first line: what a researcher acts on, in plain words first and the protocol's outcome name
after them. It never contradicts the run's own tests or numbers.

Section E's outcome (`outcome.decide`) stays as the protocol writes it, on its own line; this module puts
ahead of it what the rules do not see (`findings.py`), strongest first:

* **Failed tests**: when any preflight or study test failed or errored, the first line names them (test,
  model, tools, the number against its bar) and is never a Section E action; a tool in a failed test is never
  called validated.
* **Steering divergence**, **diverging pairs and failed checks** ("NOT CLEAR TO PROCEED"), **grey-zone
  disagreement** ("TOOLS DISAGREE"), then the behavioural findings: **no effect** (nothing steered, so nothing
  "steers best") and **over-steered**.
* **Framing**: interrupted, partial and gate-overridden runs, model organisms and shape-only models are
  named at the front of the first line, before the verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from parity_lib.protocol.findings import (
    CHECK,
    DISAGREE,
    DIVERGING,
    NO_EFFECT,
    NOT_RUN,
    OVER,
    STEERING,
    TEST,
    Finding,
    blamed,
    findings,
)
from parity_lib.protocol.outcome import Decision

# What the verdict is about, in front of it (after any [INTERRUPTED]/[PARTIAL] caveat): a reader who stops at
# the first words must not take a test model's verdict for the paper's models.
ORGANISM_NOTE = ("ON TEST MODELS (the suite's model organisms: small Qwen2/Gemma2 models trained in this "
                 "repository, not the paper's Qwen2.5-7B / Gemma-2-9B)")
SHAPE_NOTE = "ON SHAPE-ONLY MODELS (random weights: parity and speed are meaningful, refusal rates are not)"
# What each Section E outcome means, in the words a researcher acts on; the protocol's name follows it.
MEANING = {1: "The tools diverge on two or more models: a real tooling effect",
           2: "The tools diverge on some models and agree on others: a model-specific artifact",
           3: "Every tool is deterministic and one passes every check and steers best on every model",
           4: "The tools agree on every model: no tooling effect, the tooling investigation can stop"}


@dataclass(frozen=True)
class Headline:
    text: str
    findings: tuple[Finding, ...] = ()
    caveats: tuple[str, ...] = ()
    blocked_tools: tuple[str, ...] = ()  # never "validated": they diverged or failed a check
    numbers: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "findings": [f.__dict__ for f in self.findings], "caveats": list(self.caveats),
                "blocked_tools": list(self.blocked_tools)}


PAPER_MODELS = "--parity-model qwen-7b --parity-model gemma-9b"


def next_step(head: Headline, decision: Decision, run: Mapping[str, Any] | None = None) -> str:
    """What to do, consistent with the first line: a partial run is completed before anything is acted on; on
    test models the real-model run comes first and Section E's action (written for real models) is not given
    as an instruction; a divergence is investigated before anything proceeds."""
    run = run or {}
    if any(f.kind == NOT_RUN for f in head.findings):
        return fault_step(head)
    same = "the same command" + (" without --parity-fresh" if run.get("fresh") else "")
    first = ""
    if run.get("interrupted"):
        first = f"Rerun {same} to finish: finished cycles are reused, the rest are computed."
    elif not run.get("complete", True):
        first = (f"Complete the run first ({'; '.join(run.get('not_run', [])[:3])}): rerun {same} without -k or "
                 f"other deselection; finished cycles are reused and only the missing ones are computed. To study "
                 f"fewer models on purpose, name them with --parity-model.")
    # with no verdict, the data step only says "fill the missing data": the line above already does
    step = "" if first and decision.primary is None else _next_step_for_data(head, decision)
    test_models = ORGANISM_NOTE in head.text or SHAPE_NOTE in head.text
    if test_models and not head.findings and step:
        # Section E's action ("write up", "do not extend to more models") is for real models: not an instruction here
        step = f"Section E's action for {decision.verdict} applies to a run on real models, not to this one."
    if ORGANISM_NOTE in head.text:
        frame = ("These are the suite's own test models (model organisms): results on them show whether the "
                 "pipeline works, not how the tools behave on the paper's models, so do not write them up. For "
                 f"the paper's question run the same command with {PAPER_MODELS} (local weights).")
    elif SHAPE_NOTE in head.text:
        frame = ("Shape-only models have random weights: parity and speed are meaningful here, refusal rates and "
                 f"therefore Section E's action are not; for the paper's question run with {PAPER_MODELS} (local "
                 f"weights).")
    else:
        frame = ""
    if first and step and not frame:
        step = f"Until then: {step}"
    if any(f.kind == TEST for f in head.findings):  # failed tests are fixed first, whatever the models are
        return " ".join(part for part in (first, step, frame) if part)
    return " ".join(part for part in (first, frame, step) if part)


def _next_step_for_data(head: Headline, decision: Decision) -> str:
    failed = [f for f in head.findings if f.kind == TEST]
    first = _after_failed_tests(failed, head.blocked_tools) if failed else ""
    step = _step_for_findings(head, decision)
    return f"{first} Then: {step}" if first and step else first or step


def _after_failed_tests(failed: Sequence[Finding], blocked: Sequence[str]) -> str:
    names = sorted({f.what.split(":")[0].split("[")[0] for f in failed})
    tools = f" A tool in a failed test is not validated: {', '.join(blocked)}." if blocked else ""
    return (f"{len(failed)} protocol test(s) failed; each message names its number and bar. See them in full with "
            f"`pytest -m \"preflight or study\" -k \"{' or '.join(names[:3])}\"` (the same options), and fix the "
            f"cause before acting on any verdict: Section E's action applies once every test passes.{tools}")


def _step_for_findings(head: Headline, decision: Decision) -> str:
    of = {kind: [f for f in head.findings if f.kind == kind] for kind in (STEERING, DIVERGING, CHECK, DISAGREE,
                                                                           NO_EFFECT, OVER)}
    if of[STEERING]:
        tools = list(head.blocked_tools) or sorted({t for f in of[STEERING] for t in f.tools})
        return (f"The gap is in steering, not in extraction: the tools' directions agree. Compare how "
                f"{', '.join(tools)} steer (the firing-map rows of 'How parity was judged' show which rows, steps "
                f"and layers each one edited, and by how much); rerun with --parity-steer-with hooks to confirm the "
                f"same directions steer alike through one mechanism; fix or drop the diverging steerer before "
                f"Phase 2.")
    diverging = of[DIVERGING] + of[CHECK] + of[DISAGREE]
    if diverging and (decision.primary is None or decision.primary.outcome in (3, 4)):
        blamed = f"Do not proceed with {', '.join(head.blocked_tools)}. " if head.blocked_tools else ""
        models = sorted({f.model for f in diverging})
        bitwise = (" Correct tools give bitwise-equal activations at the same site, so a cosine below 0.99 is a "
                   "different tensor (another layer, position or stage), not noise." if of[DISAGREE] else "")
        return (f"{blamed}Investigate first: " + "; ".join(f"{f.model}: {f.what}" for f in diverging[:4])
                + f".{bitwise} Run `pytest -m preflight --parity-model {models[0]}` for the Section D numbers and "
                  f"read the per-component divergence in the report; Section E's action applies once every pair "
                  f"agrees and every check passes.")
    if of[OVER] or of[NO_EFFECT]:
        return _step_for_behaviour(of[OVER], of[NO_EFFECT])
    step = decision.next_step
    gate = next((r for r in decision.triggered if r.outcome == 3), None)
    if gate is not None and head.blocked_tools:
        kept = [t for t in gate.numbers["validated_tools"] if t not in head.blocked_tools]
        step = step.replace(", ".join(gate.numbers["validated_tools"]), ", ".join(kept) or "none")
    return step


def _step_for_behaviour(over: Sequence[Finding], none: Sequence[Finding]) -> str:
    """Behavioural parity needs a setting where the direction steers: coherent refusal above the baseline,
    little garbling. Extraction parity (the checks and the cosines) stands on its own either way."""
    parts = []
    if over:
        parts.append(f"On {', '.join(f.model for f in over)} the multiplier is too large at this layer: rerun with a "
                     f"smaller one (--parity-model NAME:LAYER:MULT).")
    if none:
        parts.append(f"On {', '.join(f.model for f in none)} the direction changes no behaviour at this layer and "
                     f"multiplier, so the refusal rates cannot tell the tools apart and no tool 'steers best': try "
                     f"other layers and multipliers (--parity-model NAME:LAYER:MULT) until coherent refusal rises "
                     f"above the unsteered baseline.")
    return " ".join(parts) + (" The extraction results (checks, cosines) stand on their own. Section E's action "
                              "(Outcome 3's 'lock in the tool that steers best') does not apply until steering "
                              "works.")


def headline(decision: Decision, models: Mapping[str, Mapping[str, Any]],
             checklist_entries: Sequence[Mapping[str, Any]], run: Mapping[str, Any],
             loaded: Mapping[str, Mapping[str, Any]], gate: Mapping[str, Mapping[str, Any]],
             tools: Sequence[str], steer_with: Sequence[str], *,
             baselines: Mapping[str, Mapping[str, Any]] | None = None,
             failed_tests: Sequence[Mapping[str, Any]] = ()) -> Headline:
    found = findings(models, checklist_entries, steer_with, baselines, failed_tests)
    faults = [t["fault"] for t in failed_tests if t.get("fault")]
    if faults:
        return _fault_headline(found, faults, run, tools)
    text = _lead(found, decision)
    failed = [f for f in found if f.kind == TEST]
    if failed:
        tests = _failed_tests(failed)
        text = f"{text} — {tests}" if text else tests
    elif not text:
        text = _section_e(decision)
    framing = _framing(loaded)
    if framing:
        text = f"{framing}: {text}"
    caveats = _caveats(run, gate)
    if caveats:
        text = f"[{'; '.join(caveats)}] {text}"
    return Headline(text, tuple(found), tuple(caveats), tuple(blamed(found, tools)))


def _fault_headline(found: Sequence[Finding], faults: Sequence[Mapping[str, Any]], run: Mapping[str, Any],
                    tools: Sequence[str]) -> Headline:
    """A fault of the machine leads, with what to do; no tool is blamed for it and no Section E action is given
    (the rules need the data the machine could not produce). Failed tests of the tools themselves follow it."""
    from parity_lib.protocol.faults import summary

    text = summary(list(faults))
    failed = [f for f in found if f.kind == TEST]
    if failed:
        text = f"{text} — and {_failed_tests(failed)}"
    caveats = ["INTERRUPTED"] if run.get("interrupted") else []
    if caveats:
        text = f"[{'; '.join(caveats)}] {text}"
    return Headline(text, tuple(found), tuple(caveats), tuple(blamed(found, tools)))


def fault_step(head: Headline) -> str:
    """What to do after a fault of the machine: its remedy, then the same command (finished cycles are reused)."""
    return ("Fix the machine first (the first line says how), then rerun the same command: finished cycles are "
            "reused and only what was not run is computed. No tool was judged on what did not run, and Section "
            "E's action waits for a complete run.")


def _lead(found: Sequence[Finding], decision: Decision) -> str:
    """The strongest finding ahead of Section E, or "" when there is none."""
    of = {kind: [f for f in found if f.kind == kind] for kind in (STEERING, DIVERGING, CHECK, DISAGREE,
                                                                   NO_EFFECT, OVER)}
    if of[STEERING]:
        pairs = "; ".join(f"{f.model}: {f.what.split(' (')[0]}" for f in of[STEERING])
        return f"STEERING DIVERGES, extraction agrees ({pairs}) — a finding outside Section E"
    diverging = of[DIVERGING] + of[CHECK]
    if diverging and decision.primary is not None and decision.primary.outcome in (1, 2):
        return _section_e(decision)  # Section E's own divergence verdict: what it says is the finding
    if diverging:
        what = "; ".join(f"{f.model}: {f.what}" for f in diverging[:3])
        return f"NOT CLEAR TO PROCEED: {what}" + (" (and more)" if len(diverging) > 3 else "")
    if of[DISAGREE]:
        what = "; ".join(f"{f.model}: {f.what}" for f in of[DISAGREE][:2])
        return (f"TOOLS DISAGREE (below the protocol's divergence bar): {what}"
                + (" (and more)" if len(of[DISAGREE]) > 2 else "") + " — correct tools give bitwise-equal activations")
    if of[OVER]:
        return "OVER-STEERED " + "; ".join(f"on {f.model} {f.what}" for f in of[OVER])
    if of[NO_EFFECT]:
        return "STEERING HAS NO EFFECT " + "; ".join(f"on {f.model} {f.what}" for f in of[NO_EFFECT])
    return ""


def _failed_tests(failed: Sequence[Finding], what: str = "PROTOCOL") -> str:
    """The failed tests, named: each test's claim and parameters, with its message's first line."""
    shown = "; ".join(f.what for f in failed[:2])
    more = f"; and {len(failed) - 2} more" if len(failed) > 2 else ""
    return (f"{len(failed)} {what} TEST{'S' if len(failed) > 1 else ''} FAILED: {shown}{more} — fix "
            f"{'them' if len(failed) > 1 else 'it'} before acting on any verdict")


def failed_tests_line(failed_tests: Sequence[Mapping[str, Any]], what: str = "PROTOCOL") -> str:
    """The failed-tests phrase for a run without a study (`-m preflight`), or for the sweep report."""
    return _failed_tests(findings({}, [], [], failed_tests=failed_tests), what)


def framing(loaded: Mapping[str, Mapping[str, Any]]) -> str:
    return _framing(loaded)


def _section_e(decision: Decision) -> str:
    if decision.primary is not None:
        return f"{MEANING[decision.primary.outcome]} (Section E {decision.verdict})"
    if decision.missing:
        return (f"NO VERDICT: data missing ({'; '.join(decision.missing[:2])}"
                f"{'; and more' if len(decision.missing) > 2 else ''})")
    return f"No Section E rule triggered (verdict: {decision.verdict})"


def _framing(loaded: Mapping[str, Mapping[str, Any]]) -> str:
    kinds = {d.get("kind") for d in loaded.values()}
    if loaded and all(str(d.get("source", "")).rstrip("/").endswith("-organism") for d in loaded.values()):
        return ORGANISM_NOTE
    if "shape" in kinds or "random" in kinds:
        return SHAPE_NOTE
    return ""


def _caveats(run: Mapping[str, Any], gate: Mapping[str, Mapping[str, Any]]) -> list[str]:
    caveats = []
    missing = [m for m in run.get("models_expected", []) if m not in run.get("models_with_cycles", [])]
    if run.get("interrupted"):
        caveats.append("INTERRUPTED: partial results" + (f", no cycle for {', '.join(missing)}" if missing else ""))
    elif missing:
        caveats.append(f"PARTIAL: no cycle for {', '.join(missing)}")
    elif not run.get("complete", True):
        caveats.append(f"PARTIAL: {'; '.join(run.get('not_run', []))}")
    overridden = sorted(m for m, g in gate.items() if g.get("overridden"))
    if overridden:
        caveats.append(f"GATE OVERRIDDEN for {', '.join(overridden)}")
    return caveats
