"""Deliberately wrong extractors, one per silent wrong-tensor trap of these tools. Test fixtures only: never
offered as tools. Each names the checklist item that must catch it."""

from __future__ import annotations

from dataclasses import replace

import torch

from parity_lib.models.batching import Batch
from parity_lib.models.loading import LoadedModel
from parity_lib.run.compiled import CompiledHooksSteerer
from parity_lib.run.reference import next_norm
from parity_lib.tools.base import Activations, finish, unwrap


class _HookBase:
    """Captures with a forward hook on layer L through `grab`, running the whole forward."""

    name = "planted"

    def grab(self, output: torch.Tensor) -> torch.Tensor:
        return output.detach().clone()

    def target(self, lm: LoadedModel, layer: int):
        return lm.layers[layer]

    def run(self, lm: LoadedModel, batch: Batch) -> None:
        with torch.no_grad():
            lm.model(**batch.model_inputs(), use_cache=False)

    def capture(self, lm: LoadedModel, batch: Batch, layer: int) -> torch.Tensor:
        store = []
        handle = self.target(lm, layer).register_forward_hook(lambda m, a, o: store.append(self.grab(unwrap(o))))
        try:
            self.run(lm, batch)
        finally:
            handle.remove()
        return store[0]

    def capture_input(self, module, lm: LoadedModel, batch: Batch) -> torch.Tensor:
        """What `module` is called with (its first input), instead of what it returns."""
        store = []
        handle = module.register_forward_pre_hook(
            lambda m, a, k: store.append((a[0] if a else k["hidden_states"]).detach().clone()), with_kwargs=True)
        try:
            self.run(lm, batch)
        finally:
            handle.remove()
        return store[0]

    def extract(self, lm: LoadedModel, batch: Batch, layer: int) -> Activations:
        resid = self.capture(lm, batch, layer)
        if resid.dim() == 2:  # what `out[0]` gives at batch 1: [S, H]; the "last token" of it
            return Activations(resid, resid[-1:].clone())
        return finish(resid, batch, self.name)


class TensorIndexZero(_HookBase):
    name = "planted-out0"
    catches = "shape"

    def grab(self, output):  # tuple-era idiom on a Tensor: drops the batch dim at batch 1
        return output[0].detach().clone()


class LayerInput(_HookBase):
    name = "planted-layer-input"
    catches = "residual_location"

    def capture(self, lm, batch, layer):
        return self.capture_input(lm.layers[layer], lm, batch)


class PostLayerNorm(_HookBase):
    name = "planted-post-ln"
    catches = "residual_location"

    def target(self, lm, layer):
        return next_norm(lm, layer)


class BosPosition(_HookBase):
    name = "planted-bos"
    catches = "token_position"

    def extract(self, lm, batch, layer):
        resid = self.capture(lm, batch, layer)
        first = batch.attention_mask.argmax(-1)
        return Activations(resid, resid[torch.arange(len(batch)), first])


class RightPadding(_HookBase):
    name = "planted-right-pad"
    catches = "token_position"

    def run(self, lm, batch):
        rows = [ids[mask.bool()].tolist() for ids, mask in zip(batch.input_ids, batch.attention_mask)]
        width = batch.input_ids.shape[1]
        pad = int(batch.input_ids[batch.attention_mask == 0][0]) if (batch.attention_mask == 0).any() else 0
        ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows], device=batch.input_ids.device)
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows], device=ids.device)
        with torch.no_grad():
            lm.model(input_ids=ids, attention_mask=mask, use_cache=False)

    def extract(self, lm, batch, layer):
        resid = self.capture(lm, batch, layer)
        return Activations(resid, resid[:, -1])


class RowsShiftedInLargeBatches(_HookBase):
    """Right for the small batches a 3-prompt preflight uses, wrong beyond: chunked bookkeeping that hands
    each row the next row's last token once a batch holds more than 3 prompts."""

    name = "planted-large-batch"
    catches = "token_position"

    def extract(self, lm, batch, layer):
        acts = super().extract(lm, batch, layer)
        if len(batch) <= 3:
            return acts
        return Activations(acts.resid, acts.last.roll(-1, dims=0))


class NoAttentionMask(_HookBase):
    name = "planted-no-mask"
    catches = "token_position"

    def run(self, lm, batch):
        with torch.no_grad():
            lm.model(input_ids=batch.input_ids, use_cache=False)


class BeforeMlpAdd(_HookBase):
    """Captures the stream after the attention add but before the MLP add (the input of the norm that feeds
    the MLP): a hook on the wrong sub-module, off by exactly the MLP's contribution."""

    name = "planted-before-mlp"
    catches = "timing"

    def capture(self, lm, batch, layer):
        block = lm.layers[layer]
        norm = getattr(block, "pre_feedforward_layernorm", None) or block.post_attention_layernorm
        return self.capture_input(norm, lm, batch)


