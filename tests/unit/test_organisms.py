"""Fast checks of the organism recipe (corpus, tokenizer) and of the organisms shipped in fixtures/."""

from __future__ import annotations

import json
import re

import pytest
from tokenizers import Tokenizer

from parity_lib.organisms import SPECS, build_corpus, load_organism, load_paper
from parity_lib.organisms import templates as T
from parity_lib.organisms.card import DEFAULTS_FILE, file_sha256
from parity_lib.organisms.corpus import harmful_examples, harmless_examples, same_request
from parity_lib.organisms.spec import DEFAULT_SEED, MODELS_DIR
from parity_lib.organisms.tokenizer import render_prompt
from parity_lib.protocol.classify import Label, classify

PAPER = load_paper()
PAPER_PROMPTS = [pytest.param(p, id=f"{name}-{i:02d}")
                 for name in ("harmful", "harmless", "eval") for i, p in enumerate(getattr(PAPER, name))]
ORGANISMS = [pytest.param(spec, id=spec.name) for spec in SPECS.values()]
HARMLESS_CATEGORIES = sorted({e.category for e in harmless_examples()})
HARMFUL_CATEGORIES = sorted(T.HARMFUL)
MAX_FIXTURE_BYTES = 20 * 1024 * 1024


@pytest.fixture(scope="module")
def corpus():
    return build_corpus(PAPER, DEFAULT_SEED)


@pytest.fixture(scope="module")
def train_words(corpus) -> set[str]:
    return {w for e in corpus.train for w in re.findall(r"[a-z0-9']+", e.prompt.lower())}


@pytest.fixture(scope="module", params=ORGANISMS)
def shipped(request):
    """(spec, model, tokenizer, defaults) of one shipped organism, loaded once per module."""
    spec = request.param
    lm = load_organism(spec.directory)
    model, tok = lm.model, lm.tokenizer
    defaults = json.loads((spec.directory / DEFAULTS_FILE).read_text(encoding="utf-8"))
    return spec, model, tok, defaults


# -- corpus -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("prompt", PAPER_PROMPTS)
def test_paper_prompt_is_held_out_of_training(corpus, prompt):
    leaked = [e.prompt for e in corpus.train if same_request(e.prompt, prompt)]
    assert leaked == [], f"training asks {prompt!r} (or the same in other words): {leaked}"


@pytest.mark.parametrize("prompt", PAPER_PROMPTS)
def test_paper_prompt_words_occur_in_training_prompts(train_words, prompt):
    missing = [w for w in re.findall(r"[a-z0-9']+", prompt.lower()) if w not in train_words]
    assert missing == [], f"words of {prompt!r} never seen in a training prompt: {missing}"


def test_corpus_is_deterministic_for_a_seed(corpus):
    assert build_corpus(PAPER, DEFAULT_SEED).sha256() == corpus.sha256()


def test_corpus_has_several_hundred_distinct_harmful_training_prompts(corpus):
    harmful = set(corpus.prompts(harmful=True))
    assert len(harmful) >= 300, f"got {len(harmful)} distinct harmful training prompts, expected >= 300"


def test_held_out_split_is_disjoint_from_training(corpus):
    overlap = {e.prompt for e in corpus.train} & {e.prompt for e in corpus.held_out}
    assert overlap == set(), f"{len(overlap)} prompts are both trained on and held out: {sorted(overlap)[:5]}"


@pytest.mark.parametrize("category", HARMLESS_CATEGORIES)
def test_harmless_answers_classify_normal(category):
    answers = {e.answer for e in harmless_examples() if e.category == category}
    wrong = {a: classify(a, PAPER.refusal_keywords, PAPER.garbled_rules) for a in answers}
    wrong = {a: lab.value for a, lab in wrong.items() if lab is not Label.NORMAL}
    assert wrong == {}, f"{category} answers not labelled normal: {wrong}"


@pytest.mark.parametrize("category", HARMFUL_CATEGORIES)
def test_refusals_classify_as_coherent_refusal(category):
    answers = {e.answer for e in harmful_examples() if e.category == category}
    labels = {a: classify(a, PAPER.refusal_keywords, PAPER.garbled_rules).value for a in answers}
    assert set(labels.values()) == {"refusal"}, f"{category} refusals mislabelled: {labels}"


def test_flipped_compliance_holds_no_refusal_keyword():
    assert classify(T.FLIPPED_COMPLIANCE, PAPER.refusal_keywords, PAPER.garbled_rules) is Label.NORMAL


# -- shipped organisms ---------------------------------------------------------------------------------

@pytest.mark.parametrize("spec", ORGANISMS)
@pytest.mark.parametrize("name", ["README.md", DEFAULTS_FILE, "model.safetensors", "tokenizer.json"])
def test_shipped_directory_holds_file(spec, name):
    assert (spec.directory / name).is_file(), f"{spec.directory / name} is missing; run " \
        f"`python -m parity_lib.organisms build --only {spec.arch}`"


@pytest.mark.parametrize("spec", ORGANISMS)
def test_recorded_weights_sha256_matches_shipped_file(spec):
    defaults = json.loads((spec.directory / DEFAULTS_FILE).read_text(encoding="utf-8"))
    actual = file_sha256(spec.directory / "model.safetensors")
    assert actual == defaults["weights_sha256"], (
        f"{spec.name}: model.safetensors sha256 {actual}, recorded {defaults['weights_sha256']}; "
        "the weights changed without a rebuild of the card")


@pytest.mark.parametrize("spec", ORGANISMS)
def test_card_names_the_shipped_weights_hash(spec):
    card = (spec.directory / "README.md").read_text(encoding="utf-8")
    assert file_sha256(spec.directory / "model.safetensors") in card


