"""Where a Polars frame's column data lives: a cheap fingerprint of its buffers.

``prepare_bars`` caches its work per frame. A frame object can change in place
(``df[name] = ...``, ``replace_column``, ``extend``...), so identity alone cannot key
the cache. Polars data is immutable and reference-counted: a column that changes
gets new buffers, and while the cache holds a second reference to the old ones
(it keeps a clone of the frame) their memory can neither be reused nor written in
place. The addresses of a frame's buffers, read through the Arrow C stream
interface (O(chunks), no data touched), therefore identify its content.
"""

from __future__ import annotations

import ctypes
from typing import Any

__all__ = ["buffer_fingerprint"]


class _ArrowSchema(ctypes.Structure):
    pass


class _ArrowArray(ctypes.Structure):
    pass


_ArrowArray._fields_ = [
    ("length", ctypes.c_int64),
    ("null_count", ctypes.c_int64),
    ("offset", ctypes.c_int64),
    ("n_buffers", ctypes.c_int64),
    ("n_children", ctypes.c_int64),
    ("buffers", ctypes.POINTER(ctypes.c_void_p)),
    ("children", ctypes.POINTER(ctypes.POINTER(_ArrowArray))),
    ("dictionary", ctypes.POINTER(_ArrowArray)),
    ("release", ctypes.CFUNCTYPE(None, ctypes.POINTER(_ArrowArray))),
    ("private_data", ctypes.c_void_p),
]


class _ArrowArrayStream(ctypes.Structure):
    pass


_ArrowArrayStream._fields_ = [
    ("get_schema", ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(_ArrowArrayStream), ctypes.POINTER(_ArrowSchema))),
    ("get_next", ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(_ArrowArrayStream), ctypes.POINTER(_ArrowArray))),
    ("get_last_error", ctypes.CFUNCTYPE(ctypes.c_char_p, ctypes.POINTER(_ArrowArrayStream))),
    ("release", ctypes.CFUNCTYPE(None, ctypes.POINTER(_ArrowArrayStream))),
    ("private_data", ctypes.c_void_p),
]

_capsule_pointer = ctypes.pythonapi.PyCapsule_GetPointer
_capsule_pointer.restype = ctypes.c_void_p
_capsule_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]


def _layout(array: _ArrowArray) -> tuple:
    buffers = tuple(array.buffers[k] or 0 for k in range(array.n_buffers))
    children = tuple(_layout(array.children[k].contents) for k in range(array.n_children))
    return (array.length, array.offset, array.null_count, buffers, children)


def _series_layout(series: Any) -> tuple:
    capsule = series.__arrow_c_stream__()
    stream = _ArrowArrayStream.from_address(_capsule_pointer(capsule, b"arrow_array_stream"))
    chunks = []
    try:
        while True:
            array = _ArrowArray()
            if stream.get_next(ctypes.byref(stream), ctypes.byref(array)) != 0:
                raise RuntimeError("arrow stream error")
            if not array.release:
                break
            try:
                chunks.append(_layout(array))
            finally:
                array.release(ctypes.byref(array))
    finally:
        if stream.release:
            stream.release(ctypes.byref(stream))
    return tuple(chunks)


def buffer_fingerprint(frame: Any, columns: tuple[str, ...]) -> tuple | None:
    """Shape, schema and the buffer layout of ``columns``; ``None`` when it cannot
    be read (then callers must not cache)."""
    try:
        return (
            frame.shape,
            tuple(frame.columns),
            tuple(str(t) for t in frame.dtypes),
            tuple(_series_layout(frame.get_column(c)) for c in columns if c in frame.columns),
        )
    except Exception:
        return None
