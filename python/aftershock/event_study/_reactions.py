"""One symbol's part of the study: its event clock, estimation fits and reactions.

Everything here is vectorized over events × windows (NumPy arrays, ``searchsorted``
for the as-of lookups, prefix sums for every window and estimation sum): Python runs
once per symbol, never per event or bar.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aftershock.event_study import models as _models
from aftershock.event_study._inputs import Settings
from aftershock.event_study.returns import (
    BENCHMARK_GAP,
    GAP_REACTION,
    IMPRECISE_TIME,
    OK,
    SHORT_ESTIMATION,
    SymbolSeries,
)
from aftershock.prices._sessions import is_open, next_open

__all__ = ["EventClock", "SymbolResult", "event_clock", "estimation", "symbol_reactions"]


@dataclass
class EventClock:
    """When each event's offsets are measured from, for one symbol.

    ``release`` is the calendar time ``T`` (the start of the precision interval: the
    last instant surely before the release); ``after`` is the first instant surely after
    it at which the symbol trades: ``T + precision``, moved to the next session open
    when the symbol has a declared session calendar and is closed then. Zero and
    negative offsets count from ``release``, positive ones from ``after``. ``gap``
    marks releases while the market was closed, at ``T`` or at the end of the precision
    interval (declared sessions only).
    """

    release: np.ndarray
    precision: np.ndarray
    after: np.ndarray
    gap: np.ndarray

    def at(self, offsets: np.ndarray) -> np.ndarray:
        """Instants (events × offsets) of the offsets."""
        off = np.asarray(offsets, dtype=np.int64)[None, :]
        return np.where(off <= 0, self.release[:, None] + off, self.after[:, None] + off)

    def imprecise(self, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        """Windows (events × windows) that reach past the release but are shorter than
        its precision interval: the release instant is not known well enough."""
        length = (np.asarray(end) - np.maximum(np.asarray(start), 0))[None, :]
        return (self.precision[:, None] > 0) & (np.asarray(end)[None, :] > 0) & (length < self.precision[:, None])


def event_clock(release: np.ndarray, precision: np.ndarray, session: str | None) -> EventClock:
    after = release + precision
    if session is None or session == "24/7":
        return EventClock(release, precision, after, np.zeros(release.size, dtype=bool))
    reopen = next_open(after, session)
    return EventClock(release, precision, reopen, ~is_open(release, session) | (reopen > after))


def estimation(ser: SymbolSeries, bench: SymbolSeries | None, clock: EventClock, s: Settings, model: str):
    """Fit the normal-return model of every event on its estimation window.

    Returns used there are the bar returns ending in ``(T + est0, T + est1]``, minus every
    event's exclusion interval ``[T + ex0, after + ex1)``, minus gap returns. A return
    straddling the window start (its first price stale as of ``T + est0``) is left out.
    """
    ex_a, ex_b = _models.excluded_ranges(ser.close_time, clock.release + s.ex0, clock.after + s.ex1)
    prep = _models.prepare(ser, bench, ex_a, ex_b)
    lo, lo_fresh = ser.asof(clock.release + s.est0)
    hi, _ = ser.asof(clock.release + s.est1)
    hi = np.maximum(hi, 0)
    lo = np.where((lo >= 0) & ~lo_fresh, lo + 1, np.maximum(lo, 0))
    lo = np.minimum(lo, hi)
    fit = _models.fit_models(prep, model, lo, hi)
    return prep, fit


@dataclass
class SymbolResult:
    columns: dict  # name -> array (events × windows)
    blocks: np.ndarray  # (events × windows, rank_blocks) block abnormal returns
    sign_blocks: np.ndarray  # the same rows, for the sign test's p-hat
    resid: np.ndarray  # (events, kp_bars) estimation residuals in event time
    k: int
    path: np.ndarray  # (events, grid points) abnormal log price path


def symbol_reactions(
    ser: SymbolSeries, bench: SymbolSeries | None, clock: EventClock, s: Settings, grid: np.ndarray
) -> SymbolResult:
    """Reactions, abnormal returns and the inputs of the cross-event tests for one symbol."""
    prep, fit = estimation(ser, bench, clock, s, s.model_for(ser.symbol))
    n_ev, n_win = clock.release.size, s.w_start.size
    t_a, t_b = clock.at(s.w_start), clock.at(s.w_end)
    i0, i1, reason = ser.window_reasons(t_a, t_b)
    i0c, i1c = np.maximum(i0, 0), np.maximum(i1, 0)
    gap = clock.gap[:, None] & (s.w_end > 0)[None, :]
    reason = np.where((reason == OK) & gap, GAP_REACTION, reason)
    reason = np.where(clock.imprecise(s.w_start, s.w_end), IMPRECISE_TIME, reason).astype(np.int8)
    measured = (reason == OK) | (reason == GAP_REACTION)
    ret = np.where(measured, ser.log_close[i1c] - ser.log_close[i0c], np.nan)
    h = np.where(measured, i1c - i0c, 0).astype(np.float64)
    e_idx = np.broadcast_to(np.arange(n_ev)[:, None], (n_ev, n_win))
    big_m = prep.m_move(i0c, i1c)
    if bench is not None:
        stale = measured & ~(prep.fresh_at(i0c) & prep.fresh_at(i1c))
        reason = np.where(stale, BENCHMARK_GAP, reason).astype(np.int8)
    est_ok = (fit.n >= max(s.min_estimation, fit.k + 3))[e_idx]
    measured = (reason == OK) | (reason == GAP_REACTION)
    reason = np.where(measured & ~est_ok, SHORT_ESTIMATION, reason).astype(np.int8)
    with_car = measured & est_ok
    # the model has no variance for the closed hours inside a gap reaction: no sd/scar
    model_ok = with_car & (reason == OK)
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = np.where(with_car, fit.expected(e_idx, h, big_m), np.nan)
        car = ret - expected
        sd = np.where(model_ok, np.sqrt(fit.prediction_var(e_idx, h, big_m)), np.nan)
        scar = car / sd

    # Realized volatility and volume in the window and in the same-length window before it.
    j0, j1, before_reason = ser.window_reasons(t_a - (s.w_end - s.w_start)[None, :], t_a)
    ok_before = before_reason == OK
    j0c, j1c = np.maximum(j0, 0), np.maximum(j1, 0)
    rv = np.where(measured, np.sqrt(np.maximum(ser.sq_cum[i1c] - ser.sq_cum[i0c], 0)), np.nan)
    rv_before = np.where(ok_before, np.sqrt(np.maximum(ser.sq_cum[j1c] - ser.sq_cum[j0c], 0)), np.nan)
    if ser.volume_cum is not None:
        vol = np.where(measured, ser.volume_cum[i1c] - ser.volume_cum[i0c], np.nan)
        vol_before = np.where(ok_before, ser.volume_cum[j1c] - ser.volume_cum[j0c], np.nan)
    else:
        vol = vol_before = np.full(ret.shape, np.nan)

    flat = measured.reshape(-1)
    lo_px, hi_px = np.full(flat.size, np.nan), np.full(flat.size, np.nan)
    if flat.any():
        lo_px[flat], hi_px[flat] = ser.extremes(i0c.reshape(-1)[flat], i1c.reshape(-1)[flat])
    start_px = np.where(measured, ser.close[i0c], np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        low_ret = np.log(lo_px / start_px.reshape(-1))
        high_ret = np.log(hi_px / start_px.reshape(-1))
    columns = {
        "_event": e_idx,
        "_window": np.broadcast_to(np.arange(n_win)[None, :], (n_ev, n_win)),
        "start_ts": np.where(i0 >= 0, ser.close_time[i0c], 0),
        "end_ts": np.where(i1 >= 0, ser.close_time[i1c], 0),
        "_has0": i0 >= 0,
        "_has1": i1 >= 0,
        "price_start": start_px,
        "price_end": np.where(measured, ser.close[i1c], np.nan),
        "bars": np.where(measured, i1c - i0c, -1),
        "gaps": np.where(measured, ser.gaps_between(i0c, i1c), -1),
        "gap": gap,
        "ret": ret, "low_ret": low_ret, "high_ret": high_ret,
        "expected": expected, "car": car, "sd": sd, "scar": scar,
        "rv": rv, "rv_before": rv_before, "volume": vol, "volume_before": vol_before,
        "n_est": np.broadcast_to(fit.n[:, None], (n_ev, n_win)),
        "n_est_gap": np.broadcast_to(ser.gaps_between(fit.lo, fit.hi)[:, None], (n_ev, n_win)),
        "_reason": reason,
    }
    columns = {k: np.asarray(v).reshape(-1) for k, v in columns.items()}

    flat_e = e_idx.reshape(-1)
    flat_h = h.reshape(-1).astype(np.int64)
    blocks = _models.block_abnormal(prep, fit, flat_e, flat_h, s.rank_blocks)
    blocks[~model_ok.reshape(-1)] = np.nan
    if s.sign_p == "bars":  # Cowan's p-hat from single-bar estimation abnormal returns
        ev = np.arange(n_ev)
        sign_blocks = _models.block_abnormal(prep, fit, ev, np.ones(n_ev, dtype=np.int64), s.rank_blocks)[flat_e]
        sign_blocks[~model_ok.reshape(-1)] = np.nan
    else:
        sign_blocks = blocks
    resid = _models.residual_matrix(prep, fit, s.kp_bars)
    return SymbolResult(columns, blocks, sign_blocks, resid, fit.k, _path(ser, prep, fit, clock, s, grid, bench is not None))


def _path(ser, prep, fit, clock: EventClock, s: Settings, grid: np.ndarray, has_bench: bool) -> np.ndarray:
    """Abnormal log price at each grid offset relative to the last bar before the
    release; NaN for gap releases, stale prices and offsets inside the precision interval."""
    anchor, anchor_fresh = ser.asof(clock.release)
    pi, p_fresh = ser.asof(clock.at(grid))
    ok = p_fresh & anchor_fresh[:, None] & (fit.n >= max(s.min_estimation, fit.k + 3))[:, None]
    ok &= ~clock.gap[:, None] & ~clock.imprecise(np.minimum(grid, 0), np.maximum(grid, 0))
    pic, ac = np.maximum(pi, 0), np.maximum(anchor, 0)[:, None]
    if has_bench:
        ok &= prep.fresh_at(pic) & prep.fresh_at(ac)
    with np.errstate(invalid="ignore"):
        car = ser.log_close[pic] - ser.log_close[ac] - fit.alpha[:, None] * (pic - ac) - fit.beta[:, None] * prep.m_move(ac, pic)
    return np.where(ok, car, np.nan)
