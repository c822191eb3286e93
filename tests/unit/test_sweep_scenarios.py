"""Sweeps end to end on the organisms, in subprocess runs as a user makes them: the working window holds the
shipped defaults and the real tools' curves coincide; a steerer at 1.5× the scale is named with its ratio (float32
and bfloat16); a rerun computes nothing; --parity-write-defaults gives the next study its layer and multiplier."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHORT = ["--parity-n-eval", "10", "--parity-max-new-tokens", "12", "-p", "no:cacheprovider",
         "-p", "tests.planted_tools"]


def sweep(where: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pytest", "parity_lib/suite", "-m", "sweep", "-q", *SHORT,
           f"--parity-results-dir={where / 'results'}", f"--parity-reports-dir={where / 'reports'}", *args]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=1200, env=dict(os.environ))


def report(where: Path) -> dict:
    return json.loads((where / "reports" / "sweep.json").read_text())


def test_the_organisms_window_holds_their_defaults_and_the_tools_coincide(tmp_path):
    """hooks, nnsight, pyvene (and TransformerLens when installed) steer the same curves at every layer."""
    import importlib.util

    tools = "hooks,nnsight,pyvene" + (",transformer_lens" if importlib.util.find_spec("transformer_lens") else "")
    done = sweep(tmp_path, "--parity-layers", "8,16", "--parity-tools", tools)
    assert done.returncode == 0, done.stdout[-4000:]
    swept = report(tmp_path)
    from parity_lib.models.registry import parse_model

    for model in ("qwen2-organism", "gemma2-organism"):
        default = parse_model(model).multiplier_for("target_to_final")  # the card's, shipped beside the weights
        layer16 = next(s for s in swept["layers"] if s["model"] == model and s["layer"] == 16)
        assert set(layer16["windows"]) == set(tools.split(","))
        assert all(default in w for w in layer16["windows"].values()), (model, layer16["windows"])
        curves = list(layer16["curves"].values())
        assert all(c == curves[0] for c in curves), f"{model}: the tools' curves differ"
        assert all(p["scale"] is None or abs(p["scale"]["ratio"] - 1) < 1e-9 for p in layer16["pairs"])
        assert swept["models"][model]["recommendation"]["layer"] == 16, swept["models"][model]
    assert swept["headline"].split("): ", 1)[1].startswith("SWEEP: gemma2-organism: layer 16 ×"), swept["headline"]
    names = {p.name for p in (tmp_path / "reports").iterdir()}
    assert {"sweep.md", "sweep.json", "sweep-qwen2-organism-dose.png", "sweep-gemma2-organism-depth.png"} <= names
    assert "parity_sweep_verdict" in (tmp_path / "reports" / "junit.xml").read_text()
    outcome = (tmp_path / "reports" / "phase1_outcome.md").read_text().splitlines()[0]  # this run's, no verdict
    assert outcome == "# No study ran in this run: no Phase 1 verdict from it (a sweep: its result heads sweep.md).", \
        outcome

    again = sweep(tmp_path, "--parity-layers", "8,16", "--parity-tools", tools, "-v")
    lines = [ln for ln in again.stdout.splitlines() if "parity: sweep " in ln and " L" in ln]
    assert again.returncode == 0 and len(lines) == 4 and all(ln.endswith("reused") for ln in lines), lines
    next((tmp_path / "results" / "sweep" / "qwen2-organism" / "L8" / "nnsight").glob("x*.json")).unlink()
    third = sweep(tmp_path, "--parity-layers", "8,16", "--parity-tools", tools, "-v", "-k", "qwen2 and L8")
    assert "computed 1 points" in third.stdout, third.stdout[-3000:]  # only the missing point


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_a_steerer_at_a_different_scale_is_named_with_its_ratio(tmp_path, dtype):
    done = sweep(tmp_path, "--parity-model", "qwen2-organism", "--parity-tools", "hooks,planted-scaled-1.5",
                 "--parity-steer-with", "same", "--parity-layers", "16", "--parity-dtype", dtype,
                 "--parity-multipliers", "1,1.2,1.4,1.6,1.8,2,2.2,2.5,3", "--parity-n-eval", "20")
    # the organism's rising edge (hooks: 30% at ×1.8, 75% at ×2) finely, over 20 prompts: at 10 prompts and a
    # grid from ×1.25 the ratio's interval reached 0.98 (measured): too few prompts to tell 1.5 from 1
    assert done.returncode != 0, "a shifted dose-response must fail the sweep"
    swept = report(tmp_path)
    scale = swept["layers"][0]["pairs"][0]["scale"]
    assert (scale["slower"], scale["faster"]) == ("hooks", "planted-scaled-1.5"), scale
    assert 1.2 < scale["ratio"] < 1.9 and scale["differs"], scale
    assert "STEERING SCALE DIFFERS on qwen2-organism at layer 16: hooks reaches 50% coherent refusal at " in (
        swept["headline"]), swept["headline"]
    assert "1 SWEEP TEST FAILED: test_steering_scale_agrees_at_layer[qwen2-organism-L16-hooks~planted-scaled-1.5]" \
        in swept["headline"], swept["headline"]


def test_write_defaults_gives_a_directory_model_its_layer_and_multiplier(tmp_path):
    from parity_lib.models.registry import MODELS_DIR, parse_model

    model = tmp_path / "my-qwen"
    shutil.copytree(MODELS_DIR / "qwen2-organism", model)
    (model / "parity_defaults.json").unlink()
    card = json.loads((MODELS_DIR / "qwen2-organism" / "parity_defaults.json").read_text())
    default, (low, high) = card["multiplier"]["target_to_final"], card["coherent_band"]["target_to_final"]
    assert low <= default <= high
    done = sweep(tmp_path, "--parity-model", f"{model}:8:1", "--parity-layers", "16", "--parity-write-defaults",
                 "--parity-tools", "hooks,nnsight",
                 "--parity-multipliers", f"{low / 2:.3g},{low},{default},{high * 2:.3g}")
    assert done.returncode == 0, done.stdout[-4000:]
    written = json.loads((model / "parity_defaults.json").read_text())
    rec = report(tmp_path)["models"]["my-qwen"]["recommendation"]
    assert (written["layer"], written["multiplier"]["target_to_final"]) == (rec["layer"], rec["multiplier"]), written
    # the recommendation lies in every tool's working window at its layer (which layer wins depends on the organism:
    # the rebuilt Qwen2 already refuses at ×1–1.23 on layer 8 in this short setting)
    chosen = next(s for s in report(tmp_path)["layers"] if s["layer"] == rec["layer"])
    assert rec["layer"] in (8, 16) and all(rec["multiplier"] in w for w in chosen["windows"].values()), (rec, chosen)
    spec = parse_model(str(model))  # what the next `pytest -m study --parity-model DIR` runs with
    assert (spec.layer, spec.multiplier_for("target_to_final")) == (rec["layer"], rec["multiplier"])
    assert "defaults for my-qwen:" in done.stdout
