"""Model specs, the registry, and loading: HF id or local dir, shipped organisms, seeded random models.

Loading is offline by default (`local_files_only=True`): no machine of this project reaches a hub,
and a study should never silently download. Weights load as safetensors; `trust_remote_code` only
when the caller asks for it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from parity_lib.errors import ModelSpecError
from parity_lib.models.hub import download_hint
from parity_lib.prompts import FIXTURES

MODELS_DIR = FIXTURES / "models"


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class ModelSpec:
    """What to load and where to look: `source` is an HF id, a local dir, or `random:<arch>`."""

    name: str
    source: str
    layer: int
    multiplier: float
    kind: str = "pretrained"  # pretrained | random | shape
    note: str = ""
    multipliers: dict[str, float] = field(default_factory=dict)  # per steering scope, when known
    multiplier_known: bool = True  # False for a directory or hub id given without :MULT
    packaged: str = ""  # a model a pip package ships (`real_models.PACKAGED`): its directory is made on first use
    system_prompt: str | None = None  # None: the chat template's own; "": an empty system turn; else this text

    def multiplier_for(self, scope: str) -> float:
        return self.multipliers.get(scope, self.multiplier)


def _organism_spec(name: str, note: str) -> ModelSpec:
    return _spec_with_defaults(name, MODELS_DIR / name, note)


def _spec_with_defaults(name: str, path: Path, note: str) -> ModelSpec:
    """A model directory's spec from its `parity_defaults.json` (layer, multiplier per scope), when it has one."""
    defaults_file = path / "parity_defaults.json"
    defaults = json.loads(defaults_file.read_text()) if defaults_file.is_file() else {}
    scoped = defaults.get("multiplier", {})
    scoped = scoped if isinstance(scoped, dict) else {"target_to_final": float(scoped)}
    main = float(scoped.get("target_to_final", 1.0))
    return ModelSpec(name, str(path), int(defaults.get("layer", 16)), main, "pretrained", note,
                     {k: float(v) for k, v in scoped.items()})


def _packaged_spec(name: str) -> ModelSpec:
    from parity_lib.models.packaged import PACKAGED, directory

    entry = PACKAGED[name]
    scoped = dict(entry.multipliers)
    return ModelSpec(name, str(directory(name)), entry.layer, scoped["target_to_final"], "pretrained", entry.note,
                     scoped, packaged=name)


def registry() -> dict[str, ModelSpec]:
    specs = [
        ModelSpec("qwen-7b", "Qwen/Qwen2.5-7B-Instruct", 16, 15.0, note="paper model (primary)"),
        ModelSpec("gemma-9b", "google/gemma-2-9b-it", 16, 25.0, note="paper model (non-Qwen control)"),
        _organism_spec("qwen2-organism", "trained here: Qwen2, 28 layers, learned refusal"),
        _organism_spec("gemma2-organism", "trained here: Gemma2, 42 layers, learned refusal"),
        _packaged_spec("smollm2-135m"),
        _packaged_spec("gemma3-270m"),
        ModelSpec("qwen-7b-shape", f"shape:{MODELS_DIR / 'qwen-7b-shape'}", 16, 15.0, "shape",
                  "Qwen2.5-7B shapes, seeded random weights: parity and speed only"),
        ModelSpec("gemma-9b-shape", f"shape:{MODELS_DIR / 'gemma-9b-shape'}", 16, 25.0, "shape",
                  "Gemma-2-9B shapes, seeded random weights: parity and speed only"),
        ModelSpec("qwen2-tiny", "random:qwen2", 16, 4.0, "random", "seeded random Qwen2, 28 layers"),
        ModelSpec("gemma2-tiny", "random:gemma2", 16, 4.0, "random", "seeded random Gemma2, 42 layers"),
    ]
    return {s.name: s for s in specs}


DEFAULT_MODELS = ("qwen2-organism", "gemma2-organism")


def parse_model(arg: str) -> ModelSpec:
    """A registry name, or [NAME=]PATH_OR_ID[:LAYER[:MULTIPLIER]] (a Windows drive colon is not supported)."""
    given, sep, body = arg.partition("=")
    if sep and given and all(c.isalnum() or c in "._-" for c in given):
        return replace(_parse_model(body, arg), name=given)
    return _parse_model(arg, arg)


