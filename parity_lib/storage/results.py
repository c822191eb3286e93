"""Result files: atomic JSON writes, the checklist file, per-cycle files, and resume.

A result is written to a temporary file in the same directory and renamed over the target, so a run
killed half-way leaves either the old complete file or the new complete file, never a partial one.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

CHECKLIST_NAME = "phase1_parity_checklist.json"
SCHEMA = 1


def _file_mode() -> int:
    """0666 less the process umask (0644 under the usual 022): colleagues sharing a results directory
    can read what a run wrote. `mkstemp` alone would leave 0600."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_text_atomic(path: str | os.PathLike[str], text: str | bytes) -> None:
    """The one writer for results, reports and snapshots: a temp file in the same directory, then
    `os.replace`, so readers never see half a file and a killed run leaves the old complete one."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(text.encode("utf-8") if isinstance(text, str) else text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _file_mode())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=1, sort_keys=True, default=str) + "\n")


def read_json(path: Path) -> Any | None:
    """The file's content, or None when it is missing or unreadable (a stray partial file is ignored)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def checklist_key(entry: Mapping[str, Any]) -> str:
    return f"{entry['model']}|{entry['tool']}|{entry['check']}"


def merge_checklist(path: Path, entries: Iterable[Mapping[str, Any]], config: Mapping[str, Any],
                    provenance: Mapping[str, Any], models: Mapping[str, Any]) -> dict[str, Any]:
    """Update the checklist file with this run's entries. Entries from an earlier run of the same
    configuration (dtype, device, prompts, code) are kept for the models/checks this run did not
    touch; a different configuration starts a fresh file, since its numbers are not comparable. Processes
    writing one results directory at once (xdist controllers of several launches, shards of one) take turns:
    each merges into what the last one wrote."""
    from parity_lib.storage.locking import file_lock

    with file_lock(path.with_name(path.name + ".lock")):
        return _merge_checklist(path, entries, config, provenance, models)


def _merge_checklist(path: Path, entries: Iterable[Mapping[str, Any]], config: Mapping[str, Any],
                     provenance: Mapping[str, Any], models: Mapping[str, Any]) -> dict[str, Any]:
    old = read_json(path)
    keep = {}
    if old and old.get("config") == dict(config):
        keep = {checklist_key(e): e for e in old.get("entries", [])}
        models = {**old.get("models", {}), **models}
    elif old:  # another configuration's finished checklist: set aside, never overwritten
        cfg = old.get("config", {})
        tag = f"{cfg.get('dtype')}-{str(cfg.get('device')).replace(':', '')}-{str(cfg.get('code'))[:8]}"
        os.replace(path, path.with_name(f"{path.stem}.{tag}.json"))
    for entry in entries:
        keep[checklist_key(entry)] = dict(entry)
    ordered = [keep[k] for k in sorted(keep)]
    data = {"schema": SCHEMA, "config": dict(config), "provenance": dict(provenance), "models": dict(models),
            "entries": ordered, "summary": summarize_checklist(ordered)}
    write_json_atomic(path, data)
    return data


def summarize_checklist(entries: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """{model: {"passed": bool, "failed": [check [tool], ...], "per_tool": {tool: bool}}}."""
    out: dict[str, Any] = {}
    for e in entries:
        m = out.setdefault(e["model"], {"passed": True, "failed": [], "per_tool": {}})
        for tool in (t for t in e["tool"].split("~") if t != "*"):
            m["per_tool"][tool] = m["per_tool"].get(tool, True) and bool(e["passed"])
        if not e["passed"]:
            m["passed"] = False
            m["failed"].append(f"{e['check']} [{e['tool']}]")
    return out


def cycle_path(results_dir: Path, model: str, tool: str, repeat: int) -> Path:
    return Path(results_dir) / "phase1" / model / tool / f"r{repeat}.json"


def baseline_path(results_dir: Path, model: str) -> Path:
    return Path(results_dir) / "phase1" / model / "unsteered.json"


def error_path(path: Path) -> Path:
    return path.with_name(path.stem + ".error.json")


def current_record(path: Path, key: str) -> dict[str, Any] | None:
    """The finished record at `path` if it was made with configuration `key`, else None."""
    data = read_json(path)
    if data and data.get("status") == "ok" and data.get("config_key") == key:
        return data
    return None


def write_cycle(path: Path, record: Mapping[str, Any]) -> None:
    """An ok record replaces the file and clears a stale error; an error record goes beside it, so a
    finished result is never overwritten by a failed rerun."""
    if record.get("status") == "ok":
        write_json_atomic(path, record)
        error_path(path).unlink(missing_ok=True)
    else:
        write_json_atomic(error_path(path), record)


@dataclass(frozen=True)
class CheckFact:
    """One Section D check's outcome on one model, as the run records it and the checklist file keeps it."""

    model: str
    check: str
    tool: str  # a tool, "a~b" for a pair, "*" for the model
    passed: bool
    message: str
    numbers: dict[str, Any]
    test: str  # the test (node id) or "gate" that ran it

    @classmethod
    def of(cls, model: str, result: Any, test: str) -> "CheckFact":
        return cls(model, result.check, result.tool, result.passed, result.message, dict(result.numbers), test)


@dataclass(frozen=True)
class CycleFact:
    """What the run knows of one (model, tool, repeat) cycle: where its record is and how it went. The record
    itself stays in its file (written once by the worker that computed it); the report reads it there."""

    model: str
    tool: str
    repeat: int
    path: str
    config_key: str
    status: str = "ok"  # ok | error (the tool's) | not_run (a fault of the machine: `faults.py`)
    computed: bool = False  # by this run (False: reused from a matching file)
    error: str | None = None

    @property
    def ident(self) -> tuple[str, str, int]:
        return (self.model, self.tool, self.repeat)
