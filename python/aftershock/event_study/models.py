"""Normal-return models fitted on an estimation window that excludes every event window.

All three models are fitted on bar log returns ``r_j = log c_j - log c_{j-1}`` of the
asset's own bars (the benchmark is aligned to them as of each bar's close):

- ``zero_mean``: ``E[r] = 0``; ``sigma^2 = mean(r^2)`` (k = 0 parameters).
- ``constant_mean``: ``E[r] = mu``; ``sigma^2`` the sample variance (k = 1).
- ``market``: ``E[r] = alpha + beta * m`` (OLS on the benchmark's return, k = 2).

The expected return over a window of ``h`` bars with benchmark return ``M`` is
``k_alpha * h + beta * M`` and the variance of its prediction error is
``sigma^2 * (h + g' (X'X)^{-1} g)`` with ``g = (h, M)`` (or ``g = h`` for the constant
mean) — MacKinlay (1997), Campbell, Lo & MacKinlay (1997, eq. 4.4.13).

Sums over the estimation window come from prefix sums over the *usable* returns, so one
event's fit costs O(1) whatever the bar count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aftershock import _engine
from aftershock.event_study.returns import SymbolSeries

__all__ = ["MODELS", "ModelFit", "excluded_ranges", "fit_models", "prepare"]

MODELS = {"zero_mean": 0, "constant_mean": 1, "market": 2}


def merge_intervals(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Union of intervals ``[s, e)`` as sorted disjoint intervals."""
    order = np.argsort(starts, kind="stable")
    s, e = starts[order], ends[order]
    run_end = np.maximum.accumulate(e)
    new = np.ones(s.size, dtype=bool)
    new[1:] = s[1:] > run_end[:-1]
    groups = np.cumsum(new) - 1
    out_s = s[new]
    out_e = e[new].copy()  # each group starts from its own first end (ends may be negative: before 1970)
    np.maximum.at(out_e, groups, e)
    return out_s, out_e


