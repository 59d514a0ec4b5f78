"""Saving, loading and verifying event studies (docs/persistence.md).

A saved study holds its six frames, the calendar it read and a record of the call
(windows, model, every setting) and of the bars (a content hash): ``verify(bars)``
runs the study again and demands the same bits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import polars as pl

from aftershock import _store
from aftershock.errors import VerificationError
from aftershock.event_study.windows import Window

__all__ = ["FRAMES", "BAR_COLUMNS", "bars_record", "save_study", "load_study", "rerun_study", "verify_study"]

FRAMES = ("reactions", "sensitivity", "tests", "paths", "drift", "volatility")
#: The bar columns a study reads; its bars hash covers these, in the rows' given order.
BAR_COLUMNS = ("ts", "symbol", "open", "high", "low", "close", "volume")


def bars_record(frame: pl.DataFrame) -> dict[str, Any]:
    return {"sha256": _store.frame_digest(frame, BAR_COLUMNS), "rows": frame.height}


class LazyBarsRecord:
    """The content record of a study's bars, computed when first asked for (by
    ``save``, ``rerun`` or ``verify``): hashing ten years of minute bars for five
    symbols takes longer than the study itself, and most studies are never saved.
    It keeps a clone of the frame (Polars shares the column buffers, so this costs no
    copy, and later in-place changes to the caller's frame do not reach it) until then.
    """

    def __init__(self, frame: pl.DataFrame):
        self._frame: pl.DataFrame | None = frame.clone()
        self._record: dict[str, Any] | None = None

    def get(self) -> dict[str, Any]:
        if self._record is None:
            assert self._frame is not None
            self._record = bars_record(self._frame)
            self._frame = None
        return self._record


def recorded_bars(inputs: Mapping[str, Any]) -> dict[str, Any] | None:
    """The bars record of a study's inputs, computing a lazy one."""
    rec = inputs.get("bars")
    return rec.get() if isinstance(rec, LazyBarsRecord) else rec


def _windows_json(windows: tuple[Window, ...]) -> list[Any]:
    return [_store.to_json({"start": w.start, "end": w.end, "label": w.label}) for w in windows]


def _windows(record: list[Any]) -> tuple[Window, ...]:
    out = []
    for w in record:
        w = _store.from_json(w)
        out.append(Window(w["start"], w["end"], w["label"]))
    return tuple(out)


def save_study(st: Any, path: Any, *, overwrite: bool = False) -> Path:
    inputs = getattr(st, "_inputs", None) or {}
    calendar = _store.calendar_frame(inputs.get("calendar"))
    frames = {name: getattr(st, name) for name in FRAMES}
    if calendar is not None:
        frames["calendar"] = calendar
    record = {
        "study": {
            "windows": _windows_json(st.windows),
            "model": st.model,
            "benchmark": st.benchmark,
            "settings": _store.to_json(st.settings, where="study settings"),
            "args": _store.to_json(inputs.get("args"), where="study arguments"),
        },
        "inputs": {"bars": recorded_bars(inputs), "calendar": _store.frame_record(calendar)},
    }
    return _store.write_saved(path, "study", frames, record, overwrite=overwrite)


def load_study(meta: Mapping[str, Any], frames: Mapping[str, pl.DataFrame]) -> Any:
    from aftershock.event_study.study import Study

    rec = meta["study"]
    st = Study(**{name: frames[name] for name in FRAMES}, windows=_windows(rec["windows"]), model=rec["model"],
               benchmark=rec["benchmark"], settings=_store.from_json(rec["settings"]))
    object.__setattr__(st, "_inputs", {
        "calendar": frames.get("calendar"), "args": _store.from_json(rec["args"]), "bars": meta["inputs"]["bars"],
    })
    object.__setattr__(st, "_saved", dict(meta))
    return st


def rerun_study(st: Any, bars: Any, calendar: Any = None) -> Any:
    from aftershock._checks import as_polars
    from aftershock.errors import BarsError
    from aftershock.event_study.study import study

    inputs = getattr(st, "_inputs", None) or {}
    if bars is None:
        raise VerificationError("a study keeps no bars: pass the bars it was computed from")
    frame = as_polars(bars, BarsError, "bars")
    recorded = recorded_bars(inputs)
    given_bars = bars_record(frame) if recorded is not None else None
    if recorded is not None and given_bars is not None and recorded["sha256"] != given_bars["sha256"]:
        raise VerificationError(
            f"the bars differ from those the study was computed from (recorded {recorded['sha256']}, "
            f"{recorded['rows']} rows; given {given_bars['sha256']}, {frame.height} rows)"
        )
    cal = calendar if calendar is not None else inputs.get("calendar")
    if cal is None:
        raise VerificationError("this study was saved without its calendar: pass calendar=")
    saved = getattr(st, "_saved", None)
    saved_cal = saved["inputs"]["calendar"] if saved else _store.frame_record(_store.calendar_frame(inputs.get("calendar")))
    if calendar is not None and saved_cal is not None:
        given: dict[str, Any] = _store.frame_record(_store.calendar_frame(calendar)) or {}
        if given["sha256"] != saved_cal["sha256"]:
            raise VerificationError(
                f"the calendar differs from the one the study read (recorded {saved_cal['sha256']}, given {given['sha256']})"
            )
    args = dict(inputs.get("args") or {})
    args["windows"] = list(st.windows)
    return study(frame, cal, **args)


def verify_study(st: Any, bars: Any, calendar: Any = None) -> None:
    fresh = rerun_study(st, bars, calendar)
    for name in FRAMES:
        diff = _store.first_difference(getattr(st, name), getattr(fresh, name))
        if diff is not None:
            raise VerificationError(f"re-run does not reproduce the saved {name}: {diff}")
    for name in ("windows", "model", "benchmark", "settings"):
        if getattr(st, name) != getattr(fresh, name):
            raise VerificationError(f"re-run gives another {name}: {getattr(fresh, name)!r} vs {getattr(st, name)!r}")

