"""NNsight, the whole tool: its extractor and its steerer.

**Extraction.** NNsight: wrap the model once with `nnsight.NNsight`, trace, save `layers[L].output`, stop.

`NNsight(model)` permanently wraps every submodule's forward, so the wrapper is built once per loaded
model and reused (kept in `LoadedModel.extras`). The tokenizer is never handed to nnsight:
`TransformersModel` would set its padding side and pad token. `tracer.stop()` after the save skips
the layers after L and stays exact (measured: bitwise equal to the full forward).

**Steering.** NNsight steering: `output[:] += m·v` on each steered layer inside `tracer.iter[:N]`.

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

from parity_lib.models.batching import Batch
from parity_lib.models.loading import LoadedModel
from parity_lib.tools.base import Activations, finish, generation_kwargs, unwrap
from parity_lib.tools.spec import SteeringSpec


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
