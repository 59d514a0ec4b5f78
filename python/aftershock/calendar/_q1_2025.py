"""The bundled Q1-2025 calendar: every U.S. release and policy event in the ArkStream
Capital Q1-2025 report (``seeds/arkstream-q1-2025-report.txt``).

Figures (actual, consensus, and ``previous`` where the report states it) are the
report's. Release times follow the registry convention (08:30 ET for these
statistics), converted to UTC through the IANA zone. Policy-event dates are public
record; the report itself names only the month for some of them, which is why each
carries its ``time_precision``.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import polars as pl

from aftershock.calendar._schema import CALENDAR_SCHEMA, from_rows, macro_row

REPORT = "ArkStream Capital Q1-2025 quarterly report"

# indicator, release date, period, actual, consensus, previous, where in the report
_MACRO = [
    ("NFP", "2025-01-10", "2024-12", 256.0, 160.0, None, "January: 'expected value of 160,000 and an actual value of 256,000'"),
    ("UNRATE", "2025-01-10", "2024-12", 4.1, 4.2, None, "January: '4.1%, lower than the expected 4.2%'"),
    ("PPI_YOY", "2025-01-14", "2024-12", 3.3, 3.4, None, "January: '3.3%, slightly lower than the expected 3.4%'"),
    ("CPI_YOY", "2025-01-15", "2024-12", 2.9, 2.9, 2.7, "January: '2.9%, meeting expectations but showing a 0.2% increase from the previous month'"),
    ("CORE_PCE_YOY", "2025-01-31", "2024-12", 2.8, 2.8, None, "January: 'core PCE data came in at 2.8%, as expected'"),
    ("NFP", "2025-02-07", "2025-01", 143.0, 170.0, None, "February: '143,000, below the expected 170,000'"),
    ("UNRATE", "2025-02-07", "2025-01", 4.0, 4.1, None, "February: '4.0%, lower than the expected 4.1%'"),
    ("CPI_YOY", "2025-02-12", "2025-01", 3.0, 2.9, None, "February: '3.0%, higher than the expected 2.9%'; BTC fell 2.66% within 15 minutes"),
    ("PPI_YOY", "2025-02-13", "2025-01", 3.5, 3.2, None, "February: '3.5%, surpassing the expected 3.2%'"),
    ("CORE_PCE_YOY", "2025-02-28", "2025-01", 2.6, None, None, "February: '2.6%, below expectations' (the report gives no consensus figure)"),
    ("NFP", "2025-03-07", "2025-02", 151.0, 160.0, None, "March: '151,000, slightly below the anticipated 160,000'"),
    ("UNRATE", "2025-03-07", "2025-02", 4.1, 4.0, None, "March: '4.1%, higher than the expected 4.0%'"),
    ("CPI_YOY", "2025-03-12", "2025-02", 2.8, 2.9, None, "March: '2.8%, lower than the expected 2.9%'"),
    ("PPI_YOY", "2025-03-13", "2025-02", 3.2, 3.3, None, "March: '3.2%, slightly below the expected 3.3%'"),
    ("PCE_YOY", "2025-03-28", "2025-02", 2.5, 2.5, None, "March: 'PCE price index for February was reported as 2.5%, meeting expectations'"),
    ("CORE_PCE_YOY", "2025-03-28", "2025-02", 2.8, 2.7, None, "March: 'core PCE year-on-year rate was 2.8%, higher than the anticipated 2.7%'"),
]

_UTC = dt.timezone.utc
_ET = ZoneInfo("America/New_York")
_BEIJING = ZoneInfo("Asia/Shanghai")


def _local_day(day: str, zone: ZoneInfo) -> dt.datetime:
    """Midnight of ``day`` in ``zone``, in UTC: the start of a day-precision interval
    when the primary source gives only the local date."""
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(0), tzinfo=zone).astimezone(_UTC)


# event_id, release_ts (UTC), precision, title, category, jurisdiction, direction, source
# direction: our analyst reading of the expected sign of the effect on crypto prices.
# Each time was checked against the primary document's date and the time zone it is
# dated in: a "day" event spans that local day (its outcome is public at the day's
# end); an "hour" event spans one hour. Where the market's reaction pins the hour, the
# real Binance BTCUSDT 5-minute bars are cited (volume several times the day's median).
_POLICY = [
    (
        "US-SBR-EO-2025-03-06", dt.datetime(2025, 3, 7, 0, 0, tzinfo=_UTC), "hour",
        "Executive order establishing the Strategic Bitcoin Reserve (about 200,000 forfeited BTC, no sales)",
        "reserve", "US", 1.0,
        f"{REPORT}: 'Trump signed an executive order in March 2025'. Primary: Executive Order 14233, signed "
        "6 March 2025 and announced that evening, U.S. Eastern time, by the White House crypto adviser on X; "
        "BTCUSDT perpetual 5-min volume jumps elevenfold in the 00:10 UTC bar of 7 March, so the hour "
        "00:00-01:00 UTC of 7 March (not 6 March UTC, which ends before the announcement)",
    ),
    (
        "US-RECIPROCAL-TARIFF-MEMO-2025-02-13", _local_day("2025-02-13", _ET), "day",
        "Reciprocal Trade and Tariffs memorandum",
        "tariff", "US", -1.0,
        f"{REPORT}: 'in February 2025, Trump signed the Reciprocal Trade and Tariff Memorandum'. Primary: "
        "presidential memorandum 'Reciprocal Trade and Tariffs', dated 13 February 2025 (a U.S. Eastern day)",
    ),
    (
        "US-RECIPROCAL-TARIFF-EO-2025-04-02", dt.datetime(2025, 4, 2, 20, 0, tzinfo=_UTC), "hour",
        "Executive order imposing reciprocal tariffs (announced 4 p.m. ET, 2 April 2025)",
        "tariff", "US", -1.0,
        f"{REPORT}: 'On April 2, 2025, Trump signed an executive order on retaliatory tariffs'. Primary: Executive "
        "Order 14257 of 2 April 2025, announced at the Rose Garden event from 16:00 EDT (20:00 UTC); BTCUSDT 5-min "
        "volume peaks in the 20:10-20:25 UTC bars",
    ),
    (
        "WLFI-USD1-LAUNCH-2025-03-25", _local_day("2025-03-25", _ET), "day",
        "World Liberty Financial launches the USD1 stablecoin",
        "stablecoin", "US", 0.5,
        f"{REPORT}: 'WLFI's USD1 stablecoin released in March 2025'. Primary: World Liberty Financial's "
        "announcement dated 25 March 2025 (U.S. Eastern day; the hour is not stated)",
    ),
    (
        "US-SEC-SAB121-REPEAL-2025-01-23", _local_day("2025-01-23", _ET), "day",
        "SEC rescinds Staff Accounting Bulletin 121 (replaced by SAB 122)",
        "regulation", "US", 1.0,
        f"{REPORT}: 'he repealed the contentious accounting standard SAB 121'. Primary: SEC Staff Accounting "
        "Bulletin No. 122, dated 23 January 2025 (a U.S. Eastern day; the hour is not stated)",
    ),
    (
        "CN-PBOC-VC-RWA-NOTICE-2026-02-06", _local_day("2026-02-06", _BEIJING), "day",
        "People's Bank of China and seven departments: notice on virtual-currency and RWA-tokenization risks (Yinfa [2026] No. 42)",
        "regulation", "CN", -1.0,
        f"{REPORT} (appended article): 'Today, the People's Bank of China's website published the Notice ... (Yinfa [2026] No. 42)';"
        " date inferred from the adjacent 'February 6th Market Key Intelligence' item (a Beijing day), so approximate",
    ),
]


def q1_2025_calendar() -> pl.DataFrame:
    """The real Q1-2025 calendar (16 U.S. macro releases, 6 policy events), sorted by time."""
    rows = [
        macro_row(
            ind, dt.date.fromisoformat(day), period, actual, consensus, previous,
            source=f"{REPORT}, {where}",
        )
        for ind, day, period, actual, consensus, previous, where in _MACRO
    ]
    for event_id, ts, precision, title, category, jurisdiction, direction, source in _POLICY:
        rows.append(
            {
                "event_id": event_id, "kind": "policy", "indicator": None, "period": None,
                "release_ts": ts, "actual": None, "consensus": None, "previous": None,
                "unit": None, "title": title, "category": category, "jurisdiction": jurisdiction,
                "direction": direction, "source": source, "time_precision": precision,
            }
        )
    frame = pl.DataFrame(rows, schema=CALENDAR_SCHEMA).sort("release_ts", maintain_order=True)
    return from_rows(frame.to_dicts())
