use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{Snapshot, SNAPSHOT_FORMAT, SNAPSHOT_VERSION};

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

/// Reads and checks a snapshot written by `write_snapshot`.
pub fn read_snapshot(path: &Path) -> Result<Snapshot, SnapshotFileError> {
    let bytes = std::fs::read(path).map_err(|source| SnapshotFileError::Io {
        path: path.to_path_buf(),
        source,
    })?;
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
pub fn write_snapshot(path: &Path, snapshot: &Snapshot) -> Result<(), SnapshotFileError> {
    let io = |source| SnapshotFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| io(std::io::Error::other("not a file name")))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let file = std::fs::File::create(&tmp)?;
        let mut out = std::io::BufWriter::new(file);
        serde_json::to_writer(&mut out, snapshot).map_err(std::io::Error::other)?;
        out.write_all(b"\n")?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
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
        let dir = std::env::temp_dir().join(format!("nodedoc-model-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("snap.json");
        write_snapshot(&path, &sample()).unwrap();
        assert_eq!(read_snapshot(&path).unwrap(), sample());
        std::fs::remove_dir_all(&dir).unwrap();
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
