"""Deprecated: `parity_lib.extractors.base` was the helpers' home before each tool lived whole in `parity_lib.tools`.
A tool plugin that imports `finish` / `unwrap` / `Activations` from here still works, with a DeprecationWarning."""

import warnings

from parity_lib.tools.base import Activations, Extractor, extract_layers, finish, unwrap

warnings.warn("parity_lib.extractors.base is deprecated: import finish, unwrap and Activations from parity_lib.tools",
              DeprecationWarning, stacklevel=2)

__all__ = ["Activations", "Extractor", "extract_layers", "finish", "unwrap"]
