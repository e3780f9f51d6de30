//! The filesystem under each log directory: its type and its mount options.
//!
//! The mount holding a directory is the mount in `/proc/self/mountinfo` (or `/proc/mounts` when
//! that is missing) whose mount point is the longest path prefix of the directory; a directory
//! that does not exist yet is judged by its nearest existing ancestor.

use super::Check;
use crate::host::{garbage, HostError, HostView};
use crate::report::{Finding, Fix, Status};
use std::path::{Component, Path, PathBuf};

/// One mounted filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Where it is mounted.
    pub mount_point: String,
    /// Filesystem type (`xfs`, `ext4`, `tmpfs`, …).
    pub fstype: String,
    /// The device or source.
    pub source: String,
    /// Per-mount options (`rw,noatime`).
    pub options: Vec<String>,
}

/// Undo the octal escapes (`\040` for a space) the kernel uses in mount tables.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parse `/proc/self/mountinfo`; lines that do not parse are skipped.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    let mut mounts = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // id parent maj:min root mount_point options [optional...] - fstype source super_options
        let Some(sep) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        if sep < 6 || fields.len() < sep + 3 {
            continue;
        }
        mounts.push(Mount {
            mount_point: unescape(fields[4]),
            fstype: fields[sep + 1].to_string(),
            source: unescape(fields[sep + 2]),
            options: fields[5].split(',').map(str::to_string).collect(),
        });
    }
    mounts
}

/// Parse `/proc/mounts` (fstab format); lines that do not parse are skipped.
pub fn parse_mounts(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            (f.len() >= 4).then(|| Mount {
                mount_point: unescape(f[1]),
                fstype: f[2].to_string(),
                source: unescape(f[0]),
                options: f[3].split(',').map(str::to_string).collect(),
            })
        })
        .collect()
}

/// The host's mount table: `/proc/self/mountinfo`, else `/proc/mounts`.
pub fn mounts(host: &HostView) -> Result<Vec<Mount>, HostError> {
    let (path, parsed) = match host.read("/proc/self/mountinfo") {
        Ok(t) => ("/proc/self/mountinfo", parse_mountinfo(&t)),
        Err(first) => match host.read("/proc/mounts") {
            Ok(t) => ("/proc/mounts", parse_mounts(&t)),
            Err(_) => return Err(first),
        },
    };
    if parsed.is_empty() {
        return Err(garbage(path, "", "at least one mount line"));
    }
    Ok(parsed)
}

/// Make `dir` absolute (from the current directory) and remove `.` and `..` lexically. On the
/// real host, symbolic links in the part that exists are resolved too.
pub fn resolve_dir(host: &HostView, dir: &Path) -> PathBuf {
    let abs = if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        std::env::current_dir()
            .unwrap_or_else(|_| PathBuf::from("/"))
            .join(dir)
    };
    let mut norm = PathBuf::from("/");
    for c in abs.components() {
        match c {
            Component::ParentDir => {
                norm.pop();
            }
            Component::Normal(n) => norm.push(n),
            _ => {}
        }
    }
    if !host.is_real() {
        return norm;
    }
    // Canonicalize the longest existing ancestor, keep the rest as written.
    let mut existing = norm.clone();
    let mut rest = Vec::new();
    loop {
        if let Ok(c) = existing.canonicalize() {
            let mut out = c;
            for r in rest.iter().rev() {
                out.push(r);
            }
            return out;
        }
        match (
            existing.file_name().map(|n| n.to_os_string()),
            existing.parent(),
        ) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent.to_path_buf();
            }
            _ => return norm,
        }
    }
}

/// The mount holding `path` (absolute, normalized): the longest mount point that is a prefix of
/// it; of mounts stacked on the same point, the last (topmost).
pub fn mount_for<'a>(mounts: &'a [Mount], path: &Path) -> Option<&'a Mount> {
    let mut best: Option<&Mount> = None;
    for m in mounts {
        let depth = |m: &Mount| Path::new(&m.mount_point).components().count();
        if path.starts_with(Path::new(&m.mount_point))
            && !matches!(best, Some(b) if depth(m) < depth(b))
        {
            best = Some(m);
        }
    }
    best
}

/// Find the mount under `dir`, or the reason it cannot be found.
fn lookup(host: &HostView, dir: &Path) -> Result<(PathBuf, Mount), String> {
    let resolved = resolve_dir(host, dir);
    let table = mounts(host).map_err(|e| e.to_string())?;
    match mount_for(&table, &resolved) {
        Some(m) => Ok((resolved, m.clone())),
        None => Err(format!(
            "no mount in the mount table holds {}",
            resolved.display()
        )),
    }
}

/// The filesystem type under one log directory.
#[derive(Debug, Clone)]
pub struct FsType {
    /// The log directory, as configured.
    pub dir: PathBuf,
}

impl FsType {
    /// The check for `dir`.
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }
}

