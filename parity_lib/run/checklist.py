"""Protocol Section D as functions: one check, one result with the numbers that decided it.

Each check compares what an extractor returns with ground truth from `reference.py` (never with the
extractor itself), so a wrong tool cannot vouch for itself. "Which site / position / timing is this?" is
decided by the nearest hypothesis beyond a measured noise floor (`hypotheses.py`), which holds in every
dtype; the cross-tool check keeps the protocol's own criterion (allclose 1e-5 and bitwise). A check
never raises on a wrong tensor: it returns `passed=False` and a message with the numbers that decided
it; an extractor that crashes fails the check with the exception in the message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch

from parity_lib.models.batching import Batch, from_ids, pad_id
from parity_lib.models.loading import LoadedModel
from parity_lib.prompts import PromptSet
from parity_lib.protocol.hypotheses import Decision, decide, distance, noise_floor, scale_of
from parity_lib.run.compare import Comparison, compare
from parity_lib.run.reference import Reference, capture_reference, next_norm
from parity_lib.tools.base import Activations, Extractor

CROSS_TOOL_ATOL = 1e-5  # the protocol's pre-flight bar, in every dtype


@dataclass(frozen=True)
class CheckResult:
    check: str
    tool: str
    passed: bool
    message: str
    numbers: dict[str, Any] = field(default_factory=dict)


def _run(extractor: Extractor, lm: LoadedModel, batch: Batch, layer: int) -> Activations | str:
    """The extractor's activations, or why it crashed (a failed check). A fault of the machine (out of memory,
    a CUDA error) is not the tool's: it propagates, and the check is *not run* (`faults.py`)."""
    from parity_lib.protocol.faults import classify

    try:
        return extractor.extract(lm, batch, layer)
    except Exception as exc:  # a crashing extractor fails the check; the message keeps the cause
        if classify(exc) is not None:
            raise
        return f"{extractor.name} raised {type(exc).__name__}: {exc}"


def _result(check: str, tool: str, cmp: Comparison, ok: bool, extra: str = "", **numbers) -> CheckResult:
    msg = (f"{check} [{tool}]: {'ok' if ok else 'FAILED'}{': ' + extra if extra else ''}; "
           f"{cmp.message(tool, 'reference')}")
    return CheckResult(check, tool, ok, msg, {"comparison": cmp.to_dict(), **numbers})


def _crash(check: str, tool: str, why: str) -> CheckResult:
    return CheckResult(check, tool, False, f"{check} [{tool}]: FAILED: {why}")


def single(lm: LoadedModel, prompt: str) -> Batch:
    return lm.encode([prompt])


def _floor(lm: LoadedModel, batch: Batch, layer: int, ref: Reference) -> float:
    """The measured noise floor of this batch: the reference forward run again, at least one rounding."""
    return noise_floor(ref.pre_ln, capture_reference(lm, batch, layer).pre_ln, lm.dtype)


def _decided(check: str, tool: str, decision: Decision, extra: str = "", **numbers: Any) -> CheckResult:
    ok = decision.passed
    msg = f"{check} [{tool}]: {'ok' if ok else 'FAILED'}{': ' + extra if extra else ''}; {decision.explain()}"
    return CheckResult(check, tool, ok, msg, {"decision": decision.to_dict(), **numbers})


def residual_location(lm: LoadedModel, ex: Extractor, batch: Batch, layer: int) -> CheckResult:
    """The input of the next layer's input layernorm (pre-LN): nearer to it than to the layernorm's output,
    the layer's input, or the stream before the MLP's add, and within the measured noise floor."""
    got, ref = _run(ex, lm, batch, layer), capture_reference(lm, batch, layer)
    if isinstance(got, str):
        return _crash("residual_location", ex.name, got)
    hypotheses = {"pre-LN residual (layer output)": ref.pre_ln, "post-LN (layernorm output)": ref.post_ln,
                  "layer input": ref.resid_in, "before the MLP add": ref.resid_in + ref.attn}
    decision = decide(got.resid, hypotheses, "pre-LN residual (layer output)", _floor(lm, batch, layer, ref))
    return _decided("residual_location", ex.name, decision)


def shape(lm: LoadedModel, ex: Extractor, batches: Sequence[Batch], layer: int) -> CheckResult:
    """[1, seq, hidden] with seq the tokenized prompt length, for each single-prompt batch."""
    seen = []
    for batch in batches:
        got = _run(ex, lm, batch, layer)
        if isinstance(got, str):
            return _crash("shape", ex.name, got)
        want = (1, batch.input_ids.shape[1], lm.hidden_size)
        seen.append({"got": list(got.resid.shape), "want": list(want)})
        if tuple(got.resid.shape) != want:
            return CheckResult("shape", ex.name, False, f"shape [{ex.name}]: FAILED: got "
                               f"{list(got.resid.shape)}, want {list(want)} (batch, tokenized length, "
                               f"hidden)", {"shapes": seen})
    return CheckResult("shape", ex.name, True, f"shape [{ex.name}]: ok {seen}", {"shapes": seen})


