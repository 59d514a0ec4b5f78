"""Test statistics across events (one group: an indicator × asset × window).

Notation: ``n`` events, ``CAR_i`` the abnormal return of event i over the window,
``SCAR_i = CAR_i / s_i`` with ``s_i`` the standard deviation of its prediction error
(see :mod:`aftershock.event_study.models`), ``L_i`` the number of estimation returns and
``k`` the number of model parameters.

- Cross-sectional t: ``t = mean(CAR) / (sd(CAR) / sqrt(n))`` (Brown & Warner 1985).
- Patell (1976): ``Z = sum(SCAR_i) / sqrt(sum((L_i - k) / (L_i - k - 2)))``.
- BMP, Boehmer, Musumeci & Poulsen (1991): ``t = mean(SCAR) / (sd(SCAR) / sqrt(n))``.
- Kolari & Pynnönen (2010): ``t_KP = t_BMP * sqrt((1 - r) / (1 + (n - 1) r))`` with
  ``r`` the mean pairwise correlation of the events' estimation residuals.
- Corrado (1989) rank test in the standardized-rank form of Corrado & Zivney (1992):
  the event window's abnormal return is ranked among ``m_i`` same-length blocks of the
  estimation window, ``U_i = K_i / (m_i + 2)``, and
  ``Z = sum(U_i - 1/2) / sqrt(sum(m_i / (12 (m_i + 2))))`` (the exact variance of a
  uniform rank among ``m_i + 1`` values).
- Generalized sign test, Cowan (1992): ``p`` the fraction of positive estimation-block
  abnormal returns (averaged over events), ``w`` the number of positive event-window
  abnormal returns, ``Z = (w - n p) / sqrt(n p (1 - p))``.

p-values are two-sided: Student t with ``n - 1`` degrees of freedom for the
cross-sectional and BMP tests (and KP), standard normal for the others. The t
distribution is computed here (regularized incomplete beta by continued fraction), so
the library needs no SciPy at run time.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

__all__ = [
    "cross_sectional_t",
    "patell_z",
    "bmp_t",
    "kp_adjust",
    "corrado_rank_z",
    "generalized_sign_z",
    "mean_pairwise_correlation",
    "pairwise_correlation",
    "mean_offdiagonal",
    "normal_p",
    "student_p",
    "student_quantile",
]


def normal_p(z: float) -> float:
    """Two-sided p-value of a standard normal statistic."""
    if not math.isfinite(z):
        return math.nan
    return math.erfc(abs(z) / math.sqrt(2.0))


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularized incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-16:
            break
    return h


def _betai(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta function ``I_x(a, b)``."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def student_p(t: float, df: float) -> float:
    """Two-sided p-value of a Student t statistic: ``I_{df/(df+t^2)}(df/2, 1/2)``."""
    if not math.isfinite(t) or not df > 0:
        return math.nan
    return _betai(0.5 * df, 0.5, df / (df + t * t))


@lru_cache(maxsize=4096)
def student_quantile(q: float, df: float) -> float:
    """The ``q`` quantile (``q > 1/2``) of Student's t, by bisection on :func:`student_p`."""
    if not df > 0:
        return math.nan
    target = 2.0 * (1.0 - q)
    lo, hi = 0.0, 1.0
    while student_p(hi, df) > target:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if student_p(mid, df) > target:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-15 * hi:
            break
    return 0.5 * (lo + hi)


def cross_sectional_t(car: np.ndarray) -> float:
    n = car.size
    if n < 2:
        return math.nan
    sd = car.std(ddof=1)
    return float(car.mean() / (sd / math.sqrt(n))) if sd > 0 else math.nan


def patell_z(scar: np.ndarray, n_est: np.ndarray, k: int) -> float:
    dof = n_est.astype(np.float64) - k
    ok = dof > 2
    if not ok.any():
        return math.nan
    return float(scar[ok].sum() / math.sqrt(np.sum(dof[ok] / (dof[ok] - 2.0))))


def bmp_t(scar: np.ndarray) -> float:
    return cross_sectional_t(scar)


def kp_adjust(t_bmp: float, rbar: float, n: int) -> float:
    if not (math.isfinite(t_bmp) and math.isfinite(rbar)) or n < 2:
        return math.nan
    denom = 1.0 + (n - 1) * rbar
    if denom <= 0 or rbar >= 1:
        return math.nan
    return t_bmp * math.sqrt((1.0 - rbar) / denom)


def pairwise_correlation(resid: np.ndarray) -> np.ndarray:
    """Correlation matrix of the rows of ``resid`` (NaN = missing): each row is centred
    and scaled over its own present values, each pair averages over the positions where
    both are present; NaN where fewer than three positions are shared."""
    n = resid.shape[0]
    valid = np.isfinite(resid)
    cnt = valid.sum(axis=1)
    mean = np.where(cnt > 0, np.nansum(resid, axis=1) / np.maximum(cnt, 1), 0.0)
    dev = np.where(valid, resid - mean[:, None], 0.0)
    sd = np.sqrt((dev * dev).sum(axis=1) / np.maximum(cnt, 1))
    z = dev / np.where(sd > 0, sd, 1.0)[:, None]
    v = valid.astype(np.float64)
    # einsum, not BLAS matmul: multithreaded OpenBLAS on these small products can stall
    # for milliseconds when Polars' thread pool is busy, and the products are tiny.
    both = np.einsum("ik,jk->ij", v, v)
    corr = np.einsum("ik,jk->ij", z, z) / np.maximum(both, 1.0)
    bad = (both < 3) | (sd[:, None] <= 0) | (sd[None, :] <= 0)
    corr[bad] = np.nan
    return corr if n else np.zeros((0, 0))


def mean_offdiagonal(corr: np.ndarray) -> float:
    n = corr.shape[0]
    if n < 2:
        return math.nan
    off = corr[~np.eye(n, dtype=bool)]
    off = off[np.isfinite(off)]
    return float(off.mean()) if off.size else math.nan


def mean_pairwise_correlation(resid: np.ndarray) -> float:
    """Mean off-diagonal correlation of the rows of ``resid`` (Kolari & Pynnönen's r)."""
    return mean_offdiagonal(pairwise_correlation(resid))


def _ranks(ar0: np.ndarray, blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rank of each event's abnormal return among itself and its valid blocks
    (1 = smallest, ties averaged) and the number of valid blocks."""
    valid = np.isfinite(blocks)
    m = valid.sum(axis=1)
    below = np.sum(valid & (blocks < ar0[:, None]), axis=1)
    ties = np.sum(valid & (blocks == ar0[:, None]), axis=1)
    return 1.0 + below + 0.5 * ties, m


def corrado_rank_z(ar0: np.ndarray, blocks: np.ndarray) -> float:
    k, m = _ranks(ar0, blocks)
    ok = m > 0
    if not ok.any():
        return math.nan
    u = k[ok] / (m[ok] + 2.0)
    var = m[ok] / (12.0 * (m[ok] + 2.0))
    return float(np.sum(u - 0.5) / math.sqrt(var.sum()))


def generalized_sign_z(ar0: np.ndarray, blocks: np.ndarray) -> float:
    valid = np.isfinite(blocks)
    m = valid.sum(axis=1)
    ok = m > 0
    n = int(ok.sum())
    if n == 0:
        return math.nan
    p = float(np.mean(np.sum(valid & (blocks > 0), axis=1)[ok] / m[ok]))
    if not 0 < p < 1:
        return math.nan
    w = float(np.sum(ar0[ok] > 0))
    return (w - n * p) / math.sqrt(n * p * (1.0 - p))
