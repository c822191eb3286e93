"""Metrics on hand-made vectors and cycle records: cosines, Wilson intervals, divergence, summaries."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parity_lib.protocol.metrics import (
    component_divergence,
    cosine,
    cross_cosines,
    mean_std,
    pairwise_cosines,
    summarize_model,
    wilson_interval,
)

H = 8
BASE = np.arange(1.0, H + 1.0)
OTHER = np.array([1.0, -1.0] * (H // 2))


def record(tool: str, repeat: int, *, vector: np.ndarray = BASE, refusal: int = 27, garbled: int = 0,
           status: str = "ok", model: str = "qwen2-organism", labels: bool = True) -> dict:
    """One cycle record as the study writes it; `refusal`/`garbled` are counts out of 30 prompts."""
    if status != "ok":
        return {"schema": 1, "model": model, "tool": tool, "repeat": repeat, "status": "error",
                "error": f"boom in {tool} r{repeat}", "direction": None, "n_prompts": 30}
    norm = float(np.linalg.norm(vector))
    names = ["refusal"] * refusal + ["garbled"] * garbled + ["normal"] * (30 - refusal - garbled)
    rec = {"schema": 1, "model": model, "tool": tool, "repeat": repeat, "status": "ok", "error": None,
           "direction": {"unit": (vector / norm).tolist(), "norm": norm, "layer": 16},
           "n_prompts": 30, "rates": {k: names.count(k) / 30 for k in ("refusal", "garbled", "normal")},
           "timings": {"extract_s": 1.0, "generate_s": 2.0, "total_s": 3.0},
           "steering": {"scope": "target_to_final", "multiplier": 4.0, "steer_with": "hooks",
                        "generation": {"path": "eager (dynamic cache)"}}}
    if labels:
        rec["labels"] = names
    return rec


@pytest.mark.parametrize(("a", "b", "expected"), [
    pytest.param([1, 0], [1, 0], 1.0, id="identical"),
    pytest.param([1, 0], [-1, 0], -1.0, id="opposite"),
    pytest.param([1, 0], [0, 1], 0.0, id="orthogonal"),
    pytest.param([1, 1], [5, 5], 1.0, id="scale-invariant"),
    pytest.param([1, 0], [1, 1], 1 / math.sqrt(2), id="45-degrees"),
])
def test_cosine_matches_hand_value(a, b, expected):
    assert cosine(a, b) == pytest.approx(expected, abs=1e-15)


def test_cosine_of_float32_input_is_computed_in_float64():
    v = np.random.default_rng(0).standard_normal(4096).astype(np.float32)
    assert cosine(v, v) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize(("a", "b", "match"), [
    pytest.param([1, 0], [1, 0, 0], "shapes", id="shape-mismatch"),
    pytest.param([0, 0], [1, 0], "zero vector", id="zero-vector"),
    pytest.param([math.nan, 1], [1, 0], "non-finite", id="nan"),
    pytest.param([], [], "non-empty", id="empty"),
])
def test_cosine_rejects_bad_input(a, b, match):
    with pytest.raises(ValueError, match=match):
        cosine(a, b)


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_pairwise_cosines_has_one_value_per_unordered_pair(k):
    assert len(pairwise_cosines([BASE] * k)) == k * (k - 1) // 2


def test_cross_cosines_has_one_value_per_repeat_pair():
    assert len(cross_cosines([BASE] * 3, [OTHER] * 2)) == 6


@pytest.mark.parametrize(("k", "n", "expected"), [
    pytest.param(0, 30, (0.0, 0.1135), id="0-of-30"),
    pytest.param(30, 30, (0.8865, 1.0), id="30-of-30"),
    pytest.param(15, 30, (0.3315, 0.6685), id="15-of-30"),
    pytest.param(3, 30, (0.0346, 0.2562), id="3-of-30"),
])
def test_wilson_interval_matches_published_values(k, n, expected):
    assert wilson_interval(k, n) == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize(("k", "n"), [(0, 30), (7, 30), (30, 30), (1, 1)])
def test_wilson_interval_matches_closed_form(k, n):
    z, p = 1.96, k / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    assert wilson_interval(k, n) == pytest.approx((max(0.0, centre - half), min(1.0, centre + half)))


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 500).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_interval_contains_the_observed_rate(kn):
    k, n = kn
    lo, hi = wilson_interval(k, n)
    assert 0.0 <= lo <= k / n <= hi <= 1.0


@pytest.mark.parametrize(("k", "n"), [(-1, 30), (31, 30), (0, 0)])
def test_wilson_interval_rejects_impossible_counts(k, n):
    with pytest.raises(ValueError, match="0 <= k <= n"):
        wilson_interval(k, n)


@pytest.mark.parametrize(("values", "expected"), [
    pytest.param([1.0, 2.0, 3.0], (2.0, 1.0), id="sample-std-ddof1"),
    pytest.param([0.9], (0.9, 0.0), id="single-value-std-zero"),
    pytest.param([0.5, 0.5], (0.5, 0.0), id="constant"),
])
def test_mean_std(values, expected):
    assert mean_std(values) == pytest.approx(expected)


def test_mean_std_of_nothing_raises():
    with pytest.raises(ValueError, match="no values"):
        mean_std([])


def test_component_divergence_localises_the_difference():
    result = component_divergence([1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.5], top=3)
    assert result == {"max_abs": 1.0, "argmax": 0, "l2": 1.5,
                      "top": [(0, 1.0, 0.0, 1.0), (1, 0.0, 1.0, -1.0), (3, 0.0, 0.5, -0.5)]}


def test_component_divergence_of_identical_vectors_is_zero():
    assert component_divergence(BASE, BASE)["l2"] == 0.0


def test_identical_repeats_are_deterministic():
    s = summarize_model([record("hooks", r) for r in (1, 2, 3)])
    assert s.tools["hooks"].deterministic is True


def test_noisy_repeats_are_not_deterministic():
    s = summarize_model([record("hooks", 1), record("hooks", 2, vector=BASE + OTHER)])
    assert s.tools["hooks"].deterministic is False


def test_one_ok_repeat_leaves_determinism_unknown():
    s = summarize_model([record("hooks", 1), record("hooks", 2, status="error")])
    assert (s.tools["hooks"].within_min, s.tools["hooks"].deterministic) == (None, None)


def test_errors_are_counted_with_their_messages():
    s = summarize_model([record("hooks", 1), record("hooks", 2, status="error")])
    t = s.tools["hooks"]
    assert (t.n_ok, t.n_error, t.errors) == (1, 1, ("boom in hooks r2",))


def test_tool_with_only_errors_has_no_rates_not_zero_rates():
    s = summarize_model([record("hooks", 1, status="error"), record("nnsight", 1)])
    assert s.tools["hooks"].rates is None


def test_pair_with_an_all_error_tool_has_no_numbers():
    s = summarize_model([record("hooks", 1, status="error"), record("nnsight", 1)])
    assert (s.pair("hooks", "nnsight").cos_min, s.pair("hooks", "nnsight").refusal_gap_pp) == (None, None)


def test_rate_ci_is_over_the_prompts_not_prompts_times_repeats():
    s = summarize_model([record("hooks", 1, refusal=27), record("hooks", 2, refusal=21)])
    rate = s.tools["hooks"].rates["refusal"]
    assert (rate.k, rate.n, (rate.ci_low, rate.ci_high)) == (24, 30, wilson_interval(24, 30))


def test_identical_repeats_are_one_sample_of_the_prompts():
    """Five bit-identical greedy repeats at 30/30: the interval is 30 prompts' (lower bound 88.6%), not 150's."""
    s = summarize_model([record("hooks", k, refusal=30) for k in range(1, 6)])
    rate = s.tools["hooks"].rates["refusal"]
    assert rate.n == 30 and rate.ci_low == pytest.approx(0.8865, abs=1e-4)


def test_rate_mean_and_std_are_over_repeats():
    s = summarize_model([record("hooks", 1, refusal=27), record("hooks", 2, refusal=21)])
    rate = s.tools["hooks"].rates["refusal"]
    assert (rate.mean, rate.std) == pytest.approx((0.8, math.sqrt(0.02)))


def test_rates_are_used_when_labels_are_absent():
    s = summarize_model([record("hooks", 1, refusal=12, garbled=3, labels=False)])
    assert s.tools["hooks"].rates["garbled"].k == 3


def test_gap_of_six_prompts_is_exactly_twenty_points():
    s = summarize_model([record("hooks", 1, refusal=27), record("nnsight", 1, refusal=21)])
    assert s.pair("hooks", "nnsight").refusal_gap_pp == 20.0


def test_cross_cosines_cover_every_repeat_pair():
    s = summarize_model([record("hooks", r) for r in (1, 2, 3)] + [record("nnsight", r) for r in (1, 2)])
    assert s.pair("nnsight", "hooks").n_pairs == 6


def test_cross_cosine_min_is_the_worst_repeat_pair():
    s = summarize_model([record("hooks", 1), record("nnsight", 1), record("nnsight", 2, vector=OTHER)])
    assert s.pair("hooks", "nnsight").cos_min == pytest.approx(cosine(BASE, OTHER))


def test_divergence_compares_the_first_ok_repeats():
    s = summarize_model([record("hooks", 1, status="error"), record("hooks", 2, vector=OTHER),
                  record("nnsight", 1)])
    expected = component_divergence(OTHER / np.linalg.norm(OTHER), BASE / np.linalg.norm(BASE))
    assert s.pair("hooks", "nnsight").divergence == expected


def test_settings_list_distinct_values():
    s = summarize_model([record("hooks", 1), record("nnsight", 2)])
    assert s.settings == {"layer": [16], "multiplier": [4.0], "scope": ["target_to_final"],
                          "steer_with": ["hooks"], "generation": ["eager (dynamic cache)"], "n_prompts": [30],
                          "repeats": [1, 2]}


def test_summary_survives_a_json_round_trip():
    s = summarize_model([record("hooks", 1), record("nnsight", 1), record("pyvene", 1, status="error")])
    assert json.loads(json.dumps(s.to_dict())) == s.to_dict()


@pytest.mark.parametrize(("records", "match"), [
    pytest.param([], "at least one", id="empty"),
    pytest.param([record("hooks", 1), record("hooks", 2, model="gemma")], "one model", id="two-models"),
    pytest.param([record("hooks", 1), record("hooks", 1)], "twice", id="duplicate-repeat"),
    pytest.param([{**record("hooks", 1), "direction": None}], "no direction", id="ok-without-direction"),
])
def test_summarize_model_rejects_malformed_records(records, match):
    with pytest.raises(ValueError, match=match):
        summarize_model(records)
