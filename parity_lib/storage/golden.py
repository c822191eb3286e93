"""Golden snapshots, the pure part: summaries of what a run produced and a tolerance-aware comparison.
The syrupy storage (one JSON file per (prompt set, model) under `golden/`) is `golden_store.py`.

A golden holds summaries, never raw tensors: a direction is its norm, leading and largest components
rounded to a stated tolerance, and a hash of the whole rounded vector. Comparison is tolerance-aware:
a number within the tolerance stated by the enclosing summary (its `tolerance` key) passes; any other
difference is a `FieldChange` naming the field path, both values and |Δ|. The file's provenance header
(versions, commit, machine, time) is written for the reader and never compared.

Every tool of a run is checked against the same file: the snapshot name is the test function's name
without its parameters, and the file is chosen by the test's model and the run's prompt set.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

MAX_RENDERED = 40
_FLOAT_SLACK = 1e-12  # 0.1235 − 0.1234 is 1.0000000000000009e-4 in binary floating point


class _Missing:
    """Marks a field present on one side only."""

    def __repr__(self) -> str:
        return "(missing)"


_MISSING = _Missing()


def direction_summary(unit: Sequence[float] | np.ndarray, norm: float, *, decimals: int = 4) -> dict[str, Any]:
    """Norm, first 8 and 5 largest-|x| components rounded to `decimals`, and a sha256 of the whole rounded
    vector. The stated tolerance is one rounding step: two runs whose values differ by float noise can
    round to neighbouring steps, never further apart."""
    vec = np.asarray(unit, dtype=np.float64).ravel()
    rounded = [_round(x, decimals) for x in vec]
    largest = np.argsort(-np.abs(vec), kind="stable")[:5].tolist()
    text = ",".join(f"{x:.{decimals}f}" for x in rounded)
    return {"decimals": decimals, "tolerance": 10.0 ** -decimals, "size": int(vec.size),
            "norm": _round(norm, decimals), "first": rounded[:8],
            "largest": [{"index": int(i), "value": rounded[i]} for i in largest],
            "sha256": hashlib.sha256(text.encode()).hexdigest()}


def _round(x: float, decimals: int) -> float:
    return round(float(x), decimals) + 0.0  # + 0.0 turns -0.0 into 0.0, so the hash does not see a sign


@dataclass(frozen=True)
class FieldChange:
    """One field that differs from the golden by more than its tolerance (or is added/removed)."""

    path: str
    old: Any
    new: Any
    delta: float | None = None  # |new − old| for numbers, None otherwise
    tolerance: float | None = None

    def describe(self) -> str:
        head = f"{self.path}: {_show(self.old)} -> {_show(self.new)}"
        if self.delta is None:
            return head
        return f"{head}  (|Δ| = {self.delta:.6g}, tolerance {self.tolerance:g})"


def _show(value: Any) -> str:
    text = repr(value) if value is _MISSING else json.dumps(value, sort_keys=True)
    return text if len(text) <= 80 else text[:77] + "..."


def stated_tolerances(data: Any, path: str = "") -> dict[str, float]:
    """{path: tolerance} for every mapping in `data` that states a numeric `tolerance`."""
    out: dict[str, float] = {}
    if isinstance(data, Mapping):
        tol = data.get("tolerance")
        if isinstance(tol, (int, float)) and not isinstance(tol, bool):
            out[path] = float(tol)
        for key, value in data.items():
            out.update(stated_tolerances(value, _join(path, str(key))))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            out.update(stated_tolerances(value, f"{path}[{i}]"))
    return out


def compare_golden(old: Any, new: Any, tolerances: Mapping[str, float] | None = None) -> list[FieldChange]:
    """Every difference between `old` (the golden) and `new` beyond tolerance. A number's tolerance is the
    one stated for the longest enclosing path in `tolerances` (and by the golden itself); 0 otherwise.
    Booleans, strings and types compare exactly."""
    tols = {**stated_tolerances(old), **(tolerances or {})}
    return list(_walk(old, new, "", tols))


def _walk(old: Any, new: Any, path: str, tols: Mapping[str, float]) -> Iterator[FieldChange]:
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for key in sorted(set(old) | set(new), key=str):
            sub = _join(path, str(key))
            yield from _walk(old.get(key, _MISSING), new.get(key, _MISSING), sub, tols)
    elif isinstance(old, list) and isinstance(new, list):
        for i in range(max(len(old), len(new))):
            yield from _walk(old[i] if i < len(old) else _MISSING, new[i] if i < len(new) else _MISSING,
                             f"{path}[{i}]", tols)
    elif _is_number(old) and _is_number(new):
        delta, tol = abs(float(new) - float(old)), _tolerance(path, tols)
        if not delta <= tol + _FLOAT_SLACK:  # NaN fails too
            yield FieldChange(path or "<root>", old, new, delta, tol)
    elif type(old) is not type(new) or old != new:
        yield FieldChange(path or "<root>", old, new)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _tolerance(path: str, tols: Mapping[str, float]) -> float:
    """The tolerance of the longest prefix of `path` (on a field boundary) that states one."""
    best, best_len = 0.0, -1
    for prefix, tol in tols.items():
        on_boundary = path == prefix or prefix == "" or path.startswith((prefix + ".", prefix + "["))
        if on_boundary and len(prefix) > best_len:
            best, best_len = tol, len(prefix)
    return best


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def render_changes(changes: Sequence[FieldChange]) -> str:
    """A readable diff: one line per changed field, with old -> new and |Δ| against the tolerance."""
    if not changes:
        return "matches the golden (within the stated tolerances)"
    lines = [f"{len(changes)} field(s) differ from the golden beyond the stated tolerance "
             f"(golden -> this run):"]
    lines += [f"  {c.describe()}" for c in changes[:MAX_RENDERED]]
    if len(changes) > MAX_RENDERED:
        lines.append(f"  ... and {len(changes) - MAX_RENDERED} more")
    return "\n".join(lines)
