"""Fixtures for the suite's self-tests: small models built here, independent of --parity-model."""

from __future__ import annotations

from typing import Any

import pytest

pytest_plugins = ["pytester"]

_CACHE: dict[tuple[str, str], Any] = {}  # models load lazily: `pytest --help` imports no torch


@pytest.fixture(scope="session")
def tiny():
    """`tiny("qwen2-tiny", "float32")`: seeded random models of the real depths, loaded once."""
    from parity_lib import models

    def get(name: str, dtype: str = "float32") -> models.LoadedModel:
        if (name, dtype) not in _CACHE:
            _CACHE[(name, dtype)] = models.load(models.parse_model(name), dtype)
        return _CACHE[(name, dtype)]
    return get
