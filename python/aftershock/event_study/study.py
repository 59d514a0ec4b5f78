"""``study(bars, calendar, windows=..., model=..., benchmark=None) -> Study``."""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Iterable, Sequence

import numpy as np
import polars as pl

from aftershock.event_study import _tables
from aftershock.event_study._inputs import Settings, SymbolBars, path_grid, prepared_calendar, settings_from
from aftershock.event_study._reactions import event_clock, symbol_reactions
from aftershock._checks import as_polars
from aftershock.errors import BarsError
from aftershock.event_study.returns import SHORT_ESTIMATION, SymbolSeries
from aftershock.event_study.windows import DEFAULT_WINDOWS, Window, parse_windows

__all__ = ["Study", "study"]


def _label_us(us: int) -> str:
    return parse_windows([timedelta(microseconds=us)])[0].label if us else "0"


@dataclass(frozen=True)
class Study:
    """Results of an event study; every table is a Polars frame.

    - ``reactions``: one row per event × asset × window — prices used, log return
      ``ret`` (and ``pct``, the simple return), the lowest low and highest high inside
      the window as log returns from the start price (``low_ret``, ``high_ret``),
      ``expected``, abnormal return ``car``, its prediction standard deviation ``sd``,
      standardized ``scar``, realized volatility and volume in the window and in the
      same-length window just before it, ``gap`` (a release while the declared session
      was closed: a gap reaction), the gap returns inside the window (``gaps``) and left
      out of the estimation window (``n_est_gap``), and ``reason`` when something is
      null or the reaction is a gap reaction.
    - ``sensitivity``: OLS of ``car`` on the hawkish-signed standardized surprise per
      indicator × asset × window (``spec="single"``), with separate slopes for positive
      and negative surprises (``"positive"``/``"negative"``, one regression) and the
      joint regression on every indicator released in the same minute (``"joint"``).
    - ``tests``: cross-sectional t, Patell, BMP, Kolari–Pynnönen, Corrado rank and
      generalized sign tests per indicator × asset × window, raw and surprise-signed.
      Every grouped frame keeps gap reactions apart (``gap`` column).
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
        the hawkish surprise, its robust t, R² and n. Gap reactions (releases while the
        market was closed) are separate rows with ``gap = true``, after the intraday ones."""
        keys = ["indicator", "symbol", "window", "gap"]
        t = self.tests.filter(~pl.col("signed")).select(*keys, "n", "mean_car", "t_cs")
        s = self.sensitivity.filter(pl.col("spec") == "single").select(
            *keys, pl.col("slope"), pl.col(f"t_{cov.lower()}").alias("t_slope"), "r2", pl.col("n").alias("n_slope"),
        )
        out = t.join(s, on=keys, how="left", coalesce=True)
        if symbol is not None:
            out = out.filter(pl.col("symbol") == symbol)
        order = {w.label: i for i, w in enumerate(self.windows)}
        return out.with_columns(pl.col("window").replace_strict(order, return_dtype=pl.Int32).alias("_w")).sort(
            "indicator", "symbol", "gap", "_w"
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

    def save(self, path: Any, *, overwrite: bool = False) -> Any:
        """Write the study to the directory ``path`` atomically: one Parquet file per
        table, the calendar it read, and ``meta.json`` (windows, model, settings, every
        argument, library versions, a content hash of the bars).
        ``aftershock.load(path)`` reads it back; docs/persistence.md."""
        from aftershock.event_study.persist import save_study

        return save_study(self, path, overwrite=overwrite)

    def rerun(self, bars: Any, calendar: Any = None) -> "Study":
        """The study computed again with the same arguments over ``bars`` (checked
        against the recorded content hash) and ``calendar`` (default: the saved one)."""
        from aftershock.event_study.persist import rerun_study

        return rerun_study(self, bars, calendar)

    def verify(self, bars: Any, calendar: Any = None) -> None:
        """Re-run (as :meth:`rerun`) and raise :class:`~aftershock.errors.VerificationError`
        unless every table comes back bit for bit."""
        from aftershock.event_study.persist import verify_study

        verify_study(self, bars, calendar)

    def _repr_html_(self) -> str:
        from aftershock.report import study_html

        return study_html(self)


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
    sessions: str | dict | None = None,
    path: tuple | None = None,
    cov: str = "HC3",
    rank_blocks: int = 100,
    kp_bars: int = 500,
    rank_variance: str = "known",
    sign_p: str = "blocks",
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
        their ``direction``. An optional ``time_precision`` (``exact``/``hour``/``day``)
        says how well ``release_ts`` is known.
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
    sessions : trading-session calendar (``"cme_equity"``, ``"nyse"``, ``"fx"``,
        ``"24/7"``; one for all symbols or a ``{symbol: name}`` dict). Releases while a
        declared market is closed give gap reactions; see ``docs/study.md``.
    path : ``(start, end[, step])`` offsets of the event-time CAR path.
    cov : ``"HC3"`` (default) or ``"HC1"``: which robust covariance the confidence
        intervals and p-values of ``sensitivity`` use (both SEs are always reported).
    rank_blocks : at most this many estimation blocks per event for the rank and sign tests.
    kp_bars : estimation residuals per event used for the Kolari–Pynnönen correlation.
    rank_variance : ``"known"`` (default) or ``"sample"`` (Corrado & Zivney's estimate).
    sign_p : ``"blocks"`` (default: p̂ from estimation blocks as long as the window) or
        ``"bars"`` (Cowan's p̂ from single-bar estimation abnormal returns).
    symbols : restrict the study to these symbols (default: all symbols in ``bars``).

    ``bars`` may also be a Parquet folder's path or :func:`aftershock.prices.scan_bars`
    of it (bars larger than memory): only the bars inside the events' estimation and
    event windows are loaded, and the study equals the in-memory one (docs/scale_data.md).
    """
    from aftershock.prices._scan import as_scan, is_bars_source

    if is_bars_source(bars):
        from aftershock.event_study._stream import study_stream

        return study_stream(
            as_scan(bars), calendar, windows, model, benchmark, estimation=estimation, exclude=exclude,
            min_estimation=min_estimation, bar_length=bar_length, sessions=sessions, path=path, cov=cov,
            rank_blocks=rank_blocks, kp_bars=kp_bars, rank_variance=rank_variance, sign_p=sign_p, symbols=symbols,
        )
    bars_in = SymbolBars(bars)
    s = settings_from(
        bars_in.names, windows, model, benchmark, estimation=estimation, exclude=exclude, min_estimation=min_estimation,
        bar_length=bar_length, sessions=sessions, path=path, cov=cov, rank_blocks=rank_blocks, kp_bars=kp_bars,
        rank_variance=rank_variance, sign_p=sign_p, symbols=symbols,
    )
    cal = prepared_calendar(calendar)
    reactions, tests, sens, paths, bar_us = _reactions_and_tests(bars_in, cal, s)
    settings = {
        "estimation": estimation, "exclude": (s.ex0, s.ex1), "min_estimation": s.min_estimation,
        "bar_length_us": {sym: bar_us[sym] for sym in s.symbols}, "cov": s.cov,
        "sessions": {sym: s.sessions[sym] for sym in s.symbols}, "rank_variance": s.rank_variance, "sign_p": s.sign_p,
    }
    out = Study(
        reactions.drop("_row", "_event"), sens, tests, paths, _tables.drift_frame(tests, sens, s.windows),
        _tables.volatility_frame(reactions), s.windows, s.model, s.benchmark, settings,
    )
    # what Study.save records to run it again: the call and a content hash of the bars
    args = {
        "model": model, "benchmark": benchmark, "estimation": estimation, "exclude": exclude,
        "min_estimation": min_estimation, "bar_length": bar_length, "sessions": sessions, "path": path, "cov": cov,
        "rank_blocks": rank_blocks, "kp_bars": kp_bars, "rank_variance": rank_variance, "sign_p": sign_p,
        "symbols": None if symbols is None else list(symbols),
    }
    from aftershock.event_study.persist import LazyBarsRecord, bars_record

    # a Polars frame is hashed only if the study is saved or re-run; anything else was
    # converted for the study, and is hashed now rather than kept converted
    bars_rec = LazyBarsRecord(bars) if isinstance(bars, pl.DataFrame) else bars_record(as_polars(bars, BarsError, "bars"))
    object.__setattr__(out, "_inputs", {"bars": bars_rec, "calendar": calendar, "args": args})
    return out


def _reactions_and_tests(bars_in: SymbolBars, cal: pl.DataFrame, s: Settings):
    """Reactions, the cross-event tests, the regressions and the CAR paths, streaming the
    symbols one at a time: only the benchmark's arrays stay loaded throughout, and the
    next symbol's. No test or regression group spans two symbols, so each symbol's
    tables are computed as soon as its reactions are (while the other core prepares
    the next symbol's arrays) and merged in the end."""
    with ThreadPoolExecutor(max_workers=2) as pool:  # the Rust passes release the GIL
        return _stream_symbols(bars_in, cal, s, pool)


def _stream_symbols(bars_in: SymbolBars, cal: pl.DataFrame, s: Settings, pool: ThreadPoolExecutor):
    release = cal["release_ts"].dt.epoch("us").to_numpy()
    precision = cal["_precision_us"].to_numpy()
    # every symbol is validated, used or not; the first bad row in bars order is
    # reported (map re-raises the first failure in symbol order)
    frames = dict(zip(bars_in.names, pool.map(bars_in.validated, bars_in.names)))
    bar_us = dict(zip(s.needed, pool.map(lambda sym: SymbolSeries.bar_length(frames[sym], s.bar_length[sym]), s.needed)))
    # the path grid is common to all symbols: never finer than the longest bar
    grid = path_grid(s.windows, max(bar_us[sym] for sym in s.symbols), s.path)

    spare: list = []  # the arrays of finished symbols, refilled by the next ones

    def series(sym: str, benchmark: SymbolSeries | None = None) -> SymbolSeries:
        return SymbolSeries.from_frame(sym, frames[sym], bar_us[sym], s.sessions[sym], spare, benchmark)

    bench = series(s.benchmark) if s.model == "market" else None

    def load(sym: str) -> SymbolSeries:
        return bench if bench is not None and sym == s.benchmark else series(sym, bench)

    tables, reasons, paths = [], [], []
    # the next symbol's per-bar pass runs on the other core while this one is studied
    upcoming = pool.submit(load, s.symbols[0])
    for s_idx, sym in enumerate(s.symbols):
        ser = upcoming.result()
        upcoming = pool.submit(load, s.symbols[s_idx + 1]) if s_idx + 1 < len(s.symbols) else None
        clock = event_clock(release, precision, s.sessions[sym])
        res = symbol_reactions(ser, bench if sym != s.benchmark else None, clock, s, grid)
        res.columns["_symbol"] = np.full(res.columns["_event"].size, s_idx)
        reasons.append(res.columns["_reason"])
        paths.append((s_idx, res.path))
        tables.append(_symbol_tables(res, sym, cal, s))
        if ser is not bench:
            ser.release(spare)
        del ser, res
    spare.clear()
    bench = None  # the tables below need no bar arrays

    _warn_short_estimation(np.concatenate(reasons), s)
    reactions, tests, sens = _tables.merge_symbols(tables)
    return reactions.drop("_row").with_row_index("_row"), tests, sens, _tables.paths_frame(paths, grid, cal, s.symbols), bar_us


def _symbol_tables(res: Any, sym: str, cal: pl.DataFrame, s: Settings) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """One symbol's reactions, cross-event tests and regressions."""
    reactions = _tables.reactions_frame(res.columns, cal, s.symbols, s.windows)
    order = reactions["_row"].to_numpy()
    reactions = reactions.drop("_row").with_row_index("_row")
    blocks = res.blocks[order]
    sign_blocks = blocks if res.sign_blocks is res.blocks else res.sign_blocks[order]
    tests = _tables.event_tests(reactions, blocks, sign_blocks, {sym: res.resid}, {sym: res.k}, s.rank_variance)
    return reactions, tests, _tables.sensitivity(reactions, s.cov)


def _warn_short_estimation(reason: np.ndarray, s: Settings) -> None:
    short = int(np.sum(reason == SHORT_ESTIMATION))
    if short > 0.5 * reason.size:
        warnings.warn(
            f"{short} of {reason.size} reactions have no abnormal return: removing every event's "
            f"window ({_label_us(s.ex0)} to {_label_us(s.ex1)} around each release) leaves fewer than "
            f"{s.min_estimation} estimation returns. Pass a narrower exclude=, e.g. exclude=('-1h', '4h'), "
            "or a longer estimation= window.",
            stacklevel=3,
        )
