"""One backtest of an orders frame against vectorbt 1.2 on the same trades.

525,600 one-minute bars (one year), 300 bracketed round trips: entry at the signal
bar's close (a market-on-close order), 1% stop-loss, 1.5% take-profit, exit at the
close 120 bars later (a reduce-only market-on-close order). vectorbt runs
``Portfolio.from_signals`` with the same stops and signals. Trade counts and final
values must agree before a time is reported. aftershock is timed twice: the whole
``backtest`` on the frame (bars validated once, then cached) and on a
``PreparedBars``.

Run: ``python benchmarks/case_engine.py`` (or ``python benchmarks/run.py engine``).
"""

from __future__ import annotations

import os
import sys

import numpy as np
import polars as pl

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import MINUTES_PER_YEAR, median_time, peak_rss_mib, random_walk, row  # noqa: E402

import aftershock as ash  # noqa: E402
from aftershock.trading.engine import prepare_bars  # noqa: E402

REPEAT = int(os.environ.get("AFTERSHOCK_BENCH_REPEAT", "5"))
CONFIG = {"init_cash": 1_000_000.0, "fees": 0.0004}


def bracket_workload(bars: pl.DataFrame, n_trades: int, seed: int) -> tuple[np.ndarray, np.ndarray, pl.DataFrame]:
    """Entry/exit masks for vectorbt and the same trades as an orders frame."""
    n = bars.height
    rng = np.random.default_rng(seed)
    gap = n // n_trades
    starts = np.arange(n_trades) * gap + rng.integers(0, gap - 130, n_trades)
    entries = np.zeros(n, dtype=bool)
    exits = np.zeros(n, dtype=bool)
    entries[starts] = True
    exits[starts + 120] = True
    ts = bars["ts"]

    def moc(at: np.ndarray, side: str, sl: float | None, tp: float | None, reduce_only: bool) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "submit_ts": ts.gather(at),
                "symbol": "BTC",
                "side": side,
                "qty": 1.0,
                "order_type": "market_on_close",
                "stop_loss": pl.Series([sl] * len(at), dtype=pl.Float64),
                "take_profit": pl.Series([tp] * len(at), dtype=pl.Float64),
                "reduce_only": reduce_only,
            }
        )

    orders = pl.concat([moc(starts, "buy", 0.01, 0.015, False), moc(starts + 120, "sell", None, None, True)])
    return entries, exits, orders


def run() -> list[dict]:
    bars = random_walk(MINUTES_PER_YEAR, seed=1)
    entries, exits, orders = bracket_workload(bars, 300, seed=2)
    res = ash.backtest(bars, orders, **CONFIG)
    t_frame = median_time(lambda: ash.backtest(bars, orders, **CONFIG), REPEAT)
    prepared = prepare_bars(bars)
    t_prepared = median_time(lambda: ash.backtest(prepared, orders, **CONFIG), REPEAT)
    rss = peak_rss_mib()
    ours = (res.trades.filter(pl.col("status") == "closed").height, res.final_equity)

    import vectorbt as vbt

    pdf = bars.select("open", "high", "low", "close").to_pandas()
    rows = []
    for engine in ("numba", "rust"):
        def run_vbt():
            return vbt.Portfolio.from_signals(
                pdf["close"], entries, exits, open=pdf["open"], high=pdf["high"], low=pdf["low"], size=1.0,
                init_cash=CONFIG["init_cash"], fees=CONFIG["fees"], sl_stop=0.01, tp_stop=0.015, engine=engine,
            )

        pf = run_vbt()  # warm-up (numba compiles on first call)
        theirs = (int(pf.trades.count()), float(pf.final_value()))
        agree = ours[0] == theirs[0] and abs(ours[1] - theirs[1]) <= 1e-9 * abs(theirs[1])
        t_vbt = median_time(run_vbt, REPEAT)
        rows.append(
            row("backtest: 300 bracketed round trips as an orders frame, 525,600 bars", t_frame,
                f"vectorbt {engine} from_signals", t_vbt, agree,
                f"on a PreparedBars {t_prepared * 1e3:.1f} ms; engine visits {res.bars_visited:,} bars", rss)
        )
    return rows


if __name__ == "__main__":
    from run import print_table

    print_table(run())
