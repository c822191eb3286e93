"""The firing map replaces a few modules' `forward` while it records. A tool that instruments forwards when it
first wraps the model (nnsight) must not do so inside that window: it would take the recorder's wrappers for
the modules' own and, once they are restored, disable its interventions on those modules (nnsight says so only
later, in one warning per module, from whichever call comes next). `record_firing(..., steerer=)` prepares the
steerer first, and a tool that instruments inside the window anyway is an error at the window's end, naming the
fix."""

from __future__ import annotations

import warnings

import pytest
import torch

from parity_lib.errors import ModelStateError
from parity_lib.models import loading, registry
from parity_lib.models.batching import encode
from parity_lib.prompts import format_all, load_prompts
from parity_lib.run.firing import record_firing
from parity_lib.tools.registry import get_extractor, get_steerer
from parity_lib.tools.spec import SteeringSpec

PROMPTS = load_prompts()


def replaced_warnings_after_a_firing_map(prepare: bool, dtype: str) -> list[str]:
    lm = loading.load(registry.parse_model("gemma2-tiny"), dtype)  # fresh: nnsight has not wrapped it yet
    batch = encode(lm.tokenizer, format_all(lm.tokenizer, PROMPTS.eval[:2]), templated=lm.templated)
    unit = torch.ones(lm.hidden_size, dtype=torch.float64) / lm.hidden_size ** 0.5
    spec = SteeringSpec.build(unit, lm.spec.layer, lm.n_layers, 4.0)
    steerer = get_steerer("nnsight")
    with record_firing(lm, spec, steerer=steerer if prepare else None) as log:
        new = steerer.generate(lm, batch, spec, 3)
    assert not log.mismatches(spec, lm.n_layers, new.shape[1])
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        get_extractor("nnsight").extract(lm, batch, lm.spec.layer)
        steerer.generate(lm, batch, spec, 3)
    return [str(w.message) for w in seen if "was replaced after nnsight wrapped" in str(w.message)]


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_a_steerer_prepared_before_the_firing_map_keeps_its_interventions(dtype):
    assert replaced_warnings_after_a_firing_map(prepare=True, dtype=dtype) == []


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_without_preparing_the_firing_map_stops_with_the_fix(dtype):
    """The hazard the preparation removes, on the same model (planted: no preparation): an error where it happens,
    not a warning from a later call."""
    with pytest.raises(ModelStateError, match=r"prepare\(lm\)"):
        replaced_warnings_after_a_firing_map(prepare=False, dtype=dtype)
