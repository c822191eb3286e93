"""Pairwise results of the study: determinism within a tool, agreement across tools (Section C).

Each test reads (or, when missing, computes) the cycle records it needs, so it does not depend on the
order in which cycles ran or on which xdist worker ran them.
"""

from __future__ import annotations

import pytest

from parity_lib.metrics import DETERMINISM_THRESHOLD, cross_cosines, pairwise_cosines
from parity_lib.outcome import CROSS_AGREE_COS
from parity_lib.parity import first_divergence, logit_gap

pytestmark = pytest.mark.study


def _records(store, lm, tool, repeats):
    return [store.ensure(lm, tool, k)[0] for k in range(1, repeats + 1)]


def test_direction_is_deterministic_within_tool(store, suite, loaded_model, gate_open, tool_name):
    if suite.settings.repeats < 2:
        pytest.skip("within-method determinism needs --parity-repeats ≥ 2")
    records = _records(store, loaded_model, tool_name, suite.settings.repeats)
    cosines = pairwise_cosines([r["direction"]["unit"] for r in records])
    assert min(cosines) > DETERMINISM_THRESHOLD, (
        f"{tool_name}: within-method cosine min {min(cosines):.10f} ≤ {DETERMINISM_THRESHOLD} over "
        f"{len(records)} repeats: run-to-run variance; see the determinism section of the report")


def test_directions_agree_across_tools(store, suite, loaded_model, gate_open, tool_pair):
    a, b = (_records(store, loaded_model, t, suite.settings.repeats) for t in tool_pair)
    cosines = cross_cosines([r["direction"]["unit"] for r in a], [r["direction"]["unit"] for r in b])
    assert min(cosines) > CROSS_AGREE_COS, (
        f"{tool_pair[0]} vs {tool_pair[1]}: cross-method cosine min {min(cosines):.10f} ≤ {CROSS_AGREE_COS}")


def test_steered_logits_agree_across_tools(store, loaded_model, gate_open, tool_pair):
    a, b = (store.ensure(loaded_model, t, 1)[0] for t in tool_pair)
    gap = logit_gap(a, b)
    assert gap["max_abs"] <= 1e-3 and gap["top1_differs"] == 0, (
        f"{tool_pair[0]} vs {tool_pair[1]}: next-token logits under steering differ: max |Δ|="
        f"{gap['max_abs']:.3g} at (prompt, token)={gap['at']}; top-1 differs on {gap['top1_differs']} prompts")


def test_generated_tokens_identical_across_tools(store, loaded_model, gate_open, tool_pair):
    a, b = (store.ensure(loaded_model, t, 1)[0] for t in tool_pair)
    diverged = first_divergence(a, b)
    assert not diverged, f"{tool_pair[0]} vs {tool_pair[1]}: greedy outputs diverge: {diverged[:5]}"
