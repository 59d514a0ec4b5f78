"""Saved backtests and sweeps (python/aftershock/trading/persist.py, python/aftershock/_store.py).

A saved object must come back equal bit for bit and working; a write killed at any
point must leave nothing that loads as a result; a damaged file must be named; an
interrupted sweep must resume without recomputing its finished chunks and end equal
to an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

import aftershock as ash
import aftershock._engine as engine_ext
from aftershock._store import to_json
import persist_child as child
from builders import Macro

CHILD = Path(__file__).resolve().parents[1] / "persist_child.py"
FRAMES = ("fills", "trades", "equity", "orders")


def run_child(*args: object, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(CHILD), *map(str, args)], capture_output=True, timeout=timeout)


def assert_same_result(a: ash.Result, b: ash.Result) -> None:
    for name in FRAMES:
        assert_frame_equal(getattr(a, name), getattr(b, name), check_exact=True)
    assert a.bars_visited == b.bars_visited
    assert to_json(a.config) == to_json(b.config)  # NaN settings ("none") compare equal here


def assert_same_stats(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert a[k] == b[k] or (a[k] != a[k] and b[k] != b[k]), k  # NaN == NaN here


# -- results -------------------------------------------------------------------------


def test_a_loaded_result_equals_the_saved_one_and_works(tmp_path):
    r = child.result()
    r.save(tmp_path / "r")
    loaded = ash.load(tmp_path / "r")
    assert isinstance(loaded, ash.Result)
    assert_same_result(r, loaded)
    assert_same_stats(r.stats(), loaded.stats())
    assert_same_stats(r.stats(returns="trading", benchmark="BTC"), loaded.stats(returns="trading", benchmark="BTC"))
    assert_frame_equal(r.equity_curve("1h"), loaded.equity_curve("1h"), check_exact=True)
    assert loaded.final_equity == r.final_equity
    assert len(loaded.plot().data) == len(r.plot().data)
    assert Path(loaded.report(str(tmp_path / "r.html"))).stat().st_size > 10_000
    loaded.verify()
    loaded.verify(child.bars())
    # saving a loaded result keeps what it records
    loaded.save(tmp_path / "again")
    first = json.loads((tmp_path / "r" / "meta.json").read_text())
    again = json.loads((tmp_path / "again" / "meta.json").read_text())
    assert first["frames"] == again["frames"] and first["inputs"] == again["inputs"]


def test_the_record_names_versions_config_and_input_hashes(tmp_path):
    r = child.result()
    r.save(tmp_path / "r")
    meta = json.loads((tmp_path / "r" / "meta.json").read_text())
    assert meta["kind"] == "result" and meta["versions"]["aftershock"] == ash.__version__
    assert meta["result"]["config"]["fees"] == 0.0004 and meta["result"]["config"]["latency"] == 2_000_000
    assert meta["inputs"]["bars"]["rows"] == child.bars().height
    other = child.bars(seed=12)
    with pytest.raises(ash.VerificationError, match="bars differ"):
        ash.load(tmp_path / "r").verify(other)
    # the hash is of the content, not of the frame object or its chunks
    rechunked = pl.concat([child.bars().head(100), child.bars().tail(child.bars().height - 100)], rechunk=False)
    ash.load(tmp_path / "r").verify(rechunked)


def test_a_strategy_result_records_its_class_and_parameters_and_recompiles(tmp_path):
    data = ash.datasets.sample()
    r = ash.backtest(data.bars, Macro(threshold=0.5, hold="1h"), calendar=data.calendar, fees=0.0004)
    assert r.trades.height > 0
    r.save(tmp_path / "s")
    meta = json.loads((tmp_path / "s" / "meta.json").read_text())
    source = meta["result"]["source"]
    assert source["kind"] == "strategy" and source["class"] == "builders:Macro"
    assert source["params"] == {"threshold": 0.5, "hold": "1h"} and source["source_sha256"].startswith("sha256:")
    loaded = ash.load(tmp_path / "s")
    loaded.verify()  # the saved calendar and bars, the class imported by name
    loaded.verify(data.bars, data.calendar)
    assert_same_result(loaded.rerun(), r)

    class Other(Macro):  # same parameters, another rule: other orders
        def on_release(self, events):
            return super().on_release(events.filter(pl.col("hawkish_z") > 0))

    with pytest.raises(ash.VerificationError, match="compiles other orders"):
        loaded.verify(strategy=Other)
    with pytest.raises(ash.VerificationError, match="calendar differs"):
        loaded.verify(calendar=data.calendar.with_columns(pl.col("actual") + 0.1))
    with pytest.raises(ash.VerificationError, match="calendar differs"):  # a fresh result checks it too
        r.verify(calendar=data.calendar.with_columns(pl.col("actual") + 0.1))
    r.verify(strategy=Macro)
    with pytest.raises(ash.ConfigError, match="not produced by a Strategy"):
        child.result().verify(strategy=Macro)


def test_a_signals_result_saves_its_masks_and_reruns(tmp_path):
    bars = child.bars()
    rng = np.random.default_rng(3)
    entries, exits = rng.random(bars.height) < 0.02, rng.random(bars.height) < 0.02
    r = ash.from_signals(bars, entries, exits, sl_stop=0.01, fees=0.001)
    r.save(tmp_path / "sig")
    loaded = ash.load(tmp_path / "sig")
    assert_same_result(r, loaded)
    assert_same_stats(r.stats(), loaded.stats())
    loaded.verify()
    loaded.verify(bars)


def test_a_signals_result_saves_its_per_bar_settings_and_price_series(tmp_path):
    """Regression: only the four masks were saved and replayed, so a result with per-bar
    fees, valuation prices, partial-fill flags or a price series failed to verify (and
    rerun gave another result)."""
    bars = child.bars()
    n = bars.height
    rng = np.random.default_rng(4)
    entries, exits = rng.random(n) < 0.02, rng.random(n) < 0.02
    r = ash.from_signals(bars, entries, exits, price=bars["close"] * 1.001, sl_stop=0.01, size=5_000.0,
                         size_type="value", fees=np.where(rng.random(n) < 0.5, 0.001, 0.01),
                         val_price=np.where(rng.random(n) < 0.5, np.inf, -np.inf), allow_partial=rng.random(n) < 0.7)
    plain = ash.from_signals(bars, entries, exits, price="close", sl_stop=0.01, size=5_000.0, size_type="value", fees=0.001)
    assert r.stats()["final_equity"] != plain.stats()["final_equity"]  # the settings matter here
    r.save(tmp_path / "sig")
    loaded = ash.load(tmp_path / "sig")
    assert {"fees", "val_price", "allow_partial", "price"} <= set(loaded._inputs["signals"])
    assert_same_result(r, loaded)
    loaded.verify(bars)
    r.verify(bars)
    assert_frame_equal(loaded.rerun(bars).fills, r.fills, check_exact=True)


def test_verify_names_the_first_difference(tmp_path):
    child.result().save(tmp_path / "r")
    loaded = ash.load(tmp_path / "r")
    fills = loaded.fills
    loaded._cache["fills"] = fills.with_columns(pl.when(pl.int_range(pl.len()) == 3).then(pl.col("price") + 1e-9)
                                                .otherwise(pl.col("price")).alias("price"))
    with pytest.raises(ash.VerificationError, match=r"fills: column 'price' row 3"):
        loaded.verify()


def test_a_result_saved_without_bars_loads_with_them(tmp_path):
    r = child.result()
    r.save(tmp_path / "nb", include_bars=False)
    assert not (tmp_path / "nb" / "bars.parquet").exists()
    bare = ash.load(tmp_path / "nb")
    assert_frame_equal(bare.fills, r.fills, check_exact=True)  # the frames need no bars
    with pytest.raises(ash.PersistenceError, match=r"saved without its bars.*load\(path, bars=\.\.\.\)"):
        bare.stats()
    with pytest.raises(ash.VerificationError, match="saved without its bars: pass bars="):
        bare.verify()
    bare.verify(child.bars())
    bare.save(tmp_path / "nb2", include_bars=False)
    loaded = ash.load(tmp_path / "nb", bars=child.bars())
    assert_same_stats(r.stats(), loaded.stats())
    with pytest.raises(ash.VerificationError, match="bars differ"):
        ash.load(tmp_path / "nb", bars=child.bars(seed=2))


def test_saving_never_replaces_silently(tmp_path):
    r = child.result()
    r.save(tmp_path / "r")
    with pytest.raises(ash.PersistenceError, match="exists; pass overwrite=True"):
        r.save(tmp_path / "r")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(ash.PersistenceError, match="not a saved aftershock result"):
        r.save(tmp_path / "mine", overwrite=True)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    ash.backtest(child.bars(), child.orders().head(3)).save(tmp_path / "r", overwrite=True)
    assert ash.load(tmp_path / "r").orders.height == 3


# -- damaged files -----------------------------------------------------------------


def test_a_truncated_file_is_named(tmp_path):
    child.result().save(tmp_path / "r")
    target = tmp_path / "r" / "trades.parquet"
    data = target.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    with pytest.raises(ash.PersistenceError, match=r"trades\.parquet: truncated"):
        ash.load(tmp_path / "r")


def test_a_corrupted_file_of_the_same_size_is_named(tmp_path):
    child.result().save(tmp_path / "r")
    target = tmp_path / "r" / "equity.parquet"
    data = bytearray(target.read_bytes())
    for k in range(200, len(data) - 200, 97):
        data[k] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(ash.PersistenceError, match=r"equity\.parquet: (not a readable Parquet|content does not match)"):
        ash.load(tmp_path / "r")


def test_a_replaced_frame_is_caught_by_its_hash(tmp_path):
    child.result().save(tmp_path / "r")
    target = tmp_path / "r" / "fills.parquet"
    size = target.stat().st_size
    fills = pl.read_parquet(target).with_columns(pl.col("fee") * 2)
    fills.write_parquet(target)
    meta_path = tmp_path / "r" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["frames"]["fills"]["bytes"] = target.stat().st_size  # a consistent size: only the hash can tell
    meta_path.write_text(json.dumps(meta))
    assert size > 0
    with pytest.raises(ash.PersistenceError, match=r"fills\.parquet: content does not match its recorded hash"):
        ash.load(tmp_path / "r")


def test_missing_and_unreadable_records_are_clear(tmp_path):
    with pytest.raises(ash.PersistenceError, match="no saved result there"):
        ash.load(tmp_path / "nothing")
    child.result().save(tmp_path / "r")
    (tmp_path / "r" / "orders.parquet").unlink()
    with pytest.raises(ash.PersistenceError, match=r"orders\.parquet: missing"):
        ash.load(tmp_path / "r")
    child.result().save(tmp_path / "m")
    (tmp_path / "m" / "meta.json").write_text('{"format": "aftershock", "format_ver')
    with pytest.raises(ash.PersistenceError, match=r"meta\.json: unreadable"):
        ash.load(tmp_path / "m")
    (tmp_path / "m" / "meta.json").write_text('{"format": "aftershock", "format_version": 99}')
    with pytest.raises(ash.PersistenceError, match="format version 99"):
        ash.load(tmp_path / "m")


# -- killed writers ------------------------------------------------------------------


@pytest.mark.parametrize("kill_on", [1, 3, 5])
def test_a_save_killed_mid_write_leaves_nothing_that_loads(tmp_path, kill_on):
    target = tmp_path / "r"
    proc = run_child("save-kill", target, kill_on)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert not target.exists()
    leftovers = [p for p in tmp_path.iterdir() if p.name.startswith(".r.tmp-")]
    assert len(leftovers) == 1  # the killed writer's temporary directory, half written
    assert not (leftovers[0] / "meta.json").exists()
    with pytest.raises(ash.PersistenceError, match="no saved result there"):
        ash.load(target)
    with pytest.raises(ash.PersistenceError, match="missing"):
        ash.load(leftovers[0])
    # the next save succeeds and removes the dead writer's leftovers
    child.result().save(target)
    assert [p.name for p in tmp_path.iterdir()] == ["r"]
    ash.load(target).verify()


def test_an_overwrite_killed_mid_write_keeps_the_old_result(tmp_path):
    target = tmp_path / "r"
    old = ash.backtest(child.bars(), child.orders().head(5), init_cash=10_000)
    old.save(target)
    proc = run_child("save-kill", target, 4)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert_same_result(ash.load(target), old)


def test_a_writer_killed_at_random_moments_never_leaves_a_partial_result(tmp_path):
    target = tmp_path / "r"
    expected = child.result()
    expected.save(target)
    rng = random.Random(8)
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, str(CHILD), "save-loop", str(target)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(2.5 + rng.random() * 1.5)  # past the import, into the save loop
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        assert_same_result(ash.load(target), expected)


# -- sweeps --------------------------------------------------------------------------


def test_a_loaded_sweep_equals_the_saved_one_and_works(tmp_path):
    sw = child.sweep()
    table = sw.run(threads=2)
    sw.save(tmp_path / "sw")
    loaded = ash.load(tmp_path / "sw")
    assert isinstance(loaded, ash.Sweep) and loaded.grid == sw.grid and len(loaded) == len(sw)
    assert_frame_equal(loaded.table, table, check_exact=True)
    assert_same_result(loaded.result(5), sw.result(5))
    loaded.verify()
    loaded.verify(child.bars())
    with pytest.raises(ash.VerificationError, match="bars differ"):
        loaded.verify(child.bars(seed=1))


def test_a_strategy_sweep_saves_its_calendar_and_reloads_its_class(tmp_path):
    data = ash.datasets.sample()
    sw = ash.Sweep(data.bars, Macro, {"threshold": [0.0, 1.0], "hold": ["1h", "4h"]}, calendar=data.calendar)
    sw.save(tmp_path / "sw")  # runs it first
    loaded = ash.load(tmp_path / "sw")
    assert loaded.strategy is Macro
    assert_frame_equal(loaded.table, sw.table, check_exact=True)
    loaded.verify()


def engine_counter(monkeypatch, name: str) -> list[int]:
    """Counts the variants each call of engine function ``name`` runs."""
    seen: list[int] = []
    real = getattr(engine_ext, name)

    def counting(*args):
        seen.append(len(args[2]) if name == "simulate_many_stats" else args[3].height)
        return real(*args)

    monkeypatch.setattr(engine_ext, name, counting)
    return seen


@pytest.mark.parametrize("mode", ["sweep-kill", "sweep-kill-mid"])
def test_a_killed_sweep_resumes_without_recomputing_and_equals_an_uninterrupted_run(tmp_path, monkeypatch, mode):
    ckpt = tmp_path / "ckpt"
    proc = run_child(mode, ckpt, 3)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    chunks = sorted(p for p in ckpt.iterdir() if p.name.startswith("chunk-"))
    assert [p.name for p in chunks] == [f"chunk-{lo:09d}-{lo + 4:09d}.parquet" for lo in (0, 4, 8)]
    mtimes = {p.name: p.stat().st_mtime_ns for p in chunks}
    half = [p for p in ckpt.iterdir() if p.name.startswith(".chunk-")]
    assert len(half) == (1 if mode == "sweep-kill-mid" else 0)

    seen = engine_counter(monkeypatch, "simulate_many_stats")
    resumed = child.sweep().run(checkpoint=ckpt, chunk_size=child.CHUNK, threads=2)
    total = len(child.sweep())
    assert sum(seen) == total - 12 and len(seen) == (total - 12) // child.CHUNK  # per chunk, not per variant
    assert {p.name: p.stat().st_mtime_ns for p in chunks} == mtimes  # finished chunks untouched
    assert not [p for p in ckpt.iterdir() if p.name.startswith(".")]  # the dead writer's half chunk is gone
    monkeypatch.undo()
    assert_frame_equal(resumed, child.sweep().run(threads=1), check_exact=True)
    # a finished checkpoint computes nothing at all
    seen = engine_counter(monkeypatch, "simulate_many_stats")
    assert_frame_equal(child.sweep().run(checkpoint=ckpt), resumed, check_exact=True)
    assert seen == []
    with pytest.raises(ash.PersistenceError, match="sweep checkpoint, not a saved result"):
        ash.load(ckpt)


@pytest.mark.parametrize(
    "change, what",
    [
        (lambda: ash.Sweep(child.bars(seed=4), child.orders(), child.GRID, init_cash=10_000), "inputs.bars.sha256"),
        (lambda: ash.Sweep(child.bars(), child.orders(seed=6), child.GRID, init_cash=10_000), "inputs.orders.sha256"),
        (lambda: ash.Sweep(child.bars(), child.orders(), {**child.GRID, "fees": [0.0, 0.001]}, init_cash=10_000),
         "grid.fees"),
        (lambda: ash.Sweep(child.bars(), child.orders(), child.GRID, init_cash=20_000), "config.init_cash"),
        (lambda: ash.Sweep(child.bars(), child.orders(), child.GRID, init_cash=10_000, periods_per_year=252),
         "periods_per_year"),
    ],
)
def test_a_checkpoint_refuses_other_inputs(tmp_path, change, what):
    ckpt = tmp_path / "ckpt"
    child.sweep().run(checkpoint=ckpt, chunk_size=5)
    with pytest.raises(ash.PersistenceError, match=f"belongs to another sweep: {what} differs"):
        change().run(checkpoint=ckpt, chunk_size=5)
    with pytest.raises(ash.PersistenceError, match="chunk_size differs"):
        child.sweep().run(checkpoint=ckpt, chunk_size=6)


def test_a_strategy_sweep_checkpoint_refuses_another_calendar(tmp_path):
    data = ash.datasets.sample()
    grid = {"threshold": [0.0, 1.0]}
    ash.Sweep(data.bars, Macro, grid, calendar=data.calendar).run(checkpoint=tmp_path / "c", chunk_size=1)
    other = data.calendar.with_columns(pl.col("consensus") * 1.01)
    with pytest.raises(ash.PersistenceError, match="inputs.calendar.sha256 differs"):
        ash.Sweep(data.bars, Macro, grid, calendar=other).run(checkpoint=tmp_path / "c")


def test_a_damaged_chunk_is_named_not_used(tmp_path):
    ckpt = tmp_path / "ckpt"
    child.sweep().run(checkpoint=ckpt, chunk_size=5)
    chunk = ckpt / "chunk-000000005-000000010.parquet"
    data = bytearray(chunk.read_bytes())
    for k in range(100, len(data) - 100, 31):
        data[k] ^= 0x55
    chunk.write_bytes(bytes(data))
    with pytest.raises(ash.PersistenceError, match="chunk-000000005-000000010.parquet"):
        child.sweep().run(checkpoint=ckpt)


def test_a_checkpoint_in_use_by_another_process_is_refused_until_it_ends(tmp_path):
    """Two processes never write one checkpoint at once (two different sweeps would mix
    their chunks); the lock dies with its holder, even when it is killed, so the sweep
    then runs and resumes as usual."""
    ckpt = tmp_path / "busy"
    child.sweep().run(checkpoint=ckpt, chunk_size=5)  # creates the checkpoint and its lock file
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, os, sys, time\n"
         f"fd = os.open({str(ckpt / 'checkpoint.lock')!r}, os.O_RDWR)\n"
         "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('locked', flush=True)\ntime.sleep(120)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(ash.PersistenceError, match="in use by another running sweep"):
            child.sweep().run(checkpoint=ckpt, chunk_size=5)
    finally:
        holder.kill()
        holder.wait()
    again = child.sweep().run(checkpoint=ckpt, chunk_size=5)
    assert_frame_equal(again, child.sweep().run(), check_exact=True)

def test_a_from_signals_sweep_resumes_from_its_checkpoint(tmp_path, monkeypatch):
    bars = child.bars()
    rng = np.random.default_rng(7)
    entries, exits = rng.random(bars.height) < 0.03, rng.random(bars.height) < 0.03
    kwargs = dict(sl_stop=[0.005, 0.01, None], tp_stop=[0.01, 0.03], fees=[0.0, 0.001], threads=2)
    full = ash.from_signals(bars, entries, exits, **kwargs)
    ckpt = tmp_path / "sig"
    real = engine_ext.simulate_signals_many
    calls = [0]

    def interrupted(*args):
        calls[0] += 1
        if calls[0] == 3:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(engine_ext, "simulate_signals_many", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ash.from_signals(bars, entries, exits, checkpoint=ckpt, chunk_size=3, **kwargs)
    monkeypatch.undo()
    assert len([p for p in ckpt.iterdir() if p.name.startswith("chunk-")]) == 2
    seen = engine_counter(monkeypatch, "simulate_signals_many")
    resumed = ash.from_signals(bars, entries, exits, checkpoint=ckpt, chunk_size=3, **kwargs)
    assert sum(seen) == full.height - 6 and all(n == 3 for n in seen)
    assert_frame_equal(resumed, full, check_exact=True)
    with pytest.raises(ash.PersistenceError, match="inputs.signals differs"):
        ash.from_signals(bars, entries, ~exits, checkpoint=ckpt, chunk_size=3, **kwargs)
    # the frame itself saves and loads as a frame
    ash.save(full, tmp_path / "frame")
    assert_frame_equal(ash.load(tmp_path / "frame"), full, check_exact=True)


def test_the_persistence_page_runs(tmp_path, monkeypatch):
    import re

    from conftest import REPO_ROOT

    monkeypatch.chdir(tmp_path)
    text = (REPO_ROOT / "docs" / "persistence.md").read_text(encoding="utf-8")
    (block,) = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    namespace: dict = {}
    exec(compile(block, "docs/persistence.md", "exec"), namespace)
    assert isinstance(namespace["again"], ash.Result) and (tmp_path / "runs" / "sweep.ckpt" / "checkpoint.json").exists()
    assert_frame_equal(ash.load(tmp_path / "runs" / "sweep").table, namespace["table"], check_exact=True)
