"""Tensor comparison that says everything on failure: shape and dtype, count outside tolerance, max |Δ|."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Comparison:
    same_shape: bool
    shape_a: tuple[int, ...]
    shape_b: tuple[int, ...]
    dtype_a: str
    dtype_b: str
    n_outside: int
    n_total: int
    max_abs: float
    where: tuple[int, ...] | None
    value_a: float | None
    value_b: float | None
    atol: float
    rtol: float
    bitwise: bool

    @property
    def close(self) -> bool:
        return self.same_shape and self.n_outside == 0

    def message(self, label_a: str = "a", label_b: str = "b") -> str:
        head = (f"{label_a}: shape {list(self.shape_a)} {self.dtype_a}; "
                f"{label_b}: shape {list(self.shape_b)} {self.dtype_b}")
        if not self.same_shape:
            return f"{head}; shapes differ"
        return (f"{head}; {self.n_outside}/{self.n_total} elements outside atol={self.atol:g} "
                f"rtol={self.rtol:g}; max |Δ|={self.max_abs:.3g} at {list(self.where or ())} "
                f"({label_a}={self.value_a!r}, {label_b}={self.value_b!r}); bitwise equal: {self.bitwise}")

    def to_dict(self) -> dict:
        return {**self.__dict__, "close": self.close}


def compare(a: torch.Tensor, b: torch.Tensor, *, atol: float = 1e-5, rtol: float = 0.0) -> Comparison:
    """Elementwise |a−b| ≤ atol + rtol·|b|, in float64 so the comparison itself adds no rounding."""
    base = dict(shape_a=tuple(a.shape), shape_b=tuple(b.shape), dtype_a=str(a.dtype).removeprefix("torch."),
                dtype_b=str(b.dtype).removeprefix("torch."), atol=atol, rtol=rtol)
    if a.shape != b.shape:
        return Comparison(False, n_outside=-1, n_total=a.numel(), max_abs=float("inf"), where=None,
                          value_a=None, value_b=None, bitwise=False, **base)
    x, y = a.detach().double().cpu(), b.detach().double().cpu()
    diff = (x - y).abs()
    diff = torch.where(torch.isnan(diff), torch.full_like(diff, float("inf")), diff)
    outside = diff > atol + rtol * y.abs()
    flat = int(diff.argmax()) if diff.numel() else 0
    where = tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), diff.shape)) if diff.numel() else ()
    return Comparison(True, n_outside=int(outside.sum()), n_total=diff.numel(),
                      max_abs=float(diff.max()) if diff.numel() else 0.0, where=where,
                      value_a=float(x[where]) if diff.numel() else None,
                      value_b=float(y[where]) if diff.numel() else None,
                      bitwise=a.dtype == b.dtype and torch.equal(a.cpu(), b.cpu()), **base)

