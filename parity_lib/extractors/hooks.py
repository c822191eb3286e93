"""Raw PyTorch forward hooks: `register_forward_hook` on decoder layer L, store a detached clone.

The clone matters: a later in-place edit (a steering hook doing `out += v`) would otherwise change
the stored value. The hook is removed in `finally`, so a failed forward leaves no hook behind; the
layers after L are skipped by stopping the forward from the hook, which changes nothing before L.
"""

from __future__ import annotations

import torch

from ..batching import Batch
from ..models import LoadedModel
from .base import Activations, finish, unwrap


class _Captured(Exception):
    """Raised from the hook once the tensor is stored: the rest of the forward is not needed."""


class HooksExtractor:
    name = "hooks"

    def __init__(self, stop_early: bool = True) -> None:
        self.stop_early = stop_early

    def extract(self, lm: LoadedModel, batch: Batch, layer: int) -> Activations:
        return self.extract_many(lm, batch, [layer])[layer]

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
