"""Backtest results: fills, trades, equity and order statuses as Polars frames, and stats."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np
import polars as pl

from aftershock.trading._codes import labels
from aftershock.trading.stats import (
    Conventions,
    Stats,
    convention_figures,
    conventions_sampling,
    extra_figures,
    resolve_conventions,
    resolve_sampling,
)
from aftershock._time import polars_every
from aftershock.errors import ConfigError, InputError

if TYPE_CHECKING:
    from aftershock.trading.engine import PreparedBars

__all__ = ["Result", "STATS_DOC", "ENGINE_STATS", "SWEEP_STATS", "Stats"]

_REASONS = labels("reason")
_STATUSES = labels("status")
_STATUS_REASONS = labels("reject_reason")
_SIDES = labels("side")
_UTC = pl.Datetime("us", "UTC")

#: Every key of :meth:`Result.stats`, documented (a test checks they match).
STATS_DOC: dict[str, str] = {
    "start": "first bar timestamp (UTC)",
    "end": "last bar timestamp (UTC)",
    "init_cash": "starting cash",
    "final_equity": "equity after the last bar",
    "total_return": "final_equity / init_cash - 1 (NaN when init_cash is 0)",
    "max_drawdown": "largest peak-to-trough fall of equity as a fraction of the peak (<= 0), from closes",
    "sharpe": "mean / std (ddof=1) of daily returns of the close-of-day equity, times sqrt(periods_per_year); null with fewer than 2 days or zero variance",
    "trades": "closed trades (round-trip reductions)",
    "open_trades": "positions still open at the end",
    "win_rate": "share of closed trades with pnl > 0; null without closed trades",
    "avg_trade_return": "mean return of closed trades (arithmetic; geometric under backtesting.py's conventions); null without closed trades",
    "expectancy": "arithmetic mean return of closed trades, whatever the conventions; null without closed trades",
    "profit_factor": "gross profit / gross loss of closed trades; null when there is no loss",
    "total_fees": "sum of all fees paid",
    "exposure": "share of the [start, end] time with any position open",
    "bars_visited": "bars the engine processed (its event-sparse work)",
    # Added for backtesting.py users; conventions in docs/stats.md.
    "duration": "end - start",
    "equity_peak": "highest equity, init_cash included, from closes",
    "benchmark": "symbol of buy_hold_return, alpha and beta: the argument, else the symbol with the most fills, else the first symbol",
    "buy_hold_return": "last close / first close - 1 of the benchmark symbol",
    "return_ann": "geometric: (product of (1 + periodic return)) ** (periods_per_year / number of returns) - 1",
    "volatility_ann": "std (ddof=1) of periodic returns times sqrt(periods_per_year) (arithmetic)",
    "cagr": "(final_equity / init_cash) ** (1 / years) - 1, years = duration in days / 365",
    "sortino": "mean of periodic excess returns / downside deviation (root mean square of negative excess returns), times sqrt(periods_per_year)",
    "calmar": "return_ann / -max_drawdown (bar-by-bar drawdown); null without a drawdown",
    "alpha": "total_return - r - beta * (buy_hold_return - r), r = risk_free compounded over duration",
    "beta": "cov / var of per-bar log returns of equity and of the benchmark's close (sample, ddof=1)",
    "avg_drawdown": "mean of the deepest fall of each drawdown episode (<= 0), bar by bar",
    "max_drawdown_duration": "longest drawdown episode: from the last bar at a peak to the first bar back at it, or the last bar",
    "avg_drawdown_duration": "mean length of the drawdown episodes, rounded to the microsecond",
    "best_trade": "highest return of a closed trade",
    "worst_trade": "lowest return of a closed trade",
    "max_trade_duration": "longest exit_ts - entry_ts of a closed trade",
    "avg_trade_duration": "mean exit_ts - entry_ts of closed trades, rounded to the microsecond",
    "sqn": "Van Tharp's system quality number: sqrt(trades) * mean pnl / std pnl (ddof=1), closed trades",
    "kelly": "win_rate - (1 - win_rate) / (mean winning pnl / mean losing pnl), closed trades",
    "periods_per_year": "annualization factor of sharpe, sortino, return_ann and volatility_ann",
    "return_sampling": "'calendar': equity at the end of every UTC calendar day; 'trading': only days with bars",
    "conventions": "the conventions of the figures: 'aftershock', 'backtesting.py' or 'custom' (docs/stats.md)",
    "risk_free": "annual risk-free rate (the argument), compounded to the period for sharpe and sortino",
}


#: The figures of the engine's one streaming pass over a run's equity rows (a
#: :class:`~aftershock.trading.stream.BacktestStream`), in
#: :meth:`Result.stats` order; each equals ``stats()`` of that run (calendar-day returns,
#: no risk-free rate: the defaults).
ENGINE_STATS: tuple[str, ...] = (
    "start", "end", "init_cash", "final_equity", "total_return", "max_drawdown", "sharpe", "trades",
    "open_trades", "win_rate", "avg_trade_return", "profit_factor", "total_fees", "exposure", "bars_visited",
    "duration", "equity_peak", "return_ann", "volatility_ann", "cagr", "sortino", "buy_hold_return",
    "best_trade", "worst_trade", "max_trade_duration", "avg_trade_duration", "sqn", "kelly",
    "benchmark", "periods_per_year", "return_sampling", "risk_free",
)

#: Every key of :meth:`Result.stats`, in its order: the columns of a row of ``ash.sweep``,
#: ``Sweep.run`` and ``backtest_many(stats_only=True)``, each equal to ``stats()`` of that
#: variant run alone (under the sweep's ``conventions``).
SWEEP_STATS: tuple[str, ...] = (
    "start", "end", "init_cash", "final_equity", "total_return", "max_drawdown", "sharpe", "trades",
    "open_trades", "win_rate", "avg_trade_return", "profit_factor", "total_fees", "exposure", "bars_visited",
    "duration", "equity_peak", "avg_drawdown", "max_drawdown_duration", "avg_drawdown_duration", "return_ann",
    "volatility_ann", "cagr", "sortino", "calmar", "buy_hold_return", "alpha", "beta", "best_trade", "worst_trade",
    "max_trade_duration", "avg_trade_duration", "sqn", "kelly", "expectancy", "benchmark", "periods_per_year",
    "return_sampling", "risk_free", "conventions",
)


def _decode(codes: pl.Series, names: list[Any]) -> pl.Series:
    """Engine codes to their names; null codes, and codes outside ``names``, give null."""
    mapping = {k: v for k, v in enumerate(names) if v is not None}
    return codes.replace_strict(mapping, default=None, return_dtype=pl.String)


class Result:
    """The outcome of one backtest. Frames are built once, on first access."""

    def __init__(self, raw: Mapping[str, Any], bars: "PreparedBars", orders: pl.DataFrame, config: dict[str, Any]):
        self._raw = raw
        self._bars = bars
        self._orders_in = orders
        self.config = dict(config)
        self.bars_visited: int = int(raw["bars_visited"])
        self._cache: dict[str, pl.DataFrame] = {}
        #: keyword defaults of :meth:`stats` (a preset sets its peer's conventions here)
        self.stats_defaults: dict[str, Any] = {}
        # what produced it (strategy and parameters, calendar, signal masks) and, when
        # loaded, its saved record: what save() and verify() need
        self._inputs: dict[str, Any] = {}
        self._saved: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"<aftershock.Result fills={self.fills.height} trades={self.trades.height} final_equity={self.final_equity:.2f}>"

    def _table(self, name: str) -> pl.DataFrame:
        """One of the engine's tables (fills, trades, equity, orders) as it came out of
        Rust: imported through the Arrow C stream interface, the values not copied."""
        key = "raw:" + name
        if key not in self._cache:
            self._cache[key] = pl.DataFrame(self._raw[name])
        return self._cache[key]

    def _symbols(self, codes: pl.Series) -> pl.Series:
        return _decode(codes, list(self._bars.symbols))

    def _tags(self, order_ids: pl.Series) -> pl.Series:
        """The tag of each order id; null for -1 (liquidations, end-of-data closes)."""
        ids = order_ids.to_numpy()
        tags = self._orders_in.get_column("tag")
        valid = ids >= 0
        if tags.len() == 0 or not valid.any():
            return pl.Series([None] * len(ids), dtype=pl.String)
        picked = tags.gather(np.where(valid, ids, 0))
        return pl.select(pl.when(pl.Series(valid)).then(picked)).to_series().alias("tag")

    @property
    def fills(self) -> pl.DataFrame:
        """One row per fill: order_id, ts, symbol, side, qty, price, fee, reason, tag."""
        if "fills" not in self._cache:
            f = self._table("fills")
            self._cache["fills"] = f.with_columns(
                symbol=self._symbols(f.get_column("symbol")),
                side=_decode(f.get_column("side"), _SIDES),
                reason=_decode(f.get_column("reason"), _REASONS),
                tag=self._tags(f.get_column("order_id")),
            )
        return self._cache["fills"]

    @property
    def trades(self) -> pl.DataFrame:
        """One row per position reduction (exit trades), plus open positions (status 'open')."""
        if "trades" not in self._cache:
            t = self._table("trades")
            reason = t.get_column("exit_reason")
            self._cache["trades"] = t.with_columns(
                symbol=self._symbols(t.get_column("symbol")),
                direction=pl.when(pl.col("direction") > 0).then(pl.lit("long")).otherwise(pl.lit("short")),
                exit_reason=_decode(reason, _REASONS),
                tag=self._tags(t.get_column("entry_order_id")),
                status=pl.when(pl.col("exit_reason").is_null()).then(pl.lit("open")).otherwise(pl.lit("closed")),
            )
        return self._cache["trades"]

    @property
    def equity(self) -> pl.DataFrame:
        """ts, cash, equity, gross_exposure at the first bar and at every timestamp the
        engine touched; flat in between (forward fill is exact)."""
        if "equity" not in self._cache:
            self._cache["equity"] = self._table("equity")
        return self._cache["equity"]

    @property
    def orders(self) -> pl.DataFrame:
        """The input orders (defaults filled in) with status, status_ts, filled_qty, reject_reason."""
        if "orders" not in self._cache:
            o = self._table("orders")
            self._cache["orders"] = self._orders_in.with_columns(
                order_id=pl.int_range(pl.len(), dtype=pl.Int64),
                status=_decode(o.get_column("status"), _STATUSES),
                status_ts=o.get_column("status_ts"),
                filled_qty=o.get_column("filled_qty"),
                reject_reason=_decode(o.get_column("reject_reason"), _STATUS_REASONS),
            )
        return self._cache["orders"]

    @property
    def final_equity(self) -> float:
        eq = self.equity.get_column("equity")
        return float(eq[-1]) if len(eq) else float(self.config["init_cash"])

    def equity_curve(self, every: str = "1d") -> pl.DataFrame:
        """Equity sampled at the end of each ``every`` period (exact: equity is flat
        between the engine's rows). ``every``: a positive duration (``"1h"``,
        ``"1d"``, ``"90m"``, a ``timedelta``) or a calendar period (``"1w"`` from
        Mondays, ``"1mo"``, ``"1q"``, ``"1y"``)."""
        eq = self.equity
        ts = self._bars.arrays["ts"]
        try:
            every = polars_every(every, calendar=True, span_us=int(ts.max()) - int(ts.min()) if len(ts) else 0)
        except InputError as exc:
            raise ConfigError(exc.message, column="every") from None
        return (
            eq.sort("ts")
            .group_by_dynamic("ts", every=every, label="left")
            .agg(pl.col("equity").last(), pl.col("cash").last(), pl.col("gross_exposure").last())
            .upsample("ts", every=every)
            .fill_null(strategy="forward")
        )

    def stats(
        self,
        *,
        periods_per_year: float | None = None,
        returns: str | None = None,
        risk_free: float = 0.0,
        benchmark: str | None = None,
        conventions: str | Conventions | None = None,
        warmup: int | None = None,
    ) -> Stats:
        """Headline figures, labelled; every key is described in :data:`STATS_DOC` and
        docs/stats.md.

        ``returns`` is how periodic returns are sampled: ``"calendar"`` (equity at the end
        of every UTC day, the default, annualized by 365) or ``"trading"`` (only days with
        bars, annualized by 252). ``periods_per_year=252`` alone means trading-day returns;
        a number other than 365 or 252 needs ``returns=`` too. ``risk_free`` is an annual
        rate; ``benchmark`` the symbol for buy and hold, alpha and beta.

        ``conventions`` picks how the figures peers disagree on are computed:
        ``"aftershock"`` (ours), ``"backtesting.py"`` (every figure of backtesting.py's
        table, computed its way) or a :class:`~aftershock.trading.stats.Conventions`;
        the default is ``"aftershock"`` unless a preset set its peer's (see
        :attr:`stats_defaults`). ``periods_per_year`` / ``returns`` override its sampling.
        ``warmup`` is the number of the benchmark's first bars buy & hold skips
        (backtesting.py starts it after its indicators' warm-up).
        """
        conv = resolve_conventions(conventions if conventions is not None else self.stats_defaults.get("conventions"))
        if warmup is None:
            warmup = self.stats_defaults.get("warmup", 0)
        if isinstance(warmup, bool) or not isinstance(warmup, (int, np.integer)) or warmup < 0:
            raise ConfigError(f"warmup must be a whole number of bars >= 0, got {warmup!r}", column="warmup")
        if periods_per_year is None and returns is None:
            sampling, periods_per_year = conventions_sampling(conv, self._bars.arrays["ts"])
        else:
            sampling, periods_per_year = resolve_sampling(periods_per_year, returns)
        if isinstance(risk_free, bool) or not isinstance(risk_free, (int, float, np.integer, np.floating)) or not -1 < risk_free < 1:
            raise ConfigError(f"risk_free must be an annual rate in (-1, 1), got {risk_free!r}", column="risk_free")
        eq = self.equity
        values = eq.get_column("equity").to_numpy()
        init = float(self.config["init_cash"])
        ts_all = self._bars.arrays["ts"]
        start_us, end_us = int(ts_all.min()), int(ts_all.max())
        peak = np.maximum.accumulate(np.concatenate([[init], values]))
        daily = self._sampled_equity(sampling)
        with np.errstate(divide="ignore", invalid="ignore"):  # init_cash=0: NaN figures, no warning
            dd = (np.concatenate([[init], values]) / peak - 1.0).min()
            rets = np.diff(np.concatenate([[init], daily])) / np.concatenate([[init], daily[:-1]])
        if risk_free:
            rets_x = rets - ((1.0 + risk_free) ** (1.0 / periods_per_year) - 1.0)
        else:
            rets_x = rets
        sharpe = None
        if len(rets) >= 2:
            sd = float(np.std(rets_x, ddof=1))
            if sd > 0:
                sharpe = float(np.mean(rets_x) / sd * math.sqrt(periods_per_year))
        trades = self.trades
        closed = trades.filter(pl.col("status") == "closed")
        pnl = closed.get_column("pnl").to_numpy()
        loss = -pnl[pnl < 0].sum()
        ets = eq.get_column("ts").to_physical().to_numpy()
        gross = eq.get_column("gross_exposure").to_numpy()
        span = end_us - start_us
        exposed = 0
        if len(ets) and span > 0:
            nxt = np.append(ets[1:], end_us)
            exposed = int(np.sum((nxt - ets)[gross > 0]))
        stats = {
            "start": pl.Series([start_us]).cast(_UTC).item(),
            "end": pl.Series([end_us]).cast(_UTC).item(),
            "init_cash": init,
            "final_equity": self.final_equity,
            "total_return": self.final_equity / init - 1.0 if init else math.nan,
            "max_drawdown": float(dd),
            "sharpe": sharpe,
            "trades": closed.height,
            "open_trades": trades.height - closed.height,
            "win_rate": float((pnl > 0).mean()) if len(pnl) else None,
            # NumPy's pairwise sum: the Rust sweep reproduces it bit for bit
            "avg_trade_return": float(np.mean(closed.get_column("return").to_numpy())) if len(pnl) else None,
            "profit_factor": float(pnl[pnl > 0].sum() / loss) if loss > 0 else None,
            "total_fees": float(self.fills.get_column("fee").to_numpy().sum()),
            "exposure": exposed / span if span > 0 else 0.0,
            "bars_visited": self.bars_visited,
        }
        bench = self._benchmark(benchmark)
        bench_ts = bench_close = None
        if bench is not None:
            lo, hi = self._bars.arrays["offsets"][self._bars.symbol_index[bench] : self._bars.symbol_index[bench] + 2]
            bench_ts, bench_close = ts_all[lo:hi], self._bars.arrays["close"][lo:hi]
        extra = extra_figures(
            init=init, final=self.final_equity, start_us=start_us, end_us=end_us, bar_ts=ts_all,
            bar_offsets=self._bars.arrays["offsets"],
            eq_ts=ets, eq_values=values, rets=rets, periods_per_year=periods_per_year, risk_free=float(risk_free),
            closed=closed, bench_ts=bench_ts, bench_close=bench_close,
        )
        stats.update(extra)
        stats["expectancy"] = stats["avg_trade_return"]
        stats.update(benchmark=bench, periods_per_year=periods_per_year, return_sampling=sampling, risk_free=float(risk_free))
        stats.update(convention_figures(
            conv, stats, daily=daily, periods_per_year=periods_per_year, risk_free=float(risk_free), closed=closed,
            bar_ts=ts_all, bar_offsets=self._bars.arrays["offsets"], eq_ts=ets, eq_values=values, start_us=start_us,
            end_us=end_us, init=init, bench_close=bench_close, warmup=int(warmup),
        ))
        stats["conventions"] = conv.name
        return Stats(stats)

    def _sampled_equity(self, sampling: str) -> np.ndarray:
        """Equity at the end of each UTC day: every calendar day, or only days with bars."""
        curve = self.equity_curve("1d")
        if sampling == "trading":
            # each symbol's bars are sorted: its distinct days are where the day number changes
            day = self._bars.arrays["ts"] // 86_400_000_000
            offsets = self._bars.arrays["offsets"]
            firsts = np.concatenate([d[np.append(True, d[1:] != d[:-1])] for d in np.split(day, offsets[1:-1]) if len(d)])
            days = pl.Series(np.unique(firsts) * 86_400_000_000).cast(_UTC)
            curve = curve.filter(pl.col("ts").is_in(days.implode()))
        return curve.get_column("equity").to_numpy()

    def _benchmark(self, benchmark: str | None) -> str | None:
        symbols = list(self._bars.symbols)
        if benchmark is not None:
            if benchmark not in symbols:
                raise ConfigError(f"benchmark {benchmark!r} is not a symbol in the bars {symbols}", column="benchmark")
            return benchmark
        fills = self.fills
        if fills.height:
            counts = fills.group_by("symbol").len()
            top = counts.get_column("len").max()
            busiest = set(counts.filter(pl.col("len") == top).get_column("symbol").to_list())
            return next(s for s in symbols if s in busiest)
        return symbols[0] if symbols else None

    def report(self, path: str, *, calendar: pl.DataFrame | None = None, title: str = "aftershock backtest") -> str:
        """Write a self-contained HTML report (headline figures, equity and drawdown, price
        with fills and events, attribution, trades; interactive charts that work offline)
        and return its path. ``calendar`` (the one the strategy read) adds P&L by
        indicator, category and surprise bucket."""
        from aftershock.report import write_report

        return write_report(self, path, calendar=calendar, title=title)

    def plot(self, *, calendar: pl.DataFrame | None = None, symbol: str | None = None) -> Any:
        """A plotly Figure: equity, drawdown, price of ``symbol`` (default: the most traded)
        with fills and event markers, and P&L by indicator, category and surprise bucket
        (with ``calendar``)."""
        from aftershock.report import backtest_figure

        return backtest_figure(self, calendar, symbol)

    def save(self, path: Any, *, overwrite: bool = False, include_bars: bool = True) -> Any:
        """Write this result to the directory ``path`` atomically: one Parquet file per
        frame (fills, trades, equity, orders, the bars and calendar it ran on) and
        ``meta.json`` (library versions, config, strategy and parameters, content hashes
        of the inputs). ``aftershock.load(path)`` reads it back; docs/persistence.md."""
        from aftershock.trading.persist import save_result

        return save_result(self, path, overwrite=overwrite, include_bars=include_bars)

    def rerun(self, bars: Any = None, calendar: Any = None, *, strategy: Any = None) -> "Result":
        """This result computed again from its inputs (the given ``bars`` and
        ``calendar``, checked against the recorded content hashes, else the saved
        ones); a Strategy result recompiles its orders (``strategy``: the class, when
        it cannot be imported by name)."""
        from aftershock.trading.persist import rerun_result

        return rerun_result(self, bars, calendar, strategy)

    def verify(self, bars: Any = None, calendar: Any = None, *, strategy: Any = None) -> None:
        """Re-run (as :meth:`rerun`) and raise :class:`~aftershock.errors.VerificationError`
        unless every frame comes back bit for bit."""
        from aftershock.trading.persist import verify_result

        verify_result(self, bars, calendar, strategy)

    def _repr_html_(self) -> str:
        from aftershock.report import result_html

        return result_html(self)
