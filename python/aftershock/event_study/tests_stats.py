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
cross-sectional and BMP tests (and KP), standard normal for the others.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "cross_sectional_t",
    "patell_z",
    "bmp_t",
    "kp_adjust",
    "corrado_rank_z",
    "generalized_sign_z",
    "mean_pairwise_correlation",
    "normal_p",
    "student_p",
    "student_quantile",
]


def normal_p(z: float) -> float:
    """Two-sided p-value of a standard normal statistic."""
    if not math.isfinite(z):
        return math.nan
    return math.erfc(abs(z) / math.sqrt(2.0))


def student_p(t: float, df: float) -> float:
    """Two-sided p-value of a Student t statistic (scipy if available, else normal)."""
    if not math.isfinite(t) or not df > 0:
        return math.nan
    try:
        from scipy import stats
    except ImportError:  # pragma: no cover
        return normal_p(t)
    return float(2.0 * stats.t.sf(abs(t), df))


def student_quantile(q: float, df: float) -> float:
    if not df > 0:
        return math.nan
    try:
        from scipy import stats
    except ImportError:  # pragma: no cover
        return {0.975: 1.959963984540054}.get(q, math.nan)
    return float(stats.t.ppf(q, df))


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


def mean_pairwise_correlation(resid: np.ndarray) -> float:
    """Mean off-diagonal correlation of the rows of ``resid`` (NaN = missing; each pair
    uses the positions where both rows are present)."""
    n = resid.shape[0]
    if n < 2:
        return math.nan
    valid = np.isfinite(resid)
    cnt = valid.sum(axis=1)
    mean = np.where(cnt > 0, np.nansum(resid, axis=1) / np.maximum(cnt, 1), 0.0)
    dev = np.where(valid, resid - mean[:, None], 0.0)
    sd = np.sqrt((dev * dev).sum(axis=1) / np.maximum(cnt, 1))
    z = np.where(sd[:, None] > 0, dev / np.where(sd > 0, sd, 1.0)[:, None], 0.0)
    v = valid.astype(np.float64)
    both = v @ v.T
    corr = (z @ z.T) / np.maximum(both, 1.0)
    use = (both > 2) & ~np.eye(n, dtype=bool) & (sd[:, None] > 0) & (sd[None, :] > 0)
    return float(corr[use].mean()) if use.any() else math.nan


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
