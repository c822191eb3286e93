"""One extraction + steering cycle for (model, tool, repeat): protocol Sections B and C.

Each cycle extracts afresh (no caching across repeats: run-to-run variance is what is measured),
computes the difference-of-means direction, steers the evaluation prompts with it, classifies the
outputs, and records next-token logits under steering for logit-level parity.
"""

from __future__ import annotations

import hashlib
import json
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import torch

from parity_lib.errors import ConfigError, DeviceOutOfMemoryError
from parity_lib.models import memory
from parity_lib.models.loading import LoadedModel
from parity_lib.prompts import PromptSet
from parity_lib.run.compiled import MODES as GENERATION_MODES
from parity_lib.run.directions import Direction, diff_of_means
from parity_lib.run.generation import generate_packed_tokens, generate_tokens, label, prompt_width, steered_logits_top
from parity_lib.tools.base import extract_layers
from parity_lib.tools.registry import get_extractor, steering_tool
from parity_lib.tools.spec import SCOPES, SteeringSpec

STEER_MODES = ("hooks", "same")


PACKING = ("tools", "none")


@dataclass(frozen=True)
class StudySettings:
    repeats: int = 5
    scope: str = "target_to_final"
    steer_with: str = "hooks"  # "hooks": one reference steerer for every tool; "same": each tool's own
    max_new_tokens: int = 256
    gen_batch_size: int = 0  # 0 = all evaluation prompts in one batch
    n_eval: int = 0  # 0 = all evaluation prompts
    multiplier: float | None = None  # None = the model spec's multiplier for the scope
    generation: str = "eager"  # the reference steerer's generation: eager | compiled (steering/compiled.py)
    packing: str = "tools"  # tools: one repeat's tools generate in one batch (reference steerer, eager); none

    def packs(self, n_tools: int) -> bool:
        """Whether one repeat's cycles generate together: only through the one reference steerer (each
        tool's own mechanism cannot share a call) and its eager path (the compiled one steers one spec)."""
        return self.packing == "tools" and self.steer_with == "hooks" and self.generation == "eager" and n_tools > 1

    def __post_init__(self) -> None:
        if self.scope not in SCOPES:
            raise ConfigError(f"--parity-scope {self.scope!r}: choose {' or '.join(SCOPES)}")
        if self.steer_with not in STEER_MODES:
            raise ConfigError(f"--parity-steer-with {self.steer_with!r}: choose hooks (one reference steerer, "
                              f"isolates extraction) or same (each tool steers with its own mechanism)")
        if self.packing not in PACKING:
            raise ConfigError(f"--parity-packing {self.packing!r}: choose {' or '.join(PACKING)}")
        if self.generation not in GENERATION_MODES:
            raise ConfigError(f"--parity-generation {self.generation!r}: choose {', '.join(GENERATION_MODES)}")
        if self.repeats < 1 or self.max_new_tokens < 1 or self.gen_batch_size < 0 or self.n_eval < 0:
            raise ConfigError("--parity-repeats and --parity-max-new-tokens must be ≥ 1; "
                              "--parity-gen-batch-size, --parity-n-eval ≥ 0")

    def multiplier_for(self, lm: LoadedModel) -> float:
        return self.multiplier if self.multiplier is not None else lm.spec.multiplier_for(self.scope)


@dataclass
class CycleResult:
    model: str
    tool: str
    repeat: int
    direction: Direction
    steering: dict[str, Any]
    labels: list[str]
    texts: list[str]
    new_tokens: list[list[int]]
    logits_top: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)

    def rates(self) -> dict[str, float]:
        n = len(self.labels)
        return {k: sum(lab == k for lab in self.labels) / n for k in ("refusal", "garbled", "normal")}

    def to_record(self, *, config_key: str, provenance: dict[str, Any]) -> dict[str, Any]:
        return {"schema": 1, "model": self.model, "tool": self.tool, "repeat": self.repeat,
                "status": "ok", "error": None, "config_key": config_key,
                "direction": self.direction.summary(), "labels": self.labels, "texts": self.texts,
                "new_tokens": self.new_tokens, "n_prompts": len(self.labels), "rates": self.rates(),
                "logits": self.logits_top, "timings": self.timings, "steering": self.steering,
                "provenance": provenance}


