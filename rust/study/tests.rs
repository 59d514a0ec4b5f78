use super::*;

fn brute_median(ts: &[i64]) -> Option<i64> {
    let mut d: Vec<i64> = ts.windows(2).map(|w| w[1] - w[0]).collect();
    if d.is_empty() {
        return None;
    }
    d.sort_unstable();
    let m = d.len();
    Some(((d[(m - 1) / 2] as f64 + d[m / 2] as f64) / 2.0) as i64)
}

#[test]
fn median_spacing_matches_sorting() {
    let mut seed = 12345u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for case in 0..400 {
        let n = (next() % 40) as usize;
        let mut t = 0i64;
        let mut ts = Vec::with_capacity(n);
        for _ in 0..n {
            // mostly one step, with holes of varying length (some cases have no majority)
            let r = next() % 10;
            t += if r < (case % 10) as u64 {
                60
            } else {
                60 * (1 + (next() % 5) as i64)
            };
            ts.push(t);
        }
        assert_eq!(
            median_spacing(&ts),
            brute_median(&ts),
            "case {case}: {ts:?}"
        );
    }
    assert_eq!(median_spacing(&[5]), None);
    assert_eq!(median_spacing(&[0, 3]), Some(3));
    assert_eq!(median_spacing(&[0, 1, 4]), Some(2)); // (1 + 3) / 2
    assert_eq!(median_spacing(&[0, 1, 3]), Some(1)); // 1.5 truncated
}

#[test]
fn series_sums_by_hand() {
    let ts = [0, 60, 120, 300, 360];
    let close = [100.0, 101.0, 99.0, 99.5, 102.0];
    let vol = [1.0, 2.0, 0.0, 4.0, 0.5];
    let (mut ct, mut lcs, mut sq, mut vc) = ([0i64; 5], [0.0; 5], [0.0; 5], [0.0; 5]);
    let out = SeriesOut {
        close_time: &mut ct,
        log_close: &mut lcs,
        sq_cum: &mut sq,
        volume_cum: Some(&mut vc),
    };
    let gaps = series_sums(&ts, &close, Some(&vol), 60, out);
    assert_eq!(ct, [60, 120, 180, 360, 420]);
    assert_eq!(gaps, vec![3]);
    let lc: Vec<f64> = close.iter().map(|c: &f64| c.ln()).collect();
    assert_eq!(lcs.to_vec(), lc);
    let mut acc = 0.0;
    for i in 0..5 {
        if i > 0 {
            acc += (lc[i] - lc[i - 1]).powi(2);
        }
        assert_eq!(sq[i], acc);
    }
    assert_eq!(vc, [1.0, 3.0, 3.0, 7.0, 7.5]);
    let mut cross = [0.0; 5];
    cross_cum(&lc, &lc, &mut cross);
    assert_eq!(cross, sq);
}

