"""Backtest results: fills, trades, equity and order statuses as Polars frames, and stats."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from aftershock.trading._codes import labels
from aftershock.trading.stats import Stats, extra_figures, resolve_sampling
from aftershock._time import polars_every
from aftershock.errors import ConfigError, InputError

if TYPE_CHECKING:
    from aftershock.trading.engine import PreparedBars

__all__ = ["Result", "STATS_DOC", "ENGINE_STATS", "Stats"]

_REASONS = labels("reason")
_STATUSES = labels("status")
_STATUS_REASONS = labels("reject_reason")
_SIDES = labels("side")
_UTC = pl.Datetime("us", "UTC")
_NULL_I64 = np.iinfo(np.int64).min

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
    "avg_trade_return": "mean return of closed trades; null without closed trades",
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
    "risk_free": "annual risk-free rate (the argument), compounded to the period for sharpe and sortino",
}


#: The figures the engine computes for every sweep variant (rust/engine/metrics.rs);
#: the others need the bars or the trade list and are computed by :meth:`Result.stats`.
ENGINE_STATS: tuple[str, ...] = (
    "start", "end", "init_cash", "final_equity", "total_return", "max_drawdown", "sharpe", "trades",
    "open_trades", "win_rate", "avg_trade_return", "profit_factor", "total_fees", "exposure", "bars_visited",
)


def _col(raw: dict[str, Any], key: str, dtype: type) -> np.ndarray:
    return np.frombuffer(raw[key], dtype=dtype)


def _decode(codes: np.ndarray, names: list[Any]) -> pl.Series:
    """Engine codes to their names; codes outside ``names`` (the -1 of "none") give null."""
    mapping = {k: v for k, v in enumerate(names) if v is not None}
    return pl.Series(codes.astype(np.int64), dtype=pl.Int64).replace_strict(mapping, default=None, return_dtype=pl.String)


def _ts(values: np.ndarray) -> pl.Series:
    s = pl.Series(values.astype(np.int64), dtype=pl.Int64)
    if (values == _NULL_I64).any():
        s = pl.select(pl.when(s != _NULL_I64).then(s)).to_series()
    return s.cast(_UTC)


class Result:
    """The outcome of one backtest. Frames are built once, on first access."""

    def __init__(self, raw: dict[str, Any], bars: "PreparedBars", orders: pl.DataFrame, config: dict[str, Any]):
        self._raw = raw
        self._bars = bars
        self._orders_in = orders
        self.config = dict(config)
        self.bars_visited: int = int(raw["bars_visited"])
        self._cache: dict[str, pl.DataFrame] = {}

    def __repr__(self) -> str:
        return f"<aftershock.Result fills={self.fills.height} trades={self.trades.height} final_equity={self.final_equity:.2f}>"

    def _symbols(self, codes: np.ndarray) -> pl.Series:
        return _decode(codes, list(self._bars.symbols))

    def _tags(self, ids: np.ndarray) -> pl.Series:
        """The tag of each order id; null for -1 (liquidations, end-of-data closes)."""
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
            r = self._raw
            order_id = _col(r, "fills.order_id", np.int64)
            self._cache["fills"] = pl.DataFrame(
                {
                    "order_id": order_id,
                    "ts": _ts(_col(r, "fills.ts", np.int64)),
                    "symbol": self._symbols(_col(r, "fills.symbol", np.int64)),
                    "side": _decode(_col(r, "fills.side", np.int64), _SIDES),
                    "qty": _col(r, "fills.qty", np.float64),
                    "price": _col(r, "fills.price", np.float64),
                    "fee": _col(r, "fills.fee", np.float64),
                    "reason": _decode(_col(r, "fills.reason", np.int64), _REASONS),
                    "tag": self._tags(order_id),
                }
            )
        return self._cache["fills"]

    @property
    def trades(self) -> pl.DataFrame:
        """One row per position reduction (exit trades), plus open positions (status 'open')."""
        if "trades" not in self._cache:
            r = self._raw
            reason = _col(r, "trades.exit_reason", np.int64)
            entry_id = _col(r, "trades.entry_order_id", np.int64)
            self._cache["trades"] = pl.DataFrame(
                {
                    "symbol": self._symbols(_col(r, "trades.symbol", np.int64)),
                    "direction": _decode(_col(r, "trades.direction", np.int64) > 0, ["short", "long"]),
                    "entry_order_id": entry_id,
                    "entry_ts": _ts(_col(r, "trades.entry_ts", np.int64)),
                    "entry_price": _col(r, "trades.entry_price", np.float64),
                    "exit_ts": _ts(_col(r, "trades.exit_ts", np.int64)),
                    "exit_price": _col(r, "trades.exit_price", np.float64),
                    "qty": _col(r, "trades.qty", np.float64),
                    "pnl": _col(r, "trades.pnl", np.float64),
                    "return": _col(r, "trades.return", np.float64),
                    "fees": _col(r, "trades.fees", np.float64),
                    "exit_reason": _decode(reason, _REASONS),
                    "mae": _col(r, "trades.mae", np.float64),
                    "mfe": _col(r, "trades.mfe", np.float64),
                    "tag": self._tags(entry_id),
                    "status": _decode(reason >= 0, ["open", "closed"]),
                }
            )
        return self._cache["trades"]

    @property
    def equity(self) -> pl.DataFrame:
        """ts, cash, equity, gross_exposure at the first bar and at every timestamp the
        engine touched; flat in between (forward fill is exact)."""
        if "equity" not in self._cache:
            r = self._raw
            self._cache["equity"] = pl.DataFrame(
                {
                    "ts": _ts(_col(r, "equity.ts", np.int64)),
                    "cash": _col(r, "equity.cash", np.float64),
                    "equity": _col(r, "equity.equity", np.float64),
                    "gross_exposure": _col(r, "equity.gross_exposure", np.float64),
                }
            )
        return self._cache["equity"]

    @property
    def orders(self) -> pl.DataFrame:
        """The input orders (defaults filled in) with status, status_ts, filled_qty, reject_reason."""
        if "orders" not in self._cache:
            r = self._raw
            self._cache["orders"] = self._orders_in.with_columns(
                order_id=pl.int_range(pl.len(), dtype=pl.Int64),
                status=_decode(_col(r, "orders.status", np.int64), _STATUSES),
                status_ts=_ts(_col(r, "orders.status_ts", np.int64)),
                filled_qty=pl.Series(_col(r, "orders.filled_qty", np.float64)),
                reject_reason=_decode(_col(r, "orders.reason", np.int64), _STATUS_REASONS),
            )
        return self._cache["orders"]

    @property
    def final_equity(self) -> float:
        eq = _col(self._raw, "equity.equity", np.float64)
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
    ) -> Stats:
        """Headline figures, labelled; every key is described in :data:`STATS_DOC` and
        docs/stats.md.

        ``returns`` is how periodic returns are sampled: ``"calendar"`` (equity at the end
        of every UTC day, the default, annualized by 365) or ``"trading"`` (only days with
        bars, annualized by 252). ``periods_per_year=252`` alone means trading-day returns;
        a number other than 365 or 252 needs ``returns=`` too. ``risk_free`` is an annual
        rate; ``benchmark`` the symbol for buy and hold, alpha and beta.
        """
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
        ets = _col(self._raw, "equity.ts", np.int64)
        gross = _col(self._raw, "equity.gross_exposure", np.float64)
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
            "total_fees": float(_col(self._raw, "fills.fee", np.float64).sum()),
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
        stats.update(benchmark=bench, periods_per_year=periods_per_year, return_sampling=sampling, risk_free=float(risk_free))
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

    def _repr_html_(self) -> str:
        from aftershock.report import result_html

        return result_html(self)
