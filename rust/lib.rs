//! aftershock's order-simulation core.
//!
//! `engine` is pure Rust and knows nothing about Python; `python` is the one
//! binding module (compiled only with the `python` feature, which maturin enables).

pub mod engine;
pub mod study;

#[cfg(feature = "python")]
mod python;
