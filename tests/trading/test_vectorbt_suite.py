"""vectorbt's own ``TestFromSignals`` as a yardstick, with vectorbt as the oracle.

The ``from_signals`` calls of ``TestFromSignals`` (``tests/test_portfolio.py`` in
vectorbt 1.2.0's sdist on PyPI; the wheel has no tests) are read with ``ast`` at test
time: the file is downloaded once into a cache directory (``$XDG_CACHE_HOME`` or
``tests/.cache``, never committed), its sha256 checked against the release's. Each
call's keyword arguments are evaluated (with the test function's own simple
assignments before it), the call is run in vectorbt, and every column is replayed
through ``aftershock.from_signals(price="close")`` (a group with shared cash as one
backtest of its columns): every fill (bar, side, size, price, fee) and the final
value must agree to 1e-9. A NaN close (our bars frame refuses one) is replayed as a bar at the
last known close on which no order fills; cases using what we do not support are counted, each under
the reason ``OUT_OF_SCOPE`` gives (docs/vectorbt.md lists them); none may differ.
"""

from __future__ import annotations

import ast
import datetime as dt
import hashlib
import io
import json
import math
import os
import tarfile
import urllib.request
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

from aftershock.errors import AftershockError
from aftershock.trading.signals import from_signals

vbt = pytest.importorskip("vectorbt")

SDIST = "vectorbt-1.2.0.tar.gz"
SHA256 = "f336deba190c4d249d37aaf7c65945769ea952836090e4128da73508af7b6de8"
MEMBER = "vectorbt-1.2.0/tests/test_portfolio.py"
REL = 1e-9

#: Arguments we do not support, and why (docs/vectorbt.md, "out of scope").
OUT_OF_SCOPE = {
    "reject_prob": "random rejections (reject_prob)",
    "lock_cash": "lock_cash",
    "log": "order logs (log, max_logs)",
    "max_logs": "order logs (log, max_logs)",
    "max_orders": "record buffer sizes (max_orders)",
    "call_seq": "call sequences other than column order (call_seq)",
    "signal_func_nb": "callbacks (signal_func_nb, adjust_*_func_nb)",
    "adjust_sl_func_nb": "callbacks (signal_func_nb, adjust_*_func_nb)",
    "adjust_tp_func_nb": "callbacks (signal_func_nb, adjust_*_func_nb)",
    "ts_stop": "an argument vectorbt 1.2 does not have (ts_stop)",
    "seed": "random rejections (reject_prob)",
}
NAN_BARS = "bars with NaN prices (our bars frame refuses them)"
BAD_RANGE = "open/high/low that do not contain the close (our bars frame refuses them)"

HELPERS = {
    "from_signals_both": "both", "from_signals_longonly": "longonly", "from_signals_shortonly": "shortonly",
    "from_ls_signals_both": "ls_both", "from_ls_signals_longonly": "ls_longonly",
    "from_ls_signals_shortonly": "ls_shortonly",
}


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME")
    return Path(base) / "aftershock" if base else Path(__file__).resolve().parents[1] / ".cache"


def vectorbt_tests() -> str:
    """vectorbt's tests/test_portfolio.py, from the cache or PyPI (checked against the release's sha256)."""
    path = _cache_dir() / "vectorbt-1.2.0-test_portfolio.py"
    if path.exists():
        return path.read_text()
    try:
        req = urllib.request.Request("https://pypi.org/simple/vectorbt/",
                                     headers={"Accept": "application/vnd.pypi.simple.v1+json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            files = json.load(r)["files"]
        url = next(f["url"] for f in files if f["filename"] == SDIST)
        with urllib.request.urlopen(url, timeout=120) as r:
            blob = r.read()
    except OSError as exc:  # no network: the yardstick cannot be read here
        pytest.skip(f"PyPI unreachable: {exc}")
    assert hashlib.sha256(blob).hexdigest() == SHA256, "the sdist on PyPI is not vectorbt 1.2.0's"
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        member = tar.extractfile(MEMBER)
        assert member is not None
        text = member.read().decode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return text


# ----------------------------------------------------------------------------- reading the calls


def _module_namespace(tree: ast.Module) -> dict:
    ns: dict = {"np": np, "pd": pd, "vbt": vbt, "datetime": dt.datetime, "timedelta": dt.timedelta}
    for node in tree.body:
        if isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) for t in node.targets):
            if "big_" in ast.unparse(node):
                continue
            try:
                exec(compile(ast.Module([node], []), "<vectorbt>", "exec"), ns)
            except Exception:
                pass
    return ns


