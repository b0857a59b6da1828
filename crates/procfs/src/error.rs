use std::fmt;

/// Why something under `/proc` could not be read. Always names the file, and for parse errors
/// the line, so a user can look at the same bytes.
#[derive(Debug, thiserror::Error)]
#[error("{path}{}: {kind}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ReadError {
    /// The file, e.g. `/proc/812/stat`.
    pub path: String,
    /// The 1-based line a parse error is on.
    pub line: Option<usize>,
    /// What went wrong.
    pub kind: ReadErrorKind,
}

/// The kinds of [`ReadError`].
#[derive(Debug, thiserror::Error)]
pub enum ReadErrorKind {
    /// The process exited while it was being read. Normal on a live host.
    #[error("process vanished")]
    Vanished,
    /// The kernel refused (`EACCES`/`EPERM`): not root, or a ptrace restriction.
    #[error("permission denied")]
    PermissionDenied,
    /// Any other I/O error.
    #[error("{0}")]
    Io(std::io::Error),
    /// The contents were not what the kernel writes.
    #[error("unexpected contents: {0}")]
    Parse(String),
}

impl ReadError {
    /// An error for `path` from an OS error, telling vanished processes and permission
    /// problems apart from real failures.
    pub fn from_io(path: impl Into<String>, err: std::io::Error) -> ReadError {
        let kind = match err.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ESRCH) => ReadErrorKind::Vanished,
            Some(libc::EACCES) | Some(libc::EPERM) => ReadErrorKind::PermissionDenied,
            _ => ReadErrorKind::Io(err),
        };
        ReadError {
            path: path.into(),
            line: None,
            kind,
        }
    }

    /// A parse error at `line` of `path`.
    pub fn parse(path: impl Into<String>, line: Option<usize>, what: impl fmt::Display) -> Self {
        ReadError {
            path: path.into(),
            line,
            kind: ReadErrorKind::Parse(what.to_string()),
        }
    }

    /// True when the process exited mid-read.
    pub fn is_vanished(&self) -> bool {
        matches!(self.kind, ReadErrorKind::Vanished)
    }

    /// The short reason a report shows in its gaps line.
    pub fn reason(&self) -> String {
        match &self.kind {
            ReadErrorKind::Vanished => "process vanished".to_string(),
            ReadErrorKind::PermissionDenied => "permission denied".to_string(),
            ReadErrorKind::Io(e) => e.to_string(),
            ReadErrorKind::Parse(_) => "unexpected contents".to_string(),
        }
    }
}

impl From<rustix::io::Errno> for ReadErrorKind {
    fn from(e: rustix::io::Errno) -> Self {
        ReadError::from_io(String::new(), e.into()).kind
    }
}
