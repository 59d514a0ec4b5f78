"""Signal backtests and sweeps simulated in the engine, against vectorbt 1.2 (issue 12, rows 1-2).

Run alone: ``python benchmarks/case_signals.py`` (prints its rows); ``benchmarks/run.py``
imports ``run()`` with the other cases. Needs vectorbt 1.2 and vectorbt-rust.

1. ``single``: one year of 1-minute bars (525,600), 300 round trips, a 2% stop-loss,
   vectorbt's defaults (all cash, stop levels from the close, stop-limit exits), our
   ``price="close"``. aftershock runs on bars validated once (``prepare_bars``, reused
   as a user would across runs); the note also gives the time from a raw frame.
2. ``sweep``: the same bars and signals, 1,000 variants (40 stop-losses x 25
   take-profits), one stats row per variant. vectorbt runs in chunks of 50 columns
   (50 columns already peak near 2 GiB here), so its time for 1,000 is extrapolated
   from the chunks it ran, as the note says.

Each case checks that both sides agree before reporting: every fill of case 1, the
final value and trade count of every vectorbt column of case 2. Times are medians;
peak RSS is aftershock's own, measured in a child process that runs only aftershock.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import warnings

import numpy as np
import polars as pl

BARS = 525_600
ROUND_TRIPS = 300
SL = np.linspace(0.005, 0.05, 40)
TP = np.linspace(0.005, 0.10, 25)
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


def market(n: int = BARS, seed: int = 1) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    """A 1-minute random walk with ``ROUND_TRIPS`` entries, each exited 1,000 bars later."""
    rng = np.random.default_rng(seed)
    close = 20_000 * np.exp(np.cumsum(rng.normal(0, 0.0008, n)))
    open_ = np.concatenate([[20_000.0], close[:-1]])
    wick = np.abs(rng.normal(0, 0.0004, n))
    ts = pl.datetime_range(T0, T0 + dt.timedelta(minutes=n - 1), "1m", eager=True, time_zone="UTC")
    bars = pl.DataFrame({"ts": ts, "symbol": "BTC", "open": open_, "high": np.maximum(open_, close) * (1 + wick),
                         "low": np.minimum(open_, close) * (1 - wick), "close": close})
    gap = n // ROUND_TRIPS
    starts = np.arange(ROUND_TRIPS) * gap + rng.integers(0, gap - 1_100, ROUND_TRIPS)
    entries = np.zeros(n, dtype=bool)
    exits = np.zeros(n, dtype=bool)
    entries[starts] = True
    exits[starts + 1_000] = True
    return bars, entries, exits


def cpu_ms(fn) -> float:
    """Process CPU time of one call (all threads): what the machine's load does not inflate."""
    t = time.process_time()
    fn()
    return (time.process_time() - t) * 1e3


def timings_ms(fn, repeat: int) -> tuple[float, float]:
    """(median, best) of ``repeat`` calls, in ms."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3, min(times) * 1e3


def median_ms(fn, repeat: int) -> float:
    return timings_ms(fn, repeat)[0]


def child_peak_rss(case: str) -> float:
    """aftershock's peak RSS (MiB) for ``case``, in a fresh process that never imports vectorbt."""
    out = subprocess.run([sys.executable, __file__, "--child", case], capture_output=True, text=True, check=True)
    return float(json.loads(out.stdout.strip().splitlines()[-1])["peak_rss_mib"])


def _child(case: str) -> None:
    from aftershock.trading.engine import prepare_bars
    from aftershock.trading.signals import from_signals

    bars, entries, exits = market()
    prepared = prepare_bars(bars)
    if case == "single":
        r = from_signals(prepared, entries, exits, price="close", sl_stop=0.02)
        r.equity  # the equity rows too, as a user looking at them would
    else:
        from_signals(prepared, entries, exits, price="close", sl_stop=list(SL), tp_stop=list(TP))
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking parent
    with open("/proc/self/status") as f:
        hwm = next((line.split()[1] for line in f if line.startswith("VmHWM:")), None)
    peak = int(hwm) / 1024 if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"peak_rss_mib": peak}))


def _vectorbt(bars: pl.DataFrame, entries, exits, engine: str, columns: slice | None = None, **stops):
    import pandas as pd
    import vectorbt as vbt

    o, h, l, c = (bars[k].to_numpy() for k in ("open", "high", "low", "close"))
    if columns is None:
        close, args = pd.Series(c), (entries, exits)
        kwargs = dict(open=o, high=h, low=l)
    else:  # one column per variant: the parameters broadcast against (bars, 1) prices
        close, args = pd.DataFrame({"close": c}), (entries[:, None], exits[:, None])
        kwargs = dict(open=o[:, None], high=h[:, None], low=l[:, None])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return vbt.Portfolio.from_signals(close, *args, **kwargs, **stops, init_cash=100_000.0, engine=engine)


