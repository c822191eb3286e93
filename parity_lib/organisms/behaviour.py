"""Measuring an organism: unsteered behaviour, the paper's direction, and steered behaviour.

A plain library module, reused by the build (to write the model card) and by the study tests (to
prove the card). It follows the paper's protocol: direction = difference of means (harmful -
harmless) of the decoder layer's *output* at the last real token of the chat-templated contrastive
prompts, in float32; steering adds multiplier x the *unit* direction at every position of every
forward, on the target layer alone or on it and every later layer; greedy decoding.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
from torch import Tensor
from transformers import PreTrainedModel, PreTrainedTokenizerFast

from parity_lib.classify import Label, classify
from parity_lib.organisms.paper import PaperData
from parity_lib.organisms.tokenizer import render_prompt

SCOPES = ("target", "target_to_final")
MAX_NEW_TOKENS = 256


@dataclass(frozen=True)
class Rates:
    """Shares of refusal / normal / garbled outputs over one prompt set."""

    refusal: float
    normal: float
    garbled: float
    n: int

    @classmethod
    def of(cls, texts: Sequence[str], paper: PaperData) -> "Rates":
        labels = [classify(t, paper.keywords, paper.rules) for t in texts]
        share = {lab: sum(x == lab for x in labels) / len(labels) for lab in Label}
        return cls(share[Label.REFUSAL], share[Label.NORMAL], share[Label.GARBLED], len(labels))

    def as_percent(self) -> str:
        return f"{100 * self.refusal:.0f}/{100 * self.normal:.0f}/{100 * self.garbled:.0f}"


def decoder_layers(model: PreTrainedModel) -> torch.nn.ModuleList:
    """The list of decoder blocks (Qwen2 and Gemma2 both keep it at `model.model.layers`)."""
    return model.model.layers


def scope_layers(model: PreTrainedModel, layer: int, scope: str) -> range:
    """Layers a steering scope touches: the target alone, or target through the last layer."""
    if scope not in SCOPES:
        raise ValueError(f"scope {scope!r} is not one of {SCOPES}")
    return range(layer, layer + 1) if scope == "target" else range(layer, len(decoder_layers(model)))


def encode_prompts(tok: PreTrainedTokenizerFast, prompts: Sequence[str]) -> dict[str, Tensor]:
    """Chat-templated, left-padded batch with its attention mask."""
    texts = [render_prompt(tok, p) for p in prompts]
    return tok(texts, padding=True, add_special_tokens=False, return_tensors="pt")


@torch.no_grad()
def last_token_activations(model: PreTrainedModel, tok: PreTrainedTokenizerFast,
                           prompts: Sequence[str], layer: int) -> Tensor:
    """Output of decoder `layer` at each prompt's last token, float32, shape [N, H]."""
    batch = encode_prompts(tok, prompts)
    mask = batch["attention_mask"]
    # Left padding shifts positions unless they are derived from the mask.
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
    captured: list[Tensor] = []

    def grab(module: torch.nn.Module, args: tuple, output: Tensor | tuple) -> None:
        hidden = output if isinstance(output, Tensor) else output[0]
        captured.append(hidden[:, -1].detach().float().clone())

    handle = decoder_layers(model)[layer].register_forward_hook(grab)
    try:
        model(input_ids=batch["input_ids"], attention_mask=mask, position_ids=position_ids)
    finally:
        handle.remove()
    return captured[0]


def diff_of_means(model: PreTrainedModel, tok: PreTrainedTokenizerFast, harmful: Sequence[str],
                  harmless: Sequence[str], layer: int) -> Tensor:
    """Raw (un-normalised) difference of means, harmful minus harmless, float32 [H]."""
    acts = last_token_activations(model, tok, list(harmful) + list(harmless), layer)
    return acts[: len(harmful)].mean(0) - acts[len(harmful):].mean(0)


def paper_direction(model: PreTrainedModel, tok: PreTrainedTokenizerFast, paper: PaperData,
                    layer: int) -> Tensor:
    """The paper's direction from its 5+5 contrastive prompts (raw; normalise before steering)."""
    return diff_of_means(model, tok, paper.harmful, paper.harmless, layer)


@contextmanager
def steering(model: PreTrainedModel, vector: Tensor, layers: range) -> Iterator[None]:
    """Add `vector` to the output of each layer in `layers`, every position, every forward."""
    def add(module: torch.nn.Module, args: tuple, output: Tensor | tuple) -> Tensor | tuple:
        hidden = output if isinstance(output, Tensor) else output[0]
        # Cast first: an fp32 vector would promote a bf16 layer output and break the next layer.
        hidden = hidden + vector.to(dtype=hidden.dtype, device=hidden.device)
        return hidden if isinstance(output, Tensor) else (hidden, *output[1:])

    handles = [decoder_layers(model)[i].register_forward_hook(add) for i in layers]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@torch.no_grad()
def generate(model: PreTrainedModel, tok: PreTrainedTokenizerFast, prompts: Sequence[str],
             max_new_tokens: int = MAX_NEW_TOKENS) -> list[str]:
    """Greedy completions of chat-templated prompts, one left-padded batch."""
    batch = encode_prompts(tok, prompts)
    out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                         pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    return tok.batch_decode(out[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)


def steered_generate(model: PreTrainedModel, tok: PreTrainedTokenizerFast, prompts: Sequence[str],
                     unit_direction: Tensor, multiplier: float, layers: range,
                     max_new_tokens: int = MAX_NEW_TOKENS) -> list[str]:
    """Greedy completions with multiplier x unit direction added on `layers`."""
    with steering(model, multiplier * unit_direction, layers):
        return generate(model, tok, prompts, max_new_tokens)


def steered_rates(model: PreTrainedModel, tok: PreTrainedTokenizerFast, paper: PaperData,
                  unit_direction: Tensor, multiplier: float, layers: range,
                  max_new_tokens: int = MAX_NEW_TOKENS) -> Rates:
    """Label shares of the 30 evaluation prompts under one steering setting."""
    texts = steered_generate(model, tok, paper.eval, unit_direction, multiplier, layers, max_new_tokens)
    return Rates.of(texts, paper)


def unit(vector: Tensor) -> Tensor:
    """L2-normalised copy: the study steers with multiplier x unit direction."""
    return vector / vector.norm()
