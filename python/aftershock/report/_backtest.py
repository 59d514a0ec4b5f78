"""The backtest report: equity and drawdown, price with fills and events, attribution."""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from aftershock.report._page import DUR, INT, MONEY, PCT, PROSE, TEXT, cards, figure_div, page, table

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from aftershock.trading.results import Result

_UTC = pl.Datetime("us", "UTC")
# Surprise buckets of the hawkish-signed standardized surprise.
BUCKETS = ("hawkish > 1σ", "inline", "dovish < −1σ", "no surprise")
_BUY, _SELL, _EVENT, _LINE = "#1a7f37", "#cf222e", "#8250df", "#0969da"
_MAX_PRICE_POINTS = 4_000
_STEPS = ("1m", "5m", "15m", "30m", "1h", "4h", "1d", "1w")
_STEP_US = {"1m": 60e6, "5m": 300e6, "15m": 900e6, "30m": 1800e6, "1h": 3600e6, "4h": 14400e6, "1d": 86400e6, "1w": 604800e6}


def _events(calendar: Any) -> pl.DataFrame:
    """event_id, indicator, category, release_ts, hawkish_z of a calendar (surprises
    computed when the calendar has none)."""
    if not isinstance(calendar, pl.DataFrame):
        from aftershock.errors import CalendarError

        raise CalendarError(f"calendar must be a Polars DataFrame, got {type(calendar).__name__}")
    cal = calendar
    if "hawkish_z" not in cal.columns and {"actual", "consensus"} <= set(cal.columns):
        from aftershock.calendar import surprises

        cal = surprises(cal)
    want = {"event_id": pl.String, "indicator": pl.String, "category": pl.String, "hawkish_z": pl.Float64}
    cols = [pl.col(c).cast(t) if c in cal.columns else pl.lit(None, dtype=t).alias(c) for c, t in want.items()]
    if "release_ts" in cal.columns:
        cols.append(pl.col("release_ts").dt.convert_time_zone("UTC").dt.cast_time_unit("us"))
    else:
        cols.append(pl.lit(None, dtype=_UTC).alias("release_ts"))
    return cal.select(cols).unique("event_id", keep="first", maintain_order=True)


def _bucket(z: pl.Expr) -> pl.Expr:
    return (
        pl.when(z > 1.0).then(pl.lit(BUCKETS[0]))
        .when(z < -1.0).then(pl.lit(BUCKETS[2]))
        .when(z.is_not_null() & z.is_not_nan()).then(pl.lit(BUCKETS[1]))
        .otherwise(pl.lit(BUCKETS[3]))
    )


def attribution(result: "Result", calendar: pl.DataFrame | None = None) -> pl.DataFrame:
    """P&L per tag (usually the event id): closed trades, pnl, fees, win rate.

    With ``calendar``, each tag is joined to its event: ``indicator``, ``category``,
    ``hawkish_z`` and ``surprise`` (``hawkish > 1σ``, ``inline``, ``dovish < −1σ`` or
    ``no surprise``).
    """
    trades = result.trades.filter(pl.col("status") == "closed")
    out = (
        trades.group_by("tag", maintain_order=True)
        .agg(
            trades=pl.len(),
            pnl=pl.col("pnl").sum(),
            fees=pl.col("fees").sum(),
            win_rate=(pl.col("pnl") > 0).mean(),
            first_entry=pl.col("entry_ts").min(),
        )
        .sort("first_entry")
    )
    if calendar is None:
        return out
    ev = _events(calendar).drop("release_ts")
    return out.join(ev, left_on="tag", right_on="event_id", how="left").with_columns(
        _bucket(pl.col("hawkish_z")).alias("surprise")
    )


def attribution_by(result: "Result", calendar: pl.DataFrame, by: str) -> pl.DataFrame:
    """Closed-trade P&L grouped by ``indicator``, ``category`` or ``surprise``."""
    att = attribution(result, calendar)
    key = pl.col(by).fill_null("(untagged)" if by != "surprise" else BUCKETS[3])
    return (
        att.group_by(key.alias(by))
        .agg(events=pl.len(), trades=pl.col("trades").sum(), pnl=pl.col("pnl").sum(), fees=pl.col("fees").sum())
        .sort("pnl", descending=True)
    )


