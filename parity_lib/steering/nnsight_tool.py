"""NNsight steering: `output[:] += m·v` on each steered layer inside `tracer.iter[:N]`.

Without `iter` only the prompt forward is edited; with `iter[:k]`, k < N, only k forwards are,
silently — the firing map catches both. Generation uses `nnsight.TransformersModel` (plain `NNsight`
has no generate context) built once per model on a *copy* of the tokenizer, because TransformersModel
changes the tokenizer it is given (padding side, pad token).

The generated ids are taken from the wrapped model's own `generate` return value, not from
`tracer.result`: when every row reaches EOS before `max_new_tokens`, nnsight never runs the statements
after an unfinished `iter` loop, so a `tracer.result.save()` placed there is silently skipped.
"""

from __future__ import annotations

import copy
import warnings
from contextlib import contextmanager
from typing import Iterator

import torch

from ..batching import Batch
from ..extractors.base import unwrap
from ..extractors.nnsight_tool import envoy_layer, wrapped
from ..models import LoadedModel
from .base import generation_kwargs
from .spec import SteeringSpec


def language_model(lm: LoadedModel):
    if "nnsight-lm" not in lm.extras:
        import nnsight

        lm.extras["nnsight-lm"] = nnsight.TransformersModel(lm.model, tokenizer=copy.deepcopy(lm.tokenizer))
    return lm.extras["nnsight-lm"]


@contextmanager
def _returned_by_generate(model) -> Iterator[dict]:
    """Keep what `model.generate` returns while nnsight drives it (instance attribute, restored)."""
    box: dict = {}
    inner = model.generate

    def generate(*args, **kwargs):
        box["sequences"] = inner(*args, **kwargs)
        return box["sequences"]

    model.generate = generate
    try:
        yield box
    finally:
        del model.generate


class NNsightSteerer:
    name = "nnsight"

    def prepare(self, lm: LoadedModel) -> None:
        """Build nnsight's wrappers now. nnsight instruments each module's `forward` when it wraps a model;
        built while the firing map's recorder has replaced some forwards, it would take the recorder's for
        the modules' own and, once they are restored, disable its interventions on those modules."""
        language_model(lm)
        wrapped(lm)

    def generate(self, lm: LoadedModel, batch: Batch, spec: SteeringSpec, max_new_tokens: int) -> torch.Tensor:
        tm, vec = language_model(lm), spec.vector(lm.dtype, lm.device)
        with torch.no_grad(), _returned_by_generate(lm.model) as box, warnings.catch_warnings():
            # Once every row hits EOS, the loop's remaining steps never run and nnsight warns once: expected
            # here (steering stops with generation). 0.8.1 says "'...output.i19' was never reached: ...";
            # earlier releases "Execution complete but ...". Only this warning, only inside this call.
            warnings.filterwarnings("ignore", message=r".*' was never reached: the loop asked for a step",
                                    category=UserWarning)
            warnings.filterwarnings("ignore", message="Execution complete but", category=UserWarning)
            with tm.generate(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                             **generation_kwargs(lm, max_new_tokens)) as tracer:
                for _ in tracer.iter[:max_new_tokens]:
                    for layer in spec.layers:
                        unwrap(envoy_layer(tm, lm, layer).output)[:] += vec
        return box["sequences"][:, batch.input_ids.shape[1]:]

    def logits(self, lm: LoadedModel, batch: Batch, spec: SteeringSpec) -> torch.Tensor:
        nm, vec = wrapped(lm), spec.vector(lm.dtype, lm.device)
        with torch.no_grad():
            with nm.trace(**batch.model_inputs(), use_cache=False):
                for layer in spec.layers:
                    unwrap(envoy_layer(nm, lm, layer).output)[:] += vec
                out = nm.output.save()
        return out.logits[:, -1].float()
