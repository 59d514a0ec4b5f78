"""How long a strategy takes to compile point in time over a 1,000-event calendar.

The hooks run once per publication instant with an as-of view (docs/point_in_time.md);
this measures that cost for the bundled CpiFade strategy, a strategy that also reads
the as-of calendar and bars on every call, and a pre-release strategy. Target: under
0.5 s for 1,000 events. No peer: no other tool evaluates strategies point in time.

    python benchmarks/bench_compile.py
"""

from __future__ import annotations

import datetime as dt
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

import aftershock as ash
from aftershock.trading.strategy import compile_orders

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "strategies"))
from cpi_fade import CpiFade  # noqa: E402

UTC = dt.timezone.utc
INDICATORS = ["CPI_YOY", "CPI_MOM", "PPI_YOY", "NFP", "UNRATE", "CORE_PCE_YOY", "PCE_YOY", "CORE_CPI_MOM"]


# U.S. releases that come out together, as they do (one publication instant each)
GROUPS = [
    ("CPI_YOY", "CPI_MOM", "CORE_CPI_YOY", "CORE_CPI_MOM"), ("NFP", "UNRATE", "AHE_MOM"),
    ("PPI_MOM", "CORE_PPI_MOM"), ("PCE_YOY", "CORE_PCE_YOY", "CORE_PCE_MOM"),
    ("RETAIL_SALES_MOM", "CORE_RETAIL_SALES_MOM"), ("ISM_MANUFACTURING",), ("ISM_SERVICES",),
    ("JOBLESS_CLAIMS",), ("JOBLESS_CLAIMS",), ("JOBLESS_CLAIMS",), ("JOBLESS_CLAIMS",),
]


def calendar(n: int = 1_000, seed: int = 7, *, grouped: bool = False) -> pl.DataFrame:
    """``n`` macro releases from 2015 on. ``grouped``: co-released as in reality
    (CPI's four figures at one instant, payrolls with unemployment...: about 0.57
    instants per event, like the real 2020-2026 ForexFactory calendar's 586 instants
    for its first 1,000 events); otherwise every event at its own instant (the worst case)."""
    rng = np.random.default_rng(seed)
    start = dt.datetime(2015, 1, 5, 13, 30, tzinfo=UTC)
    rows: list[dict] = []
    k = 0
    while len(rows) < n:
        if grouped:
            group = GROUPS[k % len(GROUPS)]
            ts = start + dt.timedelta(days=int(k * 30.4 / len(GROUPS)))
        else:
            group = (INDICATORS[k % len(INDICATORS)],)
            ts = start + dt.timedelta(days=int(k * 3.6))
        for ind in group[: n - len(rows)]:
            cons = float(np.round(rng.normal(2.5, 1.0), 1))
            rows.append({"event_id": f"E{len(rows)}", "kind": "macro", "indicator": ind, "release_ts": ts,
                         "consensus": cons, "actual": float(np.round(cons + rng.normal(0, 0.2), 1)),
                         "source": f"{ind} printed"})
        k += 1
    return ash.surprises(pl.DataFrame(rows))


def bars(cal: pl.DataFrame) -> pl.DataFrame:
    # one 5-minute bar series across the calendar's span
    t0, t1 = cal["release_ts"].min() - dt.timedelta(days=1), cal["release_ts"].max() + dt.timedelta(days=1)
    ts = pl.datetime_range(t0, t1, "5m", eager=True, time_zone="UTC")
    p = 100 * np.exp(np.cumsum(np.random.default_rng(1).normal(0, 1e-3, ts.len())))
    return pl.DataFrame({"ts": ts, "symbol": "BTC", "open": p, "high": p * 1.001, "low": p * 0.999, "close": p})


class Reader(ash.Strategy):
    """Reads the as-of calendar and the bars on every call."""

    def on_release(self, events):
        cal = self.asof.calendar
        last = self.asof.last_close("BTC")
        mean = cal["hawkish_z"].drop_nulls().mean() or 0.0
        return ash.orders.market(events.filter(pl.col("hawkish_z") > mean), symbol="BTC", side="buy",
                                 size=1.0 if last else 0.0, exit_after="1h")


class Drift(ash.Strategy):
    decide_before = "10h"

    def before_release(self, events):
        return ash.orders.market(events.filter(pl.col("indicator") == "CPI_YOY"), symbol="BTC", side="buy",
                                 size=1.0, exit_after="9h")


def median_ms(fn, repeat: int = 5) -> float:
    """Median CPU time (the process's, all threads): steadier than wall time on a
    shared machine; the work is single-threaded."""
    times = []
    for _ in range(repeat):
        t = time.process_time()
        fn()
        times.append((time.process_time() - t) * 1e3)
    return statistics.median(times)


def main() -> None:
    for grouped in (True, False):
        cal = calendar(grouped=grouped)
        b = ash.engine.prepare_bars(bars(cal))
        instants = cal["release_ts"].n_unique()
        label = "co-released as in reality" if grouped else "every event at its own instant"
        print(f"\ncalendar: {cal.height} events at {instants} instants ({label}); bars: {b.frame.height} rows")
        for name, strat in (("CpiFade (on_release)", CpiFade(threshold=0.5)),
                            ("Reader (as-of calendar + bars)", Reader()), ("Drift (before_release)", Drift())):
            orders = compile_orders(strat, cal, b)
            ms = median_ms(lambda: compile_orders(strat, cal, b))
            print(f"  {name:32s} {ms:8.1f} ms CPU, median of 5   ({orders.height} orders)")


if __name__ == "__main__":
    main()