def _helper(call: ast.Call) -> str | None:
    f = call.func
    if isinstance(f, ast.Name):
        name = f.id.lstrip("_")
        return HELPERS.get(name, name if name in ("from_signals_both",) else None)
    if isinstance(f, ast.Attribute) and f.attr == "from_signals" and ast.unparse(f.value) == "vbt.Portfolio":
        return "direct"
    return None


def read_cases(text: str) -> list[tuple[str, str, dict]]:
    """(test name, helper, keyword arguments) of every from_signals call of TestFromSignals."""
    tree = ast.parse(text)
    module_ns = _module_namespace(tree)
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "TestFromSignals")
    out = []
    for fn in (n for n in cls.body if isinstance(n, ast.FunctionDef)):
        ns = dict(module_ns)
        for stmt in fn.body:
            if isinstance(stmt, ast.Assign) and all(isinstance(t, ast.Name) for t in stmt.targets):
                try:
                    exec(compile(ast.Module([stmt], []), "<vectorbt>", "exec"), ns)
                except Exception:
                    pass
                continue
            for call in (n for n in ast.walk(stmt) if isinstance(n, ast.Call)):
                helper = _helper(call)
                if helper is None or any(k.arg is None for k in call.keywords):
                    continue
                helpers = [helper]
                if isinstance(call.func, ast.Name) and call.func.id.startswith("_from_signals"):
                    helpers = [helper, "ls_" + helper]  # the test_ls parametrization
                try:
                    kwargs = {k.arg: eval(compile(ast.Expression(k.value), "<vectorbt>", "eval"), ns)
                              for k in call.keywords}
                    args = [eval(compile(ast.Expression(a), "<vectorbt>", "eval"), ns) for a in call.args]
                except Exception:
                    continue
                for h in helpers:
                    out.append((fn.name, h, {"__args__": args, **kwargs}))
    return out


# ----------------------------------------------------------------------------- running a case


def vectorbt_call(helper: str, kwargs: dict, module_ns: dict):
    args, kw = kwargs["__args__"], {k: v for k, v in kwargs.items() if k != "__args__"}
    close = kw.pop("close", module_ns["price"])
    if helper == "direct":
        return vbt.Portfolio.from_signals(*args, **kw) if args else vbt.Portfolio.from_signals(close, **kw)
    entries, exits = kw.pop("entries", module_ns["entries"]), kw.pop("exits", module_ns["exits"])
    if helper in ("both", "longonly", "shortonly"):
        return vbt.Portfolio.from_signals(close, entries, exits, direction=helper, **kw)
    if helper == "ls_both":
        return vbt.Portfolio.from_signals(close, entries, False, exits, False, **kw)
    if helper == "ls_longonly":
        return vbt.Portfolio.from_signals(close, entries, exits, False, False, **kw)
    return vbt.Portfolio.from_signals(close, False, False, entries, exits, **kw)


def _grid(value, shape) -> np.ndarray:
    """A setting broadcast to (bars, columns) as vectorbt does (a 1-D array runs along the rows)."""
    arr = np.asarray(value.values if hasattr(value, "values") else value)
    if arr.ndim == 1:
        arr = arr[:, None] if arr.shape[0] == shape[0] else arr[None, :]
    return np.broadcast_to(arr, shape)


