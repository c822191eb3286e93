"""The sweep's figures: cross-tool closeness against depth, and each layer's dose-response curves per tool."""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter, ScalarFormatter

from parity_lib.report.plots import FLOOR, _png


def depth_plot(model: str, layers: Sequence[Mapping[str, Any]]) -> bytes:
    """1 − cosine (log axis) of every tool pair against the layer, with the protocol's 0.99 / 0.95 bars."""
    fig = Figure(figsize=(6.4, 3.6))
    ax = fig.add_subplot()
    pairs = sorted({" ~ ".join(p["tools"]) for s in layers for p in s["pairs"]})
    for name in pairs:
        xs, ys = [], []
        for s in layers:
            for p in s["pairs"]:
                if " ~ ".join(p["tools"]) == name:
                    xs.append(s["layer"])
                    ys.append(max(FLOOR, 1.0 - p["cos_min"]))
        ax.plot(xs, ys, marker="o", label=name)
    for bar, style in ((0.99, "--"), (0.95, ":")):
        ax.axhline(1 - bar, color="grey", linestyle=style, linewidth=1, label=f"cosine {bar}")
    ax.set_yscale("log")
    ax.set_xlabel("layer")
    ax.set_ylabel("1 − min cosine (bitwise equal at the floor)")
    ax.set_title(f"{model}: cross-tool closeness by depth")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _png(fig)


def dose_plot(model: str, layers: Sequence[Mapping[str, Any]]) -> bytes:
    """Per layer: coherent refusal (95% interval over the prompts) per tool against the multiplier (log axis),
    garbled dashed, the unsteered baseline dotted, the working window's bars (80% / 10%) in grey."""
    cols = min(3, len(layers)) or 1
    rows = math.ceil(len(layers) / cols) or 1
    fig = Figure(figsize=(4.2 * cols, 3.0 * rows))
    for i, s in enumerate(layers):
        ax = fig.add_subplot(rows, cols, i + 1)
        for tool, doses in sorted(s["curves"].items()):
            xs = [d["multiplier"] for d in doses]
            ys = [100 * d["refusal"] for d in doses]
            err = [[100 * (d["refusal"] - d["low"]) for d in doses], [100 * (d["high"] - d["refusal"]) for d in doses]]
            line = ax.errorbar(xs, ys, yerr=err, marker="o", markersize=3, capsize=2, label=f"{tool} refusal")
            ax.plot(xs, [100 * d["garbled"] for d in doses], linestyle="--", color=line[0].get_color(),
                    linewidth=0.8, label=f"{tool} garbled")
        base = (s.get("baseline") or {}).get("rates")
        if base:
            ax.axhline(100 * base["refusal"], color="black", linestyle=":", linewidth=1, label="unsteered refusal")
        ax.axhline(80, color="grey", linewidth=0.5)
        ax.axhline(10, color="grey", linewidth=0.5)
        if all(d["multiplier"] > 0 for c in s["curves"].values() for d in c):
            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(ScalarFormatter())
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_ylim(-5, 105)
        ax.set_title(f"layer {s['layer']} (‖h‖ {s['norm']:.3g})", fontsize=9)
        ax.set_xlabel("multiplier", fontsize=8)
        if i == 0:
            ax.set_ylabel("% of prompts", fontsize=8)
            ax.legend(fontsize=6)
    fig.suptitle(f"{model}: dose-response per tool")
    fig.tight_layout()
    return _png(fig)
