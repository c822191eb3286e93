"""Prompt sets: the paper's contrastive and evaluation prompts, user files, chat formatting, hashing.

A prompt set is data plus the classifier's vocabulary (refusal keywords, garbled rules). The default is
the paper's Appendix A (`fixtures/prompts/paper_prompts.json`). A user may pass the same JSON shape or a
Python file in the paper's `v3_shared.py` convention (HARMFUL/HARMLESS/EVAL lists, optionally suffixed
`_PROMPTS`). A Python file is code: it is executed only when the caller sets `allow_python=True`, which
the pytest option does only because the user named the file on the command line.
"""

from __future__ import annotations

import hashlib
import json
import runpy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from parity_lib.errors import PromptFileError
from parity_lib.protocol.classify import GarbledRules

FIXTURES = Path(__file__).resolve().parent / "fixtures"  # package data: found from any install
DEFAULT_PROMPTS = FIXTURES / "prompts" / "paper_prompts.json"


@dataclass(frozen=True)
class PromptSet:
    harmful: tuple[str, ...]
    harmless: tuple[str, ...]
    eval: tuple[str, ...]
    refusal_keywords: tuple[str, ...]
    garbled_rules: GarbledRules
    source: str
    sha256: str = field(default="")

    def content_hash(self) -> str:
        """sha256 over everything that changes a result: prompts, keywords, garbled rules."""
        payload = {
            "harmful": self.harmful,
            "harmless": self.harmless,
            "eval": self.eval,
            "refusal_keywords": self.refusal_keywords,
            "garbled_rules": self.garbled_rules.__dict__,
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _build(harmful, harmless, evals, keywords, rules, source) -> PromptSet:
    ps = PromptSet(tuple(harmful), tuple(harmless), tuple(evals), tuple(keywords), rules, source)
    return PromptSet(**{**ps.__dict__, "sha256": ps.content_hash()})


def load_prompts(path: str | Path | None = None, *, allow_python: bool = False) -> PromptSet:
    """Load a prompt set; missing keywords/rules fall back to the paper's."""
    path = Path(path) if path is not None else DEFAULT_PROMPTS
    if not path.is_file():
        raise PromptFileError(f"prompt file {str(path)!r} does not exist; pass --parity-prompts with a readable "
                              f"JSON file (keys harmful, harmless, eval) or a Python file with HARMFUL/"
                              f"HARMLESS/EVAL lists")
    if path.suffix == ".py":
        if not allow_python:
            raise PromptFileError(f"{path} is a Python file, i.e. code; it is run only when named "
                                  f"explicitly with --parity-prompts")
        raw = _read_python(path)
    elif path.suffix == ".json":
        raw = _read_json(path)
    else:
        raise PromptFileError(f"prompt file {path} must end in .json or .py, got {path.suffix!r}")
    return _from_mapping(raw, str(path))


def _read_json(path: Path) -> Mapping[str, Any]:
    text = path.read_text(encoding="utf-8")
    if not text.strip():
        raise PromptFileError(f"prompt file {path} is empty; it needs keys harmful, harmless, eval")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PromptFileError(f"prompt file {path} is not valid JSON ({exc.msg} at line {exc.lineno}, "
                              f"column {exc.colno}); fix the file") from None
    if not isinstance(data, dict):
        raise PromptFileError(f"prompt file {path} must hold a JSON object, got {type(data).__name__}")
    return data


def _read_python(path: Path) -> Mapping[str, Any]:
    try:
        ns = runpy.run_path(str(path))
    except Exception as exc:  # the user's code: report, don't re-raise a deep traceback
        raise PromptFileError(f"running prompt file {path} failed: {type(exc).__name__}: {exc}") from None
    out: dict[str, Any] = {}
    for key in ("harmful", "harmless", "eval"):
        for name in (key.upper(), f"{key.upper()}_PROMPTS"):
            if name in ns:
                out[key] = ns[name]
    for key in ("refusal_keywords", "garbled_rules"):
        if key.upper() in ns:
            out[key] = ns[key.upper()]
    return out


def _from_mapping(raw: Mapping[str, Any], source: str) -> PromptSet:
    lists = {k: _prompt_list(raw, k, source) for k in ("harmful", "harmless", "eval")}
    if len(lists["harmful"]) != len(lists["harmless"]):
        raise PromptFileError(f"{source}: harmful has {len(lists['harmful'])} prompts but harmless has "
                              f"{len(lists['harmless'])}; the contrastive sets must pair up")
    paper = _read_json(DEFAULT_PROMPTS)
    keywords = raw.get("refusal_keywords", paper["refusal_keywords"])
    try:
        rules = GarbledRules.from_mapping(raw.get("garbled_rules", paper["garbled_rules"]))
    except (TypeError, ValueError) as exc:
        raise PromptFileError(f"{source}: garbled_rules invalid: {exc}") from None
    return _build(lists["harmful"], lists["harmless"], lists["eval"], keywords, rules, source)


def _prompt_list(raw: Mapping[str, Any], key: str, source: str) -> list[str]:
    value = raw.get(key)
    if value is None:
        raise PromptFileError(f"{source}: no {key!r} prompts; expected a non-empty list of strings under "
                              f"{key!r} (JSON) or {key.upper()}/{key.upper()}_PROMPTS (Python)")
    if not isinstance(value, (list, tuple)) or not value:
        raise PromptFileError(f"{source}: {key!r} must be a non-empty list of strings, got {value!r:.80}")
    bad = [i for i, p in enumerate(value) if not isinstance(p, str) or not p.strip()]
    if bad:
        raise PromptFileError(f"{source}: {key!r} entries {bad[:5]} are empty or not strings")
    return list(value)


def format_chat(tokenizer: Any, prompt: str, system: str | None = None) -> str:
    """The prompt as the model sees it: through its chat template when it has one, else raw. `system`: None
    keeps the template's own system turn (a default one, for templates that insert it); a string (also "") is
    sent as the system message."""
    if not getattr(tokenizer, "chat_template", None):
        return prompt
    turns = [{"role": "user", "content": prompt}]
    if system is not None:
        turns.insert(0, {"role": "system", "content": system})
    try:
        return tokenizer.apply_chat_template(turns, add_generation_prompt=True, tokenize=False)
    except Exception as exc:  # jinja's TemplateError, raised by templates that refuse a system turn (Gemma-2)
        if system is None:
            raise
        raise PromptFileError(f"--parity-system-prompt: this model's chat template does not take a system message "
                              f"({exc}); drop the option for this model") from None


def format_all(tokenizer: Any, prompts: Sequence[str], system: str | None = None) -> list[str]:
    return [format_chat(tokenizer, p, system) for p in prompts]
