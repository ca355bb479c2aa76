//! The one error type of the storage engine.

use std::path::PathBuf;

/// Everything that can go wrong inside the storage engine.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// An I/O operation on a file of the data directory failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory the operation touched.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A batch handed to `append` failed validation; nothing of it was stored.
    #[error("invalid batch: series #{series_index}: {reason}")]
    InvalidBatch {
        /// Position of the offending series inside the batch.
        series_index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A label matcher could not be built (for example a bad regular expression).
    #[error("invalid matcher for label {name:?}: {reason}")]
    InvalidMatcher {
        /// The label name of the matcher.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A file on disk does not have the expected format or its checksum is wrong.
    #[error("corrupt data in {path}: {reason}")]
    Corrupt {
        /// The file that is corrupt.
        path: PathBuf,
        /// What was found to be wrong.
        reason: String,
    },
    /// A chunk could not be decoded.
    #[error("corrupt chunk: {0}")]
    CorruptChunk(String),
    /// Another process has the data directory open.
    #[error("data directory {0} is locked by another process")]
    Locked(PathBuf),
    /// The options passed to `Storage::open` are not usable.
    #[error("invalid storage options: {0}")]
    InvalidOptions(String),
}

impl StorageError {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StorageError::Io {
            path: path.into(),
            source,
        }
    }

    /// Builds a [`StorageError::Corrupt`].
    pub fn corrupt(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        StorageError::Corrupt {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

/// Result alias used throughout the storage engine.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;
