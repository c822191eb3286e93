"""Performance benchmark of one study cycle at real shapes (issue: real scale on GPU).

Prints, per model: build time; batched extraction of the 10 contrastive prompts per tool and its ratio
to a plain batched forward; steered generation of the 30 evaluation prompts × N tokens, batched (per
tool, dynamic cache; hooks also with transformers' static cache) and one prompt at a time (measured on
a few, extrapolated); one full cycle; the projected 2 × 3 × 5 study; peak GPU memory; and whether two
identical batched generations were token-identical. Appends a Markdown section to --out.

    python benchmarks/bench.py --models qwen-7b-shape gemma-9b-shape --device cuda --dtype bfloat16
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
from pathlib import Path

import torch

from parity_lib import batching, models, prompts
from parity_lib.cycle import extract_direction
from parity_lib.extractors import get_extractor
from parity_lib.provenance import device_name, git_commit, versions
from parity_lib.steering import SteeringSpec, get_steerer
from parity_lib.steering.base import generation_kwargs

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


def static_generate(lm, batch, spec, n):
    """Steered generation with transformers' static cache (compiled forward); counts hook calls."""
    calls = {"n": 0}
    vec = spec.vector(lm.dtype, lm.device)

    def add(module, args, output):
        calls["n"] += 1
        return output + vec

    handles = [lm.layers[i].register_forward_hook(add) for i in spec.layers]
    try:
        with torch.no_grad():
            out = lm.model.generate(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                                    cache_implementation="static", **generation_kwargs(lm, n))
    finally:
        for h in handles:
            h.remove()
    return out[:, batch.input_ids.shape[1]:], calls["n"]


def bench_model(name: str, args, ps) -> dict:
    row: dict = {"model": name}
    dev = args.device
    torch.cuda.reset_peak_memory_stats() if dev.startswith("cuda") else None
    build_s, lm = timed(lambda: models.load(models.parse_model(name), args.dtype, dev, seed=42,
                                            attn_implementation=args.attn), dev)
    row["build_s"] = build_s
    contrast = batching.encode(lm.tokenizer, prompts.format_all(lm.tokenizer, [*ps.harmful, *ps.harmless]),
                               templated=lm.templated, device=dev)
    row["plain_forward_ms"] = 1e3 * timed(lambda: plain_forward(lm, contrast), dev, 5, 2)[0]
    for tool in TOOLS:
        ex = get_extractor(tool)
        t, _ = timed(lambda ex=ex: ex.extract(lm, contrast, lm.spec.layer), dev, 5, 2)
        row[f"extract_{tool}_ratio"] = 1e3 * t / row["plain_forward_ms"]
    direction = extract_direction(lm, "hooks", ps)
    spec = SteeringSpec.build(direction.unit, lm.spec.layer, lm.n_layers, lm.spec.multiplier, "target_to_final")
    evals = batching.encode(lm.tokenizer, prompts.format_all(lm.tokenizer, ps.eval), templated=lm.templated,
                            device=dev)
    n = args.max_new_tokens
    tokens = {}
    for tool in TOOLS:
        steerer = get_steerer(tool)
        row[f"gen_{tool}_s"], tokens[tool] = timed(lambda s=steerer: s.generate(lm, evals, spec, n), dev, 1, 1)
    _, again = timed(lambda: get_steerer("hooks").generate(lm, evals, spec, n), dev)
    row["repeat_identical"] = torch.equal(again, tokens["hooks"])
    row["tools_identical"] = all(torch.equal(tokens[t], tokens["hooks"]) for t in TOOLS)
    row["first_divergence_hooks_rerun"] = first_divergence(tokens["hooks"], again)
    row.update(one_at_a_time(lm, ps, spec, n, dev, args.one_at_a_time))
    if args.static:
        row.update(static_rows(lm, evals, spec, n, dev, tokens["hooks"]))
    row["cycle_s"] = row["extract_hooks_ratio"] * row["plain_forward_ms"] / 1e3 + row["gen_hooks_s"]
    row["peak_mem_gib"] = torch.cuda.max_memory_allocated() / 2**30 if dev.startswith("cuda") else None
    lm = None  # drop the weights before empty_cache
    torch.cuda.empty_cache() if dev.startswith("cuda") else None
    return row


def first_divergence(a: torch.Tensor, b: torch.Tensor) -> str:
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
        batch = batching.encode(lm.tokenizer, prompts.format_all(lm.tokenizer, [prompt]), templated=lm.templated,
                                device=dev)
        total += timed(lambda b=batch: steerer.generate(lm, b, spec, n), dev)[0]
    return {"one_at_a_time_measured": k, "one_at_a_time_30_s": total / k * len(ps.eval)}


def static_rows(lm, evals, spec, n, dev, dynamic_tokens) -> dict:
    first, (tok1, calls1) = timed(lambda: static_generate(lm, evals, spec, n), dev)
    warm, (tok2, calls2) = timed(lambda: static_generate(lm, evals, spec, n), dev)
    expected = tok2.shape[1] * len(spec.layers)
    return {"static_first_s": first, "static_warm_s": warm, "static_hook_calls": calls2,
            "static_hook_calls_expected": expected, "static_fires": calls2 == expected,
            "static_equals_dynamic": torch.equal(tok2, dynamic_tokens)}


def markdown(rows: list[dict], args, projected: float) -> str:
    head = (f"## {dt.date.today()} — {device_name(args.device)}, {args.dtype}, "
            f"{'deterministic' if args.deterministic else 'default'} mode\n\n"
            f"versions: {versions()}; commit {git_commit()['commit']}\n\n")
    keys = sorted({k for r in rows for k in r} - {"model"})
    lines = ["| metric | " + " | ".join(r["model"] for r in rows) + " |",
             "|---|" + "---|" * len(rows)]
    for k in keys:
        lines.append(f"| {k} | " + " | ".join(_fmt(r.get(k)) for r in rows) + " |")
    tail = f"\n\nprojected 2 × 3 × 5 study (sum of 15 cycles per model): {projected:.1f} s\n\n"
    return head + "\n".join(lines) + tail


def _fmt(v) -> str:
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["qwen-7b-shape", "gemma-9b-shape"])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--one-at-a-time", type=int, default=3, help="prompts timed one by one (extrapolated)")
    ap.add_argument("--static", action="store_true", help="also time the static KV cache and check firing")
    ap.add_argument("--deterministic", action="store_true")
    ap.add_argument("--attn", default=None, help="attention implementation (eager under --deterministic)")
    ap.add_argument("--out", default="benchmarks/RESULTS.md")
    args = ap.parse_args()
    if args.deterministic:
        from parity_lib.determinism import enable_determinism

        enable_determinism(42)
        args.attn = args.attn or "eager"
    ps = prompts.load_prompts()
    rows = []
    for name in args.models:
        rows.append(bench_model(name, args, ps))
        print(rows[-1], flush=True)
    projected = sum(15 * r["cycle_s"] for r in rows)
    text = markdown(rows, args, projected)
    print(text)
    with Path(args.out).open("a", encoding="utf-8") as fh:
        fh.write(text)


if __name__ == "__main__":
    main()
