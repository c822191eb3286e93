"""The sweep's own report: `reports/sweep.{md,json}` and its figures, beside (never inside) the study's outcome.

Its first line follows the study's rule: failed sweep tests are named first; then the steering-scale findings;
otherwise each model's recommended layer and multiplier with the evidence behind it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from parity_lib.protocol.dose import WINDOW_GARBLED, WINDOW_REFUSAL, m50
from parity_lib.protocol.sweep_curves import conclude
from parity_lib.report.sweep_plots import depth_plot, dose_plot
from parity_lib.storage.results import write_json_atomic, write_text_atomic

SWEEP_STEM = "sweep"


def write_sweep(reports_dir: Path, layers: Sequence[Mapping[str, Any]], settings: Mapping[str, Any],
                own: Mapping[str, Mapping[str, Any]], failed: Sequence[Mapping[str, Any]],
                provenance: Mapping[str, Any], framing: str = "") -> dict[str, Any]:
    """Write the report; return {"headline", "models", "paths"} for the terminal and junit."""
    from parity_lib.protocol.headline import failed_tests_line

    models = conclude(layers, {m: int(o["layer"]) for m, o in own.items()})
    findings = [f for m in models.values() for f in m["findings"]]
    if findings:
        lead = "; ".join(findings[:2]) + (f" (and {len(findings) - 2} more)" if len(findings) > 2 else "")
    else:
        lead = "SWEEP: " + "; ".join(_recommended(m, c["recommendation"]) for m, c in models.items())
    if failed:
        lead = f"{lead} — {failed_tests_line(failed, 'SWEEP')}"
    headline = f"{framing}: {lead}" if framing else lead
    reports_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for model in models:
        mine = sorted((s for s in layers if s["model"] == model), key=lambda s: s["layer"])
        for kind, png in (("depth", depth_plot(model, mine)), ("dose", dose_plot(model, mine))):
            path = reports_dir / f"{SWEEP_STEM}-{model}-{kind}.png"
            write_text_atomic(path, png)
            paths.append(path)
    report = {"schema": 1, "headline": headline, "models": models, "layers": list(layers), "settings": settings,
              "failed_tests": list(failed), "provenance": provenance,
              "window_rule": {"refusal_at_least": WINDOW_REFUSAL, "garbled_at_most": WINDOW_GARBLED}}
    write_json_atomic(reports_dir / f"{SWEEP_STEM}.json", report)
    write_text_atomic(reports_dir / f"{SWEEP_STEM}.md", render(report))
    return {"headline": headline, "models": models, "paths": [*paths, reports_dir / f"{SWEEP_STEM}.md"]}


def _recommended(model: str, rec: Mapping[str, Any]) -> str:
    if rec["layer"] is None:
        return f"{model}: {rec['evidence']}"
    return f"{model}: layer {rec['layer']} ×{rec['multiplier']:g} recommended ({rec['evidence']})"


def _pct(d: Mapping[str, Any]) -> str:
    return f"{100 * d['refusal']:.0f} [{100 * d['low']:.0f}, {100 * d['high']:.0f}] / {100 * d['garbled']:.0f}"


def render(report: Mapping[str, Any]) -> str:
    s = report["settings"]
    lines = [f"# {report['headline']}", "",
             f"Sweep of layers × multipliers per tool. Tools: {', '.join(s['tools'])}; steering: {s['steer_with']} "
             f"({s['scope']}); {s['n_eval'] or 'all'} evaluation prompts × {s['max_new_tokens']} new tokens; "
             f"{s['repeats']} direction(s) per (layer, tool). Multipliers: {s['grid']}. The working window is the "
             f"multipliers with coherent refusal ≥ {100 * WINDOW_REFUSAL:.0f}% and garbled ≤ "
             f"{100 * WINDOW_GARBLED:.0f}%; m50 is where coherent refusal first reaches 50% (interval from the "
             f"95% Wilson bounds). The study's verdict is not changed by a sweep.", ""]
    for finding in [f for m in report["models"].values() for f in m["findings"]]:
        lines.append(f"- **{finding}**")
    for model, concl in report["models"].items():
        mine = sorted((x for x in report["layers"] if x["model"] == model), key=lambda x: x["layer"])
        rec = concl["recommendation"]
        lines += ["", f"## {model}", "", f"**Recommendation**: {_recommended(model, rec)}.", "",
                  f"![cross-tool closeness by depth]({SWEEP_STEM}-{model}-depth.png)",
                  f"![dose-response]({SWEEP_STEM}-{model}-dose.png)", "",
                  "| layer | ‖h‖ | cross-tool cosine min | working window per tool | m50 per tool |",
                  "|---|---|---|---|---|"]
        for x in mine:
            cos = min((p["cos_min"] for p in x["pairs"]), default=None)
            windows = "; ".join(f"{t}: {', '.join(f'×{m:g}' for m in w) or 'none'}" for t, w in x["windows"].items())
            m50s = "; ".join(f"{t}: {_m50(c)}" for t, c in x["curves"].items())
            lines.append(f"| {x['layer']} | {x['norm']:.3g} | {'-' if cos is None else f'{cos:.6f}'} | {windows} | "
                         f"{m50s} |")
        for x in mine:
            tools = sorted(x["curves"])
            base = (x.get("baseline") or {}).get("rates") or {}
            lines += ["", f"### {model}, layer {x['layer']}: coherent refusal % [95% CI] / garbled % "
                          f"(unsteered: {100 * base.get('refusal', 0):.0f} / {100 * base.get('garbled', 0):.0f})",
                      "", "| multiplier | " + " | ".join(tools) + " |", "|---|" + "---|" * len(tools)]
            for i, m in enumerate(x["multipliers"]):
                cells = [_pct(x["curves"][t][i]) if i < len(x["curves"][t]) else "-" for t in tools]
                lines.append(f"| ×{m:g} | " + " | ".join(cells) + " |")
    lines += ["", "## Provenance", "", "```json", json.dumps(report["provenance"], indent=2, sort_keys=True,
                                                            default=str), "```", ""]
    return "\n".join(lines)


def _m50(doses: Sequence[Mapping[str, Any]]) -> str:
    from parity_lib.protocol.dose import Dose

    found = m50([Dose(**d) for d in doses])
    if found.estimate is None:
        return "not reached"
    low = "open" if found.low is None else f"{found.low:.3g}"
    high = "open" if found.high is None else f"{found.high:.3g}"
    return f"{found.estimate:.3g} [{low}, {high}]"


def write_defaults(directory: Path, rec: Mapping[str, Any], scope: str, model: str) -> Path:
    """The recommendation as the directory model's `parity_defaults.json` (other scopes' values kept)."""
    path = directory / "parity_defaults.json"
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        old = {}
    scoped = old.get("multiplier", {})
    scoped = scoped if isinstance(scoped, dict) else {"target_to_final": scoped}
    new = {**old, "layer": rec["layer"], "multiplier": {**scoped, scope: rec["multiplier"]},
           "evidence": f"sweep of {model}: {rec['evidence']}"}
    write_json_atomic(path, new)
    return path
