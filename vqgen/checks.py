"""One-line checks of scalar arguments, shared by every module that takes a count or a rate from a user."""

from __future__ import annotations

import math

from vqgen.errors import ConfigError

__all__ = ["positive_number", "whole_number"]


def positive_number(name: str, value) -> float:
    """``value`` as a float if it is a finite number > 0 (not a bool), else a one-line ``ConfigError`` naming it."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not (math.isfinite(value) and value > 0)
    ):
        raise ConfigError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def whole_number(name: str, value, minimum: int) -> int:
    """``value`` if it is an int >= ``minimum`` (not a bool), else a one-line ``ConfigError`` naming it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value