def config_key(lm: LoadedModel, tool: str, prompts: PromptSet, settings: StudySettings,
               code: str) -> str:
    """What a cached cycle must share with this run to be reused: the same computation (spec, tool and its
    code, prompts, settings but the repeat count, dtype, device, the suite's code, dependency versions, the
    weights' fingerprint, the attention implementation)."""
    from parity_lib.storage.fingerprint import dependency_versions, tool_fingerprint, weights_fingerprint

    same_work = {k: v for k, v in asdict(settings).items() if k != "repeats"}  # more repeats reuse the first ones
    payload = {"spec": asdict(lm.spec), "tool": tool, "prompts": prompts.sha256, "settings": same_work,
               "dtype": str(lm.dtype), "device": lm.device.type, "code": code,
               "multiplier": settings.multiplier_for(lm), "versions": dependency_versions(),
               "weights": weights_fingerprint(lm.spec.source), "tool_code": tool_fingerprint(tool),
               "attn_implementation": lm.attn_implementation}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def extract_direction(lm: LoadedModel, tool: str, prompts: PromptSet) -> Direction:
    batch = lm.encode([*prompts.harmful, *prompts.harmless])
    acts = get_extractor(tool).extract(lm, batch, lm.spec.layer)
    n = len(prompts.harmful)
    return diff_of_means(acts.last[:n], acts.last[n:], lm.spec.layer)


def extract_directions(lm: LoadedModel, tool: str, prompts: PromptSet, layers: Sequence[int]) -> dict[int, Direction]:
    """`extract_direction` at several layers, from one forward pass where the tool allows it (the sweep)."""
    batch = lm.encode([*prompts.harmful, *prompts.harmless])
    n = len(prompts.harmful)
    return {layer: diff_of_means(acts.last[:n], acts.last[n:], layer)
            for layer, acts in extract_layers(get_extractor(tool), lm, batch, list(layers)).items()}


def steer_eval(lm: LoadedModel, steerer_name: str, spec: SteeringSpec, prompts: PromptSet,
               settings: StudySettings) -> tuple[list[list[int]], dict[str, Any], dict[str, Any]]:
    """Tokens on the evaluation prompts, top next-token logits, and how the generation ran."""
    evals = list(prompts.eval[: settings.n_eval or None])
    tokens, how = generate_tokens(lm, steerer_name, spec, evals, settings.max_new_tokens, settings.gen_batch_size,
                                  settings.generation)
    return tokens, steered_logits_top(lm, steerer_name, spec, evals), how


def unsteered_eval(lm: LoadedModel, prompts: PromptSet, settings: StudySettings) -> dict[str, Any]:
    """The baseline every steered rate is read against: the same evaluation prompts, the same generation
    path and length, no steering (a spec with no layers, so no hook is ever registered)."""
    spec = SteeringSpec((), 0.0, torch.zeros(lm.hidden_size, dtype=torch.float64), settings.scope)
    started = time.perf_counter()
    tokens, _, how = steer_eval(lm, "hooks", spec, prompts, settings)
    return _baseline_record(lm, tokens, prompts, settings, time.perf_counter() - started, how)


def _baseline_record(lm: LoadedModel, tokens: list[list[int]], prompts: PromptSet, settings: StudySettings,
                     seconds: float, how: dict[str, Any]) -> dict[str, Any]:
    texts, labels = label(lm, tokens, prompts.refusal_keywords, prompts.garbled_rules)
    n = len(labels)
    return {"schema": 1, "model": lm.spec.name, "status": "ok", "labels": labels, "texts": texts, "n_prompts": n,
            "rates": {k: sum(lab == k for lab in labels) / n for k in ("refusal", "garbled", "normal")},
            "max_new_tokens": settings.max_new_tokens, "generate_s": seconds, "generation": how}


