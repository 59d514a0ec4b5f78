"""The study's result frames, built from the per-symbol arrays."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import polars as pl
from scipy import special as _special

from aftershock.event_study import tests_stats as ts
from aftershock.event_study.regression import coef_row, ols, ols_groups
from aftershock.event_study.returns import REASONS
from aftershock.event_study.windows import Window

__all__ = ["reactions_frame", "event_tests", "sensitivity", "merge_symbols", "paths_frame", "drift_frame", "volatility_frame"]

# Calendar columns copied into ``reactions`` when present (a day-precision policy
# timestamp makes a 5-minute reaction meaningless: keep it visible).
PASSED_THROUGH = ("surprise", "surprise_z", "time_precision")
# Gap reactions (releases while the market was closed) are grouped apart from intraday ones.
KEYS = ["indicator", "symbol", "window", "gap"]


def reactions_frame(data: dict, cal: pl.DataFrame, symbols: Sequence[str], wins: Sequence[Window]) -> pl.DataFrame:
    """One row per event × symbol × window (sorted so), with ``_row`` and ``_event``
    helper columns for the test builders."""
    reason_names = {int(code): name for code, name in REASONS.items()}
    ev = cal.select(
        pl.int_range(pl.len(), dtype=pl.Int64).alias("_event"),
        "event_id", "indicator", "kind", "release_ts",
        *[c for c in PASSED_THROUGH if c in cal.columns],
        pl.col("_x").alias("hawkish_z"),
    )
    floats = ("price_start", "price_end", "ret", "low_ret", "high_ret", "expected", "car", "sd", "scar",
              "rv", "rv_before", "volume", "volume_before")
    f = pl.DataFrame(
        {
            "_event": data["_event"].astype(np.int64),
            "_symbol": data["_symbol"].astype(np.int64),
            "_window": data["_window"].astype(np.int64),
            "start_ts": data["start_ts"],
            "end_ts": data["end_ts"],
            "_has0": data["_has0"],
            "_has1": data["_has1"],
            "gap": data["gap"],
            **{k: data[k] for k in floats},
            "bars": data["bars"].astype(np.int64),
            "gaps": data["gaps"].astype(np.int64),
            "n_est": data["n_est"].astype(np.int64),
            "n_est_gap": data["n_est_gap"].astype(np.int64),
            "_reason": data["_reason"].astype(np.int64),
        }
    ).with_row_index("_row")
    to_ts = lambda c, has: pl.when(pl.col(has)).then(pl.col(c).cast(pl.Datetime("us", "UTC"))).otherwise(None)  # noqa: E731
    f = f.with_columns(
        to_ts("start_ts", "_has0").alias("start_ts"),
        to_ts("end_ts", "_has1").alias("end_ts"),
        pl.col("_symbol").replace_strict(dict(enumerate(symbols)), return_dtype=pl.String).alias("symbol"),
        pl.col("_window").replace_strict({i: w.label for i, w in enumerate(wins)}, return_dtype=pl.String).alias("window"),
        pl.col("_window").replace_strict({i: w.kind for i, w in enumerate(wins)}, return_dtype=pl.String).alias("window_kind"),
        pl.col("_reason").replace_strict(reason_names, default=None, return_dtype=pl.String).alias("reason"),
        pl.when(pl.col("bars") >= 0).then(pl.col("bars")).otherwise(None).alias("bars"),
        pl.when(pl.col("gaps") >= 0).then(pl.col("gaps")).otherwise(None).alias("gaps"),
        *[pl.col(c).fill_nan(None) for c in floats],
    )
    f = f.join(ev, on="_event", how="left").sort("_event", "_symbol", "_window")
    f = f.with_columns((pl.col("ret").exp() - 1.0).alias("pct"))
    order = [
        "event_id", "indicator", "kind", "release_ts", "symbol", "window", "window_kind", "gap",
        "start_ts", "end_ts", "price_start", "price_end", "bars", "gaps", "ret", "pct", "low_ret", "high_ret",
        "expected", "car", "sd", "scar", "hawkish_z", *[c for c in PASSED_THROUGH if c in ev.columns],
        "rv", "rv_before", "volume", "volume_before", "n_est", "n_est_gap", "reason", "_row", "_event",
    ]
    return f.select(order)


def _group_ids(frame: pl.DataFrame, keys: list[str]) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    """The distinct key combinations in order of first appearance, each row's group, and
    each group's first row."""
    g = frame.select(pl.struct(keys).rank("dense").cast(pl.Int64) - 1).to_series().to_numpy()
    first = np.unique(g, return_index=True)[1]
    order = np.argsort(first, kind="stable")  # group numbers by first appearance
    remap = np.empty_like(order)
    remap[order] = np.arange(order.size)
    first_rows = np.sort(first)
    return frame[first_rows.tolist()].select(keys), remap[g], first_rows


