"""Backtest results: fills, trades, equity and order statuses as Polars frames, and stats."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

if TYPE_CHECKING:
    from aftershock.engine import PreparedBars

__all__ = ["Result", "STATS_DOC"]

_REASONS = ["entry", "exit", "stop_loss", "take_profit", "trailing_stop", "time_exit", "liquidation", "end_of_data"]
_STATUSES = ["open", "filled", "cancelled", "expired", "rejected"]
_STATUS_REASONS = [None, "zero_size", "margin", "nothing_to_reduce", "ioc_unfilled", "expired"]
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
}


def _col(raw: dict[str, Any], key: str, dtype: type) -> np.ndarray:
    return np.frombuffer(raw[key], dtype=dtype)


def _decode(codes: np.ndarray, labels: list[Any]) -> pl.Series:
    """Engine codes to their labels; codes outside ``labels`` (the -1 of "none") give null."""
    mapping = {k: v for k, v in enumerate(labels) if v is not None}
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
                    "side": _decode(_col(r, "fills.side", np.int64), [None, "buy", "sell"]),
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
        between the engine's rows)."""
        eq = self.equity
        return (
            eq.sort("ts")
            .group_by_dynamic("ts", every=every, label="left")
            .agg(pl.col("equity").last(), pl.col("cash").last(), pl.col("gross_exposure").last())
            .upsample("ts", every=every)
            .fill_null(strategy="forward")
        )

    def stats(self, *, periods_per_year: float = 365.0) -> dict[str, Any]:
        """Headline figures; every key is described in :data:`STATS_DOC`."""
        eq = self.equity
        values = eq.get_column("equity").to_numpy()
        init = float(self.config["init_cash"])
        ts_all = self._bars.arrays["ts"]
        start_us, end_us = int(ts_all.min()), int(ts_all.max())
        peak = np.maximum.accumulate(np.concatenate([[init], values]))
        daily = self.equity_curve("1d").get_column("equity").to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):  # init_cash=0: NaN figures, no warning
            dd = (np.concatenate([[init], values]) / peak - 1.0).min()
            rets = np.diff(np.concatenate([[init], daily])) / np.concatenate([[init], daily[:-1]])
        sharpe = None
        if len(rets) >= 2:
            sd = float(np.std(rets, ddof=1))
            if sd > 0:
                sharpe = float(np.mean(rets) / sd * math.sqrt(periods_per_year))
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
        return stats

    def report(self, path: str) -> str:
        """Write a self-contained HTML report (stats, equity curve, trades, per-tag
        attribution) and return its path."""
        from aftershock.report import write_report

        return write_report(self, path)
