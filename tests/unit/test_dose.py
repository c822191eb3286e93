"""The sweep's arithmetic: layers from a spec, the scaled grid, m50 and its interval, the steering scale ratio,
the working window and the recommendation. Pure functions, checked on hand-made curves."""

from __future__ import annotations

import pytest

from parity_lib.errors import ConfigError
from parity_lib.protocol.dose import curve, m50, recommend, scale_ratio, window
from parity_lib.run.sweep import SweepSettings, grid, resolve_layers


def _points(rates: dict[float, tuple[int, int]], n: int = 30) -> dict:
    """{multiplier: (refusals, garbled)} → the point records a sweep writes."""
    return {m: {"status": "ok", "labels": ["refusal"] * r + ["garbled"] * g + ["normal"] * (n - r - g)}
            for m, (r, g) in rates.items()}


SIGMOID = {1: (0, 0), 2: (3, 0), 4: (15, 0), 8: (29, 0), 16: (30, 0), 32: (10, 20)}


@pytest.mark.parametrize(("spec", "want"), [("4,8", [4, 8, 16]), ("all", list(range(28))),
                                            ("0.25,0.5,0.75", [7, 14, 16, 21]), ("", [4, 7, 10, 14, 16, 18, 21, 24])])
def test_layers_resolve_and_always_include_the_models_own(spec, want):
    assert resolve_layers(spec, 28, 16) == want


@pytest.mark.parametrize("spec", ["40", "0.5,1.5", "a,b"])
def test_a_bad_layer_spec_is_one_clear_error(spec):
    with pytest.raises(ConfigError, match="--parity-layers"):
        resolve_layers(spec, 28, 16)


def test_the_default_grid_scales_with_the_activation_norm_and_keeps_the_models_multiplier():
    assert grid(SweepSettings(), 8.0, 4.46) == [0.25, 0.5, 1.0, 2.0, 4.0, 4.46, 8.0]
    assert grid(SweepSettings(multipliers=(1.0, 3.0)), 8.0, 4.46) == [1.0, 3.0, 4.46]


def test_m50_interpolates_in_log_multiplier_and_brackets_with_the_interval():
    found = m50(curve(_points(SIGMOID)))
    assert found.estimate == pytest.approx(4.0)  # 15/30 exactly at ×4
    assert found.low < 4.0 < found.high, found


def test_a_curve_that_never_reaches_half_has_no_m50():
    assert m50(curve(_points({1: (0, 0), 2: (5, 0)}))).estimate is None


def test_a_curve_shifted_by_a_factor_is_named_with_that_factor():
    """The planted ×1.5 steerer's signature on paper: the same curve, reached at 1/1.5 of the multipliers."""
    shifted = {m / 1.5: v for m, v in SIGMOID.items()}
    ratio = scale_ratio("hooks", curve(_points(SIGMOID)), "scaled", curve(_points(shifted)))
    assert (ratio.slower, ratio.faster) == ("hooks", "scaled")
    assert ratio.ratio == pytest.approx(1.5)


def test_identical_curves_have_ratio_one_and_do_not_differ():
    ratio = scale_ratio("a", curve(_points(SIGMOID)), "b", curve(_points(SIGMOID)))
    assert ratio.ratio == pytest.approx(1.0) and not ratio.differs
    assert ratio.low <= 1.0 <= ratio.high


def test_a_large_shift_differs_beyond_its_interval():
    far = {m * 4: v for m, v in SIGMOID.items()}
    assert scale_ratio("a", curve(_points(SIGMOID)), "b", curve(_points(far))).differs


def test_the_window_is_refusal_at_least_80_and_garbled_at_most_10():
    doses = curve(_points({4: (24, 0), 8: (30, 3), 16: (30, 4), 32: (23, 0)}))
    assert window(doses) == [4.0, 8.0]  # 24/30 = 80% counts, 4/30 garbled does not, 23/30 refusal does not


def test_the_recommendation_is_the_widest_common_window_and_its_middle():
    wide = curve(_points({2: (30, 0), 4: (30, 0), 8: (30, 0)}))
    narrow = curve(_points({2: (0, 0), 4: (30, 0), 8: (0, 30)}))
    rec = recommend({10: {"a": narrow, "b": narrow}, 16: {"a": wide, "b": wide}}, own_layer=10)
    assert (rec.layer, rec.multiplier) == (16, 4.0), rec


def test_no_window_anywhere_says_so_with_the_best_point_seen():
    flat = curve(_points({2: (0, 0), 4: (2, 1)}))
    rec = recommend({12: {"a": flat}}, own_layer=12)
    assert rec.layer is None and "no working window" in rec.evidence and "layer 12 ×4" in rec.evidence


def test_a_missing_point_is_left_out_never_a_zero():
    doses = curve({1: None, 2: {"status": "ok", "labels": ["refusal"] * 3}})
    assert [d.multiplier for d in doses] == [2.0]
