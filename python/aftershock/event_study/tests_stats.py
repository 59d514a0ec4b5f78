"""Test statistics across events (one group: an indicator × asset × window).

Notation: ``n`` events, ``CAR_i`` the abnormal return of event i over the window,
``SCAR_i = CAR_i / s_i`` with ``s_i`` the standard deviation of its prediction error
(see :mod:`aftershock.event_study.models`), ``L_i`` the number of estimation returns and
``k`` the number of model parameters. ``docs/study.md`` states, beside each formula,
where it departs from the cited paper.

- Cross-sectional t: ``t = mean(CAR) / (sd(CAR) / sqrt(n))`` (Brown & Warner 1985).
- Patell (1976): ``Z = sum(SCAR_i) / sqrt(sum((L_i - k) / (L_i - k - 2)))``.
- BMP, Boehmer, Musumeci & Poulsen (1991): ``t = mean(SCAR) / (sd(SCAR) / sqrt(n))``.
- Kolari & Pynnönen (2010): ``t_KP = t_BMP * sqrt((1 - r) / (1 + (n - 1) r))`` with
  ``r`` the mean pairwise-complete correlation of the events' estimation residuals.
- Corrado (1989) rank test on standardized ranks (Corrado & Zivney 1992): the event
  window's abnormal return is ranked among ``m_i`` same-length blocks of the estimation
  window, ``U_i = K_i / (m_i + 2)``. ``variance="known"``:
  ``Z = sum(U_i - 1/2) / sqrt(sum(m_i / (12 (m_i + 2))))`` (the exact variance of a
  uniform rank among ``m_i + 1`` values); ``variance="sample"``: Corrado & Zivney's
  own estimate from the ranks of every block position.
- Generalized sign test, Cowan (1992): ``p`` the fraction of positive estimation
  abnormal returns (averaged over events), ``w`` the number of positive event-window
  abnormal returns, ``Z = (w - n p) / sqrt(n p (1 - p))``.

p-values are two-sided: Student t with ``n - 1`` degrees of freedom for the
cross-sectional and BMP tests (and KP), standard normal for the others: SciPy's
``scipy.special.stdtr``/``ndtr`` (the functions behind ``scipy.stats.t``/``norm``,
without their per-call overhead).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy import special as _special

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
    "EventCorrelations",
    "normal_p",
    "student_p",
    "student_quantile",
]


def normal_p(z: float) -> float:
    """Two-sided p-value of a standard normal statistic."""
    if not math.isfinite(z):
        return math.nan
    return float(2.0 * _special.ndtr(-abs(z)))


def student_p(t: float, df: float) -> float:
    """Two-sided p-value of a Student t statistic with ``df`` degrees of freedom."""
    if not math.isfinite(t) or not df > 0:
        return math.nan
    return float(2.0 * _special.stdtr(df, -abs(t)))


@lru_cache(maxsize=4096)
def student_quantile(q: float, df: float) -> float:
    """The ``q`` quantile of Student's t with ``df`` degrees of freedom."""
    if not df > 0:
        return math.nan
    return float(_special.stdtrit(df, q))


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


def _pairwise_block(xa, va, xb, vb, min_shared: int) -> np.ndarray:
    """Pairwise-complete correlations of the rows of ``xa`` with those of ``xb`` (values
    zeroed where missing, ``va``/``vb`` the presence masks as floats)."""
    # einsum, not BLAS matmul: multithreaded OpenBLAS on these small products can stall
    # for whole seconds when Polars' thread pool is busy, and the products are small.
    both = np.einsum("ik,jk->ij", va, vb)  # shared positions
    sa = np.einsum("ik,jk->ij", xa, vb)  # sum of row a over the positions row b has
    sb = np.einsum("ik,jk->ij", va, xb)
    saa = np.einsum("ik,jk->ij", xa * xa, vb)
    sbb = np.einsum("ik,jk->ij", va, xb * xb)
    sab = np.einsum("ik,jk->ij", xa, xb)
    with np.errstate(divide="ignore", invalid="ignore"):
        nn = np.maximum(both, 1.0)
        var_a, var_b = saa - sa * sa / nn, sbb - sb * sb / nn
        corr = (sab - sa * sb / nn) / np.sqrt(var_a * var_b)
    corr[(both < min_shared) | ~(var_a > 0) | ~(var_b > 0)] = np.nan
    return corr


def pairwise_correlation(resid: np.ndarray, min_shared: int = 3) -> np.ndarray:
    """Pairwise-complete Pearson correlations of the rows of ``resid`` (NaN = missing).

    Each pair is centred and scaled on the positions where *both* rows are present, so
    every entry is an ordinary sample correlation of two equally long series and lies
    in [-1, 1] (clipped against rounding). NaN where fewer than ``min_shared`` positions
    are shared or either series is constant on them.
    """
    n, m = resid.shape
    if n == 0:
        return np.zeros((0, 0))
    valid = np.isfinite(resid)
    v = valid.astype(np.float64)
    cnt = v.sum(axis=1)
    # Centre each row on its own mean first: correlations are shift-invariant and the
    # sums below then cancel far less (residuals are tiny numbers around a tiny mean).
    x = np.where(valid, resid, 0.0)
    x = np.where(valid, x - (x.sum(axis=1) / np.maximum(cnt, 1.0))[:, None], 0.0)
    corr = np.full((n, n), np.nan)
    full = np.flatnonzero(cnt == m)
    if full.size and m >= min_shared:  # complete rows: one product of standardized rows
        ss = np.sqrt(np.einsum("ik,ik->i", x[full], x[full]))
        z = x[full] / np.where(ss > 0, ss, np.nan)[:, None]
        corr[np.ix_(full, full)] = np.einsum("ik,jk->ij", z, z)
    part = np.flatnonzero(cnt < m)
    if part.size:  # rows with missing values: the pairwise formulas, against every row
        block = _pairwise_block(x[part], v[part], x, v, min_shared)
        corr[part, :] = block
        corr[:, part] = block.T
    return np.clip(corr, -1.0, 1.0)


