"""The report's first line and the exit status, on real (small) study runs with planted scenarios: nothing
reads "Proceed" or "Stop" over a divergence, partial runs say so, caches mean "same computation"."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SMALL = ["--parity-repeats", "2", "--parity-n-eval", "6", "--parity-max-new-tokens", "16", "-p", "no:cacheprovider",
         "-p", "tests.planted_tools"]


def study(where: Path, *args: str, marker: str = "study", env: dict | None = None,
          path: str = "parity_lib/suite") -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pytest", path, "-m", marker, "-q", *SMALL,
           f"--parity-results-dir={where / 'results'}", f"--parity-reports-dir={where / 'reports'}", *args]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900,
                          env={**os.environ, **(env or {})})


def first_line(where: Path) -> str:
    return (where / "reports" / "phase1_outcome.md").read_text().splitlines()[0]


def test_steering_only_divergence_is_named_not_proceed(tmp_path):
    """Same direction, different behaviour (a steerer that skips rows): the paper's case, named as such."""
    done = study(tmp_path, "--parity-tools", "hooks,nnsight,planted-some-rows", "--parity-steer-with", "same",
                 "--parity-override-gate", "-k", "test_cycle_completes")
    line = first_line(tmp_path)
    assert line.startswith("# ON TEST MODELS (the suite's model organisms"), line
    assert line.split("): ", 1)[1].startswith("STEERING DIVERGES, extraction agrees"), line
    assert "Proceed" not in line and "Stop" not in line
    assert done.returncode != 0, "a steering divergence must fail the run"
    report = json.loads((tmp_path / "reports" / "phase1_outcome.json").read_text())
    assert {"planted-some-rows"} <= {t for f in report["headline"]["findings"] for t in f["tools"]}


def test_tool_diverging_on_one_model_is_never_validated(tmp_path):
    done = study(tmp_path, "--parity-tools", "hooks,nnsight,planted-mlp-gemma-only", "--parity-override-gate",
                 "-k", "test_cycle_completes")
    line = first_line(tmp_path)
    assert "Proceed" not in line and "validated" not in line, line
    report = json.loads((tmp_path / "reports" / "phase1_outcome.json").read_text())
    assert "planted-mlp-gemma-only" in report["headline"]["blocked_tools"]
    assert "planted-mlp-gemma-only" not in report["headline"]["next_step"].split("Do not proceed with")[0]
    assert done.returncode != 0


def test_interrupted_run_says_so_in_the_first_line(tmp_path):
    done = study(tmp_path, "-k", "test_cycle_completes", env={"PARITY_TEST_INTERRUPT_AFTER_CYCLES": "2"})
    line = first_line(tmp_path)
    assert line.startswith("# [INTERRUPTED: partial results, no cycle for gemma2-organism]"), line
    assert done.returncode == 2  # pytest's own "interrupted"


def test_interrupted_run_reports_what_the_packed_call_computed(tmp_path):
    """Two cycles asked for, but repeat 1's packed call computed every tool's r1: those are results, not holes,
    and a hole in the data reads "not shown", never "not deterministic"."""
    study(tmp_path, "-k", "test_cycle_completes", env={"PARITY_TEST_INTERRUPT_AFTER_CYCLES": "2"})
    report = json.loads((tmp_path / "reports" / "phase1_outcome.json").read_text())
    qwen = report["models"]["qwen2-organism"]["tools"]
    assert set(qwen) == {"hooks", "nnsight", "pyvene"}, qwen.keys()
    missing = report["decision"]["missing"]
    assert not any(m.startswith("qwen2-organism/") and m.endswith("no results") for m in missing), missing
    assert "gemma2-organism: no results" in missing
    assert report["headline"]["text"].startswith("[INTERRUPTED"), report["headline"]["text"]
    rule3 = next(r for r in report["decision"]["all"] if r["outcome"] == 3)
    assert "deterministic: not shown (missing data)" in rule3["reasons"][-1], rule3["reasons"]
    assert report["headline"]["next_step"].startswith("Rerun the same command to finish"), report["headline"]


