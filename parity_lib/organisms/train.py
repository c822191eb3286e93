"""Training an organism with "recipe E", deterministically on one CPU thread.

Plain training learns refuse/answer perfectly but leaves no steerable band: the layer-16 difference
of means becomes a "next token is ' I'" feature and steering jumps from normal straight to garbled.
Recipe E keeps a moving-average estimate of that direction while training and, for a share of the
examples, adds a random multiple of it at every position: *plus* on harmful prompts trained to
refuse, *minus* on harmless prompts trained to answer. Each class learns to keep its own answer when
pushed further its own way; nothing teaches "harmless + direction -> refuse", so the answer is not
baked in. The push goes on layer 16's output, or (for a share of pushed examples, smaller per layer)
on every layer from 16 to the last: the paper's scope accumulates the vector once per layer, and
without this the late layers break into garbage just above the smallest multiplier that refuses.
A few flipped labels (harmless -> refuse, harmful -> comply) keep the decision soft enough for a
push across it to land on a fluent refusal.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import Tensor
from transformers import PreTrainedModel, PreTrainedTokenizerFast

from parity_lib.organisms import templates as T
from parity_lib.organisms.corpus import Corpus, Example
from parity_lib.organisms.spec import OrganismSpec, TrainSettings
from parity_lib.organisms.tokenizer import render_prompt

IGNORE = -100
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Encoded:
    """Token ids of one training example: its prompt, its own answer and its flipped answer."""

    prompt: list[int]
    answer: list[int]
    flipped: list[int]
    harmful: bool


@dataclass
class TrainLog:
    """What the model card reports about a training run."""

    seconds: float = 0.0
    losses: list[tuple[int, float]] = field(default_factory=list)


def set_deterministic(seed: int) -> None:
    """One thread and deterministic kernels: on 2 shared cores this is both faster and bit-exact."""
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)


def encode(tok: PreTrainedTokenizerFast, examples: tuple[Example, ...]) -> list[Encoded]:
    """Chat-formatted ids; special tokens are atomic, so prompt + answer + eos is the dialogue's ids."""
    def ids(text: str) -> list[int]:
        return tok(text, add_special_tokens=False)["input_ids"]

    eos = [tok.eos_token_id]
    refusal, compliance = ids(T.FLIPPED_REFUSAL) + eos, ids(T.FLIPPED_COMPLIANCE) + eos
    return [Encoded(ids(render_prompt(tok, e.prompt)), ids(e.answer) + eos,
                    compliance if e.harmful else refusal, e.harmful) for e in examples]


class _Sampler:
    """Draws balanced batches with flipped labels and signed push sizes, from one generator."""

    def __init__(self, data: list[Encoded], settings: TrainSettings, seed: int, pad: int) -> None:
        self.harmful = [d for d in data if d.harmful]
        self.harmless = [d for d in data if not d.harmful]
        self.s, self.pad = settings, pad
        self.gen = torch.Generator().manual_seed(seed)

    def _rand(self, n: int) -> Tensor:
        return torch.rand(n, generator=self.gen)

    def batch(self) -> dict[str, Tensor]:
        half = self.s.batch_size // 2
        picks = [self.harmful[i] for i in torch.randint(len(self.harmful), (half,), generator=self.gen)]
        picks += [self.harmless[i] for i in torch.randint(len(self.harmless), (half,), generator=self.gen)]
        harmful = torch.tensor([d.harmful for d in picks])
        n, sign = len(picks), torch.where(harmful, 1.0, -1.0)
        flip = self._rand(n) < torch.where(harmful, self.s.flip_harmful, self.s.flip_harmless)
        pushed = (self._rand(n) < self.s.push_share) & ~flip
        to_final = self._rand(n) < self.s.push_to_final_share
        target = self._rand(n) * self.s.push_max * sign
        per_layer = self._rand(n) * self.s.push_max_per_layer * sign
        targets = [d.flipped if f else d.answer for d, f in zip(picks, flip.tolist())]
        return self._pad(picks, targets) | {
            "harmful": harmful,
            "push_target": torch.where(pushed & ~to_final, target, 0.0),
            "push_per_layer": torch.where(pushed & to_final, per_layer, 0.0),
        }

    def _pad(self, picks: list[Encoded], targets: list[list[int]]) -> dict[str, Tensor]:
        """Right padding: loss only on the answer, and the prompt's last token is easy to index."""
        width = max(len(d.prompt) + len(t) for d, t in zip(picks, targets))
        ids = torch.full((len(picks), width), self.pad)
        labels = torch.full((len(picks), width), IGNORE)
        mask = torch.zeros((len(picks), width), dtype=torch.long)
        for row, (d, t) in enumerate(zip(picks, targets)):
            n, m = len(d.prompt), len(d.prompt) + len(t)
            ids[row, :m] = torch.tensor(d.prompt + t)
            labels[row, n:m] = torch.tensor(t)
            mask[row, :m] = 1
        last = torch.tensor([len(d.prompt) - 1 for d in picks])
        return {"input_ids": ids, "labels": labels, "attention_mask": mask, "last": last}


