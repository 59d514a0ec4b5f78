"""Superseded by ``python benchmarks/run.py``: the single backtest against vectorbt is
``case_engine.py``, the event-sparse scaling is part (a) of ``case_sweep.py``.

Kept so that ``python benchmarks/bench_engine.py`` still prints those rows.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import MINUTES_PER_YEAR, median_time, random_walk  # noqa: E402,F401
from case_engine import bracket_workload  # noqa: E402,F401
from run import print_table, run_case  # noqa: E402


def main() -> None:
    print_table(run_case("case_engine") + run_case("case_sweep"))


if __name__ == "__main__":
    main()
