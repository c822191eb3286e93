"""The `golden` fixture: compares a record of this (model, tool) with golden/<prompt set>/<model>/test_golden.json.

Every tool is compared with the same entry. Under `--snapshot-update` only the reference tool (the
first of `--parity-tools`, hooks by default) writes it, and every other tool must equal the reference's
fresh record within tolerance, so a broken tool can never become the golden.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import pytest

from parity_lib.models.loading import LoadedModel
from parity_lib.prompts import PromptSet
from parity_lib.storage.golden import compare_golden, render_changes
from parity_lib.storage.golden_store import GoldenEntry, GoldenExtension

Builder = Callable[[LoadedModel, str, PromptSet], dict[str, Any]]


@pytest.fixture(scope="session")
def golden_record(suite):
    """`golden_record(builder, model, tool)`: the builder's record, computed once per session."""
    cache: dict[tuple[str, str, str], dict[str, Any]] = {}

    def get(builder: Builder, model: str, tool: str) -> dict[str, Any]:
        key = (builder.__name__, model, tool)
        if key not in cache:
            cache[key] = builder(suite.model(model), tool, suite.prompts)
        return cache[key]
    return get


@dataclass(repr=False)
class GoldenCheck:
    snapshot: Any
    record: Callable[[Builder, str], dict[str, Any]]
    tool: str
    writer: str
    updating: bool
    provenance: dict[str, Any]

    def __repr__(self) -> str:
        return f"GoldenCheck(tool={self.tool!r}, writer={self.writer!r}, updating={self.updating})"

    def assert_matches(self, builder: Builder) -> None:
        mine = self.record(builder, self.tool)
        if self.updating and self.tool != self.writer:
            changes = compare_golden(self.record(builder, self.writer), mine)
            assert not changes, (f"{self.tool} differs from {self.writer}, the tool that writes the golden "
                                 f"on --snapshot-update:\n{render_changes(changes)}")
            return
        assert self.snapshot == GoldenEntry(mine, {**self.provenance, "written_by": self.tool})


@pytest.fixture
def golden(snapshot, suite, loaded_model, model_name, tool_name, golden_record) -> GoldenCheck:
    return GoldenCheck(
        snapshot=snapshot.use_extension(GoldenExtension),
        record=lambda builder, tool: golden_record(builder, model_name, tool),
        tool=tool_name, writer=suite.tools[0], updating=snapshot.update_snapshots,
        provenance=suite.provenance(model=loaded_model.describe()))
