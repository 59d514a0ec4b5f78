"""A progress bar over the variants of a sweep, fed by the engine while it runs.

The engine's workers count finished variants in an atomic counter
(``_engine.Progress``) with the GIL released; a Python thread reads the counter a
few times a second and moves a tqdm bar. Nothing here touches a variant's work, so
results are the same with or without a bar.
"""

from __future__ import annotations

import sys
import threading
from typing import Any, Callable, TypeVar

from aftershock import _engine
from aftershock.errors import ConfigError

__all__ = ["with_progress", "progress_enabled"]

T = TypeVar("T")

#: Seconds between two reads of the counter.
POLL_SECONDS = 0.1


def progress_enabled(progress: Any) -> bool:
    """``True``/``False`` as given; ``None`` (the default): on when stderr is a terminal."""
    if progress is None:
        return bool(getattr(sys.stderr, "isatty", lambda: False)())
    if not isinstance(progress, bool):
        raise ConfigError(f"progress must be True, False or None, got {progress!r}", column="progress")
    return progress


def with_progress(run: Callable[[Any], T], total: int, progress: Any, desc: str = "sweep") -> T:
    """Calls ``run(counter)`` (an engine call that counts finished variants in
    ``counter``) with a bar of ``total`` variants drawn on stderr while it runs."""
    enabled = progress_enabled(progress)
    counter = _engine.Progress()
    if not enabled:
        return run(counter)
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, unit="variant", file=sys.stderr, dynamic_ncols=True, leave=False)
    stop = threading.Event()

    def advance() -> None:
        done = min(counter.done, total)
        if done > bar.n:
            bar.update(done - bar.n)

    def poll() -> None:
        while not stop.wait(POLL_SECONDS):
            advance()

    watcher = threading.Thread(target=poll, name="aftershock-progress", daemon=True)
    watcher.start()
    try:
        return run(counter)
    finally:
        stop.set()
        watcher.join()
        advance()
        bar.refresh()  # the final count is drawn even when the run beat tqdm's redraw interval
        bar.close()