def mean_offdiagonal(corr: np.ndarray) -> float:
    n = corr.shape[0]
    if n < 2:
        return math.nan
    off = corr[~np.eye(n, dtype=bool)]
    off = off[np.isfinite(off)]
    return float(off.mean()) if off.size else math.nan


class EventCorrelations:
    """The pairwise-complete correlations of a set of events' residual series (rows of
    ``resid``), for the sign-adjusted mean over any subset of them (Kolari–Pynnönen's
    r̄ of a group of events).

    When every row of the subset is complete and not constant, each correlation is the
    dot product of two standardized rows ``z_i·z_j`` and the sum over the ordered pairs
    ``i ≠ j`` of ``s_i s_j z_i·z_j`` is ``|Σ s_i z_i|² − Σ |z_i|²``: O(n·m), with no
    n × n matrix. Otherwise the pairwise matrix (:func:`pairwise_correlation`) is built
    once and averaged as :func:`mean_offdiagonal` does.
    """

    def __init__(self, resid: np.ndarray, min_shared: int = 3):
        self.resid = resid
        self.min_shared = min_shared
        n, m = resid.shape
        valid = np.isfinite(resid)
        complete = valid.all(axis=1) & (m >= min_shared)
        x = np.where(complete[:, None], resid, 0.0)
        x = x - (x.sum(axis=1) / max(m, 1))[:, None]
        norm = np.sqrt(np.einsum("ik,ik->i", x, x))
        self.fast = complete & (norm > 0)
        self.z = x / np.where(self.fast, norm, 1.0)[:, None]
        self._matrix: np.ndarray | None = None

    def mean(self, rows: np.ndarray, signs: np.ndarray) -> float:
        """The mean of ``signs_i * signs_j * corr_ij`` over the pairs ``i ≠ j`` of ``rows``."""
        n = rows.size
        if n < 2:
            return math.nan
        if self.fast[rows].all():
            z = self.z[rows]
            v = signs @ z
            total = float(v @ v - np.einsum("ik,ik->", z, z))
            return min(max(total / (n * (n - 1)), -1.0), 1.0)
        if self._matrix is None:
            self._matrix = pairwise_correlation(self.resid, self.min_shared)
        return mean_offdiagonal(self._matrix[np.ix_(rows, rows)] * np.outer(signs, signs))


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


def _block_ranks(ar0: np.ndarray, blocks: np.ndarray) -> np.ndarray:
    """Standardized ranks ``K / (m + 2)`` of every value of each row (the event in
    column 0, the blocks after it) among that row's valid values; NaN where missing."""
    vals = np.column_stack([ar0, blocks])
    valid = np.isfinite(vals)
    m1 = valid.sum(axis=1)  # m + 1 values per row
    below = np.sum(valid[:, None, :] & (vals[:, None, :] < vals[:, :, None]), axis=2)
    ties = np.sum(valid[:, None, :] & (vals[:, None, :] == vals[:, :, None]), axis=2)
    k = 1.0 + below + 0.5 * (ties - 1)
    return np.where(valid, k / (m1 + 1.0)[:, None], np.nan)


def corrado_rank_z(ar0: np.ndarray, blocks: np.ndarray, variance: str = "known") -> float:
    """Corrado rank Z. ``variance="known"``: the exact variance of a uniform rank;
    ``"sample"``: Corrado & Zivney's (1992) estimate from the cross-section of ranks at
    every block position (event time), ``S_U^2 = mean_t (sum_i (U_it - 1/2) / sqrt(N_t))^2``
    and ``Z = sum_i (U_i0 - 1/2) / (sqrt(N) S_U)``."""
    k, m = _ranks(ar0, blocks)
    ok = m > 0
    if not ok.any():
        return math.nan
    if variance == "known":
        u = k[ok] / (m[ok] + 2.0)
        var = m[ok] / (12.0 * (m[ok] + 2.0))
        return float(np.sum(u - 0.5) / math.sqrt(var.sum()))
    u = _block_ranks(ar0[ok], blocks[ok]) - 0.5
    n_t = np.isfinite(u).sum(axis=0)
    used = n_t > 0
    per_t = np.nansum(u[:, used], axis=0) / np.sqrt(n_t[used])
    s_u = math.sqrt(float(np.mean(per_t * per_t)))
    if not s_u > 0:
        return math.nan
    return float(np.sum(u[:, 0]) / (math.sqrt(u.shape[0]) * s_u))


def generalized_sign_z(ar0: np.ndarray, blocks: np.ndarray) -> float:
    """Cowan's generalized sign Z; ``p`` is the mean over events of the fraction of
    positive values in each row of ``blocks`` (NaN = missing)."""
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