_TEST_COLUMNS = ("mean_car", "median_car", "sd_car", "frac_positive", "t_cs", "p_cs", "patell_z", "p_patell",
                 "bmp_t", "p_bmp", "kp_rbar", "kp_t", "p_kp", "rank_z", "p_rank", "sign_z", "p_sign")


def event_tests(reactions: pl.DataFrame, blocks: np.ndarray, sign_blocks: np.ndarray, resid: dict, k_by_symbol: dict,
                rank_variance: str = "known") -> pl.DataFrame:
    """The cross-event tests per indicator × symbol × window × gap, raw and surprise-signed.
    ``blocks``/``sign_blocks`` are aligned with the rows of ``reactions``. ``_first``
    holds the ``_event`` of each group's first row (to order the groups of several
    symbols' tables as one table's: see :func:`merge_symbols`).

    Row-level pieces (standardized ranks, sign fractions, Patell terms) are computed for
    every row at once and summed per group with ``bincount``; only the Kolari–Pynnönen
    mean correlation is computed per distinct set of events.
    """
    has = reactions["car"].is_not_null().to_numpy()
    rows = np.flatnonzero(has)
    r = reactions.filter(pl.col("car").is_not_null())
    keys, g, first_rows = _group_ids(r, KEYS)
    n_groups = keys.height
    car = r["car"].to_numpy()
    scar = r["scar"].fill_null(np.nan).to_numpy()
    k = r["symbol"].replace_strict(k_by_symbol, return_dtype=pl.Int64).to_numpy()
    dof = r["n_est"].to_numpy().astype(np.float64) - k
    x = r["hawkish_z"].fill_null(np.nan).to_numpy()
    events = r["_event"].to_numpy()
    first_event = events[first_rows]
    bl = blocks[rows]
    sbl = bl if sign_blocks is blocks else sign_blocks[rows]
    corr_cache: dict = {}
    out = []
    for signed in (False, True):
        sgn = np.sign(x) if signed else np.ones(car.size)
        keep = np.isfinite(sgn) & (sgn != 0)
        sel = np.flatnonzero(keep)
        if signed:
            bls = bl[sel] * sgn[sel, None]
            sbls = bls if sbl is bl else sbl[sel] * sgn[sel, None]
        else:  # every sign is +1: the rows as they are, without copies
            bls, sbls = bl, sbl
        stats = _group_statistics(car[sel] * sgn[sel], scar[sel] * sgn[sel], dof[sel], bls, sbls, g[sel], n_groups)
        if rank_variance == "sample":
            stats["rank_z"] = np.array([
                ts.corrado_rank_z(car[sel][gi] * sgn[sel][gi], bl[sel][gi] * sgn[sel][gi, None], "sample") if gi.size else math.nan
                for gi in (np.flatnonzero(g[sel] == j) for j in range(n_groups))
            ])
        stats["kp_rbar"] = _kp_rbar(r, resid, events, sgn, keep, g, n_groups, signed, corr_cache)
        stats["kp_t"] = _kp_t(stats["bmp_t"], stats["kp_rbar"], stats["n"])
        df = stats["n"] - 1.0
        for t, p in (("t_cs", "p_cs"), ("bmp_t", "p_bmp"), ("kp_t", "p_kp")):
            stats[p] = np.where(np.isfinite(stats[t]) & (df > 0), 2.0 * _special.stdtr(np.maximum(df, 1), -np.abs(stats[t])), np.nan)
        for z, p in (("patell_z", "p_patell"), ("rank_z", "p_rank"), ("sign_z", "p_sign")):
            stats[p] = np.where(np.isfinite(stats[z]), 2.0 * _special.ndtr(-np.abs(stats[z])), np.nan)
        frame = keys.with_columns(
            pl.lit(signed).alias("signed"), pl.Series("n", stats["n"].astype(np.int64)),
            *[pl.Series(c, np.asarray(stats[c], dtype=np.float64)) for c in _TEST_COLUMNS],
            pl.Series("_g", np.arange(n_groups)), pl.Series("_first", first_event, dtype=pl.Int64),
        )
        out.append(frame.filter(pl.col("n") > 0))
    return (
        pl.concat(out).sort("_g", "signed").drop("_g")
        .select(*KEYS, "signed", "n", *_TEST_COLUMNS, "_first")
        .with_columns(pl.col(pl.Float64).fill_nan(None))
    )


