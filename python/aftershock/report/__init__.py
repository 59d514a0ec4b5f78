"""Charts and reports: interactive plotly figures for notebooks, and self-contained HTML
files that work offline (plotly.js is embedded; nothing is fetched).

- backtests: :func:`backtest_figure` (equity, drawdown, price with fills and events,
  P&L by indicator, category and surprise bucket), :func:`write_report`,
  :func:`attribution`, :func:`attribution_by`;
- research: :func:`walk_forward_figure`, :func:`write_walk_forward_report`,
  :func:`overfitting_figure`, :func:`write_sweep_report`;
- event studies: :func:`paths_figure`, :func:`scatter_figure`, :func:`heatmap_figure`,
  :func:`write_study_report`.

``Result.plot()``, ``Result.report(path)``, ``Study.plot()`` and ``Study.report(path)``
call these. plotly is imported only when a figure is drawn.
"""

from aftershock.report._backtest import BUCKETS, attribution, attribution_by, backtest_figure, result_html, write_report
from aftershock.report._research import (
    overfitting_cards,
    overfitting_figure,
    walk_forward_figure,
    write_sweep_report,
    write_walk_forward_report,
)
from aftershock.report._study import (
    heatmap_figure,
    paths_figure,
    scatter_figure,
    study_figure,
    study_html,
    write_study_report,
)

__all__ = [
    "attribution",
    "attribution_by",
    "BUCKETS",
    "backtest_figure",
    "write_report",
    "paths_figure",
    "scatter_figure",
    "heatmap_figure",
    "study_figure",
    "write_study_report",
    "result_html",
    "study_html",
    "walk_forward_figure",
    "write_walk_forward_report",
    "overfitting_figure",
    "overfitting_cards",
    "write_sweep_report",
]
