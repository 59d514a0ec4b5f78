"""Raw, standardized and hawkish-signed surprises, with no look-ahead."""

from __future__ import annotations

from typing import Any

import polars as pl

from aftershock.calendar._pit import known_ts_expr
from aftershock.calendar._registry import INDICATORS, PRIOR_END
from aftershock.calendar._schema import validate_calendar
from aftershock.errors import ConfigError

DEFAULT_MIN_HISTORY = 6
SURPRISE_COLUMNS = ("surprise", "surprise_std", "surprise_n", "surprise_z", "hawkish_sign", "hawkish_z")


def _raw() -> pl.Expr:
    # Rounded so that 3.0 - 2.9 is 0.1, not 0.10000000000000009.
    return (pl.col("actual") - pl.col("consensus")).round(10)


def _pool(calendar: pl.DataFrame, history: Any | None) -> pl.DataFrame:
    own = calendar.filter(pl.col("indicator").is_not_null()).select(
        "indicator", "release_ts", "known_ts", _raw().alias("s")
    )
    if history is not None:
        hist = validate_calendar(history)
        hist = hist.filter(pl.col("indicator").is_not_null()).select(
            "indicator", "release_ts", known_ts_expr().alias("known_ts"), _raw().alias("s")
        )
        # A release present in both frames counts once, with the calendar's figures.
        hist = hist.join(own.select("indicator", "release_ts"), on=["indicator", "release_ts"], how="anti")
        own = pl.concat([own, hist])
    return own.filter(pl.col("s").is_not_null())


def _prior_frame() -> pl.DataFrame:
    rows = [
        (code, ind.prior_n, ind.prior_n * ind.prior_mean, (ind.prior_n - 1) * ind.prior_std**2 + ind.prior_n * ind.prior_mean**2)
        for code, ind in INDICATORS.items()
        if ind.prior_n >= 2 and ind.prior_std is not None
    ]
    return pl.DataFrame(
        rows, schema={"indicator": pl.String, "_pn": pl.Int64, "_ps": pl.Float64, "_pss": pl.Float64}, orient="row"
    )


def surprises(
    calendar: Any,
    *,
    history: Any | None = None,
    min_history: int = DEFAULT_MIN_HISTORY,
    prior: bool = True,
) -> pl.DataFrame:
    """The calendar plus its surprise columns, in the calendar's row order.

    - ``surprise`` = ``actual - consensus`` (null when either is null).
    - ``surprise_n``: how many releases of the same indicator, published strictly
      before this row (publication is ``release_ts`` for exact times, the end of the
      hour or day for coarser ``time_precision``), with a known surprise, the standard
      deviation uses.
    - ``surprise_std``: the sample standard deviation (ddof=1) of those earlier raw
      surprises; null while ``surprise_n < min_history``.
    - ``surprise_z`` = ``surprise / surprise_std`` (null when either is null or the
      std is 0).
    - ``hawkish_sign`` (Int8): the registry's sign (+1 when a higher print is hawkish,
      -1 for unemployment and jobless claims); null for policy events and indicators
      not in the registry.
    - ``hawkish_z`` = ``hawkish_sign * surprise_z``.

    Earlier releases come from the calendar itself and, when given, ``history`` (another
    calendar, e.g. a long ForexFactory export; a release present in both counts once,
    with the calendar's figures). Nothing at or after a row's own release time is used,
    so changing a later actual never changes an earlier row.

    ``prior=True`` seeds indicators that have no release before
    :data:`~aftershock.calendar.PRIOR_END` (2025-01-01) in the pool with the registry's
    summary of real 2020-2024 ForexFactory surprises (``Indicator.prior_n``, ``prior_mean``,
    ``prior_std``), for rows released on or after that date only: the summary is itself a
    set of strictly earlier releases, so this adds history without look-ahead. This is
    what gives the bundled three-month Q1-2025 calendar usable z-scores; pass
    ``prior=False`` to use only the frames you pass.

    Surprise columns already in ``calendar`` are recomputed, not duplicated.
    """
    if isinstance(min_history, bool) or not isinstance(min_history, int) or min_history < 0:
        raise ConfigError(f"min_history must be a whole number >= 0, got {min_history!r}", column="min_history")
    cal = validate_calendar(calendar)
    cal = cal.drop([c for c in SURPRISE_COLUMNS if c in cal.columns]).with_row_index("_row")
    pool = _pool(cal.with_columns(known_ts=known_ts_expr()), history)

    # A release enters the statistics of the rows published strictly after it was
    # itself published (the end of its precision interval), never before.
    cum = (
        pool.group_by("indicator", "known_ts")
        .agg(pl.len().alias("_n"), pl.col("s").sum().alias("_s"), (pl.col("s") ** 2).sum().alias("_ss"))
        .sort("indicator", "known_ts")
        .with_columns(pl.col(c).cum_sum().over("indicator") for c in ("_n", "_s", "_ss"))
    )
    keys = cal.select("_row", "indicator", "release_ts", known_ts_expr().alias("known_ts")).sort("known_ts")
    stats = keys.join_asof(
        cum.sort("known_ts"), on="known_ts", by="indicator", strategy="backward", allow_exact_matches=False,
        check_sortedness=False,  # sorted by known_ts overall, which is what by-group asof needs
    ).with_columns(pl.col("_n").fill_null(0), pl.col("_s").fill_null(0.0), pl.col("_ss").fill_null(0.0))

    if prior:
        covered = pool.filter(pl.col("release_ts") < PRIOR_END).select("indicator").unique()
        priors = _prior_frame().join(covered, on="indicator", how="anti")
        stats = stats.join(priors, on="indicator", how="left").with_columns(
            [
                pl.when((pl.col("release_ts") >= PRIOR_END) & pl.col("_pn").is_not_null())
                .then(pl.col(c) + pl.col(p))
                .otherwise(pl.col(c))
                .alias(c)
                for c, p in (("_n", "_pn"), ("_s", "_ps"), ("_ss", "_pss"))
            ]
        )

    n = pl.col("_n")
    var = ((pl.col("_ss") - pl.col("_s") ** 2 / n) / (n - 1)).clip(lower_bound=0.0)
    stats = stats.select(
        "_row",
        n.cast(pl.Int64).alias("surprise_n"),
        pl.when((n >= max(min_history, 2))).then(var.sqrt()).alias("surprise_std"),
    )

    signs = pl.DataFrame(
        {"indicator": list(INDICATORS), "hawkish_sign": [i.hawkish_sign for i in INDICATORS.values()]},
        schema={"indicator": pl.String, "hawkish_sign": pl.Int8},
    )
    out = (
        cal.join(stats, on="_row", how="left")
        .join(signs, on="indicator", how="left")
        .sort("_row")
        .with_columns(_raw().alias("surprise"))
        .with_columns(
            pl.when(pl.col("surprise_std") > 0).then(pl.col("surprise") / pl.col("surprise_std")).alias("surprise_z")
        )
        .with_columns(
            pl.when(pl.col("kind") == "policy").then(None).otherwise(pl.col("hawkish_sign")).cast(pl.Int8).alias("hawkish_sign"),
            pl.when(pl.col("indicator").is_null()).then(None).otherwise(pl.col("surprise_n")).alias("surprise_n"),
        )
        .with_columns((pl.col("hawkish_sign").cast(pl.Float64) * pl.col("surprise_z")).alias("hawkish_z"))
    )
    base = [c for c in cal.columns if c != "_row"]
    return out.select(base + list(SURPRISE_COLUMNS))