@np.errstate(divide="ignore", invalid="ignore")  # an empty group's figures are NaN by design
def _group_statistics(c, sc, dof, bl, sbl, g, n_groups) -> dict:
    """Per group: moments of the CARs, the t, Patell, BMP, rank (known variance) and
    sign statistics — the formulas of :mod:`tests_stats`, summed with ``bincount``."""
    def total(w):
        return np.bincount(g, weights=w, minlength=n_groups)

    with np.errstate(divide="ignore", invalid="ignore"):
        n = np.bincount(g, minlength=n_groups).astype(np.float64)
        mean = total(c) / n
        sd = np.sqrt(total((c - mean[g]) ** 2) / (n - 1))
        t_cs = np.where((n >= 2) & (sd > 0), mean / (sd / np.sqrt(n)), np.nan)
        smean = total(sc) / n
        ssd = np.sqrt(total((sc - smean[g]) ** 2) / (n - 1))
        bmp = np.where((n >= 2) & (ssd > 0), smean / (ssd / np.sqrt(n)), np.nan)
        ok = dof > 2
        pat_den = total(np.where(ok, dof / (dof - 2.0), 0.0))
        patell = np.where(pat_den > 0, total(np.where(ok, sc, 0.0)) / np.sqrt(pat_den), np.nan)
        # Corrado: rank of the CAR among its own valid blocks (ties averaged)
        valid = np.isfinite(bl)
        m = valid.sum(axis=1)
        rank = 1.0 + np.sum(valid & (bl < c[:, None]), axis=1) + 0.5 * np.sum(valid & (bl == c[:, None]), axis=1)
        has = m > 0
        u = np.where(has, rank / (m + 2.0) - 0.5, 0.0)
        var = np.where(has, m / (12.0 * (m + 2.0)), 0.0)
        rank_var = total(var)
        rank_z = np.where(total(has.astype(float)) > 0, total(u) / np.sqrt(rank_var), np.nan)
        # Cowan: p-hat from the fraction of positive estimation values of each row
        svalid = np.isfinite(sbl)
        sm = svalid.sum(axis=1)
        shas = sm > 0
        frac = np.where(shas, np.sum(svalid & (sbl > 0), axis=1) / np.maximum(sm, 1), 0.0)
        ns = total(shas.astype(float))
        p = total(frac) / ns
        w = total((shas & (c > 0)).astype(float))
        sign_z = np.where((ns > 0) & (p > 0) & (p < 1), (w - ns * p) / np.sqrt(ns * p * (1.0 - p)), np.nan)
        frac_positive = total((c > 0).astype(float)) / n
    frame = pl.DataFrame({"g": g, "c": c}).group_by("g").agg(pl.col("c").median()).sort("g")
    median = np.full(n_groups, np.nan)
    median[frame["g"].to_numpy()] = frame["c"].to_numpy()
    return {
        "n": n, "mean_car": mean, "median_car": median, "sd_car": np.where(n > 1, sd, np.nan),
        "frac_positive": frac_positive, "t_cs": t_cs, "patell_z": patell, "bmp_t": bmp,
        "rank_z": rank_z, "sign_z": sign_z,
    }


def _kp_rbar(r: pl.DataFrame, resid: dict, events: np.ndarray, sgn: np.ndarray, keep: np.ndarray, g: np.ndarray,
             n_groups: int, signed: bool, corr_cache: dict) -> np.ndarray:
    """Kolari–Pynnönen's mean pairwise correlation of each group's events (sign-adjusted
    for the signed tests). Groups sharing their events share the computation; an
    indicator × symbol's events are standardized once (:class:`tests_stats.EventCorrelations`)."""
    ind = r["indicator"].to_numpy()
    sym = r["symbol"].to_numpy()
    out = np.full(n_groups, np.nan)
    done: dict = {}
    order = np.argsort(g, kind="stable")
    bounds = np.searchsorted(g[order], np.arange(n_groups + 1))
    for j in range(n_groups):
        idx = order[bounds[j]:bounds[j + 1]]
        idx = idx[keep[idx]]
        if idx.size < 2:
            continue
        key = (ind[idx[0]], sym[idx[0]])
        evs = events[idx]
        memo = (key, evs.tobytes(), signed)
        if memo not in done:
            if key not in corr_cache:
                all_events = np.unique(events[(ind == key[0]) & (sym == key[1])])
                corr_cache[key] = (all_events, ts.EventCorrelations(resid[key[1]][all_events]))
            all_events, corr = corr_cache[key]
            done[memo] = corr.mean(np.searchsorted(all_events, evs), sgn[idx])
        out[j] = done[memo]
    return out


