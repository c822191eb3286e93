"""pyvene: a `CollectIntervention` on the custom component path `<layers>[L].output`.

The default `block_output` component collects over positions and silently reshapes to heads when the
sequence length divides the hidden size; the explicit module path returns the layer output as is.
Side effects handled here: every pyvene call removes *all* forward hooks on the model (including the
lazily installed `output_hidden_states` hooks, whose flag is reset so transformers reinstalls them),
and building an `IntervenableModel` sets `requires_grad=False` on every parameter (restored).
"""

from __future__ import annotations

import torch

from ..batching import Batch
from ..models import LoadedModel
from .base import Activations, finish, last_logits_only, unwrap


def restore_model_state(lm: LoadedModel, requires_grad: dict[str, bool]) -> None:
    for name, param in lm.model.named_parameters():
        param.requires_grad_(requires_grad.get(name, param.requires_grad))
    for module in lm.model.modules():
        if hasattr(module, "_output_capturing_hooks_installed"):
            module._output_capturing_hooks_installed = False


def intervenable(lm: LoadedModel, layer: int, intervention) -> object:
    import pyvene as pv

    before = {n: p.requires_grad for n, p in lm.model.named_parameters()}
    config = pv.IntervenableConfig(representations=[
        {"component": f"{lm.layers_path}[{layer}].output", "intervention": intervention}])
    built = pv.IntervenableModel(config, lm.model)
    restore_model_state(lm, before)
    return built


class PyveneExtractor:
    name = "pyvene"

    def extract(self, lm: LoadedModel, batch: Batch, layer: int) -> Activations:
        import pyvene as pv

        key = ("pyvene-collect", layer)
        if key not in lm.extras:
            lm.extras[key] = intervenable(lm, layer, pv.CollectIntervention())
        model = lm.extras[key]
        before = {n: p.requires_grad for n, p in lm.model.named_parameters()}
        try:
            with torch.no_grad():
                (_, collected), _ = model(base={**batch.model_inputs(), "use_cache": False, **last_logits_only(lm)},
                                          unit_locations=None)
        finally:
            restore_model_state(lm, before)
        return finish(unwrap(collected[0]).detach().clone(), batch, self.name)
