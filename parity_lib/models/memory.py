"""How much fits: one planner for every generate call, sized from the device's free memory and the model's
cost per row.

A row of a generate call costs its KV cache (layers × KV heads × head dim × 2 (K and V) × bytes, per token of
prompt + new tokens: the config says it), the prefill's transient activations (the MLP's intermediate, a few
copies of the residual, eager attention scores in float32) and the vocabulary's logits in float32; the firing
map keeps three copies of every layer's tensors on top. The free memory is what this process may still
allocate: the device's free memory plus what the allocator holds unused, capped by
`torch.cuda.set_per_process_memory_fraction` (how a smaller card is simulated). A call is split into as many
calls as the plan needs (rows are independent under left padding, mask and mask-derived positions: batched
vs one-by-one checks it), and an out-of-memory that still happens halves the rows per call and retries before
anything fails. Measured figures: a Gemma-2-9B row in bfloat16 holds ≈ 344 KiB of KV cache per token, a
Qwen2.5-7B row ≈ 56 KiB.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass
from typing import Any, Callable, Sequence, TypeVar

import torch

from parity_lib.errors import DeviceOutOfMemoryError
from parity_lib.models.gpu_share import GIB, booked_by_others, card_bytes, gib

USABLE = 0.85  # of the free memory: the allocator's rounding and fragmentation, cuBLAS workspaces
RESERVE = GIB // 2  # kept free besides: kernels' scratch space, the CUDA context's growth
T = TypeVar("T")


@dataclass(frozen=True)
class RowCost:
    """Bytes one row of a call needs, by part."""

    kv: int
    prefill: int
    logits: int
    firing: int = 0

    @property
    def total(self) -> int:
        return self.kv + self.prefill + self.logits + self.firing


@dataclass(frozen=True)
class Plan:
    """How a call of `rows` rows runs on this device: `calls` calls of at most `rows_per_call` rows."""

    rows: int
    rows_per_call: int
    row_bytes: int
    free_bytes: int
    weights_bytes: int
    device: str

    @property
    def calls(self) -> int:
        return -(-self.rows // self.rows_per_call)

    def describe(self) -> str:
        return (f"weights {gib(self.weights_bytes)} GiB, {gib(self.free_bytes)} GiB free on {self.device}: "
                f"{self.rows} rows of ≈ {mib(self.row_bytes)} MiB → {self.calls} call{'s' if self.calls > 1 else ''}"
                f" of ≤ {self.rows_per_call} rows")

    def to_dict(self) -> dict[str, Any]:
        return {"device": self.device, "weights_gib": round(self.weights_bytes / GIB, 2),
                "free_gib": round(self.free_bytes / GIB, 2), "row_mib": round(self.row_bytes / 2**20, 2),
                "rows": self.rows, "rows_per_call": self.rows_per_call, "calls": self.calls}


def mib(n: float) -> str:
    return f"{n / 2**20:.1f}"


def _text_config(config: Any) -> Any:
    getter = getattr(config, "get_text_config", None)
    return getter() if callable(getter) else config


def kv_bytes_per_token(config: Any, dtype: torch.dtype) -> int:
    """KV cache of one token over every layer: layers × KV heads × head dim × 2 (K and V) × element size."""
    c = _text_config(config)
    heads = int(c.num_attention_heads)
    head_dim = int(getattr(c, "head_dim", None) or c.hidden_size // heads)
    kv_heads = int(getattr(c, "num_key_value_heads", None) or heads)
    return int(c.num_hidden_layers) * kv_heads * head_dim * 2 * dtype.itemsize


def row_cost(config: Any, dtype: torch.dtype, prompt_tokens: int, new_tokens: int, *, firing: bool = False) -> RowCost:
    """What one row of a greedy generate call (or a forward, `new_tokens=0`) costs at its peak."""
    c = _text_config(config)
    hidden, inter = int(c.hidden_size), int(getattr(c, "intermediate_size", 4 * c.hidden_size))
    size = dtype.itemsize
    kv = kv_bytes_per_token(config, dtype) * (prompt_tokens + new_tokens)
    # the prefill's widest moment in one layer: residual copies, the MLP's three intermediates, attention scores
    prefill = prompt_tokens * (6 * hidden + 3 * inter) * size + 2 * int(c.num_attention_heads) * prompt_tokens**2 * 4
    if new_tokens:  # generation keeps the last position's logits in float32, the processors' copies, argmax
        logits = int(c.vocab_size) * 4 * 3
    else:  # a plain forward returns every position's logits, read back in float32
        logits = prompt_tokens * int(c.vocab_size) * (size + 4)
    extra = 0
    if firing:  # the recorder keeps the layer input, attention and MLP outputs of every layer, and float64 deltas
        extra = (int(c.num_hidden_layers) + 1) * 3 * prompt_tokens * hidden * size + 3 * prompt_tokens * hidden * 8
    return RowCost(kv, prefill, logits, extra)


def free_bytes(device: torch.device | str) -> int:
    """What this process may still allocate on `device`: free device memory plus what the allocator holds
    unused, within the per-process cap; on the CPU, the host's available memory."""
    device = torch.device(device)
    if device.type != "cuda":
        return host_available()
    index = device.index if device.index is not None else torch.cuda.current_device()
    free, total = torch.cuda.mem_get_info(index)
    cached = torch.cuda.memory_reserved(index) - torch.cuda.memory_allocated(index)
    card = card_bytes(index) - booked_by_others(index)  # what other processes on this card booked is theirs
    return max(0, min(free + cached, card - torch.cuda.memory_allocated(index)))