def dtype(lm: LoadedModel, ex: Extractor, batch: Batch, layer: int) -> CheckResult:
    """The model's own dtype: a tool that casts would make the tools disagree on precision."""
    got = _run(ex, lm, batch, layer)
    if isinstance(got, str):
        return _crash("dtype", ex.name, got)
    ok = got.resid.dtype == lm.dtype
    return CheckResult("dtype", ex.name, ok, f"dtype [{ex.name}]: {'ok' if ok else 'FAILED'}: got "
                       f"{got.resid.dtype}, model runs in {lm.dtype}",
                       {"got": str(got.resid.dtype), "want": str(lm.dtype)})


def _position_names(mask_row: torch.Tensor) -> list[str]:
    first = int(mask_row.argmax())
    last = mask_row.shape[0] - 1
    return [f"pad@{p}" if p < first else "first real token (BOS)" if p == first else
            "last real token" if p == last else f"token@{p}" for p in range(last + 1)]


def token_position(lm: LoadedModel, ex: Extractor, batches: Sequence[Sequence[str]] | Sequence[str],
                   layer: int) -> CheckResult:
    """In left-padded batches of unequal lengths (the study's contrastive batch, in both row orders, and a
    smaller one), every row's vector is its own last real token: nearer to it than to any other position of
    that row (BOS and pads included), within the measured noise floor of the same batched forward. The
    difference to the prompt run alone is measured and reported (it is rounding in half precision)."""
    if batches and isinstance(batches[0], str):
        batches = [list(batches)]  # one batch of prompts
    rows_checked, failures, alone_gap = 0, [], 0.0
    for prompts in batches:
        batch = lm.encode(list(prompts))
        got = _run(ex, lm, batch, layer)
        if isinstance(got, str):
            return _crash("token_position", ex.name, got)
        ref = capture_reference(lm, batch, layer)
        floor = _floor(lm, batch, layer, ref)
        if tuple(got.last.shape) != (len(prompts), lm.hidden_size):
            return CheckResult("token_position", ex.name, False, f"token_position [{ex.name}]: FAILED: last-token "
                               f"vectors have shape {list(got.last.shape)}, want [{len(prompts)}, {lm.hidden_size}]")
        for i in range(len(prompts)):
            names = _position_names(batch.attention_mask[i])
            decision = decide(got.last[i], dict(zip(names, ref.pre_ln[i])), "last real token", floor)
            rows_checked += 1
            if not decision.passed:
                failures.append(f"batch of {len(prompts)}, row {i} (length {batch.lengths[i]}): {decision.explain()}")
        if len(prompts) > 1:
            alone = torch.stack([capture_reference(lm, single(lm, p), layer).pre_ln[0, -1] for p in prompts[:3]])
            alone_gap = max(alone_gap, max(distance(ref.pre_ln[i, -1], alone[i], scale_of(alone[i]))
                                           for i in range(len(alone))))
    ok = not failures
    sizes = [len(b) for b in batches]
    msg = (f"token_position [{ex.name}]: {'ok' if ok else 'FAILED'}: {rows_checked} rows in batches of {sizes}; "
           f"reference batch-vs-alone gap {alone_gap:.3g} (rounding of the batched computation in "
           f"{str(lm.dtype).removeprefix('torch.')})" + ("" if ok else "; " + " | ".join(failures[:4])))
    return CheckResult("token_position", ex.name, ok, msg,
                       {"batch_sizes": sizes, "rows": rows_checked, "failures": failures[:20],
                        "batch_vs_alone_gap": alone_gap})


def timing(lm: LoadedModel, ex: Extractor, batch: Batch, layer: int) -> CheckResult:
    """Captured after both residual adds: (resid_in + attention) + MLP, rebuilt in the model's dtype and
    order (bitwise what the layer computes), nearer than the stream after the attention add alone or the
    layer input, within the measured floor. No float64 sum: its cancellation makes a tolerance meaningless."""
    got, ref = _run(ex, lm, batch, layer), capture_reference(lm, batch, layer)
    if isinstance(got, str):
        return _crash("timing", ex.name, got)
    after_attn = ref.resid_in + ref.attn
    hypotheses = {"after attention and MLP adds": after_attn + ref.mlp, "after the attention add only": after_attn,
                  "before both adds (layer input)": ref.resid_in}
    decision = decide(got.resid, hypotheses, "after attention and MLP adds", _floor(lm, batch, layer, ref))
    return _decided("timing", ex.name, decision)


def in_place_safety(lm: LoadedModel, ex: Extractor, batch: Batch, layer: int) -> CheckResult:
    """The captured tensor is a copy: an in-place edit of the residual stream later in the same forward
    (as an in-place steering hook does) must not change it."""
    ref = capture_reference(lm, batch, layer)

    def edit(module, args, kwargs):
        (args[0] if args else kwargs["hidden_states"]).add_(1.0)

    handle = next_norm(lm, layer).register_forward_pre_hook(edit, with_kwargs=True)
    try:
        got = _run(ex, lm, batch, layer)
    finally:
        handle.remove()
    if isinstance(got, str):
        return _crash("in_place_safety", ex.name, got)
    hypotheses = {"value at capture time": ref.pre_ln, "value after the later in-place edit": ref.pre_ln + 1.0}
    decision = decide(got.resid, hypotheses, "value at capture time", _floor(lm, batch, layer, ref))
    return _decided("in_place_safety", ex.name, decision)


