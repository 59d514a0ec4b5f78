"""Overfitting statistics of a sweep: the deflated Sharpe ratio and the probability of
backtest overfitting.

Both read a matrix of per-period returns, one row per period and one column per
variant. aftershock's period is the calendar day: the close-of-day returns each
variant's Sharpe ratio is computed from (``Sweep.daily_returns()`` gets them from the
engine without building an equity path per variant). Every Sharpe ratio here is per
period (not annualized) unless a name says otherwise.

- :func:`deflated_sharpe_ratio` (Bailey and López de Prado, 2014): the probability
  that the best variant's true Sharpe ratio beats the best one expected from
  ``trials`` variants with no skill, given the dispersion of the variants' Sharpe
  ratios and the skewness and kurtosis of the chosen variant's returns.
- :func:`pbo` (Bailey, Borwein, López de Prado and Zhu, 2017): combinatorially
  symmetric cross-validation (CSCV). The periods are cut into ``splits`` blocks;
  for each way of taking half the blocks as in-sample, the variant with the best
  in-sample Sharpe ratio is ranked among all variants on the other half. The PBO is
  the share of splits where it ranks at or below the median (logit <= 0).

Distributions come from :mod:`scipy.stats`; the CSCV splits are evaluated with NumPy
over all combinations at once (no Python loop per variant or per split).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from scipy import special, stats

from aftershock.errors import ConfigError, InputError

__all__ = [
    "expected_max_sharpe",
    "probabilistic_sharpe_ratio",
    "deflated_sharpe_ratio",
    "pbo",
    "PBO",
    "overfitting",
    "Overfitting",
]


def expected_max_sharpe(trials: Any, sharpe_var: Any) -> Any:
    """Expected maximum of ``trials`` Sharpe ratios with zero mean and variance
    ``sharpe_var`` (the false-strategy benchmark SR0 of the deflated Sharpe ratio):
    ``sqrt(V) * ((1 - g) * Z^-1(1 - 1/N) + g * Z^-1(1 - 1/(N e)))``, ``g`` the
    Euler-Mascheroni constant. One trial: 0."""
    n = np.asarray(trials, dtype=float)
    g = np.euler_gamma
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (1 - g) * stats.norm.ppf(1 - 1 / n) + g * stats.norm.ppf(1 - 1 / (n * math.e))
    out = np.sqrt(np.asarray(sharpe_var, dtype=float)) * np.where(n > 1, z, 0.0)
    return out[()] if out.ndim == 0 else out


def probabilistic_sharpe_ratio(sharpe: Any, benchmark: Any, observations: Any, skew: Any = 0.0,
                               kurtosis: Any = 3.0) -> Any:
    """P(true Sharpe > ``benchmark``) for a Sharpe ratio estimated on ``observations``
    returns with that skewness and (non-excess) kurtosis:
    ``Phi((SR - SR*) sqrt(T - 1) / sqrt(1 - skew SR + (kurtosis - 1)/4 SR^2))``."""
    sr = np.asarray(sharpe, dtype=float)
    denom = 1 - np.asarray(skew, dtype=float) * sr + (np.asarray(kurtosis, dtype=float) - 1) / 4 * sr**2
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (sr - np.asarray(benchmark, dtype=float)) * np.sqrt(np.asarray(observations, dtype=float) - 1) / np.sqrt(denom)
    out = stats.norm.cdf(z)
    return out[()] if np.ndim(out) == 0 else out


def deflated_sharpe_ratio(sharpe: Any, trials: Any, sharpe_var: Any, observations: Any, skew: Any = 0.0,
                          kurtosis: Any = 3.0) -> Any:
    """The deflated Sharpe ratio: :func:`probabilistic_sharpe_ratio` of the chosen
    variant's per-period ``sharpe`` against :func:`expected_max_sharpe` of
    ``trials`` variants whose per-period Sharpe ratios have variance ``sharpe_var``.

    >>> from aftershock.research import deflated_sharpe_ratio
    >>> # the paper's numerical example: best of 100 trials, annualized SR 2.5 over five
    >>> # years of daily returns, annualized SR variance 1/2, skew -3, kurtosis 10
    >>> round(float(deflated_sharpe_ratio(2.5 / 250**0.5, 100, 0.5 / 250, 1250, -3, 10)), 4)
    0.9004
    """
    return probabilistic_sharpe_ratio(sharpe, expected_max_sharpe(trials, sharpe_var), observations, skew, kurtosis)


# ---------------------------------------------------------------------------- CSCV


def _returns_matrix(returns: Any) -> np.ndarray:
    if isinstance(returns, pl.DataFrame):
        returns = returns.to_numpy()
    m = np.asarray(returns, dtype=float)
    if m.ndim != 2:
        raise InputError(f"returns must be a periods x variants matrix, got {m.ndim} dimensions", column="returns")
    bad = ~np.isfinite(m)
    if bad.any():
        row, col = (int(x) for x in np.argwhere(bad)[0])
        raise InputError(f"returns hold a NaN or infinite value (variant {col})", column="returns", row=row)
    return m


def _sharpe_from_sums(s1: np.ndarray, s2: np.ndarray, n: Any) -> np.ndarray:
    """Per-period Sharpe ratios (ddof=1) from sums and sums of squares over ``n``
    periods; a flat series (zero variance) scores 0."""
    mean = s1 / n
    var = np.maximum(s2 - s1 * mean, 0.0) / (n - 1)
    sd = np.sqrt(var)
    tiny = sd <= 1e-12 * np.maximum(np.abs(mean), 1e-300)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(tiny | (var == 0), 0.0, mean / np.where(sd > 0, sd, 1.0))


@dataclass(frozen=True)
class PBO:
    """The outcome of CSCV: ``pbo`` (share of splits whose in-sample best ranks at or
    below the out-of-sample median), the ``logits`` of its relative rank per split,
    the in- and out-of-sample Sharpe ratios of the chosen variant per split (for the
    performance-degradation plot), ``splits`` (S) and ``combinations``."""

    pbo: float
    logits: np.ndarray
    is_sharpe: np.ndarray
    oos_sharpe: np.ndarray
    best: np.ndarray
    splits: int
    periods_used: int

    @property
    def combinations(self) -> int:
        return len(self.logits)

    @property
    def degradation(self) -> tuple[float, float]:
        """Slope and intercept of the least-squares line of out- on in-sample Sharpe."""
        if len(self.is_sharpe) < 2 or np.ptp(self.is_sharpe) == 0:
            return (math.nan, math.nan)
        fit = stats.linregress(self.is_sharpe, self.oos_sharpe)
        return (float(fit.slope), float(fit.intercept))


def pbo(returns: Any, splits: int = 16, *, chunk: int | None = None) -> PBO:
    """Probability of backtest overfitting by CSCV over ``returns`` (periods x variants).

    The first ``T mod splits`` periods are dropped so that the ``splits`` blocks are
    equal and contiguous. For each of the C(S, S/2) in-sample halves the variant with
    the highest in-sample Sharpe ratio (the first on ties) is ranked among all
    variants on the other half (ties take their average rank), ``w = rank / (N + 1)``
    and its logit ``log(w / (1 - w))`` recorded; PBO is the share of logits <= 0.
    Sharpe ratios are per period, ddof=1; a flat series scores 0.

    Evaluated from per-block sums with NumPy, ``chunk`` pairs of complementary
    halves at a time (default: as many as keep each chunk's matrices near 2 million
    floats); each half's Sharpe ratios are computed once and serve both splits it is
    part of.
    """
    m = _returns_matrix(returns)
    if isinstance(splits, bool) or not isinstance(splits, int) or splits < 2 or splits % 2:
        raise ConfigError(f"splits must be an even integer >= 2, got {splits!r}", column="splits")
    t, n = m.shape
    if n < 2:
        raise InputError(f"CSCV needs at least 2 variants, got {n}", column="returns")
    size = t // splits
    if size < 2:
        raise InputError(f"{t} periods cannot make {splits} blocks of at least 2 periods", column="returns")
    used = m[t - size * splits:].reshape(splits, size, n)
    s1 = used.sum(axis=1)  # blocks x variants
    s2 = (used * used).sum(axis=1)
    half = splits // 2
    combos = np.array(list(itertools.combinations(range(splits), half)), dtype=np.intp)
    masks = np.zeros((len(combos), splits))
    np.put_along_axis(masks, combos, 1.0, axis=1)
    # each half's complement is another half: one Sharpe evaluation per half serves as
    # the in-sample side of its split and the out-of-sample side of the complement's
    codes = masks.astype(np.int64) @ (np.int64(1) << np.arange(splits, dtype=np.int64))
    order = np.argsort(codes)
    comp = order[np.searchsorted(codes[order], (np.int64(1) << splits) - 1 - codes)]
    first = np.flatnonzero(np.arange(len(combos)) < comp)
    periods = half * size
    if chunk is None:
        chunk = max(1, 1_000_000 // n)
    lam = np.empty(len(combos))
    is_best = np.empty(len(combos))
    oos_best = np.empty(len(combos))
    best = np.empty(len(combos), dtype=np.intp)
    for lo in range(0, len(first), chunk):
        a = first[lo:lo + chunk]
        b = comp[a]
        mk = masks[np.concatenate([a, b])]
        sr = _sharpe_from_sums(mk @ s1, mk @ s2, periods)
        sr_a, sr_b = sr[:len(a)], sr[len(a):]
        for idx, sr_in, sr_out in ((a, sr_a, sr_b), (b, sr_b, sr_a)):
            k = np.argmax(sr_in, axis=1)
            rows = np.arange(len(k))
            chosen = sr_out[rows, k][:, None]
            rank = (sr_out < chosen).sum(axis=1) + ((sr_out == chosen).sum(axis=1) + 1) / 2.0
            lam[idx] = special.logit(rank / (n + 1))
            is_best[idx] = sr_in[rows, k]
            oos_best[idx] = chosen[:, 0]
            best[idx] = k
    return PBO(
        pbo=float(np.mean(lam <= 0)),
        logits=lam,
        is_sharpe=is_best,
        oos_sharpe=oos_best,
        best=best,
        splits=splits,
        periods_used=size * splits,
    )


# ---------------------------------------------------------------------------- summary


@dataclass(frozen=True)
class Overfitting:
    """Overfitting statistics of one sweep (see :func:`overfitting`)."""

    variants: int
    periods: int
    best: int
    best_sharpe: float
    sharpe_std: float
    skew: float
    kurtosis: float
    expected_max_sharpe: float
    deflated_sharpe: float
    pbo: float
    cscv: PBO | None
    periods_per_year: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "variants": self.variants,
            "periods": self.periods,
            "best_variant": self.best,
            "best_sharpe_annualized": self.best_sharpe * math.sqrt(self.periods_per_year),
            "sharpe_std_annualized": self.sharpe_std * math.sqrt(self.periods_per_year),
            "best_skew": self.skew,
            "best_kurtosis": self.kurtosis,
            "expected_max_sharpe_annualized": self.expected_max_sharpe * math.sqrt(self.periods_per_year),
            "deflated_sharpe": self.deflated_sharpe,
            "pbo": self.pbo,
            "cscv_splits": self.cscv.splits if self.cscv is not None else None,
            "cscv_combinations": self.cscv.combinations if self.cscv is not None else None,
        }

    def frame(self) -> pl.DataFrame:
        """One row per figure: ``figure``, ``value`` (as text-free floats)."""
        d = self.to_dict()
        return pl.DataFrame({"figure": list(d), "value": [None if v is None else float(v) for v in d.values()]})

    def __repr__(self) -> str:
        d = self.to_dict()
        return (f"<Overfitting {d['variants']} variants x {d['periods']} days: best #{d['best_variant']} "
                f"Sharpe {d['best_sharpe_annualized']:.2f}/yr, deflated Sharpe {self.deflated_sharpe:.3f}, "
                f"PBO {self.pbo:.3f}>")


def overfitting(returns: Any, *, splits: int = 16, periods_per_year: float = 365.0) -> Overfitting:
    """The deflated Sharpe ratio of the best variant and the PBO of the selection,
    from a periods x variants matrix of returns.

    The best variant is the one with the highest per-period Sharpe ratio (ddof=1;
    flat: 0). ``trials`` is the number of variants, their Sharpe variance is taken
    across variants (ddof=1), skewness and kurtosis (non-excess, bias-corrected off)
    of the best variant's returns come from :mod:`scipy.stats`. ``splits`` is lowered
    to the largest even number that leaves 2 periods per block on short samples.
    """
    m = _returns_matrix(returns)
    t, n = m.shape
    if t < 4:
        raise InputError(f"need at least 4 periods of returns, got {t}", column="returns")
    sr = _sharpe_from_sums(m.sum(axis=0), (m * m).sum(axis=0), t)
    best = int(np.argmax(sr))
    r = m[:, best]
    flat = np.ptp(r) == 0
    skew = 0.0 if flat else float(stats.skew(r))
    kurt = 3.0 if flat else float(stats.kurtosis(r, fisher=True) + 3.0)
    var = float(np.var(sr, ddof=1)) if n > 1 else 0.0
    sr0 = float(expected_max_sharpe(n, var))
    dsr = float(deflated_sharpe_ratio(sr[best], n, var, t, skew, kurt))
    s = min(splits, 2 * (t // 4))
    cscv = pbo(m, s) if n > 1 and s >= 2 else None
    return Overfitting(
        variants=n, periods=t, best=best, best_sharpe=float(sr[best]), sharpe_std=math.sqrt(var), skew=skew,
        kurtosis=kurt, expected_max_sharpe=sr0, deflated_sharpe=dsr,
        pbo=cscv.pbo if cscv is not None else math.nan, cscv=cscv, periods_per_year=float(periods_per_year),
    )
