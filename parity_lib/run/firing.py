"""The firing map: which (forward step, layer, position) a steerer actually edited during generation.

Observed without hooks, since pyvene removes every forward hook on the model: the `forward` of a few
submodules (never the decoder blocks, which nnsight intercepts) is wrapped for the duration (instance
attribute, restored after). For each layer the raw output is rebuilt as resid_in + attention contribution
+ MLP contribution, in the model's dtype and order, so it is bitwise what the layer returned *before* any
steering; the edited value is what the next layernorm reads (which is also the next layer's resid_in;
layer 0's is the embedding output, Gemma2's sqrt(H) scaling included). Their difference is the steering
edit, exactly zero where nothing fired.
"""

from __future__ import annotations

import warnings
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import torch
from torch import nn

from parity_lib.models.loading import LoadedModel, replaced_forward
from parity_lib.run.reference import contributions, next_norm
from parity_lib.tools.base import unwrap
from parity_lib.tools.spec import SteeringSpec


@dataclass
class FiringLog:
    steps: int = 0
    rows: int = 0
    positions: list[int] = field(default_factory=list)  # sequence length of each forward step
    edited: dict[tuple[int, int], int] = field(default_factory=dict)  # (step, layer) -> (row, position)s edited
    max_error: float = 0.0  # max |edit − m·v| over edited elements
    max_ulps: float = 0.0  # the same, in units in the last place of the steered value in the model dtype

    def mismatches(self, spec: SteeringSpec, n_layers: int, expected_steps: int,
                   steered_rows: int | None = None) -> list[str]:
        """Differences from the spec: every step, every row and position, exactly the spec's layers.
        `steered_rows`: how many rows carry a nonzero vector (a packed call's zero-vector baseline block is
        not edited; an edit there is also caught by `size_problem`, its m·v being zero)."""
        out = [] if self.steps == expected_steps else [f"{self.steps} forward steps, expected {expected_steps}"]
        for step in range(self.steps):
            cells = (self.rows if steered_rows is None else steered_rows) * self.positions[step]
            for layer in range(n_layers):
                want = cells if layer in spec.layers else 0
                got = self.edited.get((step, layer), 0)
                if got != want:
                    out.append(f"step {step} layer {layer}: {got}/{cells} (row, position)s edited, expected {want}")
        return out

    def size_problem(self, tolerance_ulps: float = 1.0) -> str | None:
        """An edit that is not m·v up to the rounding of the add in the model dtype (one ulp of the result)."""
        if self.max_ulps <= tolerance_ulps:
            return None
        return (f"edit differs from m·v by {self.max_error:.4g} = {self.max_ulps:.3g} ulp of the steered value "
                f"(allowed: {tolerance_ulps:g} ulp, the rounding of one add in the model dtype)")


def ulp(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Unit in the last place of |x| in `dtype` (float64 result), at least that of the smallest normal."""
    info = torch.finfo(dtype)
    _, exponent = torch.frexp(x.abs().clamp_min(info.tiny))
    return info.eps * torch.exp2((exponent - 1).double())


def _wrap_forward(module: nn.Module, after: Callable[[tuple, dict, Any], None]):
    def wrap(inner: Callable) -> Callable:
        def forward(*args, **kwargs):
            out = inner(*args, **kwargs)
            after(args, kwargs, out)
            return out
        # observed eagerly under a compiled path: the recorder stays out of the graph, the steering inside it
        return torch.compiler.disable(forward)
    return replaced_forward(module, wrap)


@contextmanager
def record_firing(lm: LoadedModel, spec: SteeringSpec, rows: torch.Tensor | None = None,
                  steerer: Any = None) -> Iterator[FiringLog]:
    """The firing map of whatever generation runs inside; an edit must equal m·v of `spec`, or with `rows`
    ([B, 1, H], packed generation) each row's own vector. `steerer`: the steerer that will run inside; its
    `prepare(lm)`, if it has one, runs before any forward is replaced (a tool that instruments forwards,
    like nnsight, must do so on the modules' own)."""
    if steerer is not None and hasattr(steerer, "prepare"):
        steerer.prepare(lm)
    log = FiringLog()
    vec = (spec.vector(lm.dtype, lm.device) if rows is None else rows).double()
    raw: dict[int, dict[str, torch.Tensor]] = {}

    def first_arg(args, kwargs) -> torch.Tensor:
        return args[0] if args else kwargs["hidden_states"]

    def on_embed(args, kwargs, out):
        log.steps += 1
        log.positions.append(out.shape[1])
        raw.setdefault(0, {})["in"] = out.detach().clone()

    def on_part(layer: int, key: str):
        def after(args, kwargs, out):
            raw.setdefault(layer, {})[key] = unwrap(out).detach().clone()
        return after

    # kept on the device and read once at the end: a read per layer and step would wait for the GPU each time
    counts: list[tuple[tuple[int, int], torch.Tensor]] = []
    worst: list[torch.Tensor] = []  # [max error, max ulps] per (step, layer)

    def on_consumer(layer: int):
        def after(args, kwargs, out):
            parts = raw[layer]
            before = (parts["in"] + parts["attn"]) + parts["mlp"]
            steered = first_arg(args, kwargs)
            delta = steered.double() - before.double()
            touched = delta.abs().amax(dim=2, keepdim=True) > 0  # [rows, positions, 1]
            log.rows = int(delta.shape[0])
            counts.append(((log.steps - 1, layer), touched.sum()))
            raw.setdefault(layer + 1, {})["in"] = steered.detach().clone()
            error = torch.where(touched, (delta - vec).abs(), 0.0)
            worst.append(torch.stack([error.amax(), (error / ulp(steered.double(), lm.dtype)).amax()]))
        return after

    with ExitStack() as stack, warnings.catch_warnings():
        # nnsight notices the replaced forward and warns; it is restored on exit
        warnings.filterwarnings("ignore", message=".*`forward` was replaced after nnsight wrapped")
        stack.enter_context(_wrap_forward(lm.model.get_input_embeddings(), on_embed))
        for layer, block in enumerate(lm.layers):
            attn, mlp = contributions(block)
            stack.enter_context(_wrap_forward(attn, on_part(layer, "attn")))
            stack.enter_context(_wrap_forward(mlp, on_part(layer, "mlp")))
            stack.enter_context(_wrap_forward(next_norm(lm, layer), on_consumer(layer)))
        yield log
    if counts:
        log.edited = dict(zip((k for k, _ in counts), torch.stack([n for _, n in counts]).tolist()))
        log.max_error, log.max_ulps = torch.stack(worst).amax(dim=0).tolist()


def record_packed_firing(lm: LoadedModel, specs: list[SteeringSpec], rows_each: int):
    """`record_firing` of a packed call (`steering.hooks.generate_packed` of `specs` over `rows_each` prompts):
    each block's rows against its own spec's m·v."""
    from parity_lib.tools.hooks import packed_rows

    return record_firing(lm, specs[0], rows=packed_rows(lm, specs, rows_each))
