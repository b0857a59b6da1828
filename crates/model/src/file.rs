use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::hostfile::{self, FileKind, HostFileError};
use crate::{Snapshot, SNAPSHOT_FORMAT, SNAPSHOT_VERSION};

/// The largest snapshot file `read_snapshot` reads by default. A snapshot of a host with
/// 10,000 processes is about 20 MB; this leaves fifty times that for kernel logs and OVS,
/// and bounds what a wrong or hostile input (`--from /dev/zero`'s regular-file cousins) can
/// make nodedoc allocate: the parsed snapshot takes a few times the file's size.
pub const DEFAULT_MAX_SNAPSHOT_BYTES: u64 = 1 << 30;

/// Bounds on reading a snapshot file.
#[derive(Clone, Copy, Debug)]
pub struct SnapshotLimits {
    /// Larger files are refused.
    pub max_bytes: u64,
    /// Reading gives up after this long without progress (a mount that does not answer).
    pub stall_deadline: Duration,
}

impl Default for SnapshotLimits {
    fn default() -> Self {
        SnapshotLimits {
            max_bytes: DEFAULT_MAX_SNAPSHOT_BYTES,
            stall_deadline: hostfile::DEFAULT_STALL_DEADLINE,
        }
    }
}

/// Why a snapshot file could not be read or written. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotFileError {
    /// The file could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file was not read: not a regular file, too large, or on a filesystem that does not
    /// answer.
    #[error(transparent)]
    Unreadable(HostFileError),
    /// The output path names something a snapshot must not replace.
    #[error("{path} is {kind}: nodedoc writes a snapshot only to a new or regular file (use `-o -` for standard output)")]
    NotRegularOutput {
        /// The path.
        path: PathBuf,
        /// What it is.
        kind: FileKind,
    },
    /// The file is not JSON at all (a binary file, a text file, …).
    #[error("{path}: not a nodedoc snapshot (it is not JSON: {detail})")]
    NotJson {
        /// The file.
        path: PathBuf,
        /// What the parser met.
        detail: String,
    },
    /// The file is JSON, but not a nodedoc snapshot.
    #[error("{path}: not a nodedoc snapshot (format is {found}, expected \"{SNAPSHOT_FORMAT}\")")]
    Foreign {
        /// The file.
        path: PathBuf,
        /// The `format` it carries, quoted, or `missing`.
        found: String,
    },
    /// The snapshot was written by a newer nodedoc whose format this build cannot read.
    #[error("{path}: snapshot format version {version} is newer than this nodedoc reads ({SNAPSHOT_VERSION}); use a nodedoc at least as new as the one that collected it")]
    NewerVersion {
        /// The file.
        path: PathBuf,
        /// The version it carries.
        version: u32,
    },
    /// The file ends in the middle of the snapshot.
    #[error("{path}: snapshot is truncated (it ends at line {line}, column {column}); was the copy complete?")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Last line read.
        line: usize,
        /// Last column read.
        column: usize,
    },
    /// The file is a snapshot, but a value in it is wrong.
    #[error("{path}: corrupt snapshot at line {line}, column {column}: {message}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Where.
        line: usize,
        /// Where.
        column: usize,
        /// What is wrong.
        message: String,
    },
}

#[derive(Deserialize)]
struct Header {
    format: Option<serde_json::Value>,
    version: Option<serde_json::Value>,
}

/// Reads and checks a snapshot written by `write_snapshot`, within the default
/// [`SnapshotLimits`].
pub fn read_snapshot(path: &Path) -> Result<Snapshot, SnapshotFileError> {
    read_snapshot_with(path, &SnapshotLimits::default())
}

/// Reads and checks a snapshot: only from a regular file (a FIFO, a device such as
/// `/dev/zero` or a directory is refused unopened), at most `limits.max_bytes`, giving up
/// when the read stalls. Parsing then takes memory in proportion to the file's size.
pub fn read_snapshot_with(
    path: &Path,
    limits: &SnapshotLimits,
) -> Result<Snapshot, SnapshotFileError> {
    let bytes = hostfile::read_regular(path, limits.max_bytes, limits.stall_deadline).map_err(
        |e| match e {
            HostFileError::Io { path, source } => SnapshotFileError::Io { path, source },
            other => SnapshotFileError::Unreadable(other),
        },
    )?;
    parse_snapshot(path, &bytes)
}

