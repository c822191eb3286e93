"""What the report says about each model before any number: what it was asked, exactly, and the scale of its
activations at layer L.

A real checkpoint brings its own chat template, often with a default system prompt the user never wrote;
the direction is extracted from the prompt *as tokenized*, so the report shows the first harmful prompt as the
model saw it. Real models also carry massive activations (a few dimensions hundreds of times the typical
magnitude): the scale of layer L's output says what the checks' floors and the firing map's ulps are relative to.
"""

from __future__ import annotations

from typing import Any

import torch

from parity_lib.models.batching import encode
from parity_lib.models.loading import LoadedModel, forward_hooked
from parity_lib.prompts import PromptSet, format_chat

MASSIVE = 100.0  # a dimension is "massive" when its largest |x| exceeds 100× the median |x| of the layer output


def asked(lm: LoadedModel, prompts: PromptSet) -> dict[str, Any]:
    """The chat template's source, the system prompt setting, and the first harmful prompt exactly as tokenized."""
    system = lm.spec.system_prompt
    text = format_chat(lm.tokenizer, prompts.harmful[0], system)
    batch = encode(lm.tokenizer, [text], templated=lm.templated, device="cpu")
    n_tokens = int(batch.attention_mask.sum())
    if not lm.templated:
        template, system_text = "none: the raw prompt text", "none (no chat template)"
    else:
        template = "the tokenizer's own (chat_template)"
        system_text = ("the template's default, if it inserts one (see the prompt as tokenized)" if system is None
                       else f"{system!r} (--parity-system-prompt)" if system else "an empty system turn "
                       "(--parity-system-prompt none)")
    return {"chat_template": template, "system_prompt": system_text, "first_harmful": prompts.harmful[0],
            "as_tokenized": text, "n_tokens": n_tokens}


def activation_scale(lm: LoadedModel, prompts: PromptSet) -> dict[str, Any]:
    """Median and max |x| of layer L's output over the real tokens of the contrastive prompts, and the dimensions
    holding massive activations (largest first)."""
    texts = [format_chat(lm.tokenizer, p, lm.spec.system_prompt) for p in [*prompts.harmful, *prompts.harmless]]
    batch = encode(lm.tokenizer, texts, templated=lm.templated, device=lm.device)
    store: list[torch.Tensor] = []
    finite: list[torch.Tensor] = []  # per layer, read once after the forward
    mask = batch.attention_mask.bool()

    def seen(module: Any, args: Any, out: Any) -> None:
        out = out if isinstance(out, torch.Tensor) else out[0]
        finite.append(torch.isfinite(out[mask]).all())
        if len(finite) == lm.spec.layer + 1:
            store.append(out.detach())

    forward_hooked(lm, batch, [layer.register_forward_hook(seen) for layer in lm.layers])
    _refuse_overflow(lm, torch.stack(finite).tolist())
    real = store[0][mask].abs().float()  # [real tokens, H]
    median = float(real.median())
    per_dim = real.amax(dim=0)
    order = torch.argsort(per_dim, descending=True)
    massive = [(int(i), round(float(per_dim[i]), 3)) for i in order[:8] if per_dim[i] > MASSIVE * median]
    return {"layer": lm.spec.layer, "median_abs": median, "max_abs": float(per_dim.max()),
            "max_over_median": float(per_dim.max()) / median if median else None,
            "massive_dims": massive, "massive_rule": f"max |x| > {MASSIVE:g}× the median |x|",
            "n_tokens": int(real.shape[0])}


def _refuse_overflow(lm: LoadedModel, finite: list[bool]) -> None:
    """The model's own forward must stay finite in this dtype: a layer that overflows (float16's largest value
    is 65504; Gemma-2's residual stream exceeds it) makes every tool's numbers NaN alike, which no check may
    read as a tool's fault."""
    from parity_lib.errors import ModelOverflowError

    if all(finite):
        return
    first = finite.index(False)
    dtype = str(lm.dtype).removeprefix("torch.")
    fix = ("rerun with --parity-dtype bfloat16 (a GPU that has it: A10G, L4, A100, H100, RTX 30xx/40xx) or "
           "--parity-dtype float32" if dtype == "float16" else "rerun with --parity-dtype float32")
    raise ModelOverflowError(
        f"{dtype.upper()} OVERFLOW on {lm.spec.name} from layer {first}: the model's own forward (no tool) gives "
        f"NaN/Inf there on the contrastive prompts; {fix}")
