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

from aftershock.event_study.tests_stats import student_p, student_quantile

__all__ = ["OLSResult", "ols"]


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
