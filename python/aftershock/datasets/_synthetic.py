"""A seeded synthetic market with planted release reactions (SYNTHETIC data).

Log prices follow a diffusion with Student-t noise, an intraday (UTC hour) volatility
pattern, and at every macro release a jump equal to ``sensitivity x hawkish_z``, with an
optional pre-release drift and a post-release volatility boost that decays
exponentially. Bars' high and low are drawn from the Brownian-bridge law of the
extremes between open and close. Defaults are calibrated on real 2025 BTC bars by
``scripts/calibrate_synthetic.py``; every number in :data:`CALIBRATION` is its output.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import polars as pl

from aftershock.calendar import surprises, validate_calendar
from aftershock.errors import ConfigError
from aftershock.prices._read import to_utc

# Output of scripts/calibrate_synthetic.py on Binance BTCUSDT perpetual 5-minute bars,
# 2025-01-01 ... 2025-12-31 (105,120 bars), and the ForexFactory calendar 2022-2025.
CALIBRATION: dict[str, Any] = {
    "daily_vol": 0.02186,
    "five_minute_vol": 0.001418,
    "hourly_pattern": (1.026, 1.031, 0.907, 0.753, 0.757, 0.678, 0.748, 0.796, 0.739, 0.777, 0.698, 0.698,
                       0.901, 1.164, 1.523, 1.365, 1.167, 1.227, 1.088, 1.011, 1.038, 1.439, 0.925, 0.847),
    "excess_kurtosis_5m": 43.16,
    "t_df": 4.14,
    "release_abs_move_15m": 0.002267,
    "baseline_abs_move_15m": 0.001222,
    "post_vol_boost": 2.588,
    "post_vol_tau_minutes": 14.1,
    "sensitivity": -0.001684,  # 15-minute log return per unit hawkish z, t = -4.02, n = 42
}

# Per-symbol scale relative to BTC. Assumptions, not calibrated (no ETH or NQ bars in
# the validation data): ETH ~1.3x BTC's volatility and reaction, Nasdaq-100 futures
# ~0.55x BTC's daily volatility and ~0.5x its release reaction.
SYMBOLS: dict[str, dict[str, Any]] = {
    "BTC": {"start_price": 93_500.0, "vol_scale": 1.0, "sensitivity_scale": 1.0, "session": "24/7", "volume": 20.0},
    "ETH": {"start_price": 3_350.0, "vol_scale": 1.3, "sensitivity_scale": 1.3, "session": "24/7", "volume": 450.0},
    "NQ": {"start_price": 21_300.0, "vol_scale": 0.55, "sensitivity_scale": 0.5, "session": "cme_equity", "volume": 350.0},
}

DEFAULT_PARAMS: dict[str, Any] = {
    "daily_vol": CALIBRATION["daily_vol"],
    "t_df": CALIBRATION["t_df"],
    "hourly_pattern": CALIBRATION["hourly_pattern"],
    "post_vol_boost": CALIBRATION["post_vol_boost"],
    "post_vol_tau_minutes": CALIBRATION["post_vol_tau_minutes"],
    "pre_drift": 0.0,  # fraction of each planted jump that drifts in before the release
    "pre_drift_minutes": 60.0,
    "drift": 0.0,  # annual log drift
}


@dataclass(frozen=True)
class SyntheticMarket:
    """SYNTHETIC bars and the reactions planted in them."""

    bars: pl.DataFrame
    truth: pl.DataFrame
    params: dict[str, Any] = field(default_factory=dict)
    synthetic: bool = True

    def __repr__(self) -> str:
        syms = self.bars["symbol"].unique(maintain_order=True).to_list()
        return f"SyntheticMarket(SYNTHETIC bars: {self.bars.height} rows of {syms}; {self.truth.height} planted jumps)"



def _sessions(ts: pl.Series, session: str) -> np.ndarray:
    if session == "24/7":
        return np.ones(len(ts), dtype=bool)
    if session != "cme_equity":
        raise ConfigError(f"unknown session {session!r}", column="session")
    # CME Globex equity futures: Sunday 18:00 to Friday 17:00 New York time, with a
    # daily halt 17:00-18:00.
    ny = ts.dt.convert_time_zone("America/New_York")
    frame = pl.DataFrame({"wd": ny.dt.weekday(), "h": ny.dt.hour()})
    open_ = frame.select(
        pl.when(pl.col("wd") == 6).then(False)  # Saturday
        .when(pl.col("wd") == 7).then(pl.col("h") >= 18)  # Sunday evening
        .when(pl.col("wd") == 5).then(pl.col("h") < 17)  # Friday until 17:00
        .otherwise(pl.col("h") != 17)
    ).to_series()
    return open_.to_numpy()


def _sensitivity_for(sensitivity: Any, symbol: str, indicator: str) -> float:
    if sensitivity is None:
        return CALIBRATION["sensitivity"] * SYMBOLS.get(symbol, {}).get("sensitivity_scale", 1.0)
    if isinstance(sensitivity, (int, float)):
        return float(sensitivity)
    if isinstance(sensitivity, Mapping):
        value = sensitivity.get(symbol, 0.0)
        if isinstance(value, Mapping):
            return float(value.get(indicator, 0.0))
        return float(value)
    raise ConfigError(f"sensitivity must be None, a number or a dict, got {type(sensitivity).__name__}", column="sensitivity")


def synthetic_market(
    calendar: Any,
    symbols: Sequence[str] = ("BTC", "ETH", "NQ"),
    start: Any = None,
    end: Any = None,
    freq: str = "1m",
    seed: int = 0,
    sensitivity: Any = None,
    **params: Any,
) -> SyntheticMarket:
    """Generate SYNTHETIC bars reacting to ``calendar`` and return them with the truth.

    ``start``/``end`` default to the calendar's first release day and 7 days after its
    last. ``freq`` is the bar length (``"1m"``, ``"5m"``...). ``sensitivity``: None for the
    calibrated default (BTC -0.1684% per unit hawkish z, scaled per symbol by
    :data:`SYMBOLS`), a number for every symbol and indicator, or ``{symbol: value}`` /
    ``{symbol: {indicator: value}}`` (missing entries plant nothing). ``params``
    override :data:`DEFAULT_PARAMS`; per-symbol ``vol_scale``/``start_price``/``session``
    come from :data:`SYMBOLS` (unknown symbols trade 24/7 at BTC's volatility from 100).

    Jumps are planted at macro releases with a non-null ``hawkish_z`` (computed with
    :func:`aftershock.calendar.surprises` when the calendar lacks it), on the first bar
    of each symbol whose open time is at or after the release; simultaneous releases
    add up. ``truth`` has one row per symbol and event: ``event_id, indicator, symbol,
    release_ts, hawkish_z, sensitivity, jump`` (log return) plus ``bar_ts`` (the bar
    that carries it) and ``pre_drift`` (log return drifted in beforehand).
    """
    unknown = set(params) - set(DEFAULT_PARAMS)
    if unknown:
        raise ConfigError(f"unknown parameter(s) {sorted(unknown)}; known: {sorted(DEFAULT_PARAMS)}", column=sorted(unknown)[0])
    p = {**DEFAULT_PARAMS, **params}
    if p["t_df"] <= 2:
        raise ConfigError("t_df must be > 2 (finite variance)", column="t_df")
    if len(p["hourly_pattern"]) != 24:
        raise ConfigError("hourly_pattern needs 24 numbers", column="hourly_pattern")

    cal = calendar if isinstance(calendar, pl.DataFrame) and "hawkish_z" in calendar.columns else surprises(calendar)
    if "kind" in cal.columns:
        cal = cal.filter(pl.col("kind").fill_null("macro") == "macro")
    if "indicator" not in cal.columns:
        cal = cal.with_columns(pl.lit(None, dtype=pl.String).alias("indicator"))
    if start is None or end is None:
        if cal.height == 0 and (start is None or end is None):
            raise ConfigError("give start and end when the calendar has no macro events", column="start")
    lo = to_utc(start) if start is not None else to_utc(cal["release_ts"].min().date())
    hi = to_utc(end) if end is not None else to_utc(cal["release_ts"].max().date() + dt.timedelta(days=7))
    step = pl.select(pl.lit(dt.datetime(2001, 1, 1)).dt.offset_by(freq) - pl.lit(dt.datetime(2001, 1, 1))).item()
    if not isinstance(step, dt.timedelta) or step <= dt.timedelta(0):
        raise ConfigError(f"freq must be a positive fixed duration such as '1m', got {freq!r}", column="freq")
    grid = pl.datetime_range(lo, hi - dt.timedelta(microseconds=1), interval=freq, time_unit="us", time_zone="UTC", eager=True)
    minutes = step.total_seconds() / 60.0
    events = cal.filter(pl.col("hawkish_z").is_not_null(), pl.col("release_ts") >= lo, pl.col("release_ts") < hi)

    rng = np.random.default_rng(seed)
    pattern = np.asarray(p["hourly_pattern"], dtype=float)
    pattern = pattern / np.sqrt(np.mean(pattern**2))
    hours_all = grid.dt.hour().to_numpy()
    grid_us = grid.dt.epoch("us").to_numpy()
    ev_us = events["release_ts"].dt.epoch("us").to_numpy()
    frames, truths = [], []
    for sym in symbols:
        spec = SYMBOLS.get(sym, {"start_price": 100.0, "vol_scale": 1.0, "session": "24/7", "volume": 100.0})
        mask = _sessions(grid, spec["session"])
        t_us = grid_us[mask]
        n = len(t_us)
        if n == 0:
            continue
        sigma = p["daily_vol"] * spec["vol_scale"] * np.sqrt(minutes / 1440.0) * pattern[hours_all[mask]]
        df_ = p["t_df"]
        noise = rng.standard_t(df_, size=n) * np.sqrt((df_ - 2) / df_)

        # releases: the first bar of this symbol at or after the release
        idx = np.searchsorted(t_us, ev_us, side="left")
        ok = idx < n
        sens = np.array([_sensitivity_for(sensitivity, sym, ind) for ind in events["indicator"].to_list()], dtype=float)
        jumps = sens * events["hawkish_z"].to_numpy()
        boost = np.ones(n)
        drift = np.full(n, p["drift"] / (365.25 * 1440.0) * minutes)
        tau = p["post_vol_tau_minutes"]
        pre_n = max(int(round(p["pre_drift_minutes"] / minutes)), 1)
        jump_at = np.zeros(n)
        for k in np.flatnonzero(ok):
            i = idx[k]
            jump_at[i] += jumps[k] * (1 - p["pre_drift"])
            if p["post_vol_boost"] and tau > 0:
                horizon = min(n, i + int(np.ceil(8 * tau / minutes)) + 1)
                age = (t_us[i:horizon] - t_us[i]) / 60e6
                boost[i:horizon] += p["post_vol_boost"] * np.exp(-age / tau)
            if p["pre_drift"]:
                j0 = max(0, i - pre_n)
                drift[j0:i] += jumps[k] * p["pre_drift"] / max(i - j0, 1)
        ret = drift + sigma * boost * noise + jump_at
        log_close = np.log(spec["start_price"]) + np.cumsum(ret)
        log_open = np.concatenate(([np.log(spec["start_price"])], log_close[:-1]))
        # Brownian-bridge extremes between open and close with the bar's diffusion variance
        var = (sigma * boost) ** 2
        span = log_close - log_open
        u1, u2 = rng.random(n), rng.random(n)
        log_high = (log_open + log_close + np.sqrt(span**2 - 2 * var * np.log1p(-u1))) / 2
        log_low = (log_open + log_close - np.sqrt(span**2 - 2 * var * np.log1p(-u2))) / 2
        volume = spec["volume"] * minutes * pattern[hours_all[mask]] * boost * rng.lognormal(-0.18, 0.6, size=n)
        frames.append(
            pl.DataFrame(
                {
                    "ts": pl.Series(t_us).cast(pl.Datetime("us")).dt.replace_time_zone("UTC"),
                    "symbol": sym,
                    "open": np.exp(log_open),
                    "high": np.exp(log_high),
                    "low": np.exp(log_low),
                    "close": np.exp(log_close),
                    "volume": volume,
                }
            ).with_columns(
                pl.max_horizontal("open", "close", "high").alias("high"),
                pl.min_horizontal("open", "close", "low").alias("low"),
            )
        )
        bar_ts = np.where(ok, t_us[np.minimum(idx, n - 1)], 0)
        truths.append(
            events.select("event_id", "indicator", "release_ts", "hawkish_z").with_columns(
                pl.lit(sym).alias("symbol"),
                pl.Series("sensitivity", sens),
                pl.Series("jump", jumps * (1 - p["pre_drift"]) + 0.0),
                pl.Series("pre_drift", jumps * p["pre_drift"] + 0.0),
                pl.Series("bar_ts", bar_ts).cast(pl.Datetime("us")).dt.replace_time_zone("UTC"),
                pl.Series("_ok", ok),
            ).filter(pl.col("_ok")).drop("_ok")
        )
    truth_schema = {
        "event_id": pl.String, "indicator": pl.String, "symbol": pl.String, "release_ts": pl.Datetime("us", "UTC"),
        "hawkish_z": pl.Float64, "sensitivity": pl.Float64, "jump": pl.Float64, "pre_drift": pl.Float64,
        "bar_ts": pl.Datetime("us", "UTC"),
    }
    truth = pl.concat(truths).select(list(truth_schema)) if truths else pl.DataFrame(schema=truth_schema)
    bars = pl.concat(frames) if frames else pl.DataFrame(schema={"ts": pl.Datetime("us", "UTC"), "symbol": pl.String, **{c: pl.Float64 for c in ("open", "high", "low", "close", "volume")}})
    return SyntheticMarket(bars=bars, truth=truth, params={**p, "seed": seed, "freq": freq, "symbols": tuple(symbols)})
