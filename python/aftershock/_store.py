"""Saved results on disk: content hashes, atomic writes, validated reads.

A saved object is a directory holding one Parquet file per frame and ``meta.json``,
a record of what the object is (its ``kind``), which library wrote it, the content
hash, size and row count of every frame, and what is needed to run it again
(docs/persistence.md). Layers above decide what goes in; this module only stores.

Writes never leave a partial result where a result is expected: everything is written
into a hidden temporary directory next to the target, every file and the directory
are fsynced, and only then is the directory renamed into place (an existing result is
swapped out atomically where the kernel allows it). Reads check every file against the
record (present, same size, same content hash) and name the file when one does not
match.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import datetime as dt
import hashlib
import json
import math
import os
import platform
import re
import secrets
import shutil
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import polars as pl

from aftershock.errors import PersistenceError

__all__ = [
    "FORMAT_VERSION",
    "META_FILE",
    "arrays_digest",
    "frame_digest",
    "to_json",
    "from_json",
    "write_saved",
    "read_saved",
    "write_frame_atomic",
    "read_frame_checked",
    "fsync_dir",
    "remove_stale",
    "library_versions",
    "first_difference",
    "calendar_frame",
    "frame_record",
    "read_meta",
    "save",
    "load",
]

FORMAT_VERSION = 1
META_FILE = "meta.json"
_MAGIC = "aftershock"


# -- content hashes --------------------------------------------------------------


def _update_array(h: Any, values: np.ndarray) -> None:
    values = np.ascontiguousarray(values)
    h.update(f"{values.dtype.str}:{values.size};".encode())
    h.update(memoryview(values).cast("B"))  # type: ignore[arg-type]


def _update_series(h: Any, s: pl.Series) -> None:
    """The series' values in a canonical layout (not its chunking, nor what sits
    under a null): validity bits, then the physical values, then nested children."""
    h.update(f"{s.name}|{s.dtype}|{s.len()}|{s.null_count()};".encode())
    if s.null_count():
        _update_array(h, np.packbits(s.is_null().to_numpy()))
    dtype = s.dtype
    if dtype == pl.String or isinstance(dtype, (pl.Categorical, pl.Enum)):
        # as runs (value, length): the same content gives the same runs, and a symbol
        # column of millions of rows is a handful of them
        runs = s.cast(pl.String).fill_null("").rle().struct.unnest()
        values = runs.get_column("value")
        _update_array(h, runs.get_column("len").cast(pl.Int64).to_numpy())
        _update_array(h, values.str.len_bytes().to_numpy())
        h.update(values.str.join("").item().encode("utf-8") if values.len() else b"")
    elif dtype == pl.Binary:
        blobs = s.fill_null(b"")
        _update_array(h, blobs.bin.size().to_numpy())
        h.update(b"".join(blobs.to_list()))
    elif dtype == pl.Boolean:
        _update_array(h, s.fill_null(False).cast(pl.UInt8).to_numpy())
    elif isinstance(dtype, (pl.List, pl.Array)):
        lists = s.cast(pl.List(dtype.inner)) if isinstance(dtype, pl.Array) else s
        _update_array(h, lists.list.len().fill_null(0).to_numpy())
        _update_series(h, lists.explode().alias("item"))
    elif isinstance(dtype, pl.Struct):
        for field in s.struct.unnest().iter_columns():
            _update_series(h, field)
    elif dtype == pl.Null:
        pass
    elif dtype.is_numeric() or dtype.is_temporal():
        physical = s.to_physical()
        _update_array(h, (physical.fill_null(0) if s.null_count() else physical).to_numpy())
    else:  # Decimal, Object...: their text form
        _update_series(h, s.cast(pl.String))


def frame_digest(frame: pl.DataFrame, columns: Any = None) -> str:
    """SHA-256 of a frame's schema and values, independent of how it is chunked.

    Numeric and temporal columns are hashed as their NumPy buffers (no Python per
    row); strings as their lengths and concatenated bytes."""
    h = hashlib.sha256(b"frame;")
    names = frame.columns if columns is None else [c for c in columns if c in frame.columns]
    h.update(f"{frame.height};{len(names)};".encode())
    for name in names:
        _update_series(h, frame.get_column(name))
    return "sha256:" + h.hexdigest()


def arrays_digest(arrays: Mapping[str, np.ndarray], labels: Any = ()) -> str:
    """SHA-256 of named NumPy arrays (in key order) and a list of labels."""
    h = hashlib.sha256(b"arrays;")
    h.update(json.dumps([str(x) for x in labels]).encode())
    for name, values in arrays.items():
        h.update(f"{name};".encode())
        _update_array(h, values)
    return "sha256:" + h.hexdigest()


def calendar_frame(calendar: Any) -> pl.DataFrame | None:
    """A calendar (frame, lazy frame, pandas frame or mapping) as a Polars frame."""
    if calendar is None:
        return None
    if isinstance(calendar, pl.LazyFrame):
        return calendar.collect()
    if isinstance(calendar, pl.DataFrame):
        return calendar
    if type(calendar).__module__.startswith("pandas"):
        return pl.from_pandas(calendar)
    return pl.DataFrame(calendar)


def frame_record(frame: pl.DataFrame | None) -> dict[str, Any] | None:
    """Content hash and row count of a frame (``None`` stays ``None``)."""
    return None if frame is None else {"sha256": frame_digest(frame), "rows": frame.height}


# -- JSON with the values a grid or a config may hold -------------------------------


def to_json(value: Any, *, where: str = "value") -> Any:
    """A JSON-ready form that :func:`from_json` turns back into an equal value
    (floats exactly, NaN and infinities, tuples, durations and timestamps included)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else {"$float": repr(v)}
    if isinstance(value, dt.timedelta):
        return {"$timedelta_us": (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds}
    if isinstance(value, dt.datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$date": value.isoformat()}
    if isinstance(value, tuple):
        return {"$tuple": [to_json(v, where=where) for v in value]}
    if isinstance(value, list):
        return [to_json(v, where=where) for v in value]
    if isinstance(value, Mapping):
        bad = [k for k in value if not isinstance(k, str)]
        if bad:
            raise PersistenceError(f"cannot record {where}: key {bad[0]!r} is not a string")
        if any(k.startswith("$") for k in value):
            return {"$dict": {k: to_json(v, where=where) for k, v in value.items()}}
        return {k: to_json(v, where=where) for k, v in value.items()}
    raise PersistenceError(f"cannot record {where}: values of type {type(value).__name__} ({value!r}) are not supported")


def from_json(value: Any) -> Any:
    if isinstance(value, list):
        return [from_json(v) for v in value]
    if isinstance(value, dict):
        if len(value) == 1:
            (tag, inner), = value.items()
            if tag == "$float":
                return float(inner)
            if tag == "$timedelta_us":
                return dt.timedelta(microseconds=inner)
            if tag == "$datetime":
                return dt.datetime.fromisoformat(inner)
            if tag == "$date":
                return dt.date.fromisoformat(inner)
            if tag == "$tuple":
                return tuple(from_json(v) for v in inner)
            if tag == "$dict":
                return {k: from_json(v) for k, v in inner.items()}
        return {k: from_json(v) for k, v in value.items()}
    return value


def library_versions() -> dict[str, str]:
    from aftershock import __version__

    return {
        "aftershock": __version__,
        "polars": pl.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


# -- durable files -----------------------------------------------------------------


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_DIGEST_KEY = "aftershock.sha256"


def _write_parquet(frame: pl.DataFrame, target: Path, digest: str) -> int:
    """Write ``frame`` to ``target`` (its content hash in the file's key-value
    metadata) and fsync it; returns its size in bytes."""
    with open(target, "wb") as fh:
        frame.write_parquet(fh, compression="zstd", statistics=True, metadata={_DIGEST_KEY: digest})
        fh.flush()
        os.fsync(fh.fileno())
        return fh.tell()


def write_frame_atomic(frame: pl.DataFrame, target: Path) -> dict[str, Any]:
    """Write one Parquet file under a temporary name in ``target``'s directory, fsync
    it, rename it into place and fsync the directory. Returns its record."""
    target = Path(target)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    digest = frame_digest(frame)
    try:
        size = _write_parquet(frame, tmp, digest)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)
    return {"file": target.name, "bytes": size, "rows": frame.height, "sha256": digest}


def read_frame_checked(path: Path, record: Mapping[str, Any] | None = None) -> pl.DataFrame:
    """Read a Parquet file written by this module and check it against ``record``
    (size, rows, content hash) or, without one, against the hash stored in the file.
    Errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise PersistenceError(f"{path}: missing (the saved result lists it)")
    if record is not None and path.stat().st_size != record["bytes"]:
        raise PersistenceError(
            f"{path}: truncated or overwritten: {path.stat().st_size} bytes, the record says {record['bytes']}"
        )
    try:
        stored = pl.read_parquet_metadata(path).get(_DIGEST_KEY)
        frame = pl.read_parquet(path)
    except Exception as exc:  # Polars raises several classes for a damaged file
        raise PersistenceError(f"{path}: not a readable Parquet file ({type(exc).__name__}: {exc})") from None
    expected = record["sha256"] if record is not None else stored
    if expected is None:
        raise PersistenceError(f"{path}: no content hash recorded; not written by aftershock")
    if (record is not None and frame.height != record["rows"]) or frame_digest(frame) != expected:
        raise PersistenceError(f"{path}: content does not match its recorded hash (the file is corrupted or was changed)")
    return frame


# -- saved directories -------------------------------------------------------------

_RENAME_EXCHANGE = 2
_libc: Any = None


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2); False where unavailable."""
    global _libc
    if platform.system() != "Linux":
        return False
    try:
        if _libc is None:
            _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = _libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd = -100
    rc = fn(at_fdcwd, os.fsencode(str(a)), at_fdcwd, os.fsencode(str(b)), _RENAME_EXCHANGE)
    return rc == 0


_TMP_NAME = re.compile(r"^\.(?P<name>.+)\.(?:tmp|old)-(?P<pid>\d+)-[0-9a-f]+$")


def remove_stale(parent: Path, name: str | None = None) -> None:
    """Temporary files and directories (of ``name``, or of any name) left in
    ``parent`` by writers that were killed (their pid is gone)."""
    for entry in parent.iterdir():
        m = _TMP_NAME.match(entry.name)
        if not m or (name is not None and m.group("name") != name):
            continue
        pid = int(m.group("pid"))
        if pid != os.getpid():
            try:
                os.kill(pid, 0)
                continue  # still running: not ours to remove
            except ProcessLookupError:
                pass
            except PermissionError:
                continue
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def _is_saved(path: Path) -> bool:
    meta = path / META_FILE
    if not meta.is_file():
        return False
    try:
        return json.loads(meta.read_text()).get("format") == _MAGIC
    except (OSError, ValueError):
        return False


def write_saved(
    path: Any,
    kind: str,
    frames: Mapping[str, pl.DataFrame],
    record: Mapping[str, Any],
    *,
    overwrite: bool = False,
    on_frame_written: Callable[[str], None] | None = None,
) -> Path:
    """Write a saved object: ``frames`` as Parquet files and ``meta.json``, atomically."""
    path = Path(path).expanduser().absolute()
    if path.exists():
        if not overwrite:
            raise PersistenceError(f"{path} exists; pass overwrite=True to replace it")
        if not (path.is_dir() and _is_saved(path)):
            raise PersistenceError(f"{path} exists and is not a saved aftershock result: not replacing it")
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path.parent, path.name)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    tmp.mkdir()
    try:
        entries: dict[str, Any] = {}
        for name, frame in frames.items():
            if not re.fullmatch(r"[A-Za-z0-9_]+", name):
                raise PersistenceError(f"frame name {name!r} is not a plain file name")
            file = tmp / f"{name}.parquet"
            digest = frame_digest(frame)
            size = _write_parquet(frame, file, digest)
            entries[name] = {"file": file.name, "bytes": size, "rows": frame.height, "sha256": digest}
            if on_frame_written is not None:
                on_frame_written(name)
        meta = {
            "format": _MAGIC,
            "format_version": FORMAT_VERSION,
            "kind": kind,
            "versions": library_versions(),
            "created_utc": dt.datetime.now(dt.timezone.utc).isoformat(),
            "frames": entries,
            **record,
        }
        with open(tmp / META_FILE, "w", encoding="utf-8") as fh:
            json.dump(meta, fh, indent=1, allow_nan=False)
            fh.flush()
            os.fsync(fh.fileno())
        fsync_dir(tmp)
        if path.exists():
            if _exchange(tmp, path):
                shutil.rmtree(tmp)  # now the old one
            else:
                old = path.with_name(f".{path.name}.old-{os.getpid()}-{secrets.token_hex(4)}")
                os.rename(path, old)
                os.rename(tmp, path)
                shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, path)
        fsync_dir(path.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def read_meta(path: Any) -> tuple[Path, dict[str, Any]]:
    path = Path(path).expanduser()
    if not path.exists():
        raise PersistenceError(f"{path}: no saved result there")
    if not path.is_dir():
        raise PersistenceError(f"{path}: a saved result is a directory holding {META_FILE} and Parquet files")
    meta_path = path / META_FILE
    if not meta_path.is_file():
        raise PersistenceError(f"{meta_path}: missing; {path} is not a (complete) saved result")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise PersistenceError(f"{meta_path}: unreadable ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != _MAGIC:
        raise PersistenceError(f"{meta_path}: not an aftershock record")
    if not isinstance(meta.get("format_version"), int) or meta["format_version"] > FORMAT_VERSION:
        raise PersistenceError(
            f"{meta_path}: format version {meta.get('format_version')!r}; this aftershock reads up to {FORMAT_VERSION}"
        )
    return path, meta


def read_saved(path: Any, *, skip: tuple[str, ...] = ()) -> tuple[dict[str, Any], dict[str, pl.DataFrame]]:
    """The record and the frames of a saved object, every file checked."""
    path, meta = read_meta(path)
    frames = {
        name: read_frame_checked(path / entry["file"], entry)
        for name, entry in meta.get("frames", {}).items()
        if name not in skip
    }
    return meta, frames


# -- comparing frames bit for bit -------------------------------------------------


def _bits(s: pl.Series) -> pl.Series:
    """Floats as their bit patterns, so that NaN equals NaN and -0.0 differs from 0.0."""
    if s.dtype in (pl.Float32, pl.Float64):
        arr = s.to_numpy()
        view = arr.view(np.int32 if s.dtype == pl.Float32 else np.int64)
        out = pl.Series(s.name, view)
        if s.null_count():
            out = pl.select(pl.when(s.is_not_null()).then(out)).to_series()
        return out
    return s


def first_difference(a: pl.DataFrame, b: pl.DataFrame) -> str | None:
    """``None`` when the two frames are equal bit for bit (schema, values, NaNs and
    signed zeros); otherwise where they first differ."""
    if a.columns != b.columns:
        return f"columns differ: {a.columns} vs {b.columns}"
    if a.schema != b.schema:
        bad = next(c for c in a.columns if a.schema[c] != b.schema[c])
        return f"column {bad!r}: dtype {a.schema[bad]} vs {b.schema[bad]}"
    if a.height != b.height:
        return f"{a.height} rows vs {b.height}"
    for name in a.columns:
        x, y = a.get_column(name), b.get_column(name)
        if x.dtype in (pl.Float32, pl.Float64):
            x, y = _bits(x), _bits(y)
        try:
            same = x.eq_missing(y)
        except Exception:
            same = None
        if same is None:
            if x.to_list() != y.to_list():
                return f"column {name!r} differs"
            continue
        if not same.all():
            row = int(np.flatnonzero(~same.to_numpy())[0])
            return f"column {name!r} row {row}: {a.get_column(name)[row]!r} vs {b.get_column(name)[row]!r}"
    return None


# -- the public entry points -------------------------------------------------------
