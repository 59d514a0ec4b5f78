"""A self-contained HTML report of one backtest: no JavaScript, no network, one file."""

from __future__ import annotations

import datetime as dt
import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

if TYPE_CHECKING:
    from aftershock.results import Result

__all__ = ["write_report", "attribution"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem;color:#1b1f24;max-width:1100px}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem}
.scroll{overflow-x:auto}
table{border-collapse:collapse;font-size:.85rem}td,th{padding:.25rem .6rem;border-bottom:1px solid #e3e6ea;text-align:right;white-space:nowrap}
th{background:#f5f7f9}td:first-child,th:first-child,td.text,th.text{text-align:left}td.text{white-space:normal}
.note{color:#6a737d;font-size:.8rem}
"""


def attribution(result: "Result") -> pl.DataFrame:
    """P&L per tag (usually the event id): closed trades, pnl, fees, win rate."""
    trades = result.trades.filter(pl.col("status") == "closed")
    return (
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


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:,.6g}" if abs(v) < 1e-3 or abs(v) >= 1e6 else f"{v:,.4f}"
    if isinstance(v, dt.datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S")
    return html.escape(str(v))


def _table(df: pl.DataFrame, limit: int = 200, text: tuple[str, ...] = ()) -> str:
    """An HTML table; columns named in ``text`` are left-aligned prose."""
    cls = [' class="text"' if c in text else "" for c in df.columns]
    head = "".join(f"<th{k}>{html.escape(c)}</th>" for c, k in zip(df.columns, cls))
    rows = "".join(
        "<tr>" + "".join(f"<td{k}>{_fmt(v)}</td>" for v, k in zip(row, cls)) + "</tr>" for row in df.head(limit).iter_rows()
    )
    more = f'<p class="note">{df.height - limit} more rows not shown</p>' if df.height > limit else ""
    return f'<div class="scroll"><table><tr>{head}</tr>{rows}</table></div>{more}'


def _utc(us: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(microseconds=us)


def _equity_svg(result: "Result", width: int = 1000, height: int = 260) -> str:
    curve = result.equity_curve("1h") if result.equity.height > 1 else result.equity
    ts = curve.get_column("ts").dt.epoch("us").to_list()
    eq = curve.get_column("equity").to_list()
    if len(ts) < 2:
        return '<p class="note">not enough points for a curve</p>'
    t0, t1 = ts[0], ts[-1]
    lo, hi = min(eq), max(eq)
    span = (hi - lo) or 1.0
    pts = " ".join(
        f"{(t - t0) / (t1 - t0) * (width - 60) + 50:.1f},{height - 20 - (e - lo) / span * (height - 40):.1f}" for t, e in zip(ts, eq)
    )
    return (
        f'<svg width="{width}" height="{height}" role="img" aria-label="equity curve">'
        f'<polyline fill="none" stroke="#0969da" stroke-width="1.5" points="{pts}"/>'
        f'<text x="0" y="14" font-size="11">{hi:,.2f}</text><text x="0" y="{height - 24}" font-size="11">{lo:,.2f}</text>'
        f'<text x="50" y="{height - 4}" font-size="11">{_fmt(_utc(t0))}</text>'
        f'<text x="{width - 10}" y="{height - 4}" font-size="11" text-anchor="end">{_fmt(_utc(t1))}</text>'
        "</svg>"
    )


def write_report(result: "Result", path: str | Path, *, title: str = "aftershock backtest") -> str:
    """Write the report to ``path`` and return the path as a string."""
    from aftershock.results import STATS_DOC

    stats = result.stats()
    stats_rows = pl.DataFrame(
        {"figure": list(stats), "value": [_fmt(v) for v in stats.values()], "meaning": [STATS_DOC[k] for k in stats]}
    )
    shown = {k: (f"{v / 1e6:g}s" if k == "latency" else v) for k, v in result.config.items()}  # latency is in µs
    config = pl.DataFrame({"setting": list(shown), "value": [_fmt(v) for v in shown.values()]})
    body = [
        f"<h1>{html.escape(title)}</h1>",
        "<h2>Headline figures</h2>",
        _table(stats_rows, text=("meaning",)),
        "<h2>Equity</h2>",
        _equity_svg(result),
        "<h2>Attribution by event (tag)</h2>",
        _table(attribution(result)),
        "<h2>Trades</h2>",
        _table(result.trades.drop("entry_order_id")),
        "<h2>Settings</h2>",
        _table(config),
        '<p class="note">Fills follow docs/engine.md: no fill before submit time + latency; '
        f"intrabar path: {html.escape(str(result.config.get('intrabar')))}.</p>",
    ]
    doc = f'<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{_CSS}</style></head><body>{"".join(body)}</body></html>'
    out = Path(path)
    out.write_text(doc, encoding="utf-8")
    return str(out)
