"""Protocol Section D, one row per test, parametrized over (model, tool). Each test records its numbers
in results/phase1_parity_checklist.json before asserting."""

from __future__ import annotations

import pytest

from parity_lib.run import checklist
from parity_lib.tools.registry import get_extractor

pytestmark = pytest.mark.preflight


def _check(record_check, model_name, result) -> None:
    record_check(model_name, result)
    assert result.passed, result.message


def test_residual_is_layer_output_before_next_layernorm(loaded_model, model_name, extractor, one_prompt,
                                                        layer, record_check):
    _check(record_check, model_name, checklist.residual_location(loaded_model, extractor, one_prompt, layer))


def test_shape_is_batch_seq_hidden(loaded_model, model_name, extractor, one_prompt, layer, record_check):
    batches = [one_prompt, checklist.divisible_length_batch(loaded_model)]
    _check(record_check, model_name, checklist.shape(loaded_model, extractor, batches, layer))


def test_dtype_is_model_dtype(loaded_model, model_name, extractor, one_prompt, layer, record_check):
    _check(record_check, model_name, checklist.dtype(loaded_model, extractor, one_prompt, layer))


def test_vector_is_last_real_token_in_left_padded_batch(loaded_model, model_name, extractor,
                                                         position_batches, layer, record_check):
    result = checklist.token_position(loaded_model, extractor, position_batches, layer)
    _check(record_check, model_name, result)


def test_captured_after_attention_and_mlp_adds(loaded_model, model_name, extractor, one_prompt, layer,
                                               record_check):
    _check(record_check, model_name, checklist.timing(loaded_model, extractor, one_prompt, layer))


def test_capture_survives_later_in_place_edit(loaded_model, model_name, extractor, one_prompt, layer,
                                              record_check):
    _check(record_check, model_name, checklist.in_place_safety(loaded_model, extractor, one_prompt, layer))


def test_raw_activations_match_across_tools(loaded_model, model_name, tool_pair, cross_tool_batches, layer,
                                            record_check):
    a, b = (get_extractor(t) for t in tool_pair)
    _check(record_check, model_name, checklist.cross_tool(loaded_model, a, b, cross_tool_batches, layer))


def test_result_unchanged_after_other_tools_ran(loaded_model, model_name, extractor, suite, one_prompt,
                                                layer, record_check):
    others = [get_extractor(t) for t in suite.tools if t != extractor.name]
    _check(record_check, model_name, checklist.isolation(loaded_model, extractor, others, one_prompt, layer))
