"""Calendar schema, registry (ET -> UTC through the IANA zone), loaders and the bundled
Q1-2025 calendar."""

from __future__ import annotations

import datetime as dt
import warnings

import polars as pl
import pytest

from aftershock.calendar import (
    CALENDAR_SCHEMA,
    INDICATORS,
    UnknownEventsWarning,
    q1_2025_calendar,
    read_calendar,
    validate_calendar,
)
from aftershock.errors import CalendarError

UTC = dt.timezone.utc


# --- registry -------------------------------------------------------------------------

def test_release_time_follows_us_daylight_saving():
    cpi = INDICATORS["CPI_YOY"]
    assert cpi.release_utc(dt.date(2025, 2, 12)) == dt.datetime(2025, 2, 12, 13, 30, tzinfo=UTC)
    assert cpi.release_utc(dt.date(2025, 7, 15)) == dt.datetime(2025, 7, 15, 12, 30, tzinfo=UTC)
    # U.S. DST began 2025-03-09: the 7 March payrolls are winter time, 12 March CPI summer
    assert INDICATORS["NFP"].release_utc(dt.date(2025, 3, 7)).hour == 13
    assert cpi.release_utc(dt.date(2025, 3, 12)).hour == 12
    # FOMC at 14:00 ET: 19:00 UTC in January, 18:00 UTC in September
    assert INDICATORS["FED_FUNDS"].release_utc(dt.date(2025, 1, 29)) == dt.datetime(2025, 1, 29, 19, 0, tzinfo=UTC)
    assert INDICATORS["FED_FUNDS"].release_utc(dt.date(2025, 9, 17)) == dt.datetime(2025, 9, 17, 18, 0, tzinfo=UTC)


def test_hawkish_signs_and_units():
    for code in ("CPI_YOY", "CPI_MOM", "CORE_CPI_MOM", "PPI_YOY", "CORE_PPI_MOM", "PCE_YOY", "CORE_PCE_YOY", "CORE_PCE_MOM", "NFP", "FED_FUNDS"):
        assert INDICATORS[code].hawkish_sign == 1, code
    assert INDICATORS["UNRATE"].hawkish_sign == -1
    assert INDICATORS["JOBLESS_CLAIMS"].hawkish_sign == -1
    assert INDICATORS["NFP"].unit == "thousands"
    assert INDICATORS["CPI_YOY"].unit == "pct"


# --- the bundled Q1-2025 calendar ----------------------------------------------------

def test_q1_2025_calendar_figures_from_the_report():
    cal = q1_2025_calendar()
    assert cal.schema == pl.Schema(CALENDAR_SCHEMA)
    macro = cal.filter(kind="macro")
    assert macro.height == 16
    assert cal.filter(kind="policy").height == 6
    row = macro.filter(event_id="CPI_YOY-2025-02-12").row(0, named=True)
    assert (row["actual"], row["consensus"]) == (3.0, 2.9)
    assert row["release_ts"] == dt.datetime(2025, 2, 12, 13, 30, tzinfo=UTC)
    assert row["period"] == dt.date(2025, 1, 1)
    nfp = macro.filter(indicator="NFP").sort("release_ts")
    assert nfp["actual"].to_list() == [256.0, 143.0, 151.0]
    assert nfp["consensus"].to_list() == [160.0, 170.0, 160.0]
    assert macro.filter(indicator="UNRATE")["actual"].to_list() == [4.1, 4.0, 4.1]
    assert macro.filter(indicator="PPI_YOY")["actual"].to_list() == [3.3, 3.5, 3.2]
    core = macro.filter(indicator="CORE_PCE_YOY").sort("release_ts")
    assert core["actual"].to_list() == [2.8, 2.6, 2.8]
    assert core["consensus"].to_list() == [2.8, None, 2.7]  # Feb: the report gives no figure
    # March 28 (after the 9 March DST switch): 08:30 ET = 12:30 UTC
    assert macro.filter(indicator="PCE_YOY")["release_ts"][0] == dt.datetime(2025, 3, 28, 12, 30, tzinfo=UTC)
    assert cal["release_ts"].is_sorted()
    assert cal["source"].null_count() == 0


