"""Pairwise results of the study: determinism within a tool, agreement across tools (Section C).

Each test reads (or, when missing, computes) the cycle records it needs, so it does not depend on the
order in which cycles ran or on which xdist worker ran them.
"""

from __future__ import annotations

import pytest

from parity_lib.protocol.metrics import DETERMINISM_THRESHOLD, cross_cosines, pairwise_cosines
from parity_lib.protocol.outcome import CROSS_AGREE_COS
from parity_lib.protocol.steering_parity import first_divergence, logit_gap, rerun_noise, token_agreement

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


LOGIT_BAR = 1e-3  # logit parity bar when reruns are identical: far above float32 noise of equal directions


def _noise(store, suite, lm, tools):
    """Rerun noise of each tool (every pair of its repeats), measured before tools are compared."""
    return {t: rerun_noise(_records(store, lm, t, suite.settings.repeats)) for t in tools}


def test_steered_logits_agree_across_tools(store, suite, loaded_model, gate_open, tool_pair, record_note):
    noise = _noise(store, suite, loaded_model, tool_pair)
    floor = max(n["logit_gap_max"] for n in noise.values())
    a, b = (store.ensure(loaded_model, t, 1)[0] for t in tool_pair)
    gap = logit_gap(a, b)
    bar = max(LOGIT_BAR, floor)
    record_note("logit parity", "~".join(tool_pair), {"max_abs": gap["max_abs"], "rerun_floor": floor, "bar": bar,
                                                      "top1_differs": gap["top1_differs"]})
    top1_ok = gap["top1_differs"] == 0 or floor > LOGIT_BAR  # a flipped top-1 is noise only if reruns flip too
    assert gap["max_abs"] <= bar and top1_ok, (
        f"{tool_pair[0]} vs {tool_pair[1]}: next-token logits under steering differ: max |Δ|={gap['max_abs']:.3g} "
        f"at (prompt, token)={gap['at']} (bar {bar:.3g} = max(1e-3, rerun noise {floor:.3g})); top-1 differs on "
        f"{gap['top1_differs']} prompts")


def test_generated_tokens_agree_across_tools(store, suite, loaded_model, gate_open, tool_pair, record_note):
    """Tokens are compared exactly when reruns of each tool are token-identical; when reruns already differ
    (nondeterministic kernels), tools must differ no more than reruns do: nondeterminism is not divergence."""
    noise = _noise(store, suite, loaded_model, tool_pair)
    within = max(n["n_differ_max"] for n in noise.values())
    a_all, b_all = (_records(store, loaded_model, t, suite.settings.repeats) for t in tool_pair)
    cross = [token_agreement(x, y) for x in a_all for y in b_all]
    mean_cross = sum(c["n_differ"] for c in cross) / len(cross)
    mode = "exact (reruns token-identical)" if within == 0 else "against rerun noise (reruns differ)"
    if not any(n["measured"] for n in noise.values()):
        mode = "exact (no rerun measured: --parity-repeats 1)"
    record_note("token parity", "~".join(tool_pair), {"mode": mode, "rerun_n_differ_max": within,
                                                      "cross_n_differ_mean": mean_cross,
                                                      "cross_first_differing_token_min": min(
                                                          (c["first_differing_token_min"] for c in cross
                                                           if c["first_differing_token_min"] is not None),
                                                          default=None),
                                                      "n_prompts": cross[0]["n_prompts"]})
    assert mean_cross <= within, (
        f"{tool_pair[0]} vs {tool_pair[1]} [{mode}]: greedy outputs differ on {mean_cross:.1f} of "
        f"{cross[0]['n_prompts']} prompts on average across tools, reruns of one tool on at most {within}: "
        f"{first_divergence(a_all[0], b_all[0])[:5]}")
