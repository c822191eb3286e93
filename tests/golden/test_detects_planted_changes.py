"""A golden direction catches the changes a dependency upgrade could make silently: the extraction site
moved by one layer, the token position moved by one, the dtype changed. Each fails with a message that
names the field and the size of the change; float noise below the stated tolerance does not fail."""

from __future__ import annotations

import re

import numpy as np
import pytest

from parity_lib.models.batching import encode
from parity_lib.prompts import format_all, load_prompts
from parity_lib.run.directions import diff_of_means
from parity_lib.storage.golden import compare_golden, direction_summary, render_changes
from parity_lib.tools.registry import get_extractor

PROMPTS = load_prompts()
LAYER = 16
CHANGE = re.compile(r"(direction\.\S+): \S+ -> \S+  \(\|Δ\| = ([0-9.e+-]+), tolerance 0\.0001\)")


def direction(lm, *, layer: int = LAYER, position: int = -1) -> dict:
    texts = format_all(lm.tokenizer, [*PROMPTS.harmful, *PROMPTS.harmless])
    acts = get_extractor("hooks").extract(lm, encode(lm.tokenizer, texts, templated=lm.templated), layer)
    rows = acts.resid[:, position]
    d = diff_of_means(rows[: len(PROMPTS.harmful)], rows[len(PROMPTS.harmful):], layer)
    return {"layer": layer, "dtype": str(lm.dtype), "direction": direction_summary(d.unit, d.norm)}


PLANTED = {
    "layer-minus-one": lambda tiny, model: direction(tiny(model), layer=LAYER - 1),
    "layer-plus-one": lambda tiny, model: direction(tiny(model), layer=LAYER + 1),
    "second-to-last-token": lambda tiny, model: direction(tiny(model), position=-2),
    "bfloat16": lambda tiny, model: direction(tiny(model, "bfloat16")),
}


@pytest.mark.parametrize("model", ["qwen2-tiny", "gemma2-tiny"])
@pytest.mark.parametrize("planted", list(PLANTED))
def test_planted_change_fails_naming_field_and_size(tiny, model, planted):
    changes = compare_golden(direction(tiny(model)), PLANTED[planted](tiny, model))
    message = render_changes(changes)
    numeric = [(path, float(delta)) for path, delta in CHANGE.findall(message)]
    assert numeric, f"no direction field named with its |Δ|:\n{message}"
    assert all(delta > 1e-4 for _, delta in numeric), message
    assert "direction.sha256" in message, message


def test_noise_below_the_stated_tolerance_passes(tiny):
    lm = tiny("qwen2-tiny")
    texts = format_all(lm.tokenizer, [*PROMPTS.harmful, *PROMPTS.harmless])
    last = get_extractor("hooks").extract(lm, encode(lm.tokenizer, texts, templated=lm.templated), LAYER).last
    d = diff_of_means(last[:5], last[5:], LAYER)
    noisy = d.unit.numpy() + np.random.default_rng(0).normal(0.0, 1e-9, d.unit.shape[0])
    assert compare_golden(direction_summary(d.unit, d.norm), direction_summary(noisy, d.norm + 1e-9)) == []
