"""Bad input gets one clear error naming the problem and the fix, never a deep library traceback."""

from __future__ import annotations

import json

import pytest
import torch

from parity_lib import errors, models, prompts
from parity_lib.batching import from_ids
from parity_lib.extractors import get_extractor, parse_tools
from parity_lib.extractors.base import finish


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
        models.load(models.parse_model("qwen2-tiny:28"))


def test_missing_local_directory_is_not_a_hub_id():
    with pytest.raises(errors.ModelSpecError, match="not an existing directory"):
        models.parse_model("./nowhere/model:16")


def test_absent_hub_weights_say_how_to_get_them():
    with pytest.raises(errors.WeightsNotFoundError, match="huggingface-cli download Qwen/Qwen2.5-7B-Instruct"):
        models.load(models.parse_model("qwen-7b"))


def test_directory_without_weights_is_reported(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "qwen2"}))
    with pytest.raises(errors.WeightsNotFoundError, match="holds no weights"):
        models.load(models.parse_model(f"{tmp_path}:1"))


def test_model_without_decoder_layers_is_unsupported(tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=16, n_head=2, vocab_size=262)).save_pretrained(tmp_path)
    from parity_lib.byte_tokenizer import byte_tokenizer

    byte_tokenizer().save_pretrained(tmp_path)
    with pytest.raises(errors.UnsupportedModelError, match="no list of 2 decoder layers"):
        models.load(models.parse_model(f"{tmp_path}:1"))


def test_nan_activation_is_reported_with_a_fix():
    batch = from_ids([[1, 2, 3]], 0)
    resid = torch.zeros(1, 3, 4)
    resid[0, 1, 2] = float("nan")
    with pytest.raises(errors.NonFiniteActivationError, match="rerun with --parity-dtype float32"):
        finish(resid, batch, "hooks")


def test_unknown_dtype_is_rejected():
    with pytest.raises(errors.ModelSpecError, match="choose one of float32"):
        models.load(models.parse_model("qwen2-tiny"), dtype="float8")


def test_get_extractor_rejects_unknown():
    with pytest.raises(errors.UnknownToolError):
        get_extractor("transformer_lens")
