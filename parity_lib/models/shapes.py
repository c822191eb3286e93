"""Configs for models built from scratch: tiny random ones for parity, and shape-only 7B/9B ones.

Shape-only configs for the paper's models ship under fixtures/models/<name>-shape/config.json (no
weights); tiny configs keep the real depths (28 / 42 layers) so layer 16 is the protocol's site.
"""

from __future__ import annotations

from typing import Any

from transformers import AutoConfig, Gemma2Config, Qwen2Config

from parity_lib.errors import ModelSpecError

VOCAB = 262  # byte_tokenizer: 6 specials + 256 bytes
_COMMON = dict(vocab_size=VOCAB, bos_token_id=1, eos_token_id=2, pad_token_id=0,
               max_position_embeddings=1024, tie_word_embeddings=True)

TINY: dict[str, Any] = {
    "qwen2": lambda: Qwen2Config(hidden_size=64, intermediate_size=128, num_hidden_layers=28,
                                 num_attention_heads=4, num_key_value_heads=2, **_COMMON),
    "gemma2": lambda: Gemma2Config(hidden_size=64, intermediate_size=128, num_hidden_layers=42,
                                   num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                                   attn_implementation="eager", **_COMMON),
}


def build_config(spec) -> Any:
    arch = spec.source.split(":", 1)[1]
    if spec.kind == "shape":
        config = AutoConfig.from_pretrained(arch, local_files_only=True)
        if getattr(config, "model_type", "") == "gemma2":
            config._attn_implementation = "eager"
        config.vocab_size = max(config.vocab_size, VOCAB)
        return config
    if arch not in TINY:
        raise ModelSpecError(f"random:{arch}: unknown architecture; choose one of {', '.join(TINY)}")
    return TINY[arch]()
