use crate::engine::{Bars, EngineError, EngineResult};

/// One symbol's bar columns, rows sorted by open time `ts` (µs since the epoch).
#[derive(Debug, Clone, Copy)]
pub struct SymbolColumns<'a> {
    pub ts: &'a [i64],
    pub open: &'a [f64],
    pub high: &'a [f64],
    pub low: &'a [f64],
    pub close: &'a [f64],
    pub volume: Option<&'a [f64]>,
}

/// Checks one symbol's bars: strictly increasing `ts`, finite positive prices with
/// `low <= open, close <= high`, and (when present) finite non-negative volume. The
/// error names the first bad row of the slice.
pub fn check_symbol(cols: SymbolColumns<'_>) -> EngineResult<()> {
    let offsets = [0, cols.ts.len()];
    Bars {
        ts: cols.ts,
        open: cols.open,
        high: cols.high,
        low: cols.low,
        close: cols.close,
        offsets: &offsets,
    }
    .validate()?;
    if let Some(volume) = cols.volume {
        if volume.len() != cols.ts.len() {
            return Err(EngineError::bars(
                "volume",
                volume.len().min(cols.ts.len()),
                format!(
                    "length {} differs from ts length {}",
                    volume.len(),
                    cols.ts.len()
                ),
            ));
        }
        // branch-free scan first; the rows are walked again only to name the bad one
        let ok = volume
            .iter()
            .fold(true, |ok, &v| ok & (v >= 0.0) & (v < f64::INFINITY));
        if !ok {
            let row = volume
                .iter()
                .position(|&v| !(v >= 0.0 && v < f64::INFINITY))
                .unwrap_or(0);
            return Err(EngineError::bars(
                "volume",
                row,
                "volume is NaN, infinite or negative",
            ));
        }
    }
    Ok(())
}

/// The median spacing of consecutive open times, as `int(np.median(np.diff(ts)))`:
/// the mean of the two middle spacings for an even count, truncated. `None` for
/// fewer than two bars.
///
/// Bars are nearly always evenly spaced, so a majority vote finds the median in two
/// passes without sorting; otherwise the spacings are selected in O(n).
pub fn median_spacing(ts: &[i64]) -> Option<i64> {
    let m = ts.len().checked_sub(1).filter(|&m| m > 0)?;
    let (k_lo, k_hi) = ((m - 1) / 2, m / 2);
    let mut cand = 0i64;
    let mut votes = 0usize;
    for w in ts.windows(2) {
        let d = w[1] - w[0];
        if votes == 0 {
            cand = d;
            votes = 1;
        } else if d == cand {
            votes += 1;
        } else {
            votes -= 1;
        }
    }
    let (mut below, mut equal) = (0usize, 0usize);
    for w in ts.windows(2) {
        let d = w[1] - w[0];
        below += usize::from(d < cand);
        equal += usize::from(d == cand);
    }
    let (a, b) = if below <= k_lo && k_hi < below + equal {
        (cand, cand)
    } else {
        let mut d: Vec<i64> = ts.windows(2).map(|w| w[1] - w[0]).collect();
        let (left, &mut hi, _) = d.select_nth_unstable(k_hi);
        let lo = if k_lo == k_hi {
            hi
        } else {
            left.iter().copied().max().unwrap_or(hi)
        };
        (lo, hi)
    };
    Some(((a as f64 + b as f64) / 2.0) as i64)
}

/// The per-bar arrays of one symbol, written into buffers the caller owns (NumPy
/// allocates them with transparent huge pages; a fresh `Vec` would fault in every
/// 4 KiB page of these tens of megabytes).
#[derive(Debug)]
pub struct SeriesOut<'a> {
    /// `ts + bar_us`: when each bar's close is the price.
    pub close_time: &'a mut [i64],
    /// `ln(close)`.
    pub log_close: &'a mut [f64],
    /// `sq_cum[i] = r_1² + … + r_i²` with `r_j = log_close[j] − log_close[j−1]`.
    pub sq_cum: &'a mut [f64],
    /// `volume_cum[i] = volume[0] + … + volume[i]` (when there is a volume column).
    pub volume_cum: Option<&'a mut [f64]>,
}

/// One pass over a symbol's bars (checked by [`check_symbol`]) filling its
/// [`SeriesOut`]; returns the rows `j` whose open time is more than one bar after the
/// previous one's: their return `r_j` spans a gap. Every slice is read and written up
/// to the shortest length.
pub fn series_sums(
    ts: &[i64],
    close: &[f64],
    volume: Option<&[f64]>,
    bar_us: i64,
    out: SeriesOut<'_>,
) -> Vec<i64> {
    let n = ts
        .len()
        .min(close.len())
        .min(out.close_time.len())
        .min(out.log_close.len())
        .min(out.sq_cum.len());
    let mut gap_idx = Vec::new();
    let (mut acc, mut prev) = (0.0f64, 0.0f64);
    for i in 0..n {
        let lc = close[i].ln();
        if i > 0 {
            let r = lc - prev;
            acc += r * r;
            if ts[i] - ts[i - 1] > bar_us {
                gap_idx.push(i as i64);
            }
        }
        out.close_time[i] = ts[i] + bar_us;
        out.log_close[i] = lc;
        out.sq_cum[i] = acc;
        prev = lc;
    }
    if let (Some(v), Some(cum)) = (volume, out.volume_cum) {
        let mut acc = 0.0f64;
        for (o, &x) in cum.iter_mut().zip(v) {
            acc += x;
            *o = acc;
        }
    }
    gap_idx
}

/// Prefix sums of the products of two series' one-bar differences on a shared bar
/// grid: `out[i] = Σ_{j=1..i} (a[j] − a[j−1]) (b[j] − b[j−1])`, `out[0] = 0`.
pub fn cross_cum(a: &[f64], b: &[f64], out: &mut [f64]) {
    let n = a.len().min(b.len()).min(out.len());
    let mut acc = 0.0f64;
    for i in 0..n {
        if i > 0 {
            acc += (a[i] - a[i - 1]) * (b[i] - b[i - 1]);
        }
        out[i] = acc;
    }
}