def _spec(lm: LoadedModel, direction: Direction, settings: StudySettings) -> SteeringSpec:
    return SteeringSpec.build(direction.unit, lm.spec.layer, lm.n_layers, settings.multiplier_for(lm), settings.scope)


def _out_of_memory(what: str, lm: LoadedModel) -> DeviceOutOfMemoryError:
    """A machine fault, not a tool's: what ran out, and the device's figures (the generate calls were already
    split to fit; an extraction or a forward is one batch of the contrastive prompts)."""
    free = memory.free_bytes(lm.device)
    weights = lm.extras.get("weights_bytes") or memory.weights_bytes(lm.model)
    return DeviceOutOfMemoryError(
        f"{what}: out of device memory (weights {memory.gib(weights)} GiB, {memory.gib(free)} GiB free on "
        f"{lm.device})")


def _result(lm: LoadedModel, tool: str, repeat: int, direction: Direction, spec: SteeringSpec, steerer: str,
            tokens: list[list[int]], logits_top: dict[str, Any], how: dict[str, Any], prompts: PromptSet,
            settings: StudySettings, timings: dict[str, float]) -> CycleResult:
    texts, labels = label(lm, tokens, prompts.refusal_keywords, prompts.garbled_rules)
    steering = {**spec.describe(), "steer_with": steerer, "max_new_tokens": settings.max_new_tokens,
                "gen_batch_size": settings.gen_batch_size or len(tokens), "decoding": "greedy",
                "generation": how}
    return CycleResult(lm.spec.name, tool, repeat, direction, steering, labels, texts, tokens, logits_top, timings)


def run_cycle(lm: LoadedModel, tool: str, prompts: PromptSet, settings: StudySettings,
              repeat: int) -> CycleResult:
    start = time.perf_counter()
    try:
        direction = extract_direction(lm, tool, prompts)
        extracted = time.perf_counter()
        spec = _spec(lm, direction, settings)
        steerer = steering_tool(tool) if settings.steer_with == "same" else "hooks"
        tokens, logits_top, how = steer_eval(lm, steerer, spec, prompts, settings)
    except torch.cuda.OutOfMemoryError:
        raise _out_of_memory(f"{lm.spec.name}/{tool} r{repeat}", lm) from None
    done = time.perf_counter()
    return _result(lm, tool, repeat, direction, spec, steerer, tokens, logits_top, how, prompts, settings,
                   {"extract_s": extracted - start, "generate_s": done - extracted,
                    "total_s": time.perf_counter() - start})


@dataclass
class Repeat:
    """One packed repeat: each tool's cycle (or the exception that stopped it) and, when asked, the unsteered
    baseline generated as one more block of the same call."""
    cycles: dict[str, CycleResult | Exception] = field(default_factory=dict)
    baseline: dict[str, Any] | None = None
    firing: dict[str, Any] | None = None  # the call's firing map, when asked and the call was one batch


def _directions(lm: LoadedModel, tools: Sequence[str], prompts: PromptSet, settings: StudySettings, repeat: int,
                out: Repeat) -> dict[str, tuple[Direction, SteeringSpec, float]]:
    """Each tool's direction, spec and extraction seconds; a tool whose extraction fails gets its exception
    in `out.cycles` instead."""
    ready = {}
    for tool in tools:
        start = time.perf_counter()
        try:
            direction = extract_direction(lm, tool, prompts)
        except torch.cuda.OutOfMemoryError:
            out.cycles[tool] = _out_of_memory(f"{lm.spec.name}/{tool} r{repeat}", lm)
            continue
        except Exception as exc:
            out.cycles[tool] = exc
            continue
        ready[tool] = (direction, _spec(lm, direction, settings), time.perf_counter() - start)
    return ready


