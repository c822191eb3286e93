"""Inputs shared by the Section D checks: one prompt, and prompts of unequal lengths for padding."""

from __future__ import annotations

import pytest

from parity_lib.models.batching import Batch
from parity_lib.run import checklist
from parity_lib.tools.registry import get_extractor

LAYER_NOTE = "the model spec's layer (16 for the protocol's models)"


@pytest.fixture(scope="session")
def layer(loaded_model) -> int:
    return loaded_model.spec.layer


@pytest.fixture(scope="session")
def check_inputs(loaded_model, suite) -> checklist.Inputs:
    """The same inputs the gate uses: one prompt, the position batches (the study's full contrastive batch in
    both row orders, three eval prompts of unequal lengths), the cross-tool batches."""
    return checklist.inputs(loaded_model, suite.prompts)


@pytest.fixture(scope="session")
def one_prompt(check_inputs) -> Batch:
    return check_inputs.one


@pytest.fixture(scope="session")
def position_batches(check_inputs) -> list[list[str]]:
    return check_inputs.position


@pytest.fixture(scope="session")
def cross_tool_batches(check_inputs) -> list[Batch]:
    return check_inputs.cross_tool


@pytest.fixture
def extractor(tool_name):
    return get_extractor(tool_name)
