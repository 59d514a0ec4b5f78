"""aftershock: measure and trade market reactions to macro releases and policy events.

The public API is small and explicit: everything a user needs is in ``__all__``.
"""

from aftershock._engine import __version__
from aftershock.engine import backtest, backtest_many
from aftershock.errors import (
    AftershockError,
    BarsError,
    CalendarError,
    ConfigError,
    EngineError,
    InputError,
    OrdersError,
)
from aftershock.results import Result

__all__ = [
    "__version__",
    "backtest",
    "backtest_many",
    "Result",
    "AftershockError",
    "InputError",
    "BarsError",
    "OrdersError",
    "CalendarError",
    "ConfigError",
    "EngineError",
]
