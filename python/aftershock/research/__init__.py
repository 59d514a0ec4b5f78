"""Research beyond one run: walk-forward validation, overfitting statistics of a sweep
(the deflated Sharpe ratio, the probability of backtest overfitting by CSCV), and a Ray
backend that runs a sweep's variants on a cluster. docs/research.md and docs/scale.md.
"""

from aftershock.research.overfitting import (
    PBO,
    Overfitting,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    overfitting,
    pbo,
    probabilistic_sharpe_ratio,
)
from aftershock.research.walk_forward import Signals, WalkForward, fold_bounds, training_mask, walk_forward
from aftershock.research.ray_backend import run_chunks as _ray_run
from aftershock.trading.sweep import register_backend

register_backend("ray", _ray_run)

__all__ = [
    "walk_forward",
    "WalkForward",
    "Signals",
    "fold_bounds",
    "training_mask",
    "deflated_sharpe_ratio",
    "expected_max_sharpe",
    "probabilistic_sharpe_ratio",
    "pbo",
    "PBO",
    "overfitting",
    "Overfitting",
]