def test_q1_2025_policy_events():
    pol = q1_2025_calendar().filter(kind="policy")
    cats = dict(zip(pol["event_id"], pol["category"]))
    assert cats["US-SBR-EO-2025-03-06"] == "reserve"
    assert cats["US-RECIPROCAL-TARIFF-EO-2025-04-02"] == "tariff"
    assert cats["WLFI-USD1-LAUNCH-2025-03-25"] == "stablecoin"
    assert cats["US-SEC-SAB121-REPEAL-2025-01-23"] == "regulation"
    assert set(pol["time_precision"]) <= {"exact", "hour", "day"}
    assert pol.filter(jurisdiction="CN").height == 1
    assert pol["indicator"].null_count() == pol.height and pol["period"].null_count() == pol.height
    assert pol["direction"].is_between(-1, 1).all()


# --- validation -----------------------------------------------------------------------

def _cal() -> pl.DataFrame:
    return q1_2025_calendar()


def test_validate_fills_defaults_and_converts_zone():
    df = pl.DataFrame(
        {
            "event_id": ["a"],
            "kind": ["macro"],
            "indicator": ["CPI_YOY"],
            "release_ts": [dt.datetime(2025, 2, 12, 8, 30)],
            "actual": [3],
        }
    ).with_columns(pl.col("release_ts").dt.replace_time_zone("America/New_York"))
    out = validate_calendar(df)
    assert out.schema == pl.Schema(CALENDAR_SCHEMA)
    r = out.row(0, named=True)
    assert r["release_ts"] == dt.datetime(2025, 2, 12, 13, 30, tzinfo=UTC)
    assert (r["unit"], r["category"], r["jurisdiction"], r["time_precision"]) == ("pct", "inflation", "US", "exact")
    assert r["actual"] == 3.0


@pytest.mark.parametrize(
    "column,value,row",
    [
        ("kind", "speech", 3),
        ("indicator", None, 2),  # a macro event without indicator
        ("direction", 1.5, 4),
        ("time_precision", "minute", 1),
        ("actual", float("nan"), 2),
        ("event_id", None, 5),
    ],
)
def test_bad_values_name_column_and_row(column, value, row):
    df = _cal()
    values = df[column].to_list()
    values[row] = value
    bad = df.with_columns(pl.Series(column, values, dtype=df.schema[column]))
    if column == "direction":
        bad = bad.with_columns(pl.when(pl.int_range(pl.len()) == row).then(pl.lit("policy")).otherwise(pl.col("kind")).alias("kind"),
                               pl.when(pl.int_range(pl.len()) == row).then(None).otherwise(pl.col("indicator")).alias("indicator"))
    with pytest.raises(CalendarError) as err:
        validate_calendar(bad)
    assert (err.value.column, err.value.row) == (column, row)


def test_duplicate_event_id_reports_second_occurrence():
    df = _cal()
    ids = df["event_id"].to_list()
    ids[7] = ids[2]
    with pytest.raises(CalendarError, match="duplicate") as err:
        validate_calendar(df.with_columns(pl.Series("event_id", ids)))
    assert (err.value.column, err.value.row) == ("event_id", 7)


def test_policy_event_with_indicator_is_rejected():
    df = _cal()
    row = df["kind"].to_list().index("policy")
    ind = df["indicator"].to_list()
    ind[row] = "CPI_YOY"
    with pytest.raises(CalendarError) as err:
        validate_calendar(df.with_columns(pl.Series("indicator", ind)))
    assert (err.value.column, err.value.row) == ("indicator", row)


def test_missing_column_wrong_type_and_naive_time():
    with pytest.raises(CalendarError) as err:
        validate_calendar(_cal().drop("release_ts"))
    assert err.value.column == "release_ts"
    with pytest.raises(CalendarError, match="naive") as err:
        validate_calendar(_cal().with_columns(pl.col("release_ts").dt.replace_time_zone(None)))
    assert err.value.column == "release_ts"
    with pytest.raises(CalendarError) as err:
        validate_calendar(_cal().with_columns(pl.col("actual").cast(pl.String)))
    assert err.value.column == "actual"


# --- loaders --------------------------------------------------------------------------

def test_own_csv_and_parquet_round_trip(tmp_path):
    cal = q1_2025_calendar()
    cal.write_csv(tmp_path / "cal.csv")
    cal.write_parquet(tmp_path / "cal.parquet")
    assert read_calendar(tmp_path / "cal.csv").equals(cal)
    assert read_calendar(str(tmp_path / "cal.parquet")).equals(cal)
    assert read_calendar(cal.to_pandas()).equals(cal)


