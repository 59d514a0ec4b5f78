"""The study report: event-time paths, surprise-versus-reaction scatter, sensitivity
heatmap and the tests table."""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from aftershock.report._page import INT, P, PCT, cards, figure_div, page, table

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from aftershock.event_study import Study

_COLORS = ("#0969da", "#cf222e", "#1a7f37", "#8250df", "#bf8700", "#57606a", "#e16f24", "#0a3069")
KINDS = ("paths", "scatter", "heatmap")
_T_CAP = 4.0  # |t| beyond this saturates the heatmap's colour (one extreme cell must not wash out the rest)


def _rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def _indicators(study: "Study") -> list[str]:
    """Indicators ordered by number of events (most first), then by name."""
    counts = study.reactions.group_by("indicator").agg(pl.col("event_id").n_unique().alias("n"))
    return counts.sort(["n", "indicator"], descending=[True, False]).get_column("indicator").to_list()


def _symbols(study: "Study") -> list[str]:
    return study.reactions.get_column("symbol").unique(maintain_order=True).to_list()


def _dropdown(labels: list[str], groups: list[list[int]], n_traces: int, title: str) -> list[dict]:
    """One button per label showing only its traces."""
    buttons = []
    for label, idx in zip(labels, groups):
        visible = [False] * n_traces
        for i in idx:
            visible[i] = True
        buttons.append({"label": label, "method": "update", "args": [{"visible": visible}]})
    return [{"buttons": buttons, "direction": "down", "x": 0, "xanchor": "left", "y": 1.0, "yanchor": "bottom",
             "showactive": True, "pad": {"r": 4, "t": 0}, "type": "dropdown", "name": title}]


