//! Event-sparse order simulation: see docs/engine.md for the contract.
