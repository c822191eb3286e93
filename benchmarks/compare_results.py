"""Compare two `--parity-results-dir` trees cycle by cycle: did the directions and the greedy tokens come out the same?

    python benchmarks/compare_results.py DIR_A DIR_B

DIR is a results directory (holding phase1/) or a folder holding results/ (as benchmarks/gpu_study.sh writes).
For every cycle file phase1/<model>/<tool>/r<k>.json in both trees, and each model's unsteered.json baseline:
the direction summaries ({norm, layer, unit}; parity_lib.run.directions.Direction.summary) exact or by cosine, max
|unit difference| and relative norm difference; the generated tokens (`new_tokens`) prompt by prompt, with the
first differing position; the labels. Reads the JSON only (no parity_lib import); always exits 0, ending
with one line: "same directions: X/Y, same tokens: X/Y cycles".
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any


def phase1(root: Path) -> Path:
    return root / "phase1" if (root / "phase1").is_dir() else root / "results" / "phase1"


def load(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def files(model_dir: Path) -> dict[str, Path]:
    """{"<tool>/r<k>": path} for the model's finished cycle files (error records lie beside as r<k>.error.json)."""
    return {f"{p.parent.name}/{p.stem}": p for p in sorted(model_dir.glob("*/r*.json")) if ".error" not in p.name}


def direction_diff(a: dict[str, Any], b: dict[str, Any]) -> tuple[bool, str]:
    if a == b:
        return True, "identical"
    ua, ub = [float(x) for x in a.get("unit", [])], [float(x) for x in b.get("unit", [])]
    if len(ua) != len(ub) or not ua:
        return False, f"unit length {len(ua)} vs {len(ub)}"
    dot = sum(x * y for x, y in zip(ua, ub))
    cos = dot / (math.sqrt(sum(x * x for x in ua)) * math.sqrt(sum(y * y for y in ub)) or 1.0)
    worst = max(abs(x - y) for x, y in zip(ua, ub))
    na, nb = float(a.get("norm", 0.0)), float(b.get("norm", 0.0))
    layer = "" if a.get("layer") == b.get("layer") else f", layer {a.get('layer')} vs {b.get('layer')}"
    return False, f"cos {cos:.9f}, max|du| {worst:.3g}, norm rel {abs(na - nb) / (abs(na) or 1.0):.3g}{layer}"


def rows_differ(a: list[Any], b: list[Any]) -> list[str]:
    """'prompt@first differing position' for every prompt whose token rows differ."""
    out = []
    for i, (ta, tb) in enumerate(zip(a, b)):
        if ta != tb:
            k = next((j for j, (x, y) in enumerate(zip(ta, tb)) if x != y), min(len(ta), len(tb)))
            out.append(f"{i}@{k}")
    out += [f"{i}@missing" for i in range(min(len(a), len(b)), max(len(a), len(b)))]
    return out


def show(differ: list[str]) -> str:
    return f"[{' '.join(differ[:12])}{' ...' if len(differ) > 12 else ''}]"


def labels_differ(a: dict[str, Any], b: dict[str, Any]) -> int:
    la, lb = a.get("labels") or [], b.get("labels") or []
    return sum(x != y for x, y in zip(la, lb)) + abs(len(la) - len(lb))


def main(dir_a: Path, dir_b: Path) -> None:
    pa, pb = phase1(dir_a), phase1(dir_b)
    print(f"A: {pa}\nB: {pb}")
    same_dir = same_tok = total = 0
    models_a = {p.name for p in pa.glob("*") if p.is_dir()}
    models_b = {p.name for p in pb.glob("*") if p.is_dir()}
    for only, side in ((models_a - models_b, "A"), (models_b - models_a, "B")):
        if only:
            print(f"models only in {side}: {', '.join(sorted(only))}")
    for model in sorted(models_a & models_b):
        fa, fb = files(pa / model), files(pb / model)
        both = sorted(fa.keys() & fb.keys())
        print(f"\n== {model}: {len(both)} cycles in both"
              + "".join(f", only in {s}: {' '.join(sorted(k))}" for k, s in ((fa.keys() - fb.keys(), "A"),
                                                                              (fb.keys() - fa.keys(), "B")) if k))
        m_dir = m_tok = m_n = 0
        for key in both:
            ra, rb = load(fa[key]), load(fb[key])
            if not ra or not rb or ra.get("status") != "ok" or rb.get("status") != "ok":
                print(f"  {key}: not comparable (status {ra and ra.get('status')} vs {rb and rb.get('status')})")
                continue
            m_n += 1
            d_same, d_note = direction_diff(ra.get("direction") or {}, rb.get("direction") or {})
            differ = rows_differ(ra.get("new_tokens") or [], rb.get("new_tokens") or [])
            m_dir += d_same
            m_tok += not differ
            n_rows = len(ra.get("new_tokens") or [])
            if not d_same or differ:
                tokens = f"{len(differ)}/{n_rows} rows differ {show(differ)}"
                print(f"  {key}: direction {d_note}; tokens {tokens if differ else 'identical'}; "
                      f"labels differ {labels_differ(ra, rb)}")
        print(f"  directions identical {m_dir}/{m_n}, tokens identical {m_tok}/{m_n} cycles"
              + ("" if m_tok == m_n else " (rows: prompt@first differing token)"))
        ba, bb = load(pa / model / "unsteered.json"), load(pb / model / "unsteered.json")
        if ba and bb:
            key = "new_tokens" if "new_tokens" in ba and "new_tokens" in bb else "texts"
            differ = rows_differ(ba.get(key) or [], bb.get(key) or [])
            print(f"  unsteered baseline: {key} {'identical' if not differ else f'differ in {len(differ)} rows'}"
                  f"{f' {show(differ)} (prompt@first differing {key[:-1]})' if differ else ''}"
                  f", labels differ {labels_differ(ba, bb)}")
        elif ba or bb:
            print(f"  unsteered baseline only in {'A' if ba else 'B'}")
        same_dir, same_tok, total = same_dir + m_dir, same_tok + m_tok, total + m_n
    print(f"\nsame directions: {same_dir}/{total}, same tokens: {same_tok}/{total} cycles")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
    else:
        main(Path(sys.argv[1]), Path(sys.argv[2]))
    sys.exit(0)
