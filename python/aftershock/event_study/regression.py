"""OLS with heteroskedasticity-robust standard errors, and the sensitivity regressions.

For ``y = X b + e`` with ``n`` rows and ``k`` columns (intercept included):

- ``b = (X'X)^{-1} X'y``; ``R^2 = 1 - SSR / SST`` (centred).
- HC1 (MacKinnon & White 1985; White 1980 scaled):
  ``V = n/(n-k) (X'X)^{-1} X' diag(e_i^2) X (X'X)^{-1}``.
- HC3 (MacKinnon & White 1985; Long & Ervin 2000):
  ``V = (X'X)^{-1} X' diag(e_i^2 / (1 - h_ii)^2) X (X'X)^{-1}`` with ``h_ii`` the leverage.

These are the definitions statsmodels uses (``OLS(...).fit(cov_type="HC1"/"HC3")``);
the tests compare against it to 1e-10.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special as _special

from aftershock.event_study.tests_stats import student_p, student_quantile

__all__ = ["GroupOLS", "OLSResult", "ols", "ols_groups"]


@dataclass
class OLSResult:
    n: int
    coef: np.ndarray
    se_hc1: np.ndarray
    se_hc3: np.ndarray
    r2: float

    @property
    def t_hc1(self) -> np.ndarray:
        return self.coef / self.se_hc1

    @property
    def t_hc3(self) -> np.ndarray:
        return self.coef / self.se_hc3

    @property
    def df(self) -> int:
        return self.n - self.coef.size


def ols(x: np.ndarray, y: np.ndarray) -> OLSResult | None:
    """OLS of ``y`` on ``x`` (``x`` already holds the intercept column). ``None`` when
    the design is rank-deficient or has no residual degrees of freedom."""
    n, k = x.shape
    if n <= k:
        return None
    q, r = np.linalg.qr(x)
    if np.any(np.abs(np.diag(r)) <= 1e-12 * max(1.0, np.abs(r).max())):
        return None
    coef = np.linalg.solve(r, q.T @ y)
    resid = y - x @ coef
    r_inv = np.linalg.solve(r, np.eye(k))
    xtx_inv = r_inv @ r_inv.T
    lev = np.sum(q * q, axis=1)
    xe = x * resid[:, None]
    meat0 = xe.T @ xe
    v1 = xtx_inv @ meat0 @ xtx_inv * (n / (n - k))
    with np.errstate(divide="ignore", invalid="ignore"):  # leverage 1 makes HC3 undefined (NaN)
        xe3 = x * (resid / (1.0 - lev))[:, None]
        v3 = xtx_inv @ (xe3.T @ xe3) @ xtx_inv
    sst = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(resid @ resid) / sst if sst > 0 else math.nan
    return OLSResult(n, coef, np.sqrt(np.diag(v1)), np.sqrt(np.diag(v3)), r2)


def coef_row(res: OLSResult, j: int, cov: str) -> dict:
    """One coefficient's figures; the confidence interval and p-value use ``cov``
    (``"HC1"`` or ``"HC3"``) and a Student t with ``n - k`` degrees of freedom."""
    se = res.se_hc3[j] if cov == "HC3" else res.se_hc1[j]
    t = res.coef[j] / se if se > 0 else math.nan
    q = student_quantile(0.975, res.df)
    return {
        "slope": float(res.coef[j]),
        "se_hc1": float(res.se_hc1[j]),
        "t_hc1": float(res.t_hc1[j]) if res.se_hc1[j] > 0 else math.nan,
        "se_hc3": float(res.se_hc3[j]),
        "t_hc3": float(res.t_hc3[j]) if res.se_hc3[j] > 0 else math.nan,
        "p": student_p(t, res.df),
        "ci_low": float(res.coef[j] - q * se),
        "ci_high": float(res.coef[j] + q * se),
        "r2": res.r2,
        "n": res.n,
    }


@dataclass
class GroupOLS:
    """OLS fitted separately in each of ``G`` groups (arrays over groups); ``ok`` is
    false where :func:`ols` would return None (too few rows, a singular design)."""

    n: np.ndarray
    coef: np.ndarray  # (G, k)
    se_hc1: np.ndarray
    se_hc3: np.ndarray
    r2: np.ndarray
    ok: np.ndarray

    def rows(self, j: int, cov: str) -> dict:
        """Coefficient ``j``'s columns, as :func:`coef_row` gives them for one fit."""
        df = (self.n - self.coef.shape[1]).astype(np.float64)
        se = self.se_hc3[:, j] if cov == "HC3" else self.se_hc1[:, j]
        b = self.coef[:, j]
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(se > 0, b / se, np.nan)
            t1 = np.where(self.se_hc1[:, j] > 0, b / self.se_hc1[:, j], np.nan)
            t3 = np.where(self.se_hc3[:, j] > 0, b / self.se_hc3[:, j], np.nan)
        q = _special.stdtrit(df, 0.975)
        return {
            "slope": b, "se_hc1": self.se_hc1[:, j], "t_hc1": t1, "se_hc3": self.se_hc3[:, j], "t_hc3": t3,
            "p": np.where(np.isfinite(t), 2.0 * _special.stdtr(df, -np.abs(t)), np.nan),
            "ci_low": b - q * se, "ci_high": b + q * se, "r2": self.r2, "n": self.n,
        }


