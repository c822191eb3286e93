"""From a finished run to `reports/phase1_outcome.{md,json}` and the figures.

Reads the cycle records the run produced (errors included: a failed cycle is an error in the report,
never a zero rate), summarizes per model, applies the decision rules, and writes atomically.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..headline import headline, next_step
from ..metrics import summarize_model
from ..outcome import Decision, decide
from ..results import CycleFact, error_path, read_json, write_text_atomic
from .json_report import build_report, dumps_report
from .markdown import render_markdown
from .plots import closeness_plot, rate_bars, to_data_uri

OUTCOME_MD = "phase1_outcome.md"
OUTCOME_JSON = "phase1_outcome.json"


@dataclass(frozen=True)
class Written:
    report: dict[str, Any]
    decision: Decision
    paths: tuple[Path, ...]
    plots: dict[str, dict[str, str]]  # model -> caption -> data URI (for the HTML report)

    @property
    def regressed(self) -> bool:
        """Exit status policy: a divergence verdict (Outcome 1 or 2), any diverging pair or steering
        divergence, or a failed cycle fails the run."""
        primary = self.decision.primary
        errors = any(t["n_error"] for m in self.report["models"].values() for t in m["tools"].values())
        diverged = any(f["kind"] != "check failed" for f in self.report["headline"]["findings"])
        return (primary is not None and primary.outcome in (1, 2)) or errors or diverged

    @property
    def markdown_path(self) -> Path:
        return next(p for p in self.paths if p.name == OUTCOME_MD)

    def key_numbers(self) -> dict[str, Any]:
        """What CI dashboards read from junit.xml: the verdict and the numbers behind it."""
        d = self.decision
        out: dict[str, Any] = {"verdict": self.report["headline"]["text"], "section_e_verdict": d.verdict,
                               "outcome": d.primary.outcome if d.primary else "inconclusive",
                               "interrupted": self.report.get("run", {}).get("interrupted", False),
                               "report": str(self.markdown_path)}
        for model, summary in self.report["models"].items():
            cos = [p["cos_min"] for p in summary["pairs"] if p["cos_min"] is not None]
            gaps = [p["refusal_gap_pp"] for p in summary["pairs"] if p["refusal_gap_pp"] is not None]
            out[f"{model}_cross_cos_min"] = f"{min(cos):.6f}" if cos else "n/a"
            out[f"{model}_refusal_gap_pp_max"] = f"{max(gaps):.1f}" if gaps else "n/a"
            for tool, t in summary["tools"].items():
                rate = (t["rates"] or {}).get("refusal")
                out[f"{model}_{tool}_refusal"] = f"{rate['mean']:.3f}" if rate else "error"
        return out


def load_records(cycles: Sequence[CycleFact]) -> dict[str, list[dict[str, Any]]]:
    """{model: [record, ...]}: each cycle's ok record, or its error record, or a synthetic error."""
    out: dict[str, list[dict[str, Any]]] = {}
    seen = set()
    for fact in cycles:
        ident = fact.ident
        if ident in seen:
            continue
        seen.add(ident)
        path = Path(fact.path)
        record = read_json(path) if fact.status == "ok" else read_json(error_path(path))
        if not record or record.get("config_key") != fact.config_key:
            record = {"model": ident[0], "tool": ident[1], "repeat": ident[2], "status": "error",
                      "error": fact.error or f"result file {path} missing or from another configuration"}
        out.setdefault(ident[0], []).append(record)
    return out