def _kp_t(t_bmp: np.ndarray, rbar: np.ndarray, n: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        denom = 1.0 + (n - 1) * rbar
        good = np.isfinite(t_bmp) & np.isfinite(rbar) & (n >= 2) & (denom > 0) & (rbar < 1)
        return np.where(good, t_bmp * np.sqrt((1.0 - rbar) / denom), np.nan)


_SENS_SCHEMA = {
    "indicator": pl.String, "symbol": pl.String, "window": pl.String, "gap": pl.Boolean, "spec": pl.String, "n": pl.Int64,
    "slope": pl.Float64, "se_hc1": pl.Float64, "t_hc1": pl.Float64, "se_hc3": pl.Float64, "t_hc3": pl.Float64,
    "p": pl.Float64, "ci_low": pl.Float64, "ci_high": pl.Float64, "r2": pl.Float64, "intercept": pl.Float64,
}
# with the ordering columns of :func:`merge_symbols`
_SENS_ORDERED = {**_SENS_SCHEMA, "_joint": pl.Int32, "_first": pl.Int64}


def merge_symbols(parts: Sequence[tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]]
                  ) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """One symbol's ``(reactions, tests, sensitivity)`` at a time (the symbols in the
    study's order), as the tables of all symbols computed at once: the reactions sorted
    by event, symbol and window; the groups of tests and regressions in order of their
    first reaction in that sort. No group spans two symbols, so only the order needs
    merging: a group's first reaction is its first ``_event``, then its symbol, then (within
    one symbol, already in order) its window."""
    def tagged(frames):
        return pl.concat([f.with_columns(pl.lit(i, dtype=pl.Int32).alias("_sidx")) for i, f in enumerate(frames)])

    reactions = tagged([p[0] for p in parts]).sort("_event", "_sidx", maintain_order=True).drop("_sidx")
    tests = tagged([p[1] for p in parts]).sort("_first", "_sidx", maintain_order=True).drop("_first", "_sidx")
    sens = (tagged([p[2] for p in parts]).sort("_joint", "_first", "_sidx", maintain_order=True)
            .drop("_joint", "_first", "_sidx"))
    return reactions, tests, sens


def sensitivity(reactions: pl.DataFrame, cov: str) -> pl.DataFrame:
    """Single, asymmetric and joint regressions of the abnormal return on the surprise
    (every group's single and asymmetric fits in one batched computation), with the
    ordering columns ``_joint`` and ``_first`` of :func:`merge_symbols`."""
    r = reactions.filter(pl.col("car").is_not_null() & pl.col("hawkish_z").is_not_null() & pl.col("hawkish_z").is_finite())
    keys, g, first_rows = _group_ids(r, KEYS)
    keys = keys.with_columns(pl.Series("_first", r["_event"].to_numpy()[first_rows], dtype=pl.Int64))
    n_groups = keys.height
    y, z = r["car"].to_numpy(), r["hawkish_z"].to_numpy()
    ones = np.ones(y.size)
    frames = []
    single = ols_groups(np.column_stack([ones, z]), y, g, n_groups)
    frames.append(_spec_frame(keys, single, 1, "single", cov, single.ok))
    pos, neg = np.maximum(z, 0.0), np.minimum(z, 0.0)
    both = (np.bincount(g, weights=(pos != 0), minlength=n_groups) >= 2) & (np.bincount(g, weights=(neg != 0), minlength=n_groups) >= 2)
    asym = ols_groups(np.column_stack([ones, pos, neg]), y, g, n_groups)
    frames.append(_spec_frame(keys, asym, 1, "positive", cov, asym.ok & both))
    frames.append(_spec_frame(keys, asym, 2, "negative", cov, asym.ok & both))
    order = pl.concat(frames).sort("_g", "_s").drop("_g", "_s").with_columns(pl.lit(0, dtype=pl.Int32).alias("_joint"))
    joint = pl.DataFrame(_joint_rows(r, cov), schema=_SENS_ORDERED)
    return pl.concat([order.select(list(_SENS_ORDERED)), joint]).with_columns(pl.col(pl.Float64).fill_nan(None))


