"""HTML building blocks shared by the reports: formatted tables, figure embedding and a
self-contained page (plotly.js inlined once, no network)."""

from __future__ import annotations

import datetime as dt
import html
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import polars as pl

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:1.5rem 2rem;color:#1b1f24;max-width:1280px}
h1{font-size:1.45rem;margin-bottom:.2rem}h2{font-size:1.12rem;margin-top:2.2rem;border-bottom:1px solid #e3e6ea;padding-bottom:.2rem}
p.lead{color:#57606a;margin-top:.2rem}
.note{color:#6a737d;font-size:.82rem;max-width:80ch}
.cards{display:flex;flex-wrap:wrap;gap:.8rem;margin:1rem 0}
.card{border:1px solid #e3e6ea;border-radius:6px;padding:.55rem .9rem;min-width:8.5rem}
.card .v{font-size:1.25rem;font-variant-numeric:tabular-nums}.card .k{font-size:.78rem;color:#57606a}
.pos{color:#1a7f37}.neg{color:#cf222e}
.scroll{overflow:auto;max-height:32rem;border:1px solid #e3e6ea;border-radius:4px}
table{border-collapse:collapse;font-size:.84rem}
td,th{padding:.25rem .6rem;border-bottom:1px solid #eef0f2;text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
th{background:#f5f7f9;position:sticky;top:0;z-index:1}
td.text,th.text,th.prose{text-align:left}td.prose{white-space:normal;text-align:left;min-width:24rem}
.figure{margin:.5rem 0 1rem 0}
"""

# Column kinds for tables: how a cell is formatted.
PCT, NUM, INT, MONEY, TIME, DUR, TEXT, PROSE, P = "pct", "num", "int", "money", "time", "dur", "text", "prose", "p"


def fmt(value: Any, kind: str = NUM) -> str:
    """One cell as text: percentages with a % sign, times without microseconds."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M" + (":%S" if value.second else ""))
    if isinstance(value, dt.timedelta):
        from aftershock.trading.stats import format_value

        return format_value(value, "duration")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if kind == PCT and isinstance(value, (int, float)):
        return f"{value * 100:,.2f}%"
    if kind == P and isinstance(value, (int, float)):
        return f"{value:.3f}" if value >= 0.001 else f"{value:.1e}"
    if kind == MONEY and isinstance(value, (int, float)):
        return f"{value:,.2f}"
    if kind == INT and isinstance(value, (int, float)):
        return f"{int(value):,}"
    if isinstance(value, float):
        if value != 0 and abs(value) < 1e-3:  # small quantities: decimals, not 7.4e-05
            return f"{value:.10f}".rstrip("0") if abs(value) >= 1e-10 else f"{value:.3e}"
        return f"{value:,.4f}"
    return str(value)


def table(
    df: pl.DataFrame,
    kinds: Mapping[str, str] | None = None,
    *,
    labels: Mapping[str, str] | None = None,
    limit: int = 5_000,
) -> str:
    """An HTML table in a scrolling box (it scrolls instead of clipping); ``kinds`` maps a
    column to its format (``pct``, ``money``...); string columns are left-aligned."""
    kinds = dict(kinds or {})
    labels = dict(labels or {})
    for c, t in df.schema.items():
        if c not in kinds and t == pl.String:
            kinds[c] = TEXT
    cls = []
    for c in df.columns:
        k = kinds.get(c, NUM)
        cls.append(' class="prose"' if k == PROSE else ' class="text"' if k == TEXT else "")
    head = "".join(f"<th{k}>{html.escape(labels.get(c, c))}</th>" for c, k in zip(df.columns, cls))
    body = "".join(
        "<tr>" + "".join(f"<td{k}>{html.escape(fmt(v, kinds.get(c, NUM)))}</td>" for v, c, k in zip(row, df.columns, cls)) + "</tr>"
        for row in df.head(limit).iter_rows()
    )
    more = f'<p class="note">{df.height - limit:,} more rows not shown</p>' if df.height > limit else ""
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>{more}'


def cards(items: Sequence[tuple[str, str, float | None]]) -> str:
    """Headline figures as cards: (label, formatted value, signed number for colour)."""
    out = []
    for label, text, sign in items:
        cls = "" if sign is None or sign == 0 or (isinstance(sign, float) and math.isnan(sign)) else (" pos" if sign > 0 else " neg")
        out.append(f'<div class="card"><div class="v{cls}">{html.escape(text)}</div><div class="k">{html.escape(label)}</div></div>')
    return f'<div class="cards">{"".join(out)}</div>'


def figure_div(fig: Any, div_id: str) -> str:
    """A plotly figure as a div and its drawing script (plotly.js loaded by the page)."""
    return '<div class="figure">' + fig.to_html(
        full_html=False,
        include_plotlyjs=False,
        div_id=div_id,
        config={"displaylogo": False, "responsive": True},
    ) + "</div>"


def page(title: str, body: Sequence[str], path: str | Path) -> str:
    """Write a self-contained page: plotly.js is embedded, nothing is fetched."""
    from plotly.offline import get_plotlyjs

    doc = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style>'
        f'<script type="text/javascript">{get_plotlyjs()}</script></head><body>{"".join(body)}</body></html>'
    )
    out = Path(path)
    out.write_text(doc, encoding="utf-8")
    return str(out)


def hours(us: Any) -> Any:
    """Microseconds to hours (event-time axes)."""
    return us / 3.6e9
