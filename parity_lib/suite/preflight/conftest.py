"""Inputs shared by the Section D checks: one prompt, and prompts of unequal lengths for padding."""

from __future__ import annotations

import pytest

from parity_lib import checklist
from parity_lib.batching import Batch
from parity_lib.extractors import get_extractor

LAYER_NOTE = "the model spec's layer (16 for the protocol's models)"


@pytest.fixture(scope="session")
def layer(loaded_model) -> int:
    return loaded_model.spec.layer


@pytest.fixture(scope="session")
def one_prompt(loaded_model, suite) -> Batch:
    return checklist.single(loaded_model, suite.prompts.harmful[0])


@pytest.fixture(scope="session")
def position_batches(loaded_model, suite) -> list[list[str]]:
    """The study's full contrastive batch (both row orders) and three eval prompts of unequal lengths."""
    return checklist.position_batches(loaded_model, suite.prompts)


@pytest.fixture(scope="session")
def cross_tool_batches(loaded_model, suite, one_prompt) -> list[Batch]:
    """One prompt, and the full contrastive batch the study extracts from."""
    return [one_prompt, checklist.contrastive_batch(loaded_model, suite.prompts)]


@pytest.fixture
def extractor(tool_name):
    return get_extractor(tool_name)
