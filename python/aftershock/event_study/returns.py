"""Price alignment: which bar's close stands for "the price as of time t".

Bars are stamped at their OPEN time ``ts``; a bar of length ``L`` closes at ``ts + L``,
and its ``close`` is the price at that instant. The price *as of* ``t`` is the close of
the last bar whose close time is ``<= t`` — a bar that has fully ended by ``t``. It is
*fresh* when that close time lies in ``(t - L, t]``; otherwise bars are missing just
before ``t`` and the price is stale, which the study reports instead of using.

For the release itself (``t = T``) this is the last bar strictly before the release: the
bar ``[T - L, T)`` whose close is the price an instant before ``T``. A bar that contains
``T`` (opens at or before ``T``, closes after it) is never used as the anchor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from aftershock import _engine

__all__ = ["SymbolSeries", "REASONS"]

# Why a reaction is null. Codes are stored as int8 in the arrays, strings in frames.
(OK, BEFORE_DATA, GAP_AT_START, AFTER_DATA, GAP_AT_END, BELOW_RESOLUTION, NO_BARS, BENCHMARK_GAP, SHORT_ESTIMATION,
 GAP_REACTION, IMPRECISE_TIME) = range(11)
REASONS = {
    BEFORE_DATA: "before_data",  # no bar has closed by the window start
    GAP_AT_START: "gap_at_start",  # bars are missing just before the window start
    AFTER_DATA: "after_data",  # the bars end before the window end
    GAP_AT_END: "gap_at_end",  # bars are missing just before the window end
    BELOW_RESOLUTION: "below_resolution",  # no bar closes inside the window: it is shorter than a bar
    NO_BARS: "no_bars",  # the symbol has no bars at all
    BENCHMARK_GAP: "benchmark_gap",  # the benchmark has no fresh price at a window end
    SHORT_ESTIMATION: "short_estimation",  # too few estimation returns to fit the model
    # measured (ret and car present): a release while the market was closed, from the
    # last price before it to prices after the reopen
    GAP_REACTION: "gap_reaction",
    IMPRECISE_TIME: "imprecise_time",  # the window is shorter than the release time's precision
}


@dataclass
class SymbolSeries:
    """One symbol's bars as NumPy arrays, with prefix sums for O(1) window sums.

    A bar return ``r_j = log_close[j] - log_close[j-1]`` is a *gap return* when its two
    prices are more than one bar apart in time (a session break, a weekend, missing
    bars); ``gap_idx`` lists those ``j``. ``session`` names a declared trading-session
    calendar (:mod:`aftershock.prices._sessions`) or is None.
    """

    symbol: str
    close_time: np.ndarray  # int64 µs: ts + bar length
    log_close: np.ndarray
    close: np.ndarray
    low: np.ndarray
    high: np.ndarray
    bar_us: int
    volume_cum: np.ndarray | None  # volume_cum[i] = sum of volume[0..i]
    sq_cum: np.ndarray  # sq_cum[i] = sum of r[1..i]**2
    gap_idx: np.ndarray  # sorted indices j of the gap returns
    session: str | None = None
    # prefix sums of the products of this symbol's and the benchmark ``cross_of``'s
    # one-bar returns, built with the arrays when the two share a bar grid
    cross_cum: np.ndarray | None = None
    cross_of: str | None = None

    @staticmethod
    def bar_length(frame: pl.DataFrame, bar_us: int | None) -> int:
        """The bar length: ``bar_us``, or the median spacing of open times (gaps only make
        spacings longer, so the median is robust; one minute for a single bar)."""
        if bar_us is not None:
            return int(bar_us)
        spacing = _engine.study_spacing(_ts_us(frame))
        return 60_000_000 if spacing is None else int(spacing)

    @classmethod
    def from_frame(cls, symbol: str, frame: pl.DataFrame, bar_us: int | None, session: str | None = None,
                   spare: list | None = None, benchmark: "SymbolSeries | None" = None) -> "SymbolSeries":
        """One symbol's checked bars (``ts``, ``close``; ``low``, ``high``, ``volume`` when
        present) as arrays; the per-bar pass (logs, prefix sums, gap returns) runs in
        Rust (``rust/study``) into arrays NumPy allocates, or into a finished symbol's
        arrays of the same length taken from ``spare`` (see :meth:`release`; faulting in
        fresh pages costs as much as the pass). The price columns are viewed without a
        copy. With a ``benchmark`` on the same bar grid, the market model's cross
        products are summed here too (``cross_cum``)."""
        bar_us = cls.bar_length(frame, bar_us)
        close = _f64(frame, "close")
        volume = _f64(frame, "volume") if "volume" in frame.columns else None
        n = close.size
        names = ("close_time", "log_close", "sq_cum") + (("volume_cum",) if volume is not None else ())
        fits = [i for i, b in enumerate(spare or ()) if all(k in b and b[k].size == n for k in names)]
        if fits:
            out = spare.pop(fits[0])
        else:
            out = {k: np.empty(n, dtype=np.int64 if k == "close_time" else np.float64) for k in names}
        gap_idx = np.frombuffer(_engine.study_series(_ts_us(frame), close, volume, bar_us, out), dtype=np.int64)
        cross = None
        if (benchmark is not None and benchmark.bar_us == bar_us
                and np.array_equal(benchmark.close_time, out["close_time"])):
            cross = out.get("cross_cum")
            cross = cross if cross is not None and cross.size == n else np.empty(n)
            _engine.study_cross_cum(out["log_close"], benchmark.log_close, cross)
        low = _f64(frame, "low") if "low" in frame.columns else close
        high = _f64(frame, "high") if "high" in frame.columns else close
        return cls(symbol, out["close_time"], out["log_close"], close, low, high, bar_us, out.get("volume_cum"),
                   out["sq_cum"], gap_idx, session, cross, None if cross is None else benchmark.symbol)

    def release(self, spare: list) -> None:
        """Hand this series' own arrays to ``spare`` for the next :meth:`from_frame`; the
        series must not be used afterwards."""
        bufs = {"close_time": self.close_time, "log_close": self.log_close, "sq_cum": self.sq_cum}
        if self.volume_cum is not None:
            bufs["volume_cum"] = self.volume_cum
        if self.cross_cum is not None:
            bufs["cross_cum"] = self.cross_cum
        spare.append(bufs)

    @property
    def n(self) -> int:
        return self.close_time.size

    def returns_at(self, idx: np.ndarray) -> np.ndarray:
        """Bar returns ``r_j`` at indices ``j >= 1``."""
        return self.log_close[idx] - self.log_close[np.maximum(idx - 1, 0)]

    def gaps_between(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Number of gap returns with index in ``(lo, hi]``."""
        return np.searchsorted(self.gap_idx, hi, side="right") - np.searchsorted(self.gap_idx, lo, side="right")

    def asof(self, t_us: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Index of the bar whose close is the price as of each ``t`` (-1 if none) and
        whether that price is fresh: its close time is within one bar length of ``t``,
        or — with a declared session calendar — that bar closed the session (the market
        is closed at its close time) and the market reopened less than one bar before
        ``t`` (a scheduled close is not a data gap)."""
        idx = np.searchsorted(self.close_time, t_us, side="right") - 1
        safe = np.maximum(idx, 0)
        ct = self.close_time[safe]
        recent = ct > t_us - self.bar_us
        if self.session is not None and self.session != "24/7":
            from aftershock.prices._sessions import is_open, next_open

            stale = ~recent & (idx >= 0)
            if stale.any():
                c = ct[stale]
                recent = recent.copy()
                recent[stale] = ~is_open(c, self.session) & (next_open(c, self.session) > t_us[stale] - self.bar_us)
        return idx, (idx >= 0) & recent

    def extremes(self, i0: np.ndarray, i1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Lowest low and highest high of the bars ``i0 + 1 .. i1`` (the bars that close
        inside the window), for index pairs with ``i1 > i0``."""
        a, b = np.asarray(i0) + 1, np.asarray(i1) + 1
        out_lo, out_hi = np.empty(a.size), np.empty(a.size)
        # reduceat over interleaved (start, stop) pairs, the odd slices discarded; a stop
        # at the very end cannot be an index, so those few rows are reduced one by one
        inner = b < self.n
        if inner.any():
            idx = np.empty(2 * int(inner.sum()), dtype=np.int64)
            idx[0::2], idx[1::2] = a[inner], b[inner]
            out_lo[inner] = np.minimum.reduceat(self.low, idx)[0::2]
            out_hi[inner] = np.maximum.reduceat(self.high, idx)[0::2]
        for k in np.flatnonzero(~inner):
            out_lo[k], out_hi[k] = self.low[a[k]:].min(), self.high[a[k]:].max()
        return out_lo, out_hi

    def window_reasons(self, t_start: np.ndarray, t_end: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Start and end bar indices for windows ``[t_start, t_end]`` and a reason code
        (0 = usable) for each, following the module's alignment rule."""
        i0, fresh0 = self.asof(t_start)
        i1, fresh1 = self.asof(t_end)
        reason = np.zeros(t_start.shape, dtype=np.int8)
        last = self.n - 1
        reason[(i1 == i0) & (i0 >= 0)] = BELOW_RESOLUTION
        reason[~fresh1 & (i1 < last)] = GAP_AT_END
        reason[~fresh1 & (i1 == last)] = AFTER_DATA
        reason[~fresh0 & (i0 >= 0)] = GAP_AT_START
        reason[~fresh0 & (i0 == last)] = AFTER_DATA
        reason[i0 < 0] = BEFORE_DATA
        return i0, i1, reason


def _ts_us(frame: pl.DataFrame) -> np.ndarray:
    """``ts`` (``Datetime("us")``) as contiguous int64 microseconds; no copy for one chunk."""
    return np.ascontiguousarray(frame["ts"].to_numpy().view(np.int64))


def _f64(frame: pl.DataFrame, column: str) -> np.ndarray:
    return np.ascontiguousarray(frame[column].to_numpy(), dtype=np.float64)
