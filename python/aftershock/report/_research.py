"""Reports of research runs: a walk-forward (in- and out-of-sample side by side, the
stitched out-of-sample equity) and a sweep with its overfitting statistics (deflated
Sharpe ratio, PBO and the CSCV logit distribution). Offline HTML, like the others."""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from aftershock.report._page import INT, P, PCT, cards, figure_div, fmt, page, table

if TYPE_CHECKING:  # pragma: no cover
    import plotly.graph_objects as go

    from aftershock.research.overfitting import Overfitting
    from aftershock.research.walk_forward import WalkForward

__all__ = ["walk_forward_figure", "write_walk_forward_report", "overfitting_figure", "overfitting_cards", "write_sweep_report"]

_IS, _OOS = "#8c959f", "#0969da"


def walk_forward_figure(wf: "WalkForward") -> "go.Figure":
    """Top: the stitched out-of-sample equity, test windows shaded by fold. Bottom: the
    objective of the chosen variant per fold, in-sample and out-of-sample side by side."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    obj = wf.objective
    fig = make_subplots(rows=2, cols=1, row_heights=[0.6, 0.4], vertical_spacing=0.12,
                        subplot_titles=("stitched out-of-sample equity", f"{obj}: in-sample vs out-of-sample, per fold"))
    if wf.equity.height:
        fig.add_trace(go.Scatter(x=wf.equity["ts"], y=wf.equity["equity"], mode="lines", name="out-of-sample equity",
                                 line={"color": _OOS, "shape": "hv"}), row=1, col=1)
    for k, row in enumerate(wf.folds.iter_rows(named=True)):
        fig.add_vrect(x0=row["test_start"], x1=row["test_end"], fillcolor="#0969da" if k % 2 else "#54aeff",
                      opacity=0.06, line_width=0, row=1, col=1)
    labels = [f"fold {k}" for k in wf.folds["fold"]]
    for prefix, name, color in (("is_", "in-sample", _IS), ("oos_", "out-of-sample", _OOS)):
        values = wf.folds[f"{prefix}{obj}"].cast(pl.Float64).to_list()
        fig.add_trace(go.Bar(x=labels, y=values, name=name, marker_color=color), row=2, col=1)
    fig.update_layout(barmode="group", height=620, margin={"l": 60, "r": 20, "t": 50, "b": 40},
                      legend={"orientation": "h", "y": -0.08})
    return fig


def write_walk_forward_report(wf: "WalkForward", path: str, *, title: str = "aftershock walk-forward") -> str:
    """The walk-forward page: headline figures, the chart, the folds table (in- and
    out-of-sample figures in adjacent columns)."""
    s = wf.summary()
    obj = wf.objective
    eff = s["efficiency"]
    body = [
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="lead">{s["folds"]} folds by {wf.params.get("by")}, objective {obj}; '
        f'purge horizon {wf.params.get("purge_us", 0) / 3.6e9:.2f} h, embargo {wf.params.get("embargo_us", 0) / 3.6e9:.2f} h '
        "(docs/research.md states the rule)</p>",
        cards([
            ("out-of-sample return", fmt(s["oos_total_return"], PCT), s["oos_total_return"]),
            (f"mean in-sample {obj}", fmt(s[f"mean_is_{obj}"]), None),
            (f"mean out-of-sample {obj}", fmt(s[f"mean_oos_{obj}"]), s[f"mean_oos_{obj}"]),
            ("walk-forward efficiency", fmt(eff), None),
        ]),
        figure_div(walk_forward_figure(wf), "walk-forward"),
        "<h2>Folds: in-sample and out-of-sample side by side</h2>",
        table(wf.folds, {c: PCT for c in wf.folds.columns if c.endswith(("total_return", "max_drawdown", "win_rate"))}
              | {c: INT for c in ("train_orders", "purged_orders", "test_orders")}),
    ]
    return page(title, body, path)


def overfitting_figure(of: "Overfitting") -> "go.Figure":
    """CSCV: the distribution of the chosen variant's out-of-sample rank logits (PBO is
    the share at or below 0) and its in- vs out-of-sample Sharpe ratio per split."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("rank logits of the in-sample best (PBO: share <= 0)",
                                                        "Sharpe of the in-sample best: in vs out of sample"))
    if of.cscv is not None:
        scale = math.sqrt(of.periods_per_year)
        fig.add_trace(go.Histogram(x=of.cscv.logits, nbinsx=40, marker_color=_OOS, name="logit"), row=1, col=1)
        fig.add_vline(x=0, line_dash="dash", line_color="#cf222e", row=1, col=1)
        fig.add_trace(go.Scattergl(x=of.cscv.is_sharpe * scale, y=of.cscv.oos_sharpe * scale, mode="markers",
                                   marker={"size": 4, "color": _IS, "opacity": 0.5}, name="split"), row=1, col=2)
    fig.update_xaxes(title_text="logit", row=1, col=1)
    fig.update_xaxes(title_text="in-sample Sharpe (annualized)", row=1, col=2)
    fig.update_yaxes(title_text="out-of-sample Sharpe (annualized)", row=1, col=2)
    fig.update_layout(height=420, showlegend=False, margin={"l": 60, "r": 20, "t": 50, "b": 40})
    return fig


def overfitting_cards(of: "Overfitting") -> str:
    d = of.to_dict()
    return cards([
        ("variants tried", fmt(d["variants"], INT), None),
        ("best Sharpe (annualized)", fmt(d["best_sharpe_annualized"]), d["best_sharpe_annualized"]),
        ("expected best of noise", fmt(d["expected_max_sharpe_annualized"]), None),
        ("deflated Sharpe ratio", fmt(d["deflated_sharpe"], P), None),
        ("PBO (CSCV)", fmt(d["pbo"], P), None),
    ])


def write_sweep_report(frame: pl.DataFrame, of: "Overfitting", path: str, *, title: str = "aftershock sweep") -> str:
    """A sweep's page: its overfitting statistics first, then every variant's figures."""
    d = of.to_dict()
    body = [
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="lead">{d["variants"]} variants over {d["periods"]} days. The deflated Sharpe ratio is the '
        "probability that the best variant's true Sharpe ratio beats the best of as many variants without skill; "
        "the PBO is the share of CSCV splits where the in-sample best ranks at or below the out-of-sample median "
        "(docs/research.md).</p>",
        overfitting_cards(of),
        figure_div(overfitting_figure(of), "overfitting"),
        "<h2>Variants</h2>",
        table(frame.with_row_index("variant"), {c: PCT for c in ("total_return", "max_drawdown", "win_rate", "exposure")}),
    ]
    return page(title, body, path)

