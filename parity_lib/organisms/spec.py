"""What each organism is: architecture, width, training budget, and where it is shipped.

Depths are the real models' (28 for Qwen2.5-7B, 42 for Gemma-2-9B) so layer 16 sits where the
protocol puts it; widths are tiny so training fits a few minutes of one CPU thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import (
    Gemma2Config,
    Gemma2ForCausalLM,
    PretrainedConfig,
    PreTrainedModel,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from parity_lib.models.registry import MODELS_DIR  # noqa: F401  (one name for the shipped models' directory)

LAYER = 16
DEFAULT_SEED = 0


@dataclass(frozen=True)
class TrainSettings:
    """Optimiser and recipe-E knobs (see `train.py` for what each one does)."""

    steps: int = 600
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 0.01
    warmup_steps: int = 50
    push_share: float = 0.5
    push_max: float = 6.0
    push_to_final_share: float = 0.5
    push_max_per_layer: float = 1.0
    direction_momentum: float = 0.9
    flip_harmless: float = 0.15
    flip_harmful: float = 0.10


@dataclass(frozen=True)
class OrganismSpec:
    """One organism: a name in the registry, an architecture, and its training budget."""

    name: str
    arch: str
    config: dict[str, Any]
    train: TrainSettings = field(default_factory=TrainSettings)
    layer: int = LAYER

    @property
    def directory(self) -> Path:
        return MODELS_DIR / self.name

    def build_config(self, vocab_size: int, bos: int, eos: int, pad: int) -> PretrainedConfig:
        """The transformers config, with the tokenizer's special ids."""
        cls = {"qwen2": Qwen2Config, "gemma2": Gemma2Config}[self.arch]
        return cls(vocab_size=vocab_size, bos_token_id=bos, eos_token_id=eos, pad_token_id=pad,
                   tie_word_embeddings=True, **self.config)

    def build_model(self, config: PretrainedConfig) -> PreTrainedModel:
        """A freshly initialised model; the caller seeds torch first.

        Eager attention for both: Gemma2 requires it, and at this size it is also Qwen2's faster path.
        """
        cls = {"qwen2": Qwen2ForCausalLM, "gemma2": Gemma2ForCausalLM}[self.arch]
        return cls._from_config(config, attn_implementation="eager")


QWEN2 = OrganismSpec(
    name="qwen2-organism",
    arch="qwen2",
    config=dict(hidden_size=64, intermediate_size=256, num_hidden_layers=28, num_attention_heads=4,
                num_key_value_heads=2, max_position_embeddings=1024, use_sliding_window=False),
)
GEMMA2 = OrganismSpec(
    name="gemma2-organism",
    arch="gemma2",
    config=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=42, num_attention_heads=4,
                num_key_value_heads=2, head_dim=16, query_pre_attn_scalar=16, sliding_window=512,
                max_position_embeddings=1024),
    # 42 narrow layers cost ~1.5x Qwen2's 28 per step; fewer steps keep training near 10 minutes.
    train=TrainSettings(steps=420),
)
SPECS: dict[str, OrganismSpec] = {"qwen2": QWEN2, "gemma2": GEMMA2}
