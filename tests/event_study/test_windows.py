"""Window specs: duration strings, timedeltas and (start, end) pairs."""

from datetime import timedelta

import pytest

from aftershock.errors import InputError
from aftershock.event_study import Window, parse_duration, parse_window, parse_windows


@pytest.mark.parametrize(
    "text, expected",
    [
        ("15m", timedelta(minutes=15)),
        ("-10h", timedelta(hours=-10)),
        ("1d", timedelta(days=1)),
        ("2w", timedelta(weeks=2)),
        ("90s", timedelta(seconds=90)),
        ("1h30m", timedelta(minutes=90)),
        ("1.5h", timedelta(minutes=90)),
        ("5min", timedelta(minutes=5)),
        ("+4h", timedelta(hours=4)),
        ("0", timedelta(0)),
        (" 15M ", timedelta(minutes=15)),
    ],
)
def test_parse_duration(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("bad", ["", "15", "m15", "1mo", "1y", "15 minutes", "--1h", "1h-", None, 15])
def test_parse_duration_rejects_with_column(bad):
    with pytest.raises(InputError) as err:
        parse_duration(bad)
    assert err.value.column == "windows"
    assert isinstance(err.value, ValueError)


def test_single_durations_become_reaction_or_drift_windows():
    ws = parse_windows(["-10h", "15m", timedelta(hours=1), timedelta(minutes=-30)])
    assert [(w.start, w.end) for w in ws] == [
        (timedelta(hours=-10), timedelta(0)),
        (timedelta(0), timedelta(minutes=15)),
        (timedelta(0), timedelta(hours=1)),
        (timedelta(minutes=-30), timedelta(0)),
    ]
    assert [w.label for w in ws] == ["-10h", "15m", "1h", "-30m"]
    assert [w.kind for w in ws] == ["drift", "reaction", "reaction", "drift"]


def test_pairs_and_straddles():
    w = parse_window(("-30m", "1h"))
    assert (w.start, w.end, w.label, w.kind) == (timedelta(minutes=-30), timedelta(hours=1), "-30m..1h", "straddle")
    assert parse_window(("15m", "1h")).kind == "reaction"
    assert parse_window(("15m", "1h")).length == timedelta(minutes=45)


def test_a_top_level_tuple_is_a_list_of_windows():
    assert [w.label for w in parse_windows(("-10h", "15m"))] == ["-10h", "15m"]
    assert [w.label for w in parse_windows("15m")] == ["15m"]
    assert parse_windows(Window(timedelta(0), timedelta(minutes=1), "x"))[0].label == "x"


@pytest.mark.parametrize("bad", [[], ["0"], [("1h", "15m")], [("1h", "1h")], ["15m", "15m"], [("1h",)]])
def test_bad_window_lists(bad):
    with pytest.raises(InputError):
        parse_windows(bad)
