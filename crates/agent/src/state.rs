//! What the agent keeps across restarts: the findings it reported open, and the cursors of
//! its streams (the kernel log's sequence number, log files' inode and offset), so that a
//! restarted agent neither announces again what it already reported nor reads again what it
//! already read.
//!
//! The file is written as root in a directory the operator chose: it is replaced atomically
//! through a temporary file created exclusively with a random name beside it (no planted
//! symlink is followed), and read only if it is a regular file of bounded size.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::lifecycle::{rfc3339, OpenFinding};

/// The value of [`AgentState::format`].
pub const STATE_FORMAT: &str = "nodedoc-agent-state";

/// The state format version this build writes and reads.
pub const STATE_VERSION: u32 = 1;

/// A state file larger than this is not one nodedoc wrote (open findings are grouped and
/// bounded; cursors are a few numbers).
pub const MAX_STATE_BYTES: u64 = 64 << 20;

/// The agent's state file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentState {
    /// Always [`STATE_FORMAT`].
    pub format: String,
    /// [`STATE_VERSION`].
    pub version: u32,
    /// When it was written.
    #[serde(with = "rfc3339")]
    pub saved_at: SystemTime,
    /// The host it belongs to: a state file copied from another node is not applied.
    pub hostname: String,
    /// Boot time of that host (seconds since the epoch): kernel log sequence numbers and
    /// pids do not survive a reboot.
    pub boot_time_unix: u64,
    /// Findings reported open.
    #[serde(default)]
    pub open: Vec<OpenFinding>,
    /// Stream cursors by stream name (`kmsg`, `file:/var/log/openvswitch/ovs-vswitchd.log`).
    #[serde(default)]
    pub cursors: BTreeMap<String, serde_json::Value>,
}

impl AgentState {
    /// An empty state for this host.
    pub fn new(hostname: &str, boot_time_unix: u64) -> AgentState {
        AgentState {
            format: STATE_FORMAT.to_string(),
            version: STATE_VERSION,
            saved_at: SystemTime::now(),
            hostname: hostname.to_string(),
            boot_time_unix,
            open: Vec::new(),
            cursors: BTreeMap::new(),
        }
    }

    /// True when this state was saved on this host since its last boot.
    pub fn applies_to(&self, hostname: &str, boot_time_unix: u64) -> bool {
        // btime can move by a second between readings (it is derived from the clock).
        self.hostname == hostname && self.boot_time_unix.abs_diff(boot_time_unix) <= 2
    }
}

/// Why the state file could not be used. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Opening, reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// Not a regular file (a FIFO would block the agent; a device has no end).
    #[error("{path}: not a regular file ({kind}); refusing to read it as the agent's state")]
    NotRegular {
        /// The file.
        path: PathBuf,
        /// What it is.
        kind: &'static str,
    },
    /// Larger than [`MAX_STATE_BYTES`].
    #[error("{path}: {size} bytes, more than the {MAX_STATE_BYTES} a state file can be")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
    /// Not a state file of this version.
    #[error("{path}: not a nodedoc agent state file ({detail})")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
}

fn file_kind(file_type: rustix::fs::FileType) -> &'static str {
    use rustix::fs::FileType;
    match file_type {
        FileType::Fifo => "a FIFO",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Directory => "a directory",
        FileType::Socket => "a socket",
        FileType::Symlink => "a symbolic link",
        _ => "not a regular file",
    }
}

/// Reads the state file; `Ok(None)` when there is none yet.
pub fn load(path: &Path) -> Result<Option<AgentState>, StateError> {
    use rustix::fs::{FileType, Mode, OFlags};
    use rustix::io::Errno;
    let io = |source| StateError::Io {
        path: path.to_path_buf(),
        source,
    };
    // O_NONBLOCK: opening a FIFO planted here must not wait for a writer; O_NOFOLLOW: the
    // state is never read through a link.
    let fd = match rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOFOLLOW | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(None),
        Err(Errno::LOOP) => {
            return Err(StateError::NotRegular {
                path: path.to_path_buf(),
                kind: "a symbolic link",
            })
        }
        Err(errno) => return Err(io(errno.into())),
    };
    let stat = rustix::fs::fstat(&fd).map_err(|e| io(e.into()))?;
    let file_type = FileType::from_raw_mode(stat.st_mode);
    if file_type != FileType::RegularFile {
        return Err(StateError::NotRegular {
            path: path.to_path_buf(),
            kind: file_kind(file_type),
        });
    }
    let size = stat.st_size.max(0) as u64;
    if size > MAX_STATE_BYTES {
        return Err(StateError::TooLarge {
            path: path.to_path_buf(),
            size,
        });
    }
    let mut bytes = Vec::with_capacity(size as usize);
    std::fs::File::from(fd)
        .take(MAX_STATE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    let state: AgentState = serde_json::from_slice(&bytes).map_err(|e| StateError::Invalid {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    if state.format != STATE_FORMAT || state.version != STATE_VERSION {
        return Err(StateError::Invalid {
            path: path.to_path_buf(),
            detail: format!(
                "format {:?} version {}, expected {STATE_FORMAT:?} version {STATE_VERSION}",
                state.format, state.version
            ),
        });
    }
    Ok(Some(state))
}

/// Replaces the state file atomically: a temporary file created exclusively with a random
/// name in the same directory (`tempfile`: `O_CREAT|O_EXCL`, so a planted name or symlink
/// makes it pick another), synced, then renamed over `path` (a symlink at `path` is replaced,
/// not followed).
pub fn save(path: &Path, state: &AgentState) -> Result<(), StateError> {
    let io = |source| StateError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".nodedoc-state.")
        .tempfile_in(dir)
        .map_err(io)?;
    serde_json::to_writer(&mut tmp, state).map_err(|e| io(std::io::Error::other(e)))?;
    tmp.write_all(b"\n").map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::OpenFinding;
    use nodedoc_model::{Finding, Severity, Subject};

    fn state() -> AgentState {
        let mut state = AgentState::new("node-1", 1_780_000_000);
        // The file keeps milliseconds.
        state.saved_at =
            SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_780_000_000_123);
        state.open.push(OpenFinding {
            finding: Finding::new("fd-leak", Severity::Warning, Subject::Host, "leaks"),
            opened_at: SystemTime::UNIX_EPOCH,
            announced_at: SystemTime::UNIX_EPOCH,
            missed_rounds: 0,
        });
        state
            .cursors
            .insert("kmsg".into(), serde_json::json!({"sequence": 1234}));
        state
    }

    #[test]
    fn round_trips_and_replaces_a_planted_symlink_instead_of_following_it() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let path = dir.path().join("state.json");
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        // Reading through the link is refused...
        assert!(matches!(
            load(&path),
            Err(StateError::NotRegular {
                kind: "a symbolic link",
                ..
            })
        ));
        // ...and writing replaces the link, leaving its target alone.
        save(&path, &state()).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(load(&path).unwrap().unwrap(), state());
        assert!(load(&dir.path().join("none.json")).unwrap().is_none());
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("state.json");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        assert!(matches!(
            load(&fifo),
            Err(StateError::NotRegular { kind: "a FIFO", .. })
        ));
    }

    #[test]
    fn foreign_files_are_named_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, r#"{"kind":"List"}"#).unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains("not a nodedoc agent state file"), "{err}");
        assert!(state().applies_to("node-1", 1_780_000_001));
        assert!(!state().applies_to("node-2", 1_780_000_000));
        assert!(!state().applies_to("node-1", 1_780_009_000));
    }
}
