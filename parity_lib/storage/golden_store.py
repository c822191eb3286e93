"""Golden snapshots, the pytest side: syrupy storage keeping one JSON file per (prompt set, model) under
`golden/`, each entry a summary (see `golden.py`) plus provenance that is written, never compared.

Every tool of a run is checked against the same file: the snapshot name is the test function's name
without its parameters, and the file is chosen by the test's model and the run's prompt set.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

from syrupy.data import Snapshot, SnapshotCollection
from syrupy.extensions.base import AbstractSyrupyExtension

from parity_lib.prompts import DEFAULT_PROMPTS
from parity_lib.storage.golden import FieldChange, compare_golden, render_changes

GOLDEN_SCHEMA = 1
GOLDEN_DIR = Path(__file__).resolve().parents[2] / "golden"  # the repository's snapshots (tests/golden)


@dataclass(frozen=True)
class GoldenEntry:
    """What a test asserts against its golden: compared `data`, and provenance that is only recorded."""

    data: Mapping[str, Any]
    provenance: Mapping[str, Any] = field(default_factory=dict)


def prompt_set_name(prompts_option: str | os.PathLike | None) -> str:
    """The prompt set's part of a golden's path: the file name without suffix (`paper_prompts`)."""
    return Path(prompts_option).stem if prompts_option else DEFAULT_PROMPTS.stem


# syrupy scans the snapshot site of every collected test file for unused snapshots; a test without a
# model has no site, and this directory (which never exists) keeps that scan away from every model's files.
_NO_MODEL = "(no model_name parameter)"


def _model_of(test_location: Any) -> str | None:
    callspec = getattr(test_location.item, "callspec", None)
    return None if callspec is None else callspec.params.get("model_name")


class GoldenExtension(AbstractSyrupyExtension):
    """syrupy storage: golden/<prompt set>/<model>/<test file>.json holds one entry per test function.

    The file name is the test file's basename, which is how syrupy relates files to tests when it
    reports unused snapshots; the model directory is taken from the test's `model_name` parameter and
    the prompt-set directory from `--parity-prompts`, so a run only discovers (and can only call unused) the
    goldens of its own models and prompt set.
    """

    file_extension = "json"
    golden_dir: Path = GOLDEN_DIR

    def serialize(self, data: Any, *, exclude: Any = None, include: Any = None, matcher: Any = None) -> str:
        entry = data if isinstance(data, GoldenEntry) else GoldenEntry(data)
        return json.dumps({"golden_schema": GOLDEN_SCHEMA, "data": entry.data, "provenance": entry.provenance},
                          sort_keys=True, indent=2, allow_nan=False, default=str)

    def matches(self, *, serialized_data: Any, snapshot_data: Any) -> bool:
        return not self.changes(serialized_data, snapshot_data)

    @staticmethod
    def changes(serialized_data: Any, snapshot_data: Any) -> list[FieldChange]:
        """The record's changes; a golden of another schema is one change, named for what it is."""
        old, new = json.loads(snapshot_data), json.loads(serialized_data)
        if old.get("golden_schema") != new["golden_schema"]:
            return [FieldChange("golden_schema", old.get("golden_schema"), new["golden_schema"])]
        return compare_golden(old["data"], new["data"])

    def diff_lines(self, serialized_data: Any, snapshot_data: Any) -> Iterator[str]:
        if not snapshot_data:
            yield ("no golden is recorded for this (prompt set, model, test); record one with "
                   "`--snapshot-update` after checking the run is right")
            return
        yield from render_changes(self.changes(serialized_data, snapshot_data)).splitlines()

    @classmethod
    def dirname(cls, *, test_location: Any) -> str:
        prompts = test_location.item.config.getoption("--parity-prompts")
        return str(Path(cls.golden_dir) / prompt_set_name(prompts) / (_model_of(test_location) or _NO_MODEL))

    @classmethod
    def get_location(cls, *, test_location: Any, index: Any) -> str:
        if _model_of(test_location) is None:
            raise ValueError(f"{test_location.nodeid}: a golden test must be parametrized by model_name "
                             f"(ask for the `model_name` fixture)")
        return super().get_location(test_location=test_location, index=index)

    @classmethod
    def get_snapshot_name(cls, *, test_location: Any, index: Any = 0) -> str:
        """The test function's name without parameters, so every tool shares one entry."""
        suffix = f"[{index}]" if isinstance(index, str) else f".{index}" if index else ""
        return f"{test_location.methodname}{suffix}"

    @classmethod
    def matches_test_location(cls, *, test_location: Any, snapshot_location: str) -> bool:
        """The file of this test's model. On the xdist controller items are rebuilt from node ids, with
        no parameters: there the model must be one of the id's dash-separated parts."""
        loc = Path(snapshot_location)
        if loc.stem != test_location.basename:
            return False
        callspec = getattr(test_location.item, "callspec", None)
        if callspec is not None:
            return callspec.params.get("model_name") == loc.parent.name
        ids = test_location.nodename.partition("[")[2].removesuffix("]")
        return f"-{loc.parent.name}-" in f"-{ids}-"

    def read_snapshot_collection(self, *, snapshot_location: str) -> SnapshotCollection:
        collection = SnapshotCollection(location=snapshot_location)
        try:
            names = _read_file(snapshot_location)["snapshots"]
        except (OSError, ValueError):
            return collection  # unreadable: reported when a test asserts against it
        for name in names:
            collection.add(Snapshot(name=name))
        return collection

    def read_snapshot_data_from_location(self, *, snapshot_location: str, snapshot_name: str,
                                         session_id: str) -> str | None:
        try:
            content = _read_file(snapshot_location)
        except FileNotFoundError:
            return None
        data = content.get("snapshots", {}).get(snapshot_name)
        if data is None:
            return None
        return json.dumps({"golden_schema": content.get("golden_schema"), "data": data,
                           "provenance": content.get("provenance", {})}, sort_keys=True)

    @classmethod
    def write_snapshot_collection(cls, *, snapshot_collection: SnapshotCollection,
                                  name_order: dict[str, int] | None = None) -> None:
        path = Path(snapshot_collection.location)
        try:
            content = _read_file(path)
        except (OSError, ValueError):  # missing, or unreadable: --snapshot-update rewrites it
            content = {"snapshots": {}}
        provenance = content.get("provenance", {})
        for snapshot in snapshot_collection:
            entry = json.loads(str(snapshot.data))
            content["snapshots"][snapshot.name] = entry["data"]
            provenance = entry["provenance"] or provenance
        content.update(golden_schema=GOLDEN_SCHEMA, provenance=provenance)
        _write_file(path, content)

    def delete_snapshots(self, *, snapshot_location: str, snapshot_names: set[str]) -> None:
        path = Path(snapshot_location)
        content = _read_file(path)
        for name in snapshot_names:
            content["snapshots"].pop(name, None)
        if content["snapshots"]:
            _write_file(path, content)
        else:
            path.unlink()


