"""What a sweep concludes, from its points: per layer the tools' cosines and curves, per model the
recommendation and the steering-scale findings. Plain data in, plain data out (JSON-ready), no pytest."""

from __future__ import annotations

from itertools import combinations
from typing import Any, Mapping, Sequence

from parity_lib.protocol.dose import Dose, curve, recommend, scale_ratio, window
from parity_lib.protocol.metrics import component_divergence, cross_cosines, pairwise_cosines

SCALE_FINDING = "STEERING SCALE DIFFERS"


def summarize_layer(data: Mapping[str, Any]) -> dict[str, Any]:
    """One (model, layer): tools' directions compared, each tool's dose-response curve and working window, and
    the steering scale ratio of every tool pair."""
    tools = sorted(data["points"])
    curves = {t: curve(data["points"][t]) for t in tools}
    pairs = []
    for a, b in combinations(tools, 2):
        ua, ub = data["directions"][a], data["directions"][b]
        ratio = scale_ratio(a, curves[a], b, curves[b])
        pairs.append({"tools": [a, b], "cos_min": min(cross_cosines(ua, ub)),
                      "divergence": component_divergence(ua[0], ub[0]),
                      "scale": None if ratio is None else {"slower": ratio.slower, "faster": ratio.faster,
                                                           "ratio": ratio.ratio, "low": ratio.low,
                                                           "high": ratio.high, "differs": ratio.differs}})
    within = {t: (min(pairwise_cosines(d)) if len(d) > 1 else None) for t, d in data["directions"].items()}
    base = data.get("baseline") or {}
    return {"model": data["model"], "layer": data["layer"], "norm": data["norm"],
            "multipliers": list(data["multipliers"]), "within_min": within,
            "raw_norms": data["raw_norms"], "pairs": pairs,
            "curves": {t: [d.__dict__ for d in c] for t, c in curves.items()},
            "windows": {t: window(c) for t, c in curves.items()},
            "baseline": {"rates": base.get("rates"), "n_prompts": base.get("n_prompts")} if base else None,
            "computed": data.get("computed", 0), "seconds": data.get("seconds"), "one_pass": data.get("one_pass")}


def conclude(layers: Sequence[Mapping[str, Any]], own_layer: Mapping[str, int]) -> dict[str, Any]:
    """Per model: its layers in order, the recommendation, and every steering-scale finding (a tool pair whose
    ratio interval excludes 1 at some layer)."""
    out: dict[str, Any] = {}
    for model in sorted({s["model"] for s in layers}):
        mine = sorted((s for s in layers if s["model"] == model), key=lambda s: s["layer"])
        doses = {s["layer"]: {t: [Dose(**d) for d in c] for t, c in s["curves"].items()} for s in mine}
        rec = recommend(doses, own_layer.get(model, mine[0]["layer"]))
        findings = [f"{SCALE_FINDING} on {model} at layer {s['layer']}: {p['scale']['slower']} reaches 50% "
                    f"coherent refusal at {p['scale']['ratio']:.2f}× {p['scale']['faster']}'s multiplier "
                    f"[{_bound(p['scale']['low'])}, {_bound(p['scale']['high'])}]"
                    for s in mine for p in s["pairs"] if p["scale"] and p["scale"]["differs"]]
        out[model] = {"layers": [s["layer"] for s in mine], "recommendation": rec.__dict__, "findings": findings,
                      "cos_by_layer": {s["layer"]: min((p["cos_min"] for p in s["pairs"]), default=None)
                                       for s in mine}}
    return out


def _bound(value: float | None) -> str:
    return "open" if value is None else f"{value:.2f}"
