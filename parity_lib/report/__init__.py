"""Report writers: the JSON report dict, its Markdown rendering, and PNG figures."""

from parity_lib.report.json_report import PROTOCOL_BUDGET, build_report, dumps_report
from parity_lib.report.markdown import render_markdown
from parity_lib.report.plots import closeness_plot, rate_bars, to_data_uri

__all__ = [
    "PROTOCOL_BUDGET",
    "build_report",
    "closeness_plot",
    "dumps_report",
    "rate_bars",
    "render_markdown",
    "to_data_uri",
]
