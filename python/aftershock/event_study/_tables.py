"""The study's result frames, built from the per-symbol arrays."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import polars as pl

from aftershock.event_study import tests_stats as ts
from aftershock.event_study._inputs import Settings
from aftershock.event_study.regression import coef_row, ols
from aftershock.event_study.returns import REASONS
from aftershock.event_study.windows import Window

__all__ = ["reactions_frame", "event_tests", "sensitivity", "paths_frame", "drift_frame", "volatility_frame"]

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


def _groups(frame: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    return frame.group_by(keys, maintain_order=True).agg(pl.col("_row"), pl.col("_event"))


def event_tests(reactions: pl.DataFrame, blocks: np.ndarray, sign_blocks: np.ndarray, resid: dict, k_by_symbol: dict,
                rank_variance: str = "known") -> pl.DataFrame:
    """The cross-event tests per indicator × symbol × window × gap, raw and surprise-signed.
    ``blocks``/``sign_blocks`` are aligned with the rows of ``reactions``."""
    r = reactions.filter(pl.col("car").is_not_null())
    car = reactions["car"].fill_null(np.nan).to_numpy()
    scar = reactions["scar"].fill_null(np.nan).to_numpy()
    n_est = reactions["n_est"].to_numpy()
    x = reactions["hawkish_z"].fill_null(np.nan).to_numpy()
    corr_cache: dict[tuple, tuple] = {}
    ind_events = {
        ind: np.asarray(evs, dtype=np.int64)
        for ind, evs in reactions.group_by("indicator").agg(pl.col("_event").unique().sort()).iter_rows()
    }
    rows = []
    for g in _groups(r, KEYS).iter_rows(named=True):
        idx = np.asarray(g["_row"], dtype=np.int64)
        events = np.asarray(g["_event"], dtype=np.int64)
        for signed in (False, True):
            if signed:
                sign = np.sign(x[idx])
                keep = np.isfinite(sign) & (sign != 0)
                sel, sgn, evs = idx[keep], sign[keep], events[keep]
            else:
                sel, sgn, evs = idx, np.ones(idx.size), events
            n = sel.size
            if n == 0:
                continue
            c, sc, bl, sbl = car[sel] * sgn, scar[sel] * sgn, blocks[sel] * sgn[:, None], sign_blocks[sel] * sgn[:, None]
            key = (g["indicator"], g["symbol"])
            if key not in corr_cache:
                all_events = ind_events[g["indicator"]]
                corr_cache[key] = (all_events, ts.pairwise_correlation(resid[g["symbol"]][all_events]))
            all_events, corr = corr_cache[key]
            pos = np.searchsorted(all_events, evs)
            rbar = ts.mean_offdiagonal(corr[np.ix_(pos, pos)] * np.outer(sgn, sgn))
            t_cs = ts.cross_sectional_t(c)
            z_pat = ts.patell_z(sc, n_est[sel], k_by_symbol[g["symbol"]])
            t_bmp = ts.bmp_t(sc)
            t_kp = ts.kp_adjust(t_bmp, rbar, n)
            z_rank = ts.corrado_rank_z(c, bl, rank_variance)
            z_sign = ts.generalized_sign_z(c, sbl)
            rows.append(
                {
                    "indicator": g["indicator"], "symbol": g["symbol"], "window": g["window"], "gap": g["gap"], "signed": signed,
                    "n": n, "mean_car": float(c.mean()), "median_car": float(np.median(c)),
                    "sd_car": float(c.std(ddof=1)) if n > 1 else math.nan, "frac_positive": float(np.mean(c > 0)),
                    "t_cs": t_cs, "p_cs": ts.student_p(t_cs, n - 1),
                    "patell_z": z_pat, "p_patell": ts.normal_p(z_pat),
                    "bmp_t": t_bmp, "p_bmp": ts.student_p(t_bmp, n - 1),
                    "kp_rbar": rbar, "kp_t": t_kp, "p_kp": ts.student_p(t_kp, n - 1),
                    "rank_z": z_rank, "p_rank": ts.normal_p(z_rank),
                    "sign_z": z_sign, "p_sign": ts.normal_p(z_sign),
                }
            )
    schema = {
        "indicator": pl.String, "symbol": pl.String, "window": pl.String, "gap": pl.Boolean, "signed": pl.Boolean, "n": pl.Int64,
        **{c: pl.Float64 for c in ("mean_car", "median_car", "sd_car", "frac_positive", "t_cs", "p_cs", "patell_z", "p_patell",
                                   "bmp_t", "p_bmp", "kp_rbar", "kp_t", "p_kp", "rank_z", "p_rank", "sign_z", "p_sign")},
    }
    return pl.DataFrame(rows, schema=schema).with_columns(pl.col(pl.Float64).fill_nan(None))


_SENS_SCHEMA = {
    "indicator": pl.String, "symbol": pl.String, "window": pl.String, "gap": pl.Boolean, "spec": pl.String, "n": pl.Int64,
    "slope": pl.Float64, "se_hc1": pl.Float64, "t_hc1": pl.Float64, "se_hc3": pl.Float64, "t_hc3": pl.Float64,
    "p": pl.Float64, "ci_low": pl.Float64, "ci_high": pl.Float64, "r2": pl.Float64, "intercept": pl.Float64,
}


def sensitivity(reactions: pl.DataFrame, cov: str) -> pl.DataFrame:
    """Single, asymmetric and joint regressions of the abnormal return on the surprise."""
    r = reactions.filter(pl.col("car").is_not_null() & pl.col("hawkish_z").is_not_null() & pl.col("hawkish_z").is_finite())
    car = reactions["car"].fill_null(np.nan).to_numpy()
    x = reactions["hawkish_z"].fill_null(np.nan).to_numpy()
    rows = []
    for g in _groups(r, KEYS).iter_rows(named=True):
        idx = np.asarray(g["_row"], dtype=np.int64)
        y, z = car[idx], x[idx]
        base = {"indicator": g["indicator"], "symbol": g["symbol"], "window": g["window"], "gap": g["gap"]}
        res = ols(np.column_stack([np.ones(idx.size), z]), y)
        if res is not None:
            rows.append({**base, "spec": "single", **coef_row(res, 1, cov), "intercept": float(res.coef[0])})
        pos, neg = np.maximum(z, 0.0), np.minimum(z, 0.0)
        if np.count_nonzero(pos) >= 2 and np.count_nonzero(neg) >= 2:
            res = ols(np.column_stack([np.ones(idx.size), pos, neg]), y)
            if res is not None:
                rows.append({**base, "spec": "positive", **coef_row(res, 1, cov), "intercept": float(res.coef[0])})
                rows.append({**base, "spec": "negative", **coef_row(res, 2, cov), "intercept": float(res.coef[0])})
    rows += _joint_rows(r, cov)
    return pl.DataFrame(rows, schema=_SENS_SCHEMA).with_columns(pl.col(pl.Float64).fill_nan(None))


def _joint_rows(r: pl.DataFrame, cov: str) -> list[dict]:
    """Andersen–Bollerslev–Diebold–Vega (2003) style: for each asset × window, regress the
    reaction at every release minute on the surprises of all indicators, zero for the
    indicators not released in that minute."""
    rows = []
    minute = pl.col("release_ts").dt.truncate("1m")
    for (sym, win, gap), part in r.group_by(["symbol", "window", "gap"], maintain_order=True):
        wide = (
            part.with_columns(minute.alias("_minute"))
            .group_by("_minute", "indicator").agg(pl.col("hawkish_z").sum(), pl.col("car").first())
        )
        counts = wide.group_by("indicator").len().filter(pl.col("len") >= 3)
        inds = sorted(counts["indicator"].to_list())
        if len(inds) < 2:
            continue
        wide = wide.filter(pl.col("indicator").is_in(inds))
        y_frame = wide.group_by("_minute").agg(pl.col("car").first()).sort("_minute")
        xw = wide.pivot(on="indicator", index="_minute", values="hawkish_z").sort("_minute").fill_null(0.0)
        # An indicator whose surprises were all zero (e.g. every rate decision as expected)
        # carries no information and would make the design singular.
        inds = [i for i in inds if i in xw.columns and np.count_nonzero(xw[i].to_numpy()) >= 2]
        if len(inds) < 2:
            continue
        x = np.column_stack([np.ones(xw.height)] + [xw[i].to_numpy() for i in inds])
        res = ols(x, y_frame["car"].to_numpy())
        if res is None:
            continue
        for j, ind in enumerate(inds, start=1):
            rows.append({"indicator": ind, "symbol": sym, "window": win, "gap": gap, "spec": "joint", **coef_row(res, j, cov),
                         "intercept": float(res.coef[0])})
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
