"""Performance benchmark of one study cycle at real shapes (issue: the whole study in minutes on one GPU).

Prints, per model: build time; batched extraction of the 10 contrastive prompts per tool as a ratio to a
plain batched forward; steered generation of the 30 evaluation prompts × N tokens per tool (eager, dynamic
cache), the three tools' generations packed in one call (the study's default), and through the compiled
reference path (--backends; static cache, CUDA graphs: proof time, first and warm runs, tokens against eager
and against a rerun); one cycle (extraction + generation as the study runs it; packed: a third of the call);
the decode-bandwidth floor (N × weight bytes / HBM bandwidth) and the cycle's multiple of it; peak GPU
memory. Then the issue's table, the figures before this work beside the new ones. Appends to --out.

    python benchmarks/bench.py --models qwen-7b-shape gemma-9b-shape --device cuda --dtype bfloat16
    python benchmarks/bench.py ... --deterministic      # the same under --parity-deterministic's switches
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
from pathlib import Path

import torch

from parity_lib import prompts
from parity_lib.models import loading, registry
from parity_lib.run.cycle import extract_direction
from parity_lib.storage.provenance import device_name, git_commit, versions
from parity_lib.tools.hooks import generate_packed
from parity_lib.tools.registry import get_extractor, get_steerer
from parity_lib.tools.spec import SteeringSpec

TOOLS = ("hooks", "nnsight", "pyvene")


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn, device: str, repeats: int = 1, warmup: int = 0) -> tuple[float, object]:
    for _ in range(warmup):
        fn()
    times, out = [], None
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        out = fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def plain_forward(lm, batch):
    with torch.no_grad():
        return lm.model(**batch.model_inputs(), use_cache=False)


def bench_model(name: str, args, ps) -> dict:
    row: dict = {"model": name}
    dev = args.device
    torch.cuda.reset_peak_memory_stats() if dev.startswith("cuda") else None
    build_s, lm = timed(lambda: loading.load(registry.parse_model(name), args.dtype, dev, seed=42,
                                            attn_implementation=args.attn), dev)
    row["build_s"] = build_s
    weight_bytes = sum(p.numel() * p.element_size() for p in lm.model.parameters())
    contrast = lm.encode([*ps.harmful, *ps.harmless])
    row["plain_forward_ms"] = 1e3 * timed(lambda: plain_forward(lm, contrast), dev, 5, 2)[0]
    for tool in TOOLS:
        ex = get_extractor(tool)
        t, _ = timed(lambda ex=ex: ex.extract(lm, contrast, lm.spec.layer), dev, 5, 2)
        row[f"extract_{tool}_ratio"] = 1e3 * t / row["plain_forward_ms"]
    if args.extraction_only:
        return row
    direction = extract_direction(lm, "hooks", ps)
    spec = SteeringSpec.build(direction.unit, lm.spec.layer, lm.n_layers, lm.spec.multiplier, "target_to_final")
    evals = lm.encode(ps.eval)
    n = args.max_new_tokens
    tokens = {}
    for tool in TOOLS:
        steerer = get_steerer(tool)
        row[f"gen_{tool}_s"], tokens[tool] = timed(lambda s=steerer: s.generate(lm, evals, spec, n), dev, 1, 1)
    _, again = timed(lambda: get_steerer("hooks").generate(lm, evals, spec, n), dev)
    row["eager_rerun"] = first_divergence(tokens["hooks"], again)
    row["tools_identical"] = all(torch.equal(tokens[t], tokens["hooks"]) for t in TOOLS)
    # the study's default: one repeat's three tools in one call (each block its own tool's direction)
    specs = [SteeringSpec.build(extract_direction(lm, t, ps).unit, lm.spec.layer, lm.n_layers, lm.spec.multiplier,
                                "target_to_final") for t in TOOLS]
    row["gen_packed3_s"], packed = timed(lambda: generate_packed(lm, evals, specs, n), dev, 1, 1)
    row["packed_vs_alone"] = first_divergence(packed[0], tokens["hooks"])
    for backend in args.backends:
        row.update(compiled_rows(lm, evals, spec, n, dev, tokens["hooks"], backend, prove_it=args.prove))
    if args.one_at_a_time:
        row.update(one_at_a_time(lm, ps, spec, n, dev, args.one_at_a_time))
    extract_s = row["extract_hooks_ratio"] * row["plain_forward_ms"] / 1e3
    row["cycle_eager_s"] = extract_s + row["gen_hooks_s"]
    row["cycle_packed_s"] = extract_s + row["gen_packed3_s"] / len(TOOLS)  # per cycle, as the study runs them
    row["cycle_s"] = min([row["cycle_eager_s"], row["cycle_packed_s"],
                          *(extract_s + row[f"{b}_warm_s"] for b in args.backends)])
    floor = n * weight_bytes / args.bandwidth
    row["decode_floor_s"] = floor
    row["cycle_over_floor"] = row["cycle_s"] / floor
    row["peak_mem_gib"] = torch.cuda.max_memory_allocated() / 2**30 if dev.startswith("cuda") else None
    lm = None  # drop the weights before empty_cache
    torch.cuda.empty_cache() if dev.startswith("cuda") else None
    return row


def compiled_rows(lm, evals, spec, n, dev, eager_tokens, backend, prove_it=True) -> dict:
    """The compiled reference generation: the proof (which compiles), then a warm run, against eager."""
    from parity_lib.run.compiled import CompiledHooksSteerer, prove

    lm.extras.pop("compiled-steerer", None)
    if hasattr(lm.model, "_compiled_call"):
        del lm.model._compiled_call
    steerer = CompiledHooksSteerer(lm, backend=backend)
    out: dict = {}
    if prove_it:
        proof_s, proof = timed(lambda: prove(lm, steerer, evals, spec, n), dev)
        out[f"{backend}_proof"] = proof.reason
        out[f"{backend}_proof_s"] = proof_s
    first, _ = timed(lambda: steerer.generate(lm, evals, spec, n), dev)
    warm, tok = timed(lambda: steerer.generate(lm, evals, spec, n), dev, 2)
    _, again = timed(lambda: steerer.generate(lm, evals, spec, n), dev)
    out.update({f"{backend}_first_s": first, f"{backend}_warm_s": warm,
                f"{backend}_vs_eager": first_divergence(tok, eager_tokens),
                f"{backend}_rerun": first_divergence(tok, again)})
    return out


def first_divergence(a: torch.Tensor, b: torch.Tensor) -> str:
    if a.shape != b.shape:
        width = min(a.shape[1], b.shape[1])
        a, b = a[:, :width], b[:, :width]
    diff = (a != b).nonzero()
    if not len(diff):
        return "none"
    rows = sorted({int(r) for r in diff[:, 0]})
    steps = [int(diff[diff[:, 0] == r][0, 1]) for r in rows]
    return f"{len(rows)} prompts differ; median first differing token {statistics.median(steps)}"


def one_at_a_time(lm, ps, spec, n, dev, k) -> dict:
    steerer = get_steerer("hooks")
    total = 0.0
    for prompt in ps.eval[:k]:
        batch = lm.encode([prompt])
        total += timed(lambda b=batch: steerer.generate(lm, b, spec, n), dev)[0]
    return {"one_at_a_time_measured": k, "one_at_a_time_30_s": total / k * len(ps.eval)}


# Measured before the compiled path (one H200, bf16, torch 2.11, transformers 5.17), for the side-by-side table.
BEFORE = {
    "qwen-7b-shape": {"cycle_s": 7.6, "cycle_det_s": 15.0, "gen_hooks_s": 7.6, "gen_nnsight_s": 8.7,
                      "gen_pyvene_s": 7.8, "extract_hooks_ratio": 0.68, "extract_nnsight_ratio": 0.50,
                      "extract_pyvene_ratio": 0.88, "peak_mem_gib": 15.9},
    "gemma-9b-shape": {"cycle_s": 18.3, "gen_hooks_s": 18.3, "gen_nnsight_s": 16.3, "gen_pyvene_s": 15.8,
                       "extract_hooks_ratio": 0.42, "extract_nnsight_ratio": 0.46, "extract_pyvene_ratio": 1.18,
                       "peak_mem_gib": 34.7},
}
TARGETS = {"qwen-7b-shape": {"cycle_s": 4.0}, "gemma-9b-shape": {"cycle_s": 8.0}}
SIDE_BY_SIDE = ("cycle_s", "cycle_packed_s", "cycle_eager_s", "cycle_over_floor", "decode_floor_s", "gen_hooks_s",
                "gen_packed3_s", "inductor_warm_s", "inductor_first_s", "inductor_proof_s", "gen_nnsight_s",
                "gen_pyvene_s", "extract_hooks_ratio", "extract_nnsight_ratio", "extract_pyvene_ratio", "peak_mem_gib")


def markdown(rows: list[dict], args, projected: float) -> str:
    mode = "deterministic" if args.deterministic else "default"
    head = (f"## {dt.date.today()} — {device_name(args.device)}, {args.dtype}, {mode} mode\n\n"
            f"versions: {versions()}; commit {git_commit()['commit']}\n\n")
    side = ["| metric | " + " | ".join(f"{r['model']} before | {r['model']} now" for r in rows) + " |",
            "|---|" + "---|---|" * len(rows)]
    for k in SIDE_BY_SIDE:
        cells = []
        for r in rows:
            old = BEFORE.get(r["model"], {}).get("cycle_det_s" if (k == "cycle_s" and args.deterministic) else k)
            target = TARGETS.get(r["model"], {}).get(k)
            now = _fmt(r.get(k)) + (f" (target ≤ {target:g})" if target and not args.deterministic else "")
            cells += [_fmt(old), now]
        side.append(f"| {k} | " + " | ".join(cells) + " |")
    keys = sorted({k for r in rows for k in r} - {"model"} - set(SIDE_BY_SIDE))
    rest = ["| metric | " + " | ".join(r["model"] for r in rows) + " |", "|---|" + "---|" * len(rows)]
    rest += [f"| {k} | " + " | ".join(_fmt(r.get(k)) for r in rows) + " |" for k in keys]
    tail = f"\n\nprojected 2 × 3 × 5 study (sum of 15 cycles per model): {projected:.1f} s\n\n"
    return head + "\n".join(side) + "\n\n" + "\n".join(rest) + tail


def _fmt(v) -> str:
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["qwen-7b-shape", "gemma-9b-shape"])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--one-at-a-time", type=int, default=0, help="prompts timed one by one (extrapolated)")
    ap.add_argument("--backends", nargs="*", default=[],
                    help="compiled reference generation backends to time (inductor = reduce-overhead)")
    ap.add_argument("--no-prove", dest="prove", action="store_false", help="skip the firing-map proof's timing")
    ap.add_argument("--bandwidth", type=float, default=4.8e12, help="HBM bytes/s for the decode floor (H200)")
    ap.add_argument("--deterministic", action="store_true")
    ap.add_argument("--extraction-only", action="store_true", help="only the extraction ratios (no generation)")
    ap.add_argument("--attn", default=None, help="attention implementation (default: the model's own, as the "
                                                 "suite does, also under --deterministic)")
    ap.add_argument("--out", default="benchmarks/RESULTS.md")
    args = ap.parse_args()
    if args.deterministic:
        from parity_lib.run.determinism import enable_determinism

        enable_determinism(42)
    ps = prompts.load_prompts()
    rows = []
    for name in args.models:
        rows.append(bench_model(name, args, ps))
        print(rows[-1], flush=True)
    projected = sum(15 * r.get("cycle_s", 0.0) for r in rows)
    text = markdown(rows, args, projected)
    print(text)
    with Path(args.out).open("a", encoding="utf-8") as fh:
        fh.write(text)


if __name__ == "__main__":
    main()