def excluded_ranges(close_time: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index ranges ``[a, b)`` (sorted, disjoint) of the bar returns
    ``(close_time[j-1], close_time[j]]`` that overlap any interval ``[start, end)``."""
    s, e = merge_intervals(starts, ends)
    n = close_time.size
    lo = np.maximum(np.searchsorted(close_time, s, side="right"), 1)  # first j with close_time[j] > s
    hi = np.minimum(np.searchsorted(close_time, e, side="left"), n - 1)  # last j with close_time[j-1] < e
    keep = lo <= hi
    if not keep.any():
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    # a long bar gap can put one return in two neighbouring intervals: merge in index space too
    return merge_intervals(lo[keep], hi[keep] + 1)


class PreparedSeries:
    """Sums over the *usable* returns (not excluded, not a gap return, benchmark
    present) of any index range.

    ``base[name]`` is a prefix sum over all returns up to a constant (``base[name][i]``
    = sum of returns ``1..i`` + c; only differences are used); the unusable returns are
    a few index ranges whose own sums are subtracted, so no per-bar mask or extra pass
    over the bars is needed.
    """

    def __init__(self, series: SymbolSeries, m_log, m_fresh, base: dict, ex_a: np.ndarray, ex_b: np.ndarray, m=None):
        self.series = series
        self.m_log, self.m_fresh, self._m = m_log, m_fresh, m
        self.base = base
        self.ex_a, self.ex_b = ex_a, ex_b
        self.ex_cum = {}
        for name in base:
            part = self._base(name, ex_b - 1) - self._base(name, ex_a - 1)
            self.ex_cum[name] = np.concatenate([np.zeros(1, dtype=part.dtype), np.cumsum(part)])

    def usable_sums(self) -> dict:
        """The arrays behind :meth:`cums_at`, for the Rust block pass: ``r``, ``ex_a``,
        ``ex_b``, ``ex_n``, ``ex_r``, ``ex_m``, and ``n`` / ``m`` when explicit."""
        out = {"r": np.ascontiguousarray(self.base["r"], dtype=np.float64),
               "ex_a": np.ascontiguousarray(self.ex_a, dtype=np.int64), "ex_b": np.ascontiguousarray(self.ex_b, dtype=np.int64),
               "ex_n": np.ascontiguousarray(self.ex_cum["n"], dtype=np.int64),
               "ex_r": np.ascontiguousarray(self.ex_cum["r"], dtype=np.float64),
               "ex_m": np.ascontiguousarray(self.ex_cum["m"], dtype=np.float64)}
        if self.base["n"] is not None:
            out["n"] = np.ascontiguousarray(self.base["n"], dtype=np.int64)
        if self.base["m"].size > 1:
            out["m"] = np.ascontiguousarray(self.base["m"], dtype=np.float64)
        return out

    def _base(self, name: str, idx: np.ndarray) -> np.ndarray:
        b = self.base[name]
        if b is None:  # the count of returns 1..i is i itself
            return np.asarray(idx, dtype=np.int64)
        if b.size == 1:  # no benchmark: every market sum is zero
            return np.zeros(np.shape(idx))
        return b[idx]

    def r_at(self, idx: np.ndarray) -> np.ndarray:
        return self.series.returns_at(idx)

    def m_at(self, idx: np.ndarray) -> np.ndarray:
        """The benchmark's return over each of the asset's bar returns ``idx``."""
        if self._m is not None:
            return self._m[idx]
        if self.m_log is None:
            return np.zeros(np.shape(idx))
        return self.m_log[idx] - self.m_log[np.maximum(idx - 1, 0)]

    def m_move(self, i0: np.ndarray, i1: np.ndarray) -> np.ndarray:
        """The benchmark's log return between the asset's bars ``i0`` and ``i1``."""
        if self.m_log is None:
            return np.zeros(np.shape(i0))
        return self.m_log[i1] - self.m_log[i0]

    def fresh_at(self, idx: np.ndarray) -> np.ndarray:
        """Whether the benchmark has a fresh price at the close of the asset's bar ``idx``."""
        return np.ones(np.shape(idx), dtype=bool) if self.m_fresh is None else self.m_fresh[idx]

    def _inside(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        k = np.searchsorted(self.ex_a, idx, side="right")
        km = np.maximum(k - 1, 0)
        inside = (k > 0) & (idx < self.ex_b[km]) if self.ex_a.size else np.zeros(np.shape(idx), dtype=bool)
        return k, inside

    def cums_at(self, names: tuple[str, ...], idx: np.ndarray) -> list[np.ndarray]:
        """Prefix sums over usable returns ``1..idx`` for several quantities at once."""
        idx = np.asarray(idx)
        if not self.ex_a.size:
            return [self._base(name, idx) for name in names]
        k, inside = self._inside(idx)
        km = np.maximum(k - 1, 0)
        start = self.ex_a[km] - 1
        out = []
        for name in names:
            full = self.ex_cum[name]
            b = self._base(name, idx)
            excluded = np.where(inside, full[km] + b - self._base(name, start), full[k])
            out.append(b - excluded)
        return out

    def totals(self, names: tuple[str, ...], lo: np.ndarray, hi: np.ndarray) -> list[np.ndarray]:
        """Sums over usable returns with index in ``(lo, hi]``, for several quantities."""
        return [h - l for h, l in zip(self.cums_at(names, hi), self.cums_at(names, lo))]

    def total(self, name: str, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Sum over usable returns with index in ``(lo, hi]``."""
        return self.totals((name,), lo, hi)[0]

    def usable_at(self, idx: np.ndarray) -> np.ndarray:
        """Whether the returns ``idx`` are usable."""
        idx = np.asarray(idx)
        if self.base["n"] is not None:  # an explicit count of usable returns
            n = self.base["n"]
            return (idx >= 1) & (n[idx] - n[np.maximum(idx - 1, 0)] == 1)
        return (idx >= 1) & ~self._inside(idx)[1]


def _diff0(x: np.ndarray) -> np.ndarray:
    out = np.empty_like(x)
    out[:1] = 0.0
    np.subtract(x[1:], x[:-1], out=out[1:])
    return out


def prepare(series: SymbolSeries, benchmark: SymbolSeries | None, ex_a: np.ndarray, ex_b: np.ndarray) -> PreparedSeries:
    """Prefix sums of the model's quantities; ``[ex_a, ex_b)`` are the index ranges of
    excluded returns (event windows). Gap returns are unusable too."""
    gaps = series.gap_idx
    if gaps.size:
        ex_a, ex_b = merge_intervals(np.concatenate([ex_a, gaps]), np.concatenate([ex_b, gaps + 1]))
    base: dict[str, np.ndarray | None] = {"n": None, "r": series.log_close, "rr": series.sq_cum}
    if benchmark is None:
        zero = np.zeros(1)
        base.update(m=zero, mm=zero, rm=zero)
        return PreparedSeries(series, None, None, base, ex_a, ex_b)
    built = series.cross_cum is not None and series.cross_of == benchmark.symbol  # same grid, checked then
    if built or (benchmark.bar_us == series.bar_us and np.array_equal(benchmark.close_time, series.close_time)):
        # same bar grid (the usual case): the benchmark's own arrays line up, no search
        if built:
            rm = series.cross_cum
        else:
            rm = np.empty(series.n)
            _engine.study_cross_cum(series.log_close, benchmark.log_close, rm)
        base.update(m=benchmark.log_close, mm=benchmark.sq_cum, rm=rm)
        return PreparedSeries(series, benchmark.log_close, None, base, ex_a, ex_b)
    # different grids: returns where the benchmark has no fresh price on both ends are
    # unusable too, so build the usable mask and its prefix sums explicitly
    bi, fresh = benchmark.asof(series.close_time)
    m_log = np.where(bi >= 0, benchmark.log_close[np.maximum(bi, 0)], np.nan)
    m = np.diff(m_log, prepend=np.nan)
    usable = fresh & np.concatenate([[False], fresh[:-1]]) & np.isfinite(m)
    for a, b in zip(ex_a, ex_b):
        usable[a:b] = False
    usable[0] = False
    m = np.where(np.isfinite(m), m, 0.0)
    m_log = np.where(np.isfinite(m_log), m_log, 0.0)
    r = _diff0(series.log_close)
    ru, mu = np.where(usable, r, 0.0), np.where(usable, m, 0.0)
    base = {"n": np.cumsum(usable, dtype=np.int64), "r": np.cumsum(ru), "rr": np.cumsum(ru * ru),
            "m": np.cumsum(mu), "mm": np.cumsum(mu * mu), "rm": np.cumsum(ru * mu)}
    none = np.zeros(0, dtype=np.int64)
    return PreparedSeries(series, m_log, fresh, base, none, none, m=m)


@dataclass
class ModelFit:
    """Per-event fitted parameters (arrays over events)."""

    k: int
    n: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    sigma2: np.ndarray
    sum_m: np.ndarray
    sum_mm: np.ndarray
    lo: np.ndarray
    hi: np.ndarray

    def expected(self, e: np.ndarray, h: np.ndarray, big_m: np.ndarray) -> np.ndarray:
        return self.alpha[e] * h + self.beta[e] * big_m

    def prediction_var(self, e: np.ndarray, h: np.ndarray, big_m: np.ndarray) -> np.ndarray:
        """Variance of the abnormal return over ``h`` bars (with the estimation error)."""
        s2, n = self.sigma2[e], self.n[e].astype(np.float64)
        if self.k == 0:
            return s2 * h
        if self.k == 1:
            return s2 * (h + h * h / n)
        sm, smm = self.sum_m[e], self.sum_mm[e]
        det = n * smm - sm * sm
        quad = (h * h * smm - 2.0 * h * big_m * sm + big_m * big_m * n) / det
        return s2 * (h + quad)


def fit_models(prep: PreparedSeries, model: str, lo: np.ndarray, hi: np.ndarray) -> ModelFit:
    """Fit ``model`` on the usable returns with index in ``(lo, hi]`` for each event."""
    k = MODELS[model]
    with np.errstate(divide="ignore", invalid="ignore"):
        n, sr, srr, sm, smm, srm = prep.totals(("n", "r", "rr", "m", "mm", "rm"), lo, hi)
        nf = n.astype(np.float64)
        zeros = np.zeros(n.size)
        if k == 0:
            alpha, beta, sigma2 = zeros, zeros, srr / nf
        elif k == 1:
            alpha = sr / nf
            beta = zeros
            sigma2 = np.maximum(srr - nf * alpha * alpha, 0.0) / (nf - 1)
        else:
            sxx = smm - sm * sm / nf
            sxy = srm - sr * sm / nf
            syy = srr - sr * sr / nf
            beta = sxy / sxx
            alpha = (sr - beta * sm) / nf
            sigma2 = np.maximum(syy - beta * sxy, 0.0) / (nf - 2)
    return ModelFit(k, n, alpha, beta, sigma2, sm, smm, lo, hi)


def block_abnormal(prep: PreparedSeries, fit: ModelFit, e: np.ndarray, h: np.ndarray, max_blocks: int) -> np.ndarray:
    """Abnormal returns of non-overlapping ``h``-bar blocks of the estimation window,
    counting back from its end: shape ``(rows, max_blocks)``, NaN where a block would
    leave the window or contains an unusable (excluded or gap) return. One pass per
    row in Rust (``rust/study/blocks.rs``) over the prefix sums of ``prep``."""
    out = np.empty((e.size, max_blocks))
    i64 = lambda a: np.ascontiguousarray(a, dtype=np.int64)  # noqa: E731
    f64 = lambda a: np.ascontiguousarray(a, dtype=np.float64)  # noqa: E731
    _engine.study_blocks(prep.usable_sums(), i64(fit.hi[e]), i64(fit.lo[e]), f64(fit.alpha[e]), f64(fit.beta[e]),
                         i64(h), max_blocks, out)
    return out


def residual_matrix(prep: PreparedSeries, fit: ModelFit, bars: int) -> np.ndarray:
    """The last ``bars`` estimation residuals of each event, aligned in event time
    (NaN where a return is unusable or before the window): shape ``(events, bars)``.
    One pass per row in Rust (``rust/study/blocks.rs``): ``r_j - alpha - beta * m_j``
    with ``r_j``, ``m_j`` as :meth:`PreparedSeries.r_at` and :meth:`~PreparedSeries.m_at`
    give them."""
    out = np.empty((fit.hi.size, bars))
    i64 = lambda a: np.ascontiguousarray(a, dtype=np.int64)  # noqa: E731
    f64 = lambda a: np.ascontiguousarray(a, dtype=np.float64)  # noqa: E731
    market_log = None if prep.m_log is None or prep._m is not None else f64(prep.m_log)
    market_returns = None if prep._m is None else f64(prep._m)
    _engine.study_residuals(prep.usable_sums(), f64(prep.series.log_close), market_log, market_returns,
                            i64(fit.hi), i64(fit.lo), f64(fit.alpha), f64(fit.beta), bars, out)
    return out