def test_later_partial_or_preflight_runs_write_their_own_outcome_and_keep_the_complete_one(tmp_path):
    """`-k` on one model after a complete run: the partial run's outcome file is its own, judged against every
    configured model (no verdict); the complete outcome is moved to `phase1_outcome.last-complete.*` with its
    figures and named. A preflight-only run's outcome, junit.xml and report.html say no study ran and quote the
    last complete outcome. The next complete run removes the kept and partial files."""
    reports = tmp_path / "reports"
    assert study(tmp_path, "-k", "test_cycle_completes").returncode == 0
    complete = (reports / "phase1_outcome.md").read_text()
    verdict = json.loads((reports / "phase1_outcome.json").read_text())["headline"]["text"]
    figures = sorted(p.name for p in reports.glob("*.png"))
    assert any(n.startswith("gemma2-organism-") for n in figures), figures
    step = json.loads((reports / "phase1_outcome.json").read_text())["headline"]["next_step"]
    assert "applies to a run on real models, not to this one" in step, step  # Section E's action: not an order
    assert "Write up" not in step and "Lock in" not in step, step

    assert study(tmp_path, marker="preflight").returncode == 0
    html, junit = (reports / "report.html").read_text(), (reports / "junit.xml").read_text()
    assert "No study ran in this run" in html and "No study ran in this run" in junit
    assert "parity_outcome_on_file" in junit and _escaped(verdict) in html, html[:2000]
    assert "Checklist gemma2-organism (this run): every check passed" in junit
    assert "parity: torch" in html and "parity: nnsight" in html  # tool versions in the Environment table
    assert first_line(tmp_path).startswith("# No study ran in this run"), first_line(tmp_path)
    assert (reports / "phase1_outcome.last-complete.md").read_text() == complete

    done = study(tmp_path, "-k", "test_cycle_completes and qwen2")
    assert (reports / "phase1_outcome.last-complete.md").read_text() == complete
    assert sorted(p.name for p in reports.glob("[!p]*.png")) == figures
    partial = (reports / "phase1_outcome.md").read_text()
    line = partial.splitlines()[0]
    assert line.startswith("# [PARTIAL: no cycle for gemma2-organism] ON TEST MODELS"), line
    assert "): NO VERDICT: data missing" in line, line
    assert "every model" not in line and "Proceed" not in line and "Stop" not in line, line
    assert "The last complete outcome was kept" in partial
    step = json.loads((reports / "phase1_outcome.json").read_text())["headline"]["next_step"]
    assert step.startswith("Complete the run first (gemma2-organism: 6 of 6 cycles not run)"), step
    assert "These are the suite's own test models" in step and "Fill the missing data" not in step, step
    assert sorted(p.name for p in reports.glob("partial-*.png")) == ["partial-qwen2-organism-cosine.png",
                                                                     "partial-qwen2-organism-outcome.png"]
    assert "kept: the last complete outcome" in done.stdout

    assert study(tmp_path, "-k", "test_cycle_completes").returncode == 0
    assert not list(reports.glob("*partial*")) and not list(reports.glob("*last-complete*")), list(reports.iterdir())
    assert (reports / "phase1_outcome.md").read_text().splitlines()[0] == complete.splitlines()[0]


def _escaped(text: str) -> str:
    from html import escape

    return escape(text)


def test_preflight_then_study_reports_the_checklist_from_the_preflight(tmp_path):
    assert study(tmp_path, marker="preflight").returncode == 0
    study(tmp_path, "-k", "test_cycle_completes")
    text = (tmp_path / "reports" / "phase1_outcome.md").read_text()
    table = text.split("## Parity checklist")[1].split("##")[0]
    assert "not run" not in table and "| qwen2-organism | pass | pass | pass |" in table, table


SWAPPED = '''
from parity_lib.tools.hooks import HooksExtractor
from parity_lib.tools import ToolPlugin, register


class Swapped(HooksExtractor):
    name = "swapped"
    VERSION = {version}


register(ToolPlugin("swapped", Swapped, None, "a tool swapped under the same name"))
'''


def test_a_swapped_tool_under_the_same_name_is_recomputed(tmp_path):
    plugin_dir = tmp_path / "plugin"
    plugin_dir.mkdir()
    env = {"PYTHONPATH": f"{plugin_dir}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    args = ["--parity-model", "qwen2-organism", "--parity-tools", "hooks,swapped", "-p", "swapped_tool",
            "-k", "test_cycle_completes"]
    lines = []
    for version in (1, 1, 2):
        (plugin_dir / "swapped_tool.py").write_text(textwrap.dedent(SWAPPED.format(version=version)))
        done = study(tmp_path, *args, "-v", env=env)
        assert done.returncode == 0, done.stdout[-2000:]
        lines.append([ln for ln in done.stdout.splitlines() if "qwen2-organism/swapped/r1:" in ln][0])
    assert "computed in " in lines[0] and "reused" in lines[1] and "computed in " in lines[2], lines


