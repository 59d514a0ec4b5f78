//! Several symbols in one signal backtest: vectorbt's `group_by=True` with or
//! without `cash_sharing`, at its default call sequence (columns in order).
//!
//! Each column is a `Walk` of its own (position, debt, stops, ledger, valuation
//! price); per bar, the columns run one after the other in column order, and the
//! ones that share cash hand it on: the cash, free cash, fills and trades are moved
//! into a column's walk for its turn and taken back after it. Within a bar vectorbt
//! computes every column's signals and stops from that column's own state before
//! any order, and none of them reads the cash, so running the columns in turn gives
//! its orders. Bars where no column has a signal or an armed stop that fires are
//! skipped together.

use super::*;

/// One group backtest over columns that share their timestamps: fills and trades
/// of every column (symbol code `codes[k]` for column `k`), in the order they
/// happened, and one equity (the sum over the columns) when `keep_equity`.
/// With `cash_sharing`, the columns draw on one `init_cash`; without it, each
/// column has `init_cash` of its own.
pub fn simulate_signal_group(
    inputs: &[SignalInput<'_>],
    codes: &[usize],
    cfg: &SignalConfig,
    cash_sharing: bool,
    keep_equity: bool,
) -> EngineResult<Output> {
    let Some(first) = inputs.first() else {
        return Err(EngineError::config("columns", "no column to simulate"));
    };
    if codes.len() != inputs.len() {
        return Err(EngineError::config(
            "columns",
            format!("{} symbol codes for {} columns", codes.len(), inputs.len()),
        ));
    }
    if cash_sharing && inputs.len() > 1 && cfg.size_type == SignalSize::PercentEquity {
        return Err(EngineError::config(
            "size_type",
            "'percent_equity' is one symbol's equity: it does not go with shared cash",
        ));
    }
    let ts = first.ts;
    for (k, inp) in inputs.iter().enumerate() {
        inp.validate_shape()?;
        check_input(inp, cfg)?;
        if let Some(row) = (0..ts.len().max(inp.ts.len())).find(|&r| ts.get(r) != inp.ts.get(r)) {
            return Err(EngineError::bars(
                "ts",
                row,
                format!("column {k} does not share the first column's timestamps"),
            ));
        }
    }
    let bars: Vec<Vec<usize>> = inputs.iter().map(signal_bars).collect();
    let mut sinks = vec![(); inputs.len()];
    let mut walks: Vec<Walk<'_, ()>> = inputs
        .iter()
        .zip(&bars)
        .zip(sinks.iter_mut())
        .zip(codes)
        .map(|(((inp, b), sink), &code)| Walk::new(*inp, cfg, b, None, sink, code))
        .collect();
    let mut g = Group {
        cash: cfg.init_cash,
        free_cash: cfg.init_cash,
        sharing: cash_sharing,
        fills: Vec::new(),
        trades: Vec::new(),
        equity: Vec::new(),
        keep_equity,
    };
    g.run(&mut walks)?;
    for w in &walks {
        g.trades.extend(w.open_trade());
    }
    Ok(Output {
        fills: g.fills,
        trades: g.trades,
        equity: g.equity,
        orders: Vec::new(),
        bars_visited: ts.len() as u64,
    })
}

/// What the columns of a group hold in common.
struct Group {
    /// The shared cash (with `sharing`).
    cash: f64,
    free_cash: f64,
    sharing: bool,
    fills: Vec<Fill>,
    trades: Vec<Trade>,
    equity: Vec<EquityRow>,
    keep_equity: bool,
}

impl Group {
    fn run(&mut self, walks: &mut [Walk<'_, ()>]) -> EngineResult<()> {
        let n = walks[0].inp.ts.len();
        let mut pending: Vec<Option<(Flags, Accumulate)>> = vec![None; walks.len()];
        let mut cursors = vec![0usize; walks.len()];
        let mut i = 0;
        while i < n {
            if i > 0 && pending.iter().all(Option::is_none) {
                let mut until = n - 1;
                for (w, cursor) in walks.iter().zip(cursors.iter_mut()) {
                    until = until.min(w.next_signal_bar(i, cursor));
                }
                if until > i {
                    // the first bar any column's stop fires on, found without moving
                    // the trailing references; then every column walks up to it
                    let mut end = until;
                    for w in walks.iter_mut() {
                        let saved = w.stops;
                        if w.acct.position != 0.0 {
                            end = w.first_stop_bar(i, end);
                        }
                        w.stops = saved;
                    }
                    for w in walks.iter_mut() {
                        w.quiet(i, end);
                    }
                    if self.keep_equity {
                        for k in i..end {
                            self.row(walks, k, false);
                        }
                    }
                    i = end;
                }
            }
            let fills_before = self.fills.len();
            for (w, p) in walks.iter_mut().zip(pending.iter_mut()) {
                self.lend(w);
                let done = w.bar(i, p);
                self.take_back(w);
                done?;
            }
            if self.keep_equity {
                let always = self.fills.len() > fills_before || i == 0 || i + 1 == n;
                self.row(walks, i, always);
            }
            i += 1;
        }
        Ok(())
    }

    /// Hands the shared state to a column for its turn.
    fn lend(&mut self, w: &mut Walk<'_, ()>) {
        if self.sharing {
            w.acct.cash = self.cash;
            w.acct.free_cash = self.free_cash;
        }
        std::mem::swap(&mut w.fills, &mut self.fills);
        std::mem::swap(&mut w.trades, &mut self.trades);
    }

    fn take_back(&mut self, w: &mut Walk<'_, ()>) {
        if self.sharing {
            self.cash = w.acct.cash;
            self.free_cash = w.acct.free_cash;
        }
        std::mem::swap(&mut w.fills, &mut self.fills);
        std::mem::swap(&mut w.trades, &mut self.trades);
    }

    /// The group's equity row at bar `i` (when a column holds a position, or `always`).
    fn row(&mut self, walks: &[Walk<'_, ()>], i: usize, always: bool) {
        let held = walks.iter().any(|w| w.acct.position != 0.0);
        if !(held || always) {
            return;
        }
        let mut cash = if self.sharing { self.cash } else { 0.0 };
        let (mut value, mut gross) = (0.0, 0.0);
        for w in walks {
            if !self.sharing {
                cash += w.acct.cash;
            }
            let (q, c) = (w.acct.position, w.inp.close[i]);
            if q != 0.0 {
                value += q * c;
                gross += q.abs() * c;
            }
        }
        self.equity.push(EquityRow {
            ts: walks[0].inp.ts[i],
            cash,
            equity: cash + value,
            gross_exposure: gross,
        });
    }
}
