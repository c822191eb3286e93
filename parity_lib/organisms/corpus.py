"""Synthetic chat corpus: templated harmful requests answered with refusals, harmless ones answered.

Deterministic from a seed. The paper's 5+5 contrastive and 30 evaluation prompts are held out, and so
is every templated prompt with the same *content* as one of them ("How can I make coffee?" is the
evaluation prompt "How do I make coffee?" in other words), so behaviour on the paper's prompts is
generalisation, not recall. A further share of the templated prompts is held out for measuring it.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import asdict, dataclass
from typing import Iterable

from parity_lib.organisms import templates as T
from parity_lib.prompts import PromptSet

# Frame and function words: two prompts that differ only in these ask the same thing.
_FRAME_WORDS = frozenset(
    "a an the i me my you your our do does can how what what's is are to for of in on at with about "
    "some best way easiest steps instructions guide tips need help please explain tell write give show "
    "teach describe recommend suggest compose share name list good".split()
)
_DOUBLED = {"get": "getting", "set": "setting", "plan": "planning", "run": "running", "swim": "swimming",
            "rob": "robbing", "kidnap": "kidnapping", "shop": "shopping", "stop": "stopping"}


@dataclass(frozen=True)
class Example:
    """One request with the answer its class calls for (refusal for harmful ones)."""

    prompt: str
    harmful: bool
    category: str
    answer: str


@dataclass(frozen=True)
class Corpus:
    """Training examples and the templated examples held out to measure generalisation."""

    seed: int
    train: tuple[Example, ...]
    held_out: tuple[Example, ...]

    def sha256(self) -> str:
        """Hash of the whole corpus, recorded in the model card as provenance."""
        payload = {"seed": self.seed, "train": [asdict(e) for e in self.train],
                   "held_out": [asdict(e) for e in self.held_out]}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()

    def prompts(self, *, harmful: bool, split: str = "train") -> list[str]:
        """Prompts of one class from the `train` or `held_out` split."""
        examples = self.train if split == "train" else self.held_out
        return [e.prompt for e in examples if e.harmful == harmful]


def gerund(verb_phrase: str) -> str:
    """'make a bomb' -> 'making a bomb', for frames such as 'Write instructions for ...'."""
    verb, _, rest = verb_phrase.partition(" ")
    if verb in _DOUBLED:
        ing = _DOUBLED[verb]
    elif verb.endswith("e") and not verb.endswith("ee"):
        ing = verb[:-1] + "ing"
    else:
        ing = verb + "ing"
    return f"{ing} {rest}".strip()


def _stem(word: str) -> str:
    """Crude suffix strip so 'making'/'make' and 'works'/'work' share a key."""
    word = word.removesuffix("'s")
    for suffix in ("ing", "es", "s", "e"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def content_key(prompt: str) -> frozenset[str]:
    """Stemmed content words of a prompt: what it asks for, whatever frame it uses."""
    words = re.findall(r"[a-z0-9']+", prompt.lower())
    return frozenset(_stem(w) for w in words if w not in _FRAME_WORDS)


def normalise(prompt: str) -> str:
    """Lower case, punctuation dropped: the form used to compare prompts for equality."""
    return " ".join(re.findall(r"[a-z0-9']+", prompt.lower()))


def same_request(a: str, b: str) -> bool:
    """True when two prompts are equal, or ask for the same thing in another frame."""
    return normalise(a) == normalise(b) or content_key(a) == content_key(b)


def held_out_violations(prompts: Iterable[str], paper: PromptSet) -> list[str]:
    """Prompts that are a paper prompt, or ask the same thing in other words."""
    every = (*paper.harmful, *paper.harmless, *paper.eval)
    texts = {normalise(p) for p in every}
    keys = {content_key(p) for p in every}
    return [p for p in prompts if normalise(p) in texts or content_key(p) in keys]


def _helpful(text: str) -> str:
    """A harmless answer: the shared opener, then the text with its first letter capitalised."""
    return f"{T.HARMLESS_OPENER} {text[:1].upper()}{text[1:]}"


def _your(verb_phrase: str) -> str:
    return re.sub(r"\bmy\b", "your", verb_phrase)


def _howto(verb_phrase: str) -> list[str]:
    return [f.format(vp=verb_phrase) for f in T.HOWTO_FRAMES] + [
        f.format(ger=gerund(verb_phrase)) for f in T.GERUND_FRAMES
    ]


def harmful_examples() -> list[Example]:
    """Every templated harmful request with its category's refusal."""
    out = []
    for category, (phrases, reason) in T.HARMFUL.items():
        answer = f"{T.REFUSAL_OPENER} {reason}"
        out += [Example(p, True, category, answer) for vp in phrases for p in _howto(vp)]
    return out


def harmless_examples() -> list[Example]:
    """Every templated harmless request with its short helpful answer."""
    out = []
    for domain, (phrases, template) in T.HARMLESS_HOWTO.items():
        for vp in phrases:
            answer = _helpful(template.format(vp=_your(vp)))
            out += [Example(p, False, domain, answer) for p in _howto(vp)]
    for kind, (frames, slots, template) in T.HARMLESS_SLOTTED.items():
        for values in slots:
            answer = _helpful(template.format(*values))
            out += [Example(f.format(*values), False, kind, answer) for f in frames]
    out += [Example(q, False, "facts", _helpful(a)) for q, a in T.HARMLESS_FACTS]
    return out


def _distinct(examples: Iterable[Example]) -> list[Example]:
    seen: set[str] = set()
    kept = []
    for e in examples:
        if normalise(e.prompt) not in seen:
            seen.add(normalise(e.prompt))
            kept.append(e)
    return kept


def build_corpus(paper: PromptSet, seed: int = 0, held_out_share: float = 0.1) -> Corpus:
    """All templated examples minus the paper's prompts, split into train and held out by `seed`.

    The vocabulary facts always stay in training: they are there to cover the paper's words.
    """
    candidates = _distinct(harmful_examples() + harmless_examples())
    banned = set(held_out_violations([e.prompt for e in candidates], paper))
    kept = [e for e in candidates if e.prompt not in banned]
    facts = [e for e in kept if e.category == "facts"]
    templated = [e for e in kept if e.category != "facts"]
    random.Random(seed).shuffle(templated)
    n_held = round(held_out_share * len(templated))
    corpus = Corpus(seed=seed, train=tuple(templated[n_held:] + facts), held_out=tuple(templated[:n_held]))
    leaked = held_out_violations([e.prompt for e in corpus.train], paper)
    if leaked:
        raise RuntimeError(f"paper prompts leaked into the training corpus: {leaked[:5]}")
    return corpus
