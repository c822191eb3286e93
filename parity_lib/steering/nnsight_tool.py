"""NNsight steering: `output[:] += m·v` on each steered layer inside `tracer.iter[:N]`.

Without `iter` only the prompt forward is edited; with `iter[:k]`, k < N, only k forwards are,
silently — the firing map catches both. Generation uses `nnsight.TransformersModel` (plain `NNsight`
has no generate context) built once per model on a *copy* of the tokenizer, because TransformersModel
changes the tokenizer it is given (padding side, pad token).
"""

from __future__ import annotations

import copy

import torch

from ..batching import Batch
from ..extractors.nnsight_tool import envoy_layer, wrapped
from ..models import LoadedModel
from .base import generation_kwargs
from .spec import SteeringSpec


def language_model(lm: LoadedModel):
    if "nnsight-lm" not in lm.extras:
        import nnsight

        lm.extras["nnsight-lm"] = nnsight.TransformersModel(lm.model, tokenizer=copy.deepcopy(lm.tokenizer))
    return lm.extras["nnsight-lm"]


class NNsightSteerer:
    name = "nnsight"

    def generate(self, lm: LoadedModel, batch: Batch, spec: SteeringSpec, max_new_tokens: int) -> torch.Tensor:
        tm, vec = language_model(lm), spec.vector(lm.dtype, lm.device)
        with torch.no_grad():
            with tm.generate(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                             **generation_kwargs(lm, max_new_tokens)) as tracer:
                for _ in tracer.iter[:max_new_tokens]:
                    for layer in spec.layers:
                        envoy_layer(tm, lm, layer).output[:] += vec
                result = tracer.result.save()
        return result[:, batch.input_ids.shape[1]:]

    def logits(self, lm: LoadedModel, batch: Batch, spec: SteeringSpec) -> torch.Tensor:
        nm, vec = wrapped(lm), spec.vector(lm.dtype, lm.device)
        with torch.no_grad():
            with nm.trace(**batch.model_inputs(), use_cache=False):
                for layer in spec.layers:
                    envoy_layer(nm, lm, layer).output[:] += vec
                out = nm.output.save()
        return out.logits[:, -1].float()
