"""Event-time windows: parsing ``"15m"``, ``"-10h"``, ``timedelta`` or ``(start, end)`` pairs.

A window is a pair of offsets from the release time. A single positive duration ``d``
means the reaction window ``(0, d)``; a single negative duration ``-d`` means the
pre-release window ``(-d, 0)`` (the "drift" before the release). A pair gives both ends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Iterable, Union

from aftershock.errors import InputError

__all__ = ["Window", "parse_duration", "parse_window", "parse_windows", "DEFAULT_WINDOWS"]

DEFAULT_WINDOWS = ("-10h", "5m", "15m", "1h", "4h", "1d")

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
_TOKEN = re.compile(r"(\d+(?:\.\d+)?)(us|ms|min|s|m|h|d|w)")

WindowSpec = Union[str, timedelta, "Window", tuple]


def parse_duration(value: str | timedelta, *, column: str | None = "windows") -> timedelta:
    """``"15m"``, ``"-10h"``, ``"1h30m"``, ``"2w"``, ``"0"`` or a ``timedelta`` → ``timedelta``.

    Units: ``us, ms, s, m`` (or ``min``) for minutes, ``h, d, w``. Months and years are
    refused: their length is not fixed.
    """
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str):
        raise InputError(f"window bound {value!r} is neither a duration string nor a timedelta", column=column)
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
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise InputError(
            f"cannot parse duration {value!r}: use a number and a unit (us, ms, s, m, h, d, w), e.g. '15m', '-10h', '1d'",
            column=column,
        )
    return sign * total


def _label(delta: timedelta) -> str:
    us = int(delta / timedelta(microseconds=1))
    if us == 0:
        return "0"
    sign = "-" if us < 0 else ""
    us = abs(us)
    for unit, size in (("w", 604_800_000_000), ("d", 86_400_000_000), ("h", 3_600_000_000), ("m", 60_000_000), ("s", 1_000_000), ("ms", 1000), ("us", 1)):
        if us % size == 0:
            return f"{sign}{us // size}{unit}"
    raise AssertionError("unreachable")  # pragma: no cover


@dataclass(frozen=True)
class Window:
    """Offsets ``start < end`` from the release time, and the label used in result frames."""

    start: timedelta
    end: timedelta
    label: str

    @property
    def kind(self) -> str:
        """``"drift"`` (ends at or before the release), ``"reaction"`` (starts at or after) or ``"straddle"``."""
        if self.end <= timedelta(0):
            return "drift"
        if self.start >= timedelta(0):
            return "reaction"
        return "straddle"

    @property
    def length(self) -> timedelta:
        return self.end - self.start


def parse_window(spec: WindowSpec) -> Window:
    if isinstance(spec, Window):
        return spec
    if isinstance(spec, (tuple, list)):
        if len(spec) != 2:
            raise InputError(f"a window pair needs exactly (start, end), got {spec!r}", column="windows")
        start, end = parse_duration(spec[0]), parse_duration(spec[1])
        label = f"{_label(start)}..{_label(end)}"
    else:
        delta = parse_duration(spec)
        if delta == timedelta(0):
            raise InputError("a window of zero length measures nothing", column="windows")
        start, end = (timedelta(0), delta) if delta > timedelta(0) else (delta, timedelta(0))
        label = spec.strip() if isinstance(spec, str) else _label(delta)
    if end <= start:
        raise InputError(f"window {spec!r} ends at or before it starts", column="windows")
    return Window(start, end, label)


def parse_windows(specs: WindowSpec | Iterable[WindowSpec]) -> list[Window]:
    """Parse one window or a sequence of them; labels must be unique.

    A top-level sequence is always a list of windows: ``("-10h", "15m")`` is two windows.
    Write a straddling window as a nested pair, ``[("-30m", "1h")]``.
    """
    if isinstance(specs, (str, timedelta, Window)):
        specs = [specs]
    windows = [parse_window(s) for s in specs]
    if not windows:
        raise InputError("no windows given", column="windows")
    labels = [w.label for w in windows]
    dupes = sorted({x for x in labels if labels.count(x) > 1})
    if dupes:
        raise InputError(f"duplicate windows {dupes}", column="windows")
    return windows