def test_a_changed_dependency_version_changes_the_cache_key(monkeypatch):
    from parity_lib.models import loading, registry
    from parity_lib.prompts import load_prompts
    from parity_lib.run.cycle import StudySettings, config_key
    from parity_lib.storage import fingerprint

    lm = loading.load(registry.parse_model("qwen2-tiny"))
    prompts, settings = load_prompts(None), StudySettings()
    before = config_key(lm, "nnsight", prompts, settings, "code")
    real = fingerprint.dependency_versions()
    monkeypatch.setattr(fingerprint, "dependency_versions", lambda: {**real, "nnsight": "0.9.0"})
    assert config_key(lm, "nnsight", prompts, settings, "code") != before
    monkeypatch.undo()
    more = StudySettings(repeats=settings.repeats + 3)
    assert config_key(lm, "nnsight", prompts, more, "code") == before, "more repeats must reuse the first ones"


def _report(where: Path) -> dict:
    return json.loads((where / "reports" / "phase1_outcome.json").read_text())


def _no_section_e_action(line: str) -> None:
    for word in ("Proceed", "Stop", "tools agree", "steers best", "validated"):
        assert word not in line, f"{word!r} in the first line: {line}"


def test_a_tool_that_passes_the_gate_then_extracts_another_layer_is_named(tmp_path):
    """Right in preflight and the gate, layer L+1 in the study: cosines inside the protocol's grey zone on the Gemma2
    organism (layers 16 and 17: 0.9869; on the Qwen2 organism they are 0.94, below the divergence bar, which
    is NOT CLEAR TO PROCEED), study tests failing. The first line names the disagreement and the failed tests,
    never a Section E action, and the tool is never validated; the junit property and the HTML summary carry
    the same line."""
    done = study(tmp_path, "--parity-tools", "hooks,nnsight,planted-neighbour-in-study",
                 "--parity-model", "gemma2-organism", marker="preflight or study")
    assert done.returncode != 0, done.stdout[-3000:]
    report = _report(tmp_path)
    line = report["headline"]["text"]
    assert "TOOLS DISAGREE (below the protocol's divergence bar): gemma2-organism:" in line, line
    assert "PROTOCOL TESTS FAILED: test_directions_agree_across_tools[gemma2-organism-" in line, line
    assert "≤ 0.99" in line, line  # the number against its bar, from the test's own message
    _no_section_e_action(line)
    assert "planted-neighbour-in-study" in report["headline"]["blocked_tools"], report["headline"]
    assert report["headline"]["next_step"].startswith(tuple(f"{n} protocol test(s) failed" for n in range(1, 40)))
    assert report["decision"]["verdict"] in (report["headline"]["section_e_verdict"],)
    md = (tmp_path / "reports" / "phase1_outcome.md").read_text().splitlines()
    assert md[0] == f"# {line}" and md[2].startswith("**Section E verdict:"), md[:3]
    junit = (tmp_path / "reports" / "junit.xml").read_text()
    assert _escaped_xml(line) in junit
    html = (tmp_path / "reports" / "report.html").read_text()
    assert _escaped(line) in html
    assert html.index('id="parity-verdict"') < html.index('id="environment-header"'), "verdict before Environment"


def _escaped_xml(text: str) -> str:
    from xml.sax.saxutils import quoteattr

    return quoteattr(text)[1:-1]


def test_steering_with_no_effect_is_named_not_steers_best(tmp_path):
    """A multiplier too small to move anything: every tool at the unsteered baseline. Nothing is "best"."""
    done = study(tmp_path, "--parity-multiplier", "0.001", "-k", "test_cycle_completes")
    report = _report(tmp_path)
    line = report["headline"]["text"]
    assert line.startswith("ON TEST MODELS"), line
    assert "STEERING HAS NO EFFECT on gemma2-organism at layer 16 ×0.001:" in line, line
    assert "unsteered baseline" in line and "no tool's interval lies above the baseline's" in line, line
    _no_section_e_action(line)
    assert "other layers and multipliers" in report["headline"]["next_step"], report["headline"]["next_step"]
    assert done.returncode == 0, "a setting that steers nothing is named, it is not a tool regression"


def test_over_steering_is_named(tmp_path):
    """A multiplier so large that every tool garbles most outputs."""
    study(tmp_path, "--parity-multiplier", "400", "-k", "test_cycle_completes")
    line = _report(tmp_path)["headline"]["text"]
    assert "OVER-STEERED on gemma2-organism at layer 16 ×400: every tool garbles most outputs" in line, line
    _no_section_e_action(line)
