"""Reference steerer: a forward hook on each steered layer returning `output + m·v`.

It fires on every forward (prompt and each generated token) at every position. It returns a new
tensor instead of editing in place, so a capture taken earlier is never changed behind its back.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch

from ..batching import Batch
from ..models import LoadedModel
from .base import generation_kwargs
from .spec import SteeringSpec


@contextmanager
def steering_hooks(lm: LoadedModel, spec: SteeringSpec) -> Iterator[None]:
    vec = spec.vector(lm.dtype, lm.device)

    def add(module, args, output):
        if isinstance(output, torch.Tensor):
            return output + vec
        return (output[0] + vec, *output[1:])

    handles = [lm.layers[layer].register_forward_hook(add) for layer in spec.layers]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


class HooksSteerer:
    name = "hooks"

    def generate(self, lm: LoadedModel, batch: Batch, spec: SteeringSpec, max_new_tokens: int) -> torch.Tensor:
        with steering_hooks(lm, spec), torch.no_grad():
            out = lm.model.generate(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                                    **generation_kwargs(lm, max_new_tokens))
        return out[:, batch.input_ids.shape[1]:]

    def logits(self, lm: LoadedModel, batch: Batch, spec: SteeringSpec) -> torch.Tensor:
        with steering_hooks(lm, spec), torch.no_grad():
            out = lm.model(**batch.model_inputs(), use_cache=False)
        return out.logits[:, -1].float()
