"""From a seed to a shipped organism directory: corpus, tokenizer, training, card, defaults.

Behaviour is measured on the weights as reloaded from disk through `models.load`, the path the study
uses, and measured with the study's own extraction, steering and generation (`behaviour.py`), so the card
describes exactly what ships, as the study sees it.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

from parity_lib.models.loading import LoadedModel, load
from parity_lib.models.registry import ModelSpec
from parity_lib.organisms import kernels
from parity_lib.organisms import templates as T
from parity_lib.organisms.card import Provenance, file_sha256, read_provenance, write_card, write_defaults
from parity_lib.organisms.corpus import Corpus, build_corpus
from parity_lib.organisms.measure import measure
from parity_lib.organisms.paper import load_paper
from parity_lib.organisms.spec import LAYER, OrganismSpec
from parity_lib.organisms.tokenizer import build_tokenizer
from parity_lib.organisms.train import train
from parity_lib.prompts import PromptSet

WEIGHTS_FILE = "model.safetensors"
PROVENANCE_FILE = "provenance.json"  # written by `train` only; a shipped directory carries it in its card
_SHIPPED_FILES = frozenset({WEIGHTS_FILE, "config.json", "generation_config.json", "tokenizer.json",
                            "tokenizer_config.json", "chat_template.jinja", "special_tokens_map.json",
                            "README.md", "parity_defaults.json", "provenance.json"})


def tokenizer_texts(corpus: Corpus) -> list[str]:
    """Every text the organism is trained on, and nothing held out."""
    return [t for e in corpus.train for t in (e.prompt, e.answer)] + [T.FLIPPED_REFUSAL, T.FLIPPED_COMPLIANCE]


def load_organism(directory: Path, layer: int = LAYER, dtype: str = "float32") -> LoadedModel:
    """An organism directory loaded exactly as the study loads any model (`models.load`: safetensors,
    offline, Gemma2's eager attention)."""
    return load(ModelSpec(Path(directory).name, str(directory), layer, 1.0), dtype)


def portable_tokenizer_config(directory: Path) -> None:
    """Make `tokenizer_config.json` loadable by transformers 4.x as well as 5.x: transformers 5 writes
    `tokenizer_class: TokenizersBackend` and `extra_special_tokens` as a list, which 4.x cannot read;
    `PreTrainedTokenizerFast` with `additional_special_tokens` is read by both and tokenizes identically
    (the same tokenizer.json; a test compares the ids)."""
    path = directory / "tokenizer_config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config.pop("backend", None)
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    extra = config.pop("extra_special_tokens", None)
    if isinstance(extra, list):
        config["additional_special_tokens"] = extra
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _clear(directory: Path) -> None:
    """Empty an organism directory, refusing to delete anything a build did not write."""
    if not directory.exists():
        return
    foreign = sorted(p.name for p in directory.iterdir() if p.name not in _SHIPPED_FILES)
    if foreign:
        raise FileExistsError(f"{directory} holds files a build did not write ({foreign}); "
                              "choose an empty --out directory or move them away")
    shutil.rmtree(directory)


def train_and_save(spec: OrganismSpec, seed: int, paper: PromptSet, out: Path) -> tuple[Corpus, Provenance]:
    """Build corpus and tokenizer, train, save weights + tokenizer; return what the card needs."""
    corpus = build_corpus(paper, seed)
    tok = build_tokenizer(tokenizer_texts(corpus))
    model, log = train(spec, tok, corpus, seed)
    _clear(out)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    portable_tokenizer_config(out)
    prov = Provenance(
        seed=seed, corpus_sha256=corpus.sha256(), n_train=len(corpus.train), n_held_out=len(corpus.held_out),
        tokenizer_sha256=file_sha256(out / "tokenizer.json"), vocab_size=len(tok),
        weights_sha256=file_sha256(out / WEIGHTS_FILE), n_parameters=sum(p.numel() for p in model.parameters()),
        train_seconds=log.seconds, first_loss=log.losses[0][1], final_loss=log.losses[-1][1],
        command=f"python -m parity_lib.organisms build --only {spec.arch} --seed {seed}", kernels=kernels.describe(),
    )
    return corpus, prov


def train_only(spec: OrganismSpec, seed: int, out: Path | None = None, paper: PromptSet | None = None) -> Provenance:
    """Weights and tokenizer only, with the provenance as JSON (`provenance.json`): what a rebuild compares."""
    out = Path(out or spec.directory)
    _, prov = train_and_save(spec, seed, paper or load_paper(), out)
    (out / PROVENANCE_FILE).write_text(json.dumps(asdict(prov), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return prov


def _measure_and_write(spec: OrganismSpec, corpus: Corpus, prov: Provenance, paper: PromptSet, out: Path,
                       max_new_tokens: int) -> None:
    behaviour = measure(load_organism(out, spec.layer), corpus, paper, spec.layer, max_new_tokens)
    write_card(out, spec, prov, behaviour)
    write_defaults(out, spec, prov, behaviour)


def build_organism(spec: OrganismSpec, seed: int, out: Path | None = None, paper: PromptSet | None = None,
                   max_new_tokens: int = 256) -> Provenance:
    """The whole recipe for one organism, ending in a directory a fresh clone can use as is."""
    paper = paper or load_paper()
    out = Path(out or spec.directory)
    corpus, prov = train_and_save(spec, seed, paper, out)
    _measure_and_write(spec, corpus, prov, paper, out, max_new_tokens)
    return prov


def remeasure_organism(spec: OrganismSpec, out: Path | None = None, paper: PromptSet | None = None,
                       max_new_tokens: int = 256) -> Provenance:
    """Measure shipped weights again and rewrite card + defaults; the weights are not touched."""
    paper = paper or load_paper()
    out = Path(out or spec.directory)
    prov = read_provenance(out)
    actual = file_sha256(out / WEIGHTS_FILE)
    if actual != prov.weights_sha256:
        raise ValueError(f"{out / WEIGHTS_FILE} has sha256 {actual}, its card records {prov.weights_sha256}; "
                         f"rebuild with `{prov.command}` instead of re-measuring")
    corpus = build_corpus(paper, prov.seed)
    if corpus.sha256() != prov.corpus_sha256:
        raise ValueError(f"seed {prov.seed} now gives corpus {corpus.sha256()}, the weights were trained on "
                         f"{prov.corpus_sha256}; the templates changed: rebuild with `{prov.command}`")
    _measure_and_write(spec, corpus, prov, paper, out, max_new_tokens)
    return prov
