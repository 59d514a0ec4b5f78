"""A process the persistence tests kill with SIGKILL in the middle of a write.

``python tests/persist_child.py MODE PATH [N]``:

- ``save-kill PATH N``: save a result to PATH (replacing what is there); the N-th
  Parquet file is written half way, then the process kills itself.
- ``save-loop PATH``: save the same result to PATH over and over until killed.
- ``sweep-kill PATH N``: run the test sweep with checkpoint PATH (chunks of
  ``CHUNK``); after N chunks are on disk, kill itself.
- ``sweep-kill-mid PATH N``: as ``sweep-kill``, but chunk N+1 is half written when
  the process dies.

The data builders are shared with the tests, so parent and child run the same inputs.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import sys

import numpy as np
import polars as pl

import aftershock as ash
import aftershock._store as store

UTC = dt.timezone.utc
T0 = dt.datetime(2025, 1, 6, tzinfo=UTC)
CHUNK = 4
GRID = {"stop_loss": [0.004, 0.01, None], "take_profit": [0.006, 0.02], "exit_after": ["30m", "4h"], "fees": [0.0, 0.0005]}


def bars(days: int = 6, seed: int = 11) -> pl.DataFrame:
    n = days * 24 * 12
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.003, n)))
    open_ = np.concatenate([[100.0], close[:-1]])
    wick = np.abs(rng.normal(0, 0.002, n))
    ts = pl.datetime_range(T0, T0 + dt.timedelta(minutes=5 * (n - 1)), "5m", eager=True, time_zone="UTC")
    return pl.DataFrame({"ts": ts, "symbol": "BTC", "open": open_, "high": np.maximum(open_, close) * (1 + wick),
                         "low": np.minimum(open_, close) * (1 - wick), "close": close})


def orders(seed: int = 5) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    submit = [T0 + dt.timedelta(days=d, hours=h, minutes=7) for d in range(5) for h in (3, 9, 15, 21)]
    return pl.DataFrame({"submit_ts": submit, "symbol": "BTC",
                         "side": np.where(rng.random(len(submit)) < 0.5, "buy", "sell"), "qty": 0.2,
                         "size_type": "percent_equity", "exit_after": "2h", "tag": [f"E{k}" for k in range(len(submit))]})


def result() -> ash.Result:
    return ash.backtest(bars(), orders(), fees=0.0004, latency="2s", init_cash=10_000)


def sweep() -> ash.Sweep:
    return ash.Sweep(bars(), orders(), GRID, init_cash=10_000)


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def main(mode: str, path: str, n: int = 0) -> None:
    if mode == "save-kill":
        real = store._write_parquet
        calls = [0]

        def half_then_die(frame, target, digest):
            calls[0] += 1
            if calls[0] < n:
                return real(frame, target, digest)
            real(frame, target, digest)
            with open(target, "r+b") as fh:
                fh.truncate(os.path.getsize(target) // 2)
                os.fsync(fh.fileno())
            _die()

        store._write_parquet = half_then_die
        result().save(path, overwrite=True)
    elif mode == "save-loop":
        r = result()
        while True:
            r.save(path, overwrite=True)
    elif mode in ("sweep-kill", "sweep-kill-mid"):
        real_atomic = store.write_frame_atomic
        real_write = store._write_parquet
        done = [0]

        def counted(frame, target):
            if done[0] == n and mode == "sweep-kill-mid":
                def half(frame, tmp, digest):
                    size = real_write(frame, tmp, digest)
                    with open(tmp, "r+b") as fh:
                        fh.truncate(size // 2)
                    _die()
                store._write_parquet = half
            record = real_atomic(frame, target)
            done[0] += 1
            if done[0] == n and mode == "sweep-kill":
                _die()
            return record

        store.write_frame_atomic = counted
        sweep().run(checkpoint=path, chunk_size=CHUNK, threads=1)
    else:
        raise SystemExit(f"unknown mode {mode}")
    sys.exit(0)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], *(int(a) for a in sys.argv[3:4]))