/// Parses snapshot bytes (what `read_snapshot` does once the file is read); `path` only names
/// the source in errors. Public for the fuzzers and for readers that get the bytes elsewhere.
pub fn parse_snapshot(path: &Path, bytes: &[u8]) -> Result<Snapshot, SnapshotFileError> {
    let path_buf = || path.to_path_buf();
    let header: Header = match serde_json::from_slice(bytes) {
        Ok(header) => header,
        Err(e) if e.is_eof() => {
            return Err(SnapshotFileError::Truncated {
                path: path_buf(),
                line: e.line(),
                column: e.column(),
            })
        }
        Err(e) if e.is_syntax() || e.is_data() => {
            // A JSON object with bad syntax deeper in still counts as JSON; anything that is
            // not an object from its first byte is some other kind of file.
            let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
            if first == Some(&b'{') {
                return Err(SnapshotFileError::Corrupt {
                    path: path_buf(),
                    line: e.line(),
                    column: e.column(),
                    message: e.to_string(),
                });
            }
            return Err(SnapshotFileError::NotJson {
                path: path_buf(),
                detail: e.to_string(),
            });
        }
        Err(e) => {
            return Err(SnapshotFileError::NotJson {
                path: path_buf(),
                detail: e.to_string(),
            })
        }
    };
    match header.format {
        Some(serde_json::Value::String(f)) if f == SNAPSHOT_FORMAT => {}
        Some(other) => {
            return Err(SnapshotFileError::Foreign {
                path: path_buf(),
                found: other.to_string(),
            })
        }
        None => {
            return Err(SnapshotFileError::Foreign {
                path: path_buf(),
                found: "missing".to_string(),
            })
        }
    }
    let version = header.version.as_ref().and_then(|v| v.as_u64());
    match version {
        Some(v) if v > u64::from(SNAPSHOT_VERSION) => {
            return Err(SnapshotFileError::NewerVersion {
                path: path_buf(),
                version: u32::try_from(v).unwrap_or(u32::MAX),
            })
        }
        Some(_) => {}
        None => {
            return Err(SnapshotFileError::Corrupt {
                path: path_buf(),
                line: 1,
                column: 1,
                message: "the `version` field is missing or not a number".to_string(),
            })
        }
    }
    serde_json::from_slice(bytes).map_err(|e| {
        if e.is_eof() {
            SnapshotFileError::Truncated {
                path: path_buf(),
                line: e.line(),
                column: e.column(),
            }
        } else {
            SnapshotFileError::Corrupt {
                path: path_buf(),
                line: e.line(),
                column: e.column(),
                message: e.to_string(),
            }
        }
    })
}

