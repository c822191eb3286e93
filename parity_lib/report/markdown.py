"""`phase1_outcome.md`: the Phase 1 result for a reader who has never opened the protocol.

Rendered only from the report dict of `build_report`, so the Markdown and the JSON always agree.
Order follows what a reader asks: what was tested, what came out and why, what to do, then the detail.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

from parity_lib.protocol.metrics import LABELS
from parity_lib.protocol.outcome import also_holds
from parity_lib.report.asked import asked_section
from parity_lib.tools.plugin import REFERENCE_STEERER

Report = Mapping[str, Any]
Plots = Mapping[str, Mapping[str, str]]  # model -> caption -> image src (path or data URI)
NONE = "—"

_INTRO = (
    "This study asks whether the *tool* used to read a model's activations (raw PyTorch forward hooks, "
    "NNsight, pyvene, ...) changes the extracted refusal direction and what steering with it does. "
    "Each tool extracts the direction several times (repeats); we compare directions by cosine "
    "similarity (1.0 = identical) within a tool (is it deterministic?) and across tools (do tools "
    "agree?), and steer the model with each direction to count coherent refusals, garbled and normal answers."
)


def _num(value: float | None, spec: str = ".4f") -> str:
    return NONE if value is None else format(value, spec)


def _cell(value: Any) -> str:
    """One table cell: a '|' or newline inside (an error message, say) would break the table."""
    return " ".join(str(value).split()).replace("|", "\\|")


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(map(_cell, headers)) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(map(_cell, row)) + " |" for row in rows]
    return "\n".join(lines)


def _values(values: Sequence[Any]) -> str:
    return ", ".join(map(str, values)) or NONE


def _pct(stat: Mapping[str, Any] | None) -> str:
    if stat is None:
        return NONE
    return (f"{stat['mean'] * 100:.1f} ± {stat['std'] * 100:.1f}% "
            f"[{stat['ci_low'] * 100:.1f}, {stat['ci_high'] * 100:.1f}]")


def _header(report: Report) -> str:
    decision = report["decision"]
    head = report.get("headline") or {"text": decision["verdict"], "findings": []}
    lines = [f"# {head['text']}", "", f"**Section E verdict: {decision['verdict']}**"]
    for f in head["findings"]:
        lines.append(f"- **{f['kind']}**" + (f" on {f['model']}" if f["model"] else "") + f": {f['what']}")
    return "\n".join(lines) + f"\n\nPhase 1 tooling parity. {_INTRO}"


def _tested(report: Report) -> str:
    tested = report["tested"]
    lines = ["## What was tested", "",
             f"- Models: {', '.join(tested['models']) or NONE}",
             f"- Tools: {', '.join(tested['tools']) or NONE}"]
    for model, s in tested["settings"].items():
        lines.append(f"- {model}: repeats {_values(s['repeats'])}; layer {_values(s['layer'])}; "
                     f"multiplier {_values(s['multiplier'])}; steering scope {_values(s['scope'])}; "
                     f"steered with {_values(s['steer_with'])} "
                     f"(generation: {_values(s.get('generation') or ['eager (dynamic cache)'])}); "
                     f"{_values(s['n_prompts'])} evaluation prompts per repeat")
    return "\n".join(lines)


def _outcome(report: Report) -> str:
    decision = report["decision"]
    primary = decision["primary"]
    lines = ["## Outcome and why", ""]
    if primary is None:
        lines.append("No decision rule triggered: the result is **inconclusive**.")
    else:
        lines.append(f"**Outcome {primary['outcome']}: {primary['name']}.** Because:")
        lines += [f"- {r}" for r in primary["reasons"]]
    others = [r for r in decision["triggered"] if primary and r["outcome"] != primary["outcome"]]
    lines += [f"\n{also_holds(primary['outcome'], r['outcome'], r['name'])}." for r in others]
    rows = [(f"{r['outcome']}: {r['name']}", "yes" if r["triggered"] else "no", r["reasons"][-1])
            for r in decision["all"]]
    lines += ["", "Every rule, with its deciding reason:", "",
              _table(("Outcome", "Triggered", "Reason"), rows)]
    return "\n".join(lines)


def _rules(report: Report) -> str:
    t = report["thresholds"]
    return "\n".join([
        "### The rules (PROTOCOL Section E)", "",
        f"- Diverge: a tool pair with minimum cross-tool cosine < {t['cross_diverge_cos']} and a "
        f"coherent-refusal gap > {t['gap_diverge_pp']:g} percentage points.",
        f"- Agree: every tool pair with cosine > {t['cross_agree_cos']} and gap < {t['gap_agree_pp']:g} pp.",
        f"- Outcome 1: diverge on at least {t['min_models']} models. Outcome 2: some models diverge, "
        "another agrees. Outcome 4: agree on every model (at least "
        f"{t['min_models']}). Outcome 3: every tool deterministic (within-tool cosine > "
        f"{t['within_cos']}) and one tool passes the parity checklist and steers best on every model.",
        f"- Precedence when several trigger: {' > '.join(map(str, t['precedence']))}.",
    ])


def _next(report: Report) -> str:
    step = (report.get("headline") or {}).get("next_step") or report["decision"]["next_step"]
    lines = ["## What to do next", "", step]
    missing = report["decision"]["missing"]
    if missing:
        lines += ["", "### Missing data", ""] + [f"- {m}" for m in missing]
    return "\n".join(lines)


def _tool_table(summary: Mapping[str, Any]) -> str:
    rows = []
    for name, t in summary["tools"].items():
        rates = t["rates"] or {}
        norm = t["norm"]
        rows.append((name, t["n_ok"], t["n_error"], *(_pct(rates.get(label)) for label in LABELS),
                     NONE if norm is None else f"{norm['mean']:.4g} ± {norm['std']:.2g}",
                     _num(t["within_min"], ".6f"), _num(t["within_mean"], ".6f")))
    headers = ("Tool", "OK", "Errors", *(f"{label} (mean ± std [95% CI])" for label in LABELS),
               "Norm", "Within cos min", "Within cos mean")
    return _table(headers, rows)


def _cosine_matrix(summary: Mapping[str, Any]) -> str:
    tools = list(summary["tools"])
    cells = {(p["tools"][0], p["tools"][1]): p for p in summary["pairs"]}

    def cell(a: str, b: str) -> str:
        if a == b:
            t = summary["tools"][a]
            return f"{_num(t['within_min'])} / {_num(t['within_mean'])}"
        p = cells.get((a, b)) or cells[(b, a)]
        return f"{_num(p['cos_min'])} / {_num(p['cos_mean'])}"
    return _table(("min / mean", *tools), [(a, *(cell(a, b) for b in tools)) for a in tools])


def _pair_table(summary: Mapping[str, Any]) -> str:
    rows = []
    for p in summary["pairs"]:
        div = p["divergence"] or {}
        rows.append((" vs ".join(p["tools"]), p["n_pairs"], _num(p["cos_min"]), _num(p["cos_max"]),
                     _num(p["refusal_gap_pp"], ".1f"), _num(div.get("max_abs"), ".4g"),
                     div.get("argmax", NONE), _num(div.get("l2"), ".4g")))
    headers = ("Pair", "Repeat pairs", "Cos min", "Cos max", "Refusal gap (pp)",
               "Max abs Δ", "At index", "‖Δ‖₂")
    return _table(headers, rows)


def _baseline(baseline: Mapping[str, Any] | None) -> str:
    if not baseline:
        return "Unsteered baseline: not measured in this run."
    r, n = baseline["rates"], baseline["n_prompts"]
    return (f"Unsteered baseline (the same {n} evaluation prompts, no steering): refusal {100 * r['refusal']:.1f}%, "
            f"garbled {100 * r['garbled']:.1f}%, normal {100 * r['normal']:.1f}%.")


def _model(name: str, summary: Mapping[str, Any], plots: Mapping[str, str],
           baseline: Mapping[str, Any] | None = None) -> str:
    parts = [f"### {name}", "", _baseline(baseline), "",
             "Per tool (mean ± std over repeats; 95% interval over the evaluation prompts, not prompts × repeats):",
             "",
             _tool_table(summary), "",
             "Cosine matrix (diagonal: within one tool across repeats; off-diagonal: across tools):", "",
             _cosine_matrix(summary), "",
             "Tool pairs (Δ compares the first successful unit directions):", "", _pair_table(summary)]
    parts += [f"\n![{caption} — {name}]({src})" for caption, src in plots.items()]
    return "\n".join(parts)


def _checklist(report: Report) -> str:
    checklist = report["checklist"]
    tools = report["tested"]["tools"]
    models = sorted(set(checklist) | set(report["tested"]["models"]))
    mark = {True: "pass", False: "FAIL", None: "not run"}
    rows = [(m, *(mark.get(checklist.get(m, {}).get(t), "not run") for t in tools)) for m in models]
    return "## Parity checklist (PROTOCOL Section D)\n\n" + _table(("Model", *tools), rows)


def _determinism(report: Report) -> str:
    threshold = report["thresholds"]["within_cos"]
    verdict = {True: "deterministic", False: "NOT deterministic: investigate the source", None: "unknown"}
    rows = [(m, t, _num(s["within_min"], ".6f"), verdict[s["deterministic"]])
            for m, summary in report["models"].items() for t, s in summary["tools"].items()]
    intro = f"A tool is deterministic when every pair of its repeats has cosine > {threshold}."
    return f"## Determinism\n\n{intro}\n\n" + _table(("Model", "Tool", "Within cos min", "Verdict"), rows)


def _errors(report: Report) -> str:
    lines = [f"- {m}/{t}: {_cell(e)}" for m, summary in report["models"].items()
             for t, s in summary["tools"].items() for e in s["errors"]]
    return "## Errors\n\n" + ("\n".join(lines) if lines else "None.")


def _minutes(seconds: float | None) -> str:
    """Seconds where they are seconds (a cycle of the organisms takes 0.3 s, not "0.0 min"), minutes beyond."""
    if seconds is None:
        return NONE
    if seconds < 120:
        return f"{seconds:.2g} s" if seconds < 10 else f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min"


def _timing(report: Report) -> str:
    t = report["timing"]
    budget = t["budget"]
    verdict = {True: "within budget", False: "OVER budget", None: "not comparable"}[t["within_budget"]]
    reuse = report.get("reuse") or {}
    reused = sum(v["reused"] for v in reuse.values())
    lines = ["## Time and budget", "",
             f"- {t['n_cycles']} cycles computed in this run, mean {_minutes(t['mean_cycle_s'])}, longest "
             f"{_minutes(t['max_cycle_s'])}; {reused} reused from result files of the same computation (same "
             f"weights, tool code, versions, settings); whole pytest session {_minutes(t['total_s'])} (preflight, "
             f"loading and every other test included).",
             f"- Budget ({budget.get('source', 'given')}, {budget.get('device', '?')}): "
             f"{_minutes(budget.get('total_s'))} in all"
             + (f" ({budget['arithmetic']})" if budget.get("arithmetic") else "") + f": {verdict}"
             + (f" ({t['budget_fraction'] * 100:.1f}% used)." if t["budget_fraction"] is not None else ".")]
    lines += [f"- {m}: mean cycle {_minutes(v['mean_cycle_s'])} vs budget {_minutes(v['budget_cycle_s'])}"
              for m, v in t["per_model"].items()]
    return "\n".join(lines)


def _notes(report: Report) -> str:
    """How token / logit parity and batching were judged, with the numbers (rerun noise first)."""
    rows = [(model, kind, key, ", ".join(f"{k}={_cell(v if not isinstance(v, float) else f'{v:.4g}')}"
                                         for k, v in value.items()) if isinstance(value, dict) else _cell(value))
            for model, kinds in sorted((report.get("notes") or {}).items())
            for kind, values in sorted(kinds.items()) for key, value in sorted(values.items())]
    if not rows:
        return "## How parity was judged\n\nNo pairwise measure ran."
    return ("## How parity was judged\n\nReruns of the same tool are measured first: tokens and logits are "
            "compared exactly when reruns are identical, and against the rerun noise when they are not "
            "(nondeterminism is not divergence).\n\n" + _table(("Model", "Measure", "Of", "Numbers"), rows))


def _warnings(report: Report) -> str:
    """Warnings raised by the tools during the run: a deprecation today is tomorrow's silent change."""
    found = report.get("warnings") or []
    if not found:
        return "## Warnings from the tools\n\nNone recorded."
    rows = [(w["count"], w["source"], w["category"], w["message"], w["where"], w["first_seen"]) for w in found]
    return ("## Warnings from the tools\n\nRaised by transformers / nnsight / pyvene / torch during the run "
            "(never silenced globally), with where each was first seen:\n\n"
            + _table(("Count", "From", "Category", "Message", "Where", "First seen in"), rows))


