"""One exception tree for the suite: every message says what was got, what was expected, how to fix it."""

from __future__ import annotations


class ParityError(Exception):
    """Base of every error the suite raises on purpose."""


class ConfigError(ParityError):
    """A command-line option or argument is malformed or names something that does not exist."""


class UnknownToolError(ConfigError):
    """A tool name that is not one of the registered extractors/steerers."""


class ToolNotInstalledError(ConfigError):
    """A registered tool whose package is not installed in this environment."""


class ModelSpecError(ConfigError):
    """A `--parity-model` value that is neither a registry name nor a readable PATH_OR_ID[:LAYER[:MULTIPLIER]]."""


class WeightsNotFoundError(ConfigError):
    """A model's weights are not present locally (no hub access at run time)."""


class LayerOutOfRangeError(ConfigError):
    """The requested layer index does not exist in the model."""


class UnsupportedModelError(ConfigError):
    """The model has no recognisable list of decoder layers."""


class PromptFileError(ConfigError):
    """A prompt file is missing, empty, malformed, or a Python file that was not explicitly allowed."""


class NonFiniteActivationError(ParityError):
    """An extracted activation or direction contains NaN or Inf."""


class DeviceOutOfMemoryError(ParityError):
    """The device ran out of memory (or a model's weights cannot fit it): a fault of the machine, not a tool's."""


class ModelOverflowError(NonFiniteActivationError):
    """The model's own forward (no tool involved) gives NaN/Inf in this dtype: float16's range (65504) exceeded.
    A fault of the dtype, not a tool's."""


class ModelStateError(ParityError):
    """Something changed the shared model behind a tool's back (a tool's instrumentation lost)."""


class MissingResultError(ParityError):
    """A report step that computes nothing (`--parity-reuse-only`) found no result on disk: a shard's hole."""
