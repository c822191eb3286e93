"""Study metrics of PROTOCOL Section C: cosines, rates with Wilson intervals, divergence, per-model summary.

Pure numpy in float64: directions arrive as JSON floats, and telling 0.9990 from 0.9989 (the
determinism threshold) must not depend on the dtype the extractor happened to use. Bad input raises
`ValueError` instead of producing NaN, because a NaN compares False against every threshold and would
silently make a decision rule fail (or pass).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence, TypeAlias

import numpy as np

DETERMINISM_THRESHOLD = 0.999
LABELS = ("refusal", "garbled", "normal")
# A gap of exactly 6/30 prompts must read as 20 pp, not 20.000000000000004 pp.
GAP_DECIMALS = 9

Vector: TypeAlias = Sequence[float] | np.ndarray


def _vector(values: Vector) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"expected a non-empty 1-D vector, got shape {arr.shape}")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise ValueError(f"vector has {bad.size} non-finite entries (first at index {bad[0]}); "
                         "a NaN/Inf direction cannot be compared: fix the extraction")
    return arr


def cosine(a: Vector, b: Vector) -> float:
    """Cosine similarity in float64, clipped to [-1, 1] so identical vectors give exactly 1.0 or less."""
    x, y = _vector(a), _vector(b)
    if x.shape != y.shape:
        raise ValueError(f"cannot compare directions of shapes {x.shape} and {y.shape}; "
                         "both must come from the same hidden size")
    nx, ny = np.linalg.norm(x), np.linalg.norm(y)
    if nx == 0.0 or ny == 0.0:
        raise ValueError("a zero vector has no direction; cosine is undefined")
    return float(np.clip(np.dot(x, y) / (nx * ny), -1.0, 1.0))


def pairwise_cosines(vectors: Sequence[Vector]) -> list[float]:
    """Cosines of all unordered pairs i < j (K repeats give K·(K−1)/2 values)."""
    return [cosine(a, b) for a, b in itertools.combinations(vectors, 2)]


def cross_cosines(first: Sequence[Vector], second: Sequence[Vector]) -> list[float]:
    """Cosines of every vector in `first` against every vector in `second` (repeat × repeat)."""
    return [cosine(a, b) for a in first for b in second]


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials.

    Wilson rather than the normal approximation because rates of 0/30 and 30/30 are expected here,
    where the normal interval collapses to a width of zero.
    """
    if n <= 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n > 0, got k={k}, n={n}")
    p = k / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # At k = 0 and k = n the bound is exactly 0 or 1; float rounding would leave 1e-16 off it.
    lo = 0.0 if k == 0 else max(0.0, centre - half)
    hi = 1.0 if k == n else min(1.0, centre + half)
    return lo, hi


