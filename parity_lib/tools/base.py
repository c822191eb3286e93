"""What every tool is built on: the Protocols and the helpers an extractor and a steerer share.

**Extraction.** The extractor Protocol and what every extractor returns.

An extractor gets a loaded model, a left-padded batch and a layer index, and returns the residual
stream at the *output* of decoder layer L (the input of layer L+1's input layernorm: pre-LN), as
`[batch, seq, hidden]` in the model's own dtype. Casting to float32 happens later, explicitly, in the
direction math (`directions.py`): an extractor never changes the dtype, so the dtype check can see it.

**Steering.** The Steerer Protocol: greedy generation and next-token logits under a SteeringSpec.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch

from parity_lib.errors import NonFiniteActivationError
from parity_lib.models.batching import Batch, last_real_index
from parity_lib.models.loading import LoadedModel
from parity_lib.tools.spec import SteeringSpec


@dataclass(frozen=True)
class Activations:
    resid: torch.Tensor  # [B, S, H], model dtype, on the model's device
    last: torch.Tensor  # [B, H], the last real token of each row

    @property
    def dtype(self) -> torch.dtype:
        return self.resid.dtype


@runtime_checkable
class Extractor(Protocol):
    name: str

    def extract(self, lm: LoadedModel, batch: Batch, layer: int) -> Activations:
        """Residual stream at the output of decoder layer `layer` for every token of `batch`."""
        ...


class OnePassExtractor:
    """An extractor that reads several layers in one forward (`extract_many`); one layer is the case of one.
    `stop_early`: end the forward once the deepest layer asked for is stored (the rest is not needed)."""

    name = ""

    def __init__(self, stop_early: bool = True) -> None:
        self.stop_early = stop_early

    def extract(self, lm: LoadedModel, batch: Batch, layer: int) -> Activations:
        return self.extract_many(lm, batch, [layer])[layer]

    def extract_many(self, lm: LoadedModel, batch: Batch, layers: list[int]) -> dict[int, Activations]:
        raise NotImplementedError


def extract_layers(extractor: Extractor, lm: LoadedModel, batch: Batch, layers: list[int]) -> dict[int, Activations]:
    """The outputs of several decoder layers: from one forward pass where the extractor offers it
    (`extract_many`, which the built-in tools have), else one pass per layer. The sweep extracts every layer
    it visits this way, and checks the result against the one-layer `extract` at a layer (bitwise)."""
    wanted = sorted(set(layers))
    many = getattr(extractor, "extract_many", None)
    if many is None or not _many_as_deep_as_extract(type(extractor)):
        return {layer: extractor.extract(lm, batch, layer) for layer in wanted}
    got = many(lm, batch, wanted)
    if sorted(got) != wanted:
        raise RuntimeError(f"{extractor.name}: extract_many returned layers {sorted(got)}, asked for {wanted}")
    return got


def _many_as_deep_as_extract(cls: type) -> bool:
    """A subclass that overrides `extract` but inherits `extract_many` (a tool built on the hooks extractor)
    would get its parent's layers from the one-pass path: it is extracted one layer at a time instead."""
    def owner(name: str) -> type | None:
        return next((k for k in cls.__mro__ if name in vars(k)), None)
    many, one = owner("extract_many"), owner("extract")
    return many is not None and (one is None or issubclass(many, one))


def last_logits_only(lm: LoadedModel) -> dict[str, int]:
    """`logits_to_keep=1` where the model takes it: a tool that cannot stop after layer L (pyvene) then skips
    the vocabulary projection of every position but the last (Gemma2: 256k × positions). Layer outputs
    are unchanged: the projection comes after the last decoder layer."""
    import inspect

    return {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(lm.model.forward).parameters else {}


def unwrap(output: object) -> torch.Tensor:
    """Decoder layers return a Tensor in transformers 5 (Qwen2 since 4.54) and a tuple before."""
    return output if isinstance(output, torch.Tensor) else output[0]  # type: ignore[index]


def finish(resid: torch.Tensor, batch: Batch, tool: str) -> Activations:
    """Check the captured tensor and pick each row's last real token."""
    if not torch.isfinite(resid).all():
        bad = int((~torch.isfinite(resid)).sum())
        raise NonFiniteActivationError(
            f"{tool}: the layer output holds {bad} NaN/Inf values of {resid.numel()}; the model "
            f"overflowed in this dtype: rerun with --parity-dtype float32 (or bfloat16 instead of float16)")
    rows = torch.arange(resid.shape[0], device=resid.device)
    return Activations(resid, resid[rows, last_real_index(batch).to(resid.device)])


@runtime_checkable
class Steerer(Protocol):
    """A steerer may also define `prepare(lm)`: build whatever instruments the model's modules (nnsight wraps
    their `forward`s) before the firing map's recorder replaces some of them (`record_firing(steerer=)`)."""

    name: str

    def generate(self, lm: LoadedModel, batch: Batch, spec: SteeringSpec, max_new_tokens: int) -> torch.Tensor:
        """Greedy continuation, [B, ≤max_new_tokens] new token ids (left-padded prompt dropped)."""
        ...

    def logits(self, lm: LoadedModel, batch: Batch, spec: SteeringSpec) -> torch.Tensor:
        """Next-token logits at each row's last position under steering, [B, V] float32."""
        ...


def generation_kwargs(lm: LoadedModel, max_new_tokens: int) -> dict:
    tok = lm.tokenizer
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    return {"max_new_tokens": max_new_tokens, "do_sample": False, "num_beams": 1, "pad_token_id": pad,
            "eos_token_id": tok.eos_token_id, "temperature": None, "top_p": None, "top_k": None}
