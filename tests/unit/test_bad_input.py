"""Bad input gets one clear error naming the problem and the fix, never a deep library traceback."""

from __future__ import annotations

import json

import pytest
import torch

from parity_lib import errors, prompts
from parity_lib.models import loading, registry
from parity_lib.models.batching import from_ids
from parity_lib.tools.base import finish
from parity_lib.tools.registry import get_extractor, parse_tools


@pytest.mark.parametrize(("argv", "message"), [
    (["--parity-tools", "hooks,transformerlens"], "unknown tool 'transformerlens'"),
    (["--parity-tools", ","], "names no tool"),
    (["--parity-model", "no-such-model"], "not a known model"),
    (["--parity-model", "qwen2-tiny:abc"], "LAYER must be an integer"),
    (["--parity-prompts", "missing.json"], "does not exist"),
    (["--parity-device", "tpu"], "use cpu, cuda or cuda:N"),
], ids=["unknown-tool", "empty-tools", "unknown-model", "bad-layer", "missing-prompts", "bad-device"])
def test_bad_option_is_a_usage_error(pytester, argv, message):
    result = pytester.runpytest("-p", "parity_lib.plugin", *argv)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}*"])


@pytest.mark.parametrize(("content", "message"), [
    ("", "is empty"),
    ("{not json", "not valid JSON"),
    ("[1, 2]", "must hold a JSON object"),
    ('{"harmful": ["a"], "harmless": ["b"]}', "no 'eval' prompts"),
    ('{"harmful": ["a"], "harmless": ["b"], "eval": []}', "non-empty list"),
    ('{"harmful": ["a", ""], "harmless": ["b", "c"], "eval": ["x"]}', "empty or not strings"),
    ('{"harmful": ["a"], "harmless": ["b", "c"], "eval": ["x"]}', "must pair up"),
], ids=["empty", "malformed", "not-object", "no-eval", "empty-eval", "blank-prompt", "unpaired"])
def test_bad_prompt_file_names_the_problem(tmp_path, content, message):
    path = tmp_path / "p.json"
    path.write_text(content)
    with pytest.raises(errors.PromptFileError, match=message):
        prompts.load_prompts(path)


def test_python_prompt_file_runs_only_when_allowed(tmp_path):
    path = tmp_path / "v3_shared.py"
    path.write_text("HARMFUL_PROMPTS = ['a']\nHARMLESS_PROMPTS = ['b']\nEVAL_PROMPTS = ['c', 'd']\n")
    with pytest.raises(errors.PromptFileError, match="is a Python file"):
        prompts.load_prompts(path)
    assert prompts.load_prompts(path, allow_python=True).eval == ("c", "d")


def test_unknown_tool_lists_the_choices():
    with pytest.raises(errors.UnknownToolError, match="choose from hooks, nnsight, pyvene"):
        parse_tools("hooks,nnsightt")


def test_layer_out_of_range_says_how_many_layers():
    with pytest.raises(errors.LayerOutOfRangeError, match=r"has 28 decoder layers \(0\.\.27\)"):
        loading.load(registry.parse_model("qwen2-tiny:28"))


def test_missing_local_directory_is_not_a_hub_id():
    with pytest.raises(errors.ModelSpecError, match="directory ./nowhere/model does not exist"):
        registry.parse_model("./nowhere/model:16")


def test_missing_directory_named_like_a_paper_model_gets_its_download_command():
    with pytest.raises(errors.ModelSpecError, match=r"download Qwen/Qwen2\.5-7B-Instruct --local-dir "
                                                    r"/nowhere/Qwen2\.5-7B-Instruct"):
        registry.parse_model("/nowhere/Qwen2.5-7B-Instruct:16:15")


def test_a_directory_with_parity_defaults_brings_its_layer_and_multiplier():
    from parity_lib.models.registry import MODELS_DIR

    spec = registry.parse_model(str(MODELS_DIR / "qwen2-organism"))
    registered = registry.parse_model("qwen2-organism")
    assert spec.multiplier_known and (spec.layer, spec.multipliers) == (registered.layer, registered.multipliers)
    assert registry.parse_model(f"{MODELS_DIR / 'qwen2-organism'}:12:3.0").multiplier_for("target_to_final") == 3.0


def test_absent_hub_weights_say_how_to_get_them():
    with pytest.raises(errors.WeightsNotFoundError, match="hf download Qwen/Qwen2.5-7B-Instruct"):
        loading.load(registry.parse_model("qwen-7b"))


def test_directory_without_weights_is_reported(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "qwen2"}))
    with pytest.raises(errors.WeightsNotFoundError, match="holds no weights"):
        loading.load(registry.parse_model(f"{tmp_path}:1"))


def test_model_without_decoder_layers_is_unsupported(tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=16, n_head=2, vocab_size=262)).save_pretrained(tmp_path)
    from parity_lib.models.byte_tokenizer import byte_tokenizer

    byte_tokenizer().save_pretrained(tmp_path)
    with pytest.raises(errors.UnsupportedModelError, match="no list of 2 decoder layers"):
        loading.load(registry.parse_model(f"{tmp_path}:1"))


def test_nan_activation_is_reported_with_a_fix():
    batch = from_ids([[1, 2, 3]], 0)
    resid = torch.zeros(1, 3, 4)
    resid[0, 1, 2] = float("nan")
    with pytest.raises(errors.NonFiniteActivationError, match="rerun with --parity-dtype float32"):
        finish(resid, batch, "hooks")


def test_unknown_dtype_is_rejected():
    with pytest.raises(errors.ModelSpecError, match="choose one of float32"):
        loading.load(registry.parse_model("qwen2-tiny"), dtype="float8")