def cross_tool(lm: LoadedModel, a: Extractor, b: Extractor, batches: Batch | Sequence[Batch],
               layer: int) -> CheckResult:
    """Raw activations allclose(atol=1e-5) across tools, and bitwise equal (same dtype, same device, same
    computation), on each batch: a single prompt and the study's full contrastive batch."""
    name = f"{a.name}~{b.name}"
    worst: Comparison | None = None
    for batch in [batches] if isinstance(batches, Batch) else list(batches):
        ra, rb = _run(a, lm, batch, layer), _run(b, lm, batch, layer)
        for got in (ra, rb):
            if isinstance(got, str):
                return _crash("cross_tool", name, got)
        cmp = compare(ra.resid, rb.resid, atol=CROSS_TOOL_ATOL)
        if worst is None or not (cmp.close and cmp.bitwise):
            worst = cmp
        if not (cmp.close and cmp.bitwise):
            break
    assert worst is not None
    ok = worst.close and worst.bitwise
    return CheckResult("cross_tool", name, ok, f"cross_tool [{name}]: {'ok' if ok else 'FAILED'} (batch of "
                       f"{worst.shape_a[0] if worst.shape_a else '?'}); {worst.message(a.name, b.name)}",
                       {"comparison": worst.to_dict()})


def isolation(lm: LoadedModel, ex: Extractor, others: Sequence[Extractor], batch: Batch,
              layer: int) -> CheckResult:
    """A tool's result is bitwise unchanged after the other tools ran, and they left no hook behind."""
    before = _run(ex, lm, batch, layer)
    hooks_before = _hook_count(lm)
    grads_before = [p.requires_grad for p in lm.model.parameters()]
    for other in others:
        _run(other, lm, batch, layer)
    after = _run(ex, lm, batch, layer)
    for got in (before, after):
        if isinstance(got, str):
            return _crash("isolation", ex.name, got)
    cmp = compare(after.resid, before.resid, atol=0.0)
    hooks_after = _hook_count(lm)
    grads_ok = grads_before == [p.requires_grad for p in lm.model.parameters()]
    ok = cmp.bitwise and hooks_after == hooks_before and grads_ok
    extra = (f"after {[o.name for o in others]}: forward hooks {hooks_before}->{hooks_after}, "
             f"requires_grad preserved: {grads_ok}")
    return _result("isolation", ex.name, cmp, ok, extra)


def _hook_count(lm: LoadedModel) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in lm.model.modules())


def position_batches(lm: LoadedModel, prompts: PromptSet) -> list[list[str]]:
    """The batches the position and cross-tool checks use: the study's full contrastive batch (harmful then
    harmless, as extracted), the same rows in reverse order, and three eval prompts of unequal lengths."""
    contrastive = [*prompts.harmful, *prompts.harmless]
    return [contrastive, contrastive[::-1], unequal_length_prompts(lm, prompts.eval)]


@dataclass(frozen=True)
class Inputs:
    """What the gate and the checklist feed the checks: one prompt alone, the position batches, and the
    cross-tool batches (that prompt alone and the full contrastive batch)."""

    one: Batch
    position: list[list[str]]
    cross_tool: list[Batch]


def inputs(lm: LoadedModel, prompts: PromptSet) -> Inputs:
    one = single(lm, prompts.harmful[0])
    return Inputs(one, position_batches(lm, prompts), [one, contrastive_batch(lm, prompts)])


def contrastive_batch(lm: LoadedModel, prompts: PromptSet) -> Batch:
    return lm.encode([*prompts.harmful, *prompts.harmless])


def unequal_length_prompts(lm: LoadedModel, prompts: Sequence[str]) -> list[str]:
    """Longest, shortest and a middle prompt by tokenized length: a left-padded batch of unequal rows."""
    by_len = sorted(prompts, key=lambda p: single(lm, p).input_ids.shape[1])
    return [by_len[-1], by_len[0], by_len[len(by_len) // 2]]


def divisible_length_batch(lm: LoadedModel) -> Batch:
    """A prompt whose length divides the hidden size: pyvene's default collect silently reshapes it."""
    length = next(n for n in (8, 16, 4, 32, 2) if lm.hidden_size % n == 0)
    ids = single(lm, "Explain photosynthesis").input_ids[0].tolist()
    ids = (ids * length)[:length]
    return from_ids([ids], pad_id(lm.tokenizer), lm.device)


CHECKS: dict[str, Callable[..., CheckResult]] = {
    "residual_location": residual_location, "shape": shape, "dtype": dtype,
    "token_position": token_position, "timing": timing, "in_place_safety": in_place_safety,
}