def _tools(report: Report) -> str:
    """Which tools ran, from where, at which version, and how each steered (a tool without a steering
    mechanism of its own steers through the reference steerer, and the table says so)."""
    tools = report.get("tools") or []
    if not tools:
        return "## Tools\n\nNot recorded."
    mode = str((report.get("study_settings") or {}).get("steer_with", "hooks"))
    rows = [(t["name"], t["display"], f"{t['package']} {t['version']}" if t["package"] else "-", t["origin"],
             _steered(t, mode), t["attention"] or "the model's", t["code_sha256"]) for t in tools]
    note = report.get("attention_note")
    return ("## Tools\n\n" + (f"Attention: {note}.\n\n" if note else "")
            + _table(("Tool", "What", "Package", "From", "Steered in this run", "Attention", "Code sha256"), rows))


def _steered(tool: dict, mode: str) -> str:
    """Who applied this tool's direction in this run: under `--parity-steer-with hooks` (the default) one
    reference steerer applies every tool's direction, so a tool's own mechanism is not exercised."""
    if mode == "same":
        return str(tool["steering"])
    if tool["name"] == REFERENCE_STEERER:
        return "its own hooks: the reference steerer, which applies every tool's direction"
    own = ("its own mechanism is not exercised (`--parity-steer-with same` does)" if tool["own_steering"]
           else "it has no mechanism of its own")
    return f"the reference steerer ({REFERENCE_STEERER}) applies its direction; {own}"


def _provenance(report: Report) -> str:
    body = json.dumps(report["provenance"], indent=2, sort_keys=True, default=str)
    return f"## Provenance\n\n```json\n{body}\n```"


def render_markdown(report: Report, plots: Plots | None = None) -> str:
    """The whole report; `plots` maps model → caption → image source (a relative path or a data URI)."""
    plots = plots or {}
    baselines = report.get("baselines", {})
    models = [_model(m, s, plots.get(m, {}), baselines.get(m)) for m, s in report["models"].items()]
    sections = [_header(report), _tested(report), asked_section(report), _tools(report), _outcome(report),
                _rules(report), _next(report), "## Per model", *models, _checklist(report), _determinism(report),
                _errors(report), _notes(report), _timing(report), _warnings(report), _provenance(report)]
    return "\n\n".join(s for s in sections if s) + "\n"
