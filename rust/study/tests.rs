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
    let s = series_sums(&ts, &close, Some(&vol), 60);
    assert_eq!(s.close_time, vec![60, 120, 180, 360, 420]);
    assert_eq!(s.gap_idx, vec![3]);
    let lc: Vec<f64> = close.iter().map(|c: &f64| c.ln()).collect();
    assert_eq!(s.log_close, lc);
    let mut acc = 0.0;
    for i in 0..5 {
        if i > 0 {
            acc += (lc[i] - lc[i - 1]).powi(2);
        }
        assert_eq!(s.sq_cum[i], acc);
    }
    assert_eq!(s.volume_cum, Some(vec![1.0, 3.0, 3.0, 7.0, 7.5]));
    assert_eq!(cross_cum(&lc, &lc), s.sq_cum);
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
