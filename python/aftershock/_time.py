"""Durations as the library reads them: ``"15m"``, ``"-10h"``, ``"1h30m"``, ``"2w"``,
``timedelta``; the engine sees integer microseconds."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import numpy as np

from aftershock.errors import InputError

__all__ = ["parse_duration", "duration_us", "polars_every"]

_UNITS = {
    "us": timedelta(microseconds=1),
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "min": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
}
_MAX_US = 2**62  # engine times are int64 microseconds; leave room for sums
_MAX_DELTA = timedelta(microseconds=_MAX_US)
_TOKEN = re.compile(r"(\d+(?:\.\d+)?)(us|ms|min|s|m|h|d|w)")


def parse_duration(value: str | timedelta, *, column: str | None = "windows") -> timedelta:
    """``"15m"``, ``"-10h"``, ``"1h30m"``, ``"2w"``, ``"0"`` or a ``timedelta`` → ``timedelta``.

    Units: ``us, ms, s, m`` (or ``min``) for minutes, ``h, d, w``. Months and years are
    refused: their length is not fixed. Errors are :class:`InputError` naming ``column``.

    >>> parse_duration("1h30m")
    datetime.timedelta(seconds=5400)
    """
    if isinstance(value, timedelta):
        return _in_range(value, value, column)
    if not isinstance(value, str):
        raise InputError(f"{value!r} is neither a duration string nor a timedelta", argument=column)
    text = value.strip().lower().replace(" ", "")
    sign = 1
    if text.startswith(("-", "+")):
        sign = -1 if text[0] == "-" else 1
        text = text[1:]
    if text == "0":
        return timedelta(0)
    pos, total = 0, timedelta(0)
    for match in _TOKEN.finditer(text):
        if match.start() != pos:
            break
        try:
            total += float(match.group(1)) * _UNITS[match.group(2)]
        except OverflowError:
            raise InputError(f"duration {value!r} is longer than the engine's time range (about 146,000 years)", argument=column) from None
        pos = match.end()
    if pos != len(text) or not text:
        raise InputError(
            f"cannot parse duration {value!r}: use a number and a unit (us, ms, s, m, h, d, w), e.g. '15m', '-10h', '1d'",
            argument=column,
        )
    return _in_range(sign * total, value, column)


def _in_range(delta: timedelta, value: Any, column: str | None) -> timedelta:
    if abs(delta) > _MAX_DELTA:
        raise InputError(f"duration {value!r} is longer than the engine's time range (about 146,000 years)", argument=column)
    return delta


def duration_us(value: Any, *, name: str = "duration") -> int:
    """Whole microseconds in ``value``: anything :func:`parse_duration` reads, or an
    integer number of microseconds.

    >>> duration_us("2s"), duration_us(timedelta(minutes=1)), duration_us(5)
    (2000000, 60000000, 5)
    """
    if isinstance(value, bool):
        raise InputError(f"{name}: expected a duration, got a bool", argument=name)
    if isinstance(value, (int, np.integer)):
        if abs(int(value)) > _MAX_US:
            raise InputError(f"{name}: {value!r} microseconds is longer than the engine's time range", argument=name)
        return int(value)
    delta = parse_duration(value, column=name)
    us = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    if abs(us) > _MAX_US:
        raise InputError(f"{name}: {value!r} is longer than the engine's time range (about 146,000 years)", argument=name)
    return us


_ONE_UNIT = re.compile(r"(\d+)(mo|q|y|w|d|h|m|s|ms|us)")


#: Periods a span may be cut into (Polars allocates every window of a dynamic group-by).
MAX_WINDOWS = 10_000_000


def polars_every(value: Any, *, name: str = "every", calendar: bool = False, span_us: int | None = None) -> str:
    """A positive duration as a Polars period string, for ``group_by_dynamic``: one
    whole-number unit as given (Polars aligns ``"1w"`` to Mondays), anything else
    (``"1d12h"``, ``"1.5h"``, a ``timedelta``) as whole microseconds. With
    ``calendar``, ``"1mo"``, ``"1q"`` and ``"1y"`` are accepted too. With ``span_us``,
    a period cutting that span into more than :data:`MAX_WINDOWS` windows is refused
    (``"1us"`` over a year would allocate tens of GiB).

    >>> polars_every("1w"), polars_every("1.5h")
    ('1w', '5400000000us')
    """
    text = value.strip() if isinstance(value, str) else None
    one = _ONE_UNIT.fullmatch(text) if text is not None else None
    if one is not None and one.group(2) in ("mo", "q", "y"):
        if not calendar:
            raise InputError(f"calendar-length periods like {value!r} are not supported here; use w, d, h, m or s",
                             argument=name)
        if int(one.group(1)) == 0:
            raise InputError(f"{name} must be a positive period, got {value!r}", argument=name)
        return text  # type: ignore[return-value]
    if isinstance(value, (int, np.integer)):  # a bare number has no unit
        raise InputError(f"{name} must be a duration such as '1h' or '1d', got {value!r}", argument=name)
    us = duration_us(value, name=name)
    if us <= 0:
        raise InputError(f"{name} must be a positive duration, got {value!r}", argument=name)
    if span_us is not None and span_us // us > MAX_WINDOWS:
        raise InputError(f"{name}={value!r} cuts the data's span into {span_us // us:,} periods, more than "
                         f"{MAX_WINDOWS:,}: use a longer period", argument=name)
    return text if one is not None else f"{us}us"  # type: ignore[return-value]