def _spec_frame(keys: pl.DataFrame, fit, j: int, spec: str, cov: str, ok: np.ndarray) -> pl.DataFrame:
    cols = fit.rows(j, cov)
    rank = {"single": 0, "positive": 1, "negative": 2}[spec]
    frame = keys.with_columns(
        pl.lit(spec).alias("spec"), pl.Series("n", cols["n"].astype(np.int64)),
        *[pl.Series(c, np.asarray(cols[c], dtype=np.float64)) for c in
          ("slope", "se_hc1", "t_hc1", "se_hc3", "t_hc3", "p", "ci_low", "ci_high", "r2")],
        pl.Series("intercept", fit.coef[:, 0]), pl.Series("_g", np.arange(keys.height)), pl.lit(rank).alias("_s"),
    )
    return frame.filter(pl.Series(ok))


def _joint_rows(r: pl.DataFrame, cov: str) -> list[dict]:
    """Andersen–Bollerslev–Diebold–Vega (2003) style: for each asset × window, regress the
    reaction at every release minute on the surprises of all indicators, zero for the
    indicators not released in that minute. Indicators with fewer than 3 release minutes
    are left out. One pivot serves every asset × window."""
    keys = ["symbol", "window", "gap"]
    wide = (
        r.with_columns(pl.col("release_ts").dt.truncate("1m").alias("_minute"))
        .group_by(*keys, "_minute", "indicator").agg(pl.col("hawkish_z").sum(), pl.col("car").first())
    )
    counts = wide.group_by(*keys, "indicator").len().filter(pl.col("len") >= 3)
    wide = wide.join(counts.select(*keys, "indicator"), on=[*keys, "indicator"], how="semi")
    if wide.height == 0:
        return []
    y = wide.group_by(*keys, "_minute").agg(pl.col("car").first())
    xw = wide.pivot(on="indicator", index=[*keys, "_minute"], values="hawkish_z").join(y, on=[*keys, "_minute"])
    parts = xw.sort("_minute").partition_by(keys, as_dict=True)
    inds_of: dict = {}
    for sym, win, gap, ind in counts.select(*keys, "indicator").iter_rows():
        inds_of.setdefault((sym, win, gap), []).append(ind)
    rows = []
    firsts = r.select(*keys, "_event").unique(subset=keys, keep="first", maintain_order=True)
    for *key_list, first in firsts.iter_rows():
        key = tuple(key_list)
        if key not in parts or len(inds_of.get(key, ())) < 2:
            continue
        part = parts[key]
        # An indicator whose surprises were all zero (e.g. every rate decision as expected)
        # carries no information and would make the design singular.
        cand = sorted(inds_of[key])
        xm = part.select([pl.col(i).fill_null(0.0) for i in cand]).to_numpy()
        informative = np.count_nonzero(xm, axis=0) >= 2
        inds = [i for i, keep in zip(cand, informative) if keep]
        if len(inds) < 2:
            continue
        x = np.column_stack([np.ones(part.height), xm[:, informative]])
        res = ols(x, part["car"].to_numpy())
        if res is None:
            continue
        sym, win, gap = key
        for j, ind in enumerate(inds, start=1):
            rows.append({"indicator": ind, "symbol": sym, "window": win, "gap": gap, "spec": "joint", **coef_row(res, j, cov),
                         "intercept": float(res.coef[0]), "_joint": 1, "_first": first})
    return rows


