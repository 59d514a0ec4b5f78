use std::fmt;

/// Every way a simulation can refuse to run. The binding maps each variant to one
/// Python exception class (see `rust/python/mod.rs`); nothing here panics.
#[derive(Debug, Clone, PartialEq)]
pub enum EngineError {
    /// A value in an input table is invalid. `row` is the position in the arrays
    /// handed to the engine.
    InvalidInput {
        table: Table,
        column: &'static str,
        row: usize,
        message: String,
    },
    /// A configuration value is out of range.
    InvalidConfig {
        field: &'static str,
        message: String,
    },
    /// An invariant of the engine broke: a bug, reported instead of a panic.
    Internal(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Bars,
    Orders,
}

impl Table {
    pub fn name(self) -> &'static str {
        match self {
            Table::Bars => "bars",
            Table::Orders => "orders",
        }
    }
}

impl EngineError {
    pub fn bars(column: &'static str, row: usize, message: impl Into<String>) -> Self {
        EngineError::InvalidInput {
            table: Table::Bars,
            column,
            row,
            message: message.into(),
        }
    }
    pub fn orders(column: &'static str, row: usize, message: impl Into<String>) -> Self {
        EngineError::InvalidInput {
            table: Table::Orders,
            column,
            row,
            message: message.into(),
        }
    }
    pub fn config(field: &'static str, message: impl Into<String>) -> Self {
        EngineError::InvalidConfig {
            field,
            message: message.into(),
        }
    }
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::InvalidInput {
                table,
                column,
                row,
                message,
            } => {
                write!(
                    f,
                    "{}: {message} (column {column:?}, row {row})",
                    table.name()
                )
            }
            EngineError::InvalidConfig { field, message } => {
                write!(f, "config {field:?}: {message}")
            }
            EngineError::Internal(msg) => write!(f, "internal engine error: {msg}"),
        }
    }
}

impl std::error::Error for EngineError {}

pub type EngineResult<T> = Result<T, EngineError>;
