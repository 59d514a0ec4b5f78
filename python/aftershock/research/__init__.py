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

__all__ = [
    "deflated_sharpe_ratio",
    "expected_max_sharpe",
    "probabilistic_sharpe_ratio",
    "pbo",
    "PBO",
    "overfitting",
    "Overfitting",
]