def case_single() -> dict:
    from aftershock.trading.engine import prepare_bars
    from aftershock.trading.signals import from_signals

    bars, entries, exits = market()
    prepared = prepare_bars(bars)
    run = lambda: from_signals(prepared, entries, exits, price="close", sl_stop=0.02)  # noqa: E731
    run()
    ours_ms, ours_best = timings_ms(run, 15)
    ours_cpu = cpu_ms(lambda: [run() for _ in range(15)]) / 15
    cold_ms = median_ms(lambda: from_signals(bars, entries, exits, price="close", sl_stop=0.02), 5)
    r = run()
    equity_ms = median_ms(lambda: run().equity, 5)
    peers = {}
    for engine in ("numba", "rust"):
        go = lambda: _vectorbt(bars, entries, exits, engine, sl_stop=0.02)  # noqa: E731
        pf = go()  # compiles / warms up
        peers[engine] = (*timings_ms(go, 7), pf, cpu_ms(lambda: [go() for _ in range(5)]) / 5)
    peer = min(peers, key=lambda k: peers[k][0])
    agree = True
    for _, _, pf, _ in peers.values():
        rec = pf.orders.values
        index = np.searchsorted(prepared.arrays["ts"], r.fills["ts"].dt.epoch("us").to_numpy())
        agree &= len(rec) == r.fills.height and bool((rec["idx"] == index).all())
        for ours, theirs in (("qty", "size"), ("price", "price"), ("fee", "fees")):
            agree &= bool(np.allclose(r.fills[ours].to_numpy(), rec[theirs], rtol=1e-9, atol=1e-9))
        agree &= abs(r.final_equity / pf.final_value() - 1) < 1e-9 and r.trades.height == pf.trades.count()
    stops = int((r.fills["reason"] == "stop_loss").sum())
    return dict(case="signals: 1 backtest, 525,600 bars, 2% stop", aftershock_ms=ours_ms, peer_ms=peers[peer][0],
                peer=f"vectorbt {peer}", ratio=peers[peer][0] / ours_ms, peak_rss_mib=child_peak_rss("single"),
                agree=bool(agree),
                note=(f"{r.fills.height} fills ({stops} stops), bars prepared once; from a raw frame "
                      f"{cold_ms:.1f} ms (prepare_bars); + equity rows on first access {equity_ms:.1f} ms; "
                      f"vectorbt numba {peers['numba'][0]:.1f} ms, rust {peers['rust'][0]:.1f} ms; CPU time per run: "
                      f"ours {ours_cpu:.2f} ms, vectorbt {peer} {peers[peer][3]:.1f} ms "
                      f"(x{peers[peer][3] / ours_cpu:.1f}); best of the runs: ours {ours_best:.2f} ms, "
                      f"vectorbt {peer} {peers[peer][1]:.1f} ms (x{peers[peer][1] / ours_best:.1f})"))


def case_sweep() -> dict:
    from aftershock.trading.engine import prepare_bars
    from aftershock.trading.signals import from_signals

    bars, entries, exits = market()
    prepared = prepare_bars(bars)
    threads = os.cpu_count() or 1
    sweep = lambda t: from_signals(prepared, entries, exits, price="close", sl_stop=list(SL), tp_stop=list(TP),  # noqa: E731
                                   threads=t)
    grid = sweep(threads)
    ours_ms = median_ms(lambda: sweep(threads), 3)
    one_ms = median_ms(lambda: sweep(1), 3)
    ours_cpu = statistics.median(cpu_ms(lambda: sweep(1)) for _ in range(3))
    n = grid.height
    sl = np.repeat(SL, len(TP))
    tp = np.tile(TP, len(SL))
    chunk = 50
    per_variant = {}
    cpu_per_variant = {}
    agree = True
    for engine, starts in (("rust", (0, 500)), ("numba", (250,))):
        _vectorbt(bars[:1_000], entries[:1_000], exits[:1_000], engine, columns=slice(0, 2),
                  sl_stop=sl[None, :2], tp_stop=tp[None, :2])  # compile / warm up
        times = []
        cpu = []
        for s in starts:
            cols = slice(s, s + chunk)
            t, c = time.perf_counter(), time.process_time()
            pf = _vectorbt(bars, entries, exits, engine, columns=cols, sl_stop=sl[None, cols], tp_stop=tp[None, cols])
            value = pf.final_value().to_numpy()
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
            mine = grid[cols]
            agree &= bool(np.allclose(value, mine["final_equity"].to_numpy(), rtol=1e-9))
            agree &= bool((pf.trades.count().to_numpy() == (mine["trades"] + mine["open_trades"]).to_numpy()).all())
        per_variant[engine] = statistics.median(times) * 1e3 / chunk
        cpu_per_variant[engine] = statistics.median(cpu) * 1e3 / chunk
    peer = min(per_variant, key=per_variant.get)
    peer_ms = per_variant[peer] * n
    return dict(case=f"signals sweep: {n:,} variants (SL x TP), 525,600 bars", aftershock_ms=ours_ms,
                peer_ms=peer_ms, peer=f"vectorbt {peer} (extrapolated)", ratio=peer_ms / ours_ms,
                peak_rss_mib=child_peak_rss("sweep"), agree=bool(agree),
                note=(f"{ours_ms / n:.3f} ms per variant on {threads} threads ({one_ms / n:.3f} on 1: "
                      f"x{one_ms / ours_ms:.2f}); vectorbt per variant: rust {per_variant['rust']:.0f} ms "
                      f"(median of 2 chunks of {chunk} columns), numba {per_variant['numba']:.0f} ms (1 chunk), "
                      f"x{n} extrapolated; values checked on the {chunk * 3} columns vectorbt ran; CPU time per "
                      f"variant: ours {ours_cpu / n:.3f} ms, vectorbt {peer} {cpu_per_variant[peer]:.0f} ms "
                      f"(x{cpu_per_variant[peer] / (ours_cpu / n):.0f})"))


def run() -> list[dict]:
    return [case_single(), case_sweep()]


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        _child(sys.argv[2])
        sys.exit(0)
    for row in run():
        print(" | ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
