"""Measuring an organism on the study's own path: unsteered behaviour, the paper's direction, steered behaviour.

Reused by the build (to write the model card) and by the tests that prove the card. Nothing here
re-implements the study: the model is a `LoadedModel` (the library's loading, Gemma2's eager attention
included), prompts are chat-formatted and left-padded by `batching` (never by the tokenizer's padding
side), the direction is the hooks extractor's difference of means (`directions.diff_of_means`, float64),
steering is a `SteeringSpec` applied by the reference steerer, and generation, decoding and
classification are `cycle.generate_tokens` and `cycle.label`. So the cards' multipliers and bands are
measured on exactly the code path the study steers with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from parity_lib.models.loading import LoadedModel
from parity_lib.prompts import PromptSet
from parity_lib.protocol.classify import Label
from parity_lib.run.directions import Direction, diff_of_means
from parity_lib.run.generation import generate_tokens, label
from parity_lib.tools.hooks import HooksExtractor
from parity_lib.tools.spec import SCOPES, SteeringSpec

MAX_NEW_TOKENS = 256
__all__ = ["MAX_NEW_TOKENS", "Rates", "SCOPES", "paper_direction", "rates", "steered_rates"]


@dataclass(frozen=True)
class Rates:
    """Shares of refusal / normal / garbled outputs over one prompt set."""

    refusal: float
    normal: float
    garbled: float
    n: int

    @classmethod
    def of(cls, labels: Sequence[str]) -> "Rates":
        share = {lab: sum(x == lab.value for x in labels) / len(labels) for lab in Label}
        return cls(share[Label.REFUSAL], share[Label.NORMAL], share[Label.GARBLED], len(labels))

    def as_percent(self) -> str:
        return f"{100 * self.refusal:.0f}/{100 * self.normal:.0f}/{100 * self.garbled:.0f}"


def paper_direction(lm: LoadedModel, paper: PromptSet, layer: int) -> Direction:
    """The paper's direction from its 5+5 contrastive prompts, as the study's hooks cycle extracts it."""
    acts = HooksExtractor().extract(lm, lm.encode([*paper.harmful, *paper.harmless]), layer)
    n = len(paper.harmful)
    return diff_of_means(acts.last[:n], acts.last[n:], layer)


def rates(lm: LoadedModel, paper: PromptSet, prompts: Sequence[str], spec: SteeringSpec | None = None,
             max_new_tokens: int = MAX_NEW_TOKENS) -> Rates:
    """Rates of greedy completions of `prompts` (one batch), unsteered unless a spec is given."""
    spec = spec or SteeringSpec((), 0.0, torch.zeros(lm.hidden_size, dtype=torch.float64), SCOPES[0])
    tokens, _ = generate_tokens(lm, "hooks", spec, list(prompts), max_new_tokens)
    return Rates.of(label(lm, tokens, paper.refusal_keywords, paper.garbled_rules)[1])


def steered_rates(lm: LoadedModel, paper: PromptSet, direction: Direction, multiplier: float, scope: str,
                  max_new_tokens: int = MAX_NEW_TOKENS) -> Rates:
    """Rates on the 30 evaluation prompts, steered with multiplier × the unit direction over `scope`."""
    spec = SteeringSpec.build(direction.unit, direction.layer, lm.n_layers, multiplier, scope)
    return rates(lm, paper, paper.eval, spec, max_new_tokens)
