"""Small checks shared by the parameter classes: each raises with the parameter, the value and what is allowed.

Example:
    >>> _check_range("seconds_until_auto_pause", 60, 300, 86_400, unit="seconds")
    Traceback (most recent call last):
    ...
    ValueError: seconds_until_auto_pause=60 is outside 300..86400 (seconds)
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from numbers import Real


def _check_type(name: str, value: object, kind: type | tuple[type, ...], what: str) -> None:
    # bool is an int in Python, but True ACUs or True seconds is always a mistake.
    if isinstance(value, bool) and kind is not bool:
        raise TypeError(f"{name}={value!r} must be {what}, not a bool")
    if not isinstance(value, kind):
        raise TypeError(f"{name}={value!r} must be {what}, not {type(value).__name__}")


def _check_number(name: str, value: object) -> None:
    _check_type(name, value, Real, "a number")
    if not math.isfinite(value):  # type: ignore[arg-type]
        raise ValueError(f"{name}={value!r} must be a finite number")


def _check_choice(name: str, value: object, allowed: Iterable[object]) -> None:
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValueError(f"{name}={value!r} must be one of {allowed}")


def _check_range(name: str, value: float, low: float, high: float, *, unit: str = "") -> None:
    _check_number(name, value)
    if not low <= value <= high:
        suffix = f" ({unit})" if unit else ""
        raise ValueError(f"{name}={value!r} is outside {low}..{high}{suffix}")


def _check_positive(name: str, value: float, *, allow_zero: bool = False) -> None:
    _check_number(name, value)
    if value < 0 or (value == 0 and not allow_zero):
        rule = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name}={value!r} must be {rule}")


def _check_order(low_name: str, low: float, high_name: str, high: float) -> None:
    if low > high:
        raise ValueError(f"{low_name}={low!r} must be <= {high_name}={high!r}")
