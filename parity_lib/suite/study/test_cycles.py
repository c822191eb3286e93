"""Protocol Sections B/C: every (model, tool, repeat) cycle runs, or resumes from its result file."""

from __future__ import annotations

import math

import pytest

pytestmark = pytest.mark.study


def test_cycle_completes_and_is_recorded(cycle, store, model_name, tool_name, repeat):
    from parity_lib.storage.results import cycle_path

    assert cycle["status"] == "ok", cycle.get("error")
    assert cycle_path(store.results_dir, model_name, tool_name, repeat).is_file()
    assert math.isclose(sum(cycle["rates"].values()), 1.0)
    assert len(cycle["labels"]) == cycle["n_prompts"] == len(cycle["texts"])
    assert all(math.isfinite(x) for x in cycle["direction"]["unit"])
    assert {"versions", "commit", "dtype", "device", "seed", "prompt_sha256"} <= set(cycle["provenance"])


def test_unsteered_baseline_is_recorded(baseline, model_name):
    """Every steered rate is read against the same prompts unsteered: the report draws this line."""
    assert baseline["status"] == "ok" and baseline["model"] == model_name
    assert math.isclose(sum(baseline["rates"].values()), 1.0)
    assert len(baseline["labels"]) == baseline["n_prompts"] > 0