const FS_WHY: &str = "XFS handles large sequential appends and concurrent writers across shards best, and \
    allocates files in large extents; ext4 is a sound second choice. Memory-backed filesystems lose \
    every acknowledged record on reboot or power loss";

impl Check for FsType {
    fn evaluate(&self, host: &HostView) -> Finding {
        let setting = format!("filesystem {}", self.dir.display());
        let recommended = "xfs (ext4 acceptable)";
        let (_, m) = match lookup(host, &self.dir) {
            Ok(x) => x,
            Err(reason) => return Finding::unknown(setting, recommended, reason, FS_WHY),
        };
        let current = format!("{} ({} on {})", m.fstype, m.source, m.mount_point);
        let (status, note) = match m.fstype.as_str() {
            "xfs" => (Status::Ok, ""),
            "ext4" => (Status::Ok, "Ext4: acceptable, XFS preferred. "),
            "tmpfs" | "ramfs" => (Status::Fail, "Memory-backed: NOT durable. "),
            _ => (Status::Warn, "Not xfs or ext4: untested with Sluice; fsync durability and extent allocation vary. "),
        };
        Finding::new(setting, current, recommended, format!("{note}{FS_WHY}"), status).with_fix(Fix::Manual {
            how: format!(
                "put {} on an XFS filesystem (mkfs.xfs, mount it, add it to /etc/fstab) and move the data; \
                 needs the broker stopped",
                self.dir.display()
            ),
        })
    }
}

/// The atime mount options under one log directory.
#[derive(Debug, Clone)]
pub struct MountOptions {
    /// The log directory, as configured.
    pub dir: PathBuf,
}

impl MountOptions {
    /// The check for `dir`.
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }
}

const MOUNT_WHY: &str = "Every fetch reads segment files; with atime updates each read may also write \
    inode metadata. noatime removes those writes; relatime limits them to about once a day per file";

impl Check for MountOptions {
    fn evaluate(&self, host: &HostView) -> Finding {
        let setting = format!("mount options {}", self.dir.display());
        let recommended = "noatime";
        let (_, m) = match lookup(host, &self.dir) {
            Ok(x) => x,
            Err(reason) => return Finding::unknown(setting, recommended, reason, MOUNT_WHY),
        };
        let has = |o: &str| m.options.iter().any(|x| x == o);
        let (status, note) = if has("noatime") {
            (Status::Ok, "")
        } else if has("relatime") {
            (Status::Warn, "Relatime: acceptable. ")
        } else {
            (Status::Warn, "Atime is updated on every read. ")
        };
        Finding::new(setting, m.options.join(","), recommended, format!("{note}{MOUNT_WHY}"), status).with_fix(
            Fix::Manual {
                how: format!(
                    "add noatime to the options of {mp} in /etc/fstab (takes effect at the next mount; \
                     `mount -o remount,noatime {mp}` applies it now)",
                    mp = m.mount_point
                ),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mountinfo_with_optional_fields_and_escapes() {
        let t = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n\
                 40 22 8:2 / /my\\040data rw,noatime shared:5 master:2 - xfs /dev/sdb1 rw,attr2\n\
                 garbage line\n";
        let m = parse_mountinfo(t);
        assert_eq!(m.len(), 2);
        assert_eq!(m[1].mount_point, "/my data");
        assert_eq!(m[1].fstype, "xfs");
        assert_eq!(m[1].options, vec!["rw", "noatime"]);
    }

    #[test]
    fn longest_prefix_on_component_boundary_wins() {
        let t = "1 0 0:1 / / rw - ext4 a rw\n2 1 0:2 / /data rw - xfs b rw\n3 1 0:3 / /dat rw - tmpfs c rw\n";
        let m = parse_mountinfo(t);
        assert_eq!(
            mount_for(&m, Path::new("/data/sluice")).unwrap().fstype,
            "xfs"
        );
        assert_eq!(
            mount_for(&m, Path::new("/database")).unwrap().fstype,
            "ext4"
        );
        assert_eq!(mount_for(&m, Path::new("/dat")).unwrap().fstype, "tmpfs");
    }

    #[test]
    fn stacked_mounts_take_the_top_one() {
        let t =
            "1 0 0:1 / / rw - ext4 a rw\n2 1 0:2 / /d rw - ext4 b rw\n3 2 0:3 / /d rw - xfs c rw\n";
        assert_eq!(
            mount_for(&parse_mountinfo(t), Path::new("/d/x"))
                .unwrap()
                .source,
            "c"
        );
    }

    #[test]
    fn proc_mounts_fallback_format() {
        let m = parse_mounts("/dev/sda1 / ext4 rw,noatime 0 0\n");
        assert_eq!(m[0].fstype, "ext4");
        assert_eq!(m[0].options, vec!["rw", "noatime"]);
    }

    #[test]
    fn unescape_handles_trailing_backslash() {
        assert_eq!(unescape("a\\"), "a\\");
        assert_eq!(unescape("a\\04"), "a\\04");
        assert_eq!(unescape("\\134x"), "\\x");
    }
}