#[test]
fn check_symbol_names_the_first_bad_row() {
    let ts = [0, 60, 120, 180];
    let p = [1.0, 1.0, 1.0, 1.0];
    let cols = |volume| SymbolColumns {
        ts: &ts,
        open: &p,
        high: &p,
        low: &p,
        close: &p,
        volume,
    };
    assert!(check_symbol(cols(None)).is_ok());
    let bad = [0.0, 1.0, f64::NAN, -1.0];
    match check_symbol(cols(Some(&bad))) {
        Err(crate::engine::EngineError::InvalidInput { column, row, .. }) => {
            assert_eq!((column, row), ("volume", 2))
        }
        other => panic!("{other:?}"),
    }
    let late = [0, 60, 60, 180];
    let c = SymbolColumns {
        ts: &late,
        ..cols(None)
    };
    match check_symbol(c) {
        Err(crate::engine::EngineError::InvalidInput { column, row, .. }) => {
            assert_eq!((column, row), ("ts", 2))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn blocks_by_brute_force() {
    // returns 1..=40 of a made-up series; returns 9..12 and 25 are excluded
    let r: Vec<f64> = (0..41)
        .map(|i| ((i * 7919) % 101) as f64 / 1000.0)
        .collect();
    let m: Vec<f64> = (0..41)
        .map(|i| ((i * 104729) % 97) as f64 / 500.0)
        .collect();
    let (ex_a, ex_b) = (vec![9i64, 25], vec![13i64, 26]);
    let part = |base: &dyn Fn(i64) -> f64| -> Vec<f64> {
        let mut acc = vec![0.0];
        for k in 0..2 {
            let v = acc[k] + base(ex_b[k] - 1) - base(ex_a[k] - 1);
            acc.push(v);
        }
        acc
    };
    let ex_r = part(&|i| r[i as usize]);
    let ex_m = part(&|i| m[i as usize]);
    let ex_n = vec![0i64, 4, 5];
    let u = Usable {
        n: None,
        r: &r,
        m: Some(&m),
        ex_a: &ex_a,
        ex_b: &ex_b,
        ex_n: &ex_n,
        ex_r: &ex_r,
        ex_m: &ex_m,
    };
    let usable = |j: i64| !((9..13).contains(&j) || j == 25);
    let (hi, lo, alpha, beta) = (
        [40i64, 40, 40, 30],
        [2i64, 2, 20, 0],
        [0.01, 0.02, 0.0, 0.5],
        [0.3, -0.1, 1.0, 0.0],
    );
    let h = [3i64, 1, 4, 0];
    let nb = 12;
    let mut out = vec![0.0; 4 * nb];
    block_abnormal(
        &u,
        BlockRows {
            hi: &hi,
            lo: &lo,
            alpha: &alpha,
            beta: &beta,
            h: &h,
        },
        nb,
        &mut out,
    );
    for row in 0..4 {
        for j in 0..nb {
            let got = out[row * nb + j];
            let (top, hh) = (hi[row] - j as i64 * h[row], h[row]);
            let first = top - hh + 1;
            let want = if hh == 0 || first - 1 < lo[row] || !(first..=top).all(usable) {
                f64::NAN
            } else {
                let sr: f64 = (first..=top)
                    .map(|k| r[k as usize] - r[k as usize - 1])
                    .sum();
                let sm: f64 = (first..=top)
                    .map(|k| m[k as usize] - m[k as usize - 1])
                    .sum();
                sr - alpha[row] * hh as f64 - beta[row] * sm
            };
            assert!(
                (got.is_nan() && want.is_nan()) || (got - want).abs() < 1e-12,
                "row {row} block {j}: {got} vs {want}"
            );
        }
    }
}

#[test]
fn residuals_by_brute_force() {
    // log closes 0..=40 of a made-up series; returns 9..12 and 25 are excluded
    let lc: Vec<f64> = (0..41)
        .map(|i| ((i * 7919) % 101) as f64 / 1000.0)
        .collect();
    let ml: Vec<f64> = (0..41)
        .map(|i| ((i * 104729) % 97) as f64 / 500.0)
        .collect();
    let (ex_a, ex_b) = (vec![9i64, 25], vec![13i64, 26]);
    let zeros = vec![0.0; 3];
    let ex_n = vec![0i64, 4, 5];
    let u = Usable {
        n: None,
        r: &lc,
        m: None,
        ex_a: &ex_a,
        ex_b: &ex_b,
        ex_n: &ex_n,
        ex_r: &zeros,
        ex_m: &zeros,
    };
    let usable = |j: i64| j >= 1 && !((9..13).contains(&j) || j == 25);
    let (hi, lo, alpha, beta) = (
        [40i64, 30, 12, 5],
        [2i64, -1, 0, 3],
        [0.01, 0.02, 0.0, 0.5],
        [0.3, -0.1, 1.0, 0.0],
    );
    let bars = 16;
    let explicit: Vec<f64> = (0..41).map(|i| i as f64 / 100.0).collect();
    let markets = [
        MarketReturns::None,
        MarketReturns::LogCloses(&ml),
        MarketReturns::Returns(&explicit),
    ];
    for market in markets {
        let mut out = vec![0.0; 4 * bars];
        let rows = BlockRows {
            hi: &hi,
            lo: &lo,
            alpha: &alpha,
            beta: &beta,
            h: &[],
        };
        residuals(&u, &lc, market, rows, bars, &mut out);
        for row in 0..4 {
            for c in 0..bars {
                let j = hi[row] - (bars as i64 - 1 - c as i64);
                let got = out[row * bars + c];
                if j <= lo[row] || !usable(j) {
                    assert!(got.is_nan(), "row {row} col {c}: {got}");
                    continue;
                }
                let ju = j as usize;
                let m = match market {
                    MarketReturns::None => 0.0,
                    MarketReturns::LogCloses(x) => x[ju] - x[ju - 1],
                    MarketReturns::Returns(x) => x[ju],
                };
                let want = (lc[ju] - lc[ju - 1]) - alpha[row] - beta[row] * m;
                assert_eq!(got.to_bits(), want.to_bits(), "row {row} col {c}");
            }
        }
    }
}