def mean_std(values: Iterable[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1); a single value has std 0.0, not NaN."""
    arr = np.asarray(list(values), dtype=np.float64)
    if arr.size == 0:
        raise ValueError("mean_std of no values is undefined")
    std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    return float(arr.mean()), std


def component_divergence(a: Vector, b: Vector, top: int = 5) -> dict[str, Any]:
    """Where two directions differ (the protocol's per-component divergence, to localise a mismatch).

    Returns the largest |a_i − b_i|, its index, the `top` worst components as
    (index, a_i, b_i, a_i − b_i), and ‖a − b‖₂.
    """
    x, y = _vector(a), _vector(b)
    if x.shape != y.shape:
        raise ValueError(f"cannot compare directions of shapes {x.shape} and {y.shape}")
    delta = x - y
    order = np.argsort(-np.abs(delta), kind="stable")[:top]
    return {
        "max_abs": float(np.abs(delta).max()),
        "argmax": int(order[0]),
        "top": [(int(i), float(x[i]), float(y[i]), float(delta[i])) for i in order],
        "l2": float(np.linalg.norm(delta)),
    }


def jsonable(obj: Any) -> Any:
    """Dataclasses, mappings and tuples as plain dicts and lists, so a JSON round trip is lossless."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    return obj


@dataclass(frozen=True)
class Stat:
    """Mean ± sample std over n repeats."""

    mean: float
    std: float
    n: int


@dataclass(frozen=True)
class RateStat:
    """A label rate: mean ± std over repeats, and a Wilson 95% CI on the counts pooled over repeats."""

    mean: float
    std: float
    k: int
    n: int
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class ToolSummary:
    """One tool on one model. Fields that need successful repeats are None when there are too few."""

    tool: str
    n_ok: int
    n_error: int
    errors: tuple[str, ...]
    repeats_ok: tuple[int, ...]
    within_min: float | None
    within_mean: float | None
    deterministic: bool | None  # None: fewer than 2 ok repeats, so determinism is unknown, not False
    norm: Stat | None
    rates: Mapping[str, RateStat] | None  # None when no repeat succeeded: an error is never a 0% rate
    cycle_s: Stat | None


@dataclass(frozen=True)
class PairSummary:
    """Two tools (sorted names) on one model; None when either tool has no successful repeat."""

    tools: tuple[str, str]
    n_pairs: int
    cos_min: float | None
    cos_mean: float | None
    cos_max: float | None
    refusal_gap_pp: float | None
    divergence: Mapping[str, Any] | None  # component_divergence of the first ok directions


@dataclass(frozen=True)
class ModelSummary:
    """Everything the decision rules and the report need about one model."""

    model: str
    tools: Mapping[str, ToolSummary]
    pairs: tuple[PairSummary, ...]
    settings: Mapping[str, list]

    def pair(self, a: str, b: str) -> PairSummary:
        key = tuple(sorted((a, b)))
        for p in self.pairs:
            if p.tools == key:
                return p
        raise KeyError(f"no pair {key} on {self.model}; tools are {sorted(self.tools)}")

    def to_dict(self) -> dict[str, Any]:
        return jsonable(self)


def _is_ok(record: Mapping[str, Any]) -> bool:
    if record.get("status") != "ok":
        return False
    if not record.get("direction"):
        raise ValueError(f"{_label(record)}: status is 'ok' but there is no direction; "
                         "the cycle writer must record status='error' instead")
    return True


def _label(record: Mapping[str, Any]) -> str:
    return f"{record.get('model')}/{record.get('tool')}/r{record.get('repeat')}"


def _counts(record: Mapping[str, Any], label: str) -> tuple[int, int]:
    """Label count and prompt count; exact labels win over rounded rates when both are present."""
    labels = record.get("labels")
    if labels:
        return sum(1 for x in labels if x == label), len(labels)
    n = int(record["n_prompts"])
    return round(float(record["rates"].get(label, 0.0)) * n), n


def _rate_stat(ok: Sequence[Mapping[str, Any]], label: str) -> RateStat:
    """Mean ± std over repeats; the 95% interval is over the *prompts* (n = the distinct evaluation prompts,
    not prompts × repeats): bit-identical greedy repeats are one sample, not five, and repeats that differ
    move the mean, not the sample size."""
    counts = [_counts(r, label) for r in ok]
    mean, std = mean_std(k / n for k, n in counts)
    n = max(c[1] for c in counts)
    k = round(mean * n)
    return RateStat(mean, std, k, n, *wilson_interval(k, n))


def _stat(values: Sequence[float]) -> Stat | None:
    return Stat(*mean_std(values), len(values)) if values else None


def _units(ok: Sequence[Mapping[str, Any]]) -> list[np.ndarray]:
    return [_vector(r["direction"]["unit"]) for r in ok]


def _summarize_tool(tool: str, records: Sequence[Mapping[str, Any]]) -> ToolSummary:
    ok = [r for r in records if _is_ok(r)]
    errors = tuple(str(r.get("error") or f"status {r.get('status')!r}, no message")
                   for r in records if not _is_ok(r))
    within = pairwise_cosines(_units(ok))
    times = [float(t) for t in ((r.get("timings") or {}).get("total_s") for r in records) if t is not None]
    return ToolSummary(
        tool=tool, n_ok=len(ok), n_error=len(errors), errors=errors,
        repeats_ok=tuple(int(r["repeat"]) for r in ok),
        within_min=min(within) if within else None,
        within_mean=float(np.mean(within)) if within else None,
        deterministic=min(within) > DETERMINISM_THRESHOLD if within else None,
        norm=_stat([float(r["direction"]["norm"]) for r in ok]),
        rates={label: _rate_stat(ok, label) for label in LABELS} if ok else None,
        cycle_s=_stat(times),
    )


def _summarize_pair(ok_a: Sequence[Mapping[str, Any]], ok_b: Sequence[Mapping[str, Any]],
                    a: ToolSummary, b: ToolSummary) -> PairSummary:
    if not ok_a or not ok_b or a.rates is None or b.rates is None:
        return PairSummary((a.tool, b.tool), 0, None, None, None, None, None)
    units_a, units_b = _units(ok_a), _units(ok_b)
    cos = cross_cosines(units_a, units_b)
    gap = round(abs(a.rates["refusal"].mean - b.rates["refusal"].mean) * 100.0, GAP_DECIMALS)
    return PairSummary((a.tool, b.tool), len(cos), min(cos), float(np.mean(cos)), max(cos), gap,
                       component_divergence(units_a[0], units_b[0]))


def _settings(records: Sequence[Mapping[str, Any]]) -> dict[str, list]:
    """Distinct values of the settings a reader needs; more than one value is worth seeing in the report."""
    def distinct(get: Any) -> list:
        return list(dict.fromkeys(v for v in map(get, records) if v is not None))
    return {
        "layer": distinct(lambda r: (r.get("direction") or {}).get("layer")),
        "multiplier": distinct(lambda r: (r.get("steering") or {}).get("multiplier")),
        "scope": distinct(lambda r: (r.get("steering") or {}).get("scope")),
        "steer_with": distinct(lambda r: (r.get("steering") or {}).get("steer_with")),
        "generation": distinct(lambda r: ((r.get("steering") or {}).get("generation") or {}).get("path")),
        "n_prompts": distinct(lambda r: r.get("n_prompts")),
        "repeats": sorted(distinct(lambda r: r.get("repeat"))),
    }


def _group_by_tool(records: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for r in sorted(records, key=lambda r: (str(r.get("tool")), int(r.get("repeat", 0)))):
        group = groups.setdefault(str(r.get("tool")), [])
        if any(g.get("repeat") == r.get("repeat") for g in group):
            raise ValueError(f"{_label(r)} appears twice; each (model, tool, repeat) must be one record")
        group.append(r)
    return groups


def summarize_model(records: Sequence[Mapping[str, Any]]) -> ModelSummary:
    """Summarise every cycle record of one model: per tool, and per sorted tool pair."""
    if not records:
        raise ValueError("summarize_model needs at least one cycle record")
    models = sorted({str(r.get("model")) for r in records})
    if len(models) != 1:
        raise ValueError(f"records of one model expected, got {models}; group records by model first")
    groups = _group_by_tool(records)
    tools = {t: _summarize_tool(t, rs) for t, rs in groups.items()}
    ok = {t: [r for r in rs if _is_ok(r)] for t, rs in groups.items()}
    pairs = tuple(_summarize_pair(ok[a], ok[b], tools[a], tools[b])
                  for a, b in itertools.combinations(sorted(groups), 2))
    return ModelSummary(models[0], tools, pairs, _settings(records))
