"""Saving, loading, verifying and checkpointing backtests and sweeps.

``Result.save`` and ``Sweep.save`` write a directory of Parquet frames and a
``meta.json`` record (:mod:`aftershock._store`); ``aftershock.load`` reads it back as
a working object. ``verify`` runs a saved object again and demands the same bits.
``run_chunks`` is the checkpoint layer of sweeps: finished chunks of variants are
written as they complete and skipped when a sweep is resumed. docs/persistence.md
describes the format and the guarantees.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import inspect
import json
import os
import re
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping

import numpy as np
import polars as pl

from aftershock import _engine, _store
from aftershock._store import calendar_frame, frame_record
from aftershock.errors import ConfigError, PersistenceError, VerificationError
from aftershock.trading.engine import PreparedBars, encode_orders, prepare_bars
from aftershock.trading.results import Result

if TYPE_CHECKING:
    from aftershock.trading.sweep import Sweep

__all__ = ["save_result", "load_result", "verify_result", "rerun_result",
           "save_sweep", "load_sweep", "verify_sweep", "sweep_identity", "signals_identity", "run_chunks", "DEFAULT_CHUNK"]

#: Variants per checkpoint chunk when ``chunk_size`` is not given.
DEFAULT_CHUNK = 256
_NULL_I64 = np.iinfo(np.int64).min
_STATUS_COLUMNS = ("order_id", "status", "status_ts", "filled_qty", "reject_reason")
_BAR_COLUMNS = ("ts", "symbol", "open", "high", "low", "close", "volume")
_SIGNALS = ("long_entries", "long_exits", "short_entries", "short_exits")


def _signals_frame(signals: Mapping[str, Any]) -> pl.DataFrame:
    """The frame a signal result was simulated from: the four masks (UInt8) and any
    per-bar settings and price series that rode with them (``val_price``,
    ``allow_partial``, per-bar fees, stops, sizes...), each with its own dtype."""
    return pl.DataFrame([pl.Series(k, np.asarray(v), dtype=pl.UInt8) if k in _SIGNALS else pl.Series(k, np.asarray(v))
                         for k, v in signals.items()])


# -- what identifies the inputs --------------------------------------------------


def bars_digest(bars: PreparedBars) -> dict[str, Any]:
    """The bars as the engine reads them: timestamps, prices, symbol blocks."""
    return {
        "sha256": _store.arrays_digest(bars.arrays, bars.symbols),
        "rows": int(len(bars.arrays["ts"])),
        "symbols": list(bars.symbols),
    }


def strategy_id(cls: type) -> dict[str, Any]:
    """Where a strategy class lives and a hash of its source (when Python has it)."""
    try:
        source_hash: str | None = "sha256:" + hashlib.sha256(inspect.getsource(cls).encode()).hexdigest()
    except (OSError, TypeError):
        source_hash = None
    return {"class": f"{cls.__module__}:{cls.__qualname__}", "source_sha256": source_hash}


def import_strategy(record: Mapping[str, Any], given: Any = None) -> type:
    if given is not None:
        return given
    module, _, qualname = record["class"].partition(":")
    try:
        obj: Any = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise PersistenceError(
            f"strategy class {record['class']} cannot be imported ({exc}); pass it: strategy=<the class>"
        ) from None
    return obj


def _check_input(what: str, recorded: Mapping[str, Any] | None, now: Mapping[str, Any] | None) -> None:
    if recorded is None or now is None:
        return
    if recorded["sha256"] != now["sha256"]:
        raise VerificationError(
            f"the {what} {'differ' if what.endswith('s') else 'differs'} from what the result was computed from "
            f"(recorded {recorded['sha256']}, {recorded.get('rows')} rows; given {now['sha256']}, {now.get('rows')} rows)"
        )


def _compare(what: str, saved: pl.DataFrame, fresh: pl.DataFrame) -> None:
    diff = _store.first_difference(saved, fresh)
    if diff is not None:
        raise VerificationError(f"re-run does not reproduce the saved {what}: {diff}")


# -- results ------------------------------------------------------------------------


class _FramesRaw(dict):  # type: ignore[type-arg]
    """Engine columns of a loaded result, read from its saved frames on demand
    (timestamps as epoch microseconds, nulls as the engine's sentinel)."""

    def __init__(self, frames: Mapping[str, pl.DataFrame], bars_visited: int):
        super().__init__(bars_visited=bars_visited)
        self._frames = frames

    def __missing__(self, key: str) -> Any:
        table, _, column = key.partition(".")
        frame = self._frames.get(table)
        if frame is None or column not in frame.columns:
            raise KeyError(key)
        s = frame.get_column(column)
        if isinstance(s.dtype, pl.Datetime):
            values = s.dt.epoch("us").fill_null(_NULL_I64).to_numpy()
        elif s.dtype.is_numeric() and not s.null_count():
            values = s.to_numpy()
        else:
            raise KeyError(key)
        self[key] = np.ascontiguousarray(values)
        return self[key]


class _NoBars:
    """Stands for the bars of a result saved without them: any use says how to attach them."""

    def __getattr__(self, name: str) -> Any:
        raise PersistenceError(
            "this result was saved without its bars (include_bars=False): load it with aftershock.load(path, bars=...)"
        )


def _has_bars(result: Result) -> bool:
    return isinstance(result._bars, PreparedBars)


def _bars_frame(bars: PreparedBars) -> pl.DataFrame:
    return bars.frame.select([c for c in _BAR_COLUMNS if c in bars.frame.columns])


def save_result(result: Result, path: Any, *, overwrite: bool = False, include_bars: bool = True) -> Path:
    inputs = getattr(result, "_inputs", {}) or {}
    saved = getattr(result, "_saved", None)
    frames: dict[str, pl.DataFrame] = {
        "fills": result.fills, "trades": result.trades, "equity": result.equity, "orders": result.orders,
    }
    if not _has_bars(result):
        if include_bars:
            raise PersistenceError("this result was loaded without its bars: save it with include_bars=False")
        bars_rec = saved["inputs"]["bars"] if saved else None
    else:
        bars_rec = bars_digest(result._bars)
        if include_bars:
            frames["bars"] = _bars_frame(result._bars)
    calendar = calendar_frame(inputs.get("calendar"))
    if calendar is not None:
        frames["calendar"] = calendar
    signals = inputs.get("signals")
    if signals is not None:
        frames["signals"] = _signals_frame(signals)
    strategy = inputs.get("strategy")
    source: dict[str, Any]
    if signals is not None:
        source = {"kind": "signals"}
    elif strategy is not None:
        source = {"kind": "strategy", **strategy_id(strategy), "params": _store.to_json(inputs["params"], where="strategy parameters")}
    else:
        source = {"kind": "orders"}
    record = {
        "result": {
            "config": _store.to_json(result.config, where="config"),
            "bars_visited": int(result.bars_visited),
            "source": source,
            "stats_defaults": _store.to_json(result.stats_defaults, where="stats defaults"),
        },
        "inputs": {"bars": bars_rec, "calendar": frame_record(calendar), "orders": frame_record(result._orders_in)},
    }
    return _store.write_saved(path, "result", frames, record, overwrite=overwrite)


def load_result(meta: Mapping[str, Any], frames: Mapping[str, pl.DataFrame], bars: Any = None) -> Result:
    rec = meta["result"]
    config = _store.from_json(rec["config"])
    prepared: Any = _NoBars()
    if bars is not None:
        prepared = _signal_bars(bars, config) if rec["source"]["kind"] == "signals" else prepare_bars(bars)
        _check_input("bars", meta["inputs"]["bars"], bars_digest(prepared))
    elif "bars" in frames:
        prepared = prepare_bars(frames["bars"])
    orders = frames["orders"]
    result = Result(_FramesRaw(frames, rec["bars_visited"]), prepared, orders.drop(_STATUS_COLUMNS), config)  # type: ignore[arg-type]
    result._cache.update({k: frames[k] for k in ("fills", "trades", "equity", "orders")})
    inputs: dict[str, Any] = {"calendar": frames.get("calendar")}
    if "signals" in frames:
        inputs["signals"] = {k: frames["signals"].get_column(k).to_numpy() for k in frames["signals"].columns}
    if rec["source"]["kind"] == "strategy":
        inputs["strategy_record"] = rec["source"]
        inputs["params"] = _store.from_json(rec["source"]["params"])
    result._inputs = inputs
    result._saved = dict(meta)
    result.stats_defaults = dict(_store.from_json(rec.get("stats_defaults", {})))
    return result


def _signal_bars(bars: Any, config: Mapping[str, Any]) -> PreparedBars:
    from aftershock.trading.signals import _one_symbol

    return _one_symbol(bars, config.get("symbol"))[0]


def rerun_result(result: Result, bars: Any = None, calendar: Any = None, strategy: Any = None) -> Result:
    """Run ``result`` again from its inputs (the given bars and calendar, else the
    saved ones), checking that given inputs are those it was computed from."""
    from aftershock.trading.strategy import compile_orders

    inputs = getattr(result, "_inputs", {}) or {}
    saved = getattr(result, "_saved", None)
    config = dict(result.config)
    signals = inputs.get("signals")
    if bars is not None:
        prepared = _signal_bars(bars, config) if signals is not None else prepare_bars(bars)
        recorded = saved["inputs"]["bars"] if saved else (bars_digest(result._bars) if _has_bars(result) else None)
        _check_input("bars", recorded, bars_digest(prepared))
    elif _has_bars(result):
        prepared = result._bars
    else:
        raise VerificationError("this result was saved without its bars: pass bars=")
    if signals is not None:
        symbol = config.pop("symbol", None)
        frame = _signals_frame(signals)
        raw = _engine.simulate_signals(prepared.columns, frame, config, True)
        fresh = Result(raw, prepared, result._orders_in, dict(config, symbol=symbol))
        fresh._inputs = {"signals": {k: frame.get_column(k).to_numpy() for k in frame.columns}}
        return fresh
    orders = result._orders_in
    if "strategy_record" in inputs:
        strategy_cls = import_strategy(inputs["strategy_record"], strategy)
    elif inputs.get("strategy") is not None:
        strategy_cls = strategy if strategy is not None else inputs["strategy"]
    elif strategy is not None:
        raise ConfigError("this result was not produced by a Strategy: strategy= has nothing to check", column="strategy")
    else:
        strategy_cls = None
    cal = calendar if calendar is not None else inputs.get("calendar")
    if calendar is not None:
        recorded_cal = saved["inputs"]["calendar"] if saved else frame_record(calendar_frame(inputs.get("calendar")))
        _check_input("calendar", recorded_cal, frame_record(calendar_frame(calendar)))
    if strategy_cls is not None and cal is not None:
        compiled = compile_orders(strategy_cls(**inputs.get("params", {})), cal, prepared)
        orders, _ = encode_orders(compiled, prepared.symbols)
        diff = _store.first_difference(result._orders_in, orders)
        if diff is not None:
            raise VerificationError(f"the strategy now compiles other orders than the saved ones: {diff}")
    frame, encoded = encode_orders(orders, prepared.symbols)
    raw = _engine.simulate(prepared.columns, prepared.offsets, encoded, config, True)
    fresh = Result(raw, prepared, frame, config)
    fresh._inputs = dict(inputs)
    return fresh


def verify_result(result: Result, bars: Any = None, calendar: Any = None, strategy: Any = None) -> None:
    fresh = rerun_result(result, bars, calendar, strategy)
    for name in ("fills", "trades", "equity", "orders"):
        _compare(name, getattr(result, name), getattr(fresh, name))
    if fresh.bars_visited != result.bars_visited:
        raise VerificationError(f"re-run visited {fresh.bars_visited} bars, the saved result {result.bars_visited}")


# -- sweeps ---------------------------------------------------------------------------


def _sweep_inputs(sw: "Sweep") -> tuple[dict[str, Any], dict[str, pl.DataFrame]]:
    """What a sweep ran on: records for the identity and the frames to store."""
    frames: dict[str, pl.DataFrame] = {}
    is_class = isinstance(sw.strategy, type)
    if is_class:
        strategy: Any = strategy_id(sw.strategy)
        orders = None
    else:
        strategy = None
        orders = sw._base({})[0]
        frames["orders"] = orders
    calendar = calendar_frame(sw.calendar) if is_class else None
    if calendar is not None:
        frames["calendar"] = calendar
    identity = {
        "strategy": strategy,
        "grid": _store.to_json(sw.grid, where="grid"),
        "config": _store.to_json(sw.config, where="config"),
        # None: the conventions' annualization (the Sweep was not given one)
        "periods_per_year": sw.periods_per_year if getattr(sw, "_ppy_given", True) else None,
        "variants": len(sw),
        "inputs": {"bars": bars_digest(sw.bars), "calendar": frame_record(calendar), "orders": frame_record(orders)},
    }
    return identity, frames


def sweep_identity(sw: "Sweep") -> dict[str, Any]:
    """What a sweep checkpoint must match to be resumed."""
    return {"kind": "sweep", **_sweep_inputs(sw)[0]}


def signals_identity(bars: PreparedBars, signals: Mapping[str, np.ndarray], config: Mapping[str, Any],
                     columns: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """What a ``from_signals`` sweep checkpoint must match to be resumed."""
    return {
        "kind": "signals",
        "config": _store.to_json(dict(config), where="config"),
        "grid": _store.arrays_digest(columns, list(columns)),
        "variants": int(len(next(iter(columns.values())))),
        "inputs": {"bars": bars_digest(bars), "signals": _store.arrays_digest(signals, list(signals))},
    }


def save_sweep(sw: "Sweep", path: Any, *, overwrite: bool = False, threads: int | None = None) -> Path:
    table = sw.table if sw.table is not None else sw.run(threads=threads)
    identity, frames = _sweep_inputs(sw)
    frames = {"table": table, "bars": _bars_frame(sw.bars), **frames}
    return _store.write_saved(path, "sweep", frames, {"sweep": identity}, overwrite=overwrite)


def load_sweep(meta: Mapping[str, Any], frames: Mapping[str, pl.DataFrame], strategy: Any = None) -> "Sweep":
    from aftershock.trading.sweep import Sweep

    rec = meta["sweep"]
    if rec["strategy"] is not None:
        what: Any = import_strategy(rec["strategy"], strategy)
    else:
        what = frames["orders"]
    sw = Sweep(prepare_bars(frames["bars"]), what, _store.from_json(rec["grid"]), calendar=frames.get("calendar"),
               periods_per_year=rec["periods_per_year"], **_store.from_json(rec["config"]))
    sw.table = frames["table"]
    sw._saved = dict(meta)
    return sw


def verify_sweep(sw: "Sweep", bars: Any = None, calendar: Any = None, threads: int | None = None) -> None:
    from aftershock.trading.sweep import Sweep

    if sw.table is None:
        raise VerificationError("nothing to verify: this sweep has not been run")
    saved = getattr(sw, "_saved", None)
    recorded = saved["sweep"]["inputs"] if saved else _sweep_inputs(sw)[0]["inputs"]
    prepared = sw.bars
    if bars is not None:
        prepared = prepare_bars(bars)
        _check_input("bars", recorded["bars"], bars_digest(prepared))
    cal = sw.calendar
    if calendar is not None:
        _check_input("calendar", recorded["calendar"], frame_record(calendar_frame(calendar)))
        cal = calendar
    ppy = sw.periods_per_year if getattr(sw, "_ppy_given", True) else None
    fresh = Sweep(prepared, sw.strategy, sw.grid, calendar=cal, periods_per_year=ppy, **sw.config)
    named = sw.table.get_column("conventions")[0] if "conventions" in sw.table.columns and sw.table.height else None
    conventions = named if named in ("aftershock", "backtesting.py") else None
    _compare("sweep table", sw.table, fresh.run(threads=threads, conventions=conventions))


# -- checkpoints -------------------------------------------------------------------

_CHECKPOINT = "checkpoint.json"
_LOCK = "checkpoint.lock"
_CHUNK = re.compile(r"^chunk-(\d{9})-(\d{9})\.parquet$")


def _describe_mismatch(recorded: Mapping[str, Any], now: Mapping[str, Any], prefix: str = "") -> str:
    for key in sorted(set(recorded) | set(now)):
        a, b = recorded.get(key), now.get(key)
        if a != b:
            if isinstance(a, dict) and isinstance(b, dict):
                return _describe_mismatch(a, b, f"{prefix}{key}.")
            return f"{prefix}{key} differs (checkpoint: {json.dumps(a)[:200]}; now: {json.dumps(b)[:200]})"
    return "?"


def _write_json_atomic(target: Path, payload: Mapping[str, Any]) -> None:
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(payload, fh, indent=1, allow_nan=False)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _store.fsync_dir(target.parent)


def _chunk_size(value: Any, recorded: Any = None) -> int:
    if value is None:
        return int(recorded) if recorded is not None else DEFAULT_CHUNK
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"chunk_size must be a positive integer, got {value!r}", column="chunk_size")
    return int(value)


def run_chunks(
    path: Any,
    identity: Mapping[str, Any],
    n: int,
    chunk_size: Any,
    compute: Callable[[int, int], pl.DataFrame],
) -> pl.DataFrame:
    """Rows ``0..n`` of ``compute(lo, hi)`` (one frame per chunk of variants), each
    chunk written to ``path`` as soon as it is computed; chunks already there (from an
    interrupted run with the same ``identity``) are read instead of computed."""
    root = Path(path).expanduser()
    if root.exists() and not root.is_dir():
        raise PersistenceError(f"{root}: a checkpoint is a directory; this is a file")
    root.mkdir(parents=True, exist_ok=True)
    with _checkpoint_lock(root):
        return _run_chunks_locked(root, identity, n, chunk_size, compute)


@contextlib.contextmanager
def _checkpoint_lock(root: Path) -> Iterator[None]:
    """An exclusive lock on a checkpoint directory for the duration of a sweep, so two
    processes never write one checkpoint at once (two different sweeps would mix their
    chunks). ``flock`` on ``checkpoint.lock``: the kernel releases it when the holder
    exits, killed or not, so an interrupted sweep can always be resumed."""
    try:
        import fcntl
    except ImportError:  # no POSIX locks on this platform: run unlocked
        yield
        return
    fd = os.open(root / _LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise PersistenceError(
                f"checkpoint {root} is in use by another running sweep; wait for it, or use another path"
            ) from None
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _run_chunks_locked(
    root: Path,
    identity: Mapping[str, Any],
    n: int,
    chunk_size: Any,
    compute: Callable[[int, int], pl.DataFrame],
) -> pl.DataFrame:
    _store.remove_stale(root)  # chunks half written by a killed run
    marker = root / _CHECKPOINT
    identity = {"format": "aftershock.checkpoint", "aftershock": _store.library_versions()["aftershock"], **identity}
    if marker.exists():
        try:
            recorded = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise PersistenceError(f"{marker}: unreadable ({exc})") from None
        size = _chunk_size(chunk_size, recorded.get("chunk_size"))
        now = {**identity, "chunk_size": size}
        if recorded != json.loads(json.dumps(now)):
            raise PersistenceError(
                f"checkpoint {root} belongs to another sweep: {_describe_mismatch(recorded, now)}. "
                "Use another checkpoint path, or delete this one to start over."
            )
    else:
        if any(_CHUNK.match(p.name) for p in root.iterdir()):
            raise PersistenceError(f"{root}: chunk files without {_CHECKPOINT}; not resuming from them")
        size = _chunk_size(chunk_size)
        _write_json_atomic(marker, {**identity, "chunk_size": size})
    done: dict[int, Path] = {}
    for p in root.iterdir():
        m = _CHUNK.match(p.name)
        if m:
            lo, hi = int(m.group(1)), int(m.group(2))
            if lo % size or hi != min(lo + size, n):
                raise PersistenceError(f"{p}: not a chunk of this checkpoint (chunk size {size}, {n} variants)")
            done[lo] = p
    parts = []
    for lo in range(0, n, size):
        hi = min(lo + size, n)
        if lo in done:
            part = _store.read_frame_checked(done[lo])
            idx = part.get_column("variant") if "variant" in part.columns else None
            if idx is None or idx.len() != hi - lo or idx[0] != lo or idx[-1] != hi - 1:
                raise PersistenceError(f"{done[lo]}: does not hold variants {lo}..{hi - 1}")
        else:
            part = compute(lo, hi).with_columns(variant=pl.int_range(lo, hi, dtype=pl.Int64))
            _store.write_frame_atomic(part, root / f"chunk-{lo:09d}-{hi:09d}.parquet")
        parts.append(part)
    return pl.concat(parts, how="vertical").drop("variant")
