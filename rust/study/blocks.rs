//! Abnormal returns of estimation-window blocks for the rank and sign tests.

/// Sums over the *usable* bar returns (not excluded, not a gap return) of any index
/// range, as `PreparedSeries` in `event_study/models.py` keeps them: `base` prefix
/// sums over all returns (up to a constant) minus the sums of the excluded index
/// ranges `[ex_a[k], ex_b[k])`, whose running totals are `ex_*[k]` (`ex_*[0] = 0`).
#[derive(Debug, Clone, Copy)]
pub struct Usable<'a> {
    /// Count of usable returns `1..=i`; `None`: every return is counted (`i` itself).
    pub n: Option<&'a [i64]>,
    /// Prefix sums of the returns (the log closes).
    pub r: &'a [f64],
    /// Prefix sums of the benchmark's returns; `None`: no benchmark (every sum is 0).
    pub m: Option<&'a [f64]>,
    pub ex_a: &'a [i64],
    pub ex_b: &'a [i64],
    pub ex_n: &'a [i64],
    pub ex_r: &'a [f64],
    pub ex_m: &'a [f64],
}

/// One row per reaction: its event's estimation window `(lo, hi]` (bar indices),
/// fitted `alpha`/`beta`, and the window's length `h` in bars.
#[derive(Debug, Clone, Copy)]
pub struct BlockRows<'a> {
    pub hi: &'a [i64],
    pub lo: &'a [i64],
    pub alpha: &'a [f64],
    pub beta: &'a [f64],
    pub h: &'a [i64],
}

impl Usable<'_> {
    fn at<T: Copy>(a: &[T], i: i64) -> T {
        a[usize::try_from(i).unwrap_or(usize::MAX)]
    }

    /// `(count, Σ r, Σ m)` over the usable returns `1..=idx`, with the arithmetic of
    /// `PreparedSeries.cums_at`.
    fn cums(&self, idx: i64) -> (i64, f64, f64) {
        let base_n = |i: i64| self.n.map_or(i, |n| Self::at(n, i));
        let base_m = |i: i64| self.m.map_or(0.0, |m| Self::at(m, i));
        let (bn, br, bm) = (base_n(idx), Self::at(self.r, idx), base_m(idx));
        if self.ex_a.is_empty() {
            return (bn, br, bm);
        }
        let k = self.ex_a.partition_point(|&a| a <= idx);
        let km = k.saturating_sub(1);
        if k > 0 && idx < self.ex_b[km] {
            let start = self.ex_a[km] - 1;
            let en = self.ex_n[km] + bn - base_n(start);
            let er = self.ex_r[km] + br - Self::at(self.r, start);
            let em = self.ex_m[km] + bm - base_m(start);
            (bn - en, br - er, bm - em)
        } else {
            (bn - self.ex_n[k], br - self.ex_r[k], bm - self.ex_m[k])
        }
    }
}

/// For each row, the abnormal returns of the non-overlapping `h`-bar blocks of its
/// estimation window counted back from `hi` (block `j` spans returns
/// `(hi − (j+1)h, hi − jh]`), written to `out[row * max_blocks + j]`: NaN where the
/// block would start before `lo`, holds an unusable return, or `h = 0`.
///
/// Panics on an index outside the arrays (the binding turns that into an error).
pub fn block_abnormal(u: &Usable<'_>, rows: BlockRows<'_>, max_blocks: usize, out: &mut [f64]) {
    out.fill(f64::NAN);
    for (row, dst) in out
        .chunks_mut(max_blocks.max(1))
        .enumerate()
        .take(rows.h.len())
    {
        let (h, hi, lo) = (rows.h[row], rows.hi[row], rows.lo[row]);
        if h <= 0 || max_blocks == 0 || hi < lo {
            continue;
        }
        let (alpha, beta) = (rows.alpha[row], rows.beta[row]);
        let hf = h as f64;
        let mut upper = u.cums(hi);
        for (j, slot) in dst.iter_mut().enumerate() {
            let bound = hi - (j as i64 + 1) * h;
            if bound < lo {
                break;
            }
            let lower = u.cums(bound);
            if upper.0 - lower.0 == h {
                *slot = (upper.1 - lower.1) - alpha * hf - beta * (upper.2 - lower.2);
            }
            upper = lower;
        }
    }
}

/// The benchmark's return over each of the asset's bar returns, as
/// `PreparedSeries.m_at` gives it.
#[derive(Debug, Clone, Copy)]
pub enum MarketReturns<'a> {
    /// No benchmark: every market return is 0.
    None,
    /// The benchmark's log closes on the asset's bar grid: `m_j = m_log[j] − m_log[j−1]`.
    LogCloses(&'a [f64]),
    /// The market return of each of the asset's returns, explicitly.
    Returns(&'a [f64]),
}

impl Usable<'_> {
    /// Whether return `idx` is usable (`PreparedSeries.usable_at`); `k` is the number
    /// of excluded ranges starting at or before `idx`, kept by the caller as `idx`
    /// grows.
    fn usable_at(&self, idx: i64, k: &mut usize) -> bool {
        if idx < 1 {
            return false;
        }
        if let Some(n) = self.n {
            return Self::at(n, idx) - Self::at(n, idx - 1) == 1;
        }
        while *k < self.ex_a.len() && self.ex_a[*k] <= idx {
            *k += 1;
        }
        !(*k > 0 && idx < self.ex_b[*k - 1])
    }
}

/// For each row, the residuals `r_j − alpha − beta·m_j` of the last `bars` returns of
/// its estimation window `(lo, hi]` (column `c` holds return `hi − (bars − 1 − c)`,
/// oldest first), with `r_j = log_close[j] − log_close[j−1]`: the arithmetic of
/// `residual_matrix` in `event_study/models.py`. NaN where `j <= lo` or the return is
/// unusable. `out` is rows × `bars`.
///
/// Panics on an index outside the arrays (the binding turns that into an error).
pub fn residuals(
    u: &Usable<'_>,
    log_close: &[f64],
    market: MarketReturns<'_>,
    rows: BlockRows<'_>,
    bars: usize,
    out: &mut [f64],
) {
    let at = |a: &[f64], i: i64| a[usize::try_from(i).unwrap_or(usize::MAX)];
    let prev = |i: i64| (i - 1).max(0);
    for (row, dst) in out.chunks_mut(bars.max(1)).enumerate().take(rows.hi.len()) {
        let (hi, lo, alpha, beta) = (rows.hi[row], rows.lo[row], rows.alpha[row], rows.beta[row]);
        let first = hi - (bars as i64 - 1);
        let mut k = 0usize;
        if u.n.is_none() {
            k = u.ex_a.partition_point(|&a| a < first);
        }
        for (c, slot) in dst.iter_mut().enumerate() {
            let j = first + c as i64;
            *slot = if j > lo && u.usable_at(j, &mut k) {
                let r = at(log_close, j) - at(log_close, prev(j));
                let m = match market {
                    MarketReturns::None => 0.0,
                    MarketReturns::LogCloses(ml) => at(ml, j) - at(ml, prev(j)),
                    MarketReturns::Returns(mr) => at(mr, j),
                };
                r - alpha - beta * m
            } else {
                f64::NAN
            };
        }
    }
}
