//! Errors of the generator: where in which .defs file, and what went wrong.

use std::fmt;

/// A position in a source file, as named by the preprocessor's line markers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Position {
    pub file: String,
    pub line: u32,
    pub column: u32,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// Why a .defs file could not be turned into Rust.
#[derive(Debug, PartialEq, Eq)]
pub enum Error {
    /// The preprocessor could not be run, or rejected the file.
    Preprocess(String),
    /// The file does not follow the MIG language, or uses it inconsistently.
    Syntax { at: Position, message: String },
}

impl Error {
    pub(crate) fn at(at: &Position, message: impl Into<String>) -> Error {
        Error::Syntax { at: at.clone(), message: message.into() }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Preprocess(message) => write!(f, "preprocessing failed: {message}"),
            Error::Syntax { at, message } => write!(f, "{at}: {message}"),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;
