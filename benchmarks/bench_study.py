"""Benchmark: an event study of 1,000 events × 5 assets × 8 windows over ten years of
1-minute bars (about 26 million rows).

    python benchmarks/bench_study.py [--years 10] [--events 1000] [--runs 3] [--stages]

Prints the median wall and CPU time of ``aftershock.event_study.study`` over a few runs;
the peak memory it adds on top of the bars already in memory (resident set size,
sampled every 2 ms by a thread in as many more runs — not the timed ones, the sampler
competes for the GIL — and in a fresh process from ``getrusage``); with
``--stages`` the CPU time of each stage of one more run. Then it checks a sample of the
reactions against a naive computation (a Polars filter per event: the last bar that
closed at or before each window end) and a sample of CARs, their standard deviations
and estimation counts against a plain NumPy market model (:class:`NaiveMarketModel`),
to 1e-12.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import threading
import time
from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl

from aftershock.event_study import study

SYMBOLS = ("BTC", "ETH", "SOL", "NQ", "ES")
WINDOWS = ["-10h", "-1h", "5m", "15m", "1h", "4h", "1d", "2w"]
INDICATORS = ("CPI_YOY", "CORE_CPI_MOM", "PPI_YOY", "CORE_PPI_MOM", "NFP", "UNRATE", "CORE_PCE_MOM", "FED_FUNDS")


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRSS:
    """Peak resident set size while the block runs, sampled by a thread."""

    def __enter__(self):
        self.base = self.peak = rss_bytes()
        self._stop = threading.Event()

        def sample():
            while not self._stop.is_set():
                self.peak = max(self.peak, rss_bytes())
                time.sleep(0.002)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())

    @property
    def added(self) -> int:
        return self.peak - self.base


def peak_rss() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def make_bars(years: float, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    start = datetime(2015, 1, 1, tzinfo=timezone.utc)
    n = int(years * 365.25 * 1440)
    ts = pl.datetime_range(start, start + (n - 1) * timedelta(minutes=1), "1m", eager=True, time_zone="UTC")
    common = rng.standard_normal(n).astype(np.float64) * 4e-4
    frames = []
    for i, sym in enumerate(SYMBOLS):
        r = 0.6 * common + rng.standard_normal(n) * 4e-4
        close = (100.0 + 50 * i) * np.exp(np.cumsum(r))
        spread = np.abs(rng.standard_normal(n)) * 2e-4 * close
        frames.append(
            pl.DataFrame(
                {"ts": ts, "symbol": sym, "open": close, "high": close + spread, "low": close - spread,
                 "close": close, "volume": rng.exponential(10.0, n)}
            )
        )
    return pl.concat(frames)


def make_calendar(years: float, n_events: int, seed: int = 1) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    start = datetime(2015, 2, 1, 13, 30, tzinfo=timezone.utc)
    days = int(years * 365.25) - 60
    day = np.sort(rng.choice(days, n_events, replace=True))
    rel = [start + timedelta(days=int(d)) for d in day]
    ind = [INDICATORS[k % len(INDICATORS)] for k in range(n_events)]
    return pl.DataFrame(
        {"event_id": [f"ev{k}" for k in range(n_events)], "kind": "macro", "indicator": ind,
         "release_ts": pl.Series(rel, dtype=pl.Datetime("us", "UTC")), "hawkish_z": rng.standard_normal(n_events)}
    )


def naive_reaction(bars: pl.DataFrame, symbol: str, release: datetime, start: timedelta, end: timedelta) -> float:
    """Log return between the closes of the last bars finished by release+start and release+end."""
    b = bars.filter(pl.col("symbol") == symbol)

    def price(t: datetime) -> float:
        done = b.filter(pl.col("ts") + pl.duration(minutes=1) <= t)
        return done["close"][-1]

    return math.log(price(release + end) / price(release + start))


class NaiveMarketModel:
    """The benchmark's market model recomputed the textbook way with plain NumPy (no
    prefix sums, no helper of the study): a usable-return mask over every one-minute
    return, an explicit least-squares fit per event, and the prediction variance
    ``s² (h + g'(X'X)⁻¹g)`` of Campbell, Lo & MacKinlay (1997, eq. 4.4.13)."""

    def __init__(self, bars: pl.DataFrame, cal: pl.DataFrame, benchmark: str, estimation: tuple[int, int],
                 exclude: tuple[int, int]):
        self.bars, self.est, self.benchmark = bars, estimation, benchmark
        self.release = cal["release_ts"].dt.epoch("us").to_numpy()
        self.exclude = exclude
        self.cache: dict = {}

    def symbol(self, sym: str):
        if sym not in self.cache:
            b = self.bars.filter(pl.col("symbol") == sym)
            close_time = b["ts"].dt.epoch("us").to_numpy() + 60_000_000
            log_close = np.log(b["close"].to_numpy())
            usable = np.ones(close_time.size, dtype=bool)  # return j: (close_time[j-1], close_time[j]]
            usable[0] = False
            usable[1:] &= np.diff(close_time) == 60_000_000  # a return across missing bars
            for t in self.release:  # every event's exclusion interval [t + ex0, t + ex1)
                # returns j with close_time[j] > start and close_time[j - 1] < end
                first = np.searchsorted(close_time, t + self.exclude[0], side="right")
                last = np.searchsorted(close_time, t + self.exclude[1], side="left")  # close_time[last-1] < end
                usable[max(first, 1):last + 1] = False
            self.cache[sym] = (close_time, log_close, usable)
        return self.cache[sym]

    def car_sd(self, sym: str, release: datetime, start: timedelta, end: timedelta) -> tuple[float, float, int]:
        ct, lc, usable = self.symbol(sym)
        _, mc, _ = self.symbol(self.benchmark)
        t = int(release.timestamp() * 1_000_000)
        j = np.arange(ct.size)
        est = usable & (ct > t + self.est[0]) & (ct <= t + self.est[1])
        est[0] = False
        r = lc[j[est]] - lc[j[est] - 1]
        m = mc[j[est]] - mc[j[est] - 1]
        x = np.column_stack([np.ones(r.size), m])
        coef, *_ = np.linalg.lstsq(x, r, rcond=None)
        s2 = np.sum((r - x @ coef) ** 2) / (r.size - 2)
        i0 = np.searchsorted(ct, t + int(start / timedelta(microseconds=1)), side="right") - 1
        i1 = np.searchsorted(ct, t + int(end / timedelta(microseconds=1)), side="right") - 1
        h, big_m = i1 - i0, mc[i1] - mc[i0]
        car = (lc[i1] - lc[i0]) - coef[0] * h - coef[1] * big_m
        g = np.array([h, big_m])
        return car, math.sqrt(s2 * (h + g @ np.linalg.solve(x.T @ x, g))), int(r.size)


#: Stages timed by ``--stages``: (label, module, attribute); a method is "Class.name".
#: Inclusive thread CPU time, so nested stages (indented) are part of their parent.
STAGES = (
    ("validation: symbol runs", "aftershock.event_study._inputs", "SymbolBars.__init__"),
    ("validation: per-symbol checks", "aftershock.event_study._inputs", "SymbolBars.validated"),
    ("bar length (median spacing)", "aftershock.event_study.returns", "SymbolSeries.bar_length"),
    ("bar length (median spacing)", "aftershock.event_study.returns", "SymbolSeries.spacing"),  # before 2026-11-25
    ("per-symbol arrays (logs, prefix sums)", "aftershock.event_study.returns", "SymbolSeries.from_frame"),
    ("per-symbol reactions", "aftershock.event_study.study", "symbol_reactions"),
    ("  estimation fits", "aftershock.event_study._reactions", "estimation"),
    ("  rank/sign blocks", "aftershock.event_study.models", "block_abnormal"),
    ("  KP residuals", "aftershock.event_study.models", "residual_matrix"),
    ("  CAR paths", "aftershock.event_study._reactions", "_path"),
    ("reactions frame", "aftershock.event_study._tables", "reactions_frame"),
    ("cross-event tests", "aftershock.event_study._tables", "event_tests"),
    ("sensitivity regressions", "aftershock.event_study._tables", "sensitivity"),
    ("paths frame", "aftershock.event_study._tables", "paths_frame"),
    ("volatility frame", "aftershock.event_study._tables", "volatility_frame"),
)


def timed_stages(run) -> dict[str, float]:
    """Run ``run()`` with the :data:`STAGES` wrapped by a thread-CPU-time accumulator
    (stages may run on the study's helper thread), then restore them."""
    import functools
    import importlib

    spent: dict[str, float] = {}
    restore = []
    for label, module, attr in STAGES:
        owner = importlib.import_module(module)
        *path, name = attr.split(".")
        for part in path:
            owner = getattr(owner, part, None)
        raw = owner.__dict__.get(name) if owner is not None else None
        if raw is None:
            continue
        func = raw.__func__ if isinstance(raw, classmethod) else raw

        def wrap(func=func, label=label):
            @functools.wraps(func)
            def inner(*a, **k):
                t = time.thread_time()
                try:
                    return func(*a, **k)
                finally:
                    spent[label] = spent.get(label, 0.0) + time.thread_time() - t
            return inner

        setattr(owner, name, classmethod(wrap()) if isinstance(raw, classmethod) else wrap())
        restore.append((owner, name, raw))
    try:
        run()
    finally:
        for owner, name, raw in restore:
            setattr(owner, name, raw)
    return spent


def child_peak_rss(args) -> None:
    """In a fresh process: build the bars, reset the peak-RSS mark, run one study and
    print the peak (``getrusage``) and how much the study added on top of the bars."""
    import resource

    bars, cal = make_bars(args.years), make_calendar(args.years, args.events)
    with open("/proc/self/clear_refs", "w") as fh:  # Linux: reset the high-water mark
        fh.write("5")
    before = rss_bytes()
    study(bars, cal, windows=WINDOWS, model="market", benchmark="NQ", exclude=("-10h", "4h"))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"{before} {peak}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--years", type=float, default=10.0)
    ap.add_argument("--events", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--check", type=int, default=12, help="reactions checked against the naive computation")
    ap.add_argument("--stages", action="store_true", help="print the CPU time of each stage of one more run")
    ap.add_argument("--child-rss", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_rss:
        return child_peak_rss(args)

    t0 = time.perf_counter()
    bars = make_bars(args.years)
    cal = make_calendar(args.years, args.events)
    print(f"generated {bars.height:,} bars ({len(SYMBOLS)} symbols) and {cal.height} events in {time.perf_counter() - t0:.1f}s")

    def run():
        # With a 2-week window, removing every event's whole window from the estimation
        # data would leave none at 1,000 events in 10 years; remove [-10h, +4h] instead.
        return study(bars, cal, windows=WINDOWS, model="market", benchmark="NQ", exclude=("-10h", "4h"))

    times, cpu, added, peaks, result = [], [], [], [], None
    input_bytes = bars.estimated_size()
    # timed runs alone: the memory sampler is a Python thread that takes the GIL every
    # 2 ms, which slows the study's own Python down; memory is sampled in other runs
    for _ in range(args.runs):
        result = None
        t0, c0 = time.perf_counter(), time.process_time()
        result = run()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    for _ in range(args.runs):
        result = None
        with PeakRSS() as mem:
            result = run()
        added.append(mem.added)
        peaks.append(mem.peak)
    med = statistics.median(times)
    print(f"study: {cal.height} events x {len(SYMBOLS)} assets x {len(WINDOWS)} windows over {bars.height:,} rows: "
          f"wall median {med:.2f}s over {args.runs} runs ({', '.join(f'{t:.2f}' for t in times)}); "
          f"CPU (all threads) median {statistics.median(cpu):.2f}s ({', '.join(f'{t:.2f}' for t in cpu)})")
    print(f"  memory: the bars take {input_bytes / 1e9:.2f} GB; the study adds a median peak of "
          f"{statistics.median(added) / 1e9:.2f} GB ({', '.join(f'{a / 1e9:.2f}' for a in added)}); "
          f"peak RSS during the study {statistics.median(peaks) / 1e9:.2f} GB; process peak (with bar generation) {peak_rss() / 1e9:.2f} GB")
    if os.path.exists("/proc/self/clear_refs"):
        import subprocess
        import sys

        out = subprocess.run([sys.executable, __file__, "--child-rss", "--years", str(args.years), "--events", str(args.events)],
                             capture_output=True, text=True, check=True).stdout.split()
        before, peak = int(out[-2]), int(out[-1])
        print(f"  fresh process (getrusage): peak RSS {peak / 1e9:.2f} GB with the bars, {(peak - before) / 1e9:.2f} GB added by the study")
    if args.stages:
        spent = timed_stages(run)
        print("  CPU time per stage (inclusive, thread CPU):")
        for label in dict.fromkeys(label for label, *_ in STAGES):
            if label in spent:
                print(f"    {label:<40} {spent[label]:6.3f}s")
    rng = np.random.default_rng(2)
    sample = result.reactions.filter(pl.col("ret").is_not_null())
    sample = sample[rng.choice(sample.height, min(args.check, sample.height), replace=False).tolist()]
    windows = {w.label: w for w in result.windows}
    worst = 0.0
    for r in sample.iter_rows(named=True):
        w = windows[r["window"]]
        naive = naive_reaction(bars, r["symbol"], r["release_ts"], w.start, w.end)
        worst = max(worst, abs(naive - r["ret"]))
    print(f"  naive check: {sample.height} sampled reactions, max |difference| = {worst:.2e}")
    # abnormal returns, their standard deviations and estimation counts, recomputed
    us = lambda d: int(d / timedelta(microseconds=1))  # noqa: E731
    earliest = min(0, min(us(w.start) for w in result.windows))
    naive_model = NaiveMarketModel(bars, cal, "NQ", (-30 * 86_400_000_000, earliest), (us(timedelta(hours=-10)), us(timedelta(hours=4))))
    with_car = result.reactions.filter(pl.col("car").is_not_null() & (pl.col("symbol") != "NQ"))
    with_car = with_car[rng.choice(with_car.height, min(args.check, with_car.height), replace=False).tolist()]
    car_diff = sd_diff = 0.0
    for r in with_car.iter_rows(named=True):
        w = windows[r["window"]]
        car, sd, n_est = naive_model.car_sd(r["symbol"], r["release_ts"], w.start, w.end)
        if n_est != r["n_est"]:
            raise SystemExit(f"naive check FAILED: n_est {r['n_est']} vs {n_est} for {r['event_id']} {r['symbol']} {r['window']}")
        car_diff, sd_diff = max(car_diff, abs(car - r["car"])), max(sd_diff, abs(sd - r["sd"]))
    print(f"  naive market model: {with_car.height} sampled CARs, max |difference| car {car_diff:.2e}, sd {sd_diff:.2e}")
    if max(worst, car_diff, sd_diff) > 1e-12:
        raise SystemExit("naive check FAILED")


if __name__ == "__main__":
    main()
