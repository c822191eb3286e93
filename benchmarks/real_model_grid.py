"""Where does the refusal direction steer a model? Coherent refusal / garbled / normal over layers × multipliers.

The measurement behind a real model's default layer and multiplier (`real_models.PACKAGED`): the direction is the
suite's own (hooks extraction, difference of means of the paper's 5 + 5 prompts at layer L), steering is the
reference steerer's (multiplier × unit direction on layers L..last or L only, every position), generation is
greedy on the evaluation prompts, and every multiplier of one layer — plus the unsteered baseline, a zero vector —
is one packed generate call. Prints one row per (layer, multiplier) with Wilson 95% intervals over the prompts.

    python benchmarks/real_model_grid.py smollm2-135m --layers 6,9,12,15,18 --multipliers 4,8,12,16
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

import torch

from parity_lib.models import loading, registry
from parity_lib.prompts import load_prompts
from parity_lib.protocol.metrics import wilson_interval
from parity_lib.run.cycle import extract_direction
from parity_lib.run.generation import generate_packed_tokens, label
from parity_lib.tools.spec import SteeringSpec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--layers", default="6,9,12,15,18")
    ap.add_argument("--multipliers", default="4,8,12,16")
    ap.add_argument("--scope", default="target_to_final", choices=("target", "target_to_final"))
    ap.add_argument("--n-eval", type=int, default=30)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--json", default=None, help="also write the rows here")
    ap.add_argument("--show", type=int, default=0, help="print the first N continuations of every point")
    args = ap.parse_args()
    torch.set_num_threads(2)
    spec = registry.parse_model(args.model)
    if spec.packaged:
        from parity_lib.models.packaged import ensure

        ensure(spec.packaged)
    started = time.perf_counter()
    lm = loading.load(spec, args.dtype)
    print(f"# {spec.name}: loaded in {time.perf_counter() - started:.1f}s ({lm.n_layers} layers, {args.dtype}); "
          f"scope {args.scope}; {args.n_eval} prompts x {args.max_new_tokens} tokens; torch {torch.__version__}")
    prompts = load_prompts(None)
    evals = list(prompts.eval[:args.n_eval])
    mults = [float(m) for m in args.multipliers.split(",")]
    rows = []
    print("| layer | raw norm | multiplier | refusal % [95% CI] | garbled % | normal % | s |")
    print("|---|---|---|---|---|---|---|")
    for layer in (int(x) for x in args.layers.split(",")):
        lm.spec = replace(spec, layer=layer)
        direction = extract_direction(lm, "hooks", prompts)
        specs = [SteeringSpec.build(direction.unit, layer, lm.n_layers, m, args.scope) for m in [0.0, *mults]]
        t0 = time.perf_counter()
        outs = generate_packed_tokens(lm, specs, evals, args.max_new_tokens)
        seconds = time.perf_counter() - t0
        for mult, tokens in zip([0.0, *mults], outs):
            texts, labels = label(lm, tokens, prompts.refusal_keywords, prompts.garbled_rules)
            n = len(labels)
            counts = {k: sum(x == k for x in labels) for k in ("refusal", "garbled", "normal")}
            low, high = wilson_interval(counts["refusal"], n)
            row = {"layer": layer, "norm": float(direction.norm), "multiplier": mult, "n": n, **counts,
                   "refusal_ci": [low, high], "seconds_for_layer": seconds}
            rows.append(row)
            print(f"| {layer} | {float(direction.norm):.2f} | {'unsteered' if mult == 0 else f'{mult:g}'} | "
                  f"{100 * counts['refusal'] / n:.0f} [{100 * low:.0f}, {100 * high:.0f}] | "
                  f"{100 * counts['garbled'] / n:.0f} | {100 * counts['normal'] / n:.0f} | {seconds:.0f} |", flush=True)
            for text, lab in list(zip(texts, labels))[:args.show]:
                print(f"#   [{lab}] {text[:160]!r}")
    print(f"# total {time.perf_counter() - started:.0f}s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"model": spec.name, "scope": args.scope, "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