def _price_series(result: "Result", symbol: str) -> tuple[pl.DataFrame, str]:
    """Closes of ``symbol``, resampled to at most ~4,000 points for drawing."""
    bars = result._bars
    i = bars.symbol_index[symbol]
    lo, hi = bars.arrays["offsets"][i : i + 2]
    ts = bars.arrays["ts"][lo:hi]
    close = bars.arrays["close"][lo:hi]
    frame = pl.DataFrame({"ts": pl.Series(ts).cast(_UTC), "close": close})
    span = float(ts[-1] - ts[0]) if len(ts) else 0.0
    if len(ts) <= _MAX_PRICE_POINTS:
        return frame, "close"
    step = next((s for s in _STEPS if span / _STEP_US[s] <= _MAX_PRICE_POINTS), "1w")
    return frame.group_by_dynamic("ts", every=step, label="right", closed="right").agg(pl.col("close").last()), f"{step} close"


def _drawdown(values: np.ndarray, init: float) -> np.ndarray:
    peak = np.maximum.accumulate(np.concatenate([[init], values]))[1:]
    return values / peak - 1.0


def backtest_figure(result: "Result", calendar: pl.DataFrame | None = None, symbol: str | None = None) -> "go.Figure":
    """Equity, drawdown, price with fills and event markers (one time axis), and P&L by
    indicator, category and surprise bucket (needs ``calendar``)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    init = float(result.config["init_cash"])
    symbol = symbol or result._benchmark(None)
    eq = result.equity.sort("ts")
    end_ts = pl.Series([int(result._bars.arrays["ts"].max())]).cast(_UTC)
    ts = pl.concat([eq.get_column("ts"), end_ts]).to_list()
    values = eq.get_column("equity").to_numpy()
    values = np.append(values, values[-1] if len(values) else init)
    dd = _drawdown(values, init)

    fig = make_subplots(
        rows=4, cols=3,
        specs=[[{"colspan": 3}, None, None], [{"colspan": 3}, None, None], [{"colspan": 3}, None, None], [{}, {}, {}]],
        row_heights=[0.3, 0.14, 0.3, 0.26], vertical_spacing=0.06, horizontal_spacing=0.07,
        subplot_titles=(
            "Equity", "Drawdown", f"{symbol}: price, fills and events",
            "P&L by indicator", "P&L by category", "P&L by surprise",
        ),
    )
    fig.add_trace(go.Scatter(x=ts, y=values, mode="lines", line={"shape": "hv", "color": _LINE, "width": 1.6},
                             name="equity", hovertemplate="%{x}<br>equity %{y:,.2f}<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Scatter(x=ts, y=dd, mode="lines", line={"shape": "hv", "color": _SELL, "width": 1}, fill="tozeroy",
                             fillcolor="rgba(207,34,46,0.18)", name="drawdown",
                             hovertemplate="%{x}<br>drawdown %{y:.2%}<extra></extra>"), row=2, col=1)
    if symbol is not None:
        price, label = _price_series(result, symbol)
        fig.add_trace(go.Scatter(x=price.get_column("ts").to_list(), y=price.get_column("close").to_numpy(), mode="lines",
                                 line={"color": "#57606a", "width": 1}, name=f"{symbol} {label}",
                                 hovertemplate="%{x}<br>%{y:,.2f}<extra></extra>"), row=3, col=1)
        _event_markers(fig, result, calendar, price, symbol)  # under the fills
        fills = result.fills.filter(pl.col("symbol") == symbol)
        for side, color, marker in (("buy", _BUY, "triangle-up"), ("sell", _SELL, "triangle-down")):
            f = fills.filter(pl.col("side") == side)
            if f.height:
                text = [f"{r} · {t or ''} · qty {q:,.6g}" for r, t, q in f.select("reason", "tag", "qty").iter_rows()]
                fig.add_trace(go.Scatter(x=f.get_column("ts").to_list(), y=f.get_column("price").to_numpy(), mode="markers",
                                         marker={"symbol": marker, "size": 11, "color": color, "line": {"width": 1, "color": "white"}},
                                         name=f"{side} fills", text=text,
                                         hovertemplate="%{x}<br>%{y:,.2f}<br>%{text}<extra>" + side + "</extra>"), row=3, col=1)
    _attribution_bars(fig, result, calendar)
    fig.update_yaxes(title_text="equity", row=1, col=1)
    fig.update_yaxes(tickformat=".1%", row=2, col=1)
    fig.update_yaxes(title_text="P&L", row=4, col=1)
    for row in (2, 3):
        fig.update_xaxes(matches="x", row=row, col=1)
    fig.update_layout(template="plotly_white", height=1150, margin={"l": 60, "r": 20, "t": 60, "b": 40},
                      legend={"orientation": "h", "y": 1.04, "x": 0}, hovermode="closest", showlegend=True)
    return fig


def _event_markers(fig: "go.Figure", result: "Result", calendar: pl.DataFrame | None, price: pl.DataFrame, symbol: str) -> None:
    """Release times on the price panel: the calendar's events (traded ones filled), or,
    without a calendar, the decision time of each tagged order."""
    import plotly.graph_objects as go

    if price.height == 0:
        return
    bars_ts = result._bars.frame.filter(pl.col("symbol") == symbol).get_column("ts")
    lo, hi = bars_ts.min(), bars_ts.max()
    traded = set(result.trades.get_column("tag").drop_nulls().to_list())
    if calendar is not None:
        ev = _events(calendar).filter(pl.col("release_ts").is_between(lo, hi)).sort("release_ts")
        ev = ev.with_columns(pl.col("event_id").is_in(list(traded)).alias("traded"))
        text_of = lambda r: f"{r['event_id']}<br>{r['indicator'] or r['category'] or ''}<br>hawkish z {_z(r['hawkish_z'])}"  # noqa: E731
        ts_col = "release_ts"
    else:
        ev = (
            result.orders.filter(pl.col("tag").is_not_null()).group_by("tag", maintain_order=True)
            .agg(pl.col("submit_ts").min()).rename({"tag": "event_id"})
            .with_columns(pl.lit(True).alias("traded")).sort("submit_ts")
        )
        text_of = lambda r: f"{r['event_id']}<br>orders decided"  # noqa: E731
        ts_col = "submit_ts"
    if ev.height == 0:
        return
    at = ev.join_asof(price.sort("ts"), left_on=ts_col, right_on="ts", strategy="backward")
    at = at.with_columns(pl.col("close").fill_null(price.get_column("close")[0]))
    for flag, name, symbol in ((True, "events traded", "diamond-open"), (False, "other events", "line-ns-open")):
        part = at.filter(pl.col("traded") == flag)
        if part.height == 0:
            continue
        fig.add_trace(go.Scatter(
            x=part.get_column(ts_col).to_list(), y=part.get_column("close").to_numpy(), mode="markers", name=name,
            marker={"symbol": symbol, "size": 14 if flag else 12, "color": _EVENT, "line": {"width": 1.5, "color": _EVENT}},
            text=[text_of(r) for r in part.iter_rows(named=True)], hovertemplate="%{x}<br>%{text}<extra></extra>",
        ), row=3, col=1)


def _z(v: float | None) -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:+.2f}"


def _attribution_bars(fig: "go.Figure", result: "Result", calendar: pl.DataFrame | None) -> None:
    import plotly.graph_objects as go

    if calendar is None:
        fig.add_annotation(text="pass calendar= to attribute P&L to indicators, categories and surprises",
                           xref="x4 domain", yref="y4 domain", x=0, y=0.5, showarrow=False, font={"color": "#6a737d"})
        return
    for col, by in enumerate(("indicator", "category", "surprise"), start=1):
        g = attribution_by(result, calendar, by)
        if by == "surprise":
            order = {b: i for i, b in enumerate(BUCKETS)}
            g = g.with_columns(pl.col(by).replace_strict(order, return_dtype=pl.Int32).alias("_o")).sort("_o")
        pnl = g.get_column("pnl").to_numpy()
        fig.add_trace(go.Bar(x=g.get_column(by).to_list(), y=pnl, marker={"color": [_BUY if v >= 0 else _SELL for v in pnl]},
                             name=f"P&L by {by}", showlegend=False, customdata=g.select("trades", "events").to_numpy(),
                             hovertemplate="%{x}<br>P&L %{y:,.2f}<br>%{customdata[0]} trades, %{customdata[1]} events<extra></extra>"),
                      row=4, col=col)


_HEADLINE = (
    ("total_return", "Return"), ("buy_hold_return", "Buy & hold"), ("sharpe", "Sharpe"), ("max_drawdown", "Max drawdown"),
    ("trades", "Trades (closed)"), ("win_rate", "Win rate"), ("total_fees", "Fees"),
)


def _headline_cards(stats: Any) -> str:
    items = []
    for key, label in _HEADLINE:
        v = stats.get(key)
        sign = v if key in ("total_return", "sharpe", "buy_hold_return") and isinstance(v, (int, float)) else None
        items.append((label, stats.formatted()[key], sign))
    return cards(items)


def write_report(
    result: "Result", path: str | Path, *, title: str = "aftershock backtest", calendar: pl.DataFrame | None = None
) -> str:
    """Write the backtest report to ``path`` (one self-contained HTML file, interactive
    charts, works offline) and return the path as a string."""
    from aftershock.trading.results import STATS_DOC

    stats = result.stats()
    fmt = stats.formatted()
    stats_rows = pl.DataFrame(
        {"figure": [stats.label(k) for k in fmt], "value": list(fmt.values()), "key": list(fmt), "meaning": [STATS_DOC.get(k, "") for k in fmt]}
    )
    shown = {k: (f"{v / 1e6:g}s" if k == "latency" else v) for k, v in result.config.items()}  # latency is in µs
    config = pl.DataFrame({"setting": list(shown), "value": [str(v) for v in shown.values()]})
    trades = result.trades.drop("entry_order_id").with_columns((pl.col("exit_ts") - pl.col("entry_ts")).alias("held"))
    n_closed, n_open = stats["trades"], stats["open_trades"]
    trade_kinds = {"return": PCT, "mae": PCT, "mfe": PCT, "pnl": MONEY, "fees": MONEY, "held": DUR}
    att = attribution(result, calendar)
    body = [
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="lead">{fmt["start"]} → {fmt["end"]} ({fmt["duration"]}) · {n_closed} closed trades, {n_open} open · '
        f"benchmark {html.escape(str(stats['benchmark']))}</p>",
        "<h2>Headline figures</h2>",
        _headline_cards(stats),
        figure_div(backtest_figure(result, calendar), "backtest-overview"),
        '<p class="note">Drag to zoom (the three time panels move together), double-click to reset; '
        "hover a marker for the fill or event. Triangles are fills (up: buy, down: sell); open diamonds are the "
        "events the strategy traded, thin ticks the other events. The price line is resampled for drawing; fills are at their exact prices.</p>",
        "<h2>Attribution by event (tag)</h2>",
        table(att, {"pnl": MONEY, "fees": MONEY, "win_rate": PCT, "trades": INT, "hawkish_z": "num"}),
        f"<h2>Trades ({n_closed} closed, {n_open} open)</h2>",
        table(trades, trade_kinds),
        "<h2>All figures</h2>",
        table(stats_rows, {"meaning": PROSE, "value": TEXT, "key": TEXT}),
        "<h2>Settings</h2>",
        table(config, {"value": TEXT}),
        '<p class="note">Fills follow docs/engine.md: no fill before submit time + latency; '
        f"intrabar path: {html.escape(str(result.config.get('intrabar')))}. Figures are defined in docs/stats.md.</p>",
    ]
    return page(title, body, path)


def result_html(result: "Result") -> str:
    """The notebook summary of a Result: headline cards and the figures table (no charts;
    call ``result.plot()`` for those)."""
    stats = result.stats()
    return (
        '<div class="aftershock-result"><b>aftershock Result</b> '
        f"{result.fills.height} fills, {stats['trades']} closed trades, {stats['open_trades']} open"
        f"{stats._repr_html_()}</div>"
    )
