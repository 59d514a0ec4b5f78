"""Engine throughput against vectorbt, and the event-sparse scaling figure.

Run: ``python benchmarks/bench_engine.py`` (needs the test extra: vectorbt).

1. One year of 1-minute bars (525,600) with 300 bracketed round trips: aftershock's
   ``backtest`` vs vectorbt's ``Portfolio.from_signals`` on the same work (entries at
   the signal bar's close, 1% stop-loss, 1.5% take-profit, exit signal 120 bars
   later). The two must agree on the trade count and final value before any time
   is printed.
2. Event-sparse scaling: 1,000 one-hour round trips on 1 year vs 10 years of
   1-minute bars. aftershock's engine time should stay flat; a dense simulator's
   grows with the series.

Timings are medians of several runs; machines are noisy, so read the ratios.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time

import numpy as np
import polars as pl

import aftershock as ash
from aftershock.engine import prepare_bars

MINUTES_PER_YEAR = 525_600
T0 = dt.datetime(2015, 1, 1, tzinfo=dt.timezone.utc)


def random_walk(n: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    close = 20_000 * np.exp(np.cumsum(rng.normal(0, 0.0008, n)))
    open_ = np.concatenate([[20_000.0], close[:-1]])
    wick = np.abs(rng.normal(0, 0.0004, n))
    high = np.maximum(open_, close) * (1 + wick)
    low = np.minimum(open_, close) * (1 - wick)
    ts = pl.datetime_range(T0, T0 + dt.timedelta(minutes=n - 1), "1m", eager=True, time_zone="UTC")
    return pl.DataFrame({"ts": ts, "symbol": "BTC", "open": open_, "high": high, "low": low, "close": close})


def median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bracket_workload(bars: pl.DataFrame, n_trades: int, seed: int):
    n = bars.height
    rng = np.random.default_rng(seed)
    gap = n // n_trades
    starts = np.arange(n_trades) * gap + rng.integers(0, gap - 130, n_trades)
    entries = np.zeros(n, dtype=bool)
    exits = np.zeros(n, dtype=bool)
    entries[starts] = True
    exits[starts + 120] = True
    ts = bars["ts"]
    orders = pl.concat(
        [
            pl.DataFrame(
                {
                    "submit_ts": ts.gather(starts),
                    "symbol": "BTC",
                    "side": "buy",
                    "qty": 1.0,
                    "order_type": "market_on_close",
                    "stop_loss": 0.01,
                    "take_profit": 0.015,
                    "reduce_only": False,
                }
            ),
            pl.DataFrame(
                {
                    "submit_ts": ts.gather(starts + 120),
                    "symbol": "BTC",
                    "side": "sell",
                    "qty": 1.0,
                    "order_type": "market_on_close",
                    "stop_loss": None,
                    "take_profit": None,
                    "reduce_only": True,
                }
            ),
        ]
    ).with_columns(pl.col("stop_loss", "take_profit").cast(pl.Float64))
    return entries, exits, orders


def bench_vs_vectorbt(repeat: int) -> None:
    import vectorbt as vbt

    bars = random_walk(MINUTES_PER_YEAR, seed=1)
    entries, exits, orders = bracket_workload(bars, 300, seed=2)
    pdf = bars.select("open", "high", "low", "close").to_pandas()
    cfg = dict(init_cash=1_000_000.0, fees=0.0004)

    def run_vbt():
        return vbt.Portfolio.from_signals(
            pdf["close"], entries, exits, open=pdf["open"], high=pdf["high"], low=pdf["low"],
            size=1.0, init_cash=cfg["init_cash"], fees=cfg["fees"], sl_stop=0.01, tp_stop=0.015,
        )

    def run_ash():
        return ash.backtest(bars, orders, **cfg)

    pf, res = run_vbt(), run_ash()  # warm-up (numba compiles on first call)
    vbt_trades = int(pf.trades.count())
    ash_trades = res.trades.filter(pl.col("status") == "closed").height
    vbt_final, ash_final = float(pf.final_value()), res.final_equity
    assert vbt_trades == ash_trades, (vbt_trades, ash_trades)
    assert abs(vbt_final - ash_final) <= 1e-9 * abs(vbt_final), (vbt_final, ash_final)
    t_vbt = median_time(run_vbt, repeat)
    t_ash = median_time(run_ash, repeat)
    prepared = prepare_bars(bars)
    t_eng = median_time(lambda: ash.backtest(prepared, orders, **cfg), repeat)
    n = bars.height
    print(f"[1] {n:,} one-minute bars, {ash_trades} bracketed round trips; agree: trades={ash_trades}, final={ash_final:.6f}")
    print(f"    vectorbt from_signals        {t_vbt * 1e3:9.1f} ms  {n / t_vbt / 1e6:8.1f} M bars/s")
    print(f"    aftershock backtest (all)    {t_ash * 1e3:9.1f} ms  {n / t_ash / 1e6:8.1f} M bars/s   x{t_vbt / t_ash:.1f} vs vectorbt")
    print(f"    aftershock, prepared bars    {t_eng * 1e3:9.1f} ms  {n / t_eng / 1e6:8.1f} M bars/s   x{t_vbt / t_eng:.1f} vs vectorbt")
    print(f"    bars the engine visited: {res.bars_visited:,} of {n:,}")


def sparse_workload(bars: pl.DataFrame, n_trades: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    # non-overlapping: each round trip gets its own 130-minute slot
    starts = np.sort(rng.choice(bars.height // 130 - 1, n_trades, replace=False)) * 130 + 5
    return pl.DataFrame(
        {
            "submit_ts": bars["ts"].gather(starts),
            "symbol": "BTC",
            "side": np.where(rng.random(n_trades) < 0.5, "buy", "sell"),
            "qty": 0.01,
            "exit_after": "1h",
        }
    )


def bench_scaling(repeat: int) -> None:
    import vectorbt as vbt

    rows = []
    for years in (1, 10):
        bars = random_walk(MINUTES_PER_YEAR * years, seed=3)
        prepared = prepare_bars(bars)
        orders = sparse_workload(bars, 1_000, seed=4)
        res = ash.backtest(prepared, orders, init_cash=1_000_000.0)
        t_eng = median_time(lambda: ash.backtest(prepared, orders, init_cash=1_000_000.0), repeat)
        # the dense peer on the same 1,000 one-hour round trips
        idx = np.searchsorted(prepared.arrays["ts"], orders["submit_ts"].dt.epoch("us").to_numpy())
        size = np.full(bars.height, np.nan)
        side = np.where(orders["side"].to_numpy() == "buy", 1.0, -1.0)
        size[idx] = side * 0.01
        size[idx + 60] = -side * 0.01
        pdf = bars.select("open", "close").to_pandas()
        run_vbt = lambda: vbt.Portfolio.from_orders(pdf["close"], size, price=pdf["open"], init_cash=1_000_000.0)  # noqa: E731
        pf = run_vbt()
        assert abs(float(pf.final_value()) - res.final_equity) <= 1e-9 * res.final_equity
        t_vbt = median_time(run_vbt, repeat)
        rows.append((years, bars.height, res.bars_visited, t_eng, t_vbt))
        del bars, prepared, pdf
    print("[2] event-sparse scaling: 1,000 one-hour round trips (engine on prepared bars; vectorbt from_orders)")
    for years, n, visited, t_eng, t_vbt in rows:
        print(f"    {years:2d}y {n:>10,} bars  visited {visited:>7,}  aftershock {t_eng * 1e3:8.2f} ms   vectorbt {t_vbt * 1e3:8.1f} ms")
    (_, _, _, e1, v1), (_, _, _, e10, v10) = rows
    print(f"    10y / 1y time: aftershock x{e10 / e1:.2f}, vectorbt x{v10 / v1:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    bench_vs_vectorbt(args.repeat)
    bench_scaling(args.repeat)


if __name__ == "__main__":
    main()
