"""Fixtures for the suite's self-tests: small models built here, independent of --parity-model."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


@pytest.fixture(scope="session")
def tiny():
    """`tiny("qwen2-tiny", "float32")`: seeded random models of the real depths, loaded once;
    `attention="eager"` loads it as a run with a tool that computes attention eagerly (transformer_lens) does."""
    from parity_lib import models

    def get(name: str, dtype: str = "float32", attention: str | None = None) -> models.LoadedModel:
        return models.load_once(models.parse_model(name), dtype, attn_implementation=attention)
    return get


def registered_tools() -> list:
    """Every registered tool as a test parameter; a tool whose package is missing is skipped, saying so."""
    from parity_lib.errors import ToolNotInstalledError
    from parity_lib.tools import registry

    params = []
    for name, plugin in registry.tools().items():
        try:
            registry.installed(plugin)
            params.append(pytest.param(name, id=name))
        except ToolNotInstalledError as exc:
            params.append(pytest.param(name, id=name, marks=pytest.mark.skip(reason=str(exc))))
    return params
