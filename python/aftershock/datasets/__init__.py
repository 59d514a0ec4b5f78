"""Bundled data: the real Q1-2025 calendar with SYNTHETIC bars, and the synthetic-market
generator. Nothing here is real price data; see ``docs/data.md``."""

from __future__ import annotations

import functools
from typing import NamedTuple

import polars as pl

from aftershock.calendar import q1_2025_calendar
from aftershock.datasets._synthetic import (
    CALIBRATION,
    DEFAULT_PARAMS,
    SYMBOLS,
    SyntheticMarket,
    synthetic_market,
)

SAMPLE_START = "2025-01-01"
SAMPLE_END = "2025-04-05"  # exclusive: the quarter plus the 2 April tariff order
SAMPLE_SEED = 2025

__all__ = [
    "CALIBRATION",
    "DEFAULT_PARAMS",
    "SAMPLE_END",
    "SAMPLE_SEED",
    "SAMPLE_START",
    "SYMBOLS",
    "Sample",
    "SyntheticMarket",
    "sample",
    "synthetic_market",
]


class Sample(NamedTuple):
    """``bars``: SYNTHETIC 1-minute BTC, ETH and NQ bars, 2025-01-01 to 2025-04-04;
    ``calendar``: the real Q1-2025 calendar (``aftershock.calendar.q1_2025_calendar``).
    ``truth`` gives the reactions planted in the bars."""

    bars: pl.DataFrame
    calendar: pl.DataFrame

    @property
    def truth(self) -> pl.DataFrame:
        return _sample_market().truth

    @property
    def synthetic(self) -> bool:
        return True


@functools.lru_cache(maxsize=1)
def _sample_market() -> SyntheticMarket:
    return synthetic_market(q1_2025_calendar(), start=SAMPLE_START, end=SAMPLE_END, freq="1m", seed=SAMPLE_SEED)


def sample() -> Sample:
    """The demo data, no download: the real Q1-2025 event calendar (16 U.S. releases
    with the report's consensus and actual figures, 6 policy events) and SYNTHETIC
    1-minute bars for BTC and ETH (24/7) and Nasdaq-100 futures ``NQ`` (CME hours),
    2025-01-01 00:00 to 2025-04-05 00:00 UTC (~365k rows), generated deterministically
    at call time by :func:`synthetic_market` (seed 2025, calibrated defaults).

    The bars are synthetic: they are not what BTC did in 2025. Reactions were planted
    at each release with a hawkish z-score (``sample().truth``).
    """
    market = _sample_market()
    return Sample(bars=market.bars.clone(), calendar=q1_2025_calendar())
