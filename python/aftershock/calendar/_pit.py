"""Point in time: which part of a calendar is public at a given instant.

Every calendar column belongs to one of three classes:

- **schedule** — known before the release: what, when, how precisely timed
  (``event_id``, ``kind``, ``indicator``, ``period``, ``release_ts``, ``unit``, ``title``,
  ``category``, ``jurisdiction``, ``time_precision``, ``scheduled``, ``hawkish_sign``,
  ``known_ts``);
- **consensus** — the market's expectation, public before the release (``consensus``);
- **outcome** — everything that is only known once the figure is out: ``actual``,
  ``previous`` (it is printed with the release and may carry a revision), ``direction``,
  ``source`` (free text that may quote the figure or the market's move), the surprise
  columns, and **any other column** (a column we do not know is assumed to reveal the
  outcome; declare it with ``schedule_columns=`` when it does not).

An event's outcome becomes public at ``known_ts``: its ``release_ts`` for an exact time,
the end of its precision interval otherwise (``release_ts`` + 1 hour for ``"hour"``,
+ 1 day for ``"day"``). Unscheduled events (``kind == "policy"`` unless a boolean
``scheduled`` column says otherwise) are not known to exist before ``known_ts``: the whole
row is hidden until then.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterable

import polars as pl

from aftershock.errors import CalendarError

__all__ = [
    "SCHEDULE_COLUMNS",
    "CONSENSUS_COLUMNS",
    "OUTCOME_COLUMNS",
    "PRECISION",
    "column_classes",
    "with_publication",
    "as_of",
    "revisions",
]

SCHEDULE_COLUMNS = (
    "event_id",
    "kind",
    "indicator",
    "period",
    "release_ts",
    "unit",
    "title",
    "category",
    "jurisdiction",
    "time_precision",
    "scheduled",
    "hawkish_sign",
    "known_ts",
)
CONSENSUS_COLUMNS = ("consensus",)
#: The outcome columns we know by name; any column not in the two lists above is an
#: outcome column too.
OUTCOME_COLUMNS = (
    "actual",
    "previous",
    "direction",
    "source",
    "surprise",
    "surprise_std",
    "surprise_n",
    "surprise_z",
    "hawkish_z",
)
#: Length of each time precision's interval: the outcome is public at its end.
PRECISION: dict[str, dt.timedelta] = {
    "exact": dt.timedelta(0),
    "hour": dt.timedelta(hours=1),
    "day": dt.timedelta(days=1),
}


def column_classes(columns: Iterable[str], schedule_columns: Iterable[str] = ()) -> dict[str, str]:
    """``{column: "schedule" | "consensus" | "outcome"}`` for ``columns``.

    >>> column_classes(["event_id", "consensus", "actual", "my_note"])
    {'event_id': 'schedule', 'consensus': 'consensus', 'actual': 'outcome', 'my_note': 'outcome'}
    >>> column_classes(["my_note"], schedule_columns=["my_note"])
    {'my_note': 'schedule'}
    """
    extra = set(schedule_columns)
    out = {}
    for c in columns:
        if c in SCHEDULE_COLUMNS or c in extra:
            out[c] = "schedule"
        elif c in CONSENSUS_COLUMNS:
            out[c] = "consensus"
        else:
            out[c] = "outcome"
    return out


def known_ts_expr() -> pl.Expr:
    """``release_ts`` plus the length of the row's precision interval."""
    length = pl.col("time_precision").replace_strict(
        {k: int(v.total_seconds() * 1_000_000) for k, v in PRECISION.items()}, default=None, return_dtype=pl.Int64
    )
    return pl.col("release_ts") + pl.duration(microseconds=length)


def with_publication(calendar: pl.DataFrame) -> pl.DataFrame:
    """``calendar`` (validated) with ``known_ts`` (when the outcome is public) and a
    boolean ``scheduled`` column (kept when the calendar has one)."""
    if "scheduled" in calendar.columns:
        if calendar.schema["scheduled"] not in (pl.Boolean, pl.Null):
            raise CalendarError(f"'scheduled' must be Boolean, got {calendar.schema['scheduled']}", column="scheduled")
        scheduled = pl.col("scheduled").cast(pl.Boolean).fill_null(pl.col("kind") == "macro")
    else:
        scheduled = pl.col("kind") == "macro"
    return calendar.with_columns(known_ts=known_ts_expr(), scheduled=scheduled)