def _column(value, shape, j):
    col = _grid(value, shape)[:, j]
    if col.dtype == object:
        return col
    if np.all((col == col[0]) | (pd.isna(col) & pd.isna(col[0]))):
        return col[0].item() if hasattr(col[0], "item") else col[0]
    return np.ascontiguousarray(col)


ENUMS = {"size_type": vbt.portfolio.enums.SizeType, "accumulate": vbt.portfolio.enums.AccumulationMode,
         "stop_entry_price": vbt.portfolio.enums.StopEntryPrice, "stop_exit_price": vbt.portfolio.enums.StopExitPrice,
         "upon_stop_exit": vbt.portfolio.enums.StopExitMode, "upon_stop_update": vbt.portfolio.enums.StopUpdateMode,
         "upon_long_conflict": vbt.portfolio.enums.ConflictMode, "upon_short_conflict": vbt.portfolio.enums.ConflictMode,
         "upon_dir_conflict": vbt.portfolio.enums.DirectionConflictMode,
         "upon_opposite_entry": vbt.portfolio.enums.OppositeEntryMode, "direction": vbt.portfolio.enums.Direction}


def _name(key, value):
    """vectorbt settings given as enum numbers or names, as our names."""
    if key == "accumulate" and isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, str):
        return value.lower()
    fields = ENUMS[key]._fields
    return fields[int(value)].lower()


