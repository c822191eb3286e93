"""The protocol's prerequisites: tools importable, weights present, device visible, prompts readable."""

from __future__ import annotations

import importlib.metadata as md

import pytest
import torch

from parity_lib.checklist import CheckResult

pytestmark = pytest.mark.preflight

DISTRIBUTIONS = {"hooks": "torch", "nnsight": "nnsight", "pyvene": "pyvene"}


def test_tool_is_importable(tool_name, suite, record_check):
    dist = DISTRIBUTIONS[tool_name]
    version = md.version(dist)
    __import__(dist)
    for model in suite.models:
        record_check(model.name, CheckResult("environment.tool_importable", tool_name, True,
                                             f"{dist} {version}", {"version": version}))


def test_weights_are_present(loaded_model, model_name, record_check):
    n_params = sum(p.numel() for p in loaded_model.model.parameters())
    result = CheckResult("environment.weights_present", "*", n_params > 0,
                         f"{loaded_model.spec.source}: {n_params} parameters",
                         {"parameters": n_params, **loaded_model.describe()})
    record_check(model_name, result)
    assert result.passed, result.message


def test_device_is_visible(loaded_model, model_name, suite, record_check):
    where = next(loaded_model.model.parameters()).device
    ok = where.type == torch.device(suite.device).type
    result = CheckResult("environment.device_visible", "*", ok, f"weights on {where}, asked {suite.device}",
                         {"device": str(where)})
    record_check(model_name, result)
    assert ok, result.message


def test_prompt_set_is_readable(suite, model_name, record_check):
    p = suite.prompts
    sizes = {"harmful": len(p.harmful), "harmless": len(p.harmless), "eval": len(p.eval)}
    ok = all(sizes.values()) and len(p.sha256) == 64
    record_check(model_name, CheckResult("environment.prompts_readable", "*", ok,
                                         f"{p.source}: {sizes} sha256={p.sha256}",
                                         {**sizes, "sha256": p.sha256, "source": p.source}))
    assert ok
