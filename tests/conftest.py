"""Shared test fixtures.

Real validation data lives outside the repository, in ``../shared/data/real`` next to
the checkout (or wherever ``AFTERSHOCK_REAL_DATA`` points). Tests that need it use the
``real_data`` fixture, which skips with a message when the folder is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# On CI (CI=true) every hypothesis test draws the same, seeded examples, so a landing
# never hinges on a lucky draw; local runs keep exploring new examples each time.
settings.register_profile("ci-seeded", derandomize=True)
if os.environ.get("CI") == "true":
    settings.load_profile("ci-seeded")

REPO_ROOT = Path(__file__).resolve().parents[1]


def _real_data_dir() -> Path:
    env = os.environ.get("AFTERSHOCK_REAL_DATA")
    if env:
        return Path(env)
    return REPO_ROOT.parent / "shared" / "data" / "real"


REAL_DATA = _real_data_dir()


@pytest.fixture
def real_data() -> Path:
    if not (REAL_DATA / "PROVENANCE.md").exists():
        pytest.skip(f"real validation data not found at {REAL_DATA} (set AFTERSHOCK_REAL_DATA)")
    return REAL_DATA