def run_repeat(lm: LoadedModel, tools: Sequence[str], prompts: PromptSet, settings: StudySettings,
               repeat: int, baseline: bool = False, firing: bool = False) -> Repeat:
    """Every tool's cycle of one repeat, their steered generations packed into one batch (`settings.packs`).

    Each tool still extracts afresh and gets its own direction; the evaluation prompts are stacked once per
    tool and each block is steered by its own tool's m·v (`steering.hooks.generate_packed`). Reruns stay
    separate calls, so run-to-run noise is still measured between repeats, while tools of one repeat share
    the call's numerics: a tool whose direction differs shows up on its own. With `baseline`, one more block
    steered by the zero vector (x + 0 = x) gives the unsteered baseline through the very same call. A tool
    whose extraction fails gets its exception in the result; the others go on. With `firing` (and every
    prompt in one call), the call's firing map is recorded: the study's own generation, checked by the
    firing-map test instead of a generation of its own."""
    out = Repeat()
    ready = _directions(lm, tools, prompts, settings, repeat, out)
    if not ready and not baseline:
        return out
    names = list(ready)
    specs = [ready[t][1] for t in names]
    if baseline:
        zero = torch.zeros(lm.hidden_size, dtype=torch.float64)
        specs.append(SteeringSpec.build(zero, lm.spec.layer, lm.n_layers, 0.0, settings.scope))
    started = time.perf_counter()
    evals = list(prompts.eval[: settings.n_eval or None])
    at_most = settings.gen_batch_size * len(specs) if settings.gen_batch_size else 0
    one_call = memory.plan(lm, len(specs) * len(evals), prompt_width(lm, evals), settings.max_new_tokens, firing=True,
                           at_most=at_most).calls == 1
    try:
        with ExitStack() as stack:
            if firing and one_call and names:
                from parity_lib.run.firing import record_packed_firing

                log = stack.enter_context(record_packed_firing(lm, specs, len(evals)))
            tokens, plan = generate_packed_tokens(lm, specs, evals, settings.max_new_tokens, settings.gen_batch_size,
                                                  firing=firing and one_call and bool(names))
        generated = time.perf_counter()
        tops = [steered_logits_top(lm, "hooks", ready[t][1], evals) for t in names]
    except torch.cuda.OutOfMemoryError:
        error = _out_of_memory(f"{lm.spec.name} r{repeat} ({len(specs)} packed blocks)", lm)
        if baseline:
            raise error from None
        out.cycles.update({t: error for t in names})
        return out
    except Exception as exc:
        if baseline:
            raise
        out.cycles.update({t: exc for t in names})
        return out
    generate_s, logits_s = generated - started, time.perf_counter() - generated
    blocks = [*names, *(["unsteered"] if baseline else [])]
    how = {"path": "eager (dynamic cache), each repeat's tools packed in one batch", "tried": False,
           "proof": f"--parity-packing tools: {len(blocks)} blocks of {len(evals)} rows in {plan['calls_made']} "
                    f"generate call(s) of ≤ {plan['rows_per_call']} rows (sized to the device's free memory), "
                    f"each row steered by its own tool's direction",
           "packed_with": blocks, "plan": plan}
    share = (generate_s + logits_s) / len(blocks)
    for tool, rows, top in zip(names, tokens, tops):
        direction, spec, extract_s = ready[tool]
        out.cycles[tool] = _result(lm, tool, repeat, direction, spec, "hooks", rows, top, how, prompts, settings,
                                   {"extract_s": extract_s, "generate_s": share, "total_s": extract_s + share,
                                    "packed_generate_s": generate_s})
    if firing and one_call and names and plan["calls_made"] == 1:
        out.firing = {"log": log, "spec": specs[0], "steps": max(len(row) for block in tokens for row in block),
                      "steered_rows": len(names) * len(evals), "blocks": blocks, "repeat": repeat}
    if baseline:
        out.baseline = _baseline_record(lm, tokens[-1], prompts, settings, share,
                                        {**how, "proof": how["proof"] + "; this block's vector is zero"})
    return out
