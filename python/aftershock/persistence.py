"""``aftershock.save`` / ``aftershock.load``: one entry point over the savers of the
trading half (results, sweeps) and of the event study. It sits above both, so the
storage layer (``_store``) imports neither."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from aftershock._store import META_FILE, read_meta, read_saved, write_saved
from aftershock.errors import PersistenceError
from aftershock.event_study.persist import load_study
from aftershock.trading.persist import load_result, load_sweep

__all__ = ["save", "load"]


def save(obj: Any, path: Any, *, overwrite: bool = False) -> Path:
    """Save a :class:`~aftershock.Result`, :class:`~aftershock.Study`,
    :class:`~aftershock.Sweep` or a Polars frame (e.g. a ``from_signals`` sweep) to the
    directory ``path``, atomically. Objects save through their own ``save`` method."""
    if isinstance(obj, pl.DataFrame):
        return write_saved(path, "frame", {"frame": obj}, {}, overwrite=overwrite)
    method = getattr(obj, "save", None)
    if method is None:
        raise PersistenceError(f"cannot save a {type(obj).__name__}: expected a Result, Study, Sweep or Polars frame")
    return method(path, overwrite=overwrite)


def load(path: Any, *, bars: Any = None, strategy: Any = None) -> Any:
    """Read what :func:`save` (or a ``save`` method) wrote: a working
    :class:`~aftershock.Result`, :class:`~aftershock.Study`, :class:`~aftershock.Sweep`
    or frame. Every file is checked against the record; a missing, truncated or
    corrupted one raises :class:`~aftershock.errors.PersistenceError` naming it.

    ``bars``: for a result saved with ``include_bars=False``, the bars it ran on
    (checked against the recorded content hash). ``strategy``: the strategy class of a
    Strategy sweep when it cannot be imported by its recorded name."""
    p = Path(path).expanduser()
    if p.is_dir() and not (p / META_FILE).exists() and (p / "checkpoint.json").exists():
        raise PersistenceError(
            f"{p} is a sweep checkpoint, not a saved result: run the sweep again with checkpoint={str(p)!r} "
            "to finish it (finished chunks are read, not recomputed)"
        )
    p, meta = read_meta(p)
    kind = meta.get("kind")
    if kind == "result":
        _, frames = read_saved(p, skip=("bars",) if bars is not None else ())
        return load_result(meta, frames, bars)
    if kind == "sweep":
        return load_sweep(meta, read_saved(p)[1], strategy)
    if kind == "study":
        return load_study(meta, read_saved(p)[1])
    if kind == "frame":
        return read_saved(p)[1]["frame"]
    raise PersistenceError(f"{p / META_FILE}: unknown kind {kind!r}")
