"""The study's inputs, checked once: arguments, the calendar and the bars per symbol."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Sequence

import numpy as np
import polars as pl

from aftershock import _engine
from aftershock._checks import as_polars, utc_timestamps
from aftershock.errors import BarsError, CalendarError, InputError
from aftershock.event_study import models as _models
from aftershock.event_study.returns import _f64, _ts_us
from aftershock.event_study.windows import Window, parse_duration, parse_windows
from aftershock.prices import BARS_SCHEMA, validate_bars
from aftershock.prices._sessions import SESSIONS

__all__ = ["Settings", "SymbolBars", "settings_from", "prepared_calendar", "path_grid", "us"]

_US = timedelta(microseconds=1)
_PRECISION_US = {"exact": 0, "hour": 3_600_000_000, "day": 86_400_000_000}
_PATH_STEPS = ("1m", "5m", "15m", "30m", "1h", "4h", "1d", "1w")
_MAX_PATH_POINTS = 100_000  # event-time points of a CAR path (the default has about 120)
RANK_VARIANCES = ("known", "sample")
SIGN_P = ("blocks", "bars")


def us(delta: timedelta) -> int:
    return int(delta / _US)


@dataclass(frozen=True)
class Settings:
    """Everything ``study()`` was asked for, parsed: offsets in microseconds."""

    windows: tuple[Window, ...]
    model: str
    benchmark: str | None
    symbols: tuple[str, ...]
    w_start: np.ndarray
    w_end: np.ndarray
    est0: int
    est1: int
    ex0: int
    ex1: int
    min_estimation: int
    bar_length: dict  # symbol -> µs or None (inferred)
    sessions: dict  # symbol -> session name or None
    path: Any
    cov: str
    rank_blocks: int
    kp_bars: int
    rank_variance: str
    sign_p: str

    @property
    def needed(self) -> list[str]:
        """Symbols whose bars are read: the studied ones and the benchmark."""
        extra = [self.benchmark] if self.benchmark is not None and self.benchmark not in self.symbols else []
        return list(self.symbols) + extra

    def model_for(self, symbol: str) -> str:
        # The market model of the benchmark on itself is degenerate: it gets the constant mean.
        return "constant_mean" if self.model == "market" and symbol == self.benchmark else self.model


def _per_symbol(spec: Any, present: Sequence[str], column: str, parse) -> dict:
    if isinstance(spec, dict):
        unknown = [s for s in spec if s not in present]
        if unknown:
            raise InputError(f"{column} names symbols {unknown} that are not in bars {list(present)}", argument=column)
        return {s: (parse(spec[s]) if spec.get(s) is not None else None) for s in present}
    value = None if spec is None else parse(spec)
    return {s: value for s in present}


def _bar_length(value: Any) -> int:
    length = us(parse_duration(value, column="bar_length"))
    if length <= 0:
        raise InputError(f"bar_length must be a positive duration, got {value!r}", argument="bar_length")
    return length


def _session_name(name: Any) -> str:
    if name not in SESSIONS:
        raise InputError(f"unknown session calendar {name!r}; choose one of {sorted(SESSIONS)}", argument="sessions")
    return name


def settings_from(
    present: Sequence[str], windows: Any, model: str, benchmark: str | None, *, estimation: Any, exclude: Any,
    min_estimation: int, bar_length: Any, sessions: Any, path: Any, cov: str, rank_blocks: int, kp_bars: int,
    rank_variance: str, sign_p: str, symbols: Sequence[str] | None,
) -> Settings:
    """Check the arguments against the symbols ``present`` in the bars."""
    if model not in _models.MODELS:
        raise InputError(f"unknown model {model!r}; choose one of {sorted(_models.MODELS)}", argument="model")
    if cov not in ("HC1", "HC3"):
        raise InputError(f"cov must be 'HC1' or 'HC3', got {cov!r}", argument="cov")
    if rank_variance not in RANK_VARIANCES:
        raise InputError(f"rank_variance must be one of {RANK_VARIANCES}, got {rank_variance!r}", argument="rank_variance")
    if sign_p not in SIGN_P:
        raise InputError(f"sign_p must be one of {SIGN_P}, got {sign_p!r}", argument="sign_p")
    for name, value, least in (("min_estimation", min_estimation, 0), ("rank_blocks", rank_blocks, 1), ("kp_bars", kp_bars, 2)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
            raise InputError(f"{name} must be an integer >= {least}, got {value!r}", argument=name)
    wins = tuple(parse_windows(windows))
    if benchmark is not None and benchmark not in present:
        raise InputError(f"benchmark {benchmark!r} is not a symbol in bars {list(present)}", argument="benchmark")
    if model == "market" and benchmark is None:
        raise InputError("the market model needs a benchmark symbol", argument="benchmark")
    if symbols is None:
        symbols = list(present)
    else:
        missing = [s for s in symbols if s not in present]
        if missing:
            raise InputError(f"symbols {missing} are not in bars {list(present)}", argument="symbols")
        if not symbols:
            raise InputError("symbols is empty: name at least one symbol, or pass None for all", argument="symbols")
    w_start = np.array([us(w.start) for w in wins], dtype=np.int64)
    w_end = np.array([us(w.end) for w in wins], dtype=np.int64)
    earliest = min(0, int(w_start.min()))
    if exclude is None:
        ex0, ex1 = earliest, max(0, int(w_end.max()))
    else:
        ex0, ex1 = (us(parse_duration(v, column="exclude")) for v in exclude)
    est0, est1 = (us(parse_duration(v, column="estimation")) for v in estimation)
    est1 = min(est1, earliest)
    if est1 <= est0:
        raise InputError("the estimation window must end after it starts (and before the earliest window)", argument="estimation")
    return Settings(
        windows=wins, model=model, benchmark=benchmark, symbols=tuple(symbols), w_start=w_start, w_end=w_end,
        est0=est0, est1=est1, ex0=ex0, ex1=ex1, min_estimation=min_estimation,
        bar_length=_per_symbol(bar_length, present, "bar_length", _bar_length),
        sessions=_per_symbol(sessions, present, "sessions", _session_name),
        path=path, cov=cov, rank_blocks=rank_blocks, kp_bars=kp_bars, rank_variance=rank_variance, sign_p=sign_p,
    )


def prepared_calendar(calendar: Any) -> pl.DataFrame:
    """The calendar in UTC with ``_x`` (the regressor: hawkish z, or a policy event's
    direction) and ``_precision_us`` (the length of the release time's precision interval)."""
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
    if "time_precision" in cal.columns:
        precision = pl.col("time_precision").fill_null("exact")
        bad = cal.select((~precision.is_in(list(_PRECISION_US))).arg_true().first()).item()
        if bad is not None:
            raise CalendarError(
                f"time_precision must be one of {tuple(_PRECISION_US)}, got {cal['time_precision'][bad]!r}",
                column="time_precision", row=int(bad),
            )
        precision_us = precision.replace_strict(_PRECISION_US, return_dtype=pl.Int64)
    else:
        precision_us = pl.lit(0, dtype=pl.Int64)
    policy_label = pl.concat_str(pl.lit("POLICY:"), pl.col("category").fill_null("other"))
    return cal.with_columns(
        pl.coalesce(pl.col("indicator"), policy_label).alias("indicator"),
        # Macro events load on the hawkish-signed surprise; policy events on their analyst direction.
        pl.coalesce(pl.col("hawkish_z").cast(pl.Float64), pl.col("direction").cast(pl.Float64)).alias("_x"),
        precision_us.alias("_precision_us"),
    )


class SymbolBars:
    """The bars, one symbol at a time: ``names`` in order of appearance and
    :meth:`validated` returning one symbol's validated rows (``ts``, ``low``, ``high``,
    ``close`` and ``volume`` when present).

    When each symbol's rows are contiguous (the usual layout) every symbol's slice is
    validated on its own by :func:`aftershock.prices.validate_bars`, with the symbol
    column as a constant — the check of increasing timestamps then needs no grouping —
    and an error names the row in ``bars``. Other layouts are validated whole, then
    sorted by symbol (stable).
    """

    def __init__(self, bars: Any):
        frame = as_polars(bars, BarsError, "bars")
        validate_bars(frame.head(0))  # columns and dtypes
        if frame.height == 0:
            raise BarsError("bars are empty")
        runs = frame["symbol"].cast(pl.String).rle().struct.unnest()
        names = runs["value"].to_list()
        lens = runs["len"].to_numpy().astype(np.int64)
        starts = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
        self._keep = [c for c in ("ts", "low", "high", "close", "volume") if c in frame.columns]
        self._slices: dict[str, tuple[int, int]] = {}
        self._whole: dict[str, pl.DataFrame] = {}
        if len(names) == len(set(names)) and None not in names:
            self._frame = frame
            self._slices = {name: (int(a), int(n)) for name, a, n in zip(names, starts, lens)}
            self.names = names
        else:
            whole = validate_bars(frame).sort("symbol", maintain_order=True)
            for name, part in whole.partition_by("symbol", maintain_order=True, as_dict=True).items():
                self._whole[name[0]] = part.select(self._keep)
            self.names = frame["symbol"].unique(maintain_order=True).to_list()

    def validated(self, name: str) -> pl.DataFrame:
        if name in self._whole:
            return self._whole[name]
        a, n = self._slices[name]
        part = self._frame.slice(a, n)
        try:
            return _checked(part, name, self._keep)
        except BarsError as err:
            row = None if err.row is None else err.row + a
            raise BarsError(err.message, column=err.column, row=row) from None


_CANONICAL = {k: v for k, v in BARS_SCHEMA.items() if k != "symbol"}


def _checked(part: pl.DataFrame, name: str, keep: Sequence[str]) -> pl.DataFrame:
    """One symbol's rows, checked by one pass in Rust (``rust/study``: increasing ``ts``,
    finite positive prices inside ``[low, high]``, finite non-negative volume) and
    returned with the canonical dtypes. Any problem is reported by
    :func:`aftershock.prices.validate_bars` on the same rows, so the message and the
    row it names are those of the full validation."""
    cols = [c for c in _CANONICAL if c in part.columns]
    frame = part.select(cols)
    if any(frame.schema[c] != _CANONICAL[c] for c in cols):  # dtypes were checked on the whole frame
        frame = frame.with_columns(utc_timestamps(frame, "ts", BarsError), *[pl.col(c).cast(pl.Float64) for c in cols[1:]])

    def full_validation() -> None:
        validate_bars(part.with_columns(pl.lit(name, dtype=pl.String).alias("symbol")))

    if any(frame.null_count().row(0)):
        full_validation()  # raises, naming the first bad row
    arrays = {"ts": _ts_us(frame), **{c: _f64(frame, c) for c in cols[1:]}}
    try:
        _engine.study_check(arrays)
    except BarsError:
        full_validation()
        raise
    return frame.select(keep)


def path_grid(windows: Sequence[Window], bar_us: int, path: Any) -> np.ndarray:
    """Event-time offsets (µs) of the CAR path: ``path = (start, end[, step])`` or, by
    default, about 120 rounded steps over the span of the windows, never finer than a bar."""
    if path is not None:
        if not isinstance(path, (tuple, list)) or len(path) not in (2, 3):
            raise InputError(f"path must be (start, end) or (start, end, step), got {path!r}", argument="path")
        start, end = parse_duration(path[0], column="path"), parse_duration(path[1], column="path")
        step = parse_duration(path[2], column="path") if len(path) > 2 else None
        if end <= start:
            raise InputError("path end must come after its start", argument="path")
        if step is not None and step <= timedelta(0):
            raise InputError(f"path step must be a positive duration, got {path[2]!r}", argument="path")
        if step is not None and (end - start) / step > _MAX_PATH_POINTS:
            raise InputError(
                f"path {path!r} has {(end - start) // step:,} steps, more than {_MAX_PATH_POINTS:,}: use a longer step",
                argument="path",
            )
    else:
        start = min(timedelta(0), min(w.start for w in windows))
        end = max(timedelta(0), max(w.end for w in windows))
        step = None
    span = us(end - start)
    if step is None:
        want = max(bar_us, span / 120)
        step = next((parse_duration(s) for s in _PATH_STEPS if us(parse_duration(s)) >= want), end - start)
    step_us = max(us(step), 1)
    first = -((-us(start)) // step_us) * step_us if us(start) < 0 else us(start)
    grid = np.arange(first, us(end) + 1, step_us, dtype=np.int64)
    return np.union1d(grid, [0])
