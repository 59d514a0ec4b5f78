"""``study`` over bars larger than memory: only the bars the study reads are loaded.

An event's numbers depend on the bars from the start of its estimation window (or of
the volatility window before its earliest event window, or of the CAR path) to the
end of its last window or path point. Each symbol's bars are streamed once in batches
and only the rows inside those spans are kept, plus the row just before and just after
each kept run (the as-of price at a span's edge, and whether a window reaches past
the end of the data, are then those of the whole series) and the symbol's first and
last rows. The kept rows go to the in-memory study unchanged, with the bar length
measured on the whole series (the median spacing of its open times, as there).

Memory grows with the bars inside the events' spans, not with the series.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import polars as pl

from aftershock.errors import BarsError
from aftershock.event_study._inputs import path_grid, prepared_calendar, settings_from
from aftershock.event_study._reactions import event_clock
from aftershock.event_study.models import merge_intervals
from aftershock.prices import validate_bars
from aftershock.prices._scan import BarsScan

__all__ = ["needed_spans", "study_stream"]


def median_spacing(scan: BarsScan, symbol: str) -> int:
    """The median spacing of a symbol's bar open times (µs), as the in-memory study
    infers the bar length, from counts of each distinct spacing: nothing per bar kept."""
    counts: dict[int, int] = {}
    last = None
    for df in scan.batches(symbol, columns=("ts",)):
        ts = df.get_column("ts").dt.epoch("us").to_numpy()
        d = np.diff(ts if last is None else np.concatenate([[last], ts]))
        values, n = np.unique(d, return_counts=True)
        for v, k in zip(values.tolist(), n.tolist()):
            counts[v] = counts.get(v, 0) + k
        last = ts[-1]
    total = sum(counts.values())
    if total == 0:
        return 60_000_000
    values = sorted(counts)
    cum = np.cumsum([counts[v] for v in values])

    def nth(i: int) -> int:
        return values[int(np.searchsorted(cum, i, side="right"))]

    if total % 2:
        return int(float(nth(total // 2)))
    return int((float(nth(total // 2 - 1)) + float(nth(total // 2))) / 2.0)


def needed_spans(release: np.ndarray, precision: np.ndarray, s, bar_us: dict[str, int], grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted disjoint ``[start, end)`` spans (µs, bar open times) holding every bar
    the study reads for any event, for every symbol's session clock."""
    starts, ends = [], []
    longest = max(bar_us.values())
    for sym in s.needed:
        clock = event_clock(release, precision, s.sessions[sym])
        t_a, t_b = clock.at(s.w_start), clock.at(s.w_end)
        before = t_a - (s.w_end - s.w_start)[None, :]
        points = clock.at(grid)
        lo = np.minimum.reduce([release + s.est0, release, t_a.min(axis=1), before.min(axis=1), points.min(axis=1)])
        hi = np.maximum.reduce([release + s.est1, clock.after, t_b.max(axis=1), points.max(axis=1)])
        # a bar is read through its close (open + bar length)
        starts.append(lo - longest)
        ends.append(hi + 1)
    return merge_intervals(np.concatenate(starts), np.concatenate(ends))


def _kept_rows(scan: BarsScan, symbol: str, starts: np.ndarray, ends: np.ndarray) -> pl.DataFrame:
    """The symbol's rows inside the spans, each run's neighbours and the first and last
    rows, every batch validated on the way (an error names the row among the symbol's bars)."""
    out: list[pl.DataFrame] = []
    prev: pl.DataFrame | None = None
    prev_in = before_prev_in = False
    row = 0
    for df in scan.batches(symbol):
        try:
            validate_bars(df)
        except BarsError as exc:
            r = None if exc.row is None else exc.row + row
            raise BarsError(f"{exc.message} (symbol {symbol!r}, row {r} of its bars)", column=exc.column, row=r) from None
        row += df.height
        ts = df.get_column("ts").dt.epoch("us").to_numpy()
        k = np.searchsorted(starts, ts, side="right") - 1
        inside = (k >= 0) & (ts < ends[np.maximum(k, 0)])
        first = prev is None
        if prev is not None:
            df = pl.concat([prev, df])
            inside = np.concatenate([[prev_in], inside])
        prv = np.concatenate([[before_prev_in], inside[:-1]])
        nxt = np.concatenate([inside[1:], [False]])
        keep = inside | prv | nxt
        if first:
            keep[0] = True
        # the last row waits for the next batch to know its successor
        # a gather copies the kept rows (a filter keeping one run would be a view that
        # holds the whole batch alive)
        out.append(df.slice(0, df.height - 1)[np.flatnonzero(keep[:-1])])
        prev = df.slice(df.height - 1)
        before_prev_in = bool(inside[-2]) if inside.size > 1 else before_prev_in
        prev_in = bool(inside[-1])
    if prev is not None:
        out.append(prev)
    return pl.concat(out, rechunk=True) if out else pl.DataFrame()


def study_stream(scan: BarsScan, calendar: Any, windows: Any, model: str, benchmark: str | None, **kw: Any):
    """``study`` of streamed bars; the arguments are those of :func:`aftershock.study`."""
    from aftershock.event_study.study import study

    s = settings_from(scan.symbols, windows, model, benchmark, **kw)
    cal = prepared_calendar(calendar)
    release = cal["release_ts"].dt.epoch("us").to_numpy()
    precision = cal["_precision_us"].to_numpy()
    bar_us = {sym: s.bar_length[sym] if s.bar_length[sym] is not None else median_spacing(scan, sym) for sym in s.needed}
    grid = path_grid(s.windows, max(bar_us[sym] for sym in s.symbols), s.path)
    starts, ends = needed_spans(release, precision, s, bar_us, grid)
    names = [sym for sym in scan.symbols if sym in s.needed]
    bars = pl.concat([_kept_rows(scan, sym, starts, ends) for sym in names], how="diagonal_relaxed")
    sessions = kw["sessions"]
    if isinstance(sessions, dict):
        sessions = {k: v for k, v in sessions.items() if k in names}
    args = dict(kw, bar_length={sym: timedelta(microseconds=bar_us[sym]) for sym in names}, sessions=sessions,
                symbols=list(s.symbols))
    return study(bars, calendar, windows, model, benchmark, **args)