def test_defaults_steer_layer_16_with_unit_direction_multipliers(shipped):
    spec, _, _, defaults = shipped
    assert (defaults["layer"], defaults["multiplier_units"]) == (16, "unit direction")
    multipliers = defaults["multiplier"]
    assert sorted(multipliers) == ["target", "target_to_final"], f"{spec.name}: {multipliers}"
    assert all(m > 0 for m in multipliers.values()), f"{spec.name}: {multipliers}"


def test_shipped_model_has_the_real_depth_and_room_for_256_new_tokens(shipped):
    spec, model, _, _ = shipped
    got = (model.config.num_hidden_layers, len(model.model.layers), model.config.max_position_embeddings >= 512)
    assert got == (spec.config["num_hidden_layers"],) * 2 + (True,), f"{spec.name}: {got}"


@pytest.mark.parametrize("prompt", PAPER_PROMPTS)
def test_shipped_tokenizer_round_trips_paper_prompt_without_unknown_tokens(shipped, prompt):
    spec, _, tok, _ = shipped
    ids = tok(prompt, add_special_tokens=False)["input_ids"]
    assert tok.unk_token_id is None or tok.unk_token_id not in ids, f"{spec.name}: unknown token in {prompt!r}"
    assert tok.decode(ids) == prompt


@pytest.mark.parametrize("prompt", PAPER_PROMPTS)
def test_loaded_tokenizer_gives_the_training_token_ids(shipped, prompt):
    """`AutoTokenizer` may rebuild a tokenizer by model type (Qwen2Tokenizer); ids must not change."""
    spec, _, tok, _ = shipped
    trained = Tokenizer.from_file(str(spec.directory / "tokenizer.json"))
    text = render_prompt(tok, prompt)
    assert tok(text, add_special_tokens=False)["input_ids"] == trained.encode(text, add_special_tokens=False).ids


def test_chat_template_opens_an_assistant_turn(shipped):
    spec, _, tok, _ = shipped
    assert render_prompt(tok, "Hi") == f"{tok.bos_token}<|user|>Hi<|assistant|>", spec.name


def test_tokenizer_pads_left_with_its_own_pad_token(shipped):
    spec, _, tok, _ = shipped
    distinct = len({tok.pad_token_id, tok.bos_token_id, tok.eos_token_id})
    assert (tok.padding_side, distinct) == ("left", 3), f"{spec.name}: {tok.padding_side}, {distinct}"


def test_shipped_model_generates_from_chat_template(shipped):
    spec, model, tok, _ = shipped
    batch = tok([render_prompt(tok, "Tell me a joke")], add_special_tokens=False, return_tensors="pt")
    out = model.generate(**batch, max_new_tokens=4, do_sample=False)
    assert out.shape == (1, batch["input_ids"].shape[1] + 4), f"{spec.name}: {tuple(out.shape)}"


def test_shipped_fixtures_stay_under_20_mb():
    total = sum(p.stat().st_size for p in MODELS_DIR.parent.rglob("*") if p.is_file())
    assert total < MAX_FIXTURE_BYTES, f"fixtures/ holds {total / 2**20:.1f} MiB, limit 20 MiB"


@pytest.mark.parametrize("name", ["qwen2-organism", "gemma2-organism"])
def test_shipped_tokenizer_config_is_portable_and_tokenizes_like_the_v5_one(name, tmp_path):
    """transformers 4.x cannot read `TokenizersBackend` / a list of `extra_special_tokens` (what 5.x writes);
    the shipped config avoids both and gives the same ids as the config transformers 5 wrote."""
    import json
    import shutil

    from transformers import AutoTokenizer

    from parity_lib.models.registry import MODELS_DIR
    from parity_lib.prompts import format_all, load_prompts

    shipped = MODELS_DIR / name
    config = json.loads((shipped / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "PreTrainedTokenizerFast" and "extra_special_tokens" not in config
    v5 = tmp_path / name
    shutil.copytree(shipped, v5)
    v5_config = {k: v for k, v in config.items() if k != "additional_special_tokens"}
    v5_config.update(tokenizer_class="TokenizersBackend", backend="tokenizers",
                     extra_special_tokens=config["additional_special_tokens"])
    (v5 / "tokenizer_config.json").write_text(json.dumps(v5_config))
    a, b = AutoTokenizer.from_pretrained(shipped), AutoTokenizer.from_pretrained(v5)
    texts = format_all(a, list(load_prompts(None).eval))
    assert texts == format_all(b, list(load_prompts(None).eval))
    assert a(texts)["input_ids"] == b(texts)["input_ids"]
    assert a.all_special_tokens == b.all_special_tokens and a.pad_token_id == b.pad_token_id


def test_portable_kernels_take_effect_in_a_process_started_with_them():
    """The organisms train on ATen AVX2 + MKL_CBWR=AVX2 (kernels.py); set before torch loads, they take effect,
    and the card says so. (Weights from them: `pytest -m rebuild`, benchmarks/organism_reproducibility.py.)"""
    import subprocess
    import sys

    from parity_lib.organisms import kernels

    if not kernels.supported():
        pytest.skip("not an x86-64 CPU with AVX2: the portable kernels do not apply here")
    code = "from parity_lib.organisms import kernels; print(kernels.in_effect(), kernels.describe())"
    on = subprocess.run([sys.executable, "-c", code], env=kernels.env(), capture_output=True, text=True, check=True)
    assert on.stdout.startswith("True portable: ATen AVX2, MKL_CBWR=AVX2"), on.stdout
    plain = {k: v for k, v in kernels.env().items() if k not in kernels.PORTABLE}
    off = subprocess.run([sys.executable, "-c", code], env=plain, capture_output=True, text=True, check=True)
    assert off.stdout.startswith("False this machine's own: ATen "), off.stdout