def test_get_extractor_rejects_unknown():
    with pytest.raises(errors.UnknownToolError):
        get_extractor("baukit")


@pytest.fixture(scope="module")
def organism_copies(tmp_path_factory):
    """A copy of an organism, one with a truncated weights file, one without weights."""
    import shutil

    from parity_lib.models.registry import MODELS_DIR

    root = tmp_path_factory.mktemp("bad-models")
    good = root / "good"
    shutil.copytree(MODELS_DIR / "qwen2-organism", good)
    (good / "parity_defaults.json").unlink()  # a plain save_pretrained directory: no layer or multiplier of its own
    truncated = root / "truncated"
    shutil.copytree(good, truncated)
    weights = truncated / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    empty = root / "no-weights"
    shutil.copytree(good, empty)
    (empty / "model.safetensors").unlink()
    return {"good": good, "truncated": truncated, "empty": empty, "file": root / "good" / "config.json"}


BAD_RUNS = {
    "layer-too-large": (["--parity-model", "{good}:99:4.0"], "layer 99 is out of range, the model has 28"),
    "layer-negative": (["--parity-model", "{good}:-1:4.0"], "layer -1 is out of range"),
    "no-weights": (["--parity-model", "{empty}:16:4.0"], "holds no weights"),
    "truncated-weights": (["--parity-model", "{truncated}:16:4.0"], "truncated/model.safetensors is not a readable"),
    "hub-id-absent": (["--parity-model", "qwen-7b"], "hf download Qwen/Qwen2.5-7B-Instruct"),
    "no-multiplier": (["--parity-model", "{good}:16"], "no steering multiplier is known"),
    "nan-multiplier": (["--parity-multiplier", "nan"], "must be a finite, non-zero number"),
    "missing-directory": (["--parity-model", "/nowhere/Qwen2.5-7B-Instruct:16:15"],
                          "hf download Qwen/Qwen2.5-7B-Instruct --local-dir /nowhere/Qwen2.5-7B-Instruct"),
    "layer-too-large-by-name": (["--parity-model", "qwen2-organism:99"], "pass --parity-model qwen2-organism:LAYER"),
    "zero-multiplier-in-spec": (["--parity-model", "{good}:16:0"], "multiplier 0.0 must be finite and non-zero"),
    "zero-multiplier": (["--parity-multiplier", "0"], "must be a finite, non-zero number"),
    "duplicate-tool": (["--parity-tools", "hooks,hooks"], "a tool is named twice"),
    "results-dir-is-a-file": (["--parity-results-dir={file}"], "is a file; give a directory"),
    "reports-dir-under-a-file": (["--parity-reports-dir={file}/sub"], "is a file; give a directory"),
}


@pytest.mark.parametrize("case", list(BAD_RUNS))
def test_bad_input_is_one_usage_error_before_anything_runs(pytester, organism_copies, case):
    argv, message = BAD_RUNS[case]
    argv = [a.format(**organism_copies) for a in argv]
    pytester.makepyfile(test_x="def test_x(loaded_model):\n    pass\n")
    result = pytester.runpytest("-p", "parity_lib.plugin", "-p", "no:cacheprovider", *argv)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()[-2000:]
    err = result.stderr.str()
    assert message in err, err[-2000:]
    assert err.count("ERROR:") == 1 and "Traceback" not in err + result.stdout.str()
    written = sorted(p.name for p in pytester.path.iterdir() if p.name not in ("test_x.py",))
    assert written == [], f"files written on bad input: {written}"


def test_a_preflight_only_run_needs_no_multiplier(pytester, organism_copies):
    """Preflight extracts and never steers: a directory without :MULT is fine there (the study asks for it)."""
    pytester.makepyfile(test_x="def test_x(suite):\n    assert suite.models[0].layer == 16\n")
    result = pytester.runpytest("-p", "parity_lib.plugin", "-p", "no:cacheprovider", "-m", "preflight or not preflight",
                                "--parity-model", f"{organism_copies['good']}:16")
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # "not" in the expression: it may steer, so it asks
    result = pytester.runpytest("-p", "parity_lib.plugin", "-p", "no:cacheprovider", "-m", "preflight",
                                "--parity-model", f"{organism_copies['good']}:16")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED, result.stdout.str()[-1500:]


@pytest.mark.parametrize("argv", [["--parity-multiplier", "nan"], ["--parity-multiplier", "0"],
                                  ["--parity-model", "qwen2-organism:16:0"]], ids=["nan", "zero", "zero-in-spec"])
def test_a_bad_multiplier_is_refused_under_preflight_too(pytester, argv):
    """A preflight-only run needs no multiplier, but one that is given must be valid: refused at start."""
    result = pytester.runpytest("-p", "parity_lib.plugin", "-p", "no:cacheprovider", "-m", "preflight", *argv)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()[-1500:]
    assert "must be" in result.stderr.str() and "finite" in result.stderr.str()


def test_asked_attention_that_a_tool_overrides_is_a_usage_error(pytester):
    pytest.importorskip("transformer_lens")
    result = pytester.runpytest("-p", "parity_lib.plugin", "--parity-tools", "hooks,transformer_lens",
                                "--parity-attention", "sdpa")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--parity-attention sdpa: transformer_lens computes attention eager*"])


def test_asked_attention_applies_where_the_architecture_has_it():
    """`--parity-attention sdpa`: Qwen2 loads SDPA; Gemma2 stays eager (SDPA is refused for it, or drops its
    soft-capping) and its record says so."""
    qwen = loading.load(registry.parse_model("qwen2-organism"), attn_implementation="sdpa")
    gemma = loading.load(registry.parse_model("gemma2-organism"), attn_implementation="sdpa")
    assert (qwen.attn_implementation, gemma.attn_implementation) == ("sdpa", "eager")
