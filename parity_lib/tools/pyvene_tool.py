"""pyvene, the whole tool: its extractor and its steerer.

**Extraction.** pyvene: a `CollectIntervention` on the custom component path `<layers>[L].output`.

The default `block_output` component collects over positions and silently reshapes to heads when the
sequence length divides the hidden size; the explicit module path returns the layer output as is.
Side effects handled here: every pyvene call removes *all* forward hooks on the model (including the
lazily installed `output_hidden_states` hooks, whose flag is reset so transformers reinstalls them),
and building an `IntervenableModel` sets `requires_grad=False` on every parameter (restored).

The layers after L cannot change what was collected at L, so the forward stops once pyvene has stored it
(as the hooks and nnsight extractors stop): the collect intervention, which runs inside pyvene's hook after
pyvene's own start-of-call hook cleanup, arms a pre-hook on layer L+1 that takes pyvene's stored
activations and ends the forward. pyvene's `finally` removes that hook with its own. Measured on one H200
(bf16, 10 contrastive prompts): 1.14× (Qwen2-7B shape) / 1.09× (Gemma2-9B shape) a plain batched forward
before, the whole forward run for one layer's output.

**Steering.** pyvene steering: an additive intervention on `<layers>[l].output` for each steered layer
(`AdditionIntervention` with a fixed `source_representation`), with
`intervene_on_prompt=True` (pyvene's default, False, skips the prompt and steers only new tokens).

The IntervenableModel is built once per (layers, vector) and reused; every call removes all forward
hooks on the model and building one clears `requires_grad`, both restored as for extraction.
"""

from __future__ import annotations

import functools

import torch

from parity_lib.models.batching import Batch
from parity_lib.models.loading import LoadedModel
from parity_lib.tools.base import Activations, OnePassExtractor, finish, generation_kwargs, last_logits_only, unwrap
from parity_lib.tools.spec import SteeringSpec


def restore_model_state(lm: LoadedModel, requires_grad: dict[str, bool]) -> None:
    for name, param in lm.model.named_parameters():
        param.requires_grad_(requires_grad.get(name, param.requires_grad))
    for module in lm.model.modules():
        if hasattr(module, "_output_capturing_hooks_installed"):
            module._output_capturing_hooks_installed = False


def intervenable(lm: LoadedModel, layers: list[int], interventions: list) -> object:
    """An IntervenableModel with one intervention per layer, at each layer's output."""
    import pyvene as pv

    before = {n: p.requires_grad for n, p in lm.model.named_parameters()}
    config = pv.IntervenableConfig(representations=[{"component": f"{lm.layers_path}[{layer}].output",
                                                     "intervention": iv} for layer, iv in zip(layers, interventions)])
    built = pv.IntervenableModel(config, lm.model)
    restore_model_state(lm, before)
    return built


class _Collected(Exception):
    """Raised at layer L+1's input once pyvene has stored layer L's output: the rest is not needed."""

    def __init__(self, collected: list) -> None:
        super().__init__("collected")
        self.collected = collected


@functools.cache
def _stopping_collect() -> type:
    """pyvene's `CollectIntervention`, calling its `on_collect` (if set) once it has run. Defined on first use:
    pyvene is imported only when the tool runs."""
    import pyvene as pv

    class StoppingCollect(pv.CollectIntervention):
        on_collect = None

        def forward(self, base, source=None, subspaces=None, **kwargs):
            out = super().forward(base, source, subspaces, **kwargs)
            if self.on_collect is not None:
                self.on_collect()
            return out
    return StoppingCollect


class PyveneExtractor(OnePassExtractor):
    name = "pyvene"

    def extract_many(self, lm: LoadedModel, batch: Batch, layers: list[int]) -> dict[int, Activations]:
        """One collect intervention per layer, one forward; once the deepest has collected, a pre-hook on the
        next layer ends it. Collected tensors come in execution order: ascending layers."""
        layers = sorted(layers)
        key = ("pyvene-collect", tuple(layers))
        if key not in lm.extras:
            interventions = [_stopping_collect()() for _ in layers]
            lm.extras[key] = (intervenable(lm, layers, interventions), interventions)
        model, interventions = lm.extras[key]
        last = layers[-1]
        handles = []

        def stop(module, args):
            raise _Collected([a for stored in model.activations.values() for a in stored])

        def arm_stop() -> None:  # inside the forward, after pyvene removed every hook at the call's start
            if last + 1 < lm.n_layers and not handles:
                handles.append(lm.layers[last + 1].register_forward_pre_hook(stop))

        interventions[-1].on_collect = arm_stop if self.stop_early else None
        before = {n: p.requires_grad for n, p in lm.model.named_parameters()}
        try:
            with torch.no_grad():
                (_, collected), _ = model(base={**batch.model_inputs(), "use_cache": False, **last_logits_only(lm)},
                                          unit_locations=None)
        except _Collected as done:
            collected = done.collected
        finally:
            for handle in handles:
                handle.remove()
            interventions[-1].on_collect = None
            restore_model_state(lm, before)
        if len(collected) != len(layers):
            raise RuntimeError(f"pyvene collected {len(collected)} tensors at layers {layers}, expected {len(layers)}")
        return {layer: finish(unwrap(got).detach().clone(), batch, self.name) for layer, got in zip(layers, collected)}


def steering_intervenable(lm: LoadedModel, spec: SteeringSpec):
    """An IntervenableModel adding the spec's m·v at the output of each of its layers, built once per spec."""
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
        model = steering_intervenable(lm, spec)
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
        model = steering_intervenable(lm, spec)
        before = {n: p.requires_grad for n, p in lm.model.named_parameters()}
        try:
            with torch.no_grad():
                _, steered = model(base={**batch.model_inputs(), "use_cache": False}, unit_locations=None)
        finally:
            restore_model_state(lm, before)
        return steered.logits[:, -1].float()
