"""A pure-Python reference implementation of the engine contract in ``docs/engine.md``.

Written for clarity, not speed, from the document alone (never from ``rust/``), so
that the differential tests in ``test_reference_engine.py`` compare two independent
readings of one contract. ``backtest(bars, orders, **config)`` takes the same inputs as
``aftershock.trading.engine.backtest`` and returns a :class:`ReferenceResult` carrying the
same four frames: ``fills``, ``trades``, ``equity``, ``orders``.

How the walk through a bar works (section "One bar" of the contract):

* the bar is the path ``open -> x1 -> x2 -> close``, each leg monotone;
* at every point the engine *settles*: every trigger whose condition holds at the
  current price fires, one at a time, highest priority first (liquidation,
  stop-loss, trailing stop, take-profit, then working orders by id), re-checking
  after each fire because a fill changes the state;
* between points it looks for the nearest trigger level on the leg, moves there and
  settles again. A trigger reached on a leg fires at its level; a trigger that
  already holds where it becomes active (a gap at the open, a bracket armed beyond
  its own level, a stop-limit whose limit is marketable when it triggers) fires at
  the current price. Either way the fill price before slippage is the current price.

Choices where the contract is silent are marked ``AMBIGUITY`` and listed in
``AMBIGUITIES`` below; the differential tests pin them to whatever the Rust engine
does once it has been agreed.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import polars as pl

AMBIGUITIES = [
    "sizing price: size types resolve at the fill price after slippage; a target_percent order's side (which sets the slippage direction) is found at the price before slippage",
    "a fill that crosses zero is one fill row (reason 'exit', as the doc now says)",
    "reduce_only is cancelled when it would fill: with no position (before sizing) or when its side (after target_percent resolves it; a zero target difference keeps the order's side) does not close the position, reason 'nothing_to_reduce' (Rust's name; the doc gives none)",
    "an order whose gtd expiry passes before it is live is expired at its first live bar",
    "entry fees of a trade: the position's remaining entry fees pro rata to the reduced quantity",
    "mae/mfe: extremes of the path (prices before slippage) from the entry fill point to the exit point",
    "liquidation: the other symbols close at their last close with slippage and the taker fee",
    "bars sharing a timestamp: each symbol runs steps 1-7 before the next symbol starts",
    "reject_reason also names cancellations and expiries: 'ioc_unfilled', 'expired' (Rust's names; the doc lists none)",
    "a bar on which the only event is the expiry of a gtd order that was never live before does not count as touched (no equity row), as in Rust",
    "lot size: 'relative tolerance of 1e-9' read as floor(q / lot * (1 + 1e-9))",
    "equity rows: the Rust engine also records the last bar's timestamp (the doc names only the first bar and touched ones)",
    "open trades: exit_ts/exit_price are the symbol's last bar ts/close, exit_reason null",
]

EPS_REL = 0.0

_PRIORITY = {"liquidation": 0, "stop_loss": 1, "trailing_stop": 2, "take_profit": 3, "order": 4}

_UNIT_NS = {
    "ns": 1,
    "us": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3600 * 1_000_000_000,
    "d": 86400 * 1_000_000_000,
    "w": 7 * 86400 * 1_000_000_000,
}


def duration_ns(value: Any) -> int:
    """A duration as integer nanoseconds: timedelta, int (ns) or a string like "2s", "1h30m"."""
    if value is None:
        return 0
    if isinstance(value, timedelta):
        return (value.days * 86400 + value.seconds) * 1_000_000_000 + value.microseconds * 1_000
    if isinstance(value, (int,)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        parts = re.findall(r"(\d+)(ns|us|ms|s|m|h|d|w)", value)
        if not parts or "".join(n + u for n, u in parts) != value:
            raise ValueError(f"bad duration {value!r}")
        return sum(int(n) * _UNIT_NS[u] for n, u in parts)
    raise TypeError(f"bad duration {value!r}")


@dataclass
class Bar:
    ts: int
    open: float
    high: float
    low: float
    close: float


@dataclass
class Order:
    id: int
    submit_ts: int
    live_ts: int
    symbol: str
    side: str
    qty: float
    size_type: str
    order_type: str
    limit_price: float | None
    stop_price: float | None
    tif: str
    expire_ts: int | None
    reduce_only: bool
    stop_loss: float | None
    take_profit: float | None
    trailing_stop: float | None
    exit_after: int | None
    tag: str | None
    status: str = "open"
    status_ts: int | None = None
    filled_qty: float = 0.0
    reject_reason: str | None = None
    triggered: bool = False  # a stop-limit whose stop has been touched
    worked: bool = False  # live on an earlier visited bar

    @property
    def has_bracket(self) -> bool:
        return any(
            v is not None for v in (self.stop_loss, self.take_profit, self.trailing_stop, self.exit_after)
        )

    def is_live(self, ts: int) -> bool:
        # at the open only prices printed strictly after the decision; the close is
        # printed after every instant of its bar
        if self.order_type == "market_on_close":
            return self.status == "open" and self.live_ts <= ts
        return self.status == "open" and self.live_ts < ts


@dataclass
class Bracket:
    order_id: int
    stop_loss_level: float | None
    take_profit_level: float | None
    trailing: float | None
    extreme: float  # peak when long, trough when short
    deadline: int | None


@dataclass
class Position:
    qty: float = 0.0
    avg_price: float = 0.0
    entry_fees: float = 0.0  # entry fees not yet attributed to a trade
    entry_order_id: int = -1
    entry_ts: int = 0
    tag: str | None = None
    bracket: Bracket | None = None
    path_high: float = 0.0
    path_low: float = 0.0


@dataclass
class Trigger:
    kind: str  # liquidation / stop_loss / trailing_stop / take_profit / order
    direction: str  # "down": holds when price <= level; "up": holds when price >= level
    level: float
    order: Order | None = None

    def holds(self, x: float) -> bool:
        return x <= self.level if self.direction == "down" else x >= self.level

    def rank(self) -> tuple[int, int]:
        return (_PRIORITY[self.kind], self.order.id if self.order is not None else -1)


@dataclass
class Config:
    init_cash: float = 100_000.0
    fees: float = 0.0
    maker_fees: float | None = None
    fixed_fees: float = 0.0
    slippage: float = 0.0
    latency: int = 0
    lot_size: float = 0.0
    leverage: float = 1.0
    intrabar: str = "pessimistic"
    maintenance_margin: float = 0.0
    close_at_end: bool = False
    allow_partial: bool = True

    @property
    def maker(self) -> float:
        return self.fees if self.maker_fees is None else self.maker_fees


@dataclass
class ReferenceResult:
    fills: pl.DataFrame
    trades: pl.DataFrame
    equity: pl.DataFrame
    orders: pl.DataFrame


class Engine:
    def __init__(self, bars: dict[str, list[Bar]], symbols: list[str], orders: list[Order], config: Config):
        self.bars = bars
        self.symbols = symbols
        self.orders = orders
        self.cfg = config
        self.cash = float(config.init_cash)
        self.positions = {s: Position() for s in symbols}
        self.marks: dict[str, float] = {}
        self.fills: list[dict] = []
        self.trades: list[dict] = []
        self.equity: list[dict] = []

    # ----------------------------------------------------------------- valuation
    def equity_at(self, symbol: str, price: float) -> float:
        """Cash plus every position at its last close, ``symbol`` at ``price``."""
        total = self.cash
        for s, pos in self.positions.items():
            if pos.qty != 0.0:
                total += pos.qty * (price if s == symbol else self.marks[s])
        return total

    def gross_other(self, symbol: str) -> float:
        return sum(abs(p.qty) * self.marks[s] for s, p in self.positions.items() if s != symbol and p.qty != 0.0)

    # ----------------------------------------------------------------- fills
    def book_fill(
        self,
        symbol: str,
        ts: int,
        x: float,
        order_id: int,
        side: str,
        qty: float,
        price: float,
        fee_rate: float,
        reason: str | None,
        tag: str | None,
        arming: Order | None = None,
    ) -> None:
        """Apply a fill of ``qty`` units at ``price``; ``x`` is the path price (before slippage)."""
        fee = qty * price * fee_rate + self.cfg.fixed_fees
        sign = 1.0 if side == "buy" else -1.0
        self.cash -= sign * qty * price + fee
        pos = self.positions[symbol]
        q0 = pos.qty
        reducing = min(qty, abs(q0)) if q0 != 0.0 and (q0 > 0) != (sign > 0) else 0.0
        opening = qty - reducing
        if reason is None:
            reason = "exit" if reducing > 0 else "entry"
        self.fills.append(
            dict(order_id=order_id, ts=ts, symbol=symbol, side=side, qty=qty, price=price, fee=fee, reason=reason, tag=tag)
        )
        if reducing > 0:
            pos.path_high = max(pos.path_high, x)
            pos.path_low = min(pos.path_low, x)
            entry_fee_share = pos.entry_fees * reducing / abs(q0)
            exit_fee_share = fee * reducing / qty
            direction = "long" if q0 > 0 else "short"
            gross = (price - pos.avg_price) * reducing * (1.0 if q0 > 0 else -1.0)
            pnl = gross - entry_fee_share - exit_fee_share
            self.trades.append(self.trade_row(symbol, pos, ts, price, reducing, pnl, entry_fee_share + exit_fee_share, reason, "closed"))
            pos.entry_fees -= entry_fee_share
            pos.qty = q0 + sign * reducing
            if abs(pos.qty) == 0.0 or reducing == abs(q0):
                pos.qty = 0.0
                pos.avg_price = 0.0
                pos.entry_fees = 0.0
                pos.bracket = None
        if opening > 0:
            open_fee = fee * opening / qty
            if pos.qty == 0.0:
                pos.qty = sign * opening
                pos.avg_price = price
                pos.entry_fees = open_fee
                pos.entry_order_id = order_id
                pos.entry_ts = ts
                pos.tag = tag
                pos.bracket = None
                pos.path_high = x
                pos.path_low = x
            else:
                new_qty = abs(pos.qty) + opening
                pos.avg_price = (abs(pos.qty) * pos.avg_price + opening * price) / new_qty
                pos.qty = sign * new_qty
                pos.entry_fees += open_fee
            if arming is not None and arming.has_bracket:
                long = sign > 0
                pos.bracket = Bracket(
                    order_id=arming.id,
                    stop_loss_level=None
                    if arming.stop_loss is None
                    else price * (1 - arming.stop_loss if long else 1 + arming.stop_loss),
                    take_profit_level=None
                    if arming.take_profit is None
                    else price * (1 + arming.take_profit if long else 1 - arming.take_profit),
                    trailing=arming.trailing_stop,
                    extreme=price,
                    deadline=None if arming.exit_after is None else ts + arming.exit_after,
                )

    def trade_row(self, symbol, pos, exit_ts, exit_price, qty, pnl, fees, reason, status) -> dict:
        avg = pos.avg_price
        if pos.qty > 0:
            mfe = max(0.0, pos.path_high / avg - 1.0)
            mae = min(0.0, pos.path_low / avg - 1.0)
        else:
            mfe = max(0.0, 1.0 - pos.path_low / avg)
            mae = min(0.0, 1.0 - pos.path_high / avg)
        return dict(
            symbol=symbol,
            direction="long" if pos.qty > 0 else "short",
            entry_order_id=pos.entry_order_id,
            entry_ts=pos.entry_ts,
            entry_price=avg,
            exit_ts=exit_ts,
            exit_price=exit_price,
            qty=qty,
            pnl=pnl,
            **{"return": pnl / (avg * qty)},
            fees=fees,
            exit_reason=reason,
            mae=mae,
            mfe=mfe,
            tag=pos.tag,
            status=status,
        )

    def slipped(self, side: str, price: float) -> float:
        s = self.cfg.slippage
        return price * (1 + s) if side == "buy" else price * (1 - s)

    def close_position(self, symbol: str, ts: int, x: float, price_before_slip: float, reason: str, order_id: int) -> None:
        """A taker exit of the whole position (stop-loss, trailing, time exit, liquidation, end of data)."""
        pos = self.positions[symbol]
        side = "sell" if pos.qty > 0 else "buy"
        self.book_fill(
            symbol, ts, x, order_id, side, abs(pos.qty), self.slipped(side, price_before_slip), self.cfg.fees, reason, self.fill_tag(pos, order_id)
        )

    def fill_tag(self, pos: Position, order_id: int) -> str | None:
        """Bracket exits carry the tag of the order that armed them."""
        if order_id >= 0:
            return self.orders[order_id].tag
        return None

    # ----------------------------------------------------------------- ordinary orders
    def execute_order(self, order: Order, ts: int, x: float, slip: bool, fee_rate: float) -> None:
        """Fill ``order`` at path price ``x`` (plus slippage if ``slip``) or reject / cancel it.

        Slippage goes against the side actually traded: a ``target_percent`` order's side is
        the sign of its difference, found at ``x`` before slippage; its size at the fill price."""
        symbol = order.symbol
        pos = self.positions[symbol]
        q0 = pos.qty
        if order.reduce_only and q0 == 0.0:
            return self.finish(order, ts, "cancelled", reason="nothing_to_reduce")
        side = order.side
        if order.size_type == "target_percent":
            target = (1.0 if order.side == "buy" else -1.0) * order.qty * self.equity_at(symbol, x) / x
            if target != q0:
                side = "buy" if target > q0 else "sell"
        price = self.slipped(side, x) if slip else x
        equity = self.equity_at(symbol, price)
        if order.size_type == "units":
            qty = order.qty
        elif order.size_type == "notional":
            qty = order.qty / price
        elif order.size_type == "percent_equity":
            qty = order.qty * equity / price
        elif order.size_type == "target_percent":
            target = (1.0 if order.side == "buy" else -1.0) * order.qty * equity / price
            qty = abs(target - q0)
        elif order.size_type == "percent_available":
            # whole units of qty * leverage * (equity - margin held), each unit costing its
            # price and its share of a qty-unit fill's fee (backtesting.py's relative size)
            lev = self.cfg.leverage
            held = (self.gross_other(symbol) + abs(q0) * price) / lev
            budget = max(0.0, equity - held) * lev * order.qty
            qty = budget // (price + (self.cfg.fixed_fees + order.qty * price * fee_rate) / order.qty)
        else:  # pragma: no cover - validated upstream
            raise ValueError(order.size_type)
        sign = 1.0 if side == "buy" else -1.0
        closing = q0 != 0.0 and (q0 > 0) != (sign > 0)
        if order.reduce_only:
            if not closing:
                return self.finish(order, ts, "cancelled", reason="nothing_to_reduce")
            qty = min(qty, abs(q0))
        if not qty > 0.0:
            return self.finish(order, ts, "rejected", reason="zero_size")
        # leverage cap on the part that raises |position|
        reducing = min(qty, abs(q0)) if closing else 0.0
        raising = qty - reducing
        if raising > 0.0 and order.size_type != "percent_available":  # sized within its margin already
            lev = self.cfg.leverage
            equity_before = self.equity_at(symbol, price)
            base_gross = self.gross_other(symbol) + (0.0 if closing else abs(q0) * price)
            cap = (lev * (equity_before - reducing * price * fee_rate - self.cfg.fixed_fees) - base_gross) / (
                price * (1.0 + lev * fee_rate)
            )
            if raising > cap and not self.cfg.allow_partial:
                return self.finish(order, ts, "rejected", reason="margin")
            if raising > cap:
                # a cap within float noise of zero (cash left over by an earlier all-in fill) is zero
                raising = cap if cap * price > 1e-9 * max(abs(equity_before), 1.0) else 0.0
            qty = reducing + raising
            if qty <= 0.0:
                return self.finish(order, ts, "rejected", reason="margin")
        if self.cfg.lot_size > 0.0:
            # a fill that closes the whole position is exact; a partial reduction and the part that
            # opens new exposure are rounded toward zero to whole lots (1e-9 relative tolerance)
            reducing = min(qty, abs(q0)) if closing else 0.0
            raising = qty - reducing
            if reducing < abs(q0):
                reducing = min(self.whole_lots(reducing), abs(q0))
            qty = reducing + self.whole_lots(raising)
            if qty <= 0.0:
                return self.finish(order, ts, "rejected", reason="zero_size")
        self.book_fill(symbol, ts, x, order.id, side, qty, price, fee_rate, None, order.tag, arming=order)
        order.filled_qty = qty
        self.finish(order, ts, "filled")

    def whole_lots(self, qty: float) -> float:
        lot = self.cfg.lot_size
        lots = math.floor(qty / lot * (1 + 1e-9))
        return lots * lot

    @staticmethod
    def finish(order: Order, ts: int, status: str, reason: str | None = None) -> None:
        order.status = status
        order.status_ts = ts
        order.reject_reason = reason

    # ----------------------------------------------------------------- triggers
    def triggers(self, symbol: str, ts: int) -> list[Trigger]:
        out: list[Trigger] = []
        pos = self.positions[symbol]
        m = self.cfg.maintenance_margin
        if pos.qty != 0.0 and m > 0.0:
            # equity(x) = A + q x, gross(x) = B + |q| x; liquidate when A + q x < m (B + |q| x)
            a = self.cash + sum(p.qty * self.marks[s] for s, p in self.positions.items() if s != symbol and p.qty != 0.0)
            b = self.gross_other(symbol)
            q = pos.qty
            if q > 0:
                out.append(Trigger("liquidation", "down", (m * b - a) / (q * (1.0 - m))))
            else:
                out.append(Trigger("liquidation", "up", (a - m * b) / (-q * (1.0 + m))))
        br = pos.bracket
        if pos.qty != 0.0 and br is not None:
            long = pos.qty > 0
            if br.stop_loss_level is not None:
                out.append(Trigger("stop_loss", "down" if long else "up", br.stop_loss_level))
            if br.trailing is not None:
                level = br.extreme * (1 - br.trailing) if long else br.extreme * (1 + br.trailing)
                out.append(Trigger("trailing_stop", "down" if long else "up", level))
            if br.take_profit_level is not None:
                out.append(Trigger("take_profit", "up" if long else "down", br.take_profit_level))
        for o in self.orders:
            if o.symbol != symbol or not o.is_live(ts):
                continue
            buy = o.side == "buy"
            if o.order_type == "limit" or (o.order_type == "stop_limit" and o.triggered):
                out.append(Trigger("order", "down" if buy else "up", o.limit_price, o))
            elif o.order_type in ("stop", "stop_limit"):
                out.append(Trigger("order", "up" if buy else "down", o.stop_price, o))
        return out

    def fire(self, trig: Trigger, symbol: str, ts: int, x: float) -> None:
        pos = self.positions[symbol]
        if trig.kind == "liquidation":
            self.book_liquidation(symbol, ts, x)
        elif trig.kind in ("stop_loss", "trailing_stop"):
            self.close_position(symbol, ts, x, x, trig.kind, pos.bracket.order_id)
        elif trig.kind == "take_profit":
            side = "sell" if pos.qty > 0 else "buy"
            oid = pos.bracket.order_id
            self.book_fill(symbol, ts, x, oid, side, abs(pos.qty), x, self.cfg.maker, "take_profit", self.fill_tag(pos, oid))
        else:
            o = trig.order
            if o.order_type == "stop_limit" and not o.triggered:
                o.triggered = True
            elif o.order_type == "stop":
                self.execute_order(o, ts, x, True, self.cfg.fees)
            else:  # limit, or the limit leg of a stop-limit
                self.execute_order(o, ts, x, False, self.cfg.maker)

    def book_liquidation(self, symbol: str, ts: int, x: float) -> None:
        self.close_position(symbol, ts, x, x, "liquidation", -1)
        for s in self.symbols:
            if s != symbol and self.positions[s].qty != 0.0:
                mark = self.marks[s]
                self.close_position(s, ts, mark, mark, "liquidation", -1)

    def track(self, symbol: str, x: float) -> None:
        """The path visits ``x``: running extremes for trailing stops and mae/mfe."""
        pos = self.positions[symbol]
        if pos.qty == 0.0:
            return
        pos.path_high = max(pos.path_high, x)
        pos.path_low = min(pos.path_low, x)
        br = pos.bracket
        if br is not None:
            br.extreme = max(br.extreme, x) if pos.qty > 0 else min(br.extreme, x)

    def settle(self, symbol: str, ts: int, x: float) -> None:
        """Fire, one at a time and by priority, every trigger that holds at ``x``."""
        for _ in range(10_000):
            holding = [t for t in self.triggers(symbol, ts) if t.holds(x)]
            if not holding:
                return
            self.fire(min(holding, key=Trigger.rank), symbol, ts, x)
        raise RuntimeError("settle did not converge")

    def walk(self, symbol: str, ts: int, x: float, target: float) -> float:
        """Move along a monotone leg from ``x`` to ``target``, firing triggers at their levels."""
        while x != target:
            down = target < x
            hits = []
            for t in self.triggers(symbol, ts):
                if down and t.direction == "down" and target <= t.level < x:
                    hits.append(t)
                elif not down and t.direction == "up" and x < t.level <= target:
                    hits.append(t)
            if not hits:
                x = target
                self.track(symbol, x)
                break
            nearest = max(t.level for t in hits) if down else min(t.level for t in hits)
            first = min((t for t in hits if t.level == nearest), key=Trigger.rank)
            x = nearest
            self.track(symbol, x)
            self.fire(first, symbol, ts, x)
            self.settle(symbol, ts, x)
        return x

    # ----------------------------------------------------------------- one bar
    def process_bar(self, symbol: str, bar: Bar, is_last: bool) -> None:
        ts = bar.ts
        pos = self.positions[symbol]
        # 1. expiry
        for o in self.orders:
            if o.symbol == symbol and o.is_live(ts) and o.tif == "gtd" and o.expire_ts <= ts:
                self.finish(o, ts, "expired", reason="expired")
        # 2. time exit
        if pos.qty != 0.0 and pos.bracket is not None and pos.bracket.deadline is not None and pos.bracket.deadline <= ts:
            self.close_position(symbol, ts, bar.open, bar.open, "time_exit", pos.bracket.order_id)
        # 3. the open
        x = bar.open
        self.track(symbol, x)
        for o in self.orders:
            if o.symbol == symbol and o.is_live(ts) and o.order_type == "market":
                self.execute_order(o, ts, x, True, self.cfg.fees)
        self.settle(symbol, ts, x)
        # 4. the path
        for point in self.path(symbol, bar):
            x = self.walk(symbol, ts, x, point)
        # 5. the close
        for o in self.orders:
            if o.symbol == symbol and o.is_live(ts) and o.order_type == "market_on_close":
                self.execute_order(o, ts, bar.close, True, self.cfg.fees)
        # 6. IOC
        for o in self.orders:
            if o.symbol == symbol and o.is_live(ts) and o.tif == "ioc":
                self.finish(o, ts, "cancelled", reason="ioc_unfilled")
        # 7. mark
        self.marks[symbol] = bar.close
        if is_last and self.cfg.close_at_end and pos.qty != 0.0:
            self.close_position(symbol, ts, bar.close, bar.close, "end_of_data", -1)

    def path(self, symbol: str, bar: Bar) -> list[float]:
        mode = self.cfg.intrabar
        if mode == "ohlc":
            high_first = True
        elif mode == "olhc":
            high_first = False
        elif mode == "nearest_first":
            high_first = bar.high - bar.open <= bar.open - bar.low
        elif mode == "pessimistic":
            high_first = self.positions[symbol].qty <= 0.0
        else:  # pragma: no cover
            raise ValueError(mode)
        return [bar.high, bar.low, bar.close] if high_first else [bar.low, bar.high, bar.close]

    # ----------------------------------------------------------------- the run
    def run(self) -> None:
        index: dict[int, dict[str, Bar]] = {}
        for s in self.symbols:
            for b in self.bars[s]:
                index.setdefault(b.ts, {})[s] = b
        last_ts = {s: self.bars[s][-1].ts for s in self.symbols if self.bars[s]}
        timeline = sorted(index)
        for i, ts in enumerate(timeline):
            touched = False
            for s in self.symbols:
                bar = index[ts].get(s)
                if bar is None:
                    continue
                live = [o for o in self.orders if o.symbol == s and o.is_live(ts)]
                if not live and self.positions[s].qty == 0.0:
                    continue
                # expiring an order that was never working is bookkeeping, not a visit (no equity row)
                if self.positions[s].qty != 0.0 or any(o.tif != "gtd" or o.expire_ts > ts or o.worked for o in live):
                    touched = True
                for o in live:
                    o.worked = True
                self.process_bar(s, bar, ts == last_ts[s])
            if touched or i == 0 or i == len(timeline) - 1:
                equity = self.cash
                gross = 0.0
                for s, p in self.positions.items():
                    if p.qty != 0.0:
                        equity += p.qty * self.marks[s]
                        gross += abs(p.qty) * self.marks[s]
                self.equity.append(dict(ts=ts, cash=self.cash, equity=equity, gross_exposure=gross))
        for s in self.symbols:
            pos = self.positions[s]
            if pos.qty != 0.0:
                last = self.bars[s][-1]
                self.track(s, last.close)
                sign = 1.0 if pos.qty > 0 else -1.0
                q = abs(pos.qty)
                pnl = (last.close - pos.avg_price) * q * sign - pos.entry_fees
                self.trades.append(self.trade_row(s, pos, last.ts, last.close, q, pnl, pos.entry_fees, None, "open"))


# --------------------------------------------------------------------- frames


def _ts_ns(frame: pl.DataFrame, col: str) -> list[int | None]:
    return frame.select(pl.col(col).dt.epoch("ns")).to_series().to_list()


def backtest(bars: pl.DataFrame, orders: pl.DataFrame, **config: Any) -> ReferenceResult:
    cfg = Config(**{k: v for k, v in config.items() if k != "latency"})
    cfg.latency = duration_ns(config.get("latency"))
    ts_dtype = bars.schema["ts"]

    symbols: list[str] = []
    per_symbol: dict[str, list[Bar]] = {}
    ts_list = _ts_ns(bars, "ts")
    for ts, sym, o, h, l, c in zip(
        ts_list,
        bars["symbol"].cast(pl.Utf8).to_list(),
        bars["open"].cast(pl.Float64).to_list(),
        bars["high"].cast(pl.Float64).to_list(),
        bars["low"].cast(pl.Float64).to_list(),
        bars["close"].cast(pl.Float64).to_list(),
    ):
        if sym not in per_symbol:
            symbols.append(sym)
            per_symbol[sym] = []
        per_symbol[sym].append(Bar(ts, o, h, l, c))

    n = orders.height

    def col(name: str, default: Any = None) -> list:
        if name in orders.columns:
            return orders[name].to_list()
        return [default] * n

    submit = _ts_ns(orders, "submit_ts")
    expire = _ts_ns(orders, "expire_ts") if "expire_ts" in orders.columns else [None] * n
    if "exit_after" in orders.columns:
        exit_after = orders.select(pl.col("exit_after").dt.total_nanoseconds()).to_series().to_list()
    else:
        exit_after = [None] * n
    order_list = []
    for i in range(n):
        order_list.append(
            Order(
                id=i,
                submit_ts=submit[i],
                live_ts=submit[i] + cfg.latency,
                symbol=str(col("symbol")[i]),
                side=col("side")[i],
                qty=float(col("qty")[i]),
                size_type=col("size_type", "units")[i] or "units",
                order_type=col("order_type", "market")[i] or "market",
                limit_price=col("limit_price")[i],
                stop_price=col("stop_price")[i],
                tif=col("tif", "gtc")[i] or "gtc",
                expire_ts=expire[i],
                reduce_only=bool(col("reduce_only", False)[i] or False),
                stop_loss=col("stop_loss")[i],
                take_profit=col("take_profit")[i],
                trailing_stop=col("trailing_stop")[i],
                exit_after=exit_after[i],
                tag=col("tag")[i],
            )
        )
    engine = Engine(per_symbol, symbols, order_list, cfg)
    engine.run()
    return _frames(engine, orders, ts_dtype)


def _frames(engine: Engine, orders: pl.DataFrame, ts_dtype: pl.DataType) -> ReferenceResult:
    def ts_col(values: list[int | None], name: str) -> pl.Series:
        return pl.Series(name, values, dtype=pl.Int64).cast(pl.Datetime("ns", "UTC")).cast(ts_dtype)

    fills_schema = dict(
        order_id=pl.Int64, symbol=pl.Utf8, side=pl.Utf8, qty=pl.Float64, price=pl.Float64,
        fee=pl.Float64, reason=pl.Utf8, tag=pl.Utf8,
    )
    fills = pl.DataFrame([{k: r[k] for k in fills_schema} for r in engine.fills], schema=fills_schema)
    fills = fills.insert_column(1, ts_col([r["ts"] for r in engine.fills], "ts"))

    trade_schema = dict(
        symbol=pl.Utf8, direction=pl.Utf8, entry_order_id=pl.Int64, entry_price=pl.Float64,
        exit_price=pl.Float64, qty=pl.Float64, pnl=pl.Float64, **{"return": pl.Float64}, fees=pl.Float64,
        exit_reason=pl.Utf8, mae=pl.Float64, mfe=pl.Float64, tag=pl.Utf8, status=pl.Utf8,
    )
    trades = pl.DataFrame([{k: r[k] for k in trade_schema} for r in engine.trades], schema=trade_schema)
    trades = trades.insert_column(3, ts_col([r["entry_ts"] for r in engine.trades], "entry_ts"))
    trades = trades.insert_column(5, ts_col([r["exit_ts"] for r in engine.trades], "exit_ts"))

    equity = pl.DataFrame(
        {
            "ts": ts_col([r["ts"] for r in engine.equity], "ts"),
            "cash": pl.Series([r["cash"] for r in engine.equity], dtype=pl.Float64),
            "equity": pl.Series([r["equity"] for r in engine.equity], dtype=pl.Float64),
            "gross_exposure": pl.Series([r["gross_exposure"] for r in engine.equity], dtype=pl.Float64),
        }
    )

    out_orders = orders.with_columns(
        pl.Series("status", [o.status for o in engine.orders], dtype=pl.Utf8),
        ts_col([o.status_ts for o in engine.orders], "status_ts"),
        pl.Series("filled_qty", [o.filled_qty for o in engine.orders], dtype=pl.Float64),
        pl.Series("reject_reason", [o.reject_reason for o in engine.orders], dtype=pl.Utf8),
    )
    return ReferenceResult(fills=fills, trades=trades, equity=equity, orders=out_orders)