class NoClone(_HookBase):
    name = "planted-no-clone"
    catches = "in_place_safety"

    def grab(self, output):
        return output.detach()


class UpcastFloat64(_HookBase):
    name = "planted-upcast"
    catches = "dtype"

    def grab(self, output):
        return output.detach().to(torch.float64)


class PyveneDefaultCollect:
    """pyvene's `block_output` component with per-row position lists, the documented-looking form."""

    name = "planted-pyvene-block-output"
    catches = "shape"

    def extract(self, lm, batch, layer):
        import pyvene as pv

        from parity_lib.tools.pyvene_tool import restore_model_state

        before = {n: p.requires_grad for n, p in lm.model.named_parameters()}
        config = pv.IntervenableConfig(representations=[
            {"layer": layer, "component": "block_output", "intervention": pv.CollectIntervention()}])
        model = pv.IntervenableModel(config, lm.model)
        positions = list(range(batch.input_ids.shape[1]))
        try:
            with torch.no_grad():
                (_, collected), _ = model(base=batch.model_inputs(),
                                          unit_locations={"base": [positions] * len(batch)})
        finally:
            restore_model_state(lm, before)
        return finish(collected[0], batch, self.name)


PLANTED = [TensorIndexZero, LayerInput, PostLayerNorm, BosPosition, RightPadding, NoAttentionMask,
           NoClone, UpcastFloat64, PyveneDefaultCollect, RowsShiftedInLargeBatches, BeforeMlpAdd]


class NNsightWithoutIter:
    """nnsight steering written without `tracer.iter`: only the prompt forward is edited."""

    name = "planted-nnsight-no-iter"

    def prepare(self, lm):  # an nnsight steerer builds its wrappers before the firing map wraps forwards
        from parity_lib.tools.nnsight_tool import NNsightSteerer

        NNsightSteerer().prepare(lm)

    def generate(self, lm, batch, spec, max_new_tokens):
        from parity_lib.tools.base import generation_kwargs
        from parity_lib.tools.nnsight_tool import envoy_layer, language_model

        tm, vec = language_model(lm), spec.vector(lm.dtype, lm.device)
        with torch.no_grad():
            with tm.generate(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                             **generation_kwargs(lm, max_new_tokens)) as tracer:
                for layer in spec.layers:
                    envoy_layer(tm, lm, layer).output[:] += vec
                result = tracer.result.save()
        return result[:, batch.input_ids.shape[1]:]


class HooksTargetOnly:
    """A hook steerer that ignores the scope and edits layer L alone (mis-scoped)."""

    name = "planted-hooks-target-only"

    def generate(self, lm, batch, spec, max_new_tokens):
        from dataclasses import replace

        from parity_lib.tools.hooks import HooksSteerer

        return HooksSteerer().generate(lm, batch, replace(spec, layers=spec.layers[:1]), max_new_tokens)


def pyvene_skipping_prompt():
    """pyvene's default `intervene_on_prompt=False`: the prompt is never steered."""
    from parity_lib.tools.pyvene_tool import PyveneSteerer

    steerer = PyveneSteerer(intervene_on_prompt=False)
    steerer.name = "planted-pyvene-prompt-skipped"
    return steerer


class _HookSteerer:
    """Generation and next-token logits with whatever forward hooks `hooks(lm, spec)` registers."""

    def hooks(self, lm, spec) -> list:
        raise NotImplementedError

    def _run(self, lm, spec, call):
        handles = self.hooks(lm, spec)
        try:
            with torch.no_grad():
                return call()
        finally:
            for handle in handles:
                handle.remove()

    def generate(self, lm, batch, spec, max_new_tokens):
        from parity_lib.tools.base import generation_kwargs

        out = self._run(lm, spec, lambda: lm.model.generate(
            input_ids=batch.input_ids, attention_mask=batch.attention_mask, **generation_kwargs(lm, max_new_tokens)))
        return out[:, batch.input_ids.shape[1]:]

    def logits(self, lm, batch, spec):
        out = self._run(lm, spec, lambda: lm.model(**batch.model_inputs(), use_cache=False))
        return out.logits[:, -1].float()


class StopsAfterSteps(_HookSteerer):
    """A hook steerer that removes itself after a few forward passes (the prompt and the first tokens):
    a 6-token firing map cannot tell it from a correct one."""

    name = "planted-stops-after-steps"
    steps = 8

    def hooks(self, lm, spec):
        vec, calls = spec.vector(lm.dtype, lm.device), {"n": 0}

        def add(module, args, output):
            if calls["n"] >= self.steps * len(spec.layers):
                return output
            calls["n"] += 1
            return output + vec if isinstance(output, torch.Tensor) else (output[0] + vec, *output[1:])

        return [lm.layers[layer].register_forward_hook(add) for layer in spec.layers]


