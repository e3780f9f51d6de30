//! The crate-wide error type for operations on files.

use std::io;
use std::path::{Path, PathBuf};

/// An error of the storage layer that is not about a single produce or fetch request:
/// I/O on a named file, or a file whose contents cannot be understood.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// An I/O operation on `path` failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory operated on.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A text file (checkpoint) has a line that cannot be parsed.
    #[error("malformed file {path}, line {line}: {reason}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// An operation on a log was given an offset it cannot take (a negative truncation
    /// offset).
    #[error("{operation}: invalid offset {offset}")]
    InvalidOffset {
        /// The operation.
        operation: &'static str,
        /// The offset given.
        offset: i64,
    },
    /// A record batch stored in a segment could not be decoded.
    #[error("cannot decode the record batch at position {position} of {path}: {reason}")]
    Decode {
        /// The segment file.
        path: PathBuf,
        /// Byte position of the batch in the file.
        position: u64,
        /// Decoder message.
        reason: String,
    },
}

/// Attaches a path to `io::Result`s, turning them into [`StorageError::Io`].
pub(crate) trait IoContext<T> {
    /// Maps the error to [`StorageError::Io`] naming `path`.
    fn at(self, path: &Path) -> Result<T, StorageError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: &Path) -> Result<T, StorageError> {
        self.map_err(|source| StorageError::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}