def replay(helper: str, kwargs: dict, module_ns: dict, pf) -> str | None:
    """Replays every column (or cash-sharing group) of ``pf`` through aftershock; the problem, or None."""
    args, kw = kwargs["__args__"], {k: v for k, v in kwargs.items() if k != "__args__"}
    close = args[0] if args else kw.pop("close", module_ns["price"])
    kw.pop("close", None)
    if helper == "direct":
        names = ("entries", "exits", "short_entries", "short_exits")
        sig = {k: v for k, v in zip(names, args[1:])}
        sig.update({k: kw.pop(k) for k in names if k in kw})
        direction = kw.pop("direction", "longonly")
        ls = "short_entries" in sig or "short_exits" in sig
        masks = [sig.get(k, False) for k in names] if ls else [sig.get("entries", False), sig.get("exits", False)]
    else:
        entries, exits = kw.pop("entries", module_ns["entries"]), kw.pop("exits", module_ns["exits"])
        direction = helper if helper in ("both", "longonly", "shortonly") else "longonly"
        masks = {"both": [entries, exits], "longonly": [entries, exits], "shortonly": [entries, exits],
                 "ls_both": [entries, False, exits, False], "ls_longonly": [entries, exits, False, False],
                 "ls_shortonly": [False, False, entries, exits]}[helper]
    group_by, sharing = kw.pop("group_by", None), bool(kw.pop("cash_sharing", False))
    kw.pop("freq", None)
    shape = pf.wrapper.shape_2d
    n, ncols = shape
    ohlc = {k: _grid(kw.pop(k), shape).astype(float) if k in kw else None for k in ("open", "high", "low")}
    closes = _grid(close, shape).astype(float)
    price = kw.pop("price", np.inf)
    init_cash = kw.pop("init_cash", 100.0)
    index = pf.wrapper.index
    ts = [pd.Timestamp(t).to_pydatetime().replace(tzinfo=dt.timezone.utc) if isinstance(index, pd.DatetimeIndex)
          else dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(days=int(i)) for i, t in
          enumerate(index)]
    groups = (list(range(ncols)) if group_by is None or not sharing
              else list(np.arange(ncols) if group_by is False else (np.zeros(ncols, int) if group_by is True
                                                                     else pd.factorize(np.asarray(group_by))[0])))
    records = pf.orders.values
    for g in sorted(set(groups)):
        cols = [j for j in range(ncols) if groups[j] == g]
        frames, per_col = [], []
        for j in cols:
            c_raw = closes[:, j]
            nan_close = np.isnan(c_raw)
            if nan_close.any():
                # a NaN close: a bar at the last known close on which no order fills (vectorbt's
                # price there is NaN) and whose close is no valuation price (-inf: vectorbt's
                # previous close, NaN after a NaN close), given as series; stops would be tested
                # against the stand-in bar, so cases with stops stay out
                stops = [np.asarray(kw.get(k, np.nan), dtype=float) for k in ("sl_stop", "tp_stop")]
                if nan_close[-1] or any((~np.isnan(x)).any() for x in stops):
                    return "OUT:" + NAN_BARS
                c = pd.Series(c_raw).ffill().bfill().to_numpy()
            else:
                c = c_raw
            o = ohlc["open"][:, j] if ohlc["open"] is not None else c
            hi = ohlc["high"][:, j] if ohlc["high"] is not None else np.maximum(o, c)
            lo = ohlc["low"][:, j] if ohlc["low"] is not None else np.minimum(o, c)
            o = np.where(np.isnan(o), c, o)
            hi = np.where(np.isnan(hi), np.maximum(o, c), hi)
            lo = np.where(np.isnan(lo), np.minimum(o, c), lo)
            frames.append(pl.DataFrame({"ts": ts, "symbol": f"c{j}", "open": o, "high": hi, "low": lo, "close": c},
                                       schema_overrides={"ts": pl.Datetime("us", "UTC")}))
            settings = {}
            for key, value in kw.items():
                v = _column(value, shape, j)
                if key in ENUMS:
                    if isinstance(v, np.ndarray):
                        return "OUT:a mode given per bar"
                    v = _name(key, v)
                if key == "val_price" and nan_close.any():
                    vp = np.broadcast_to(np.asarray(v, dtype=float), (n,))
                    v = np.where(np.isneginf(vp), np.concatenate([[np.nan], c_raw[:-1]]), vp)
                settings[key] = None if key in ("sl_stop", "tp_stop") and not isinstance(v, np.ndarray) and \
                    v is not None and isinstance(v, float) and math.isnan(v) else v
            p = _column(price, shape, j)
            if isinstance(p, np.ndarray):
                settings["price"] = np.where(np.isposinf(p), c_raw, np.where(np.isneginf(p), _open_or_prev(ohlc, c_raw, j),
                                                                            p))
            elif p == np.inf:
                settings["price"] = c_raw if nan_close.any() else "close"
            elif p == -np.inf:
                settings["price"] = "open" if ohlc["open"] is not None else _open_or_prev(ohlc, c_raw, j)
            else:
                settings["price"] = np.full(n, float(p))
            m = [_column(x, shape, j) for x in masks]
            m = [np.full(n, bool(x)) if not isinstance(x, np.ndarray) else x.astype(bool) for x in m]
            per_col.append((m, settings))
        if any(np.isnan(f["close"].to_numpy()).any() for f in frames):
            return "OUT:" + NAN_BARS
        if any(((f["low"] > f["close"]) | (f["high"] < f["close"]) | (f["low"] > f["open"]) | (f["high"] < f["open"])).any()
               for f in frames):
            return "OUT:" + BAD_RANGE
        cash = _column(init_cash, (1, ncols) if np.ndim(init_cash) else (1, 1), g if sharing and np.ndim(init_cash)
                       else (cols[0] if np.ndim(init_cash) else 0))
        try:
            if len(cols) == 1 and not sharing:
                m, settings = per_col[0]
                mk = dict(zip(("entries", "exits", "short_entries", "short_exits"), m)) if len(m) == 4 else \
                    {"entries": m[0], "exits": m[1]}
                r = from_signals(frames[0], **mk, direction=_name("direction", direction), init_cash=float(cash),
                                 **settings)
            else:
                keys = [f"c{j}" for j in cols]
                mk = {k: {key: per_col[i][0][q] for i, key in enumerate(keys)}
                      for q, k in enumerate(("entries", "exits", "short_entries", "short_exits")[:len(masks)])}
                settings = {}
                for key in per_col[0][1]:
                    vals = [pc[1][key] for pc in per_col]
                    same = all(not isinstance(v, np.ndarray) and v == vals[0] for v in vals) or all(
                        isinstance(v, str) for v in vals)
                    settings[key] = vals[0] if same else {k: (v if isinstance(v, np.ndarray) else np.full(n, v))
                                                          for k, v in zip(keys, vals)}
                r = from_signals(pl.concat(frames), **mk, direction=_name("direction", direction),
                                 init_cash=float(cash), cash_sharing=True, **settings)
        except (AftershockError, TypeError) as exc:
            return f"REFUSED:{type(exc).__name__}: {exc}"
        theirs = [rec for rec in records if rec["col"] in cols]
        theirs.sort(key=lambda rec: (rec["idx"], cols.index(rec["col"])))
        mine = r.fills
        if mine.height != len(theirs):
            return f"DIFF: {mine.height} fills vs vectorbt's {len(theirs)}"
        bar = {t: i for i, t in enumerate(frames[0]["ts"].to_list())}
        for (t, side, qty, px, fee), rec in zip(mine.select("ts", "side", "qty", "price", "fee").iter_rows(), theirs):
            want = (int(rec["idx"]), "buy" if rec["side"] == 0 else "sell")
            if (bar[t], side) != want or not all(math.isclose(a, float(b), rel_tol=REL, abs_tol=1e-9) for a, b in
                                                 ((qty, rec["size"]), (px, rec["price"]), (fee, rec["fees"]))):
                return f"DIFF: fill {(bar[t], side, qty, px, fee)} vs vectorbt {tuple(rec)}"
        value = pf.final_value(group_by=False) if not sharing else pf.final_value()
        value = float(np.atleast_1d(np.asarray(value))[cols[0] if not sharing else
                                                         (g if np.ndim(value) else 0)])
        if not math.isclose(r.final_equity, value, rel_tol=REL, abs_tol=1e-9):
            return f"DIFF: final value {r.final_equity} vs vectorbt {value}"
    return None


