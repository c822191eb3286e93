"""Invariants of the library on random inputs (hypothesis), on the tiny seeded models.

Example counts are small so the file runs in about half a minute on one core; a failure prints the
`@reproduce_failure` blob to replay it. Tolerances, where a property is not bitwise:
- batched vs one-by-one extraction, float32 on CPU: left padding changes the matmul shapes, so sums are
  reassociated; observed up to 3 float32 ulps of the vectors' largest magnitude (7.6e-6 on values of
  ~20 in Gemma2), allowed BATCH_ULPS ulps of it.
- scale/shift invariance of the direction: float64 rounding, 1e-9.
Everything else is bitwise: the same vectors from every tool in one batch, zero steering, the one-layer
shift (the steered output equals `output + m·v` computed in the model's dtype), sign flips.

Each property was seen to fail on a planted fault (monkeypatched, never committed): an all-ones attention
mask; pyvene's vectors round-tripped through bfloat16; a steering vector of m·v + 1e-3; scope "target"
steering layer L+1; the direction as mean(all) − mean(harmless); normalising by ‖raw‖ + 1e-3; cosine
returning |cos|; keywords checked before the garbled rules. Not caught: default position ids under left
padding. Shifting every RoPE position by one constant changes float32 results only by rounding; in
bfloat16 the change grows (measured), but batched bfloat16 is not bitwise either (Qwen2: 2 ulps).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from parity_lib.models.batching import encode
from parity_lib.models.loading import replaced_forward
from parity_lib.prompts import format_all, load_prompts
from parity_lib.protocol.classify import Label, classify
from parity_lib.protocol.metrics import cosine
from parity_lib.run.compare import compare
from parity_lib.run.directions import diff_of_means
from parity_lib.run.reference import next_norm
from parity_lib.tools import registry
from parity_lib.tools.registry import get_extractor, get_steerer
from parity_lib.tools.spec import SCOPES, SteeringSpec
from tests.conftest import registered_tools

PROMPTS = load_prompts()
MODELS = ["qwen2-tiny", "gemma2-tiny"]
TOOLS = registered_tools()
LAYER = 16
BATCH_ULPS = 32
# Model examples are not shrunk: each costs several forwards, and shrinking one failure took minutes.
FEW = settings(max_examples=5, deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow],
               phases=(Phase.explicit, Phase.reuse, Phase.generate))
MANY = settings(max_examples=60, deadline=None, print_blob=True)

texts = st.one_of(st.sampled_from([*PROMPTS.harmful, *PROMPTS.harmless, *PROMPTS.eval]),
                  st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=40))
batches = st.lists(texts, min_size=1, max_size=4)
padded_batches = st.lists(texts, min_size=2, max_size=4)  # a batch of one has no padding to get wrong
seeds = st.integers(0, 2**32 - 1)
multipliers = st.floats(-16.0, 16.0, allow_nan=False)


def batch_of(lm, prompts):
    return encode(lm.tokenizer, format_all(lm.tokenizer, prompts), templated=lm.templated, device=lm.device)


def random_unit(size: int, seed: int) -> torch.Tensor:
    v = torch.randn(size, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    return v / v.norm()


def plain_logits(lm, batch) -> torch.Tensor:
    with torch.no_grad():
        return lm.model(**batch.model_inputs(), use_cache=False).logits[:, -1].float()


@contextmanager
def layer_output(lm, layer: int) -> Iterator[list[torch.Tensor]]:
    """Layer L's output as the next layernorm reads it, by wrapping that norm's `forward` (not a hook:
    pyvene removes every forward hook during its calls)."""
    norm, seen = next_norm(lm, layer), []

    def wrap(inner):
        def forward(*args, **kwargs):
            seen.append((args[0] if args else kwargs["hidden_states"]).detach().clone())
            return inner(*args, **kwargs)
        return forward

    with replaced_forward(norm, wrap):
        yield seen


@pytest.mark.parametrize("tool", TOOLS)
@pytest.mark.parametrize("model", MODELS)
@FEW
@given(prompts=padded_batches)
def test_batched_last_token_vectors_equal_one_by_one(tiny, model, tool, prompts):
    lm, ex = tiny(model, attention=registry.get(tool).attention), get_extractor(tool)
    batched = ex.extract(lm, batch_of(lm, prompts), LAYER).last
    alone = torch.cat([ex.extract(lm, batch_of(lm, [p]), LAYER).last for p in prompts])
    assert batched.dtype == alone.dtype == lm.dtype and batched.shape == alone.shape
    scale = float(alone.abs().max())
    torch.testing.assert_close(batched, alone, rtol=0.0, atol=BATCH_ULPS * torch.finfo(lm.dtype).eps * scale)


@pytest.mark.parametrize("tool", [t for t in TOOLS if t.values[0] != "hooks"])
@pytest.mark.parametrize("model", MODELS)
@FEW
@given(prompts=batches)
def test_every_tool_returns_the_hooks_vectors_bitwise(tiny, model, tool, prompts):
    lm = tiny(model, attention=registry.get(tool).attention)  # the same computation as the tool's run
    batch = batch_of(lm, prompts)
    got, want = get_extractor(tool).extract(lm, batch, LAYER), get_extractor("hooks").extract(lm, batch, LAYER)
    cmp = compare(got.resid, want.resid, atol=0.0)
    assert cmp.bitwise, cmp.message(tool, "hooks")


@pytest.mark.parametrize("tool", TOOLS)
@pytest.mark.parametrize("model", MODELS)
@FEW
@given(prompts=batches, seed=seeds, multiplier=multipliers, zero=st.sampled_from(["unit", "multiplier"]),
       scope=st.sampled_from(SCOPES))
def test_zero_steering_leaves_logits_unchanged(tiny, model, tool, prompts, seed, multiplier, zero, scope):
    lm = tiny(model, attention=registry.get(tool).attention)
    unit = torch.zeros(lm.hidden_size, dtype=torch.float64) if zero == "unit" else random_unit(lm.hidden_size, seed)
    spec = SteeringSpec.build(unit, LAYER, lm.n_layers, 0.0 if zero == "multiplier" else multiplier, scope)
    batch = batch_of(lm, prompts)
    cmp = compare(get_steerer(tool).logits(lm, batch, spec), plain_logits(lm, batch), atol=0.0)
    assert cmp.bitwise, cmp.message(f"{tool} steered by zero", "unsteered")


@pytest.mark.parametrize("tool", TOOLS)
@pytest.mark.parametrize("model", MODELS)
@FEW
@given(prompts=batches, seed=seeds, multiplier=multipliers, layer=st.integers(0, 27))
def test_target_scope_shifts_that_layer_output_by_exactly_m_v(tiny, model, tool, prompts, seed, multiplier, layer):
    if getattr(get_steerer(tool), "unobserved", None):
        pytest.skip(get_steerer(tool).unobserved)
    lm = tiny(model)
    spec = SteeringSpec.build(random_unit(lm.hidden_size, seed), layer, lm.n_layers, multiplier, "target")
    batch = batch_of(lm, prompts)
    steerer = get_steerer(tool)
    if hasattr(steerer, "prepare"):  # a tool that instruments forwards when it first wraps them does it now, not
        steerer.prepare(lm)          # inside the norm's wrapper below (as the firing map does)
    with layer_output(lm, layer) as before:
        plain_logits(lm, batch)
    with layer_output(lm, layer) as after:
        steerer.logits(lm, batch, spec)
    assert len(after) == 1, f"layer {layer}'s output was read {len(after)} times in one forward"
    cmp = compare(after[0], before[0] + spec.vector(lm.dtype, lm.device), atol=0.0)
    assert cmp.bitwise, cmp.message(f"{tool}-steered layer {layer}", "unsteered + m·v")


@st.composite
def contrastive_sets(draw) -> tuple[np.ndarray, np.ndarray]:
    hidden = draw(st.integers(2, 16))
    values = st.floats(-100.0, 100.0, allow_nan=False, allow_subnormal=False)
    harmful = draw(hnp.arrays(np.float64, (draw(st.integers(1, 6)), hidden), elements=values))
    harmless = draw(hnp.arrays(np.float64, (draw(st.integers(1, 6)), hidden), elements=values))
    return harmful, harmless


def direction(harmful: np.ndarray, harmless: np.ndarray):
    return diff_of_means(torch.from_numpy(harmful), torch.from_numpy(harmless), LAYER)


def has_direction(harmful: np.ndarray, harmless: np.ndarray) -> bool:
    return bool(np.linalg.norm(harmful.mean(0) - harmless.mean(0)) > 1e-6 * (1 + np.abs(harmful).max()))


@MANY
@given(sets=contrastive_sets())
def test_direction_flips_sign_when_harmful_and_harmless_swap(sets):
    if not has_direction(*sets):
        return
    d, swapped = direction(*sets), direction(*sets[::-1])
    assert torch.equal(swapped.unit, -d.unit) and swapped.norm == d.norm


@MANY
@given(sets=contrastive_sets(), scale=st.floats(1e-3, 1e3), shift_seed=seeds)
def test_direction_is_invariant_to_scale_and_common_shift(sets, scale, shift_seed):
    harmful, harmless = sets
    if not has_direction(harmful, harmless):
        return
    shift = np.random.default_rng(shift_seed).normal(0.0, 10.0, harmful.shape[1])
    d, moved = direction(harmful, harmless), direction(scale * harmful + shift, scale * harmless + shift)
    # adding the shift rounds each value by eps·|value|; the difference of means keeps that absolute error, so
    # relative to the moved direction's norm it is eps·max|value| / (scale·norm): small differences under a
    # large shift lose digits (hypothesis found 3e-9 at norm 1.7e-6 and |shift| ≈ 30)
    biggest = max(np.abs(scale * harmful + shift).max(), np.abs(scale * harmless + shift).max())
    bound = 1e-9 + 16 * np.finfo(np.float64).eps * biggest / (scale * d.norm)
    torch.testing.assert_close(moved.unit, d.unit, atol=bound, rtol=0.0)
    assert moved.norm == pytest.approx(scale * d.norm, rel=bound)


def nonzero_pair(sets) -> tuple[np.ndarray, np.ndarray] | None:
    a, b = sets[0][0], sets[1][0]
    return (a, b) if np.linalg.norm(a) > 0 and np.linalg.norm(b) > 0 else None


@MANY
@given(sets=contrastive_sets())
def test_cosine_is_symmetric_and_flips_sign_with_a_vector(sets):
    if (pair := nonzero_pair(sets)) is None:
        return
    a, b = pair
    assert cosine(b, a) == cosine(a, b) and cosine(-a, b) == -cosine(a, b)


@MANY
@given(sets=contrastive_sets(), scale=st.floats(1e-3, 1e3))
def test_cosine_is_scale_invariant(sets, scale):
    if (pair := nonzero_pair(sets)) is None:
        return
    a, b = pair
    assert cosine(scale * a, b) == pytest.approx(cosine(a, b), abs=1e-12)


words = st.sampled_from(["I", "cannot", "help", "with", "that", "sorry", "Paris", "is", "the", "capital",
                         "photosynthesis", "uses", "light", "NOT", "Appropriate", "ok", "a", "b", "aaaa"])
outputs = st.one_of(st.lists(words, min_size=0, max_size=14).map(" ".join),
                    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30))


def label(text: str) -> Label:
    return classify(text, PROMPTS.refusal_keywords, PROMPTS.garbled_rules)


@MANY
@given(text=outputs, case=st.sampled_from([str.upper, str.lower, str.swapcase, str.title]))
@example(text="aAaAaAaA", case=str.upper)
def test_label_ignores_letter_case(text, case):
    assert label(case(text)) == label(text), f"{text!r}: {label(text).value}; {case(text)!r}: {label(case(text)).value}"


@MANY
@given(text=outputs, gaps=st.lists(st.sampled_from([" ", "  ", "\t", "\n", " \n "]), min_size=1, max_size=8),
       edges=st.sampled_from(["", " ", "\n", "\t  \n"]))
@example(text="a b", gaps=["   "], edges="")
def test_label_ignores_whitespace_changes(text, gaps, edges):
    parts = text.split(" ")
    respaced = edges + "".join(p + gaps[i % len(gaps)] for i, p in enumerate(parts[:-1])) + parts[-1] + edges
    assert label(respaced) == label(text), f"{text!r}: {label(text).value}; {respaced!r}: {label(respaced).value}"


@MANY
@given(blank=st.text(st.sampled_from([" ", "\t", "\n", "\r", "\x0b", "\x0c", "\u00a0", "\u2003", "\u3000"])),
       keywords=st.lists(st.text(max_size=6), max_size=4))
def test_empty_or_whitespace_output_is_garbled(blank, keywords):
    assert classify(blank, [*keywords, ""], PROMPTS.garbled_rules) is Label.GARBLED


@pytest.mark.parametrize("text", ["'m" * 16, "I'm sorry, but I cannot help with that." + "'m" * 12])
def test_a_chain_of_apostrophe_joined_fragments_is_garbled(text):
    """Seen on a steered organism past its band: one "word" under a letters-and-apostrophes reading, so no repeat
    rule fired and the output was labelled normal. A word takes at most one apostrophe-joined part."""
    assert label(text) is Label.GARBLED


@pytest.mark.parametrize("text", ["I'm sorry, but I can't help with that.", "The model's answer isn't ready yet.",
                                  "Rock'n'roll started in the fifties."])
def test_contractions_and_possessives_stay_words(text):
    assert label(text) is not Label.GARBLED
