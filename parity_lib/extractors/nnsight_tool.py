"""NNsight: wrap the model once with `nnsight.NNsight`, trace, save `layers[L].output`, stop.

`NNsight(model)` permanently wraps every submodule's forward, so the wrapper is built once per loaded
model and reused (kept in `LoadedModel.extras`). The tokenizer is never handed to nnsight:
`TransformersModel` would set its padding side and pad token. `tracer.stop()` after the save skips
the layers after L and stays exact (measured: bitwise equal to the full forward).
"""

from __future__ import annotations

import torch

from ..batching import Batch
from ..models import LoadedModel
from .base import Activations, finish, unwrap


def wrapped(lm: LoadedModel):
    if "nnsight" not in lm.extras:
        import nnsight

        lm.extras["nnsight"] = nnsight.NNsight(lm.model)
    return lm.extras["nnsight"]


def envoy_layer(nm, lm: LoadedModel, layer: int):
    """The Envoy of decoder layer `layer`, found by the same dotted path as the torch module."""
    node = nm
    for part in lm.layers_path.split("."):
        node = getattr(node, part)
    return node[layer]


class NNsightExtractor:
    name = "nnsight"

    def extract(self, lm: LoadedModel, batch: Batch, layer: int) -> Activations:
        return self.extract_many(lm, batch, [layer])[layer]

    def extract_many(self, lm: LoadedModel, batch: Batch, layers: list[int]) -> dict[int, Activations]:
        """One trace saving each layer's output, in execution order (nnsight requires it), stopped after the last."""
        nm = wrapped(lm)
        saved = {}
        with torch.no_grad():
            with nm.trace(**batch.model_inputs(), use_cache=False) as tracer:
                for layer in sorted(layers):
                    saved[layer] = envoy_layer(nm, lm, layer).output.save()
                tracer.stop()
        return {layer: finish(unwrap(out).detach().clone(), batch, self.name) for layer, out in saved.items()}