def _open_or_prev(ohlc, c, j):
    """vectorbt's price=-inf: the open, or without one the previous close (NaN on the first bar)."""
    if ohlc["open"] is not None:
        return ohlc["open"][:, j]
    return np.concatenate([[np.nan], c[:-1]])


def classify(helper, kwargs, module_ns) -> str:
    unsupported = sorted({OUT_OF_SCOPE[k] for k in kwargs if k in OUT_OF_SCOPE})
    if kwargs.get("group_by") is not None and kwargs.get("cash_sharing") and "call_seq" in kwargs:
        unsupported.append(OUT_OF_SCOPE["call_seq"])
    if unsupported:
        return "OUT:" + unsupported[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            pf = vectorbt_call(helper, kwargs, module_ns)
            pf.orders.values  # noqa: B018  (vectorbt may raise here)
        except Exception:  # vectorbt's own test expects an exception: nothing to compare
            return "VBT_RAISES"
        return replay(helper, kwargs, module_ns, pf) or "PASS"


def test_vectorbt_from_signals_suite_replays():
    text = vectorbt_tests()
    tree = ast.parse(text)
    module_ns = _module_namespace(tree)
    cases, seen = [], set()
    for test, helper, kwargs in read_cases(text):
        key = (helper, repr(sorted((k, repr(v)) for k, v in kwargs.items())))
        if key not in seen:
            seen.add(key)
            cases.append((test, helper, kwargs))
    outcome = Counter()
    problems = []
    for test, helper, kwargs in cases:
        result = classify(helper, kwargs, module_ns)
        kind = result.split(":")[0]
        outcome[kind] += 1
        if kind in ("DIFF", "REFUSED"):
            problems.append((test, helper, result[:300]))
        if kind == "OUT":
            outcome["OUT " + result[4:]] += 1
    print("\n".join(f"{k}: {v}" for k, v in sorted(outcome.items())))
    assert len(cases) >= 140, f"only {len(cases)} cases read: has the parser lost its way?"
    assert outcome["PASS"] >= 133
    assert not problems, "\n".join(map(str, problems))
