"""The Steerer Protocol: greedy generation and next-token logits under a SteeringSpec."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

from ..batching import Batch
from ..models import LoadedModel
from .spec import SteeringSpec


@runtime_checkable
class Steerer(Protocol):
    """A steerer may also define `prepare(lm)`: build whatever instruments the model's modules (nnsight wraps
    their `forward`s) before the firing map's recorder replaces some of them (`record_firing(steerer=)`)."""

    name: str

    def generate(self, lm: LoadedModel, batch: Batch, spec: SteeringSpec, max_new_tokens: int) -> torch.Tensor:
        """Greedy continuation, [B, ≤max_new_tokens] new token ids (left-padded prompt dropped)."""
        ...

    def logits(self, lm: LoadedModel, batch: Batch, spec: SteeringSpec) -> torch.Tensor:
        """Next-token logits at each row's last position under steering, [B, V] float32."""
        ...


def generation_kwargs(lm: LoadedModel, max_new_tokens: int) -> dict:
    tok = lm.tokenizer
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    return {"max_new_tokens": max_new_tokens, "do_sample": False, "num_beams": 1, "pad_token_id": pad,
            "eos_token_id": tok.eos_token_id, "temperature": None, "top_p": None, "top_k": None}
