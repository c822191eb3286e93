"""What the report names ahead of Section E: findings the decision rules do not see, each with its numbers.

* **steering diverges**: the directions agree (cosine > 0.99) while the coherent-refusal rates differ by more
  than 20 pp — the paper's own claim (NNsight 100% vs hooks 10%): the gap is in steering, not extraction.
* **diverging pair**: cosine < 0.95 or a refusal gap > 20 pp (the protocol's divergence bars, either one).
* **tools disagree**: a cosine between the protocol's bars (0.95 ≤ cos ≤ 0.99), where Section E defines no
  action; correct tools give bitwise-equal activations, so such a pair is a wrong tensor, not noise.
* **check failed**: a Section D checklist entry failed.
* **no effect**: no tool's coherent-refusal interval lies above the unsteered baseline's; behavioural parity
  then compares nothing, and "steers best" means nothing.
* **over-steered**: every tool garbles most outputs.
* **test failed**: a preflight or study test failed or errored; its message carries the number and its bar.
* **not run**: a fault of the machine stopped a check or cycle (out of memory, a dtype's overflow, a CUDA error,
  a full disk: `faults.py`); it is about the machine, never about a tool.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from parity_lib.protocol.metrics import wilson_interval
from parity_lib.protocol.outcome import CROSS_AGREE_COS, CROSS_DIVERGE_COS, GAP_DIVERGE_PP

STEERING = "steering diverges"
DIVERGING = "diverging pair"
DISAGREE = "tools disagree"
CHECK = "check failed"
NO_EFFECT = "no effect"
OVER = "over-steered"
TEST = "test failed"
NOT_RUN = "not run"
# Findings about the tools (they block a tool from being "validated" and fail the run); the behavioural ones
# are about the setting (layer, multiplier), not about a tool.
ABOUT_TOOLS = (STEERING, DIVERGING, DISAGREE, CHECK, TEST)
GARBLED_MOSTLY = 0.5  # "mostly garbles": more than half of the evaluation prompts


@dataclass(frozen=True)
class Finding:
    kind: str
    model: str
    what: str
    tools: tuple[str, ...] = ()


def findings(models: Mapping[str, Mapping[str, Any]], checklist_entries: Sequence[Mapping[str, Any]],
             steer_with: Sequence[str], baselines: Mapping[str, Mapping[str, Any]] | None = None,
             failed_tests: Sequence[Mapping[str, Any]] = ()) -> list[Finding]:
    """Every finding of the run, from the report's model summaries, the checklist, the unsteered baselines and
    the failed tests."""
    out = [f for model, summary in sorted(models.items()) for f in _pair_findings(model, summary, steer_with)]
    for entry in checklist_entries:
        if not entry.get("passed", True):
            tools = tuple(t for t in str(entry.get("tool", "")).split("~") if t and t != "*")
            out.append(Finding(CHECK, entry["model"], f"{entry['check']} [{entry['tool']}]", tools))
    for model, summary in sorted(models.items()):
        out += _behaviour(model, summary, (baselines or {}).get(model))
    out += [Finding(TEST, str(t.get("model") or ""), f"{t['test']}: {t['message']}", tuple(t.get("tools") or ()))
            for t in failed_tests if not t.get("fault")]
    out += [Finding(NOT_RUN, str(t.get("model") or ""), f"{t['test']}: {t['fault']['title']}")
            for t in failed_tests if t.get("fault")]
    return out


def _pair_findings(model: str, summary: Mapping[str, Any], steer_with: Sequence[str]) -> list[Finding]:
    out = []
    for pair in summary["pairs"]:
        cos, gap = pair["cos_min"], pair["refusal_gap_pp"]
        if cos is None or gap is None:
            continue
        tools = tuple(pair["tools"])
        numbers = f"{tools[0]} vs {tools[1]}: direction cosine min {cos:.4f}, refusal gap {gap:.1f} pp"
        if cos > CROSS_AGREE_COS and gap > GAP_DIVERGE_PP:
            how = ("each tool steering with its own mechanism" if "same" in steer_with else
                   "one reference steerer for every direction")
            out.append(Finding(STEERING, model, f"{numbers} ({how}): the directions agree, the steered behaviour "
                                                f"does not", tools))
        elif cos < CROSS_DIVERGE_COS or gap > GAP_DIVERGE_PP:
            out.append(Finding(DIVERGING, model, numbers, tools))
        elif cos <= CROSS_AGREE_COS:
            out.append(Finding(DISAGREE, model, f"{tools[0]} vs {tools[1]}: direction cosine min {cos:.4f} "
                                                f"(agreement needs > {CROSS_AGREE_COS}, divergence < "
                                                f"{CROSS_DIVERGE_COS}){_where(pair.get('divergence'))}", tools))
    return out


def _where(divergence: Mapping[str, Any] | None) -> str:
    """Per-component divergence, in a few words: where the two unit directions differ most."""
    if not divergence:
        return ""
    return (f", largest component difference {divergence['max_abs']:.3g} at index {divergence['argmax']}, "
            f"‖Δ‖₂ {divergence['l2']:.3g}")


def _behaviour(model: str, summary: Mapping[str, Any], baseline: Mapping[str, Any] | None) -> list[Finding]:
    """No effect (beside the unsteered baseline) or over-steered (every tool mostly garbles)."""
    rated = {t: s["rates"] for t, s in sorted(summary["tools"].items()) if s.get("rates")}
    if not rated:
        return []
    settings = summary.get("settings", {})
    where = f"at layer {_one(settings.get('layer'))} ×{_one(settings.get('multiplier'))}"
    if all(r["garbled"]["mean"] > GARBLED_MOSTLY for r in rated.values()):
        garbled = ", ".join(f"{t} {_pct(r['garbled'])}" for t, r in rated.items())
        return [Finding(OVER, model, f"{where}: every tool garbles most outputs ({garbled})", tuple(rated))]
    if not baseline:
        return []
    n = int(baseline["n_prompts"])
    k = round(float(baseline["rates"]["refusal"]) * n)
    low, high = wilson_interval(k, n)
    if any(r["refusal"]["ci_low"] > high for r in rated.values()):
        return []
    tools = ", ".join(f"{t} {_pct(r['refusal'])}" for t, r in rated.items())
    garbled = max(r["garbled"]["mean"] for r in rated.values())
    unsteered = float(baseline["rates"].get("garbled", 0.0))
    changed = (f" (the text does change: garbled up to {100 * garbled:.0f}% against {100 * unsteered:.0f}% "
               f"unsteered)" if garbled - unsteered > 0.1 else "")
    return [Finding(NO_EFFECT, model, f"{where}: coherent refusal {tools}, unsteered baseline "
                                      f"{100 * k / n:.0f}% [{100 * low:.0f}, {100 * high:.0f}] — no tool's "
                                      f"interval lies above the baseline's{changed}", tuple(rated))]


def _pct(rate: Mapping[str, Any]) -> str:
    return f"{100 * rate['mean']:.0f}% [{100 * rate['ci_low']:.0f}, {100 * rate['ci_high']:.0f}]"


def _one(values: Sequence[Any] | None) -> str:
    values = list(values or [])
    return "/".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values) or "?"


def blamed(found: Sequence[Finding], tools: Sequence[str]) -> list[str]:
    """Tools never called validated: in a failed check or failed test, or in a diverging or disagreeing pair
    with a majority of the other tools."""
    out = {t for f in found if f.kind in (CHECK, TEST) for t in f.tools if t in tools}
    pair_kinds = (STEERING, DIVERGING, DISAGREE)
    for model in {f.model for f in found}:
        pairs = [f.tools for f in found if f.model == model and f.kind in pair_kinds]
        for tool in tools:
            against = sum(tool in p for p in pairs)
            if pairs and against >= (len(tools) - 1) // 2 + 1:  # a majority of the other tools
                out.add(tool)
    return sorted(out)
