//! `simulate_many_stats_daily`: a sweep's figures plus each variant's daily
//! returns, for the overfitting statistics (`aftershock.research`), and their
//! layout, which `simulate_signals_many(daily=True)` shares. Kept apart from the
//! other sweep functions; it reuses their batch and column helpers.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use super::{
    stats_columns, sweep_rows, to_pyerr, ArrowTable, Column, ColumnData, Progress, SweepArgs,
};
use crate::engine::{EngineError, Stats};

/// Runs like `simulate_many_stats` and also returns the daily returns: one float
/// buffer of jobs x days (job-major, read with `np.frombuffer`), every job's
/// close-of-day returns from the first bar's day to the last bar's, and the number
/// of days per job.
#[pyfunction]
#[pyo3(signature = (bars, offsets, orders, configs, threads, trusted, day, periods_per_year, progress=None, conventions=None))]
#[allow(clippy::too_many_arguments)]
pub(super) fn simulate_many_stats_daily<'py>(
    py: Python<'py>,
    bars: &Bound<'py, PyAny>,
    offsets: &Bound<'py, PyAny>,
    orders: &Bound<'py, PyList>,
    configs: &Bound<'py, PyList>,
    threads: usize,
    trusted: bool,
    day: i64,
    periods_per_year: f64,
    progress: Option<&Bound<'py, Progress>>,
    conventions: Option<&Bound<'py, PyDict>>,
) -> PyResult<(Bound<'py, ArrowTable>, Bound<'py, Column>, usize)> {
    let args = SweepArgs {
        bars,
        offsets,
        orders,
        configs,
        threads,
        trusted,
        day,
        periods_per_year,
        progress,
        conventions,
    };
    let runs = sweep_rows(py, args)?;
    daily_columns(py, runs)
}

/// The figures as a table, and the daily returns as one job-major float buffer with
/// the number of days per job.
pub(super) fn daily_columns<'py>(
    py: Python<'py>,
    runs: Vec<(Stats, Vec<f64>)>,
) -> PyResult<(Bound<'py, ArrowTable>, Bound<'py, Column>, usize)> {
    let days = runs.first().map_or(0, |(_, d)| d.len());
    let mut flat = Vec::with_capacity(days * runs.len());
    let mut stats: Vec<Stats> = Vec::with_capacity(runs.len());
    for (s, d) in runs {
        if d.len() != days {
            let msg = format!("a run has {} daily returns, the first {days}", d.len());
            return Err(to_pyerr(py, EngineError::Internal(msg)));
        }
        flat.extend_from_slice(&d);
        stats.push(s);
    }
    let table = stats_columns(py, &stats)?;
    let column = Column {
        data: ColumnData::Float(flat),
    };
    Ok((table, Bound::new(py, column)?, days))
}
