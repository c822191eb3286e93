"""TransformerLens (4.3): capture and steer at `blocks.{L}.hook_resid_post` through a `TransformerBridge`.

The bridge replaces submodules of the model it wraps (LinearBridge, AttentionBridge, …) and computes
attention itself, eagerly. Wrapping the suite's own model would change it under the other tools, so the
bridge wraps a *structural copy* whose parameters and buffers are the suite's tensors (the same objects,
not a second load): one set of weights, two module trees. It is built once per loaded model, offline,
from the model's local directory (`boot_transformers(dir, hf_model=copy)`; a seeded random model, which has
no directory, through `build_bridge_from_module`), and kept in `lm.extras`.

Measured on the shipped organisms (float32, CPU, transformers 5.24): `hook_resid_post` is bitwise equal to
HF's layer output when HF runs eager attention too; against HF's sdpa (Qwen2's default) it differs by the
kernels' rounding on real tokens and at padded positions by much more (eager and sdpa treat an all-masked
query row differently). The tool therefore declares `attention="eager"`: the suite loads the model eager
when transformer_lens is among the tools, and the report says so.

Generation runs through the bridge's own `generate` with `use_past_kv_cache=False`. Measured with TL 4.3.0
and transformers 5.24 on both organisms: with its KV cache (TL's default) greedy generation leaves HF's
tokens from the second new token on, unsteered and on a bridge booted on its own (not only over the copy);
without the cache it gives HF's tokens. `tests/unit/test_transformer_lens.py` keeps that visible.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import torch

from parity_lib.models.batching import Batch
from parity_lib.models.loading import LoadedModel
from parity_lib.tools.base import Activations, finish
from parity_lib.tools.spec import SteeringSpec

KEY = "transformer_lens"


def resid_post(layer: int) -> str:
    return f"blocks.{layer}.hook_resid_post"


def bridge(lm: LoadedModel):
    """The bridge over a copy of the module tree that shares every parameter and buffer with `lm.model`."""
    if KEY not in lm.extras:
        from transformer_lens.model_bridge import TransformerBridge

        shared = {id(t): t for t in (*lm.model.parameters(), *lm.model.buffers())}
        tree, tokenizer = copy.deepcopy(lm.model, shared), copy.deepcopy(lm.tokenizer)
        if Path(lm.spec.source).is_dir():
            lm.extras[KEY] = TransformerBridge.boot_transformers(
                lm.spec.source, hf_model=tree, tokenizer=tokenizer, dtype=lm.dtype, device=str(lm.device),
                trust_remote_code=False)
        else:  # a seeded random model has no directory to boot from, nor a hub tokenizer TL could rebuild: the
            # same bridge from the module, without a tokenizer (the tool hands the bridge token ids, never text)
            from transformer_lens.model_bridge.sources import build_bridge_from_module
            from transformer_lens.utilities.attn_implementation import force_eager_attention

            force_eager_attention(tree)  # what boot_transformers does to a pre-loaded model
            lm.extras[KEY] = build_bridge_from_module(tree, type(tree).__name__, hf_config=tree.config,
                                                      model_name=lm.spec.name)
    return lm.extras[KEY]


class TransformerLensExtractor:
    name = "transformer_lens"

    def extract(self, lm: LoadedModel, batch: Batch, layer: int) -> Activations:
        return self.extract_many(lm, batch, [layer])[layer]

    def extract_many(self, lm: LoadedModel, batch: Batch, layers: list[int]) -> dict[int, Activations]:
        """One hook per layer's `hook_resid_post`, one forward stopped after the deepest."""
        store: dict[int, torch.Tensor] = {}

        def grab_for(layer: int):
            def grab(resid, hook):
                store[layer] = resid.detach().clone()
            return grab

        with torch.no_grad():
            bridge(lm).run_with_hooks(batch.input_ids, attention_mask=batch.attention_mask,
                                      fwd_hooks=[(resid_post(layer), grab_for(layer)) for layer in layers],
                                      stop_at_layer=max(layers) + 1)
        return {layer: finish(store[layer], batch, self.name) for layer in layers}


@contextmanager
def _steering(lm: LoadedModel, spec: SteeringSpec) -> Iterator[Any]:
    vec = spec.vector(lm.dtype, lm.device)

    def add(resid, hook):
        return resid + vec

    br = bridge(lm)
    with br.hooks(fwd_hooks=[(resid_post(layer), add) for layer in spec.layers]):
        yield br


class TransformerLensSteerer:
    name = "transformer_lens"
    # the firing map wraps the suite model's HF submodules; this steerer runs the bridge's own module tree
    unobserved = ("transformer_lens steers its bridge, a module tree of its own over the same weights: the firing "
                  "map watches the suite model's HF submodules, and the bridge's components (which compute "
                  "attention themselves) cannot be watched that way; its steering is compared with the reference "
                  "steerer's by logits and tokens instead")

    def generate(self, lm: LoadedModel, batch: Batch, spec: SteeringSpec, max_new_tokens: int) -> torch.Tensor:
        eos = lm.tokenizer.eos_token_id
        with _steering(lm, spec) as br, torch.no_grad():
            out = br.generate(batch.input_ids, attention_mask=batch.attention_mask, max_new_tokens=max_new_tokens,
                              do_sample=False, stop_at_eos=eos is not None, eos_token_id=eos,
                              use_past_kv_cache=False, return_type="tokens", verbose=False)
        return out[:, batch.input_ids.shape[1]:]

    def logits(self, lm: LoadedModel, batch: Batch, spec: SteeringSpec) -> torch.Tensor:
        with _steering(lm, spec) as br, torch.no_grad():
            out = br(batch.input_ids, attention_mask=batch.attention_mask)
        return out[:, -1].float()
