"""Event studies: reactions, abnormal returns, tests across events and sensitivity regressions."""

from aftershock.event_study.study import Study, study
from aftershock.event_study.windows import Window, parse_duration, parse_window, parse_windows

__all__ = ["Study", "study", "Window", "parse_duration", "parse_window", "parse_windows"]
