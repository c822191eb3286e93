"""The nnsight steerer's local warning filter matches what nnsight really says, and nothing else leaks."""

from __future__ import annotations

import warnings

from parity_lib.models import loading, registry
from parity_lib.models.batching import encode
from parity_lib.prompts import format_all, load_prompts
from parity_lib.tools.registry import get_steerer
from parity_lib.tools.spec import SteeringSpec


def test_generation_ending_early_raises_no_never_reached_warning():
    """All rows hit EOS long before max_new_tokens, so nnsight's loop ends early (by design): the steerer
    silences exactly that warning; without the filter this test sees it (nnsight 0.8.1 wording)."""
    import torch

    lm = loading.load(registry.parse_model("qwen2-organism"))
    prompts = load_prompts(None)
    batch = encode(lm.tokenizer, format_all(lm.tokenizer, list(prompts.eval[:2])), templated=lm.templated)
    spec = SteeringSpec.build(torch.zeros(lm.hidden_size, dtype=torch.float64), lm.spec.layer, lm.n_layers, 0.0)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        out = get_steerer("nnsight").generate(lm, batch, spec, 200)
    eos = lm.tokenizer.eos_token_id
    assert all(eos in row.tolist() for row in out), "the organism should stop early for this test to mean anything"
    assert out.shape[1] < 200
    leaked = [str(w.message)[:120] for w in seen if "never reached" in str(w.message)
              or "Execution complete" in str(w.message)]
    assert not leaked, leaked
