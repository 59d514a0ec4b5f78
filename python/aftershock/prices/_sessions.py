"""Trading-session calendars: when a market is open, and when it next opens.

A calendar is a weekly pattern of open intervals in a local time zone; public holidays
and early closes are not modelled (a missing holiday bar shows up as a data gap).

- ``"24/7"``: always open (crypto).
- ``"cme_equity"``: CME Globex equity futures (NQ, ES): Sunday 18:00 to Friday 17:00
  New York time, halted 17:00-18:00 every weekday.
- ``"nyse"``: the NYSE cash session, Monday to Friday 09:30-16:00 New York time.
- ``"fx"``: spot FX, Sunday 17:00 to Friday 17:00 New York time.

Instants are int64 microseconds since the epoch (UTC); the functions are vectorized.
"""

from __future__ import annotations

import numpy as np
import polars as pl

__all__ = ["SESSIONS", "is_open", "next_open"]

_NY = "America/New_York"
_DAY = 1440
# weekday (1 = Monday … 7 = Sunday) → open [start, end) minutes of the local day
SESSIONS: dict[str, dict[int, tuple[tuple[int, int], ...]]] = {
    "24/7": {d: ((0, _DAY),) for d in range(1, 8)},
    "cme_equity": {
        **{d: ((0, 17 * 60), (18 * 60, _DAY)) for d in (1, 2, 3, 4)},
        5: ((0, 17 * 60),),
        6: (),
        7: ((18 * 60, _DAY),),
    },
    "nyse": {**{d: ((9 * 60 + 30, 16 * 60),) for d in (1, 2, 3, 4, 5)}, 6: (), 7: ()},
    "fx": {**{d: ((0, _DAY),) for d in (1, 2, 3, 4)}, 5: ((0, 17 * 60),), 6: (), 7: ((17 * 60, _DAY),)},
}


def _local(t_us: np.ndarray) -> pl.DataFrame:
    ts = pl.Series(np.asarray(t_us, dtype=np.int64).reshape(-1)).cast(pl.Datetime("us", "UTC"))
    local = ts.dt.convert_time_zone(_NY)
    return pl.DataFrame({"t": ts, "local": local}).with_columns(
        pl.col("local").dt.weekday().alias("wd"),
        # wall-clock time of day (not time elapsed since midnight: days of 23 or 25 hours)
        ((pl.col("local").dt.hour().cast(pl.Int64) * 60 + pl.col("local").dt.minute()) * 60_000_000
         + pl.col("local").dt.second().cast(pl.Int64) * 1_000_000 + pl.col("local").dt.microsecond()).alias("us_of_day"),
        pl.col("local").dt.truncate("1d").dt.replace_time_zone(None).alias("day"),
    )


def is_open(t_us: np.ndarray, session: str) -> np.ndarray:
    """Whether the market is open at each instant (the open interval includes its start)."""
    t = np.asarray(t_us, dtype=np.int64)
    pattern = SESSIONS[session]
    if session == "24/7":
        return np.ones(t.shape, dtype=bool)
    loc = _local(t)
    wd = loc["wd"].to_numpy()
    us = loc["us_of_day"].to_numpy()
    out = np.zeros(wd.size, dtype=bool)
    for day, spans in pattern.items():
        for a, b in spans:
            out |= (wd == day) & (us >= a * 60_000_000) & (us < b * 60_000_000)
    return out.reshape(t.shape)


def next_open(t_us: np.ndarray, session: str) -> np.ndarray:
    """The first instant at or after each ``t`` when the market is open (``t`` itself
    when it is open)."""
    t = np.asarray(t_us, dtype=np.int64)
    if session == "24/7" or t.size == 0:
        return t.copy()
    open_now = is_open(t, session).reshape(-1)
    flat = t.reshape(-1)
    # candidate openings: the start of every open interval on the next 8 local days
    starts = [(d, a) for d, spans in SESSIONS[session].items() for a, _ in spans if a > 0 or not _continues(session, d)]
    loc = _local(flat).with_row_index("row")
    cand = (
        loc.select("row", "t", "day")
        .join(pl.DataFrame({"k": np.arange(9)}), how="cross")
        .with_columns(pl.col("day").dt.offset_by(pl.format("{}d", pl.col("k"))).alias("cday"))
        .with_columns(pl.col("cday").dt.weekday().alias("cwd"))
        .join(pl.DataFrame({"cwd": [d for d, _ in starts], "minute": [a for _, a in starts]}, schema={"cwd": pl.Int8, "minute": pl.Int64}), on="cwd")
        .with_columns(
            (pl.col("cday") + pl.duration(minutes=pl.col("minute")))
            .dt.replace_time_zone(_NY, ambiguous="earliest", non_existent="null")
            .dt.convert_time_zone("UTC")
            .alias("c")
        )
        .filter(pl.col("c") >= pl.col("t"))
        .group_by("row")
        .agg(pl.col("c").min())
    )
    nxt = np.full(flat.size, np.iinfo(np.int64).max, dtype=np.int64)
    nxt[cand["row"].to_numpy()] = cand["c"].dt.epoch("us").to_numpy()
    return np.where(open_now, flat, nxt).reshape(t.shape)


def _continues(session: str, day: int) -> bool:
    """Whether the open interval starting at midnight of ``day`` continues the previous
    day's session (then midnight is not an opening)."""
    prev = SESSIONS[session][7 if day == 1 else day - 1]
    return bool(prev) and prev[-1][1] == _DAY
