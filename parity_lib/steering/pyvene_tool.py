"""pyvene steering: an additive intervention on `<layers>[l].output` for each steered layer
(`AdditionIntervention` with a fixed `source_representation`), with
`intervene_on_prompt=True` (pyvene's default, False, skips the prompt and steers only new tokens).

The IntervenableModel is built once per (layers, vector) and reused; every call removes all forward
hooks on the model and building one clears `requires_grad`, both restored as for extraction.
"""

from __future__ import annotations

import torch

from ..batching import Batch
from ..extractors.pyvene_tool import restore_model_state
from ..models import LoadedModel
from .base import generation_kwargs
from .spec import SteeringSpec


def intervenable(lm: LoadedModel, spec: SteeringSpec):
    import pyvene as pv

    vec = spec.vector(lm.dtype, lm.device)
    key = ("pyvene-steer", spec.layers, spec.multiplier, hash(spec.unit.numpy().tobytes()))
    if key not in lm.extras:
        for stale in [k for k in lm.extras if isinstance(k, tuple) and k[0] == "pyvene-steer"]:
            del lm.extras[stale]
        before = {n: p.requires_grad for n, p in lm.model.named_parameters()}
        config = pv.IntervenableConfig(representations=[
            {"component": f"{lm.layers_path}[{layer}].output",
             "intervention": pv.AdditionIntervention(embed_dim=lm.hidden_size, source_representation=vec)}
            for layer in spec.layers])
        lm.extras[key] = pv.IntervenableModel(config, lm.model)
        restore_model_state(lm, before)
    return lm.extras[key]


class PyveneSteerer:
    name = "pyvene"

    def __init__(self, intervene_on_prompt: bool = True) -> None:
        self.intervene_on_prompt = intervene_on_prompt  # False is pyvene's default: a planted bug here

    def generate(self, lm: LoadedModel, batch: Batch, spec: SteeringSpec, max_new_tokens: int) -> torch.Tensor:
        model = intervenable(lm, spec)
        before = {n: p.requires_grad for n, p in lm.model.named_parameters()}
        try:
            with torch.no_grad():
                _, steered = model.generate(
                    base={"input_ids": batch.input_ids, "attention_mask": batch.attention_mask},
                    unit_locations=None, intervene_on_prompt=self.intervene_on_prompt,
                    **generation_kwargs(lm, max_new_tokens))
        finally:
            restore_model_state(lm, before)
        return steered[:, batch.input_ids.shape[1]:]

    def logits(self, lm: LoadedModel, batch: Batch, spec: SteeringSpec) -> torch.Tensor:
        model = intervenable(lm, spec)
        before = {n: p.requires_grad for n, p in lm.model.named_parameters()}
        try:
            with torch.no_grad():
                _, steered = model(base={**batch.model_inputs(), "use_cache": False}, unit_locations=None)
        finally:
            restore_model_state(lm, before)
        return steered.logits[:, -1].float()
