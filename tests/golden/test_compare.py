"""`compare_golden` and `render_changes` on hand-made records: what counts as a change, and how it reads."""

from __future__ import annotations

import math

from parity_lib.storage.golden import MAX_RENDERED, compare_golden, direction_summary, render_changes

GOLDEN = {"direction": {"tolerance": 1e-4, "norm": 2.5, "first": [0.1, -0.2]}, "layer": 16,
          "passed": {"shape": True}, "labels": ["refusal", "normal"]}


def changed(**fields):
    return {**GOLDEN, **fields}


def test_number_within_stated_tolerance_is_not_a_change():
    assert compare_golden(GOLDEN, changed(direction={**GOLDEN["direction"], "norm": 2.5 + 1e-4})) == []


def test_number_beyond_tolerance_reports_path_values_and_size():
    (change,) = compare_golden(GOLDEN, changed(direction={**GOLDEN["direction"], "first": [0.1, -0.25]}))
    assert (change.path, change.old, change.new, change.tolerance) == ("direction.first[1]", -0.2, -0.25, 1e-4)
    assert math.isclose(change.delta, 0.05)


def test_field_outside_any_stated_tolerance_compares_exactly():
    (change,) = compare_golden(GOLDEN, changed(layer=16.00001))
    assert change.path == "layer" and change.tolerance == 0.0


def test_tolerance_applies_on_field_boundaries_only():
    old = {"direction": {"x": 1.0}, "directions": {"x": 1.0}}
    new = {"direction": {"x": 1.01}, "directions": {"x": 1.01}}
    assert [c.path for c in compare_golden(old, new, {"direction": 0.1})] == ["directions.x"]


def test_booleans_strings_and_types_compare_exactly():
    paths = [c.path for c in compare_golden(GOLDEN, changed(passed={"shape": 1}, labels=["refusal", "garbled"]))]
    assert paths == ["labels[1]", "passed.shape"]


def test_added_removed_and_nan_fields_are_changes():
    new = {k: v for k, v in GOLDEN.items() if k != "layer"} | {"extra": 1,
                                                               "direction": {**GOLDEN["direction"], "norm": math.nan}}
    text = render_changes(compare_golden(GOLDEN, new))
    assert "direction.norm: 2.5 -> NaN" in text
    assert "extra: (missing) -> 1" in text and "layer: 16 -> (missing)" in text


def test_long_diffs_are_cut_with_a_count():
    old, new = {"v": list(range(MAX_RENDERED + 7))}, {"v": [x + 1 for x in range(MAX_RENDERED + 7)]}
    assert render_changes(compare_golden(old, new)).endswith("... and 7 more")


def test_summary_hash_ignores_the_sign_of_zero():
    assert direction_summary([1.0, -0.00001], 1.0)["sha256"] == direction_summary([1.0, 0.00001], 1.0)["sha256"]
