"""Hypothesis settings profiles for the engine suites (reference, parity, properties).

Each suite reads its example budget from here so the CI run stays within a few
minutes on two cores, and a long seeded run is one environment variable away:

* default (CI): ``AFTERSHOCK_HYPOTHESIS`` unset.
* ``AFTERSHOCK_HYPOTHESIS=long``: the long, seeded (``derandomize``) profile — 20,000
  parity examples, 5,000 reference examples — run by hand, e.g.
  ``AFTERSHOCK_HYPOTHESIS=long pytest tests/trading/test_parity_vectorbt.py``.
* ``AFTERSHOCK_HYPOTHESIS=medium``: a tenth of the long profile (2,000 parity examples),
  seeded as well, for a check by hand between the two.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

PROFILE = os.environ.get("AFTERSHOCK_HYPOTHESIS", "ci")
LONG = PROFILE == "long"
MEDIUM = PROFILE == "medium"

_COMMON = dict(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    print_blob=True,
)


def examples(ci: int, long: int) -> settings:
    """A settings object running ``ci`` examples normally and ``long`` (seeded) under the long profile."""
    if LONG:
        return settings(max_examples=long, derandomize=True, **_COMMON)
    if MEDIUM:
        return settings(max_examples=max(ci, long // 10), derandomize=True, **_COMMON)
    return settings(max_examples=ci, **_COMMON)
