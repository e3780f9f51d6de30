//! [`HostView`]: every read and write of `/proc` and `/sys` goes through here, under a root prefix.
//!
//! The real host is the root `/`; tests point the root at a temporary directory holding a fake
//! tree, so each check can be exercised on missing files, garbage and every status.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Why a host file could not be used. The path shown is the host path (`/proc/...`), not the
/// prefixed one, so messages read the same on a fake root.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The file does not exist (common in containers, VMs and older kernels).
    #[error("{path} does not exist")]
    Missing {
        /// The host path.
        path: String,
    },
    /// Reading or writing failed for another reason (permissions, not UTF-8, EINVAL on write, …).
    #[error("{path}: {source}")]
    Io {
        /// The host path.
        path: String,
        /// The underlying error.
        source: io::Error,
    },
    /// The file exists but is empty.
    #[error("{path} is empty")]
    Empty {
        /// The host path.
        path: String,
    },
    /// The file holds something other than what was expected.
    #[error("{path} holds {content:?}, expected {expected}")]
    Garbage {
        /// The host path.
        path: String,
        /// What it holds (shortened).
        content: String,
        /// What was expected, in words.
        expected: &'static str,
    },
}

/// A view of the host's `/proc` and `/sys` (and `/proc/self/...`) under a root prefix.
#[derive(Debug, Clone)]
pub struct HostView {
    root: PathBuf,
}

impl HostView {
    /// The real host: root `/`.
    pub fn real() -> Self {
        Self {
            root: PathBuf::from("/"),
        }
    }

    /// A view with `root` prefixed to every host path (a fake tree for tests).
    pub fn with_root(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The root prefix.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether this is the real host (root `/`), where the process's own limits and the real
    /// file system can also be consulted.
    pub fn is_real(&self) -> bool {
        self.root == Path::new("/")
    }

    /// The file-system path of host path `host_path` (e.g. `/proc/sys/vm/swappiness`).
    pub fn path(&self, host_path: &str) -> PathBuf {
        self.root.join(host_path.trim_start_matches('/'))
    }

    /// Whether `host_path` exists.
    pub fn exists(&self, host_path: &str) -> bool {
        self.path(host_path).exists()
    }

    /// The whole content of `host_path`.
    pub fn read(&self, host_path: &str) -> Result<String, HostError> {
        std::fs::read_to_string(self.path(host_path)).map_err(|e| io_error(host_path, e))
    }

    /// The trimmed content of `host_path`; an error if it is empty.
    pub fn read_value(&self, host_path: &str) -> Result<String, HostError> {
        let s = self.read(host_path)?;
        let t = s.trim();
        if t.is_empty() {
            return Err(HostError::Empty {
                path: host_path.to_string(),
            });
        }
        Ok(t.to_string())
    }

    /// The content of `host_path` as one unsigned integer.
    pub fn read_u64(&self, host_path: &str) -> Result<u64, HostError> {
        let s = self.read_value(host_path)?;
        s.parse()
            .map_err(|_| garbage(host_path, &s, "an unsigned integer"))
    }

    /// Replace the content of the existing file `host_path` with `value` (never creates files).
    pub fn write(&self, host_path: &str, value: &str) -> Result<(), HostError> {
        let mut f = OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(self.path(host_path))
            .map_err(|e| io_error(host_path, e))?;
        f.write_all(value.as_bytes())
            .map_err(|e| io_error(host_path, e))
    }

    /// The names in directory `host_path`, sorted.
    pub fn list_dir(&self, host_path: &str) -> Result<Vec<String>, HostError> {
        let rd = std::fs::read_dir(self.path(host_path)).map_err(|e| io_error(host_path, e))?;
        let mut names: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        Ok(names)
    }
}

fn io_error(path: &str, e: io::Error) -> HostError {
    if e.kind() == io::ErrorKind::NotFound {
        HostError::Missing {
            path: path.to_string(),
        }
    } else {
        HostError::Io {
            path: path.to_string(),
            source: e,
        }
    }
}

/// A [`HostError::Garbage`] for `path` holding `content`, shortened for display.
pub fn garbage(path: &str, content: &str, expected: &'static str) -> HostError {
    let mut short: String = content.chars().take(40).collect();
    if content.chars().count() > 40 {
        short.push('…');
    }
    HostError::Garbage {
        path: path.to_string(),
        content: short,
        expected,
    }
}
