"""The verdict block at the top of pytest-html's report: verdict, reasons, next step, link, figures."""

from __future__ import annotations

from html import escape
from typing import Any


def summary_html(written: Any) -> list[str]:
    d = written.decision
    report = written.report
    head = report["headline"]
    parts = [f"<h2>{escape(head['text'])}</h2>"]
    if head["text"] != d.verdict:
        parts.append(f"<p>Section E verdict: {escape(d.verdict)}</p>")
    run = report.get("run", {})
    if run.get("interrupted"):
        parts.append("<p><strong>Run interrupted:</strong> this covers only the cycles that finished.</p>")
    kept = written.kept
    if kept:
        parts.append(f"<p><strong>Partial run:</strong> the last complete outcome was kept in "
                     f"{escape(kept['path'])} ({escape(kept['utc'])}): {escape(kept['headline'])}</p>")
    if d.primary:
        parts.append("<p>Why:</p><ul>" + "".join(f"<li>{escape(r)}</li>" for r in d.primary.reasons) + "</ul>")
    if d.missing:
        parts.append("<p>Missing data:</p><ul>" + "".join(f"<li>{escape(m)}</li>" for m in d.missing) + "</ul>")
    parts.append(f"<p><strong>Next:</strong> {escape(head['next_step'])}</p>")
    md = written.markdown_path
    parts.append(f'<p>Full report: <a href="{escape(md.name)}">{escape(str(md))}</a> '
                 f'(JSON beside it). Versions are in the Environment table above.</p>')
    warnings = report.get("warnings") or []
    if warnings:
        parts.append(f"<p>{sum(w['count'] for w in warnings)} warnings from the tools "
                     f"({len(warnings)} distinct), listed in the Markdown report.</p>")
    for model, images in written.plots.items():
        parts.append(f"<h3>{escape(model)}</h3>")
        parts += [f'<img alt="{escape(c)}" title="{escape(c)}" src="{uri}" style="max-width:45%">'
                  for c, uri in images.items()]
    return parts


def no_study_html(lines: dict[str, str]) -> list[str]:
    """A run without study cycles: its first line as the heading, the checklist and outcome on file below."""
    first, *rest = lines.values()
    return [f"<h2>{escape(first)}</h2>", "<ul>" + "".join(f"<li>{escape(line)}</li>" for line in rest) + "</ul>"]


BANNER_ID = "parity-verdict"


def put_verdict_first(path: Any, heading: str, lines: list[str]) -> bool:
    """pytest-html puts its Environment table above every summary hook's output; a reader must meet the verdict
    first. After pytest-html wrote the file, the verdict (and a few lines under it) goes right under the title."""
    from pathlib import Path

    page = Path(path)
    if not page.is_file():
        return False
    text = page.read_text(encoding="utf-8")
    anchor = text.find("</h1>")
    if anchor < 0 or f'id="{BANNER_ID}"' in text:
        return False
    banner = (f'<div id="{BANNER_ID}" style="border:2px solid #444;padding:0.5em 1em;margin:1em 0">'
              f"<h2>{escape(heading)}</h2>" + "".join(f"<p>{escape(line)}</p>" for line in lines if line)
              + "</div>")
    at = anchor + len("</h1>")
    page.write_text(text[:at] + banner + text[at:], encoding="utf-8")
    return True