def as_of(
    calendar: pl.DataFrame,
    ts: Any,
    *,
    before: Any = None,
    schedule_columns: Iterable[str] = (),
) -> pl.DataFrame:
    """The calendar as it is public at ``ts``: rows in input order, schedule and
    consensus of every scheduled event, outcomes of events whose ``known_ts <= ts``
    (and ``< before`` when given), unscheduled events only once published. Hidden
    outcome cells are null; the schema is unchanged.

    ``calendar`` must carry ``known_ts`` and ``scheduled`` (see :func:`with_publication`).
    """
    public = pl.col("known_ts") <= ts
    if before is not None:
        public = public & (pl.col("known_ts") < before)
    classes = column_classes(calendar.columns, schedule_columns)
    return calendar.filter(pl.col("scheduled") | public).with_columns(
        pl.when(public).then(pl.col(c)).otherwise(None).alias(c) for c, k in classes.items() if k == "outcome"
    )


def revisions(calendar: Any) -> pl.DataFrame:
    """Revised figures as events of their own, published with the release that printed them.

    A release's ``previous`` is the figure for the indicator's prior period *as known at
    this release*. Where it differs from the prior release's first print (``actual``), the
    prior figure was revised: this returns one event per revision, with ``event_id``
    ``"<prior event_id>/rev@<this event_id>"``, the prior ``period``, ``actual`` = the
    revised figure, ``previous`` = the first print, this release's ``release_ts`` and
    ``time_precision`` (when the revision became public), no consensus, and ``revises``
    naming the prior event. The first print is never overwritten: append the result to
    the calendar (``pl.concat([cal, revisions(cal)], how="diagonal_relaxed")``) to trade
    or study revisions as releases of their own.

    >>> import datetime as dt
    >>> t = lambda d: dt.datetime(2025, 1, d, 13, 30, tzinfo=dt.timezone.utc)
    >>> cal = pl.DataFrame({"event_id": ["NFP-1", "NFP-2"], "kind": "macro", "indicator": "NFP",
    ...                     "release_ts": [t(10), t(31)], "actual": [256.0, 143.0], "previous": [212.0, 307.0]})
    >>> revisions(cal).select("event_id", "actual", "previous", "revises").row(0)
    ('NFP-1/rev@NFP-2', 307.0, 256.0, 'NFP-1')
    """
    from aftershock.calendar._schema import validate_calendar

    cal = validate_calendar(calendar)
    ordered = cal.filter(pl.col("indicator").is_not_null()).sort("indicator", "release_ts", maintain_order=True)
    prior = [pl.col(c).shift(1).over("indicator").alias(f"_prior_{c}") for c in ("event_id", "actual", "period")]
    revised = ordered.with_columns(prior).filter(
        pl.col("previous").is_not_null()
        & pl.col("_prior_actual").is_not_null()
        & ((pl.col("previous") - pl.col("_prior_actual")).abs() > 1e-9 * pl.col("_prior_actual").abs().clip(lower_bound=1.0))
    )
    out = revised.select(
        event_id=pl.col("_prior_event_id") + "/rev@" + pl.col("event_id"),
        kind=pl.col("kind"),
        indicator=pl.col("indicator"),
        period=pl.col("_prior_period"),
        release_ts=pl.col("release_ts"),
        actual=pl.col("previous"),
        previous=pl.col("_prior_actual"),
        unit=pl.col("unit"),
        title=pl.col("title"),
        category=pl.col("category"),
        jurisdiction=pl.col("jurisdiction"),
        source=pl.lit("revision printed with ") + pl.col("event_id"),
        time_precision=pl.col("time_precision"),
        revises=pl.col("_prior_event_id"),
    )
    return validate_calendar(out)