/// Writes a snapshot atomically: to a temporary file beside `path`, then renamed over it, so
/// an interrupted write never leaves a half file where a good one was.
///
/// `path` is often in a directory others can write to (`/tmp`). The temporary file has a
/// random name and is created with `O_CREAT | O_EXCL` (the `tempfile` crate), which never
/// follows or reuses what is already there, so a symlink planted at a guessed name cannot
/// make root write elsewhere. The file is private to its owner (mode 0600): a snapshot holds
/// every process's command line. `path` itself, when it exists, must be a regular file:
/// renaming over a symlink would replace the link (not write through it — no clobber) but a
/// link like `/dev/stdout` must not be replaced either, and a device or FIFO is no place for
/// a file, so both are refused. Should a link be planted at `path` after that check, the
/// rename replaces the link itself: its target is never written.
pub fn write_snapshot(path: &Path, snapshot: &Snapshot) -> Result<(), SnapshotFileError> {
    let io = |source| SnapshotFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::symlink_metadata(path) {
        Ok(existing) => match FileKind::of(existing.file_type()) {
            FileKind::Regular => {}
            kind => {
                return Err(SnapshotFileError::NotRegularOutput {
                    path: path.to_path_buf(),
                    kind,
                })
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| io(std::io::Error::other("not a file name")))?;
    let mut prefix = std::ffi::OsString::from(".");
    prefix.push(file_name);
    prefix.push(".");
    let tmp = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".tmp")
        .tempfile_in(&dir)
        .map_err(io)?;
    // On any error below, dropping `tmp` removes the temporary file.
    let mut out = std::io::BufWriter::new(tmp);
    serde_json::to_writer(&mut out, snapshot).map_err(|e| io(std::io::Error::other(e)))?;
    out.write_all(b"\n").map_err(io)?;
    let tmp = out.into_inner().map_err(|e| io(e.into_error()))?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HostInfo;

    fn sample() -> Snapshot {
        Snapshot::new(HostInfo {
            hostname: "node-1".into(),
            kernel_release: "3.10.0-693.el7.x86_64".into(),
            clock_ticks_per_sec: 100,
            collector_version: "test".into(),
            ..HostInfo::default()
        })
    }

    fn parse(bytes: &[u8]) -> Result<Snapshot, SnapshotFileError> {
        parse_snapshot(Path::new("s.json"), bytes)
    }

    #[test]
    fn round_trips_through_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snap.json");
        write_snapshot(&path, &sample()).unwrap();
        // Written over too, and nothing left beside it.
        write_snapshot(&path, &sample()).unwrap();
        assert_eq!(read_snapshot(&path).unwrap(), sample());
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, ["snap.json"]);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "a snapshot holds command lines: private"
        );
    }

    #[test]
    fn outputs_that_are_not_regular_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("precious");
        std::fs::write(&target, "keep").unwrap();
        let link = dir.path().join("snap.json");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = write_snapshot(&link, &sample()).unwrap_err();
        assert!(err.to_string().contains("is a symbolic link"), "{err}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
        let err = write_snapshot(Path::new("/dev/null"), &sample()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("/dev/null is a character device"),
            "{err}"
        );
        let err = write_snapshot(dir.path(), &sample()).unwrap_err();
        assert!(err.to_string().contains("is a directory"), "{err}");
    }

    #[test]
    fn inputs_that_are_not_regular_or_too_large_are_refused() {
        let err = read_snapshot(Path::new("/dev/zero")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/dev/zero is a character device, not a regular file: not opened"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snap.json");
        write_snapshot(&path, &sample()).unwrap();
        let limits = SnapshotLimits {
            max_bytes: 100,
            ..SnapshotLimits::default()
        };
        let err = read_snapshot_with(&path, &limits).unwrap_err();
        assert!(
            err.to_string()
                .contains("snap.json is larger than 100 bytes"),
            "{err}"
        );
    }

    #[test]
    fn every_truncation_is_a_clear_error() {
        let bytes = serde_json::to_vec(&sample()).unwrap();
        for cut in 0..bytes.len() {
            let err = parse(&bytes[..cut]).unwrap_err();
            let text = err.to_string();
            assert!(text.starts_with("s.json: "), "{text}");
            assert!(
                matches!(
                    err,
                    SnapshotFileError::Truncated { .. } | SnapshotFileError::NotJson { .. }
                ),
                "cut at {cut}: {text}"
            );
        }
    }

    #[test]
    fn foreign_and_newer_files_are_named_as_such() {
        assert!(matches!(
            parse(b"\x89PNG\r\n\x1a\n\0\0"),
            Err(SnapshotFileError::NotJson { .. })
        ));
        assert!(matches!(
            parse(br#"{"kind":"List","items":[]}"#),
            Err(SnapshotFileError::Foreign { .. })
        ));
        assert!(matches!(
            parse(br#"{"format":"nodedoc-snapshot","version":99}"#),
            Err(SnapshotFileError::NewerVersion { version: 99, .. })
        ));
        let err = parse(br#"{"format":"nodedoc-snapshot","version":1,"host":7}"#).unwrap_err();
        assert!(matches!(err, SnapshotFileError::Corrupt { .. }), "{err}");
    }

    #[test]
    fn flipped_bytes_never_panic() {
        let bytes = serde_json::to_vec(&sample()).unwrap();
        for i in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x5a;
            let _ = parse(&damaged);
        }
    }
}