def _read_file(path: str | Path) -> dict[str, Any]:
    try:
        content = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"golden file {path} is not valid JSON ({exc.msg} at line {exc.lineno}); restore "
                         f"it from git or rewrite it with --snapshot-update") from None
    if not isinstance(content, dict) or not isinstance(content.get("snapshots"), dict):
        raise ValueError(f"golden file {path} has no 'snapshots' object; restore it from git or rewrite it "
                         f"with --snapshot-update")
    return content


def _write_file(path: Path, content: Mapping[str, Any]) -> None:
    """Atomic replace, so an interrupted update never leaves half a golden behind."""
    from parity_lib.storage.results import write_text_atomic

    write_text_atomic(path, _dumps(content) + "\n")


def _dumps(value: Any, indent: str = "", *, in_list: bool = False) -> str:
    """JSON with sorted keys and one field per line, except that a list of plain values, or a flat record
    inside a list (one prompt's label and tokens), stays on one line: a reviewer's `git diff` then shows
    which field changed without a screen of token ids."""
    if not value or _flat(value) and (in_list or not isinstance(value, Mapping)):
        return json.dumps(value, sort_keys=True, allow_nan=False)
    inner = indent + "  "
    if isinstance(value, Mapping):
        fields = [f"{inner}{json.dumps(str(k))}: {_dumps(value[k], inner)}" for k in sorted(value, key=str)]
        return "{\n" + ",\n".join(fields) + f"\n{indent}}}"
    return "[\n" + ",\n".join(inner + _dumps(v, inner, in_list=True) for v in value) + f"\n{indent}]"


def _flat(value: Any) -> bool:
    """A plain value, a list of plain values, or a mapping of those."""
    if isinstance(value, Mapping):
        return all(not isinstance(v, Mapping) and _flat(v) for v in value.values())
    if isinstance(value, list):
        return not any(isinstance(v, (Mapping, list)) for v in value)
    return True

