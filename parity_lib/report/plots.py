"""PNG figures for the report: the tool × tool cosine matrix and the label rates per tool.

Figures are drawn on a bare `Figure` with the Agg canvas instead of through pyplot, so importing
this module neither switches the caller's matplotlib backend nor leaks figures into pyplot's state.
"""

from __future__ import annotations

import base64
import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from parity_lib.metrics import LABELS, ModelSummary

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


def cosine_heatmap(summary: ModelSummary) -> bytes:
    """Heatmap of `cosine_matrix`, each cell labelled with its value ('n/a' where data is missing)."""
    tools, matrix = cosine_matrix(summary)
    size = 1.4 + 1.1 * len(tools)
    fig = Figure(figsize=(size + 1.2, size))
    ax = fig.add_subplot()
    image = ax.imshow(np.ma.masked_invalid(matrix), vmin=min(0.9, np.nanmin(matrix, initial=1.0)),
                      vmax=1.0, cmap="viridis")
    ax.set_xticks(range(len(tools)), tools, rotation=30, ha="right")
    ax.set_yticks(range(len(tools)), tools)
    for (i, j), value in np.ndenumerate(matrix):
        text = "n/a" if np.isnan(value) else f"{value:.4f}"
        ax.text(j, i, text, ha="center", va="center", color="white" if value < 0.97 else "black", fontsize=8)
    ax.set_title(f"{summary.model}: minimum cosine")
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    return _png(fig)


def rate_bars(summary: ModelSummary) -> bytes:
    """Stacked refusal / garbled / normal mean rates per tool; a tool without data is marked, not zero."""
    tools = sorted(summary.tools)
    fig = Figure(figsize=(1.6 + 1.2 * len(tools), 3.6))
    ax = fig.add_subplot()
    bottom = np.zeros(len(tools))
    rates = [summary.tools[t].rates for t in tools]
    for label in LABELS:
        heights = np.array([r[label].mean * 100 if r else 0.0 for r in rates])
        ax.bar(tools, heights, bottom=bottom, label=label, color=_COLOURS[label])
        bottom += heights
    for x, r in enumerate(rates):
        if r is None:
            ax.text(x, 50, "no data", ha="center", va="center", rotation=90)
    ax.set_ylim(0, 100)
    ax.set_ylabel("% of evaluation prompts")
    ax.set_title(f"{summary.model}: steering outcome per tool")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return _png(fig)


def to_data_uri(png: bytes) -> str:
    """Inline a PNG in Markdown or HTML, so a report is one self-contained file."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
