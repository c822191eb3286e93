"""PNG figures for the report: the tool × tool cosine matrix and the label rates per tool.

Figures are drawn on a bare `Figure` with the Agg canvas instead of through pyplot, so importing
this module neither switches the caller's matplotlib backend nor leaks figures into pyplot's state.
"""

from __future__ import annotations

import base64
import io
from typing import Any, Mapping

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from parity_lib.protocol.metrics import LABELS, ModelSummary, wilson_interval

_COLOURS = {"refusal": "#2b8cbe", "garbled": "#e34a33", "normal": "#bdbdbd"}


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buf)
    return buf.getvalue()


def cosine_matrix(summary: ModelSummary) -> tuple[list[str], np.ndarray]:
    """Minimum cosines: within a tool on the diagonal, across tools elsewhere; NaN where data is missing.

    The minimum, not the mean, because the decision rules compare minima against their thresholds.
    """
    tools = sorted(summary.tools)
    matrix = np.full((len(tools), len(tools)), np.nan)
    for i, tool in enumerate(tools):
        within = summary.tools[tool].within_min
        matrix[i, i] = np.nan if within is None else within
    for pair in summary.pairs:
        i, j = tools.index(pair.tools[0]), tools.index(pair.tools[1])
        matrix[i, j] = matrix[j, i] = np.nan if pair.cos_min is None else pair.cos_min
    return tools, matrix


FLOOR = 1e-17  # where an exact match is drawn on the log axis (1 − cos of equal float64 vectors is 0 or ~1e-16)


def _closeness_rows(summary: ModelSummary) -> list[tuple[str, float | None, str]]:
    """(label, 1 − minimum cosine, note) for each tool's repeats and each tool pair."""
    rows: list[tuple[str, float | None, str]] = []
    for tool in sorted(summary.tools):
        within = summary.tools[tool].within_min
        rows.append((f"{tool} (repeats)", None if within is None else 1.0 - within, ""))
    for pair in summary.pairs:
        bitwise = pair.divergence is not None and pair.divergence["max_abs"] == 0.0
        rows.append((" ~ ".join(pair.tools), None if pair.cos_min is None else 1.0 - pair.cos_min,
                     "bitwise equal" if bitwise else ""))
    return rows


def closeness_plot(summary: ModelSummary) -> bytes:
    """How close the directions are: 1 − minimum cosine on a log axis, so 1 − 1e-14 and 1 − 1e-3 are
    decades apart instead of one colour. Exact matches sit at the floor, marked; missing data is marked;
    the protocol's thresholds are drawn (determinism 0.999, agreement 0.99, divergence 0.95)."""
    rows = _closeness_rows(summary)
    fig = Figure(figsize=(7.5, 1.2 + 0.45 * len(rows)))
    ax = fig.add_subplot()
    for y, (_, gap, note) in enumerate(rows):
        if gap is None:
            ax.text(FLOOR * 10, y, "no data", va="center", fontsize=8)
            continue
        value = max(gap, FLOOR)
        ax.barh(y, value, left=FLOOR / 10, color="#2b8cbe" if gap < 1e-2 else "#e34a33")
        text = note or ("exact (≤ float64 rounding)" if gap <= 1e-15 else f"1 − cos = {gap:.1e}")
        ax.text(value * 3, y, text, va="center", fontsize=8)
    for threshold, name in ((1e-3, "within > 0.999"), (1e-2, "agree > 0.99"), (5e-2, "diverge < 0.95")):
        ax.axvline(threshold, color="grey", linestyle="--", linewidth=0.8)
        ax.text(threshold, 1.01, name, transform=ax.get_xaxis_transform(), rotation=35, fontsize=7,
                ha="left", va="bottom", color="grey")
    ax.set_xscale("log")
    ax.set_xlim(FLOOR / 10, 10.0)
    ax.set_yticks(range(len(rows)), [r[0] for r in rows])
    ax.invert_yaxis()
    ax.set_xlabel("1 − minimum cosine (log scale; smaller is closer)")
    ax.set_title(f"{summary.model}: how close the directions are", pad=28)
    fig.tight_layout()
    return _png(fig)


def rate_bars(summary: ModelSummary, baseline: Mapping[str, Any] | None = None) -> bytes:
    """Refusal / garbled / normal rate per tool with 95% intervals, beside the unsteered baseline (the same
    prompts without steering); a tool without data is marked, never drawn as 0%."""
    tools = sorted(summary.tools)
    groups = (["unsteered"] if baseline else []) + tools
    fig = Figure(figsize=(2.0 + 1.5 * len(groups), 3.8))
    ax = fig.add_subplot()
    width = 0.8 / len(LABELS)
    for k, label in enumerate(LABELS):
        xs, heights, low, high = [], [], [], []
        for x, group in enumerate(groups):
            if group == "unsteered":
                assert baseline is not None
                rate, n = baseline["rates"][label], baseline["n_prompts"]
                lo, hi = wilson_interval(round(rate * n), n)
            else:
                stats = summary.tools[group].rates
                if stats is None:
                    continue
                rate, lo, hi = stats[label].mean, stats[label].ci_low, stats[label].ci_high
            xs.append(x + (k - 1) * width)
            heights.append(100 * rate)
            low.append(100 * max(rate - lo, 0.0))
            high.append(100 * max(hi - rate, 0.0))
        ax.bar(xs, heights, width, yerr=[low, high], capsize=3, label=label, color=_COLOURS[label],
               hatch=None, edgecolor="black", linewidth=0.3)
    for x, group in enumerate(groups):
        if group != "unsteered" and summary.tools[group].rates is None:
            ax.text(x, 50, "no data (error)", ha="center", va="center", rotation=90)
    if baseline:
        ax.axhline(100 * baseline["rates"]["refusal"], color=_COLOURS["refusal"], linestyle=":", linewidth=1)
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylim(0, 105)
    ax.set_ylabel("% of evaluation prompts (95% CI)")
    ax.set_title(f"{summary.model}: outcome per tool, unsteered beside")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return _png(fig)


def to_data_uri(png: bytes) -> str:
    """Inline a PNG in Markdown or HTML, so a report is one self-contained file."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
