"""Raw PyTorch forward hooks, the whole tool: its extractor, its steerer (the reference steerer) and packed generation.

**Extraction.** Raw PyTorch forward hooks: `register_forward_hook` on decoder layer L, store a detached clone.

The clone matters: a later in-place edit (a steering hook doing `out += v`) would otherwise change
the stored value. The hook is removed in `finally`, so a failed forward leaves no hook behind; the
layers after L are skipped by stopping the forward from the hook, which changes nothing before L.

**Steering.** Reference steerer: a forward hook on each steered layer returning `output + m·v`.

It fires on every forward (prompt and each generated token) at every position. It returns a new
tensor instead of editing in place, so a capture taken earlier is never changed behind its back.

Packed generation (`generate_packed`): several specs that steer the same layers, each on its own block of
rows of one batch — the hook adds a [rows, 1, H] table, row i its own block's m·v. A decode step is mostly
kernel launches at these batch sizes, so one call for every tool of a repeat costs about what one tool's
call did; each row still sees only its own prompt and its own vector.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Sequence

import torch

from parity_lib.models.batching import Batch
from parity_lib.models.loading import LoadedModel
from parity_lib.tools.base import Activations, OnePassExtractor, finish, generation_kwargs, unwrap
from parity_lib.tools.spec import SteeringSpec


class _Captured(Exception):
    """Raised from the hook once the tensor is stored: the rest of the forward is not needed."""


class HooksExtractor(OnePassExtractor):
    name = "hooks"

    def extract_many(self, lm: LoadedModel, batch: Batch, layers: list[int]) -> dict[int, Activations]:
        """One hook per layer, one forward, stopped after the deepest."""
        store: dict[int, torch.Tensor] = {}
        last = max(layers)

        def hook_for(layer: int):
            def hook(module, args, output):
                store[layer] = unwrap(output).detach().clone()
                if self.stop_early and layer == last:
                    raise _Captured
            return hook

        handles = [lm.layers[layer].register_forward_hook(hook_for(layer)) for layer in layers]
        try:
            with torch.no_grad():
                lm.model(**batch.model_inputs(), use_cache=False)
        except _Captured:
            pass
        finally:
            for handle in handles:
                handle.remove()
        return {layer: finish(store[layer], batch, self.name) for layer in layers}


@contextmanager
def steering_hooks(lm: LoadedModel, spec: SteeringSpec, rows: torch.Tensor | None = None) -> Iterator[None]:
    """Add m·v after each of the spec's layers; `rows` ([B, 1, H], model dtype): a vector per row instead."""
    vec = spec.vector(lm.dtype, lm.device) if rows is None else rows

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


def _generate_steered(lm: LoadedModel, batch: Batch, spec: SteeringSpec, max_new_tokens: int,
                      rows: torch.Tensor | None = None) -> torch.Tensor:
    """The new tokens [B, T] of one greedy generate call under `steering_hooks(lm, spec, rows)`."""
    with steering_hooks(lm, spec, rows), torch.no_grad():
        out = lm.model.generate(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                                **generation_kwargs(lm, max_new_tokens))
    return out[:, batch.input_ids.shape[1]:]


class HooksSteerer:
    name = "hooks"

    def generate(self, lm: LoadedModel, batch: Batch, spec: SteeringSpec, max_new_tokens: int) -> torch.Tensor:
        return _generate_steered(lm, batch, spec, max_new_tokens)

    def logits(self, lm: LoadedModel, batch: Batch, spec: SteeringSpec) -> torch.Tensor:
        with steering_hooks(lm, spec), torch.no_grad():
            out = lm.model(**batch.model_inputs(), use_cache=False)
        return out.logits[:, -1].float()


def packed_rows(lm: LoadedModel, specs: Sequence[SteeringSpec], rows_each: int) -> torch.Tensor:
    """[len(specs) · rows_each, 1, H]: block i holds specs[i]'s m·v. Every spec must steer the same layers."""
    layers = {spec.layers for spec in specs}
    if len(layers) != 1:
        raise ValueError(f"packed specs must steer the same layers, got {sorted(layers)}")
    vectors = torch.stack([spec.vector(lm.dtype, lm.device) for spec in specs])  # [n, H]
    return vectors.repeat_interleave(rows_each, dim=0)[:, None, :]


def repeat_batch(batch: Batch, times: int) -> Batch:
    """The batch stacked `times` over, block-major (block i = rows i·B .. (i+1)·B − 1)."""
    return Batch(batch.input_ids.repeat(times, 1), batch.attention_mask.repeat(times, 1),
                 batch.position_ids.repeat(times, 1), batch.lengths * times)


def generate_with_rows(lm: LoadedModel, batch: Batch, spec: SteeringSpec, rows: torch.Tensor,
                       max_new_tokens: int) -> torch.Tensor:
    """New tokens [B, T] of one greedy call on `spec`'s layers, row i steered by `rows[i]` ([B, 1, H])."""
    return _generate_steered(lm, batch, spec, max_new_tokens, rows)


def generate_packed(lm: LoadedModel, batch: Batch, specs: Sequence[SteeringSpec],
                    max_new_tokens: int) -> list[torch.Tensor]:
    """Greedy continuations of `batch` under each spec, in one generate call: one [B, T] tensor per spec."""
    rows = packed_rows(lm, specs, len(batch))
    new = _generate_steered(lm, repeat_batch(batch, len(specs)), specs[0], max_new_tokens, rows)
    return list(new.split(len(batch), dim=0))