def test_own_csv_needs_an_offset(tmp_path):
    (tmp_path / "c.csv").write_text(
        "event_id,kind,indicator,release_ts,actual,consensus\n"
        "a,macro,CPI_YOY,2025-02-12T13:30:00+00:00,3.0,2.9\n"
        "b,macro,CPI_YOY,2025-03-12 12:30,2.8,2.9\n"
    )
    with pytest.raises(CalendarError, match="offset") as err:
        read_calendar(tmp_path / "c.csv")
    assert (err.value.column, err.value.row) == ("release_ts", 1)


FF_TEXT = """DateTime,Currency,Impact,Event,Actual,Forecast,Previous,Detail
2025-02-07T13:30:00+00:00,USD,High Impact Expected,Non-Farm Employment Change,143K,170K,0.307M,
2025-02-07T13:30:00+00:00,USD,High Impact Expected,Unemployment Rate,4.0%,4.1%,4.1%,
2025-02-12T13:30:00+00:00,USD,High Impact Expected,CPI y/y,3.0%,2.9%,2.9%,
2025-02-13T13:30:00+00:00,USD,High Impact Expected,PPI m/m,0.4%,0.3%,0.5%,
2025-02-12T15:00:00+00:00,USD,High Impact Expected,Fed Chair Powell Speaks,,,,
2025-03-19T18:00:00+00:00,USD,High Impact Expected,Federal Funds Rate,4.50%,4.50%,4.50%,
2025-03-14T14:00:00+01:00,USD,High Impact Expected,Core PCE Price Index m/m,-0.1%,<0.1%,0.3%,
2025-02-06T12:00:00+00:00,GBP,High Impact Expected,Official Bank Rate,4.50%,4.50%,4.75%,
2025-02-07T13:30:00+00:00,CAD,High Impact Expected,Unemployment Rate,6.6%,6.8%,6.7%,
"""


def test_forexfactory_strings_are_parsed(tmp_path):
    path = tmp_path / "ff.csv"
    path.write_text(FF_TEXT)
    with pytest.warns(UnknownEventsWarning, match="Fed Chair Powell Speaks"):
        cal = read_calendar(path)
    by = {r["indicator"]: r for r in cal.iter_rows(named=True)}
    assert set(by) == {"NFP", "UNRATE", "CPI_YOY", "PPI_MOM", "FED_FUNDS", "CORE_PCE_MOM"}  # GBP left out
    assert (by["NFP"]["actual"], by["NFP"]["consensus"], by["NFP"]["previous"]) == (143.0, 170.0, 307.0)
    assert by["NFP"]["unit"] == "thousands"
    assert (by["CPI_YOY"]["actual"], by["CPI_YOY"]["consensus"]) == (3.0, 2.9)
    assert by["CPI_YOY"]["period"] == dt.date(2025, 1, 1)
    assert by["CORE_PCE_MOM"]["actual"] == -0.1 and by["CORE_PCE_MOM"]["consensus"] == 0.1
    assert by["CORE_PCE_MOM"]["previous"] == 0.3
    assert by["NFP"]["previous"] == 307.0  # "0.307M" in thousands
    # 14:00+01:00 is 13:00 UTC
    assert by["CORE_PCE_MOM"]["release_ts"] == dt.datetime(2025, 3, 14, 13, 0, tzinfo=UTC)
    assert by["FED_FUNDS"]["period"] is None
    assert by["NFP"]["event_id"] == "NFP-2025-02-07"


def test_forexfactory_unknown_events_raise_or_keep(tmp_path):
    path = tmp_path / "ff.csv"
    path.write_text(FF_TEXT)
    with pytest.raises(CalendarError, match="Fed Chair Powell Speaks") as err:
        read_calendar(path, unknown="raise")
    assert (err.value.column, err.value.row) == ("Event", 4)
    kept = read_calendar(path, unknown="keep", currencies=None)
    assert kept.height == 9
    assert "Fed Chair Powell Speaks" in kept["indicator"].to_list()
    assert kept.filter(indicator="GBP Official Bank Rate")["jurisdiction"].item() == "UK"
    # Canada's unemployment rate is not the U.S. UNRATE
    assert kept.filter(indicator="UNRATE").height == 1
    assert kept.filter(indicator="CAD Unemployment Rate")["actual"].item() == 6.6


