"""Protocol Section D as functions: one check, one result with the numbers that decided it.

Each check compares what an extractor returns with ground truth from `reference.py` (never with the
extractor itself), so a wrong tool cannot vouch for itself. A check never raises on a wrong tensor:
it returns `passed=False` and a message with shape, dtype, count outside tolerance and max |Δ|; an
extractor that crashes fails the check with the exception in the message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch

from .batching import Batch, encode, from_ids, pad_id
from .compare import Comparison, compare, tolerance
from .extractors.base import Activations, Extractor
from .models import LoadedModel
from .prompts import format_all
from .reference import capture_reference, next_norm

CROSS_TOOL_ATOL = 1e-5  # the protocol's pre-flight bar, in every dtype


@dataclass(frozen=True)
class CheckResult:
    check: str
    tool: str
    passed: bool
    message: str
    numbers: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.check, "tool": self.tool, "passed": self.passed, "message": self.message,
                "numbers": self.numbers}


def _run(extractor: Extractor, lm: LoadedModel, batch: Batch, layer: int) -> Activations | str:
    try:
        return extractor.extract(lm, batch, layer)
    except Exception as exc:  # a crashing extractor fails the check; the message keeps the cause
        return f"{extractor.name} raised {type(exc).__name__}: {exc}"


def _result(check: str, tool: str, cmp: Comparison, ok: bool, extra: str = "", **numbers) -> CheckResult:
    msg = (f"{check} [{tool}]: {'ok' if ok else 'FAILED'}{': ' + extra if extra else ''}; "
           f"{cmp.message(tool, 'reference')}")
    return CheckResult(check, tool, ok, msg, {"comparison": cmp.to_dict(), **numbers})


def _crash(check: str, tool: str, why: str) -> CheckResult:
    return CheckResult(check, tool, False, f"{check} [{tool}]: FAILED: {why}")


def single(lm: LoadedModel, prompt: str) -> Batch:
    return encode(lm.tokenizer, format_all(lm.tokenizer, [prompt]), templated=lm.templated, device=lm.device)


def residual_location(lm: LoadedModel, ex: Extractor, batch: Batch, layer: int) -> CheckResult:
    """Equals the input of the next layer's input layernorm (pre-LN), and is not its output."""
    got, ref = _run(ex, lm, batch, layer), capture_reference(lm, batch, layer)
    if isinstance(got, str):
        return _crash("residual_location", ex.name, got)
    atol, rtol = tolerance(lm.dtype)
    pre = compare(got.resid, ref.pre_ln, atol=atol, rtol=rtol)
    post = compare(got.resid, ref.post_ln, atol=atol, rtol=rtol)
    ok = pre.close and not post.close
    why = "equals the post-layernorm tensor" if post.close else "" if ok else "is not the pre-LN residual"
    return _result("residual_location", ex.name, pre, ok, why, post_ln_max_abs=post.max_abs)


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


def token_position(lm: LoadedModel, ex: Extractor, prompts: Sequence[str], layer: int) -> CheckResult:
    """In a left-padded batch of unequal lengths, each row's vector is its own last real token
    (as extracted alone) and not the BOS/first-token vector."""
    batch = encode(lm.tokenizer, format_all(lm.tokenizer, prompts), templated=lm.templated, device=lm.device)
    if len(set(batch.lengths)) < 2:
        raise ValueError("token_position needs prompts of unequal tokenized lengths")
    got = _run(ex, lm, batch, layer)
    if isinstance(got, str):
        return _crash("token_position", ex.name, got)
    truth = torch.stack([capture_reference(lm, single(lm, p), layer).pre_ln[0, -1] for p in prompts])
    first = torch.stack([capture_reference(lm, single(lm, p), layer).pre_ln[0, 0] for p in prompts])
    atol, rtol = tolerance(lm.dtype)
    cmp = compare(got.last, truth, atol=atol, rtol=rtol)
    is_first = compare(got.last, first, atol=atol, rtol=rtol).close
    ok = cmp.close and not is_first
    extra = "returns the first (BOS) token" if is_first else f"lengths {list(batch.lengths)}"
    return _result("token_position", ex.name, cmp, ok, extra, lengths=list(batch.lengths))


def timing(lm: LoadedModel, ex: Extractor, batch: Batch, layer: int) -> CheckResult:
    """Captured after the residual adds: output = resid_in + attention contribution + MLP contribution."""
    got, ref = _run(ex, lm, batch, layer), capture_reference(lm, batch, layer)
    if isinstance(got, str):
        return _crash("timing", ex.name, got)
    total = ref.resid_in.double() + ref.attn.double() + ref.mlp.double()
    atol, rtol = tolerance(lm.dtype)
    cmp = compare(got.resid, total, atol=max(atol, 1e-4), rtol=max(rtol, 1e-5))
    return _result("timing", ex.name, cmp, cmp.close, "output = resid_in + attn + mlp")


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
    atol, rtol = tolerance(lm.dtype)
    cmp = compare(got.resid, ref.pre_ln, atol=atol, rtol=rtol)
    return _result("in_place_safety", ex.name, cmp, cmp.close, "stored value vs value at capture time")


def cross_tool(lm: LoadedModel, a: Extractor, b: Extractor, batch: Batch, layer: int) -> CheckResult:
    """Raw activations allclose(atol=1e-5) across tools, and bitwise equal (same dtype, same device)."""
    ra, rb = _run(a, lm, batch, layer), _run(b, lm, batch, layer)
    name = f"{a.name}~{b.name}"
    for got in (ra, rb):
        if isinstance(got, str):
            return _crash("cross_tool", name, got)
    cmp = compare(ra.resid, rb.resid, atol=CROSS_TOOL_ATOL)
    ok = cmp.close and cmp.bitwise
    return CheckResult("cross_tool", name, ok, f"cross_tool [{name}]: {'ok' if ok else 'FAILED'}; "
                       f"{cmp.message(a.name, b.name)}", {"comparison": cmp.to_dict()})


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
