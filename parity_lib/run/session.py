"""The run's configuration and its loaded models: what the pytest plugin hands to every test.

Plain library code (no pytest) so a notebook can build the same `Suite` and call the same checks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from parity_lib.models.loading import LoadedModel, load_once
from parity_lib.models.registry import ModelSpec
from parity_lib.prompts import PromptSet
from parity_lib.run.cycle import StudySettings
from parity_lib.run.sweep import SweepSettings
from parity_lib.storage.provenance import provenance


@dataclass
class Suite:
    models: tuple[ModelSpec, ...]
    tools: tuple[str, ...]
    prompts: PromptSet
    dtype: str = "float32"
    device: str = "cpu"
    seed: int = 42
    allow_network: bool = False
    trust_remote_code: bool = False
    settings: StudySettings = field(default_factory=StudySettings)
    attn_implementation: str | None = None  # --parity-attention, or what a selected tool requires
    sweep: SweepSettings = field(default_factory=SweepSettings)

    def spec(self, name: str) -> ModelSpec:
        return next(s for s in self.models if s.name == name)

    def model(self, name: str, on_wait: Callable[[str], None] = lambda line: None) -> LoadedModel:
        """Loaded once per process (per xdist worker), then reused by every test of that model; on a GPU shared
        with another process whose model does not fit beside it, after waiting for its turn (`on_wait`)."""
        return load_once(self.spec(name), self.dtype, self.device, on_wait=on_wait,
                         work=(self._widest_call_rows(), self.settings.max_new_tokens), seed=self.seed,
                         trust_remote_code=self.trust_remote_code, allow_network=self.allow_network,
                         attn_implementation=self.attn_implementation)

    def provenance(self, **extra: Any) -> dict[str, Any]:
        from parity_lib.run.determinism import state

        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")  # which process computed it (gw0, gw1, ...)
        return provenance(determinism=state(), dtype=self.dtype, device=self.device, seed=self.seed, worker=worker,
                          prompt_sha256=self.prompts.sha256, prompt_source=self.prompts.source, **extra)

    def study_plan(self, lm: LoadedModel) -> Any:
        """How the study's widest generate call (a repeat's tools and the baseline, packed) runs on this device."""
        from parity_lib.models.memory import plan
        from parity_lib.run.generation import prompt_width

        evals = list(self.prompts.eval[: self.settings.n_eval or None])
        blocks = self._blocks()
        at_most = self.settings.gen_batch_size * blocks if self.settings.gen_batch_size else 0
        return plan(lm, self._widest_call_rows(), prompt_width(lm, evals), self.settings.max_new_tokens,
                    at_most=at_most)

    def _blocks(self) -> int:
        """Blocks of the widest generate call: a repeat's tools and the baseline when packed, else one."""
        return len(self.tools) + 1 if self.settings.packs(len(self.tools)) else 1

    def _widest_call_rows(self) -> int:
        return self._blocks() * len(self.prompts.eval[: self.settings.n_eval or None])

    def checklist_config(self) -> dict[str, Any]:
        """What makes two checklist runs comparable (stored as the checklist file's "config"; a cycle's
        reuse key is `cycle.config_key`, which also covers the weights, settings and versions)."""
        from parity_lib.storage.fingerprint import tool_fingerprint
        from parity_lib.storage.provenance import code_fingerprint

        return {"dtype": self.dtype, "device": self.device.split(":")[0], "prompt_sha256": self.prompts.sha256,
                "code": code_fingerprint(), "torch": torch.__version__, "attention": self.attn_implementation,
                "tools": {t: tool_fingerprint(t) for t in self.tools}}

    def attention_note(self) -> str | None:
        """Why the models load with a given attention implementation, when the run chose it."""
        from parity_lib.tools import required_attention

        wanted, by = required_attention(self.tools)
        if self.attn_implementation is None:
            return None
        if wanted and self.attn_implementation == wanted:
            return (f"attention {wanted} for every tool: {', '.join(by)} computes attention {wanted}ly whatever the "
                    f"model's setting, so the model is loaded {wanted} and every tool runs the same computation")
        return f"attention {self.attn_implementation} for every model that has it (--parity-attention)"
