"""Calibrate the synthetic market's defaults (and the surprise priors) on real data.

Reads the real validation data (``../shared/data/real`` next to the checkout, or
``$AFTERSHOCK_REAL_DATA``), never copies it, and prints the numbers that are written
into ``aftershock/datasets/_synthetic.py`` (``CALIBRATION``) and
``aftershock/calendar/_registry.py`` (``_PRIORS``), and quoted in ``docs/data.md``.

    python scripts/calibrate_synthetic.py            # print everything
    python scripts/calibrate_synthetic.py --json     # machine-readable

What is measured, on Binance BTCUSDT USDT-M perpetual 5-minute bars, 2025-01 ... 2025-12:

- ``daily_vol``: standard deviation of daily (00:00 UTC) close-to-close log returns;
- ``hourly_pattern``: the root-mean-square 5-minute log return in each UTC hour divided
  by the overall root mean square (24 numbers whose squares average to 1);
- ``t_df``: Student-t degrees of freedom matching the excess kurtosis of 5-minute returns
  after dividing out the hourly pattern (df = 4 + 6 / excess kurtosis);
- around U.S. 08:30 ET releases in the ForexFactory calendar (CPI, PPI, payrolls,
  unemployment, PCE, retail sales...): ``release_abs_move_15m`` (median |15-minute log
  return| from the release), the same for the same clock time on days without a release
  (``baseline_abs_move_15m``), the volatility boost of the first 5 minutes
  (``post_vol_boost``: RMS return of the release bar / RMS of the same bar on other days,
  minus 1) and its decay time ``post_vol_tau_minutes`` (from the boost 30-60 minutes later);
- ``sensitivity``: slope, through the origin, of the 15-minute log return on the
  release's hawkish z-score (``aftershock.calendar.surprises``, no look-ahead), over the
  CPI/PPI/PCE/NFP/unemployment releases of 2025, with its t-statistic and n.

Priors: for each registry indicator, n, mean and sample std of raw surprises
(actual - consensus) of its ForexFactory releases from ``PRIOR_START`` (2022-01-01) to
``PRIOR_END`` (2025-01-01). 2020-2021 is left out on purpose: pandemic-era misses
(payrolls off by millions, unemployment by points) would inflate the std tenfold and
shrink every later z-score toward zero. The release statistics use the same window, so
the sensitivity's z-scores are the ones ``surprises`` gives the bundled calendar.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parents[1]
SENSITIVITY_INDICATORS = ("CPI_YOY", "CPI_MOM", "CORE_CPI_MOM", "PPI_MOM", "PPI_YOY", "CORE_PPI_MOM",
                          "CORE_PCE_MOM", "CORE_PCE_YOY", "PCE_YOY", "NFP", "UNRATE")


def real_data_dir() -> Path:
    env = os.environ.get("AFTERSHOCK_REAL_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data" / "real"


def load_inputs(root: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    from aftershock.calendar import UnknownEventsWarning, read_calendar
    from aftershock.prices import read_bars

    from aftershock.calendar import PRIOR_START

    bars = read_bars(root / "btc_5m_futures", symbol="BTC")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnknownEventsWarning)
        calendar = read_calendar(root / "calendar" / "ff_high_impact_2020_2026_ehsanrs2.csv")
    return bars, calendar.filter(pl.col("release_ts") >= PRIOR_START)


def priors(calendar: pl.DataFrame) -> dict[str, tuple[int, float, float]]:
    from aftershock.calendar import INDICATORS, PRIOR_END

    stats = (
        calendar.filter(pl.col("release_ts") < PRIOR_END, pl.col("indicator").is_in(list(INDICATORS)))
        .with_columns((pl.col("actual") - pl.col("consensus")).round(10).alias("s"))
        .drop_nulls("s")
        .group_by("indicator")
        .agg(pl.len().alias("n"), pl.col("s").mean().alias("mean"), pl.col("s").std(ddof=1).alias("std"))
        .filter(pl.col("n") >= 2)
        .sort("indicator")
    )
    return {r["indicator"]: (int(r["n"]), round(r["mean"], 6), round(r["std"], 6)) for r in stats.iter_rows(named=True)}


def bar_statistics(bars: pl.DataFrame) -> dict:
    r5 = bars.select("ts", pl.col("close").log().diff().alias("r")).drop_nulls()
    daily = bars.group_by_dynamic("ts", every="1d").agg(pl.col("close").last()).select(pl.col("close").log().diff()).drop_nulls()
    daily_vol = float(daily.to_series().std())
    by_hour = r5.group_by(pl.col("ts").dt.hour().alias("h")).agg((pl.col("r") ** 2).mean().alias("ms")).sort("h")
    overall = float((r5["r"] ** 2).mean())
    pattern = [math.sqrt(v / overall) for v in by_hour["ms"].to_list()]
    norm = math.sqrt(sum(p * p for p in pattern) / 24)
    pattern = [round(p / norm, 3) for p in pattern]
    z = r5.join(pl.DataFrame({"h": list(range(24)), "p": pattern}, schema={"h": pl.Int8, "p": pl.Float64}),
                left_on=pl.col("ts").dt.hour().cast(pl.Int8), right_on="h").select(pl.col("r") / pl.col("p"))
    x = z.to_series().to_numpy()
    x = x - x.mean()
    excess = float(np.mean(x**4) / np.mean(x**2) ** 2 - 3)
    t_df = 4 + 6 / excess if excess > 0 else 30.0
    return {
        "daily_vol": round(daily_vol, 5),
        "five_minute_vol": round(float(np.std(r5["r"].to_numpy())), 6),
        "hourly_pattern": pattern,
        "excess_kurtosis_5m": round(excess, 2),
        "t_df": round(min(max(t_df, 2.5), 30.0), 2),
        "n_bars": bars.height,
        "first_bar": str(bars["ts"].min()),
        "last_bar": str(bars["ts"].max()),
    }


def release_statistics(bars: pl.DataFrame, calendar: pl.DataFrame) -> dict:
    from aftershock.calendar import surprises

    year = calendar.filter(pl.col("release_ts").dt.year() == 2025)
    z = surprises(calendar).filter(pl.col("release_ts").dt.year() == 2025)
    # releases at 08:30 New York time (13:30 or 12:30 UTC)
    ny = pl.col("release_ts").dt.convert_time_zone("America/New_York")
    at_0830 = year.filter((ny.dt.hour() == 8) & (ny.dt.minute() == 30))
    times = at_0830.select("release_ts").unique().sort("release_ts")
    close = bars.select("ts", pl.col("close").log().alias("lc"), pl.col("open").log().alias("lo"))

    def window_return(starts: pl.DataFrame, minutes: int) -> pl.Series:
        a = starts.join(close, left_on="release_ts", right_on="ts").select("release_ts", pl.col("lo").alias("a"))
        b = close.with_columns((pl.col("ts") - pl.duration(minutes=minutes - 5)).alias("release_ts")).select("release_ts", pl.col("lc").alias("b"))
        return a.join(b, on="release_ts").select(pl.col("b") - pl.col("a")).to_series()

    rel = window_return(times, 15)
    release_days = times.select(pl.col("release_ts").dt.date()).to_series()
    ny_bars = close.with_columns(pl.col("ts").dt.convert_time_zone("America/New_York").alias("ny"))
    base_times = ny_bars.filter(
        (pl.col("ny").dt.hour() == 8) & (pl.col("ny").dt.minute() == 30),
        pl.col("ny").dt.weekday() <= 5,
        ~pl.col("ts").dt.date().is_in(release_days.implode()),
    ).select(pl.col("ts").alias("release_ts"))
    base = window_return(base_times, 15)

    def rms_after(starts: pl.DataFrame, lo: int, hi: int) -> float:
        offs = []
        for k in range(lo, hi, 5):
            s = starts.with_columns((pl.col("release_ts") + pl.duration(minutes=k)).alias("t"))
            j = s.join(close, left_on="t", right_on="ts").select((pl.col("lc") - pl.col("lo")) ** 2)
            offs.append(j.to_series())
        return math.sqrt(float(pl.concat(offs).mean()))

    boost0 = rms_after(times, 0, 5) / rms_after(base_times, 0, 5) - 1
    boost_late = rms_after(times, 30, 60) / rms_after(base_times, 30, 60) - 1
    tau = 45 / math.log(boost0 / boost_late) if boost0 > boost_late > 0 else 15.0

    zz = z.filter(pl.col("indicator").is_in(SENSITIVITY_INDICATORS), pl.col("hawkish_z").is_not_null())
    # one observation per release time: the hawkish z's of simultaneous releases add up
    per_time = zz.group_by("release_ts").agg(pl.col("hawkish_z").sum().alias("hz")).sort("release_ts")
    a = per_time.join(close, left_on="release_ts", right_on="ts").select("release_ts", "hz", pl.col("lo").alias("a"))
    b = close.with_columns((pl.col("ts") - pl.duration(minutes=10)).alias("release_ts")).select("release_ts", pl.col("lc").alias("b"))
    xy = a.join(b, on="release_ts").select("hz", (pl.col("b") - pl.col("a")).alias("r"))
    x, y = xy["hz"].to_numpy(), xy["r"].to_numpy()
    slope = float((x @ y) / (x @ x))
    resid = y - slope * x
    se = math.sqrt(float(resid @ resid) / (len(x) - 1) / float(x @ x))
    return {
        "n_release_times_0830": times.height,
        "release_abs_move_15m": round(float(rel.abs().median()), 6),
        "baseline_abs_move_15m": round(float(base.abs().median()), 6),
        "post_vol_boost": round(boost0, 3),
        "post_vol_boost_30_60m": round(boost_late, 3),
        "post_vol_tau_minutes": round(tau, 1),
        "sensitivity": round(slope, 6),
        "sensitivity_t": round(slope / se, 2),
        "sensitivity_n": len(x),
    }


def calibrate(root: Path | None = None) -> dict:
    root = root or real_data_dir()
    if not (root / "PROVENANCE.md").exists():
        raise SystemExit(f"real data not found at {root} (set AFTERSHOCK_REAL_DATA)")
    bars, calendar = load_inputs(root)
    return {"bars": bar_statistics(bars), "releases": release_statistics(bars, calendar), "priors": priors(calendar)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = calibrate()
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    for section in ("bars", "releases"):
        print(f"# {section}")
        for k, v in result[section].items():
            print(f"{k} = {v!r}")
    print("# priors: indicator: (n, mean, std) of raw surprises, 2022-01-01 <= release < 2025-01-01")
    for k, v in result["priors"].items():
        print(f"    {k!r}: {v!r},")
    return 0


if __name__ == "__main__":
    sys.exit(main())
