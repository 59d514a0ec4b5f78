"""``study(bars, calendar, windows=..., model=..., benchmark=None) -> Study``."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Iterable, Sequence

import numpy as np
import polars as pl

from aftershock.errors import BarsError, CalendarError, InputError
from aftershock.prices import validate_bars
from aftershock.event_study import models as _models
from aftershock.event_study import tests_stats as ts
from aftershock.event_study.regression import coef_row, ols
from aftershock.event_study.returns import BENCHMARK_GAP, OK, REASONS, SHORT_ESTIMATION, SymbolSeries
from aftershock.event_study.windows import DEFAULT_WINDOWS, Window, parse_duration, parse_windows

__all__ = ["Study", "study"]

_US = timedelta(microseconds=1)
# Calendar columns copied into ``reactions`` when present (a day-precision policy
# timestamp makes a 5-minute reaction meaningless: keep it visible).
_PASSED_THROUGH = ("surprise", "surprise_z", "time_precision")
_PATH_STEPS = ("1m", "5m", "15m", "30m", "1h", "4h", "1d", "1w")


def _us(delta: timedelta) -> int:
    return int(delta / _US)


def _label_us(us: int) -> str:
    return parse_windows([timedelta(microseconds=us)])[0].label if us else "0"


@dataclass(frozen=True)
class Study:
    """Results of an event study; every table is a Polars frame.

    - ``reactions``: one row per event × asset × window — prices used, log return
      ``ret`` (and ``pct``, the simple return), the lowest low and highest high inside the
      window as log returns from the start price (``low_ret``, ``high_ret``), ``expected``, abnormal return ``car``, its prediction standard deviation
      ``sd``, standardized ``scar``, realized volatility and volume in the window and in
      the same-length window just before it, and ``reason`` when something is null.
    - ``sensitivity``: OLS of ``car`` on the hawkish-signed standardized surprise per
      indicator × asset × window (``spec="single"``), with separate slopes for positive
      and negative surprises (``"positive"``/``"negative"``, one regression) and the
      joint regression on every indicator released in the same minute (``"joint"``).
    - ``tests``: cross-sectional t, Patell, BMP, Kolari–Pynnönen, Corrado rank and
      generalized sign tests per indicator × asset × window, raw and surprise-signed.
    - ``paths``: mean cumulative abnormal return in event time with 95% bands.
    - ``drift``: pre-release windows: mean move, t, and whether it anticipates the
      surprise (slope of the drift on the surprise).
    - ``volatility``: realized volatility and volume after vs before, per group.
    """

    reactions: pl.DataFrame
    sensitivity: pl.DataFrame
    tests: pl.DataFrame
    paths: pl.DataFrame
    drift: pl.DataFrame
    volatility: pl.DataFrame
    windows: tuple[Window, ...]
    model: str
    benchmark: str | None
    settings: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        r = self.reactions
        return (
            f"Study(model={self.model!r}, benchmark={self.benchmark!r}, "
            f"windows={[w.label for w in self.windows]}, events={r['event_id'].n_unique()}, "
            f"symbols={r['symbol'].unique(maintain_order=True).to_list()}, reactions={r.height} "
            f"({r['ret'].null_count()} uncovered))"
        )

    def table(self, symbol: str | None = None, cov: str = "HC3") -> pl.DataFrame:
        """The paper table: indicator × window with mean reaction, its t, the slope on
        the hawkish surprise, its robust t, R² and n."""
        t = self.tests.filter(~pl.col("signed")).select(
            "indicator", "symbol", "window", "n", "mean_car", "t_cs"
        )
        s = self.sensitivity.filter(pl.col("spec") == "single").select(
            "indicator", "symbol", "window",
            pl.col("slope"), pl.col(f"t_{cov.lower()}").alias("t_slope"), "r2", pl.col("n").alias("n_slope"),
        )
        out = t.join(s, on=["indicator", "symbol", "window"], how="left", coalesce=True)
        if symbol is not None:
            out = out.filter(pl.col("symbol") == symbol)
        order = {w.label: i for i, w in enumerate(self.windows)}
        return out.with_columns(pl.col("window").replace_strict(order, return_dtype=pl.Int32).alias("_w")).sort(
            "indicator", "symbol", "_w"
        ).drop("_w")

    # Pictures live in aftershock.report (imported lazily: report sits above the study).
    def plot(self, kind: str = "paths") -> Any:
        """A plotly Figure: ``"paths"`` (event-time CAR per indicator and asset, 95% bands),
        ``"scatter"`` (surprise versus reaction, fitted slope and interval) or
        ``"heatmap"`` (slope t across indicator × asset × window)."""
        from aftershock.report import study_figure

        return study_figure(self, kind)

    def report(self, path: str, *, title: str = "aftershock event study") -> str:
        """Write a self-contained HTML report (works offline) and return its path."""
        from aftershock.report import write_study_report

        return write_study_report(self, path, title=title)

    def _repr_html_(self) -> str:
        from aftershock.report import study_html

        return study_html(self)


def _validated_bars(bars: Any) -> pl.DataFrame:
    frame = validate_bars(bars)
    if frame.height == 0:
        raise BarsError("bars are empty")
    return frame


def _split_by_symbol(frame: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """Each symbol's rows, in their original order: zero-copy slices when each symbol's
    rows are contiguous (the usual layout), a stable sort by symbol otherwise."""
    runs = frame["symbol"].rle().struct.unnest()
    if runs.height != runs["value"].n_unique():
        frame = frame.sort("symbol", maintain_order=True)
        runs = frame["symbol"].rle().struct.unnest()
    starts = np.concatenate([[0], np.cumsum(runs["len"].to_numpy())[:-1]])
    return {sym: frame.slice(int(a), int(n)) for sym, a, n in zip(runs["value"].to_list(), starts, runs["len"].to_numpy())}


def _prepared_calendar(calendar: Any) -> pl.DataFrame:
    if not isinstance(calendar, pl.DataFrame):
        raise CalendarError(f"calendar must be a Polars DataFrame, got {type(calendar).__name__}")
    if calendar.height == 0:
        raise CalendarError("calendar is empty")
    for col in ("event_id", "release_ts"):
        if col not in calendar.columns:
            raise CalendarError(f"calendar has no {col!r} column; found {calendar.columns}", column=col)
    dtype = calendar.schema["release_ts"]
    if not isinstance(dtype, pl.Datetime) or dtype.time_zone is None:
        raise CalendarError(f"'release_ts' must be a time-zone aware Datetime, got {dtype}", column="release_ts")
    nulls = calendar["release_ts"].is_null()
    if nulls.any():
        raise CalendarError("release_ts is null", column="release_ts", row=int(nulls.arg_true()[0]))
    cal = calendar.with_columns(pl.col("release_ts").dt.convert_time_zone("UTC").dt.cast_time_unit("us"))
    if "hawkish_z" not in cal.columns:
        try:
            from aftershock.calendar import surprises
        except ImportError as exc:
            raise CalendarError(
                "calendar has no 'hawkish_z' column and aftershock.calendar.surprises is unavailable", column="hawkish_z"
            ) from exc
        cal = surprises(cal)
    for col, default in (("indicator", None), ("kind", "macro"), ("category", None), ("direction", None)):
        if col not in cal.columns:
            cal = cal.with_columns(pl.lit(default, dtype=pl.Float64 if col == "direction" else pl.String).alias(col))
    policy_label = pl.concat_str(pl.lit("POLICY:"), pl.col("category").fill_null("other"))
    return cal.with_columns(
        pl.coalesce(pl.col("indicator"), policy_label).alias("indicator"),
        # Macro events load on the hawkish-signed surprise; policy events on their analyst direction.
        pl.coalesce(pl.col("hawkish_z").cast(pl.Float64), pl.col("direction").cast(pl.Float64)).alias("_x"),
    )


def _path_grid(windows: Sequence[Window], bar_us: int, path: Any) -> np.ndarray:
    if path is not None:
        start, end = parse_duration(path[0], column="path"), parse_duration(path[1], column="path")
        step = parse_duration(path[2], column="path") if len(path) > 2 else None
        if end <= start:
            raise InputError("path end must come after its start", column="path")
    else:
        start = min(timedelta(0), min(w.start for w in windows))
        end = max(timedelta(0), max(w.end for w in windows))
        step = None
    span = _us(end - start)
    if step is None:
        want = max(bar_us, span / 120)
        step = next((parse_duration(s) for s in _PATH_STEPS if _us(parse_duration(s)) >= want), end - start)
    step_us = max(_us(step), 1)
    first = -((-_us(start)) // step_us) * step_us if _us(start) < 0 else _us(start)
    grid = np.arange(first, _us(end) + 1, step_us, dtype=np.int64)
    return np.union1d(grid, [0])


def study(
    bars: Any,
    calendar: pl.DataFrame,
    windows: Iterable[Any] | str | timedelta = DEFAULT_WINDOWS,
    model: str = "constant_mean",
    benchmark: str | None = None,
    *,
    estimation: tuple[Any, Any] = ("-30d", "0m"),
    exclude: tuple[Any, Any] | None = None,
    min_estimation: int = 30,
    bar_length: str | timedelta | dict | None = None,
    path: tuple | None = None,
    cov: str = "HC3",
    rank_blocks: int = 100,
    kp_bars: int = 500,
    symbols: Sequence[str] | None = None,
) -> Study:
    """Measure how each asset in ``bars`` reacted to each event in ``calendar``.

    Parameters
    ----------
    bars : Polars frame ``ts`` (bar open, UTC), ``symbol``, ``open/high/low/close``,
        optional ``volume``; validated with :func:`aftershock.prices.validate_bars`.
    calendar : events with ``event_id``, ``release_ts`` and ``hawkish_z`` (computed with
        :func:`aftershock.calendar.surprises` when absent); ``indicator`` groups events,
        policy events (null indicator) are grouped as ``POLICY:<category>`` and load on
        their ``direction``.
    windows : durations (``"15m"``, ``"-10h"``, ``timedelta``) or ``(start, end)`` pairs.
    model : ``"zero_mean"``, ``"constant_mean"`` or ``"market"`` (needs ``benchmark``).
    benchmark : symbol in ``bars`` used as the market in the market model.
    estimation : ``(start, end)`` offsets of each event's estimation window; its end is
        moved back to the earliest window start, and every event's exclusion interval
        is removed from it.
    exclude : ``(start, end)`` offsets removed around *every* event from estimation data;
        default: from the earliest window start (or 0) to the latest window end.
    min_estimation : fewer usable estimation returns than this gives a null ``car``
        (reason ``short_estimation``).
    bar_length : bar length (one for all symbols, or a ``{symbol: length}`` dict);
        inferred as the median spacing of bar open times when omitted.
    path : ``(start, end[, step])`` offsets of the event-time CAR path.
    cov : ``"HC3"`` (default) or ``"HC1"``: which robust covariance the confidence
        intervals and p-values of ``sensitivity`` use (both SEs are always reported).
    rank_blocks : at most this many estimation blocks per event for the rank and sign tests.
    kp_bars : estimation residuals per event used for the Kolari–Pynnönen correlation.
    symbols : restrict the study to these symbols (default: all symbols in ``bars``).
    """
    if model not in _models.MODELS:
        raise InputError(f"unknown model {model!r}; choose one of {sorted(_models.MODELS)}", column="model")
    if cov not in ("HC1", "HC3"):
        raise InputError(f"cov must be 'HC1' or 'HC3', got {cov!r}", column="cov")
    wins = parse_windows(windows)
    frame = _validated_bars(bars)
    cal = _prepared_calendar(calendar)
    present = frame["symbol"].unique(maintain_order=True).to_list()
    if benchmark is not None and benchmark not in present:
        raise InputError(f"benchmark {benchmark!r} is not a symbol in bars {present}", column="benchmark")
    if model == "market" and benchmark is None:
        raise InputError("the market model needs a benchmark symbol", column="benchmark")
    if symbols is None:
        symbols = present
    else:
        missing = [s for s in symbols if s not in present]
        if missing:
            raise InputError(f"symbols {missing} are not in bars {present}", column="symbol")

    def length_of(sym: str) -> int | None:
        spec = bar_length.get(sym) if isinstance(bar_length, dict) else bar_length
        return None if spec is None else _us(parse_duration(spec, column="bar_length"))

    by_symbol = _split_by_symbol(frame.select([c for c in ("ts", "symbol", "low", "high", "close", "volume") if c in frame.columns]))
    needed = list(symbols) + ([benchmark] if benchmark is not None and benchmark not in symbols else [])
    series = {sym: SymbolSeries.from_frame(sym, by_symbol[sym], length_of(sym)) for sym in needed}

    release = cal["release_ts"].dt.epoch("us").to_numpy()
    n_ev, n_win = release.size, len(wins)
    w_start = np.array([_us(w.start) for w in wins], dtype=np.int64)
    w_end = np.array([_us(w.end) for w in wins], dtype=np.int64)
    earliest = min(0, int(w_start.min()))
    if exclude is None:
        ex0, ex1 = earliest, max(0, int(w_end.max()))
    else:
        ex0, ex1 = (_us(parse_duration(v, column="exclude")) for v in exclude)
    est0, est1 = (_us(parse_duration(v, column="estimation")) for v in estimation)
    est1 = min(est1, earliest)
    if est1 <= est0:
        raise InputError("the estimation window must end after it starts (and before the earliest window)", column="estimation")
    uniq = np.unique(release)

    cols: dict[str, list[np.ndarray]] = {}
    blocks_all, resid_by_symbol, paths_parts, k_by_symbol = [], {}, [], {}
    bar_us_max = max(s.bar_us for s in series.values())
    grid = _path_grid(wins, bar_us_max, path)

    def put(name: str, arr: np.ndarray) -> None:
        cols.setdefault(name, []).append(np.asarray(arr).reshape(-1))

    for s_idx, sym in enumerate(symbols):
        ser = series[sym]
        bench = series[benchmark] if model == "market" and sym != benchmark else None
        ex_a, ex_b = _models.excluded_ranges(ser.close_time, uniq + ex0, uniq + ex1)
        prep = _models.prepare(ser, bench, ex_a, ex_b)
        lo, lo_fresh = ser.asof(release + est0)
        hi, _ = ser.asof(release + est1)
        lo, hi = np.maximum(lo, 0), np.maximum(hi, 0)
        # The market model of the benchmark on itself is degenerate: it gets the constant mean.
        fit = _models.fit_models(prep, "constant_mean" if bench is None and model == "market" else model, lo, hi)
        k_by_symbol[sym] = fit.k

        t_a = release[:, None] + w_start[None, :]
        t_b = release[:, None] + w_end[None, :]
        i0, i1, reason = ser.window_reasons(t_a, t_b)
        i0c, i1c = np.maximum(i0, 0), np.maximum(i1, 0)
        good = reason == OK
        ret = np.where(good, ser.log_close[i1c] - ser.log_close[i0c], np.nan)
        h = np.where(good, i1c - i0c, 0).astype(np.float64)
        e_idx = np.broadcast_to(np.arange(n_ev)[:, None], (n_ev, n_win))
        big_m = prep.m_log[i1c] - prep.m_log[i0c]
        if bench is not None:
            gap = good & ~(prep.m_fresh[i0c] & prep.m_fresh[i1c])
            reason = np.where(gap, BENCHMARK_GAP, reason).astype(np.int8)
        est_ok = (fit.n >= max(min_estimation, fit.k + 3))[e_idx]
        model_ok = (reason == OK) & est_ok
        reason = np.where((reason == OK) & ~est_ok, SHORT_ESTIMATION, reason).astype(np.int8)
        with np.errstate(invalid="ignore", divide="ignore"):
            expected = np.where(model_ok, fit.expected(e_idx, h, big_m), np.nan)
            car = ret - expected
            sd = np.where(model_ok, np.sqrt(fit.prediction_var(e_idx, h, big_m)), np.nan)
            scar = car / sd
        # Realized volatility and volume in the window and in the same-length window before it.
        j0, j1, before_reason = ser.window_reasons(t_a - (w_end - w_start)[None, :], t_a)
        ok_before = before_reason == OK
        j0c, j1c = np.maximum(j0, 0), np.maximum(j1, 0)
        rv = np.where(good, np.sqrt(np.maximum(ser.sq_cum[i1c] - ser.sq_cum[i0c], 0)), np.nan)
        rv_before = np.where(ok_before, np.sqrt(np.maximum(ser.sq_cum[j1c] - ser.sq_cum[j0c], 0)), np.nan)
        if ser.volume_cum is not None:
            vol = np.where(good, ser.volume_cum[i1c] - ser.volume_cum[i0c], np.nan)
            vol_before = np.where(ok_before, ser.volume_cum[j1c] - ser.volume_cum[j0c], np.nan)
        else:
            vol = vol_before = np.full(ret.shape, np.nan)

        flat_good = good.reshape(-1)
        lo_px, hi_px = np.full(flat_good.size, np.nan), np.full(flat_good.size, np.nan)
        if flat_good.any():
            lo_px[flat_good], hi_px[flat_good] = ser.extremes(i0c.reshape(-1)[flat_good], i1c.reshape(-1)[flat_good])
        with np.errstate(invalid="ignore", divide="ignore"):
            put("low_ret", np.log(lo_px / np.where(good, ser.close[i0c], np.nan).reshape(-1)))
            put("high_ret", np.log(hi_px / np.where(good, ser.close[i0c], np.nan).reshape(-1)))
        put("_event", e_idx)
        put("_symbol", np.full((n_ev, n_win), s_idx))
        put("_window", np.broadcast_to(np.arange(n_win)[None, :], (n_ev, n_win)))
        put("start_ts", np.where(i0 >= 0, ser.close_time[i0c], 0))
        put("end_ts", np.where(i1 >= 0, ser.close_time[i1c], 0))
        put("_has0", i0 >= 0)
        put("_has1", i1 >= 0)
        put("price_start", np.where(good, ser.close[i0c], np.nan))
        put("price_end", np.where(good, ser.close[i1c], np.nan))
        put("bars", np.where(good, i1c - i0c, -1))
        put("ret", ret)
        put("expected", expected)
        put("car", car)
        put("sd", sd)
        put("scar", scar)
        put("rv", rv)
        put("rv_before", rv_before)
        put("volume", vol)
        put("volume_before", vol_before)
        put("n_est", np.broadcast_to(fit.n[:, None], (n_ev, n_win)))
        put("_reason", reason)

        flat_e = e_idx.reshape(-1)
        blocks = _models.block_abnormal(prep, fit, flat_e, h.reshape(-1).astype(np.int64), rank_blocks)
        blocks[~model_ok.reshape(-1)] = np.nan
        blocks_all.append(blocks)
        resid_by_symbol[sym] = _models.residual_matrix(prep, fit, kp_bars)

        # Event-time path of the abnormal log price relative to the last bar before the release.
        anchor, anchor_fresh = ser.asof(release)
        pt = release[:, None] + grid[None, :]
        pi, p_fresh = ser.asof(pt)
        ok = p_fresh & anchor_fresh[:, None] & (fit.n >= max(min_estimation, fit.k + 3))[:, None]
        pic, ac = np.maximum(pi, 0), np.maximum(anchor, 0)[:, None]
        with np.errstate(invalid="ignore"):
            path_car = (
                ser.log_close[pic] - ser.log_close[ac]
                - fit.alpha[:, None] * (pic - ac)
                - fit.beta[:, None] * (prep.m_log[pic] - prep.m_log[ac])
            )
        if bench is not None:
            ok &= prep.m_fresh[pic] & prep.m_fresh[ac]
        paths_parts.append((s_idx, np.where(ok, path_car, np.nan)))

    data = {k: np.concatenate(v) for k, v in cols.items()}
    short = int(np.sum(data["_reason"] == SHORT_ESTIMATION))
    if short > 0.5 * data["_reason"].size:
        warnings.warn(
            f"{short} of {data['_reason'].size} reactions have no abnormal return: removing every event's "
            f"window ({_label_us(ex0)} to {_label_us(ex1)} around each release) leaves fewer than "
            f"{min_estimation} estimation returns. Pass a narrower exclude=, e.g. exclude=('-1h', '4h'), "
            "or a longer estimation= window.",
            stacklevel=2,
        )
    reactions = _reactions_frame(data, cal, symbols, wins)
    blocks = np.concatenate(blocks_all)[reactions["_row"].to_numpy()]
    reactions = reactions.drop("_row").with_row_index("_row")
    tests = _event_tests(reactions, blocks, resid_by_symbol, k_by_symbol)
    sensitivity = _sensitivity(reactions, cov)
    paths = _paths_frame(paths_parts, grid, cal, symbols)
    drift = _drift_frame(tests, sensitivity, wins)
    volatility = _volatility_frame(reactions)
    settings = {
        "estimation": estimation, "exclude": (ex0, ex1), "min_estimation": min_estimation,
        "bar_length_us": {s: series[s].bar_us for s in symbols}, "cov": cov,
    }
    return Study(reactions.drop("_row", "_event"), sensitivity, tests, paths, drift, volatility, tuple(wins), model, benchmark, settings)


def _reactions_frame(data: dict, cal: pl.DataFrame, symbols: Sequence[str], wins: Sequence[Window]) -> pl.DataFrame:
    reason_names = {int(code): name for code, name in REASONS.items()}
    ev = cal.select(
        pl.int_range(pl.len(), dtype=pl.Int64).alias("_event"),
        "event_id", "indicator", "kind", "release_ts",
        *[c for c in _PASSED_THROUGH if c in cal.columns],
        pl.col("_x").alias("hawkish_z"),
    )
    f = pl.DataFrame(
        {
            "_event": data["_event"].astype(np.int64),
            "_symbol": data["_symbol"].astype(np.int64),
            "_window": data["_window"].astype(np.int64),
            "start_ts": data["start_ts"],
            "end_ts": data["end_ts"],
            "_has0": data["_has0"],
            "_has1": data["_has1"],
            **{k: data[k] for k in ("price_start", "price_end", "ret", "low_ret", "high_ret", "expected", "car", "sd", "scar", "rv", "rv_before", "volume", "volume_before")},
            "bars": data["bars"].astype(np.int64),
            "n_est": data["n_est"].astype(np.int64),
            "_reason": data["_reason"].astype(np.int64),
        }
    ).with_row_index("_row")
    to_ts = lambda c, has: pl.when(pl.col(has)).then(pl.col(c).cast(pl.Datetime("us", "UTC"))).otherwise(None)  # noqa: E731
    f = f.with_columns(
        to_ts("start_ts", "_has0").alias("start_ts"),
        to_ts("end_ts", "_has1").alias("end_ts"),
        pl.col("_symbol").replace_strict(dict(enumerate(symbols)), return_dtype=pl.String).alias("symbol"),
        pl.col("_window").replace_strict({i: w.label for i, w in enumerate(wins)}, return_dtype=pl.String).alias("window"),
        pl.col("_window").replace_strict({i: w.kind for i, w in enumerate(wins)}, return_dtype=pl.String).alias("window_kind"),
        pl.col("_reason").replace_strict(reason_names, default=None, return_dtype=pl.String).alias("reason"),
        pl.when(pl.col("bars") >= 0).then(pl.col("bars")).otherwise(None).alias("bars"),
        pl.col("ret").fill_nan(None), pl.col("expected").fill_nan(None), pl.col("car").fill_nan(None),
        pl.col("sd").fill_nan(None), pl.col("scar").fill_nan(None), pl.col("rv").fill_nan(None),
        pl.col("rv_before").fill_nan(None), pl.col("volume").fill_nan(None), pl.col("volume_before").fill_nan(None),
        pl.col("price_start").fill_nan(None), pl.col("price_end").fill_nan(None),
        pl.col("low_ret").fill_nan(None), pl.col("high_ret").fill_nan(None),
    )
    f = f.join(ev, on="_event", how="left").sort("_event", "_symbol", "_window")
    f = f.with_columns((pl.col("ret").exp() - 1.0).alias("pct"))
    order = [
        "event_id", "indicator", "kind", "release_ts", "symbol", "window", "window_kind",
        "start_ts", "end_ts", "price_start", "price_end", "bars", "ret", "pct", "low_ret", "high_ret", "expected", "car", "sd", "scar",
        "hawkish_z", *[c for c in _PASSED_THROUGH if c in ev.columns],
        "rv", "rv_before", "volume", "volume_before", "n_est", "reason", "_row", "_event",
    ]
    return f.select(order)


def _groups(frame: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    return frame.group_by(keys, maintain_order=True).agg(pl.col("_row"), pl.col("_event"))


def _event_tests(reactions: pl.DataFrame, blocks: np.ndarray, resid: dict, k_by_symbol: dict) -> pl.DataFrame:
    r = reactions.filter(pl.col("car").is_not_null())
    car = reactions["car"].fill_null(np.nan).to_numpy()
    scar = reactions["scar"].fill_null(np.nan).to_numpy()
    n_est = reactions["n_est"].to_numpy()
    x = reactions["hawkish_z"].fill_null(np.nan).to_numpy()
    corr_cache: dict[tuple, tuple] = {}
    ind_events = {
        ind: np.asarray(evs, dtype=np.int64)
        for ind, evs in reactions.group_by("indicator").agg(pl.col("_event").unique().sort()).iter_rows()
    }
    rows = []
    for g in _groups(r, ["indicator", "symbol", "window"]).iter_rows(named=True):
        idx = np.asarray(g["_row"], dtype=np.int64)
        events = np.asarray(g["_event"], dtype=np.int64)
        for signed in (False, True):
            if signed:
                sign = np.sign(x[idx])
                keep = np.isfinite(sign) & (sign != 0)
                sel, sgn, evs = idx[keep], sign[keep], events[keep]
            else:
                sel, sgn, evs = idx, np.ones(idx.size), events
            n = sel.size
            if n == 0:
                continue
            c, sc, bl = car[sel] * sgn, scar[sel] * sgn, blocks[sel] * sgn[:, None]
            key = (g["indicator"], g["symbol"])
            if key not in corr_cache:
                all_events = ind_events[g["indicator"]]
                corr_cache[key] = (all_events, ts.pairwise_correlation(resid[g["symbol"]][all_events]))
            all_events, corr = corr_cache[key]
            pos = np.searchsorted(all_events, evs)
            rbar = ts.mean_offdiagonal(corr[np.ix_(pos, pos)] * np.outer(sgn, sgn))
            t_cs = ts.cross_sectional_t(c)
            z_pat = ts.patell_z(sc, n_est[sel], k_by_symbol[g["symbol"]])
            t_bmp = ts.bmp_t(sc)
            t_kp = ts.kp_adjust(t_bmp, rbar, n)
            z_rank = ts.corrado_rank_z(c, bl)
            z_sign = ts.generalized_sign_z(c, bl)
            rows.append(
                {
                    "indicator": g["indicator"], "symbol": g["symbol"], "window": g["window"], "signed": signed,
                    "n": n, "mean_car": float(c.mean()), "median_car": float(np.median(c)),
                    "sd_car": float(c.std(ddof=1)) if n > 1 else math.nan, "frac_positive": float(np.mean(c > 0)),
                    "t_cs": t_cs, "p_cs": ts.student_p(t_cs, n - 1),
                    "patell_z": z_pat, "p_patell": ts.normal_p(z_pat),
                    "bmp_t": t_bmp, "p_bmp": ts.student_p(t_bmp, n - 1),
                    "kp_rbar": rbar, "kp_t": t_kp, "p_kp": ts.student_p(t_kp, n - 1),
                    "rank_z": z_rank, "p_rank": ts.normal_p(z_rank),
                    "sign_z": z_sign, "p_sign": ts.normal_p(z_sign),
                }
            )
    schema = {
        "indicator": pl.String, "symbol": pl.String, "window": pl.String, "signed": pl.Boolean, "n": pl.Int64,
        **{c: pl.Float64 for c in ("mean_car", "median_car", "sd_car", "frac_positive", "t_cs", "p_cs", "patell_z", "p_patell",
                                   "bmp_t", "p_bmp", "kp_rbar", "kp_t", "p_kp", "rank_z", "p_rank", "sign_z", "p_sign")},
    }
    return pl.DataFrame(rows, schema=schema).with_columns(pl.col(pl.Float64).fill_nan(None))


_SENS_SCHEMA = {
    "indicator": pl.String, "symbol": pl.String, "window": pl.String, "spec": pl.String, "n": pl.Int64,
    "slope": pl.Float64, "se_hc1": pl.Float64, "t_hc1": pl.Float64, "se_hc3": pl.Float64, "t_hc3": pl.Float64,
    "p": pl.Float64, "ci_low": pl.Float64, "ci_high": pl.Float64, "r2": pl.Float64, "intercept": pl.Float64,
}


def _sensitivity(reactions: pl.DataFrame, cov: str) -> pl.DataFrame:
    r = reactions.filter(pl.col("car").is_not_null() & pl.col("hawkish_z").is_not_null() & pl.col("hawkish_z").is_finite())
    car = reactions["car"].fill_null(np.nan).to_numpy()
    x = reactions["hawkish_z"].fill_null(np.nan).to_numpy()
    rows = []
    for g in _groups(r, ["indicator", "symbol", "window"]).iter_rows(named=True):
        idx = np.asarray(g["_row"], dtype=np.int64)
        y, z = car[idx], x[idx]
        base = {"indicator": g["indicator"], "symbol": g["symbol"], "window": g["window"]}
        res = ols(np.column_stack([np.ones(idx.size), z]), y)
        if res is not None:
            rows.append({**base, "spec": "single", **coef_row(res, 1, cov), "intercept": float(res.coef[0])})
        pos, neg = np.maximum(z, 0.0), np.minimum(z, 0.0)
        if np.count_nonzero(pos) >= 2 and np.count_nonzero(neg) >= 2:
            res = ols(np.column_stack([np.ones(idx.size), pos, neg]), y)
            if res is not None:
                rows.append({**base, "spec": "positive", **coef_row(res, 1, cov), "intercept": float(res.coef[0])})
                rows.append({**base, "spec": "negative", **coef_row(res, 2, cov), "intercept": float(res.coef[0])})
    rows += _joint_rows(r, cov)
    return pl.DataFrame(rows, schema=_SENS_SCHEMA).with_columns(pl.col(pl.Float64).fill_nan(None))


def _joint_rows(r: pl.DataFrame, cov: str) -> list[dict]:
    """Andersen–Bollerslev–Diebold–Vega (2003) style: for each asset × window, regress the
    reaction at every release minute on the surprises of all indicators, zero for the
    indicators not released in that minute."""
    rows = []
    minute = pl.col("release_ts").dt.truncate("1m")
    for (sym, win), part in r.group_by(["symbol", "window"], maintain_order=True):
        wide = (
            part.with_columns(minute.alias("_minute"))
            .group_by("_minute", "indicator").agg(pl.col("hawkish_z").sum(), pl.col("car").first())
        )
        counts = wide.group_by("indicator").len().filter(pl.col("len") >= 3)
        inds = sorted(counts["indicator"].to_list())
        if len(inds) < 2:
            continue
        wide = wide.filter(pl.col("indicator").is_in(inds))
        y_frame = wide.group_by("_minute").agg(pl.col("car").first()).sort("_minute")
        xw = wide.pivot(on="indicator", index="_minute", values="hawkish_z").sort("_minute").fill_null(0.0)
        # An indicator whose surprises were all zero (e.g. every rate decision as expected)
        # carries no information and would make the design singular.
        inds = [i for i in inds if i in xw.columns and np.count_nonzero(xw[i].to_numpy()) >= 2]
        if len(inds) < 2:
            continue
        x = np.column_stack([np.ones(xw.height)] + [xw[i].to_numpy() for i in inds])
        res = ols(x, y_frame["car"].to_numpy())
        if res is None:
            continue
        for j, ind in enumerate(inds, start=1):
            rows.append({"indicator": ind, "symbol": sym, "window": win, "spec": "joint", **coef_row(res, j, cov), "intercept": float(res.coef[0])})
    return rows


def _paths_frame(parts: list, grid: np.ndarray, cal: pl.DataFrame, symbols: Sequence[str]) -> pl.DataFrame:
    x = cal["_x"].fill_null(np.nan).to_numpy()
    sign = np.sign(x)
    ind = cal["indicator"]
    frames = []
    for s_idx, mat in parts:
        n_ev, n_pt = mat.shape
        frames.append(
            pl.DataFrame(
                {
                    "indicator": np.repeat(ind.to_numpy(), n_pt),
                    "offset_us": np.tile(grid, n_ev),
                    "car": mat.reshape(-1),
                    "signed_car": (mat * np.where(sign != 0, sign, np.nan)[:, None]).reshape(-1),
                }
            ).with_columns(pl.lit(symbols[s_idx]).alias("symbol"))
        )
    f = pl.concat(frames).with_columns(pl.col("car").fill_nan(None), pl.col("signed_car").fill_nan(None))
    agg = f.group_by("indicator", "symbol", "offset_us").agg(
        pl.col("car").count().alias("n"),
        pl.col("car").mean().alias("mean_car"),
        (pl.col("car").std() / pl.col("car").count().sqrt()).alias("se"),
        pl.col("signed_car").count().alias("n_signed"),
        pl.col("signed_car").mean().alias("mean_signed_car"),
        (pl.col("signed_car").std() / pl.col("signed_car").count().sqrt()).alias("se_signed"),
    )
    counts = np.unique(np.concatenate([agg["n"].to_numpy(), agg["n_signed"].to_numpy()]))
    quantile = {int(c): ts.student_quantile(0.975, int(c) - 1) if c > 1 else None for c in counts}
    q = lambda n: pl.col(n).cast(pl.Int64).replace_strict(quantile, return_dtype=pl.Float64)  # noqa: E731
    agg = agg.with_columns(q("n").alias("_q"), q("n_signed").alias("_qs"))
    return (
        agg.with_columns(
            (pl.col("mean_car") - pl.col("_q") * pl.col("se")).alias("ci_low"),
            (pl.col("mean_car") + pl.col("_q") * pl.col("se")).alias("ci_high"),
            (pl.col("mean_signed_car") - pl.col("_qs") * pl.col("se_signed")).alias("ci_low_signed"),
            (pl.col("mean_signed_car") + pl.col("_qs") * pl.col("se_signed")).alias("ci_high_signed"),
            pl.duration(microseconds=pl.col("offset_us")).alias("offset"),
        )
        .sort("indicator", "symbol", "offset_us")
        .select("indicator", "symbol", "offset", "n", "mean_car", "se", "ci_low", "ci_high",
                "n_signed", "mean_signed_car", "se_signed", "ci_low_signed", "ci_high_signed")
    )


def _drift_frame(tests: pl.DataFrame, sensitivity: pl.DataFrame, wins: Sequence[Window]) -> pl.DataFrame:
    labels = [w.label for w in wins if w.kind == "drift"]
    t = tests.filter(~pl.col("signed") & pl.col("window").is_in(labels)).select(
        "indicator", "symbol", "window", "n", "mean_car", "median_car", "frac_positive", "t_cs", "p_cs", "bmp_t", "p_bmp"
    )
    s = sensitivity.filter((pl.col("spec") == "single") & pl.col("window").is_in(labels)).select(
        "indicator", "symbol", "window",
        pl.col("slope").alias("anticipation_slope"), pl.col("t_hc3").alias("anticipation_t_hc3"),
        pl.col("n").alias("anticipation_n"),
    )
    return t.join(s, on=["indicator", "symbol", "window"], how="left", coalesce=True)


def _volatility_frame(reactions: pl.DataFrame) -> pl.DataFrame:
    ok = reactions.filter(pl.col("rv").is_not_null() & pl.col("rv_before").is_not_null() & (pl.col("rv_before") > 0) & (pl.col("rv") > 0))
    lr = (pl.col("rv") / pl.col("rv_before")).log()
    lv = (pl.col("volume") / pl.col("volume_before")).log()
    ok = ok.with_columns(lr.alias("_lr"), pl.when((pl.col("volume") > 0) & (pl.col("volume_before") > 0)).then(lv).otherwise(None).alias("_lv"))
    tstat = lambda c: (pl.col(c).mean() / (pl.col(c).std() / pl.col(c).count().sqrt()))  # noqa: E731
    return ok.group_by("indicator", "symbol", "window", maintain_order=True).agg(
        pl.len().alias("n"),
        pl.col("rv").mean().alias("mean_rv"),
        pl.col("rv_before").mean().alias("mean_rv_before"),
        pl.col("_lr").mean().alias("mean_log_rv_ratio"),
        tstat("_lr").alias("t_log_rv_ratio"),
        pl.col("_lv").count().alias("n_volume"),
        pl.col("_lv").mean().alias("mean_log_volume_ratio"),
        tstat("_lv").alias("t_log_volume_ratio"),
    ).sort("indicator", "symbol", "window")
