"""Exception classes. Input problems subclass ``ValueError`` and name the column and row."""

from __future__ import annotations

__all__ = [
    "AftershockError",
    "InputError",
    "BarsError",
    "OrdersError",
    "LookAheadError",
    "CalendarError",
    "ConfigError",
    "EngineError",
    "PersistenceError",
    "VerificationError",
]


class AftershockError(Exception):
    """Base class of every exception aftershock raises on purpose."""


class InputError(AftershockError, ValueError):
    """Bad input. ``column`` and ``row`` (0-based position) say where, when known."""

    def __init__(self, message: str, *, column: str | None = None, row: int | None = None):
        self.message = message
        self.column = column
        self.row = row
        where = []
        if column is not None:
            where.append(f"column {column!r}")
        if row is not None:
            where.append(f"row {row}")
        super().__init__(f"{message} ({', '.join(where)})" if where else message)


class BarsError(InputError):
    """The price bars are invalid: unsorted or duplicate timestamps, NaN/negative prices,
    high < low, a naive time zone, a missing column..."""


class OrdersError(InputError):
    """The orders frame is invalid: unknown symbol, impossible field combination..."""


class LookAheadError(OrdersError):
    """An order would act on information before it was public: an ``on_release``
    order submitted before its event's release time, or one not tied to an event."""


class CalendarError(InputError):
    """The event calendar is invalid or a loader could not map it."""


class ConfigError(InputError):
    """A backtest setting is out of range or of the wrong type."""


class EngineError(AftershockError, RuntimeError):
    """The engine hit an internal inconsistency. This is a bug: please report it."""


class PersistenceError(AftershockError):
    """A saved result cannot be written, read or trusted: a missing, truncated or
    corrupted file (named in the message), an incomplete save, or a checkpoint that
    belongs to other inputs."""


class VerificationError(AftershockError):
    """Re-running a saved result did not reproduce it bit for bit, or the inputs given
    to check it are not the ones it was computed from."""
