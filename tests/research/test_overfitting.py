"""The deflated Sharpe ratio and the CSCV probability of backtest overfitting: the DSR
paper's numerical example, noise simulations (PBO near 0.5, DSR at chance), a
straightforward loop-over-splits CSCV as the reference, and the engine's daily returns."""

from __future__ import annotations

import itertools
import math
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import aftershock as ash
from aftershock.research import deflated_sharpe_ratio, expected_max_sharpe, overfitting, pbo, probabilistic_sharpe_ratio

STRATEGIES = Path(__file__).resolve().parents[2] / "strategies"
if str(STRATEGIES) not in sys.path:
    sys.path.insert(0, str(STRATEGIES))


# ----------------------------------------------------------------- the DSR paper


def test_deflated_sharpe_paper_numerical_example():
    """Bailey & López de Prado (2014), numerical example: the best of N = 100 trials has
    an annualized Sharpe ratio of 2.5 over T = 1250 daily returns (250 a year), the
    trials' annualized Sharpe ratios have variance 1/2, the returns skewness -3 and
    kurtosis 10. The paper finds SR0 = 0.1132 (per day) and DSR = 0.9004."""
    sr = 2.5 / math.sqrt(250)
    var = 0.5 / 250
    assert expected_max_sharpe(100, var) == pytest.approx(0.1132, abs=5e-5)
    assert deflated_sharpe_ratio(sr, 100, var, 1250, -3.0, 10.0) == pytest.approx(0.9004, abs=5e-5)


def test_expected_max_sharpe_matches_the_mean_maximum_of_normals():
    """The closed form approximates E[max of N standard normals] for N >> 1 (the paper's
    setting; at N = 10 it is 3% high): a large simulation agrees within 1.5% for N = 100
    and 1000 (one trial: 0)."""
    rng = np.random.default_rng(7)
    for n in (100, 1000):
        draws = rng.standard_normal((4000, n)).max(axis=1)
        assert expected_max_sharpe(n, 1.0) == pytest.approx(draws.mean(), rel=0.015)
    assert expected_max_sharpe(1, 4.0) == 0.0
    assert expected_max_sharpe(100, 4.0) == pytest.approx(2 * expected_max_sharpe(100, 1.0))


def test_probabilistic_sharpe_of_a_normal_sample_is_its_sharpe_z_score():
    """Zero skew, kurtosis 3: PSR(0) = Phi(SR sqrt(T-1) / sqrt(1 + SR^2 / 2))."""
    sr, t = 0.08, 500
    assert probabilistic_sharpe_ratio(sr, 0.0, t) == pytest.approx(
        stats.norm.cdf(sr * math.sqrt(t - 1) / math.sqrt(1 + sr**2 / 2)), rel=1e-12)


def test_deflated_sharpe_of_pure_noise_is_at_chance():
    """600 experiments, each the best of 40 noise strategies over 250 days: the deflated
    Sharpe ratio of the winner is a coin flip (mean near 1/2) and rarely passes 0.95
    (it is conservative under the null: the best of 40 varies less than one Sharpe
    estimate does), while the undeflated PSR(0) of the same winners calls most of
    them skilful."""
    rng = np.random.default_rng(11)
    r = rng.standard_normal((600, 250, 40)) * 0.01
    sr = r.mean(axis=1) / r.std(axis=1, ddof=1)
    best = sr.argmax(axis=1)
    chosen = np.take_along_axis(r, best[:, None, None], axis=2)[:, :, 0]
    top = sr.max(axis=1)
    dsr = deflated_sharpe_ratio(top, 40, sr.var(axis=1, ddof=1), 250, stats.skew(chosen, axis=1),
                                stats.kurtosis(chosen, axis=1, fisher=False))
    assert np.mean(dsr > 0.95) <= 0.05
    assert 0.4 < dsr.mean() < 0.6
    assert np.mean(probabilistic_sharpe_ratio(top, 0.0, 250) > 0.95) > 0.5
    # overfitting() on one experiment gives the same figure as the formula above
    of = overfitting(r[0], splits=8)
    assert of.best == best[0]
    assert of.deflated_sharpe == pytest.approx(dsr[0], rel=1e-9)


# ----------------------------------------------------------------- CSCV


