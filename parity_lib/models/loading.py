"""Loading a model: the loaded model, the process's one model cache, and what a GPU can hold before loading.

Loading is offline by default (`local_files_only=True`): no machine of this project reaches a hub, and a study
should never silently download. Weights load as safetensors; `trust_remote_code` only when the caller asks.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch
from torch import nn

from parity_lib.errors import (
    LayerOutOfRangeError,
    ModelSpecError,
    ModelStateError,
    UnsupportedModelError,
    WeightsNotFoundError,
)
from parity_lib.models.hub import download_hint
from parity_lib.models.registry import DTYPES, ModelSpec


@dataclass
class LoadedModel:
    spec: ModelSpec
    model: nn.Module
    tokenizer: Any
    dtype: torch.dtype
    device: torch.device
    layers_path: str  # dotted path of the decoder ModuleList, e.g. "model.layers"
    attn_implementation: str
    extras: dict[str, Any] = field(default_factory=dict)  # per-tool wrappers built once (nnsight)

    @property
    def layers(self) -> nn.ModuleList:
        return self.model.get_submodule(self.layers_path)

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def templated(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    def encode(self, prompts: Sequence[str]) -> Any:
        """The prompts as this model sees them (its chat template, the run's system prompt): one left-padded
        `Batch` on the model's device."""
        from parity_lib.models.batching import encode
        from parity_lib.prompts import format_all

        return encode(self.tokenizer, format_all(self.tokenizer, list(prompts), self.spec.system_prompt),
                      templated=self.templated, device=self.device)

    def describe(self) -> dict[str, Any]:
        return {"name": self.spec.name, "source": self.spec.source, "kind": self.spec.kind,
                "layer": self.spec.layer, "dtype": str(self.dtype).removeprefix("torch."),
                "device": str(self.device), "attn_implementation": self.attn_implementation,
                "architecture": type(self.model).__name__, "n_layers": self.n_layers,
                "hidden_size": self.hidden_size, "system_prompt": self.spec.system_prompt,
                "behaviour_meaningful": self.spec.kind == "pretrained",
                **({"memory_plan": self.extras["memory_plan"]} if "memory_plan" in self.extras else {})}


@contextmanager
def replaced_forward(module: nn.Module, wrap: Callable[[Callable], Callable]) -> Iterator[None]:
    """`module.forward` is `wrap(the forward it has now)` inside, and exactly what it was after. A model is
    shared by every tool of a process: a `forward` some tool installed on the instance (nnsight's
    controller) is put back, never deleted, or that tool silently stops seeing the module. A tool that
    instruments the module *inside* the window (nnsight wrapping the model for the first time) would take the
    wrapper for the module's own forward, and restoring would disable it: that raises, naming the module."""
    own = module.__dict__.get("forward")
    wrapper = wrap(module.forward)
    module.forward = wrapper
    try:
        yield
    finally:
        now = module.__dict__.get("forward")
        if own is None:
            del module.forward
        else:
            module.forward = own
    if now is not wrapper:  # reached only when the body did not raise: its own error comes first
        raise ModelStateError(
            f"a {type(module).__name__} module: its `forward` was replaced while it was "
            f"wrapped ({type(now).__name__} installed over the wrapper), so whatever installed it now runs the "
            "wrapper as the module's own forward. A tool that instruments a model's forwards when it first "
            "wraps it (nnsight) must do so before: give its steerer a `prepare(lm)` that builds its "
            "wrappers (the firing map calls it first)")


_LOADED: dict[tuple, LoadedModel] = {}  # the process's one model cache (the suite's and its self-tests')


def load_once(spec: ModelSpec, dtype: str = "float32", device: str = "cpu", *,
              on_wait: Callable[[str], None] = lambda line: None, work: tuple[int, int] = (0, 0),
              **options: Any) -> LoadedModel:
    """`load`, once per process for the same arguments: every test of a model shares its weights (and the
    tool wrappers kept in its `extras`). On a GPU, a model that does not fit beside the ones this process
    holds replaces them, and the device is booked (`gpu_share`): a process whose model does not fit beside
    another process's waits for its turn (`on_wait` hears it once). `work`: (rows, new tokens) of the widest
    generate call the caller will make, booked beside the weights."""
    key = (repr(spec), dtype, device, tuple(sorted(options.items())))
    if key not in _LOADED:
        on_gpu = torch.device(device).type == "cuda"
        booking = _make_room(spec, dtype, device, options, on_wait, work) if on_gpu else None
        try:
            _LOADED[key] = load(spec, dtype, device, **options)
        except BaseException:
            if booking is not None:
                booking.release()
            raise
        _LOADED[key].extras["booking"] = booking
    return _LOADED[key]


def _make_room(spec: ModelSpec, dtype: str, device: str, options: dict[str, Any],
               on_wait: Callable[[str], None], work: tuple[int, int]) -> Any:
    """Drop this process's models that do not fit beside the new one, then book the device (`gpu_share`) for
    the weights and the widest call in one piece (at least a few rows' worth)."""
    from parity_lib.models import gpu_share, memory

    remote = bool(options.get("trust_remote_code"))
    config = memory.config_of(spec, allow_network=bool(options.get("allow_network")), trust_remote_code=remote)
    need = memory.estimate_weights(config, DTYPES[dtype], trust_remote_code=remote)
    rows, new_tokens = work
    per_row = memory.row_cost(config, DTYPES[dtype], memory.TYPICAL_PROMPT, new_tokens).total if config else 0
    working = max(rows * per_row, need // 8) + memory.RESERVE
    dev = torch.device(device)
    card = gpu_share.card_bytes(dev.index if dev.index is not None else torch.cuda.current_device())
    mine = [k for k, lm in _LOADED.items() if lm.device == dev]
    held = sum(_LOADED[k].extras.get("weights_bytes", 0) for k in mine)
    if mine and held + need + working > card:
        for k in mine:
            drop(k)
    wanted = min(card, need + working)
    who = f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')} {spec.name}"
    return gpu_share.book(dev, wanted, who, on_wait)


def drop(key: tuple) -> None:
    """Forget a loaded model and give its device memory and its booking back."""
    from parity_lib.models.memory import release

    lm = _LOADED.pop(key)
    booking = lm.extras.pop("booking", None)
    del lm
    release()
    if booking is not None:
        booking.release()


def load(spec: ModelSpec, dtype: str = "float32", device: str = "cpu", *, seed: int = 0,
         trust_remote_code: bool = False, allow_network: bool = False,
         attn_implementation: str | None = None) -> LoadedModel:
    if dtype not in DTYPES:
        raise ModelSpecError(f"--parity-dtype {dtype!r}: choose one of {', '.join(DTYPES)}")
    torch_dtype = DTYPES[dtype]
    if torch.device(device).type == "cuda":
        _refuse_if_too_large(spec, torch_dtype, device, allow_network, trust_remote_code)
    if spec.kind in ("random", "shape"):
        model, tok = _build_random(spec, torch_dtype, device, seed, attn_implementation)
    else:
        model, tok = _from_pretrained(spec, torch_dtype, device, trust_remote_code, allow_network,
                                      attn_implementation)
    model.eval()
    layers_path = find_layers_path(model, spec)
    loaded = LoadedModel(spec, model, tok, torch_dtype, torch.device(device), layers_path,
                         str(getattr(model.config, "_attn_implementation", "unknown")))
    check_layer(loaded, spec.layer)
    from parity_lib.models.memory import weights_bytes

    loaded.extras["weights_bytes"] = weights_bytes(model)
    return loaded


def _refuse_if_too_large(spec: ModelSpec, torch_dtype: torch.dtype, device: str, allow_network: bool,
                         trust_remote_code: bool) -> None:
    """A model whose weights alone exceed the device's free memory is refused before loading, with the figures
    (offloading layers to the host would put accelerate's own hooks between every tool and the modules)."""
    from parity_lib.errors import DeviceOutOfMemoryError
    from parity_lib.models.memory import config_of, estimate_weights, free_bytes, gib

    config = config_of(spec, allow_network=allow_network, trust_remote_code=trust_remote_code)
    need = estimate_weights(config, torch_dtype, trust_remote_code=trust_remote_code)
    free = free_bytes(device)
    if need and need > free:
        smaller = (" (bfloat16 halves it: --parity-dtype bfloat16)" if torch_dtype == torch.float32 else "")
        raise DeviceOutOfMemoryError(
            f"{spec.name}: the weights alone need ≈ {gib(need)} GiB in {str(torch_dtype).removeprefix('torch.')}"
            f"{smaller}, and {device} has {gib(free)} GiB free: refused before loading. Use a card with at least "
            f"{gib(need * 1.25)} GiB, or run this model alone (the docs' hardware page lists what fits where)")


def _from_pretrained(spec, torch_dtype, device, trust_remote_code, allow_network, attn):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    local = Path(spec.source).expanduser()
    source = str(local) if local.exists() else spec.source
    if local.exists() and not any(local.glob("*.safetensors")) and not any(local.glob("*.bin")):
        raise WeightsNotFoundError(f"model {spec.name!r}: directory {local} holds no weights "
                                   f"(*.safetensors); save the model there with save_pretrained")
    kwargs: dict[str, Any] = {_dtype_kwarg(): torch_dtype, "use_safetensors": True,
                              "trust_remote_code": trust_remote_code,
                              "local_files_only": not allow_network}
    if _model_type(source, allow_network) == "gemma2":
        kwargs["attn_implementation"] = "eager"  # whatever was asked: sdpa drops Gemma2's attention soft-capping
    elif attn:                                   # (4.x) or is refused for Gemma2 (5.x); the record says "eager"
        kwargs["attn_implementation"] = attn
    try:
        tok = AutoTokenizer.from_pretrained(source, local_files_only=not allow_network,
                                            trust_remote_code=trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as exc:
        if local.exists():
            raise WeightsNotFoundError(f"model {spec.name!r}: cannot load {local}: {exc}") from None
        raise WeightsNotFoundError(
            f"model {spec.name!r}: weights for {spec.source!r} are not present locally. Download them on "
            f"a machine with network (`{download_hint(spec.source)}`) and pass the directory "
            f"with --parity-model DIR:{spec.layer}, or put them in the HF cache; --parity-allow-network lets the "
            f"run download them itself.") from None
    return model.to(device), tok


def _dtype_kwarg() -> str:
    """`from_pretrained(dtype=...)` exists from transformers 4.56; before that it is `torch_dtype`."""
    import transformers

    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    return "dtype" if (major, minor) >= (4, 56) else "torch_dtype"


def _model_type(source: str, allow_network: bool) -> str | None:
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(source, local_files_only=not allow_network).model_type
    except (OSError, ValueError):
        return None


def _build_random(spec, torch_dtype, device, seed, attn=None):
    from transformers import AutoModelForCausalLM

    from parity_lib.models.byte_tokenizer import byte_tokenizer
    from parity_lib.models.shapes import build_config

    config = build_config(spec)
    if attn and config.model_type != "gemma2":  # Gemma2: eager whatever was asked (see _from_pretrained)
        config._attn_implementation = attn
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, **{_dtype_kwarg(): torch_dtype})
    torch.random.set_rng_state(generator_state)
    return model, byte_tokenizer()


def forward_hooked(lm: LoadedModel, batch: Any, handles: Sequence[Any]) -> None:
    """One forward of `batch` without cache or gradients; the hook `handles` are removed afterwards, whatever
    happens (the reference capture, the activation scale)."""
    try:
        with torch.no_grad():
            lm.model(**batch.model_inputs(), use_cache=False)
    finally:
        for handle in handles:
            handle.remove()


def find_layers_path(model: nn.Module, spec: ModelSpec) -> str:
    """Dotted path of the decoder-layer list: the ModuleList with num_hidden_layers entries."""
    want = getattr(model.config, "num_hidden_layers", None)
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) == want and name.endswith("layers"):
            return name
    raise UnsupportedModelError(
        f"model {spec.name!r} ({type(model).__name__}): found no list of {want} decoder layers named "
        f"'*.layers'; the suite supports decoder-only causal LMs like Llama, Qwen2, Gemma2, Mistral")


def check_layer(loaded: LoadedModel, layer: int) -> None:
    if not 0 <= layer < loaded.n_layers:
        raise LayerOutOfRangeError(
            f"model {loaded.spec.name!r}: layer {layer} is out of range, the model has {loaded.n_layers} "
            f"decoder layers (0..{loaded.n_layers - 1}); pass --parity-model {loaded.spec.name}:LAYER")
