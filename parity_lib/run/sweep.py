"""Sweeps: where (which layer) and how strongly (which multiplier) the direction steers, per tool.

A sweep is a study with more points, not a second pipeline. A point is (model, layer, tool, multiplier): the
direction comes from the same extraction as a cycle (at layer L), steering from the same steerers, and every
multiplier of every tool at one layer — plus the unsteered baseline, a zero vector — is one packed generate call
through the reference steerer (with `--parity-steer-with same`, each tool's own steerer runs per multiplier).
Each point is its own file with its own key (the cycle's configuration key at that layer, the multiplier), so a
killed sweep loses nothing finished and a rerun computes only what is missing.

The default multiplier grid is scaled to the model: fractions 1/32 … 1 of the median norm of layer L's output
at the last token of the contrastive prompts (a multiplier is in units of the unit direction, so its effect is
relative to that norm), plus the model's own multiplier.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from parity_lib.errors import ConfigError, MissingResultError
from parity_lib.models.loading import LoadedModel
from parity_lib.prompts import PromptSet
from parity_lib.run.cycle import StudySettings, config_key, extract_direction, extract_directions
from parity_lib.run.generation import generate_packed_tokens, generate_tokens, label
from parity_lib.storage.results import current_record, read_json, write_json_atomic
from parity_lib.tools.registry import steering_tool
from parity_lib.tools.spec import SteeringSpec

GRID_FRACTIONS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0)
DEPTHS = (0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875)  # the default layers, as fractions of the depth


@dataclass(frozen=True)
class SweepSettings:
    layers: str = ""  # "" (the default depths), "all", "4,8,12" or "0.25,0.5,0.75"
    multipliers: tuple[float, ...] = ()  # () = the grid scaled to each layer's activation norm
    repeats: int = 1

    def __post_init__(self) -> None:
        if self.repeats < 1:
            raise ConfigError("--parity-sweep-repeats must be ≥ 1")
        bad = [m for m in self.multipliers if not (m == m and abs(m) < float("inf")) or m == 0]
        if bad:
            raise ConfigError(f"--parity-multipliers: {bad} must be finite and non-zero")


def parse_multipliers(text: str | None) -> tuple[float, ...]:
    if not text:
        return ()
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise ConfigError(f"--parity-multipliers {text!r}: a comma-separated list of numbers, e.g. 2,4,8") from None


def resolve_layers(spec: str, n_layers: int, own: int) -> list[int]:
    """The layers a sweep visits: a list of indices, `all`, or depth fractions (0 < f < 1 → round(f·n));
    the model's own layer is always one of them (its study's point, read beside the rest)."""
    text = spec.strip() or ",".join(map(str, DEPTHS))
    if text == "all":
        layers = set(range(n_layers))
    else:
        try:
            values = [float(x) for x in text.split(",") if x.strip()]
        except ValueError:
            raise ConfigError(f"--parity-layers {spec!r}: a list of layers (4,8,12), `all`, or depth fractions "
                              f"(0.25,0.5,0.75)") from None
        if any("." in x for x in text.split(",")):
            if not all(0 < v < 1 for v in values):
                raise ConfigError(f"--parity-layers {spec!r}: depth fractions must lie strictly between 0 and 1")
            layers = {min(n_layers - 1, round(v * n_layers)) for v in values}
        else:
            layers = {int(v) for v in values}
    outside = sorted(x for x in layers if not 0 <= x < n_layers)
    if outside:
        raise ConfigError(f"--parity-layers {spec!r}: layer(s) {outside} outside the model's 0..{n_layers - 1}")
    return sorted(layers | {own})


def activation_norm(lm: LoadedModel, prompts: PromptSet, layer: int) -> float:
    """Median ‖h_L‖ at the last token of the contrastive prompts: the scale a multiplier is read against."""
    store: list[torch.Tensor] = []
    handle = lm.layers[layer].register_forward_hook(
        lambda m, a, out: store.append(out if isinstance(out, torch.Tensor) else out[0]))
    batch = lm.encode([*prompts.harmful, *prompts.harmless])
    try:
        with torch.no_grad():
            lm.model(**batch.model_inputs(), use_cache=False)
    finally:
        handle.remove()
    return float(store[0][:, -1].float().norm(dim=-1).median())


def grid(settings: SweepSettings, norm: float, own: float) -> list[float]:
    """The multipliers of one layer: those asked for, else fractions of the activation norm (3 significant
    digits), with the model's own multiplier added."""
    values = settings.multipliers or tuple(float(f"{f * norm:.3g}") for f in GRID_FRACTIONS)
    return sorted(set(values) | {float(own)})


def point_path(results_dir: Path, model: str, layer: int, tool: str, multiplier: float) -> Path:
    return Path(results_dir) / "sweep" / model / f"L{layer}" / tool / f"x{multiplier:g}.json"