def paths_figure(study: "Study", signed: bool = True) -> "go.Figure":
    """Average cumulative abnormal return in event time, per indicator (dropdown) and asset,
    with its 95% band. ``signed``: each event's path is multiplied by the sign of its
    hawkish surprise, so the average is the reaction *to a hawkish surprise*."""
    import plotly.graph_objects as go

    p = study.paths
    mean, lo, hi, n = ("mean_signed_car", "ci_low_signed", "ci_high_signed", "n_signed") if signed else ("mean_car", "ci_low", "ci_high", "n")
    fig = go.Figure()
    labels: list[str] = []
    groups: list[list[int]] = []
    symbols = _symbols(study)
    for ind in _indicators(study):
        idx = []
        for k, sym in enumerate(symbols):
            part = p.filter((pl.col("indicator") == ind) & (pl.col("symbol") == sym) & pl.col(mean).is_not_null()).sort("offset")
            if part.height == 0:
                continue
            x = part.get_column("offset").dt.total_microseconds().to_numpy() / 3.6e9
            color = _COLORS[k % len(_COLORS)]
            first = not groups
            band = part.select(pl.col(lo).fill_null(pl.col(mean)), pl.col(hi).fill_null(pl.col(mean)))
            fig.add_trace(go.Scatter(x=np.concatenate([x, x[::-1]]),
                                     y=np.concatenate([band.get_column(hi).to_numpy(), band.get_column(lo).to_numpy()[::-1]]),
                                     fill="toself", fillcolor=_rgba(color, 0.15), line={"width": 0}, hoverinfo="skip",
                                     name=f"{sym} 95% band", legendgroup=sym, showlegend=False, visible=first))
            idx.append(len(fig.data) - 1)
            fig.add_trace(go.Scatter(x=x, y=part.get_column(mean).to_numpy(), mode="lines", line={"color": color, "width": 2},
                                     name=sym, legendgroup=sym, visible=first, customdata=part.get_column(n).to_numpy(),
                                     hovertemplate=f"{sym} · {ind}<br>%{{x:.2f}} h<br>mean CAR %{{y:.3%}}<br>%{{customdata}} events<extra></extra>"))
            idx.append(len(fig.data) - 1)
        if idx:
            labels.append(ind)
            groups.append(idx)
    fig.add_vline(x=0, line={"color": "#6a737d", "dash": "dot", "width": 1})
    fig.add_hline(y=0, line={"color": "#d0d7de", "width": 1})
    what = "signed by the hawkish surprise" if signed else "raw"
    fig.update_layout(
        template="plotly_white", height=480, margin={"l": 60, "r": 20, "t": 110, "b": 50},
        title={"text": f"Average event-time path ({what}), 95% band", "x": 0.0, "y": 0.97, "xanchor": "left"},
        xaxis_title="hours from release", yaxis_title="cumulative abnormal return", yaxis_tickformat=".2%",
        updatemenus=_dropdown(labels, groups, len(fig.data), "indicator") if labels else [],
        legend={"orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 1, "xanchor": "right"},
    )
    _lift_menu(fig, 1.09)
    return fig


def _lift_menu(fig: "go.Figure", y: float) -> None:
    if fig.layout.updatemenus:
        fig.layout.updatemenus[0].y = y
    fig.update_layout(legend={"y": y})


def scatter_figure(study: "Study") -> "go.Figure":
    """Reaction (abnormal return) against the hawkish-signed surprise, one panel per
    window, indicator chosen in a dropdown; the fitted slope with its 95% interval."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    windows = [w.label for w in study.windows]
    r = study.reactions.filter(pl.col("car").is_not_null() & pl.col("hawkish_z").is_not_null() & pl.col("hawkish_z").is_finite())
    sens = study.sensitivity.filter(pl.col("spec") == "single")
    symbols = _symbols(study)
    fig = make_subplots(rows=1, cols=len(windows), subplot_titles=[f"window {w}" for w in windows], shared_yaxes=False,
                        horizontal_spacing=0.05)
    labels: list[str] = []
    groups: list[list[int]] = []
    for ind in _indicators(study):
        idx = []
        for c, win in enumerate(windows, start=1):
            for k, sym in enumerate(symbols):
                pts = r.filter((pl.col("indicator") == ind) & (pl.col("window") == win) & (pl.col("symbol") == sym))
                if pts.height == 0:
                    continue
                color = _COLORS[k % len(_COLORS)]
                first = not groups
                x = pts.get_column("hawkish_z").to_numpy()
                fig.add_trace(go.Scatter(x=x, y=pts.get_column("car").to_numpy(), mode="markers", name=sym, legendgroup=sym,
                                         showlegend=first and c == 1, visible=first,
                                         marker={"color": color, "size": 8, "opacity": 0.8},
                                         text=pts.get_column("event_id").to_list(),
                                         hovertemplate="%{text}<br>surprise %{x:+.2f}σ<br>CAR %{y:.3%}<extra>" + sym + "</extra>"),
                              row=1, col=c)
                idx.append(len(fig.data) - 1)
                fit = sens.filter((pl.col("indicator") == ind) & (pl.col("window") == win) & (pl.col("symbol") == sym))
                if fit.height and fit["slope"][0] is not None:
                    row = fit.row(0, named=True)
                    xs = np.linspace(min(x.min(), 0.0), max(x.max(), 0.0), 30)
                    b0 = row["intercept"] or 0.0
                    lo_s = row["ci_low"] if row["ci_low"] is not None else row["slope"]
                    hi_s = row["ci_high"] if row["ci_high"] is not None else row["slope"]
                    y_lo = b0 + np.minimum(lo_s * xs, hi_s * xs)
                    y_hi = b0 + np.maximum(lo_s * xs, hi_s * xs)
                    fig.add_trace(go.Scatter(x=np.concatenate([xs, xs[::-1]]), y=np.concatenate([y_hi, y_lo[::-1]]), fill="toself",
                                             fillcolor=_rgba(color, 0.12), line={"width": 0}, hoverinfo="skip", showlegend=False,
                                             legendgroup=sym, visible=first), row=1, col=c)
                    idx.append(len(fig.data) - 1)
                    t = row["t_hc3"]
                    fig.add_trace(go.Scatter(x=xs, y=b0 + row["slope"] * xs, mode="lines", line={"color": color, "width": 1.6},
                                             showlegend=False, legendgroup=sym, visible=first,
                                             hovertemplate=(f"{sym} slope {row['slope']:.3%} per σ<br>95% CI [{lo_s:.3%}, {hi_s:.3%}]"
                                                            f"<br>t (HC3) {t if t is None else round(t, 2)}, n {row['n']}<extra></extra>")),
                                  row=1, col=c)
                    idx.append(len(fig.data) - 1)
        if idx:
            labels.append(ind)
            groups.append(idx)
    fig.update_xaxes(title_text="hawkish surprise (σ)", zeroline=True)
    fig.update_yaxes(tickformat=".2%", zeroline=True)
    fig.update_yaxes(title_text="abnormal return", row=1, col=1)
    fig.update_layout(
        template="plotly_white", height=470, margin={"l": 60, "r": 20, "t": 150, "b": 50},
        title={"text": "Surprise versus reaction: fitted slope (OLS) and its 95% interval (HC3)", "x": 0.0, "y": 0.97, "xanchor": "left"},
        updatemenus=_dropdown(labels, groups, len(fig.data), "indicator") if labels else [],
        legend={"orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 1, "xanchor": "right"},
    )
    _lift_menu(fig, 1.16)
    return fig


def heatmap_figure(study: "Study") -> "go.Figure":
    """Robust t of the sensitivity slope for every indicator × (asset, window); the
    cell text is the slope in % per σ of surprise."""
    import plotly.graph_objects as go

    sens = study.sensitivity.filter(pl.col("spec") == "single")
    windows = [w.label for w in study.windows]
    symbols = _symbols(study)
    indicators = [i for i in _indicators(study) if i in set(sens.get_column("indicator").to_list())]
    cols = [(s, w) for s in symbols for w in windows]
    z = np.full((len(indicators), len(cols)), np.nan)
    text = [["" for _ in cols] for _ in indicators]
    hover = [["no estimate" for _ in cols] for _ in indicators]
    where = {(ind, s, w): row for ind, s, w, row in zip(sens["indicator"], sens["symbol"], sens["window"], sens.iter_rows(named=True))}
    for i, ind in enumerate(indicators):
        for j, (s, w) in enumerate(cols):
            row = where.get((ind, s, w))
            if row is None or row["slope"] is None:
                continue
            t = row["t_hc3"]
            z[i, j] = t if t is not None else np.nan
            text[i][j] = f"{row['slope'] * 100:+.2f}%"
            hover[i][j] = f"{ind} · {s} · {w}<br>slope {row['slope']:.3%} per σ<br>t (HC3) {t:.2f}<br>n {row['n']}" if t is not None else f"slope {row['slope']:.3%}"
    fig = go.Figure(go.Heatmap(
        z=z, x=[f"{s} · {w}" for s, w in cols], y=indicators, text=text, texttemplate="%{text}", customdata=hover,
        hovertemplate="%{customdata}<extra></extra>", colorscale="RdBu_r", zmid=0, zmin=-_T_CAP, zmax=_T_CAP,
        colorbar={"title": {"text": "t (HC3)"}, "tickvals": [-_T_CAP, -2, 0, 2, _T_CAP],
                  "ticktext": [f"≤ −{_T_CAP:g}", "−2", "0", "2", f"≥ {_T_CAP:g}"]}, xgap=1, ygap=1,
    ))
    fig.update_layout(
        template="plotly_white", height=max(320, 60 + 32 * len(indicators)), margin={"l": 140, "r": 20, "t": 60, "b": 80},
        title={"text": "Sensitivity: slope per σ of hawkish surprise (text) and its robust t (colour)", "x": 0.0, "xanchor": "left"},
        yaxis={"autorange": "reversed"},
    )
    return fig


def study_figure(study: "Study", kind: str = "paths") -> "go.Figure":
    if kind == "paths":
        return paths_figure(study)
    if kind == "scatter":
        return scatter_figure(study)
    if kind == "heatmap":
        return heatmap_figure(study)
    from aftershock.errors import InputError

    raise InputError(f"kind must be one of {KINDS}, got {kind!r}", column="kind")


_TEST_COLS = ("indicator", "symbol", "window", "signed", "n", "mean_car", "median_car", "frac_positive", "t_cs", "p_cs",
              "bmp_t", "p_bmp", "kp_t", "p_kp", "rank_z", "p_rank", "sign_z", "p_sign", "patell_z", "p_patell")
_TEST_KINDS = {"n": INT, "mean_car": PCT, "median_car": PCT, "frac_positive": PCT, **{c: P for c in _TEST_COLS if c.startswith("p_")}}


def write_study_report(study: "Study", path: str | Path, *, title: str = "aftershock event study") -> str:
    """Write the study report to ``path`` (one self-contained HTML file, works offline)."""
    r = study.reactions
    n_events = r.get_column("event_id").n_unique()
    uncovered = r.get_column("car").null_count()
    sens = study.sensitivity.filter(pl.col("spec") == "single")
    strong = sens.filter(pl.col("t_hc3").abs() >= 2).height if sens.height else 0
    tests = study.tests.select([c for c in _TEST_COLS if c in study.tests.columns]).sort("indicator", "symbol", "window", "signed")
    sens_table = study.sensitivity.select("indicator", "symbol", "window", "spec", "n", "slope", "ci_low", "ci_high", "t_hc3", "t_hc1", "p", "r2")
    body = [
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="lead">{n_events} events · symbols {", ".join(_symbols(study))} · windows '
        f'{", ".join(w.label for w in study.windows)} · model {html.escape(study.model)}'
        f'{" (benchmark " + html.escape(study.benchmark) + ")" if study.benchmark else ""}</p>',
        cards([
            ("events", f"{n_events:,}", None), ("reactions measured", f"{r.height - uncovered:,}", None),
            ("reactions without data", f"{uncovered:,}", None), ("slopes with |t| ≥ 2", f"{strong} of {sens.height}", None),
        ]),
        "<h2>How prices moved around the releases</h2>",
        '<p class="note">Each line is the mean cumulative abnormal return of one asset across the chosen indicator\'s '
        "events, each event signed by its hawkish surprise (a dovish surprise's path is flipped), so a line going down "
        "means the asset falls on hawkish news. The band is the 95% confidence interval of the mean; pick the indicator "
        "in the menu.</p>",
        figure_div(paths_figure(study), "study-paths"),
        "<h2>Surprise versus reaction</h2>",
        '<p class="note">One point per event: the hawkish-signed standardized surprise (σ) against the abnormal return '
        "in the window. The line is the OLS fit; the shaded fan is the slope's 95% interval (HC3 standard errors).</p>",
        figure_div(scatter_figure(study), "study-scatter"),
        "<h2>Sensitivity across indicators, assets and windows</h2>",
        figure_div(heatmap_figure(study), "study-heatmap"),
        "<h2>Tests across events</h2>",
        '<p class="note">signed = reactions multiplied by the sign of the surprise. t_cs: cross-sectional t; bmp_t: '
        "Boehmer–Musumeci–Poulsen; kp_t: Kolari–Pynnönen adjusted BMP; rank_z: Corrado rank; sign_z: generalized sign; "
        "patell_z: Patell. Definitions in docs/study.md.</p>",
        table(tests, _TEST_KINDS),
        "<h2>Sensitivity regressions</h2>",
        table(sens_table, {"n": INT, "slope": PCT, "ci_low": PCT, "ci_high": PCT, "p": P}),
    ]
    return page(title, body, path)


def study_html(study: "Study") -> str:
    """The notebook summary of a Study: what was measured and the strongest slopes."""
    r = study.reactions
    sens = study.sensitivity.filter(pl.col("spec") == "single").filter(pl.col("t_hc3").is_not_null())
    top = sens.sort(pl.col("t_hc3").abs(), descending=True).head(8).select("indicator", "symbol", "window", "n", "slope", "t_hc3", "p")
    head = (
        f"<b>aftershock Study</b> · {r.get_column('event_id').n_unique()} events · symbols "
        f"{html.escape(', '.join(_symbols(study)))} · windows {html.escape(', '.join(w.label for w in study.windows))} · "
        f"model {html.escape(study.model)} · {r.get_column('car').null_count()} of {r.height} reactions without data"
    )
    return f'<div class="aftershock-study">{head}<br>Strongest sensitivities (slope per σ of hawkish surprise):{table(top, {"slope": PCT, "p": P, "n": INT})}</div>'
