"""Durations and timestamps as the engine sees them: integer microseconds, UTC."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

_UNITS_US = {
    "us": 1,
    "ms": 1_000,
    "s": 1_000_000,
    "m": 60_000_000,
    "min": 60_000_000,
    "h": 3_600_000_000,
    "d": 86_400_000_000,
    "w": 604_800_000_000,
}
_DURATION = re.compile(r"^\s*([+-]?\d+(?:\.\d+)?)\s*(us|ms|s|min|m|h|d|w)\s*$")


def duration_us(value: Any, *, name: str = "duration") -> int:
    """Microseconds in ``value``: a ``timedelta``, a string like ``"15m"``, ``"-10h"``,
    ``"2s"``, ``"1d"``, ``"2w"``, or an integer number of microseconds."""
    if isinstance(value, dt.timedelta):
        return (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
    if isinstance(value, bool):
        raise TypeError(f"{name}: expected a duration, got a bool")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        m = _DURATION.match(value)
        if not m:
            raise ValueError(f"{name}: cannot read {value!r} as a duration (use e.g. '15m', '-10h', '2s', '1d')")
        return round(float(m.group(1)) * _UNITS_US[m.group(2)])
    raise TypeError(f"{name}: expected a timedelta, a string like '15m' or microseconds, got {type(value).__name__}")
