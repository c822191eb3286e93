"""The protocol's prerequisites: tools importable, weights present, device visible, prompts readable."""

from __future__ import annotations

import pytest
import torch

from parity_lib.run.checklist import CheckResult
from parity_lib.tools import registry

pytestmark = pytest.mark.preflight


def test_tool_is_importable(tool_name, suite, record_check):
    """The tool's package is installed and its extractor and steerer import (a tool from another package
    included): the registry, not a list in this file, says what the tool needs."""
    plugin = registry.get(tool_name)
    version = registry.installed(plugin)
    plugin.make_extractor()
    plugin.make_steerer()
    what = f"{plugin.package} {version}" if plugin.package else "no package declared"
    for model in suite.models:
        record_check(model.name, CheckResult("environment.tool_importable", tool_name, True,
                                             f"{what}; steers {plugin.steering_note}",
                                             {"version": version, "package": plugin.package,
                                              "own_steering": plugin.own_steering}))


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
