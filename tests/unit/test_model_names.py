"""A directory model is reported under a name a user recognises, or the one they give (`NAME=DIR:L:M`)."""

from __future__ import annotations

import json

import pytest

from parity_lib.models.registry import directory_name, parse_model


def _model_dir(path, **config):
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"], "model_type": "llama",
                                                  **config}))
    return path


def test_a_named_directory_keeps_its_name(tmp_path):
    assert parse_model(str(_model_dir(tmp_path / "SmolLM2-135M-Instruct")) + ":3:2").name == "SmolLM2-135M-Instruct"


@pytest.mark.parametrize("folder", ["hf", "model", "checkpoint", "0123456789abcdef0123456789abcdef01234567"])
def test_a_generic_directory_is_named_from_its_config_or_parent(tmp_path, folder):
    plain = _model_dir(tmp_path / "runs" / "my-llama" / folder)
    assert parse_model(f"{plain}:3:2").name == "my-llama-LlamaForCausalLM"
    named = _model_dir(tmp_path / "other" / folder, _name_or_path="org/tiny-chat")
    assert directory_name(named) == "tiny-chat"


def test_a_hub_cache_snapshot_is_named_after_the_model(tmp_path):
    snap = _model_dir(tmp_path / "hub" / "models--Qwen--Qwen2.5-7B-Instruct" / "snapshots" / ("ab" * 20))
    assert parse_model(f"{snap}:16:15").name == "Qwen2.5-7B-Instruct"


def test_name_equals_directory_names_it_explicitly(tmp_path):
    path = _model_dir(tmp_path / "hf")
    spec = parse_model(f"my-run_1={path}:3:2")
    assert (spec.name, spec.source, spec.layer, spec.multiplier) == ("my-run_1", str(path), 3, 2.0)
    assert parse_model("alias=qwen2-organism").name == "alias"