def _parse_model(body: str, arg: str) -> ModelSpec:
    known = registry()
    head, *rest = body.split(":")
    if head == "random" and rest:  # random:qwen2[:LAYER[:MULT]]
        head, rest = f"random:{rest[0]}", rest[1:]
    if len(rest) > 2:
        raise ModelSpecError(f"--parity-model {arg!r}: expected NAME or PATH_OR_ID[:LAYER[:MULTIPLIER]]")
    try:
        layer = int(rest[0]) if rest and rest[0] else None
        mult = float(rest[1]) if len(rest) > 1 else None
    except ValueError:
        raise ModelSpecError(f"--parity-model {arg!r}: LAYER must be an integer and MULTIPLIER a number, "
                             f"e.g. ./my-model:16:8.0") from None
    if head in known:
        spec = known[head]
    elif head.startswith("random:"):
        spec = ModelSpec(head.replace(":", "-"), head, 16, 4.0, "random")
    elif (Path(head) / "parity_defaults.json").is_file():  # a directory that says its layer and multiplier
        spec = _spec_with_defaults(directory_name(Path(head)), Path(head), f"directory {head}")
        spec = replace(spec, source=head)
    elif Path(head).exists():
        spec = ModelSpec(directory_name(Path(head)), head, 16, 1.0, multiplier_known=False)
    elif _looks_like_hub_id(head):
        spec = ModelSpec(head.split("/")[-1], head, 16, 1.0, multiplier_known=False)
    elif head.startswith((".", "/", "~")) or "/" in head:
        raise ModelSpecError(f"--parity-model {arg!r}: directory {head} does not exist. Fix the path, or download "
                             f"the weights there on a machine with network: `{_download(head)}`")
    else:
        raise ModelSpecError(f"--parity-model {arg!r}: not a known model ({', '.join(sorted(known))}), not an "
                             f"existing directory, and not a hub id of the form org/name")
    if layer is not None:
        spec = replace(spec, layer=layer)
    if mult is not None:
        spec = replace(spec, multiplier=mult, multipliers={}, multiplier_known=True)
    return spec


GENERIC_DIRS = {"hf", "model", "models", "checkpoint", "checkpoints", "weights", "final", "latest", "main", "out",
                "output", "snapshot", "export", "merged", "converted", "."}


def directory_name(path: Path) -> str:
    """What a directory model is called in reports: the model's own name when the path is a hub-cache snapshot
    (`models--Org--Name/snapshots/<hash>`) or a generic folder (`hf`, `model`, a commit hash), else the folder's
    name. `NAME=DIR` names it explicitly."""
    resolved = path.expanduser().resolve()
    for part in reversed(resolved.parts):
        if part.startswith("models--") and part.count("--") >= 2:
            return part.split("--")[-1]
    name = resolved.name
    generic = name.lower() in GENERIC_DIRS or (len(name) >= 32 and all(c in "0123456789abcdef" for c in name))
    if not generic:
        return name
    config = _read_config(resolved)
    own = str(config.get("_name_or_path") or "").rstrip("/").split("/")[-1]
    if own and own.lower() not in GENERIC_DIRS:
        return own
    arch = (config.get("architectures") or [config.get("model_type") or "model"])[0]
    return f"{resolved.parent.name}-{arch}" if resolved.parent.name else str(arch)


def _read_config(path: Path) -> dict[str, Any]:
    try:
        return json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        return {}


def _download(directory: str) -> str:
    """The download command for a missing directory: the registry's hub id when its name matches one."""
    base = Path(directory).name
    ids = [s.source for s in registry().values() if s.kind == "pretrained" and s.source.split("/")[-1] == base]
    return download_hint(ids[0] if ids else "ORG/NAME").replace("--local-dir DIR", f"--local-dir {directory}")


def typed_as(spec: ModelSpec) -> str:
    """How the user names this model on the command line: its registry name, else its directory or hub id."""
    known = registry().get(spec.name)
    return spec.name if known is not None and known.source == spec.source else spec.source


def _looks_like_hub_id(text: str) -> bool:
    parts = text.split("/")
    return len(parts) == 2 and all(parts) and not text.startswith((".", "/", "~"))
