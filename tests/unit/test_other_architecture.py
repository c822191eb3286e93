"""`pytest -m preflight --parity-model DIR:LAYER` works for another HF causal LM with no code change."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory) -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM

    from parity_lib.models.byte_tokenizer import byte_tokenizer

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny-llama")
    config = LlamaConfig(vocab_size=262, hidden_size=32, intermediate_size=64, num_hidden_layers=4,
                         num_attention_heads=4, num_key_value_heads=2, bos_token_id=1, eos_token_id=2,
                         pad_token_id=0)
    LlamaForCausalLM(config).save_pretrained(path)
    byte_tokenizer().save_pretrained(path)
    return path


def test_preflight_passes_on_a_saved_llama(llama_dir, tmp_path):
    cmd = [sys.executable, "-m", "pytest", "-m", "preflight", "parity_lib/suite/preflight", "-q",
           "-p", "no:cacheprovider",
           "--parity-model", f"{llama_dir}:2", "--parity-results-dir", str(tmp_path)]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert (tmp_path / "phase1_parity_checklist.json").is_file()
