"""The hand-written stub of the compiled module matches what Rust exports."""

from __future__ import annotations

import subprocess
import sys


def test_engine_stub_matches_the_compiled_module():
    out = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "aftershock._engine"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr
