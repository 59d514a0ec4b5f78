//! The event study's passes over bars: pure Rust, nothing here knows about Python.
//!
//! One symbol at a time, the study needs its bars checked, its bar length, and a few
//! per-bar arrays from which every window and estimation sum is a difference of two
//! entries (see `python/aftershock/event_study/returns.py`). Each function here is one
//! sequential pass in bar order, with the arithmetic of the NumPy code it replaces
//! (`np.log`, `np.diff`, `np.cumsum`), so the sums agree with it to rounding.

mod blocks;
mod series;

#[cfg(test)]
mod tests;

pub use blocks::{block_abnormal, residuals, BlockRows, MarketReturns, Usable};
pub use series::{check_symbol, cross_cum, median_spacing, series_sums, SeriesOut, SymbolColumns};
