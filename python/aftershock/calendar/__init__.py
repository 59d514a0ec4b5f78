"""The event calendar: schema, indicator registry, loaders, surprises and the bundled
Q1-2025 calendar. See ``docs/data.md``."""

from aftershock.calendar._pit import (
    CONSENSUS_COLUMNS,
    OUTCOME_COLUMNS,
    PRECISION,
    SCHEDULE_COLUMNS,
    as_of,
    column_classes,
    revisions,
    with_publication,
)
from aftershock.calendar._q1_2025 import q1_2025_calendar
from aftershock.calendar._readers import UnknownEventsWarning, read_calendar, read_forexfactory
from aftershock.calendar._registry import INDICATORS, PRIOR_END, PRIOR_START, Indicator, indicator
from aftershock.calendar._schema import CALENDAR_SCHEMA, validate_calendar
from aftershock.calendar._surprises import DEFAULT_MIN_HISTORY, surprises

__all__ = [
    "CALENDAR_SCHEMA",
    "CONSENSUS_COLUMNS",
    "OUTCOME_COLUMNS",
    "PRECISION",
    "SCHEDULE_COLUMNS",
    "as_of",
    "column_classes",
    "revisions",
    "with_publication",
    "DEFAULT_MIN_HISTORY",
    "INDICATORS",
    "PRIOR_END",
    "PRIOR_START",
    "Indicator",
    "UnknownEventsWarning",
    "indicator",
    "q1_2025_calendar",
    "read_calendar",
    "read_forexfactory",
    "surprises",
    "validate_calendar",
]
