"""Report writers: the JSON dict, its Markdown rendering, atomic writes, and the PNG figures."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest

from parity_lib.protocol.metrics import summarize_model
from parity_lib.protocol.outcome import decide
from parity_lib.report import (
    PROTOCOL_BUDGET,
    build_report,
    closeness_plot,
    dumps_report,
    rate_bars,
    render_markdown,
    to_data_uri,
)
from parity_lib.report.plots import cosine_matrix
from parity_lib.storage.results import write_text_atomic

TOOLS = ("hooks", "nnsight", "pyvene")
QWEN, GEMMA = "qwen2-organism", "gemma2-organism"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SAME = np.arange(1.0, 9.0)
FLIPPED = np.array([1.0, -1.0] * 4)


def record(model: str, tool: str, repeat: int, *, vector: np.ndarray = SAME, refusal: int = 27,
           ok: bool = True) -> dict:
    if not ok:
        return {"schema": 1, "model": model, "tool": tool, "repeat": repeat, "status": "error",
                "error": "CUDA out of memory | retry", "direction": None, "n_prompts": 30}
    labels = ["refusal"] * refusal + ["normal"] * (30 - refusal)
    return {"schema": 1, "model": model, "tool": tool, "repeat": repeat, "status": "ok", "error": None,
            "direction": {"unit": (vector / np.linalg.norm(vector)).tolist(), "norm": 3.0, "layer": 16},
            "labels": labels, "n_prompts": 30, "timings": {"total_s": 600.0},
            "steering": {"scope": "target_to_final", "multiplier": 4.0, "steer_with": "hooks"}}


def study(hooks_diverge_on: tuple[str, ...]) -> dict:
    """Two models, three tools, two repeats; hooks extracts another direction on the listed models."""
    def recs(m):
        out = []
        for t in TOOLS:
            bad = t == "hooks" and m in hooks_diverge_on
            vector, refusal = (FLIPPED, 3) if bad else (SAME, 27)
            out += [record(m, t, r, vector=vector, refusal=refusal) for r in (1, 2)]
        return out
    return {m: summarize_model(recs(m)) for m in (QWEN, GEMMA)}


CHECKLIST = {m: {t: t != "hooks" for t in TOOLS} for m in (QWEN, GEMMA)}
TIMING = {"per_cycle_s": [600.0] * 12, "total_s": 7200.0}


def report_for(summaries: dict, timing: dict = TIMING, budget: dict | None = None) -> dict:
    decision = decide(summaries, CHECKLIST)
    return build_report(summaries, decision, CHECKLIST, {"commit": "abc123"}, timing, budget)


@pytest.fixture(scope="module")
def model_specific() -> dict:
    return report_for(study(hooks_diverge_on=(QWEN,)))


def test_report_survives_a_json_round_trip(model_specific):
    assert json.loads(dumps_report(model_specific)) == model_specific


@pytest.mark.parametrize(("diverge_on", "verdict"), [
    pytest.param((QWEN,), "Outcome 2: Model-specific artifact", id="model-specific"),
    pytest.param((QWEN, GEMMA), "Outcome 1: Tooling issue is real and generalizable", id="generalizable"),
    pytest.param((), "Outcome 4: Stop — tooling divergence is not generalizable", id="no-divergence"),
])
def test_markdown_states_the_verdict(diverge_on, verdict):
    assert f"**Section E verdict: {verdict}**" in render_markdown(report_for(study(diverge_on)))


def test_markdown_says_inconclusive_when_nothing_triggers():
    summaries = {QWEN: summarize_model([record(QWEN, "hooks", 1, ok=False), record(QWEN, "nnsight", 1)])}
    assert "**Section E verdict: inconclusive**" in render_markdown(report_for(summaries))


@pytest.mark.parametrize("heading", [
    "## What was tested", "## Outcome and why", "## What to do next", "### qwen2-organism",
    "## Parity checklist (PROTOCOL Section D)", "## Determinism", "## Errors", "## Time and budget",
    "## Provenance",
])
def test_markdown_has_section(model_specific, heading):
    assert f"\n{heading}\n" in render_markdown(model_specific)


def test_markdown_shows_the_numbers_that_triggered(model_specific):
    assert "hooks vs nnsight: cosine min -0.0990, refusal gap 80.0 pp" in render_markdown(model_specific)


def test_markdown_shows_the_rate_with_its_interval(model_specific):
    assert "90.0 ± 0.0% [74.4, 96.5]" in render_markdown(model_specific)  # 27 of 30 prompts, not 54 of 60


def test_markdown_escapes_pipes_in_error_messages():
    summaries = {QWEN: summarize_model([record(QWEN, "hooks", 1, ok=False), record(QWEN, "nnsight", 1)])}
    assert "CUDA out of memory \\| retry" in render_markdown(report_for(summaries))


def test_markdown_embeds_the_given_plots(model_specific):
    text = render_markdown(model_specific, {QWEN: {"Cosine matrix": "qwen_cos.png"}})
    assert f"![Cosine matrix — {QWEN}](qwen_cos.png)" in text


@pytest.mark.parametrize(("total_s", "within"),
                         [(7200.0, True), (9.75 * 3600, True), (9.75 * 3600 + 1, False)],
                         ids=["2h", "exactly-budget", "over-budget"])
def test_timing_compares_total_to_the_protocol_budget(total_s, within):
    timing = report_for(study(()), timing={"per_cycle_s": [1.0], "total_s": total_s})["timing"]
    assert timing["within_budget"] is within


@pytest.mark.parametrize(("model", "budget_s"), [(QWEN, 900.0), (GEMMA, 1200.0)])
def test_timing_matches_per_cycle_budget_by_model_family(model_specific, model, budget_s):
    assert model_specific["timing"]["per_model"][model]["budget_cycle_s"] == budget_s


def test_default_budget_is_protocol_section_f(model_specific):
    assert model_specific["timing"]["budget"]["total_s"] == PROTOCOL_BUDGET["total_s"] == 35100.0


def test_write_atomic_writes_the_text(tmp_path):
    write_text_atomic(tmp_path / "sub" / "phase1_outcome.md", "hello\n")
    assert (tmp_path / "sub" / "phase1_outcome.md").read_text() == "hello\n"


def test_write_atomic_replaces_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "report.json"
    write_text_atomic(target, "old")
    write_text_atomic(target, "new")
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"] and target.read_text() == "new"


@pytest.mark.parametrize("plot", [closeness_plot, rate_bars], ids=["closeness", "rate-bars"])
def test_plot_is_a_png(plot):
    assert plot(study((QWEN,))[QWEN]).startswith(PNG_MAGIC)


@pytest.mark.parametrize("plot", [closeness_plot, rate_bars], ids=["closeness", "rate-bars"])
def test_plot_draws_a_tool_without_data(plot):
    summary = summarize_model([record(QWEN, "hooks", 1, ok=False), record(QWEN, "nnsight", 1)])
    assert plot(summary).startswith(PNG_MAGIC)


def test_cosine_matrix_marks_missing_data_as_nan():
    summary = summarize_model([record(QWEN, "hooks", 1, ok=False), record(QWEN, "nnsight", 1)])
    assert np.isnan(cosine_matrix(summary)[1]).tolist() == [[True, True], [True, True]]


def test_data_uri_round_trips_the_png():
    uri = to_data_uri(PNG_MAGIC)
    assert base64.b64decode(uri.removeprefix("data:image/png;base64,")) == PNG_MAGIC


@pytest.mark.parametrize("mode", ["hooks", "same"])
def test_tools_table_says_who_steered_in_this_run(mode):
    """Under the default `--parity-steer-with hooks` the reference steerer applies every tool's direction:
    the table must not say a tool steered with its own mechanism when it did not."""
    from parity_lib.report.markdown import _tools
    from parity_lib.tools import describe

    text = _tools({"tools": [describe(t) for t in ("hooks", "nnsight", "pyvene")],
                   "study_settings": {"steer_with": mode}})
    nnsight_row = next(line for line in text.splitlines() if line.startswith("| nnsight "))
    if mode == "hooks":
        assert "the reference steerer (hooks) applies its direction" in nnsight_row
        assert "not exercised" in nnsight_row
    else:
        assert "its own mechanism" in nnsight_row and "reference steerer" not in nnsight_row


@pytest.mark.parametrize(("diverge_on", "starts"), [
    pytest.param((), "The tools agree on every model: no tooling effect", id="outcome-4"),
    pytest.param((QWEN, GEMMA), "The tools diverge on two or more models: a real tooling effect", id="outcome-1"),
    pytest.param((QWEN,), "The tools diverge on some models and agree on others", id="outcome-2"),
])
def test_first_line_says_what_happened_before_the_protocol_name(diverge_on, starts):
    """"Outcome 4: Stop" read alone sounds like a failure; the first line says what was found, then names
    the Section E outcome."""
    from parity_lib.protocol.headline import headline

    summaries = study(diverge_on)
    decision = decide(summaries, {m: {t: True for t in TOOLS} for m in (QWEN, GEMMA)})
    head = headline(decision, report_for(summaries)["models"], [], {}, {}, {}, TOOLS, ["hooks"])
    assert head.text.startswith(starts) and f"(Section E {decision.verdict})" in head.text, head.text


def test_a_run_without_study_says_so_and_which_checklist_lines_are_its_own(tmp_path):
    """`-m preflight` interrupted after one model's checks: it says it was interrupted, and the other model's
    checklist line is the file's from an earlier run, said as such; models the run is not configured for are
    not listed; its own outcome file says so, and the complete outcome on file is kept aside and named."""
    from parity_lib.report.session_report import no_study_lines, write_no_study
    from parity_lib.storage.results import write_json_atomic

    checklist = {"provenance": {"utc": "2026-12-01T00:00:00+00:00"},
                 "summary": {QWEN: {"failed": []}, GEMMA: {"failed": ["residual_location [nnsight]"]},
                             "other-model": {"failed": []}}}
    write_json_atomic(tmp_path / "phase1_outcome.json", {"headline": {"text": "the complete one"},
                                                         "provenance": {"utc": "T1"}, "run": {"complete": True}})
    lines = write_no_study(tmp_path, checklist, {QWEN}, [QWEN, GEMMA], True, [], {"utc": "T2"}, 1.0)
    assert lines["verdict"].startswith("[INTERRUPTED] No study ran in this run")
    assert lines[f"checklist_{QWEN}"] == f"Checklist {QWEN} (this run): every check passed"
    assert lines[f"checklist_{GEMMA}"] == (f"Checklist {GEMMA} (from an earlier run, checklist file of "
                                           f"2026-12-01T00:00:00+00:00): FAILED 1: residual_location [nnsight]")
    assert not any("other-model" in line for line in lines.values())
    assert lines["outcome_on_file"] == (f"Last complete study outcome (an earlier run, T1, kept in "
                                        f"{tmp_path / 'phase1_outcome.last-complete.md'}): the complete one")
    assert (tmp_path / "phase1_outcome.md").read_text().startswith("# [INTERRUPTED] No study ran in this run")
    assert json.loads((tmp_path / "phase1_outcome.last-complete.json").read_text())["headline"]["text"] == \
        "the complete one"
    clean = no_study_lines(tmp_path / "empty", {}, set(), [QWEN], interrupted=False)
    assert clean["verdict"] == "No study ran in this run: no Phase 1 verdict from it (nothing checked)."
    assert clean[f"checklist_{QWEN}"].endswith("not checked in this configuration (dtype, device, code, tools)")
    assert "No complete study outcome" in clean["outcome_on_file"]


def test_rerun_advice_fits_the_command_that_ran():
    """An interrupted `--parity-fresh` run is finished without that flag (it recomputes everything); a
    deselected run is completed without -k; with a verdict, what it says follows "Until then"."""
    from parity_lib.protocol.headline import headline, next_step

    summaries = study(())
    decision = decide(summaries, {m: {t: True for t in TOOLS} for m in (QWEN, GEMMA)})
    head = headline(decision, report_for(summaries)["models"], [], {}, {}, {}, TOOLS, ["hooks"])
    fresh = next_step(head, decision, {"interrupted": True, "fresh": True})
    assert fresh.startswith("Rerun the same command without --parity-fresh to finish"), fresh
    assert "Until then: " + decision.next_step in fresh
    partial = next_step(head, decision, {"complete": False, "not_run": ["x: 1 of 2 cycles not run"]})
    assert partial.startswith("Complete the run first (x: 1 of 2 cycles not run): rerun the same command without "
                              "-k"), partial
    assert next_step(head, decision, {}) == decision.next_step


def test_cycle_times_under_two_minutes_are_in_seconds():
    """Organism cycles take 0.3-0.8 s: "mean 0.0 min" hid them."""
    text = render_markdown(report_for(study(()), timing={"per_cycle_s": [0.3, 0.8], "total_s": 61.0}))
    timing = text.split("## Time and budget")[1].split("##")[0]
    assert "mean 0.55 s, longest 0.8 s" in timing and "whole pytest session 61 s" in timing, timing
    assert not re.search(r"\b0\.0 min", timing), timing


def test_the_budget_line_shows_its_arithmetic(model_specific):
    timing = render_markdown(model_specific).split("## Time and budget")[1].split("##")[0]
    assert "585.0 min in all (Qwen 5 repeats × 3 tools = 15 cycles × 15 min = 225 min, Gemma 15 cycles × 20 min = " \
           "300 min, pre-flight 2 models × 30 min = 60 min: 585 min = 9.75 GPU-hours)" in timing, timing


def test_outcome_3_beside_4_reads_as_one_statement():
    """"Outcome 4: Stop" beside "Also triggered: Outcome 3 (Proceed to Phase 2)" read as a contradiction."""
    report = report_for(study(()))
    assert [r["outcome"] for r in report["decision"]["triggered"]] == [4, 3]
    text = render_markdown(report)
    assert "Also triggered: Outcome 3" not in text
    assert "Outcome 3's conditions hold too (every tool deterministic, one passes every check and steers best), but " \
           "Outcome 4's stop takes precedence" in text
