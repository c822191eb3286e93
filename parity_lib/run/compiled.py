"""Compiled generation for the reference steerer: static cache, the decode step compiled, steering as data.

On a GPU most of an eager decode step is Python and kernel launches (a 7B decode step is ≈ 30 ms against a
≈ 3 ms bandwidth floor). transformers compiles the decode step when generation uses its static cache.
Measured on one H200 (Qwen2-7B shape, bf16, 30 prompts × 256 tokens): eager 6.9–8.9 s; inductor
`reduce-overhead` (fused kernels + CUDA graphs) 3.4 s warm after a 47 s first compile, tokens not equal to
eager's (other roundings: first difference at token ≈ 7); dynamo's `cudagraphs` backend 16.2 s (slower than
eager). So the compiled path is opt-in (`--parity-generation compiled`, inductor on a GPU); the default
stays eager until the proof below has been measured under inductor on a GPU.

Steering is a table [layers, H] in the model dtype, read by one forward hook per decoder layer that adds its
row (zero outside the spec's layers; x + 0 is x exactly). The compiled step depends on which hooks exist,
never on their values, so one compilation serves every spec, multiplier and the unsteered baseline. Hooks
are registered for the call only (pyvene removes every forward hook on the model).

A compiled path can be silently wrong in ways eager cannot (a graph captured without the hooks, a stale
constant, steps replayed from another shape), so it is used only after `prove` showed, on the study's own
batch and length, *under this path*: the firing map (every step, row, position and layer of the spec
edited by m·v, nothing else) and, when deterministic algorithms are on, tokens identical to the eager
path's. Otherwise the eager steerer is used and the reason is recorded with every cycle.
"""

from __future__ import annotations

import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

import torch

from parity_lib.models.batching import Batch
from parity_lib.models.loading import LoadedModel
from parity_lib.protocol.steering_parity import first_divergence
from parity_lib.run.firing import record_firing
from parity_lib.tools.base import generation_kwargs
from parity_lib.tools.hooks import HooksSteerer
from parity_lib.tools.spec import SCOPES, SteeringSpec

MODES = ("eager", "compiled")


def backend_for(device: torch.device) -> str:
    """inductor on a GPU (reduce-overhead: CUDA graphs); on a CPU dynamo alone (no speed, same mechanics)."""
    return "inductor" if device.type == "cuda" else "eager"