class ScaledSteerer(_HookSteerer):
    """A hook steerer whose edit is 1.5 × m·v: the same direction at a different effective scale (a tool that,
    say, adds its vector before a norm that the others add after). At one multiplier it can look right and
    another tool broken; only its dose-response curve, shifted by 1.5, shows what it is."""

    name = "planted-scaled-1.5"
    factor = 1.5

    def hooks(self, lm, spec):
        from dataclasses import replace as with_

        vec = with_(spec, multiplier=spec.multiplier * self.factor).vector(lm.dtype, lm.device)

        def add(module, args, output):
            return output + vec if isinstance(output, torch.Tensor) else (output[0] + vec, *output[1:])

        return [lm.layers[layer].register_forward_hook(add) for layer in spec.layers]


class SteersSomeRows(_HookSteerer):
    """A hook steerer that edits only the even rows of the batch (a mask or index mix-up)."""

    name = "planted-some-rows"

    def hooks(self, lm, spec):
        vec = spec.vector(lm.dtype, lm.device)

        def add(module, args, output):
            hidden = output if isinstance(output, torch.Tensor) else output[0]
            edit = torch.zeros_like(hidden)
            edit[::2] = vec
            return hidden + edit if isinstance(output, torch.Tensor) else (hidden + edit, *output[1:])

        return [lm.layers[layer].register_forward_hook(add) for layer in spec.layers]


PLANTED_STEERERS = [NNsightWithoutIter, HooksTargetOnly, pyvene_skipping_prompt, StopsAfterSteps, SteersSomeRows]


class MlpOutput(_HookBase):
    """Hooks the MLP's contribution instead of the residual stream: a different vector entirely."""

    name = "planted-mlp"
    catches = "residual_location"

    def target(self, lm, layer):
        from parity_lib.run.reference import contributions

        return contributions(lm.layers[layer])[1]


class MlpOutputOnGemma(MlpOutput):
    """Wrong on Gemma2 only (correct hooks elsewhere): a model-specific tooling bug."""

    name = "planted-mlp-gemma-only"

    def target(self, lm, layer):
        if "gemma" in type(lm.model).__name__.lower():
            return super().target(lm, layer)
        return lm.layers[layer]


class NeighbourLayerInStudy(_HookBase):
    """Right wherever the preflight and the gate look, wrong in the study: when the study extracts its direction
    it returns layer L+1's output. Its directions are close to the right ones (cosine 0.98-0.998 on the
    organisms), inside the protocol's grey zone: what only the suite's own checks and the first line can catch."""

    name = "planted-neighbour-in-study"

    def target(self, lm, layer):
        import inspect

        in_study = any(frame.function == "extract_direction" for frame in inspect.stack(context=0))
        return lm.layers[min(layer + 1, lm.n_layers - 1)] if in_study else lm.layers[layer]


# Planted compiled steerers: the class of bug a compiled path adds, steering frozen into what was captured.

class StaleVectorCompiled(CompiledHooksSteerer):
    """Writes the steering table on its first call only, as if the vector were a constant of the graph."""

    written = False

    def write_table(self, lm, spec):
        if not self.written:
            super().write_table(lm, spec)
            self.written = True


class LayersFixedAtCaptureCompiled(CompiledHooksSteerer):
    """Steers the layers of the first spec it saw, whatever later specs ask for."""

    layers: tuple[int, ...] = ()

    def write_table(self, lm, spec):
        self.layers = self.layers or spec.layers
        super().write_table(lm, replace(spec, layers=self.layers))


PLANTED_COMPILED = [StaleVectorCompiled, LayersFixedAtCaptureCompiled]


class OutOfMemoryOnGemma:
    """A correct extractor (the hooks one) on a machine whose device runs out of memory on the Gemma2 model: what
    a 24 GB card does to a 9B model. A fault of the machine, never the tool's: the first line must name the
    memory and blame no tool."""

    name = "planted-oom-gemma"

    def extract(self, lm: LoadedModel, batch: Batch, layer: int) -> Activations:
        from parity_lib.tools.hooks import HooksExtractor

        if "gemma" in type(lm.model).__name__.lower():
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total "
                                         "capacity of 22.00 GiB of which 1.20 GiB is free.")
        return HooksExtractor().extract(lm, batch, layer)


def overflowing_model(source: str, target: str, layer: int = 20, scale: float = 1e6) -> str:
    """A copy of a model directory whose layer `layer` writes a residual far past float16's range (65504): its MLP's
    output projection scaled by `scale`. Finite in float32 and bfloat16 (float32's range), NaN/Inf in float16
    from that layer on — Gemma-2's case on a T4 or V100."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
    with torch.no_grad():
        model.model.layers[layer].mlp.down_proj.weight.mul_(scale)
    model.save_pretrained(target)
    AutoTokenizer.from_pretrained(source).save_pretrained(target)
    return target
