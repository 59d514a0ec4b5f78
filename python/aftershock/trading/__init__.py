"""The trading half: strategies (point-in-time views), orders, signals, the engine front,
results, run statistics and sweeps.

Data walks one way through it: ``strategy``/``signals``/``orders`` produce an orders frame
or a signal configuration, ``engine`` hands it to the Rust extension, ``results`` wraps
what comes back, ``sweep`` runs grids of variants. Nothing here imports ``report``
at module level; ``Result.plot``/``report`` load it on demand.

The package is called ``trading`` rather than ``backtest`` so that ``aftershock.backtest``
stays the function every example calls.
"""

from aftershock.trading import orders, presets
from aftershock.trading.engine import PreparedBars, backtest, backtest_many, prepare_bars
from aftershock.trading.results import Result
from aftershock.trading.signals import from_signals
from aftershock.trading.stats import Stats
from aftershock.trading.strategy import Strategy, compile_orders
from aftershock.trading.sweep import Sweep, sweep

__all__ = [
    "orders",
    "presets",
    "PreparedBars",
    "prepare_bars",
    "backtest",
    "backtest_many",
    "from_signals",
    "Result",
    "Stats",
    "Strategy",
    "compile_orders",
    "Sweep",
    "sweep",
]
