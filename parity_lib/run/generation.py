"""Greedy generation as the study runs it: sized to the device's memory (`models.memory`), packed blocks of rows
each steered by its own vector, steered logits, and the labels of what came out.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from parity_lib.models import memory
from parity_lib.models.loading import LoadedModel
from parity_lib.protocol.classify import GarbledRules, classify
from parity_lib.run.compiled import reference_generation
from parity_lib.tools.registry import get_steerer
from parity_lib.tools.spec import SteeringSpec

LOGIT_TOP_K = 64


def prompt_width(lm: LoadedModel, prompts: Sequence[str]) -> int:
    """The padded prompt length of `prompts` on this model (its chat template included)."""
    return int(lm.encode(list(prompts)).input_ids.shape[1])


def generate_tokens(lm: LoadedModel, steerer_name: str, spec: SteeringSpec, prompts: Sequence[str],
                    max_new_tokens: int, batch_size: int = 0,
                    generation: str = "eager") -> tuple[list[list[int]], dict[str, Any]]:
    """Greedy continuations of chat-formatted `prompts` under `spec` (up to and including EOS), in as many calls
    as the device's memory needs (`memory.plan`; `batch_size` caps the prompts per call), and how the generation
    ran (the reference steerer may run compiled once proven: `steering/compiled.py`). The study and the
    organisms' measurement both generate here."""
    steerer = get_steerer(steerer_name)
    how: dict[str, Any] = {"path": "eager (dynamic cache)", "tried": False, "proof": f"{steerer_name}'s own steering"}
    plan = memory.plan(lm, len(prompts), prompt_width(lm, prompts), max_new_tokens, at_most=batch_size)

    def call(chunk: Sequence[str]) -> list[list[int]]:
        nonlocal how
        batch = lm.encode(list(chunk))
        generator = steerer
        if steerer_name == "hooks":
            generator, how = reference_generation(lm, batch, spec, max_new_tokens, generation)
        out = generator.generate(lm, batch, spec, max_new_tokens)
        return [_strip(row.tolist(), lm.tokenizer) for row in out]

    tokens, calls = memory.in_calls(list(prompts), plan.rows_per_call, call, f"{lm.spec.name}: generating",
                                    plan.row_bytes, str(lm.device))
    return tokens, {**how, "plan": {**plan.to_dict(), "calls_made": calls}}


def generate_packed_tokens(lm: LoadedModel, specs: Sequence[SteeringSpec], prompts: Sequence[str],
                           max_new_tokens: int, batch_size: int = 0,
                           firing: bool = False) -> tuple[list[list[list[int]]], dict[str, Any]]:
    """`generate_tokens` through the reference steerer for several specs at once: the prompts stacked once per
    spec (block-major), each row steered by its own spec's m·v, in as many calls as the plan needs (one when
    everything fits; `batch_size` caps the prompts per spec and call). One list of continuations per spec,
    and the plan it ran under (with the calls it made: more than planned after an out-of-memory)."""
    from parity_lib.tools.hooks import generate_with_rows

    rows = [(s, p) for s in range(len(specs)) for p in range(len(prompts))]
    at_most = batch_size * len(specs) if batch_size else 0
    plan = memory.plan(lm, len(rows), prompt_width(lm, prompts), max_new_tokens, firing=firing, at_most=at_most)
    vectors = [spec.vector(lm.dtype, lm.device) for spec in specs]

    def call(chunk: Sequence[tuple[int, int]]) -> list[list[int]]:
        batch = lm.encode([prompts[p] for _, p in chunk])
        table = torch.stack([vectors[s] for s, _ in chunk])[:, None, :]
        out = generate_with_rows(lm, batch, specs[0], table, max_new_tokens)
        return [_strip(row.tolist(), lm.tokenizer) for row in out]

    flat, calls = memory.in_calls(rows, plan.rows_per_call, call, f"{lm.spec.name}: {len(specs)} packed blocks",
                                  plan.row_bytes, str(lm.device))
    n = len(prompts)
    return [flat[i * n:(i + 1) * n] for i in range(len(specs))], {**plan.to_dict(), "calls_made": calls}


def steered_logits_top(lm: LoadedModel, steerer_name: str, spec: SteeringSpec,
                       prompts: Sequence[str]) -> dict[str, Any]:
    """Top next-token logits of every prompt under `spec` (one forward, split as the device's memory needs)."""
    steerer = get_steerer(steerer_name)
    plan = memory.plan(lm, len(prompts), prompt_width(lm, prompts), 0)
    if plan.calls == 1:
        logits = steerer.logits(lm, lm.encode(list(prompts)), spec)
    else:
        parts, _ = memory.in_calls(list(prompts), plan.rows_per_call,
                                   lambda chunk: [steerer.logits(lm, lm.encode(list(chunk)), spec)],
                                   f"{lm.spec.name}: steered logits", plan.row_bytes, str(lm.device))
        logits = torch.cat(parts)
    if not torch.isfinite(logits).all() and lm.dtype == torch.float16:
        from parity_lib.errors import ModelOverflowError

        raise ModelOverflowError(
            f"FLOAT16 OVERFLOW on {lm.spec.name} under steering (×{spec.multiplier:g} from layer {spec.layers[0]}): "
            f"the steered logits are NaN/Inf; rerun with --parity-dtype bfloat16 or float32")
    return _top(logits)


def _top(logits: torch.Tensor) -> dict[str, Any]:
    k = min(LOGIT_TOP_K, logits.shape[-1])
    top = logits.topk(k, dim=-1)
    return {"ids": top.indices.tolist(), "values": top.values.tolist(), "k": k}


def label(lm: LoadedModel, tokens: Sequence[Sequence[int]], keywords: Sequence[str],
          rules: GarbledRules) -> tuple[list[str], list[str]]:
    """Decoded texts and their classification labels (refusal / garbled / normal)."""
    texts = [lm.tokenizer.decode(t, skip_special_tokens=True) for t in tokens]
    return texts, [classify(t, keywords, rules).value for t in texts]


def _strip(row: list[int], tokenizer) -> list[int]:
    """Drop padding after EOS: the generated continuation up to and including the first EOS."""
    eos = tokenizer.eos_token_id
    return row[: row.index(eos) + 1] if eos is not None and eos in row else row
