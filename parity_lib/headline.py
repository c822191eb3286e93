"""The report's first line: what a researcher acts on, in plain words first and the protocol's outcome name
after them. Never "Proceed" or "Stop" over a divergence.

Section E's outcome (`outcome.decide`) stays as the protocol writes it; this module adds what the rules
do not see and says so:

* **Steering divergence** (outside Section E's letter): the directions agree (cosine > 0.99) while the
  coherent-refusal rates differ by more than 20 pp — the paper's own claim, NNsight 100% vs hooks 10% with
  the same direction. The finding says the gap is in the steering mechanism, not in extraction.
* **Headline discipline**: while any tool pair on any model diverges (cosine < 0.95 or gap > 20 pp) or
  any Section D check failed, the first line says so instead of "Proceed" / "Stop", and a diverging tool
  is never called validated.
* **Framing**: interrupted, partial and gate-overridden runs, model organisms and shape-only models are
  named at the front of the first line, before the verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from .outcome import CROSS_AGREE_COS, CROSS_DIVERGE_COS, GAP_DIVERGE_PP, Decision

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
class Finding:
    kind: str  # "steering diverges" | "diverging pair" | "check failed"
    model: str
    what: str
    tools: tuple[str, ...] = ()


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
    return " ".join(part for part in (first, frame, step) if part)


def _next_step_for_data(head: Headline, decision: Decision) -> str:
    steering = [f for f in head.findings if f.kind == "steering diverges"]
    diverging = [f for f in head.findings if f.kind != "steering diverges"]
    if steering:
        tools = list(head.blocked_tools) or sorted({t for f in steering for t in f.tools})
        return (f"The gap is in steering, not in extraction: the tools' directions agree. Compare how "
                f"{', '.join(tools)} steer (the firing-map rows of 'How parity was judged' show which rows, steps "
                f"and layers each one edited, and by how much); rerun with --parity-steer-with hooks to confirm the "
                f"same directions steer alike through one mechanism; fix or drop the diverging steerer before "
                f"Phase 2.")
    if diverging and (decision.primary is None or decision.primary.outcome in (3, 4)):
        blamed = f"Do not proceed with {', '.join(head.blocked_tools)}. " if head.blocked_tools else ""
        models = sorted({f.model for f in diverging})
        return (f"{blamed}Investigate first: " + "; ".join(f"{f.model}: {f.what}" for f in diverging[:4])
                + f". Run `pytest -m preflight --parity-model {models[0]}` for the Section D numbers and read the "
                  f"per-component divergence below; Section E's action applies once every pair agrees and every "
                  f"check passes.")
    step = decision.next_step
    gate = next((r for r in decision.triggered if r.outcome == 3), None)
    if gate is not None and head.blocked_tools:
        kept = [t for t in gate.numbers["validated_tools"] if t not in head.blocked_tools]
        step = step.replace(", ".join(gate.numbers["validated_tools"]), ", ".join(kept) or "none")
    return step


def findings(models: Mapping[str, Mapping[str, Any]], checklist_entries: Sequence[Mapping[str, Any]],
             steer_with: Sequence[str]) -> list[Finding]:
    """Steering divergence, diverging pairs and failed checks, from the report's model summaries."""
    out = []
    for model, summary in sorted(models.items()):
        for pair in summary["pairs"]:
            cos, gap = pair["cos_min"], pair["refusal_gap_pp"]
            if cos is None or gap is None:
                continue
            tools = tuple(pair["tools"])
            numbers = f"{tools[0]} vs {tools[1]}: direction cosine min {cos:.4f}, refusal gap {gap:.1f} pp"
            if cos > CROSS_AGREE_COS and gap > GAP_DIVERGE_PP:
                how = ("each tool steering with its own mechanism" if "same" in steer_with else
                       "one reference steerer for every direction")
                out.append(Finding("steering diverges", model, f"{numbers} ({how}): the directions agree, the "
                                   f"steered behaviour does not", tools))
            elif cos < CROSS_DIVERGE_COS or gap > GAP_DIVERGE_PP:
                out.append(Finding("diverging pair", model, numbers, tools))
    for entry in checklist_entries:
        if not entry.get("passed", True):
            tools = tuple(t for t in str(entry.get("tool", "")).split("~") if t and t != "*")
            out.append(Finding("check failed", entry["model"], f"{entry['check']} [{entry['tool']}]", tools))
    return out


def _blamed(found: Sequence[Finding], tools: Sequence[str]) -> list[str]:
    """Tools that diverged or failed: in a failed check, or in a diverging pair with a majority of the others."""
    blamed = {t for f in found if f.kind == "check failed" for t in f.tools}
    for model in {f.model for f in found}:
        pairs = [f.tools for f in found if f.model == model and f.kind != "check failed"]
        for tool in tools:
            against = sum(tool in p for p in pairs)
            if pairs and against >= (len(tools) - 1) // 2 + 1:  # a majority of the other tools
                blamed.add(tool)
    return sorted(blamed)


def headline(decision: Decision, models: Mapping[str, Mapping[str, Any]],
             checklist_entries: Sequence[Mapping[str, Any]], run: Mapping[str, Any],
             loaded: Mapping[str, Mapping[str, Any]], gate: Mapping[str, Mapping[str, Any]],
             tools: Sequence[str], steer_with: Sequence[str]) -> Headline:
    found = findings(models, checklist_entries, steer_with)
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
    kinds = {d.get("kind") for d in loaded.values()}
    framing = ""
    if loaded and all(str(d.get("source", "")).rstrip("/").endswith("-organism") for d in loaded.values()):
        framing = ORGANISM_NOTE
    elif "shape" in kinds or "random" in kinds:
        framing = SHAPE_NOTE
    steering = [f for f in found if f.kind == "steering diverges"]
    diverging = [f for f in found if f.kind != "steering diverges"]
    if steering:
        pairs = "; ".join(f"{f.model}: {f.what.split(' (')[0]}" for f in steering)
        text = f"STEERING DIVERGES, extraction agrees ({pairs}) — a finding outside Section E"
    elif diverging and (decision.primary is None or decision.primary.outcome in (3, 4)):
        what = "; ".join(f"{f.model}: {f.what}" for f in diverging[:3])
        text = f"NOT CLEAR TO PROCEED: {what}" + (" (and more)" if len(diverging) > 3 else "")
        text += f" — Section E alone would read '{decision.verdict}'" if decision.primary else ""
    elif decision.primary is not None:
        text = f"{MEANING[decision.primary.outcome]} (Section E {decision.verdict})"
    elif decision.missing:
        text = (f"NO VERDICT: data missing ({'; '.join(decision.missing[:2])}"
                f"{'; and more' if len(decision.missing) > 2 else ''})")
    else:
        text = f"No Section E rule triggered (verdict: {decision.verdict})"
    if framing:
        text = f"{framing}: {text}"
    if caveats:
        text = f"[{'; '.join(caveats)}] {text}"
    return Headline(text, tuple(found), tuple(caveats), tuple(_blamed(found, tools)))
