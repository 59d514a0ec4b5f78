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
    """Bad input. ``column`` and ``row`` (0-based position) say where, when known.

    For a bad function argument, ``argument`` names it and the message says
    ``(argument 'name')``; ``column`` then holds the same name, so ``exc.column`` is
    where to look in either case. :class:`ConfigError` is always about an argument."""

    #: a ``column`` without a row is a function argument (ConfigError: settings)
    _names_arguments = False

    def __init__(
        self, message: str, *, column: str | None = None, row: int | None = None, argument: str | None = None
    ):
        if argument is None and self._names_arguments and row is None:
            argument = column
        self.message = message
        self.argument = argument
        self.column = argument if argument is not None else column
        self.row = row
        where = []
        if argument is not None:
            where.append(f"argument {argument!r}")
        elif column is not None:
            where.append(f"column {column!r}")
        if row is not None:
            where.append(f"row {row}")
        super().__init__(f"{message} ({', '.join(where)})" if where else message)

    def __reduce__(self) -> tuple:
        return _rebuild, (type(self), self.message, self.column, self.row, self.argument)


def _rebuild(cls: type, message: str, column: str | None, row: int | None, argument: str | None) -> InputError:
    return cls(message, column=None if argument is not None else column, row=row, argument=argument)


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
    """A setting (a function argument) is out of range or of the wrong type; the
    message names the argument."""

    _names_arguments = True


class EngineError(AftershockError, RuntimeError):
    """The engine hit an internal inconsistency. This is a bug: please report it."""


class PersistenceError(AftershockError):
    """A saved result cannot be written, read or trusted: a missing, truncated or
    corrupted file (named in the message), an incomplete save, or a checkpoint that
    belongs to other inputs."""


class VerificationError(AftershockError):
    """Re-running a saved result did not reproduce it bit for bit, or the inputs given
    to check it are not the ones it was computed from."""
