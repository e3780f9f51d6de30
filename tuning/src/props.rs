//! Just enough of a Kafka properties file to find the log directories.

use std::path::{Path, PathBuf};

/// The broker's default data directory (`log.dir`'s default).
pub const DEFAULT_LOG_DIR: &str = "./sluice-data";

/// The value of `key` in properties text: `key=value` or `key: value` lines, `#` and `!`
/// comments; the last occurrence wins. Escapes and line continuations are not supported.
pub fn property(text: &str, key: &str) -> Option<String> {
    let mut found = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let Some(i) = line.find(['=', ':']) else {
            continue;
        };
        if line[..i].trim() == key {
            found = Some(line[i + 1..].trim().to_string());
        }
    }
    found
}

/// The log directories named in a properties file: `log.dirs` (comma-separated), else `log.dir`,
/// else [`DEFAULT_LOG_DIR`].
pub fn log_dirs_from_config(path: &Path) -> Result<Vec<PathBuf>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let (key, value) = match property(&text, "log.dirs") {
        Some(v) => ("log.dirs", v),
        None => match property(&text, "log.dir") {
            Some(v) => ("log.dir", v),
            None => return Ok(vec![PathBuf::from(DEFAULT_LOG_DIR)]),
        },
    };
    let dirs: Vec<PathBuf> = value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .collect();
    if dirs.is_empty() {
        return Err(format!("{}: {key} is empty", path.display()));
    }
    Ok(dirs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_keys() {
        let t = "# c\n! c\nlog.dir = /a\nlog.dirs=/b, /c ,\nlog.dirs.x=/z\nlisteners: PLAINTEXT://:9092\n";
        assert_eq!(property(t, "log.dirs").as_deref(), Some("/b, /c ,"));
        assert_eq!(property(t, "log.dir").as_deref(), Some("/a"));
        assert_eq!(
            property(t, "listeners").as_deref(),
            Some("PLAINTEXT://:9092")
        );
        assert_eq!(property(t, "nope"), None);
    }

    #[test]
    fn config_file_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("server.properties");
        std::fs::write(&p, "log.dir=/a\nlog.dirs=/b,/c\n").unwrap();
        assert_eq!(
            log_dirs_from_config(&p).unwrap(),
            vec![PathBuf::from("/b"), PathBuf::from("/c")]
        );
        std::fs::write(&p, "log.dir=/a\n").unwrap();
        assert_eq!(log_dirs_from_config(&p).unwrap(), vec![PathBuf::from("/a")]);
        std::fs::write(&p, "num.partitions=3\n").unwrap();
        assert_eq!(
            log_dirs_from_config(&p).unwrap(),
            vec![PathBuf::from(DEFAULT_LOG_DIR)]
        );
        std::fs::write(&p, "log.dirs= , \n").unwrap();
        assert!(log_dirs_from_config(&p)
            .unwrap_err()
            .contains("log.dirs is empty"));
        assert!(log_dirs_from_config(&dir.path().join("missing")).is_err());
    }
}
