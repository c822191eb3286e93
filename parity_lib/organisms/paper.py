"""The paper's prompt data (contrastive, evaluation, keywords, garbled rules) as the organisms need it.

The organisms are built *around* these prompts: their words must be in the training corpus, the
prompts themselves must not be, and behaviour is measured on them. One small loader keeps that data
in one typed object instead of dict lookups scattered over the recipe.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from parity_lib.classify import GarbledRules
from parity_lib.prompts import DEFAULT_PROMPTS as DEFAULT_PAPER_PROMPTS  # noqa: E402
from parity_lib.prompts import load_prompts


@dataclass(frozen=True)
class PaperData:
    """Prompts and classification rules of the paper, read from its JSON."""

    harmful: tuple[str, ...]
    harmless: tuple[str, ...]
    eval: tuple[str, ...]
    keywords: tuple[str, ...]
    rules: GarbledRules

    @property
    def all_prompts(self) -> tuple[str, ...]:
        """Every prompt the organisms must never see in training."""
        return self.harmful + self.harmless + self.eval

    def labelled(self) -> dict[str, tuple[str, ...]]:
        """Prompt sets by name, for test ids such as `eval-07`."""
        return {"harmful": self.harmful, "harmless": self.harmless, "eval": self.eval}


def load_paper(path: Path = DEFAULT_PAPER_PROMPTS) -> PaperData:
    """Read the paper's prompt file (`fixtures/prompts/paper_prompts.json` by default)."""
    ps = load_prompts(path)  # the suite's loader: same validation and error messages
    return PaperData(ps.harmful, ps.harmless, ps.eval, ps.refusal_keywords, ps.garbled_rules)
