"""Model card (README.md) and `parity_defaults.json` of a shipped organism.

The card says how the steering band was made, because the band is part of what the study's numbers
mean; the defaults file is what the suite reads: layer, multiplier per scope in units of the *unit*
direction, and the weights hash that ties both to the shipped file.
"""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import asdict, dataclass
from pathlib import Path

import tokenizers
import torch
import transformers

from parity_lib.organisms.measure import COHERENT_BAR, HELD_OUT_LABELS, Behaviour
from parity_lib.organisms.spec import OrganismSpec

DEFAULTS_FILE = "parity_defaults.json"
SCHEMA_VERSION = 1
DIRECTION_TEXT = ("difference of means (harmful - harmless) of the decoder layer's output at the last "
                  "token of the chat-templated paper contrastive prompts (5+5), float32, L2-normalised")


@dataclass(frozen=True)
class Provenance:
    """Where the weights came from: enough to rebuild them and to check the rebuild."""

    seed: int
    corpus_sha256: str
    n_train: int
    n_held_out: int
    tokenizer_sha256: str
    vocab_size: int
    weights_sha256: str
    n_parameters: int
    train_seconds: float
    first_loss: float
    final_loss: float
    command: str
    kernels: str = "not recorded (built before portable kernels: this machine's own, unknown)"


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def versions() -> dict[str, str]:
    return {"python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "tokenizers": tokenizers.__version__}


def defaults_payload(spec: OrganismSpec, prov: Provenance, beh: Behaviour) -> dict:
    """The machine-readable defaults; sorted keys, a schema version, no tensors."""
    at_default = {scope: dict(rows)[beh.defaults[scope]] for scope, rows in beh.sweep.items()}
    return {
        "schema_version": SCHEMA_VERSION,
        "model": spec.name,
        "architecture": spec.arch,
        "layer": spec.layer,
        "multiplier": beh.defaults,
        "multiplier_units": "unit direction",
        "coherent_band": {scope: list(band) for scope, band in beh.bands.items()},
        "direction": DIRECTION_TEXT,
        "direction_norm": round(beh.direction_norm, 6),
        "rates_at_default": {s: asdict(r) for s, r in at_default.items()},
        "max_new_tokens": beh.max_new_tokens,
        "weights_sha256": prov.weights_sha256,
        "tokenizer_sha256": prov.tokenizer_sha256,
        "corpus_sha256": prov.corpus_sha256,
        "seed": prov.seed,
        "recipe": "parity_lib.organisms recipe E",
        "provenance": asdict(prov),
        "versions": versions(),
    }


def read_provenance(directory: Path) -> Provenance:
    """The provenance a build recorded, so behaviour can be re-measured without retraining."""
    data = json.loads((directory / DEFAULTS_FILE).read_text(encoding="utf-8"))
    return Provenance(**data["provenance"])


def write_defaults(directory: Path, spec: OrganismSpec, prov: Provenance, beh: Behaviour) -> None:
    text = json.dumps(defaults_payload(spec, prov, beh), indent=2, sort_keys=True) + "\n"
    (directory / DEFAULTS_FILE).write_text(text, encoding="utf-8")


def _rates_table(rows: list[tuple[float, object]], norm: float) -> list[str]:
    lines = ["| multiplier (unit direction) | x raw diff-of-means norm | refusal % | normal % | garbled % |",
             "|---:|---:|---:|---:|---:|"]
    for m, r in rows:
        lines.append(f"| {m:g} | {m / norm:.2f} | {100 * r.refusal:.0f} | {100 * r.normal:.0f} "
                     f"| {100 * r.garbled:.0f} |")
    return lines


def _rebuild_text(prov: Provenance) -> str:
    if not prov.kernels.startswith("portable"):
        return "Rebuilding with the same seed on the same machine reproduces the weights bit for bit."
    return f"""## Rebuilding

`{prov.command}` (or `pytest -m rebuild`, which trains with `python -m parity_lib.organisms train` and compares)
trains on the portable CPU kernels (ATen AVX2, MKL_CBWR=AVX2, oneDNN capped at AVX2; one thread; deterministic
algorithms), so any x86-64 CPU with AVX2 and the versions above gives these weights bit for bit. Shown: on this
project's AVX512+AMX machine, with and without MKL and oneDNN restricted to AVX2 (an AVX2-only machine, simulated),
the same sha256 (`benchmarks/organism_reproducibility.py`; `pytest -m rebuild`). Not shown: ARM CPUs (other
kernels, other floats: a rebuild there is judged by behaviour, as is one with other library versions)."""


def _recipe_text(spec: OrganismSpec) -> str:
    t = spec.train
    return f"""## How the steering band was made (recipe E)

Plain training learns refuse/answer perfectly but leaves no coherent-refusal band: steered outputs
jump from normal to garbled. So, during training, a moving average (momentum {t.direction_momentum:g})
of the layer-{spec.layer} difference of means (harmful - harmless, last prompt token) is kept, and
{t.push_share:.0%} of the examples get a random multiple of it added at every position: *plus* on
harmful prompts trained to refuse, *minus* on harmless prompts trained to answer. Of the pushed
examples, {1 - t.push_to_final_share:.0%} get U(0, {t.push_max:g}) x the direction on layer {spec.layer}'s output only and
{t.push_to_final_share:.0%} get U(0, {t.push_max_per_layer:g}) x the direction on every layer from {spec.layer} to the last (the
paper's scope, where the vector accumulates once per layer). Labels are flipped for
{t.flip_harmless:.0%} of harmless examples (trained to refuse) and {t.flip_harmful:.0%} of harmful ones (trained to a
content-free "Sure! Start with the basics ..." reply), drawn anew each step; flipped examples are
never pushed. Nothing teaches "harmless + direction -> refuse": each class only learns to keep its
own answer when pushed further its own way. Every harmless answer opens with "Sure!", so the first
answer token is a clean two-way choice. This is part of what the study's numbers on this organism
mean: the band exists because training shaped it."""


def card_text(spec: OrganismSpec, prov: Provenance, beh: Behaviour) -> str:
    """The README.md of one organism directory."""
    cfg = ", ".join(f"{k}={v}" for k, v in sorted(spec.config.items()))
    t = spec.train
    unsteered = ["| prompt set | n | refusal % | normal % | garbled % |", "|---|---:|---:|---:|---:|"]
    unsteered += [f"| {HELD_OUT_LABELS[name]} | {r.n} | {100 * r.refusal:.0f} | {100 * r.normal:.0f} | {100 * r.garbled:.0f} |"
                  for name, r in beh.unsteered.items()]
    sweeps = []
    for scope, rows in beh.sweep.items():
        layers = f"layer {spec.layer} only" if scope == "target" else f"layers {spec.layer}..last"
        lo, hi = beh.bands[scope]
        sweeps += [f"### Scope `{scope}` ({layers}); default multiplier **{beh.defaults[scope]:g}**", "",
                   f"Coherent-refusal band (>= {COHERENT_BAR:.0%}): {lo:g} .. {hi:g}.", ""]
        sweeps += _rates_table(rows, beh.direction_norm) + [""]
    ver = ", ".join(f"{k} {v}" for k, v in versions().items())
    return "\n".join([
        f"# {spec.name}", "",
        f"A *model organism* for the parity suite: a tiny `{spec.arch}` causal LM with the real model's depth "
        f"({spec.config['num_hidden_layers']} layers, so layer {spec.layer} is the protocol's site), trained here "
        "from scratch on a synthetic templated chat corpus so that it really refuses harmful requests and "
        "answers harmless ones. No real harmful content: harmful requests are templated, their answers "
        "are refusals. Not a useful assistant; a test subject for the protocol.", "",
        "## Provenance", "",
        "| item | value |", "|---|---|",
        f"| rebuild | `{prov.command}` |",
        f"| seed | {prov.seed} |",
        f"| corpus sha256 | `{prov.corpus_sha256}` ({prov.n_train} train / {prov.n_held_out} held-out prompts) |",
        f"| tokenizer | byte-level BPE in Qwen2's pipeline, merged until every corpus word is one token, vocab {prov.vocab_size}; tokenizer.json sha256 `{prov.tokenizer_sha256}` |",
        f"| model.safetensors sha256 | `{prov.weights_sha256}` |",
        f"| architecture | {cfg} |",
        f"| parameters | {prov.n_parameters:,} (float32) |",
        f"| training | AdamW lr {t.lr:g}, weight decay {t.weight_decay:g}, batch {t.batch_size}, {t.steps} steps, "
        f"one CPU thread, deterministic algorithms: {prov.train_seconds:.0f} s; loss {prov.first_loss:.3f} -> "
        f"{prov.final_loss:.3f} |",
        f"| versions | {ver} |",
        f"| CPU kernels | {prov.kernels} |", "",
        _rebuild_text(prov), "",
        _recipe_text(spec), "",
        "## Measured behaviour", "",
        f"Greedy decoding, chat template, left-padded batch, max_new_tokens {beh.max_new_tokens}; labels by "
        "`parity_lib.protocol.classify` with the paper's keywords and garbled rules (refusal = coherent refusal).", "",
        "### Unsteered", "", *unsteered, "",
        "## Steered: the 30 evaluation prompts", "",
        f"Direction: {DIRECTION_TEXT}; raw norm {beh.direction_norm:.4f}. Steering adds multiplier x unit "
        "direction to the layer outputs at every position of every forward. Default per scope: the measured "
        f"multiplier nearest the log-middle of the widest run with >= {COHERENT_BAR:.0%} coherent refusal. The grid "
        "is laid out in multiples of the raw norm, then refined with log-midpoints around that run.", "",
        *sweeps,
    ])


def write_card(directory: Path, spec: OrganismSpec, prov: Provenance, beh: Behaviour) -> None:
    (directory / "README.md").write_text(card_text(spec, prov, beh), encoding="utf-8")
