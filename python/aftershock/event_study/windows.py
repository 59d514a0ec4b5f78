"""Event-time windows: parsing ``"15m"``, ``"-10h"``, ``timedelta`` or ``(start, end)`` pairs.

A window is a pair of offsets from the release time. A single positive duration ``d``
means the reaction window ``(0, d)``; a single negative duration ``-d`` means the
pre-release window ``(-d, 0)`` (the "drift" before the release). A pair gives both ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Iterable, Union

from aftershock._time import parse_duration
from aftershock.errors import InputError

__all__ = ["Window", "parse_duration", "parse_window", "parse_windows", "DEFAULT_WINDOWS"]

DEFAULT_WINDOWS = ("-10h", "5m", "15m", "1h", "4h", "1d")

WindowSpec = Union[str, timedelta, "Window", tuple]


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
    if isinstance(specs, (str, timedelta, Window)) or not isinstance(specs, Iterable):
        specs = [specs]  # one window (a bare number is refused by parse_duration)
    windows = [parse_window(s) for s in specs]
    if not windows:
        raise InputError("no windows given", column="windows")
    labels = [w.label for w in windows]
    dupes = sorted({x for x in labels if labels.count(x) > 1})
    if dupes:
        raise InputError(f"duplicate windows {dupes}", column="windows")
    return windows

