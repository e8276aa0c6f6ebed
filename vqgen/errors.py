"""Every error vqgen raises on purpose. Each message is one line naming the value or file and what was expected."""

from __future__ import annotations


class VqgenError(Exception):
    """Base class of all vqgen errors; the CLI prints these as one line without a traceback."""


class ConfigError(VqgenError, ValueError):
    """A configuration or argument value is outside what is allowed."""


class DataError(VqgenError, ValueError):
    """A data file or folder cannot be used (missing, empty, corrupt, wrong shape or format)."""


class ShapeError(VqgenError, ValueError):
    """A tensor has the wrong shape, channel count, size or dtype."""


class CheckpointError(VqgenError, OSError):
    """A saved model, pipeline or training checkpoint is missing, corrupt or unsafe."""


class MismatchError(VqgenError, ValueError):
    """Two artifacts that must belong together do not (tokenizer vs prior vs code shards)."""


class TrainingError(VqgenError, RuntimeError):
    """Training cannot continue (for example too many consecutive non-finite steps)."""
