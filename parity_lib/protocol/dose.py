"""Dose-response of one tool at one layer, and what a sweep concludes from it (pure functions).

* the curve: coherent refusal (with its Wilson 95% interval over the prompts) and garbled rate per multiplier;
* the **working window**: multipliers with coherent refusal ≥ 80% and garbled ≤ 10%;
* **m50**, the multiplier where coherent refusal first reaches 50% (linear in log multiplier between the grid
  points around the crossing), with an interval from where the interval's upper and lower bounds cross 50%;
* the **steering scale ratio** of two tools, m50(T) / m50(U) with the interval those give: a ratio whose
  interval excludes 1 is a tool that steers with a different effective scale (the kind of gap that makes one
  tool look right and the other broken at one multiplier);
* the **recommendation**: the layer whose window (common to every tool) is widest, and its middle multiplier.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from parity_lib.protocol.metrics import wilson_interval

WINDOW_REFUSAL = 0.8
WINDOW_GARBLED = 0.1
HALF = 0.5


@dataclass(frozen=True)
class Dose:
    multiplier: float
    k: int
    n: int
    refusal: float
    low: float
    high: float
    garbled: float


def curve(points: Mapping[float, Mapping[str, Any] | None]) -> list[Dose]:
    """The tool's points at one layer, by multiplier (points without a record are left out, never zero)."""
    out = []
    for m, record in sorted(points.items()):
        if not record or record.get("status") != "ok":
            continue
        labels = record["labels"]
        k, n = sum(x == "refusal" for x in labels), len(labels)
        low, high = wilson_interval(k, n)
        out.append(Dose(float(m), k, n, k / n, low, high, sum(x == "garbled" for x in labels) / n))
    return out


def window(doses: Sequence[Dose]) -> list[float]:
    return [d.multiplier for d in doses if d.refusal >= WINDOW_REFUSAL and d.garbled <= WINDOW_GARBLED]


def _crossing(doses: Sequence[Dose], value: Any) -> float | None:
    """The first multiplier where `value(dose)` reaches 50%, interpolated in log multiplier; None if never."""
    positive = [d for d in doses if d.multiplier > 0]
    for before, after in zip([None, *positive], positive):
        if value(after) < HALF:
            continue
        if before is None or value(before) >= HALF:
            return after.multiplier
        t = (HALF - value(before)) / (value(after) - value(before))
        return math.exp(math.log(before.multiplier) + t * (math.log(after.multiplier) - math.log(before.multiplier)))
    return None


@dataclass(frozen=True)
class M50:
    estimate: float | None
    low: float | None  # where the interval's upper bound reaches 50% (None: already at the first multiplier)
    high: float | None  # where its lower bound reaches 50% (None: never within the grid)


def m50(doses: Sequence[Dose]) -> M50:
    return M50(_crossing(doses, lambda d: d.refusal), _crossing(doses, lambda d: d.high),
               _crossing(doses, lambda d: d.low))


@dataclass(frozen=True)
class ScaleRatio:
    """m50(slower) / m50(faster) ≥ 1, and its interval; `differs` when the interval excludes 1."""

    slower: str
    faster: str
    ratio: float
    low: float | None
    high: float | None

    @property
    def differs(self) -> bool:
        return (self.low is not None and self.low > 1.0) or (self.high is not None and self.high < 1.0)


def scale_ratio(a: str, da: Sequence[Dose], b: str, db: Sequence[Dose]) -> ScaleRatio | None:
    """None when either tool never reaches 50% coherent refusal within the grid."""
    ma, mb = m50(da), m50(db)
    if ma.estimate is None or mb.estimate is None:
        return None
    if ma.estimate < mb.estimate:
        (a, ma), (b, mb) = (b, mb), (a, ma)
    low = ma.low / mb.high if ma.low is not None and mb.high is not None else None
    high = ma.high / mb.low if ma.high is not None and mb.low is not None else None
    return ScaleRatio(a, b, ma.estimate / mb.estimate, low, high)


@dataclass(frozen=True)
class Recommendation:
    layer: int | None
    multiplier: float | None
    evidence: str


def recommend(layers: Mapping[int, Mapping[str, Sequence[Dose]]], own_layer: int) -> Recommendation:
    """The layer whose common window (multipliers in every tool's window) is widest — ties go to the layer
    nearest the model's own — and the middle multiplier of that window."""
    common = {layer: sorted(set.intersection(*(set(window(d)) for d in tools.values())))
              for layer, tools in layers.items() if tools}
    ranked = sorted(common, key=lambda layer: (-len(common[layer]), abs(layer - own_layer)))
    if not ranked or not common[ranked[0]]:
        best = max(((layer, d) for layer, tools in layers.items() for ds in tools.values() for d in ds),
                   key=lambda x: (x[1].refusal - x[1].garbled, -x[1].multiplier), default=None)
        seen = (f"; the most coherent refusal seen: layer {best[0]} ×{best[1].multiplier:g}, "
                f"{100 * best[1].refusal:.0f}% [{100 * best[1].low:.0f}, {100 * best[1].high:.0f}] refusal, "
                f"{100 * best[1].garbled:.0f}% garbled" if best else "")
        return Recommendation(None, None, f"no working window at any layer (coherent refusal ≥ "
                                          f"{100 * WINDOW_REFUSAL:.0f}% and garbled ≤ {100 * WINDOW_GARBLED:.0f}% "
                                          f"for every tool){seen}")
    layer = ranked[0]
    mults = common[layer]
    middle = mults[len(mults) // 2]
    return Recommendation(layer, middle, f"layer {layer}: every tool's coherent refusal ≥ "
                                         f"{100 * WINDOW_REFUSAL:.0f}% and garbled ≤ {100 * WINDOW_GARBLED:.0f}% at "
                                         f"×{', ×'.join(f'{m:g}' for m in mults)} (the widest common window); "
                                         f"×{middle:g} is its middle")