def direction_path(results_dir: Path, model: str, layer: int, tool: str, repeat: int) -> Path:
    return Path(results_dir) / "sweep" / model / f"L{layer}" / tool / f"direction-r{repeat}.json"


def baseline_path(results_dir: Path, model: str) -> Path:
    return Path(results_dir) / "sweep" / model / "unsteered.json"


@dataclass
class SweepStore:
    """Computes and caches the points of one (model, layer) at a time."""

    results_dir: Path
    prompts: PromptSet
    study: StudySettings  # generation length, prompts, scope, steer_with: the study's own settings
    settings: SweepSettings
    tools: tuple[str, ...]
    code: str
    provenance: Callable[..., dict[str, Any]]
    fresh: bool = False
    log: Callable[[str], None] = print
    reuse_only: bool = False  # the launcher's report step: points on disk or a MissingResultError
    _norms: dict[tuple[str, int], float] = field(default_factory=dict)
    _extracted: set[tuple[str, str, int]] = field(default_factory=set)  # (model, tool, repeat) done this session

    def at(self, lm: LoadedModel, layer: int) -> LoadedModel:
        """The model with its spec at `layer`: the same weights, tokenizer and tool wrappers."""
        return replace(lm, spec=replace(lm.spec, layer=layer))

    def multipliers(self, lm: LoadedModel, layer: int) -> list[float]:
        key = (lm.spec.name, layer)
        if key not in self._norms:
            self._norms[key] = activation_norm(lm, self.prompts, layer)
        return grid(self.settings, self._norms[key], lm.spec.multiplier_for(self.study.scope))

    def key(self, lm_l: LoadedModel, tool: str, what: str) -> str:
        base = config_key(lm_l, tool, self.prompts, replace(self.study, multiplier=None), self.code)
        return hashlib.sha256(json.dumps({"cycle": base, "point": what}).encode()).hexdigest()

    def layer(self, lm: LoadedModel, layer: int) -> dict[str, Any]:
        """Every point of (model, layer): {"norm", "multipliers", "directions": {tool: [unit...]},
        "points": {tool: {mult: record}}, "baseline": record, "computed": n}."""
        lm_l = self.at(lm, layer)
        mults = self.multipliers(lm, layer)
        name = lm.spec.name
        directions = {t: [self._direction(lm, layer, t, k) for k in range(1, self.settings.repeats + 1)]
                      for t in self.tools}
        one_pass = self._one_pass_check(lm_l, directions) if layer == lm.spec.layer else None
        missing = [(t, m) for t in self.tools for m in mults
                   if self.fresh or current_record(point_path(self.results_dir, name, layer, t, m),
                                                   self.key(lm_l, t, f"x{m:g}")) is None]
        base_file = baseline_path(self.results_dir, name)
        base_key = self.key(self.at(lm, 0), "unsteered", "baseline")
        baseline = None if self.fresh else current_record(base_file, base_key)
        started = time.perf_counter()
        if self.reuse_only and (missing or baseline is None):
            from parity_lib.storage.shard_status import shard_note

            raise MissingResultError(f"{shard_note(name)}{name} layer {layer}: {len(missing)} point(s) not on disk "
                                     f"under {self.results_dir / 'sweep'} (--parity-reuse-only: this step computes "
                                     f"nothing)")
        if missing or baseline is None:
            computed = self._generate(lm_l, directions, missing, baseline is None)
            if computed is not None:
                baseline = {**computed, "config_key": base_key}
                write_json_atomic(base_file, baseline)
        points = {t: {m: read_json(point_path(self.results_dir, name, layer, t, m)) for m in mults}
                  for t in self.tools}
        return {"model": name, "layer": layer, "norm": self._norms[(name, layer)], "multipliers": mults,
                "directions": {t: [d["unit"] for d in ds] for t, ds in directions.items()},
                "raw_norms": {t: [d["norm"] for d in ds] for t, ds in directions.items()},
                "points": points, "baseline": baseline, "computed": len(missing), "one_pass": one_pass,
                "seconds": time.perf_counter() - started}

    def _direction(self, lm: LoadedModel, layer: int, tool: str, repeat: int) -> dict[str, Any]:
        """Layer `layer`'s direction from disk, else extracted with every other layer of the sweep that is not on
        disk, in one forward pass per tool (`extract_layers`), each written to its own file."""
        name = lm.spec.name

        def on_disk(x: int) -> dict[str, Any] | None:
            return current_record(direction_path(self.results_dir, name, x, tool, repeat),
                                  self.key(self.at(lm, x), tool, f"direction-r{repeat}"))

        cached = on_disk(layer)
        if cached is not None and (not self.fresh or (name, tool, repeat) in self._extracted):
            return cached
        layers = [x for x in resolve_layers(self.settings.layers, lm.n_layers, lm.spec.layer)
                  if self.fresh or on_disk(x) is None]
        layers = sorted(set(layers) | {layer})
        started = time.perf_counter()
        found = extract_directions(lm, tool, self.prompts, layers)
        seconds = time.perf_counter() - started
        self._extracted.add((name, tool, repeat))
        for x, direction in found.items():
            lm_x = self.at(lm, x)
            record = {"status": "ok", "config_key": self.key(lm_x, tool, f"direction-r{repeat}"), "model": name,
                      "tool": tool, "repeat": repeat, "layer": x, "norm": direction.norm,
                      "unit": direction.unit.tolist(), "extracted_with": sorted(found), "extract_s": seconds,
                      "provenance": self.provenance(model=lm_x.describe())}
            write_json_atomic(direction_path(self.results_dir, name, x, tool, repeat), record)
            if x == layer:
                cached = record
        return cached

    def _one_pass_check(self, lm_l: LoadedModel, directions: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
        """At the model's own layer, each tool's one-pass direction against its one-layer extraction (the path
        the study takes): a tool whose all-layer path returns other tensors would otherwise steer the sweep with
        a direction the study never checked. Correct tools give the same bits."""
        out = {}
        for tool, records in directions.items():
            alone = extract_direction(lm_l, tool, self.prompts).unit.to(torch.float64)
            swept = torch.tensor(records[0]["unit"], dtype=torch.float64)
            out[tool] = {"max_abs": float((alone - swept).abs().max()), "cos": float(alone @ swept),
                         "extracted_with": records[0].get("extracted_with", [lm_l.spec.layer])}
        return out

    def _generate(self, lm_l: LoadedModel, directions: dict[str, list[dict[str, Any]]],
                  missing: Sequence[tuple[str, float]], with_baseline: bool) -> dict[str, Any] | None:
        """The missing points (and the baseline) of one layer: one packed call through the reference steerer, or
        with `--parity-steer-with same` one call per (tool, multiplier) through each tool's own steerer."""
        evals = list(self.prompts.eval[: self.study.n_eval or None])
        layer, n = lm_l.spec.layer, lm_l.n_layers

        def spec(tool: str | None, m: float) -> SteeringSpec:
            unit = (torch.tensor(directions[tool][0]["unit"], dtype=torch.float64) if tool is not None
                    else torch.zeros(lm_l.hidden_size, dtype=torch.float64))
            return SteeringSpec.build(unit, layer, n, m if tool is not None else 0.0, self.study.scope)

        wanted: list[tuple[str | None, float]] = [*missing, *([(None, 0.0)] if with_baseline else [])]
        packed = [w for w in wanted if self.study.steer_with == "hooks" or w[0] is None
                  or steering_tool(w[0]) == "hooks"]
        alone = [w for w in wanted if w not in packed]
        tokens: dict[tuple[str | None, float], list[list[int]]] = {}
        started = time.perf_counter()
        if packed:
            outs, _ = generate_packed_tokens(lm_l, [spec(t, m) for t, m in packed], evals, self.study.max_new_tokens,
                                          self.study.gen_batch_size)
            tokens.update(zip(packed, outs))
        for t, m in alone:
            tokens[(t, m)], _ = generate_tokens(lm_l, steering_tool(t), spec(t, m), evals, self.study.max_new_tokens,
                                                self.study.gen_batch_size)
        seconds = time.perf_counter() - started
        baseline = None
        prov = self.provenance(model=lm_l.describe())
        for (tool, m), toks in tokens.items():
            texts, labels = label(lm_l, toks, self.prompts.refusal_keywords, self.prompts.garbled_rules)
            record = {"status": "ok", "model": lm_l.spec.name, "layer": layer, "tool": tool, "multiplier": m,
                      "labels": labels, "texts": texts, "n_prompts": len(labels),
                      "rates": {k: sum(x == k for x in labels) / len(labels) for k in ("refusal", "garbled", "normal")},
                      "steer_with": self.study.steer_with if tool is None else
                      ("hooks" if self.study.steer_with == "hooks" else steering_tool(tool)),
                      "scope": self.study.scope, "max_new_tokens": self.study.max_new_tokens,
                      "call_s": seconds, "provenance": prov}
            if tool is None:
                baseline = record
                continue
            record["config_key"] = self.key(lm_l, tool, f"x{m:g}")
            write_json_atomic(point_path(self.results_dir, lm_l.spec.name, layer, tool, m), record)
        self.log(f"sweep {lm_l.spec.name} L{layer}: {len(tokens)} blocks in {seconds:.1f}s")
        return baseline
