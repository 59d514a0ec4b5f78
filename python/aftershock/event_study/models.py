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

from aftershock.event_study.returns import SymbolSeries

__all__ = ["MODELS", "ModelFit", "excluded_returns", "fit_models"]

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
    out_e = np.zeros(out_s.size, dtype=e.dtype)
    np.maximum.at(out_e, groups, e)
    return out_s, out_e


def excluded_returns(close_time: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """True for each bar return ``(close_time[j-1], close_time[j]]`` that overlaps any interval."""
    s, e = merge_intervals(starts, ends)
    if s.size == 0:
        return np.zeros(close_time.size, dtype=bool)
    k = np.searchsorted(s, close_time, side="left") - 1
    prev = np.concatenate([[np.iinfo(np.int64).min], close_time[:-1]])
    return (k >= 0) & (e[np.maximum(k, 0)] > prev)


@dataclass
class PreparedSeries:
    """Per-symbol arrays the models need: usable returns and their prefix sums."""

    r: np.ndarray
    m: np.ndarray  # benchmark return aligned on this symbol's bars (0 without a benchmark)
    m_log: np.ndarray  # benchmark log price as of each bar's close (0 without a benchmark)
    m_fresh: np.ndarray
    usable: np.ndarray
    cum: dict[str, np.ndarray]

    def total(self, name: str, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Sum over usable returns with index in ``(lo, hi]``."""
        c = self.cum[name]
        if c.size == 1:
            return np.zeros(np.broadcast_shapes(np.shape(lo), np.shape(hi)))
        return c[hi] - c[lo]


def prepare(series: SymbolSeries, benchmark: SymbolSeries | None, excluded: np.ndarray) -> PreparedSeries:
    r = series.r
    usable = ~excluded
    usable[0] = False
    if benchmark is not None and benchmark.bar_us == series.bar_us and np.array_equal(benchmark.close_time, series.close_time):
        # same bar grid (the usual case): the benchmark's own arrays line up, no search
        m, m_log, fresh = benchmark.r, benchmark.log_close, np.ones(r.size, dtype=bool)
    elif benchmark is not None:
        bi, fresh = benchmark.asof(series.close_time)
        m_log = np.where(bi >= 0, benchmark.log_close[np.maximum(bi, 0)], np.nan)
        m = np.diff(m_log, prepend=np.nan)
        both = fresh & np.concatenate([[False], fresh[:-1]])
        usable &= both & np.isfinite(m)
        m = np.where(np.isfinite(m), m, 0.0)
        m_log = np.where(np.isfinite(m_log), m_log, 0.0)
    else:
        m = np.zeros_like(r)
        m_log = np.zeros_like(r)
        fresh = np.ones(r.size, dtype=bool)
    ru = np.where(usable, r, 0.0)
    cum = {"n": np.cumsum(usable, dtype=np.int64), "r": np.cumsum(ru), "rr": np.cumsum(ru * ru)}
    if benchmark is not None:
        mu_ = np.where(usable, m, 0.0)
        cum.update(m=np.cumsum(mu_), mm=np.cumsum(mu_ * mu_), rm=np.cumsum(ru * mu_))
    else:  # without a benchmark every market sum is zero
        zero = np.zeros(1)
        cum.update(m=zero, mm=zero, rm=zero)
    return PreparedSeries(r, m, m_log, fresh, usable, cum)


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
        n = prep.total("n", lo, hi)
        nf = n.astype(np.float64)
        sr, srr = prep.total("r", lo, hi), prep.total("rr", lo, hi)
        sm, smm, srm = prep.total("m", lo, hi), prep.total("mm", lo, hi), prep.total("rm", lo, hi)
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
    leave the window or contains an unusable (excluded) return."""
    j = np.arange(1, max_blocks + 1)
    hh = np.maximum(h, 1)[:, None]
    hi = fit.hi[e][:, None] - (j[None, :] - 1) * hh
    lo = hi - hh
    inside = (lo >= fit.lo[e][:, None]) & (h[:, None] > 0)
    lo_c, hi_c = np.where(inside, lo, 0), np.where(inside, hi, 0)
    full = prep.total("n", lo_c, hi_c) == hh
    sr = prep.total("r", lo_c, hi_c)
    sm = prep.total("m", lo_c, hi_c)
    ar = sr - fit.alpha[e][:, None] * hh - fit.beta[e][:, None] * sm
    return np.where(inside & full, ar, np.nan)


def residual_matrix(prep: PreparedSeries, fit: ModelFit, bars: int) -> np.ndarray:
    """The last ``bars`` estimation residuals of each event, aligned in event time
    (NaN where a return is unusable or before the window): shape ``(events, bars)``."""
    offs = np.arange(bars - 1, -1, -1)
    idx = fit.hi[:, None] - offs[None, :]
    ok = idx > fit.lo[:, None]
    idx_c = np.where(ok, idx, 0)
    res = prep.r[idx_c] - fit.alpha[:, None] - fit.beta[:, None] * prep.m[idx_c]
    return np.where(ok & prep.usable[idx_c], res, np.nan)
