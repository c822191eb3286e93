"""From a finished run to `reports/phase1_outcome.{md,json}` and the figures.

Reads the cycle records the run produced (errors included: a failed cycle is an error in the report,
never a zero rate), summarizes per model, applies the decision rules, and writes atomically.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from parity_lib.protocol.findings import DISAGREE, DIVERGING, STEERING
from parity_lib.protocol.headline import failed_tests_line, headline, next_step
from parity_lib.protocol.metrics import summarize_model
from parity_lib.protocol.outcome import Decision, also_holds, decide
from parity_lib.report.json_report import build_report, dumps_report
from parity_lib.report.markdown import render_markdown
from parity_lib.report.plots import closeness_plot, rate_bars, to_data_uri
from parity_lib.storage.results import CycleFact, error_path, read_json, write_text_atomic

OUTCOME_STEM = "phase1_outcome"
OUTCOME_MD = f"{OUTCOME_STEM}.md"
OUTCOME_JSON = f"{OUTCOME_STEM}.json"
PARTIAL = "partial"  # a partial run's figures: partial-<model>-*.png (the complete outcome's stay for its report)
LAST_COMPLETE = f"{OUTCOME_STEM}.last-complete"  # where a complete outcome goes when a later run is not complete


@dataclass(frozen=True)
class Written:
    report: dict[str, Any]
    decision: Decision
    paths: tuple[Path, ...]
    plots: dict[str, dict[str, str]]  # model -> caption -> data URI (for the HTML report)

    @property
    def regressed(self) -> bool:
        """Exit status policy: a divergence verdict (Outcome 1 or 2), any diverging or disagreeing pair or
        steering divergence, or a failed cycle fails the run. A setting where steering does nothing or too much
        is named in the first line but fails nothing: it is about the layer and multiplier, not the tools."""
        primary = self.decision.primary
        errors = any(t["n_error"] for m in self.report["models"].values() for t in m["tools"].values())
        diverged = any(f["kind"] in (STEERING, DIVERGING, DISAGREE) for f in self.report["headline"]["findings"])
        return (primary is not None and primary.outcome in (1, 2)) or errors or diverged

    @property
    def markdown_path(self) -> Path:
        return next(p for p in self.paths if p.suffix == ".md")

    @property
    def kept(self) -> dict[str, Any] | None:
        """The complete outcome this partial run did not overwrite: {"path", "utc", "headline"}, else None."""
        return self.report.get("run", {}).get("complete_outcome_kept")

    def key_numbers(self) -> dict[str, Any]:
        """What CI dashboards read from junit.xml: the verdict and the numbers behind it."""
        d = self.decision
        run = self.report.get("run", {})
        out: dict[str, Any] = {"verdict": self.report["headline"]["text"], "section_e_verdict": d.verdict,
                               "outcome": d.primary.outcome if d.primary else "inconclusive",
                               "interrupted": run.get("interrupted", False), "complete": run.get("complete", True),
                               "report": str(self.markdown_path)}
        if self.kept:
            out["complete_outcome_kept"] = f"{self.kept['path']} ({self.kept['utc']}): {self.kept['headline']}"
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
        if ident in seen or fact.status == "not_run":  # a fault of the machine: no data, not a tool's error
            continue
        seen.add(ident)
        path = Path(fact.path)
        record = read_json(path) if fact.status == "ok" else read_json(error_path(path))
        if not record or record.get("config_key") != fact.config_key:
            record = {"model": ident[0], "tool": ident[1], "repeat": ident[2], "status": "error",
                      "error": fact.error or f"result file {path} missing or from another configuration"}
        out.setdefault(ident[0], []).append(record)
    return out


def holes(cycles: Sequence[CycleFact], run: Mapping[str, Any], tools: Sequence[str]) -> list[str]:
    """(model, tool, repeat) cycles the run was configured for and has no record of, one line per model."""
    have = {f.ident for f in cycles if f.status != "not_run"}
    repeats = int(run.get("repeats") or max((f.repeat for f in cycles), default=0))
    out = []
    for model in run.get("models_expected") or sorted({f.model for f in cycles}):
        absent = [f"{t}/r{r}" for t in tools for r in range(1, repeats + 1) if (model, t, r) not in have]
        if absent:
            out.append(f"{model}: {len(absent)} of {len(tools) * repeats} cycles not run"
                       + (f" ({', '.join(absent[:4])}{', ...' if len(absent) > 4 else ''})"
                          if len(absent) < len(tools) * repeats else ""))
    return out


def keep_last_complete(reports_dir: Path) -> dict[str, Any] | None:
    """Before a run that is not complete writes its own outcome: a complete outcome on file is moved to
    `phase1_outcome.last-complete.{md,json}` (its figures stay), so nothing finished is lost and the outcome file
    always describes the last run. Returns {"path", "utc", "headline"} of the last complete outcome, if any."""
    import os

    old = complete_outcome(reports_dir)
    if old is not None:
        for suffix in (".json", ".md"):
            if (reports_dir / f"{OUTCOME_STEM}{suffix}").exists():
                os.replace(reports_dir / f"{OUTCOME_STEM}{suffix}", reports_dir / f"{LAST_COMPLETE}{suffix}")
    else:
        old = complete_outcome(reports_dir, f"{LAST_COMPLETE}.json")
    if old is None:
        return None
    utc = old.get("provenance", {}).get("utc", "unknown time")
    return {"path": str(reports_dir / f"{LAST_COMPLETE}.md"), "utc": utc, "headline": old["headline"]["text"]}


def complete_outcome(reports_dir: Path, name: str = OUTCOME_JSON) -> dict[str, Any] | None:
    """The outcome on file if it came from a complete run (every configured cycle, not interrupted)."""
    old = read_json(reports_dir / name)
    if not isinstance(old, dict) or "headline" not in old:
        return None
    run = old.get("run", {})
    done = run.get("complete")
    if done is None:  # written before the field existed: complete when nothing was interrupted or missing
        done = not run.get("interrupted") and set(run.get("models_expected", [])) <= set(
            run.get("models_with_cycles", []))
    return old if done else None


def write_outcome(reports_dir: Path, cycles: Sequence[CycleFact],
                  checklist: Mapping[str, Mapping[str, bool]], tools: Sequence[str],
                  provenance: Mapping[str, Any], total_s: float, extra: Mapping[str, Any]) -> Written:
    """The outcome files, always this run's. A partial run (interrupted, or cycles of the configured models, tools
    and repeats missing: `-k`, a failed worker, a fault of the machine) is judged against everything it was
    configured for, so a missing model is missing data, never a one-model verdict; a complete outcome on file is
    moved to `phase1_outcome.last-complete.*` first, and the partial report says so. A complete run replaces the
    outcome and removes the figures and files the previous ones left."""
    records = load_records(cycles)
    summaries = {m: summarize_model(r) for m, r in sorted(records.items())}
    run = dict(extra.get("run", {}))
    gaps = holes(cycles, run, tools)
    run["complete"] = not run.get("interrupted") and not gaps
    run["not_run"] = gaps
    decision = decide(summaries, checklist, expected_models=run.get("models_expected") or sorted(records),
                      expected_tools=list(tools))
    computed = {f.ident for f in cycles if f.computed}
    per_cycle = [r["timings"]["total_s"] for rs in records.values() for r in rs
                 if r.get("status") == "ok" and (r["model"], r["tool"], r["repeat"]) in computed]
    report = build_report(summaries, decision, checklist, provenance,
                          {"per_cycle_s": per_cycle, "total_s": total_s})
    report.update(extra)
    reports_dir.mkdir(parents=True, exist_ok=True)
    previous = _figures_of(reports_dir)
    kept = None if run["complete"] else keep_last_complete(reports_dir)
    if kept is not None:
        run["complete_outcome_kept"] = kept
    report["run"] = run
    report["reuse"] = {m: {"computed": sum(1 for c in computed if c[0] == m),
                           "reused": sum(1 for r in rs if (m, r["tool"], r["repeat"]) not in computed)}
                       for m, rs in records.items()}
    head = headline(decision, report["models"], extra.get("checklist_entries", []), run,
                    extra.get("models_loaded", {}), extra.get("gate", {}), tools,
                    [str(extra.get("study_settings", {}).get("steer_with", "hooks"))],
                    baselines=extra.get("baselines", {}), failed_tests=extra.get("failed_tests", []))
    report["headline"] = {**head.to_dict(), "next_step": next_step(head, decision, run),
                          "section_e_verdict": decision.verdict}
    prefix, stem = (f"{PARTIAL}-", OUTCOME_STEM) if not run["complete"] else ("", OUTCOME_STEM)
    paths: list[Path] = []
    plots: dict[str, dict[str, str]] = {}
    md_plots: dict[str, dict[str, str]] = {}
    for model, summary in summaries.items():
        baseline = extra.get("baselines", {}).get(model)
        for caption, png in (("cosine closeness", closeness_plot(summary)),
                             ("outcome rates per tool", rate_bars(summary, baseline))):
            name = f"{prefix}{model}-{caption.split()[0]}.png"
            write_text_atomic(reports_dir / name, png)
            paths.append(reports_dir / name)
            plots.setdefault(model, {})[caption] = to_data_uri(png)
            md_plots.setdefault(model, {})[caption] = name
    report["figures"] = [p.name for p in paths]
    json_path, md_path = reports_dir / f"{stem}.json", reports_dir / f"{stem}.md"
    write_text_atomic(json_path, dumps_report(report))
    first, rest = render_markdown(report, md_plots).split("\n", 1)
    write_text_atomic(md_path, first + "\n\n" + _caveats(report) + rest.lstrip("\n"))
    if run["complete"]:  # this outcome supersedes what the last one and any partial run left
        for name in {*previous, *(p.name for p in reports_dir.glob(f"{PARTIAL}-*.png"))} - set(report["figures"]):
            (reports_dir / name).unlink(missing_ok=True)
        for stale in (f"{LAST_COMPLETE}", f"{OUTCOME_STEM}.{PARTIAL}"):
            for suffix in (".json", ".md"):
                (reports_dir / f"{stale}{suffix}").unlink(missing_ok=True)
    elif kept is None:  # no complete outcome to keep: a partial run's own earlier figures go
        for name in set(p.name for p in reports_dir.glob(f"{PARTIAL}-*.png")) - set(report["figures"]):
            (reports_dir / name).unlink(missing_ok=True)
    paths += [json_path, md_path]
    return Written(report, decision, tuple(paths), plots)


def _figures_of(reports_dir: Path) -> list[str]:
    """The figure files the outcome on file wrote (older outcomes: the names their models imply)."""
    old = read_json(reports_dir / OUTCOME_JSON)
    if not isinstance(old, dict):
        return []
    if "figures" in old:
        return [str(n) for n in old["figures"] if "/" not in str(n)]
    return [f"{m}-{kind}.png" for m in old.get("models", {}) for kind in ("cosine", "outcome")]


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
                     f"their first cycle): they count as missing data, so this run gives no verdict on them.")
    elif run.get("not_run"):
        notes.append(f"> **Cycles not run** (deselected or failed): {'; '.join(run['not_run'])}.")
    kept = run.get("complete_outcome_kept")
    if kept:
        notes.append(f"> **This file covers only this partial run.** The last complete outcome was kept in "
                     f"`{kept['path']}` ({kept['utc']}): \"{kept['headline']}\".")
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
        lines.append(f"  {also_holds(d.triggered[0].outcome, other.outcome, other.name)}")
    if d.missing:
        lines.append(f"  missing data: {'; '.join(d.missing[:3])}")
    lines.append(f"  next: {head['next_step']}")
    lines.append(f"  report: {written.markdown_path}")
    if written.kept:
        lines.append(f"  kept: the last complete outcome, moved to {written.kept['path']} ({written.kept['utc']}): "
                     f"{written.kept['headline']}")
    return lines


def no_study_lines(reports_dir: Path, checklist: Mapping[str, Any], checked: set[str], models: Sequence[str],
                   interrupted: bool, failed_tests: Sequence[Mapping[str, Any]] = (),
                   kept: Mapping[str, Any] | None = None, swept: bool = False) -> dict[str, str]:
    """What a run without study cycles (`-m preflight`, a sweep, a run a fault stopped before its first cycle)
    reports, in its outcome file, junit.xml and report.html: that it gives no verdict (led by a fault of the
    machine when one stopped it), whether it was interrupted, the checklist of each configured model (this run's
    checks, or the file's from an earlier run, said as such) and the last complete study outcome, kept aside."""
    from parity_lib.protocol.faults import summary

    what = ("a sweep: its result heads sweep.md" if swept else "Section D checklist only" if checked
            else "nothing checked")
    faults = [t["fault"] for t in failed_tests if t.get("fault")]
    tests = [t for t in failed_tests if not t.get("fault")]
    lead = f"{summary(faults)}. " if faults else ""
    failed = f"{failed_tests_line(tests)}. " if tests else ""
    lines = {"verdict": ("[INTERRUPTED] " if interrupted else "") + lead + failed
             + f"No study ran in this run: no Phase 1 verdict from it ({what})."}
    if interrupted:
        lines["interrupted"] = "Interrupted before it finished: the checklist below covers only the checks that ran."
    summary_ = checklist.get("summary") or {}
    utc = checklist.get("earlier_utc") or (checklist.get("provenance") or {}).get("utc", "unknown time")
    for model in models:
        bad = (summary_.get(model) or {}).get("failed") or []
        state = "every check passed" if not bad else f"FAILED {len(bad)}: {'; '.join(bad[:3])}"
        if model not in summary_:
            line = f"Checklist {model}: not checked in this configuration (dtype, device, code, tools)"
        else:
            source = "this run" if model in checked else f"from an earlier run, checklist file of {utc}"
            line = f"Checklist {model} ({source}): {state}"
        lines[f"checklist_{model}"] = line
    if kept:
        lines["outcome_on_file"] = (f"Last complete study outcome (an earlier run, {kept['utc']}, kept in "
                                    f"{kept['path']}): {kept['headline']}")
    else:
        lines["outcome_on_file"] = (f"No complete study outcome on file in {reports_dir}: run `pytest -m study` "
                                    f"(or \"preflight or study\").")
    return lines


def write_no_study(reports_dir: Path, checklist: Mapping[str, Any], checked: set[str], models: Sequence[str],
                   interrupted: bool, failed_tests: Sequence[Mapping[str, Any]], provenance: Mapping[str, Any],
                   total_s: float, swept: bool = False) -> dict[str, str]:
    """The outcome files of a run without study cycles: its own first line, never an earlier run's verdict left
    standing beside this run's junit.xml and report.html. A complete outcome on file is kept aside first."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    kept = keep_last_complete(reports_dir)
    lines = no_study_lines(reports_dir, checklist, checked, models, interrupted, failed_tests, kept, swept)
    faulted = any(t.get("fault") for t in failed_tests)
    step = ("Fix the machine first (the first line says how), then rerun the same command." if faulted else
            "Run the study for a verdict: `pytest -m \"preflight or study\"` with the same options.")
    report = {"schema": 1, "headline": {"text": lines["verdict"], "next_step": step, "findings": [],
                                        "section_e_verdict": "none: no study ran"},
              "run": {"study": False, "complete": False, "interrupted": interrupted, "models_expected": list(models),
                      "models_with_cycles": [], "complete_outcome_kept": kept, "total_s": round(total_s, 1)},
              "lines": lines, "failed_tests": list(failed_tests), "provenance": dict(provenance), "models": {}}
    write_text_atomic(reports_dir / OUTCOME_JSON, dumps_report(report))
    body = "\n".join(f"- {line}" for key, line in lines.items() if key != "verdict")
    write_text_atomic(reports_dir / OUTCOME_MD, f"# {lines['verdict']}\n\n**Section E verdict: none (no study ran "
                                                f"in this run)**\n\n{body}\n\n**Next:** {step}\n")
    return lines
