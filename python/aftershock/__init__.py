"""aftershock: measure and trade market reactions to macro releases and policy events.

The public API is small and explicit: everything a user needs is in ``__all__``.

>>> import aftershock as ash
>>> data = ash.datasets.sample()          # real Q1-2025 calendar, SYNTHETIC bars
>>> sorted(data.bars["symbol"].unique())
['BTC', 'ETH', 'NQ']
"""

from aftershock import calendar, datasets, prices, report, research, trading
from aftershock import presets
from aftershock._engine import __version__
from aftershock.calendar import read_calendar, surprises
from aftershock.errors import (
    AftershockError,
    BarsError,
    CalendarError,
    ConfigError,
    EngineError,
    InputError,
    LookAheadError,
    OrdersError,
    PersistenceError,
    VerificationError,
)
from aftershock.persistence import load, save
from aftershock.event_study import Study, study
from aftershock.prices import read_bars, resample_bars
from aftershock.research import WalkForward, walk_forward
from aftershock.trading import Result, Strategy, Sweep, backtest, backtest_many, from_signals, orders, sweep

__all__ = [
    "__version__",
    # data in
    "calendar",
    "prices",
    "datasets",
    "read_calendar",
    "read_bars",
    "resample_bars",
    "surprises",
    # measure
    "study",
    "Study",
    # trade
    "Strategy",
    "orders",
    "backtest",
    "backtest_many",
    "from_signals",
    "sweep",
    "Sweep",
    "Result",
    "presets",
    # research
    "research",
    "walk_forward",
    "WalkForward",
    "report",
    "trading",
    # keep
    "save",
    "load",
    # errors
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