def write_outcome(reports_dir: Path, cycles: Sequence[CycleFact],
                  checklist: Mapping[str, Mapping[str, bool]], tools: Sequence[str],
                  provenance: Mapping[str, Any], total_s: float, extra: Mapping[str, Any]) -> Written:
    records = load_records(cycles)
    summaries = {m: summarize_model(r) for m, r in sorted(records.items())}
    decision = decide(summaries, checklist, expected_models=sorted(records), expected_tools=list(tools))
    computed = {f.ident for f in cycles if f.computed}
    per_cycle = [r["timings"]["total_s"] for rs in records.values() for r in rs
                 if r.get("status") == "ok" and (r["model"], r["tool"], r["repeat"]) in computed]
    report = build_report(summaries, decision, checklist, provenance,
                          {"per_cycle_s": per_cycle, "total_s": total_s})
    report.update(extra)
    report["reuse"] = {m: {"computed": sum(1 for c in computed if c[0] == m),
                           "reused": sum(1 for r in rs if (m, r["tool"], r["repeat"]) not in computed)}
                       for m, rs in records.items()}
    head = headline(decision, report["models"], extra.get("checklist_entries", []), extra.get("run", {}),
                    extra.get("models_loaded", {}), extra.get("gate", {}), tools,
                    [str(extra.get("study_settings", {}).get("steer_with", "hooks"))])
    report["headline"] = {**head.to_dict(), "next_step": next_step(head, decision),
                          "section_e_verdict": decision.verdict}
    reports_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    plots: dict[str, dict[str, str]] = {}
    md_plots: dict[str, dict[str, str]] = {}
    for model, summary in summaries.items():
        baseline = extra.get("baselines", {}).get(model)
        for caption, png in (("cosine closeness", closeness_plot(summary)),
                             ("outcome rates per tool", rate_bars(summary, baseline))):
            name = f"{model}-{caption.split()[0]}.png"
            (reports_dir / name).write_bytes(png)
            paths.append(reports_dir / name)
            plots.setdefault(model, {})[caption] = to_data_uri(png)
            md_plots.setdefault(model, {})[caption] = name
    write_text_atomic(reports_dir / OUTCOME_JSON, dumps_report(report))
    first, rest = render_markdown(report, md_plots).split("\n", 1)
    write_text_atomic(reports_dir / OUTCOME_MD, first + "\n\n" + _caveats(report) + rest.lstrip("\n"))
    paths += [reports_dir / OUTCOME_JSON, reports_dir / OUTCOME_MD]
    return Written(report, decision, tuple(paths), plots)


def _caveats(report: Mapping[str, Any]) -> str:
    """Warnings a reader must see before the verdict: behaviour-free models, an overridden gate."""
    notes = []
    loaded = report.get("models_loaded", {})
    hollow = sorted(m for m, d in loaded.items() if not d.get("behaviour_meaningful", True))
    if hollow:
        notes.append(f"> **Shape-only / random-weight run** ({', '.join(hollow)}): parity and speed are "
                     f"meaningful, refusal rates are not (these weights have no learned behaviour).")
    run = report.get("run", {})
    missing = [m for m in run.get("models_expected", []) if m not in run.get("models_with_cycles", [])]
    if run.get("interrupted"):
        notes.append("> **Run interrupted** before it finished: this report covers only the cycles that "
                     "completed" + (f"; models with no cycle: {', '.join(missing)}" if missing else "")
                     + ". Rerun the same command: finished cycles are reused, the rest are computed.")
    elif missing:
        notes.append(f"> **Models not studied in this run**: {', '.join(missing)} (deselected or failed before "
                     f"their first cycle).")
    overridden = sorted(m for m, g in report.get("gate", {}).items() if g.get("overridden"))
    if overridden:
        notes.append(f"> **Preflight gate overridden** for {', '.join(overridden)}: raw activations did not "
                     f"match across tools, and the study ran anyway (--parity-override-gate).")
    return "\n\n".join(notes) + ("\n\n" if notes else "")


def terminal_lines(written: Written) -> list[str]:
    d = written.decision
    head = written.report["headline"]
    lines = [f"Phase 1: {head['text']}"]
    if head["text"] != d.verdict:
        lines.append(f"  Section E verdict: {d.verdict}")
    if d.primary:
        lines += [f"  why: {r}" for r in d.primary.reasons[-2:]]
    for other in d.triggered[1:]:
        lines.append(f"  also triggered: Outcome {other.outcome} ({other.name})")
    if d.missing:
        lines.append(f"  missing data: {'; '.join(d.missing[:3])}")
    lines.append(f"  next: {head['next_step']}")
    lines.append(f"  report: {written.markdown_path}")
    return lines
