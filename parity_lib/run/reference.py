"""Ground-truth tensors around decoder layer L, captured by a separate mechanism from every tool.

Forward (pre-)hooks on the *submodules* (the next layer's input layernorm, the attention and MLP
contributions) in one full forward; every capture is cloned at once. These are the "known pre/post-LN
values" the protocol compares each tool against.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from parity_lib.errors import UnsupportedModelError
from parity_lib.models.batching import Batch
from parity_lib.models.loading import LoadedModel, forward_hooked
from parity_lib.tools.base import unwrap


@dataclass(frozen=True)
class Reference:
    pre_ln: torch.Tensor  # input of the next input layernorm = output of layer L
    post_ln: torch.Tensor  # output of that layernorm
    resid_in: torch.Tensor  # input of layer L
    attn: torch.Tensor  # what the attention block adds to the residual stream
    mlp: torch.Tensor  # what the MLP block adds


def next_norm(lm: LoadedModel, layer: int) -> nn.Module:
    """The layernorm that reads layer L's output: the next layer's input norm, or the final norm."""
    if layer + 1 < lm.n_layers:
        block = lm.layers[layer + 1]
        for name in ("input_layernorm", "ln_1", "attention_norm"):
            if hasattr(block, name):
                return getattr(block, name)
    else:
        base = lm.model.get_submodule(lm.layers_path.rsplit(".", 1)[0])
        for name in ("norm", "final_layernorm", "ln_f"):
            if hasattr(base, name):
                return getattr(base, name)
    raise UnsupportedModelError(f"{lm.spec.name}: cannot find the layernorm that follows layer {layer}")


def contributions(block: nn.Module) -> tuple[nn.Module, nn.Module]:
    """Modules whose outputs are added to the residual stream. Gemma2 normalises each branch
    (post_attention_layernorm / post_feedforward_layernorm) *before* the add; Llama-style blocks add
    the raw self_attn / mlp outputs."""
    if hasattr(block, "post_feedforward_layernorm"):
        return block.post_attention_layernorm, block.post_feedforward_layernorm
    attn = getattr(block, "self_attn", None)
    mlp = getattr(block, "mlp", None)
    if attn is None or mlp is None:
        raise UnsupportedModelError(f"{type(block).__name__}: no self_attn/mlp submodules to check timing")
    return attn, mlp


def capture_reference(lm: LoadedModel, batch: Batch, layer: int) -> Reference:
    store: dict[str, torch.Tensor] = {}

    def save(key: str) -> Callable:
        def hook(module, args, output):
            store[key] = unwrap(output).detach().clone()
        return hook

    def save_input(key: str) -> Callable:
        def hook(module, args, kwargs):
            store[key] = (args[0] if args else kwargs["hidden_states"]).detach().clone()
        return hook

    block = lm.layers[layer]
    attn, mlp = contributions(block)
    norm = next_norm(lm, layer)
    handles = [norm.register_forward_pre_hook(save_input("pre_ln"), with_kwargs=True),
               norm.register_forward_hook(save("post_ln")),
               block.register_forward_pre_hook(save_input("resid_in"), with_kwargs=True),
               attn.register_forward_hook(save("attn")),
               mlp.register_forward_hook(save("mlp"))]
    forward_hooked(lm, batch, handles)
    return Reference(**store)