def host_available() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 1 << 50  # unknown: do not split on the CPU


def weights_bytes(model: torch.nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters()) + sum(
        b.numel() * b.element_size() for b in model.buffers())


def plan(lm: Any, rows: int, prompt_tokens: int, new_tokens: int, *, firing: bool = False,
         at_most: int = 0) -> Plan:
    """Rows per call for a call of `rows` rows of `prompt_tokens` + `new_tokens` on `lm`'s device; `at_most`
    caps it (--parity-gen-batch-size). At least one row per call: a row that cannot fit fails when it runs,
    and the error says how much it needed."""
    cost = row_cost(lm.model.config, lm.dtype, prompt_tokens, new_tokens, firing=firing).total
    free = free_bytes(lm.device)
    budget = max(0, int(free * USABLE) - RESERVE)
    per_call = max(1, min(rows, budget // max(cost, 1)))
    if at_most:
        per_call = min(per_call, at_most)
    return Plan(rows, per_call, cost, free, lm.extras.get("weights_bytes") or weights_bytes(lm.model),
                str(lm.device))


def release() -> None:
    """Give back what a failed call held: its tensors (once the exception is gone) and the allocator's cache."""
    gc.collect()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def in_calls(items: Sequence[T], per_call: int, call: Callable[[Sequence[T]], list], what: str,
             row_bytes: int = 0, device: str = "") -> tuple[list, int]:
    """`call` over `items` in chunks of `per_call`: the results concatenated in order, and how many calls
    succeeded. An out-of-memory halves the chunk and retries from the chunk that failed; one that happens on a
    single row is a DeviceOutOfMemoryError with the figures."""
    out: list = []
    calls = 0
    start, size = 0, max(1, per_call)
    while start < len(items):
        chunk = items[start:start + size]
        failed = False
        try:
            out.extend(call(chunk))
        except torch.OutOfMemoryError:
            failed = True  # handled below, once the exception (and the tensors its frames hold) is gone
        if not failed:
            start += len(chunk)
            calls += 1
            continue
        release()
        if size == 1:
            raise DeviceOutOfMemoryError(out_of_memory(what, row_bytes, device))
        size = max(1, size // 2)
    return out, calls


def out_of_memory(what: str, row_bytes: int, device: str) -> str:
    free = free_bytes(device) if device else 0
    need = f"needs ≈ {gib(row_bytes)} GiB for one row, " if row_bytes else ""
    where = device or "the device"
    return f"{what}: out of device memory even one row at a time ({need}{gib(free)} GiB free on {where})"


def config_of(spec: Any, *, allow_network: bool = False, trust_remote_code: bool = False) -> Any:
    """The model's config without loading it (None when it cannot be read: loading then says why)."""
    from transformers import AutoConfig

    try:
        if spec.kind in ("random", "shape"):
            from parity_lib.models.shapes import build_config

            return build_config(spec)
        from pathlib import Path

        local = Path(spec.source).expanduser()
        return AutoConfig.from_pretrained(str(local) if local.exists() else spec.source,
                                          local_files_only=not allow_network, trust_remote_code=trust_remote_code)
    except Exception:  # noqa: BLE001 - an unreadable config is reported by the load itself
        return None


def estimate_weights(config: Any, dtype: torch.dtype, *, trust_remote_code: bool = False) -> int:
    """Bytes of the model's parameters in `dtype`, from its config alone (built on the meta device: nothing is
    allocated); 0 when it cannot be built."""
    from transformers import AutoModelForCausalLM

    if config is None:
        return 0
    try:
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)
    except Exception:  # noqa: BLE001
        return 0
    return sum(p.numel() for p in model.parameters()) * dtype.itemsize


TYPICAL_PROMPT = 64  # tokens of a chat-formatted evaluation prompt, for estimates made before the tokenizer loads