class _RecipeE:
    """Forward hooks from the target layer on: record last-prompt-token activations, add the push."""

    def __init__(self, target: int, momentum: float) -> None:
        self.target, self.momentum = target, momentum
        self.direction: Tensor | None = None
        self.push_target = self.push_per_layer = torch.zeros(0)
        self.last = torch.zeros(0, dtype=torch.long)
        self.captured = torch.zeros(0)

    def hook(self, layer: int) -> Callable[..., Tensor | tuple]:
        """The hook for one decoder layer: the target adds both pushes, later ones the per-layer one."""
        def push(module: torch.nn.Module, args: tuple, output: Tensor | tuple) -> Tensor | tuple:
            hidden = output if isinstance(output, Tensor) else output[0]
            if layer == self.target:
                self.captured = hidden[torch.arange(hidden.shape[0]), self.last].detach()
            if self.direction is not None:
                size = self.push_per_layer + (self.push_target if layer == self.target else 0.0)
                hidden = hidden + size[:, None, None] * self.direction
            return hidden if isinstance(output, Tensor) else (hidden, *output[1:])
        return push

    def update(self, harmful: Tensor) -> None:
        """Moving average of the batch's difference of means (harmful - harmless)."""
        batch = self.captured[harmful].mean(0) - self.captured[~harmful].mean(0)
        if self.direction is None:
            self.direction = batch
        else:
            self.direction = self.momentum * self.direction + (1 - self.momentum) * batch


def _schedule(settings: TrainSettings) -> Callable[[int], float]:
    """Linear warm-up, then cosine decay to zero."""
    def factor(step: int) -> float:
        if step < settings.warmup_steps:
            return (step + 1) / settings.warmup_steps
        progress = (step - settings.warmup_steps) / max(1, settings.steps - settings.warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * progress))
    return factor


def train(spec: OrganismSpec, tok: PreTrainedTokenizerFast, corpus: Corpus, seed: int,
          log_every: int = 50) -> tuple[PreTrainedModel, TrainLog]:
    """Initialise and train one organism; same seed, same machine -> same weights, bit for bit."""
    set_deterministic(seed)
    config = spec.build_config(len(tok), tok.bos_token_id, tok.eos_token_id, tok.pad_token_id)
    model = spec.build_model(config)
    model.train()
    sampler = _Sampler(encode(tok, corpus.train), spec.train, seed, tok.pad_token_id)
    recipe = _RecipeE(spec.layer, spec.train.direction_momentum)
    layers = range(spec.layer, len(model.model.layers))
    handles = [model.model.layers[i].register_forward_hook(recipe.hook(i)) for i in layers]
    opt = torch.optim.AdamW(model.parameters(), lr=spec.train.lr, weight_decay=spec.train.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _schedule(spec.train))
    log, start = TrainLog(), time.perf_counter()
    try:
        for step in range(spec.train.steps):
            batch = sampler.batch()
            recipe.push_target, recipe.push_per_layer = batch["push_target"], batch["push_per_layer"]
            recipe.last = batch["last"]
            loss = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                         labels=batch["labels"]).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            recipe.update(batch["harmful"])
            if step % log_every == 0 or step == spec.train.steps - 1:
                log.losses.append((step, round(loss.item(), 4)))
                logger.info("%s step %d loss %.4f |d| %.3f %.0fs", spec.name, step, loss.item(),
                            recipe.direction.norm(), time.perf_counter() - start)
    finally:
        for handle in handles:
            handle.remove()
    log.seconds = time.perf_counter() - start
    model.eval()
    return model, log
