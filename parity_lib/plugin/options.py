"""The suite's command-line options, in one named group: every `--parity-*` option with its default and help.
"""

from __future__ import annotations

import pytest

from parity_lib.plugin import catalog


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("parity_suite", type="bool", default=False,
                  help="activate the parity suite for this project (its fixtures, reports and parametrization)")
    g = parser.getgroup("parity", "parity suite (tooling parity protocol): select with -m preflight (the Section D "
                                  "checklist), -m study (the gate, then the study and its verdict), -m golden, or "
                                  "-m \"preflight or study\" (the main job); any --parity-* option activates it")
    g.addoption("--parity-model", action="append", default=[], metavar="NAME|PATH_OR_ID[:LAYER[:MULT]]",
                help=f"model to test, repeatable (default: {', '.join(catalog.DEFAULT_MODELS)}). "
                     f"Registry: {catalog.models_help()}. Or any HF causal LM dir / id, e.g. ./my-llama:12:8.0")
    g.addoption("--parity-tools", default=",".join(catalog.DEFAULT_TOOLS), metavar="T1,T2,...",
                help=f"comma-separated tools to compare: {catalog.tools_help()} (default: %(default)s)")
    g.addoption("--parity-dtype", default=None, choices=catalog.DTYPES,
                help="model dtype (default: float32 on the CPU, bfloat16 on a GPU; directions are computed in float64 "
                     "from the activations either way; float16 overflows Gemma-2)")
    g.addoption("--parity-device", default="cpu", metavar="DEVICE",
                help="cpu, cuda or cuda:N; xdist workers pin cuda:(worker %% n_gpus) (default: %(default)s)")
    g.addoption("--parity-prompts", default=None, metavar="PATH",
                help="prompt set: JSON with harmful/harmless/eval lists, or a Python file with HARMFUL/HARMLESS/"
                     "EVAL lists (executed, since you named it) (default: the paper's prompts)")
    g.addoption("--parity-system-prompt", default=None, metavar="TEXT|none",
                help="system message for every model's chat template (recorded in provenance and the cache key); "
                     "'none': an empty system turn instead of the template's default (default: the template's own)")
    g.addoption("--parity-seed", type=int, default=42,
                help="seed for random weights and sampling (default: %(default)s)")
    g.addoption("--parity-results-dir", default="results", metavar="DIR",
                help="directory for the result JSON files (default: %(default)s)")
    g.addoption("--parity-reports-dir", default="reports", metavar="DIR",
                help="directory for the outcome report, plots, junit.xml and report.html (default: %(default)s)")
    g.addoption("--parity-repeats", type=int, default=5, help="K repeats per (model, tool) (default: %(default)s)")
    g.addoption("--parity-steer-with", default="hooks", choices=["hooks", "same"],
                help="hooks: one reference steerer applies every tool's direction; same: each tool steers "
                     "with its own mechanism (default: %(default)s)")
    g.addoption("--parity-scope", default="target_to_final", choices=["target", "target_to_final"],
                help="steer layer L only, or L and every later layer (the paper's scope) (default: %(default)s)")
    g.addoption("--parity-multiplier", type=float, default=None, metavar="M",
                help="override every model's steering multiplier: finite, non-zero, in units of the unit direction "
                     "(the paper: 15 for Qwen2.5-7B, 25 for Gemma-2-9B) (default: each model's own)")
    g.addoption("--parity-max-new-tokens", type=int, default=256, help="generation length (default: %(default)s)")
    g.addoption("--parity-gen-batch-size", type=int, default=0, help="prompts per generate call; 0 = all")
    g.addoption("--parity-n-eval", type=int, default=0,
                help="use only the first N eval prompts; 0 (the default) = all of them")
    g.addoption("--parity-generation", default="eager", choices=["eager", "compiled"],
                help="the reference steerer's generation: compiled = static cache + compiled decode step "
                     "(inductor, CUDA graphs on a GPU), used only once the firing map proves it under that path, "
                     "else eager with the reason in the report (default: %(default)s)")
    g.addoption("--parity-packing", default="tools", choices=["tools", "none"],
                help="tools: under the reference steerer, one repeat's tools generate in one batch, each block of "
                     "rows steered by its own tool's direction (a decode step on a GPU costs about the same for "
                     "3× the rows); none: one generate call per cycle (default: %(default)s)")
    g.addoption("--parity-fresh", action="store_true", help="recompute cycles even when a result file matches")
    g.addoption("--parity-override-gate", action="store_true",
                help="run the study although the preflight checklist failed (investigating a divergence)")
    g.addoption("--parity-deterministic", action="store_true",
                help="deterministic algorithms, fixed cuBLAS workspace, no TF32 (attention: the model's own)")
    g.addoption("--parity-attention", default=None, choices=["eager", "sdpa"],
                help="attention implementation for every model that has it (default: the model's own; Gemma2 "
                     "always eager)")
    g.addoption("--parity-layers", default="", metavar="LIST|all|FRACTIONS",
                help="sweep (-m sweep): layers to visit: 4,8,12, all, or depth fractions 0.25,0.5,0.75; the model's "
                     "own layer is always added (default: depths 1/8 … 7/8)")
    g.addoption("--parity-multipliers", default="", metavar="M1,M2,...",
                help="sweep: multipliers at every layer (default: 1/32, 1/16, 1/8, 1/4, 1/2 and 1 × the median "
                     "norm of the layer's output, plus the model's own multiplier)")
    g.addoption("--parity-sweep-repeats", type=int, default=1,
                help="sweep: directions extracted per (model, layer, tool) (default: %(default)s)")
    g.addoption("--parity-write-defaults", action="store_true",
                help="sweep: write the recommended layer and multiplier as parity_defaults.json into each "
                     "directory model (not the shipped organisms)")
    g.addoption("--parity-shard", default="", metavar="MODEL[@LAYER]",
                help="run only this model's part (a sweep: this (model, layer)) of the configured run: what the "
                     "launcher (python -m parity_lib.launch) gives each shard")
    g.addoption("--parity-reuse-only", action="store_true",
                help="compute nothing: every cycle and sweep point must be on disk, else it is an error naming the "
                     "missing file (the launcher's report step)")
    g.addoption("--parity-allow-network", action="store_true", help="let from_pretrained download weights")
    g.addoption("--parity-trust-remote-code", action="store_true", help="run model code from the checkpoint")
