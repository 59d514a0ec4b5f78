"""The indicator registry: release-time conventions, units and hawkish signs."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

NEW_YORK = ZoneInfo("America/New_York")


@dataclass(frozen=True)
class Indicator:
    """One scheduled statistic.

    ``release_time`` is the local wall-clock time of the release in ``release_tz``
    (U.S. statistics: Eastern time, so 08:30 ET is 13:30 UTC in winter and 12:30 UTC
    in summer). ``hawkish_sign`` is +1 when a higher-than-expected print is hawkish
    (tighter policy expected: inflation, activity, payrolls) and -1 when a higher
    print is dovish (unemployment, jobless claims). ``prior_*`` summarise the raw
    surprises (actual - consensus) of the releases before ``PRIOR_END``; see
    :func:`aftershock.calendar.surprises`.
    """

    code: str
    name: str
    unit: str
    hawkish_sign: int
    release_time: dt.time
    category: str
    release_tz: ZoneInfo = NEW_YORK
    jurisdiction: str = "US"
    forexfactory_names: tuple[str, ...] = ()
    prior_n: int = 0
    prior_mean: float | None = None
    prior_std: float | None = None

    def release_utc(self, day: dt.date) -> dt.datetime:
        """UTC instant of this indicator's release on ``day`` (local calendar date)."""
        local = dt.datetime.combine(day, self.release_time, tzinfo=self.release_tz)
        return local.astimezone(dt.timezone.utc)


# The history summarised by the ``prior_*`` fields: raw surprises of every release in the
# real ForexFactory high-impact calendar with PRIOR_START <= release_ts < PRIOR_END
# (2020-2021 left out: pandemic-era misses would swamp the std). Computed by
# ``scripts/calibrate_synthetic.py``.
PRIOR_START = dt.datetime(2022, 1, 1, tzinfo=dt.timezone.utc)
PRIOR_END = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)

_0830 = dt.time(8, 30)
_1000 = dt.time(10, 0)

# prior_n, prior_mean, prior_std: the 'priors' section printed by scripts/calibrate_synthetic.py
_PRIORS: dict[str, tuple[int, float, float]] = {
    # PRIORS-BEGIN
    'AHE_MOM': (36, 0.022222, 0.149497),
    'CORE_CPI_MOM': (36, 0.025, 0.115573),
    'CORE_PCE_MOM': (36, -0.011111, 0.066667),
    'CORE_PPI_MOM': (25, -0.012, 0.200666),
    'CORE_RETAIL_SALES_MOM': (36, 0.058333, 0.718878),
    'CPI_MOM': (36, 0.013889, 0.124563),
    'CPI_YOY': (36, 0.033333, 0.149284),
    'FED_FUNDS': (24, 0.0, 0.073721),
    'ISM_MANUFACTURING': (36, -0.386111, 1.121518),
    'ISM_SERVICES': (33, -0.233333, 2.578598),
    'JOBLESS_CLAIMS': (93, -1.752688, 11.170279),
    'NFP': (36, 59.833333, 117.260272),
    'PPI_MOM': (36, -0.027778, 0.276314),
    'RETAIL_SALES_MOM': (36, 0.041667, 0.567387),
    'UNRATE': (36, 0.005556, 0.143317),
    # PRIORS-END
}


def _ind(code, name, unit, sign, time, category, ff=(), **kw) -> Indicator:
    n, mean, std = _PRIORS.get(code, (0, None, None))
    return Indicator(
        code=code, name=name, unit=unit, hawkish_sign=sign, release_time=time,
        category=category, forexfactory_names=tuple(ff), prior_n=n, prior_mean=mean,
        prior_std=std, **kw,
    )


INDICATORS: dict[str, Indicator] = {
    i.code: i
    for i in (
        _ind("CPI_YOY", "CPI, year over year", "pct", +1, _0830, "inflation", ["CPI y/y"]),
        _ind("CPI_MOM", "CPI, month over month", "pct", +1, _0830, "inflation", ["CPI m/m"]),
        _ind("CORE_CPI_YOY", "Core CPI, year over year", "pct", +1, _0830, "inflation", ["Core CPI y/y"]),
        _ind("CORE_CPI_MOM", "Core CPI, month over month", "pct", +1, _0830, "inflation", ["Core CPI m/m"]),
        _ind("PPI_YOY", "PPI final demand, year over year", "pct", +1, _0830, "inflation", ["PPI y/y"]),
        _ind("PPI_MOM", "PPI final demand, month over month", "pct", +1, _0830, "inflation", ["PPI m/m"]),
        _ind("CORE_PPI_YOY", "Core PPI, year over year", "pct", +1, _0830, "inflation", ["Core PPI y/y"]),
        _ind("CORE_PPI_MOM", "Core PPI, month over month", "pct", +1, _0830, "inflation", ["Core PPI m/m"]),
        _ind("PCE_YOY", "PCE price index, year over year", "pct", +1, _0830, "inflation", ["PCE Price Index y/y"]),
        _ind("PCE_MOM", "PCE price index, month over month", "pct", +1, _0830, "inflation", ["PCE Price Index m/m"]),
        _ind("CORE_PCE_YOY", "Core PCE price index, year over year", "pct", +1, _0830, "inflation", ["Core PCE Price Index y/y"]),
        _ind("CORE_PCE_MOM", "Core PCE price index, month over month", "pct", +1, _0830, "inflation", ["Core PCE Price Index m/m"]),
        _ind("NFP", "Nonfarm payrolls, change", "thousands", +1, _0830, "labor", ["Non-Farm Employment Change"]),
        _ind("UNRATE", "Unemployment rate", "pct", -1, _0830, "labor", ["Unemployment Rate"]),
        _ind("AHE_MOM", "Average hourly earnings, month over month", "pct", +1, _0830, "labor", ["Average Hourly Earnings m/m"]),
        _ind("JOBLESS_CLAIMS", "Initial jobless claims", "thousands", -1, _0830, "labor", ["Unemployment Claims"]),
        _ind("RETAIL_SALES_MOM", "Retail sales, month over month", "pct", +1, _0830, "activity", ["Retail Sales m/m"]),
        _ind("CORE_RETAIL_SALES_MOM", "Retail sales ex autos, month over month", "pct", +1, _0830, "activity", ["Core Retail Sales m/m"]),
        _ind("ISM_MANUFACTURING", "ISM manufacturing PMI", "index", +1, _1000, "activity", ["ISM Manufacturing PMI"]),
        _ind("ISM_SERVICES", "ISM services PMI", "index", +1, _1000, "activity", ["ISM Services PMI"]),
        _ind("FED_FUNDS", "FOMC federal funds target rate (upper bound)", "pct", +1, dt.time(14, 0), "policy_rate", ["Federal Funds Rate"]),
    )
}

FOREXFACTORY_EVENTS: dict[str, str] = {
    name: ind.code for ind in INDICATORS.values() for name in ind.forexfactory_names
}


def indicator(code: str) -> Indicator:
    """The registry entry for ``code``; raises ``KeyError`` listing the known codes."""
    try:
        return INDICATORS[code]
    except KeyError:
        raise KeyError(f"unknown indicator {code!r}; known: {sorted(INDICATORS)}") from None
