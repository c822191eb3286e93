"""Sweeps (`-m sweep`): at every (model, layer), each tool's direction and dose-response over multipliers.

The points are computed (or reused) by the `sweep_data` fixture, one packed generate call per (model, layer);
the tests assert what the points must show: every point recorded, the tools' directions agreeing at that layer,
and their dose-response curves at one steering scale.
"""

from __future__ import annotations

import pytest

from parity_lib.protocol.outcome import CROSS_AGREE_COS, GAP_DIVERGE_PP

pytestmark = pytest.mark.sweep


def _bound(value):
    return "open" if value is None else f"{value:.2f}"


def _pair(sweep_data, tool_pair):
    return next(p for p in sweep_data["pairs"] if set(p["tools"]) == set(tool_pair))


def test_sweep_points_are_recorded(sweep_data):
    expected = len(sweep_data["multipliers"])
    short = {t: len(c) for t, c in sweep_data["curves"].items() if len(c) != expected}
    assert not short, f"points missing (of {expected} multipliers): {short}"
    assert sweep_data["baseline"] and sweep_data["baseline"]["rates"] is not None, "no unsteered baseline"


@pytest.mark.sweep_own_layer  # collected at each model's own layer, where the study extracts
def test_one_pass_extraction_is_the_one_layer_extraction(sweep_data, tool_name):
    """The sweep extracts every layer it visits in one forward pass per tool; at the model's own layer that
    direction must be the one the study's one-layer extraction gives, to the bit (the same tensor, computed once)."""
    check = sweep_data["one_pass"][tool_name]
    assert check["max_abs"] == 0.0, (
        f"{tool_name} at layer {sweep_data['layer']}: the direction from its one-pass extraction of layers "
        f"{check['extracted_with']} differs from its one-layer extraction by up to {check['max_abs']:.3g} "
        f"(cosine {check['cos']:.10f}): its multi-layer path returns other tensors; the sweep cannot use it")


def test_directions_agree_at_layer(sweep_data, tool_pair):
    pair = _pair(sweep_data, tool_pair)
    div = pair["divergence"]
    assert pair["cos_min"] > CROSS_AGREE_COS, (
        f"{tool_pair[0]} vs {tool_pair[1]} at layer {sweep_data['layer']}: cross-method cosine min "
        f"{pair['cos_min']:.10f} ≤ {CROSS_AGREE_COS}; largest component difference {div['max_abs']:.3g} at "
        f"index {div['argmax']}")


def test_steering_scale_agrees_at_layer(sweep_data, tool_pair):
    """Two tools adding the same direction with the same effective magnitude reach 50% coherent refusal at the
    same multiplier (the ratio's interval holds 1); when either never reaches it, their curves stay within the
    protocol's 20 pp at every multiplier."""
    pair = _pair(sweep_data, tool_pair)
    scale = pair["scale"]
    if scale is not None:
        assert not scale["differs"], (
            f"at layer {sweep_data['layer']}: {scale['slower']} reaches 50% coherent refusal at "
            f"{scale['ratio']:.2f}× {scale['faster']}'s multiplier [{_bound(scale['low'])}, "
            f"{_bound(scale['high'])}] (1 is outside): one tool's steering has a different effective scale")
        return
    a, b = (sweep_data["curves"][t] for t in tool_pair)
    gaps = [(x["multiplier"], 100 * abs(x["refusal"] - y["refusal"])) for x, y in zip(a, b)]
    worst = max(gaps, key=lambda g: g[1], default=(None, 0.0))
    assert worst[1] <= GAP_DIVERGE_PP, (
        f"{tool_pair[0]} vs {tool_pair[1]} at layer {sweep_data['layer']}: coherent refusal differs by "
        f"{worst[1]:.0f} pp at ×{worst[0]:g} (bar {GAP_DIVERGE_PP:g} pp)")
