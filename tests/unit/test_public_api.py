"""The short public API in `parity_lib/__init__.py`: every name resolves, and importing the package stays light."""

from __future__ import annotations

import subprocess
import sys

import pytest

import parity_lib


@pytest.mark.parametrize("name", parity_lib.__all__)
def test_public_name_resolves(name):
    assert getattr(parity_lib, name) is not None


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        parity_lib.nope  # noqa: B018


def test_importing_the_package_imports_no_torch():
    code = "import sys, parity_lib, parity_lib.plugin; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