@pytest.mark.parametrize(
    "cell, replacement, column, message",
    [
        ("3.0%,2.9%", "abc,2.9%", "Actual", "not a number"),
        ("3.0%,2.9%", "1e400%,2.9%", "Actual", "not a number"),
        ("3.0%,2.9%", "2.8K,2.9%", "Actual", "wrong unit"),
        ("143K,170K", "143K,17%", "Forecast", "wrong unit"),
    ],
)
def test_regression_forexfactory_values_are_never_dropped_silently(tmp_path, cell, replacement, column, message):
    # issue 8: 'abc' and '1e400%' became null with no warning; '2.8K' on a percentage
    # indicator was read as 2.8
    path = tmp_path / "ff.csv"
    path.write_text(FF_TEXT.replace(cell, replacement, 1))
    with pytest.raises(CalendarError, match=message) as err, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        read_calendar(path)
    assert err.value.column == column and err.value.row is not None


def test_forexfactory_bad_datetime(tmp_path):
    path = tmp_path / "ff.csv"
    path.write_text(FF_TEXT.replace("2025-02-12T13:30:00+00:00", "12/02/2025 8:30am"))
    with pytest.raises(CalendarError) as err:
        read_calendar(path)
    assert (err.value.column, err.value.row) == ("DateTime", 2)


def test_real_forexfactory_calendar(real_data):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cal = read_calendar(real_data / "calendar" / "ff_high_impact_2020_2026_ehsanrs2.csv")
    assert any(issubclass(w.category, UnknownEventsWarning) for w in caught)
    assert cal.height > 900 and cal["event_id"].is_unique().all()
    cpi = cal.filter(event_id="CPI_YOY-2025-02-12").row(0, named=True)
    assert (cpi["actual"], cpi["consensus"]) == (3.0, 2.9)
    assert cpi["release_ts"] == dt.datetime(2025, 2, 12, 13, 30, tzinfo=UTC)
    # summer releases come out at 12:30 UTC: the file's +01:00 offsets are honoured
    jul = cal.filter(pl.col("indicator") == "CPI_YOY", pl.col("release_ts").dt.month() == 7, pl.col("release_ts").dt.year() == 2025)
    assert jul["release_ts"].dt.hour().to_list() == [12]
    # the report's figures agree with the independent ForexFactory scrape
    report = q1_2025_calendar().filter(pl.col("indicator").is_in(["CPI_YOY", "NFP", "UNRATE"]))
    joined = report.join(cal, on=["indicator", "release_ts"], suffix="_ff")
    assert joined.height == 9
    assert (joined["actual"] == joined["actual_ff"]).all()
    # consensus surveys differ slightly: payrolls 160K/170K/160K in the report vs
    # 164K/169K/159K at ForexFactory; rates agree exactly
    pct = joined.filter(pl.col("unit") == "pct")
    assert (pct["consensus"] == pct["consensus_ff"]).all()
    assert (joined["consensus"] - joined["consensus_ff"]).abs().max() <= 4.0


def test_february_cpi_time_lines_up_with_the_real_btc_reaction(real_data):
    """The report: after the 12 Feb CPI 'BTC plummeted by 2500 points within 15 minutes,
    resulting in a 2.66% drop'. With the calendar's release_ts, the real 1-minute bars
    show exactly that from the release bar on, and a calm quarter hour before it."""
    from aftershock.prices import read_bars

    ts = q1_2025_calendar().filter(event_id="CPI_YOY-2025-02-12")["release_ts"].item()
    bars = read_bars(real_data / "btc_1m_futures_windows", symbol="BTC")
    after = bars.filter(pl.col("ts") >= ts, pl.col("ts") < ts + dt.timedelta(minutes=15))
    before = bars.filter(pl.col("ts") >= ts - dt.timedelta(minutes=15), pl.col("ts") < ts)
    hi, lo = after["high"].max(), after["low"].min()
    assert hi - lo == pytest.approx(2566.2, abs=0.1)
    assert (hi - lo) / hi == pytest.approx(0.0266, abs=0.0001)
    assert (before["high"].max() - before["low"].min()) / before["high"].max() < 0.007