def paths_frame(parts: list, grid: np.ndarray, cal: pl.DataFrame, symbols: Sequence[str]) -> pl.DataFrame:
    x = cal["_x"].fill_null(np.nan).to_numpy()
    sign = np.sign(x)
    ind = cal["indicator"]
    frames = []
    for s_idx, mat in parts:
        n_ev, n_pt = mat.shape
        frames.append(
            pl.DataFrame(
                {
                    "indicator": np.repeat(ind.to_numpy(), n_pt),
                    "offset_us": np.tile(grid, n_ev),
                    "car": mat.reshape(-1),
                    "signed_car": (mat * np.where(sign != 0, sign, np.nan)[:, None]).reshape(-1),
                }
            ).with_columns(pl.lit(symbols[s_idx]).alias("symbol"))
        )
    f = pl.concat(frames).with_columns(pl.col("car").fill_nan(None), pl.col("signed_car").fill_nan(None))
    agg = f.group_by("indicator", "symbol", "offset_us").agg(
        pl.col("car").count().alias("n"),
        pl.col("car").mean().alias("mean_car"),
        (pl.col("car").std() / pl.col("car").count().sqrt()).alias("se"),
        pl.col("signed_car").count().alias("n_signed"),
        pl.col("signed_car").mean().alias("mean_signed_car"),
        (pl.col("signed_car").std() / pl.col("signed_car").count().sqrt()).alias("se_signed"),
    )
    counts = np.unique(np.concatenate([agg["n"].to_numpy(), agg["n_signed"].to_numpy()]))
    quantile = {int(c): ts.student_quantile(0.975, int(c) - 1) if c > 1 else None for c in counts}
    q = lambda n: pl.col(n).cast(pl.Int64).replace_strict(quantile, return_dtype=pl.Float64)  # noqa: E731
    agg = agg.with_columns(q("n").alias("_q"), q("n_signed").alias("_qs"))
    return (
        agg.with_columns(
            (pl.col("mean_car") - pl.col("_q") * pl.col("se")).alias("ci_low"),
            (pl.col("mean_car") + pl.col("_q") * pl.col("se")).alias("ci_high"),
            (pl.col("mean_signed_car") - pl.col("_qs") * pl.col("se_signed")).alias("ci_low_signed"),
            (pl.col("mean_signed_car") + pl.col("_qs") * pl.col("se_signed")).alias("ci_high_signed"),
            pl.duration(microseconds=pl.col("offset_us")).alias("offset"),
        )
        .sort("indicator", "symbol", "offset_us")
        .select("indicator", "symbol", "offset", "n", "mean_car", "se", "ci_low", "ci_high",
                "n_signed", "mean_signed_car", "se_signed", "ci_low_signed", "ci_high_signed")
    )


def drift_frame(tests: pl.DataFrame, sens: pl.DataFrame, wins: Sequence[Window]) -> pl.DataFrame:
    labels = [w.label for w in wins if w.kind == "drift"]
    t = tests.filter(~pl.col("signed") & pl.col("window").is_in(labels)).select(
        "indicator", "symbol", "window", "gap", "n", "mean_car", "median_car", "frac_positive", "t_cs", "p_cs", "bmp_t", "p_bmp"
    )
    s = sens.filter((pl.col("spec") == "single") & pl.col("window").is_in(labels)).select(
        "indicator", "symbol", "window", "gap",
        pl.col("slope").alias("anticipation_slope"), pl.col("t_hc3").alias("anticipation_t_hc3"),
        pl.col("n").alias("anticipation_n"),
    )
    return t.join(s, on=["indicator", "symbol", "window", "gap"], how="left", coalesce=True).drop("gap")


def volatility_frame(reactions: pl.DataFrame) -> pl.DataFrame:
    ok = reactions.filter(pl.col("rv").is_not_null() & pl.col("rv_before").is_not_null() & (pl.col("rv_before") > 0) & (pl.col("rv") > 0))
    lr = (pl.col("rv") / pl.col("rv_before")).log()
    lv = (pl.col("volume") / pl.col("volume_before")).log()
    ok = ok.with_columns(lr.alias("_lr"), pl.when((pl.col("volume") > 0) & (pl.col("volume_before") > 0)).then(lv).otherwise(None).alias("_lv"))
    tstat = lambda c: (pl.col(c).mean() / (pl.col(c).std() / pl.col(c).count().sqrt()))  # noqa: E731
    return ok.group_by(*KEYS, maintain_order=True).agg(
        pl.len().alias("n"),
        pl.col("rv").mean().alias("mean_rv"),
        pl.col("rv_before").mean().alias("mean_rv_before"),
        pl.col("_lr").mean().alias("mean_log_rv_ratio"),
        tstat("_lr").alias("t_log_rv_ratio"),
        pl.col("_lv").count().alias("n_volume"),
        pl.col("_lv").mean().alias("mean_log_volume_ratio"),
        tstat("_lv").alias("t_log_volume_ratio"),
    ).sort(*KEYS)