class CompiledHooksSteerer:
    """The reference steerer's generation through transformers' static cache and its compiled decode step."""

    name = "hooks"

    def __init__(self, lm: LoadedModel, backend: str | None = None) -> None:
        from transformers import CompileConfig

        self.backend = backend or backend_for(lm.device)
        mode = "reduce-overhead" if self.backend == "inductor" else None  # inductor: fused kernels + graphs
        self.config = CompileConfig(backend=self.backend, mode=mode, fullgraph=False)
        self.config._compile_all_devices = True  # transformers compiles only on accelerators unless told
        self.table = torch.zeros(lm.n_layers, lm.hidden_size, dtype=lm.dtype, device=lm.device)
        self.hooks = [self._adder(layer) for layer in range(lm.n_layers)]

    def _adder(self, layer: int):
        row = self.table[layer]

        def add(module, args, output):
            if isinstance(output, torch.Tensor):
                return output + row
            return (output[0] + row, *output[1:])
        return add

    def write_table(self, lm: LoadedModel, spec: SteeringSpec) -> None:
        """m·v on the spec's rows, zero elsewhere: the only thing that changes between calls."""
        self.table.zero_()
        vec = spec.vector(lm.dtype, lm.device)
        for layer in spec.layers:
            self.table[layer].copy_(vec)

    @contextmanager
    def steering(self, lm: LoadedModel, spec: SteeringSpec) -> Iterator[None]:
        self.write_table(lm, spec)
        handles = [block.register_forward_hook(hook) for block, hook in zip(lm.layers, self.hooks)]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    def generate(self, lm: LoadedModel, batch: Batch, spec: SteeringSpec, max_new_tokens: int) -> torch.Tensor:
        with self.steering(lm, spec), torch.no_grad(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*recompil", category=UserWarning)
            out = lm.model.generate(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                                    cache_implementation="static", compile_config=self.config,
                                    **generation_kwargs(lm, max_new_tokens))
        if getattr(lm.model, "_compiled_call", None) is None:
            raise RuntimeError("transformers did not compile the decode step (static cache not supported "
                               "for this model or this transformers version)")
        return out[:, batch.input_ids.shape[1]:]

    def logits(self, lm: LoadedModel, batch: Batch, spec: SteeringSpec) -> torch.Tensor:
        return HooksSteerer().logits(lm, batch, spec)  # one forward: nothing to gain from compiling


@dataclass
class Proof:
    ok: bool
    reason: str  # why the compiled path is (not) used, in one line
    details: dict[str, Any] = field(default_factory=dict)

    def describe(self, backend: str) -> dict[str, Any]:
        path = f"compiled ({backend}, static cache)" if self.ok else "eager (dynamic cache)"
        return {"path": path, "tried": True, "proof": self.reason, **self.details}


def probe_spec(lm: LoadedModel, scope: str) -> SteeringSpec:
    """A spec with layers, for proving the path when the call itself steers nothing (the baseline)."""
    unit = torch.ones(lm.hidden_size, dtype=torch.float64) / lm.hidden_size ** 0.5
    return SteeringSpec.build(unit, lm.spec.layer, lm.n_layers, lm.spec.multiplier_for(scope), scope)


def contrasting(spec: SteeringSpec, n_layers: int) -> SteeringSpec:
    """A second spec through the same compiled step: the other scope, half the multiplier, the vector negated.
    Exact edits under both show that steering is read as data, not baked into the graph at capture."""
    other = next(s for s in SCOPES if s != spec.scope)
    return SteeringSpec.build(-spec.unit, spec.layers[0], n_layers, spec.multiplier / 2, other)


def prove(lm: LoadedModel, steerer: CompiledHooksSteerer, batch: Batch, spec: SteeringSpec,
          max_new_tokens: int) -> Proof:
    """The firing map under the compiled path for two specs, then (deterministic algorithms on) tokens equal
    to the eager path's."""
    started = time.perf_counter()
    spec = spec if spec.layers else probe_spec(lm, spec.scope)
    details: dict[str, Any] = {}
    for probe in (spec, contrasting(spec, lm.n_layers)):
        try:
            with record_firing(lm, probe) as log, torch._dynamo.config.patch(
                    recompile_limit=4 * lm.n_layers + 16, accumulated_recompile_limit=64 * lm.n_layers + 256):
                observed = steerer.generate(lm, batch, probe, max_new_tokens)
        except Exception as exc:  # a backend that cannot compile this model: fall back, and say why
            return Proof(False, f"compiling failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
        problems = log.mismatches(probe, lm.n_layers, expected_steps=observed.shape[1])
        size = log.size_problem()
        details[f"firing_{probe.scope}"] = {"rows": log.rows, "steps": log.steps, "max_ulps": log.max_ulps,
                                             "mismatches": len(problems)}
        if problems or size:
            return Proof(False, f"firing map under the compiled path ({probe.scope}, ×{probe.multiplier:g}): "
                         + "; ".join([*problems[:3], *([size] if size else [])]), details)
    compiled = steerer.generate(lm, batch, spec, max_new_tokens)
    eager = HooksSteerer().generate(lm, batch, spec, max_new_tokens)
    diffs = first_divergence({"new_tokens": compiled.tolist()}, {"new_tokens": eager.tolist()})
    rows, first = len(diffs), min((d["token"] for d in diffs), default=None)
    details.update({"rows_differing_from_eager": rows, "first_differing_token": first,
                    "proof_s": round(time.perf_counter() - started, 2)})
    deterministic = torch.are_deterministic_algorithms_enabled()
    if deterministic and rows:
        return Proof(False, f"deterministic mode: compiled tokens differ from the eager path's on {rows} of "
                            f"{len(batch)} prompts (first at token {first})", details)
    cells = f"{len(batch)} rows × {compiled.shape[1]} steps, both scopes"
    tokens = ("tokens identical to eager" if deterministic else
              f"tokens vs eager not required (nondeterministic mode): {rows} of {len(batch)} prompts differ")
    return Proof(True, f"firing map exact under the compiled path ({cells}); {tokens}", details)


def reference_generation(lm: LoadedModel, batch: Batch, spec: SteeringSpec, max_new_tokens: int,
                         mode: str) -> tuple[Any, dict[str, Any]]:
    """The steerer the reference (hooks) generation uses under `mode`, and how that was decided.

    The proof runs once per model, batch shape and length in a process; its verdict is kept."""
    if mode == "eager":
        return HooksSteerer(), {"path": "eager (dynamic cache)", "tried": False,
                                "proof": "--parity-generation eager (the default)"}
    steerer = lm.extras.get("compiled-steerer")
    if steerer is None:
        steerer = lm.extras["compiled-steerer"] = CompiledHooksSteerer(lm)
    proofs = lm.extras.setdefault("compiled-proofs", {})
    key = (tuple(batch.input_ids.shape), max_new_tokens)
    if key not in proofs:
        proofs[key] = prove(lm, steerer, batch, spec, max_new_tokens)
    proof = proofs[key]
    return (steerer if proof.ok else HooksSteerer()), proof.describe(steerer.backend)