def reference_pbo(m: np.ndarray, s: int) -> np.ndarray:
    """CSCV written out: every split, Sharpe ratios of the concatenated rows with
    np.std, ranks by scipy.stats.rankdata, logits; one loop iteration per split."""
    t, n = m.shape
    size = t // s
    blocks = np.split(m[t - size * s:], s)
    out = []
    for chosen in itertools.combinations(range(s), s // 2):
        ins = np.concatenate([blocks[i] for i in chosen])
        oos = np.concatenate([blocks[i] for i in range(s) if i not in chosen])

        def sharpe(x):
            sd = x.std(axis=0, ddof=1)
            return np.where(sd > 1e-12, x.mean(axis=0) / np.where(sd > 0, sd, 1), 0.0)

        best = int(np.argmax(sharpe(ins)))
        rank = stats.rankdata(sharpe(oos))[best]
        w = rank / (n + 1)
        out.append(math.log(w / (1 - w)))
    return np.array(out)


def test_pbo_equals_the_split_by_split_reference():
    rng = np.random.default_rng(3)
    m = rng.standard_normal((203, 12)) * 0.01 + np.linspace(-0.002, 0.002, 12)
    m[:, 4] = 0.0  # a flat variant (never trades)
    m[:, 7] = m[:, 2]  # two identical variants (rank ties)
    for s in (2, 4, 8, 10):
        got = pbo(m, s)
        want = reference_pbo(m, s)
        np.testing.assert_allclose(got.logits, want, rtol=1e-9, atol=1e-12)
        assert got.pbo == np.mean(want <= 0)
        assert got.combinations == math.comb(s, s // 2)
        assert got.periods_used == (203 // s) * s
    # chunking does not change the answer
    np.testing.assert_array_equal(pbo(m, 8, chunk=7).logits, pbo(m, 8).logits)


def test_pbo_of_pure_noise_is_near_one_half():
    rng = np.random.default_rng(5)
    values = [pbo(rng.standard_normal((320, 30)), 8).pbo for _ in range(60)]
    assert 0.42 < np.mean(values) < 0.58


def test_pbo_of_a_real_edge_is_near_zero():
    rng = np.random.default_rng(9)
    m = rng.standard_normal((480, 30)) * 0.01
    m[:, 17] += 0.004  # one variant with a persistent edge
    got = pbo(m, 16)
    assert got.pbo < 0.05
    assert np.mean(got.best == 17) > 0.95


def test_pbo_is_one_when_in_sample_winners_reverse():
    """S = 2: variant n earns +n per period in the first half and -n in the second, so
    the in-sample best is the out-of-sample worst in both splits."""
    n = np.arange(1, 9, dtype=float)
    noise = np.random.default_rng(1).standard_normal((40, 8)) * 1e-3
    m = np.vstack([np.tile(n, (20, 1)), -np.tile(n, (20, 1))]) * 1e-3 + noise
    got = pbo(m, 2)
    assert got.pbo == 1.0
    assert np.all(got.logits < 0)


def test_bad_inputs_name_the_column():
    with pytest.raises(ash.InputError, match="NaN") as e:
        pbo(np.array([[0.0, np.nan]] * 8), 2)
    assert e.value.column == "returns" and e.value.row == 0
    with pytest.raises(ash.ConfigError) as c:
        pbo(np.zeros((16, 3)), 3)
    assert c.value.column == "splits"
    with pytest.raises(ash.InputError, match="2 variants"):
        pbo(np.zeros((16, 1)), 2)


# ----------------------------------------------------------------- from the engine


@pytest.fixture(scope="module")
def cpi_sweep():
    from cpi_fade import CpiFade

    data = ash.datasets.sample()
    grid = {"threshold": [0.25, 0.5, 1.0], "hold": ["15m", "1h", "4h"], "stop_loss": [0.01, 0.03]}
    return ash.Sweep(data.bars, CpiFade, grid, calendar=data.calendar, fees=0.0004, latency="2s")


def test_daily_returns_are_the_ones_each_variant_is_scored_on(cpi_sweep):
    """Every column of the engine's matrix is the close-of-day return series of that
    variant's full backtest (computed here from its equity rows with Polars), and the
    frame next to it is ``run()``'s, bit for bit."""
    table, returns = cpi_sweep.run_daily()
    assert table.equals(cpi_sweep.run())
    days = cpi_sweep.days()
    assert returns.shape == (days.len(), len(cpi_sweep))
    for i in (0, 5, 11, 17):
        result = cpi_sweep.result(i)
        eq = result.equity.group_by(pl.col("ts").dt.date().alias("day"), maintain_order=True).agg(pl.col("equity").last())
        daily = pl.DataFrame({"day": days}).join(eq, on="day", how="left").select(pl.col("equity").forward_fill())
        closes = np.concatenate([[result.config["init_cash"]], daily["equity"].to_numpy()])
        np.testing.assert_allclose(returns[:, i], np.diff(closes) / closes[:-1], rtol=0, atol=1e-15)
        sharpe = result.stats()["sharpe"]
        if sharpe is not None:
            assert returns[:, i].mean() / returns[:, i].std(ddof=1) * math.sqrt(365) == pytest.approx(sharpe, rel=1e-12)


def test_sweep_overfitting_summary(cpi_sweep, tmp_path):
    of = cpi_sweep.overfitting(splits=8)
    table, returns = cpi_sweep.run_daily()
    direct = overfitting(returns, splits=8)
    assert of.to_dict() == direct.to_dict()
    assert 0.0 <= of.pbo <= 1.0 and 0.0 <= of.deflated_sharpe <= 1.0
    sharpe = table["sharpe"].fill_null(0.0).to_numpy()
    assert of.best == int(np.argmax(sharpe))
    assert of.to_dict()["best_sharpe_annualized"] == pytest.approx(sharpe.max(), rel=1e-9)
    assert of.frame().height == len(of.to_dict())
    path = cpi_sweep.report(str(tmp_path / "sweep.html"), splits=8)
    text = Path(path).read_text()
    assert "deflated Sharpe ratio" in text and "PBO (CSCV)" in text and 'id="overfitting"' in text


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 12), s=st.sampled_from([2, 4, 6, 8]),
       scale=st.floats(1e-3, 1e3))
def test_pbo_ignores_variant_order_and_return_scale(seed, n, s, scale):
    """CSCV ranks Sharpe ratios: shuffling the variants or scaling every return by the
    same positive factor changes no logit (continuous returns: no ties)."""
    rng = np.random.default_rng(seed)
    m = rng.standard_normal((8 * s + 3, n)) * 0.01
    base = pbo(m, s)
    perm = rng.permutation(n)
    shuffled = pbo(m[:, perm], s)
    np.testing.assert_allclose(shuffled.logits, base.logits, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(perm[shuffled.best], base.best)
    np.testing.assert_allclose(pbo(m * scale, s).logits, base.logits, rtol=1e-9, atol=1e-9)
