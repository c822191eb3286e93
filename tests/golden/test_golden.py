"""Golden records per (model, prompt set), one entry per test, the same for every tool: what the
Section D checklist concluded, the refusal direction, and the labels and first tokens under steering.

A dependency upgrade that silently changes what is extracted or steered fails here with the field
and the size of the change. Record or refresh with `--snapshot-update` (see docs/regression-gate.md).
"""

from __future__ import annotations

from typing import Any

import pytest

from parity_lib.models.loading import LoadedModel
from parity_lib.prompts import PromptSet
from parity_lib.run import checklist
from parity_lib.run.cycle import StudySettings, extract_direction, run_cycle
from parity_lib.storage.golden import direction_summary
from parity_lib.tools.registry import get_extractor

pytestmark = pytest.mark.golden

FIRST_TOKENS = 8
# Pinned, not taken from the command line: a golden must not change with --parity-scope or --parity-max-new-tokens.
# Each tool steers with its own mechanism ("same"), so the golden covers steering as well as extraction.
STEERING = StudySettings(repeats=1, scope="target_to_final", steer_with="same", max_new_tokens=64, n_eval=8)


def checklist_outcome(lm: LoadedModel, tool: str, prompts: PromptSet) -> dict[str, Any]:
    ex, layer = get_extractor(tool), lm.spec.layer
    one = checklist.single(lm, prompts.harmful[0])
    by_len = sorted(prompts.eval, key=lambda p: checklist.single(lm, p).input_ids.shape[1])
    results = [checklist.residual_location(lm, ex, one, layer),
               checklist.shape(lm, ex, [one, checklist.divisible_length_batch(lm)], layer),
               checklist.dtype(lm, ex, one, layer),
               checklist.token_position(lm, ex, [by_len[-1], by_len[0], by_len[len(by_len) // 2]], layer),
               checklist.timing(lm, ex, one, layer),
               checklist.in_place_safety(lm, ex, one, layer)]
    return {"layer": layer, "passed": {r.check: r.passed for r in results}}


def direction_record(lm: LoadedModel, tool: str, prompts: PromptSet) -> dict[str, Any]:
    direction = extract_direction(lm, tool, prompts)
    return {"layer": direction.layer, "model_dtype": str(lm.dtype).removeprefix("torch."),
            "prompt_sha256": prompts.sha256, "n_per_side": len(prompts.harmful),
            "direction": direction_summary(direction.unit, direction.norm)}


def steering_record(lm: LoadedModel, tool: str, prompts: PromptSet) -> dict[str, Any]:
    result = run_cycle(lm, tool, prompts, STEERING, repeat=1)
    steering = {k: result.steering[k] for k in ("scope", "multiplier", "max_new_tokens")}
    return {"steering": {**steering, "layers": [result.steering["layers"][0], result.steering["layers"][-1]]},
            "prompts": [{"label": label, "first_tokens": tokens[:FIRST_TOKENS]}
                        for label, tokens in zip(result.labels, result.new_tokens)]}


def test_checklist_outcome_matches_golden(golden):
    golden.assert_matches(checklist_outcome)


def test_direction_summary_matches_golden(golden):
    golden.assert_matches(direction_record)


def _transformers_major() -> int:
    import transformers

    return int(transformers.__version__.split(".")[0])


# A known incompatibility, kept visible rather than hidden: under transformers 4.x, nnsight 0.8's
# `TransformersModel` generation does not reproduce `model.generate` (4.57: even unsteered, tokens differ
# from hooks/pyvene at the last steps; 4.53: the wrapper cannot be built on a local model directory, its
# pipeline asks for a feature extractor the directory does not have). Extraction agrees bitwise there.
# strict: the day it matches again, this xfail fails and must be removed.
NNSIGHT_GENERATE_ON_4X = pytest.mark.xfail(
    condition="_transformers_major() < 5", strict=True,
    reason="nnsight 0.8 generation under transformers 4.x differs from model.generate (see docs/regression-gate.md)")


def test_steered_labels_and_first_tokens_match_golden(golden, request, tool_name):
    if tool_name == "nnsight":
        request.applymarker(NNSIGHT_GENERATE_ON_4X)
    golden.assert_matches(steering_record)