def ols_groups(x: np.ndarray, y: np.ndarray, g: np.ndarray, n_groups: int) -> GroupOLS:
    """:func:`ols` in every group at once: ``x`` (rows × k, intercept included), ``y``
    and the group ``g`` of each row. Sums per group come from ``bincount``; each group's
    k × k system is solved in one batched call."""
    rows, k = x.shape

    def per_group(w: np.ndarray) -> np.ndarray:
        return np.bincount(g, weights=w, minlength=n_groups)

    def gram(w: np.ndarray) -> np.ndarray:  # Σ x x' w per group: (G, k, k)
        out = np.empty((n_groups, k, k))
        for a in range(k):
            for b in range(a, k):
                out[:, a, b] = out[:, b, a] = per_group(x[:, a] * x[:, b] * w)
        return out

    n = np.bincount(g, minlength=n_groups)
    xtx = gram(np.ones(rows))
    xty = np.stack([per_group(x[:, a] * y) for a in range(k)], axis=1)
    # singular designs (a constant regressor, collinear columns): the smallest eigenvalue
    # of the scaled X'X is zero up to rounding
    d = np.sqrt(np.einsum("gii->gi", xtx))
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = xtx / (d[:, :, None] * d[:, None, :])
    ok = (n > k) & np.all(d > 0, axis=1)
    scaled[~ok] = np.eye(k)
    ok &= np.linalg.eigvalsh(scaled)[:, 0] > 1e-10
    xtx_safe = np.where(ok[:, None, None], xtx, np.eye(k))
    inv = np.linalg.inv(xtx_safe)
    coef = np.einsum("gab,gb->ga", inv, xty)
    resid = y - np.einsum("ia,ia->i", x, coef[g])
    lev = np.einsum("ia,iab,ib->i", x, inv[g], x)
    e2 = resid * resid
    with np.errstate(divide="ignore", invalid="ignore"):
        meat3 = gram(e2 / (1.0 - lev) ** 2)
        v1 = inv @ gram(e2) @ inv * (n / np.maximum(n - k, 1))[:, None, None]
        v3 = inv @ meat3 @ inv
        ybar = per_group(y) / np.maximum(n, 1)
        sst = per_group((y - ybar[g]) ** 2)
        r2 = np.where(sst > 0, 1.0 - per_group(e2) / sst, np.nan)
    se1 = np.sqrt(np.einsum("gii->gi", v1))
    se3 = np.sqrt(np.einsum("gii->gi", v3))
    return GroupOLS(n, coef, se1, se3, r2, ok)
