//! The errors of reading and writing the kernel log.

use std::error::Error as _;
use std::fmt::Write as _;
use std::io;
use std::path::PathBuf;

/// Reading or writing the kernel log failed.
///
/// Malformed records are not errors: they are counted in
/// [`KernelLog::malformed`](nodedoc_model::KernelLog::malformed) and skipped, so one bad
/// record never costs the rest of the log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Opening the log for reading failed; `EPERM`/`EACCES` when `kernel.dmesg_restrict=1`
    /// and the caller lacks `CAP_SYSLOG`.
    #[error("cannot open {} for reading", .path.display())]
    OpenForRead {
        /// The file that was opened.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Opening the log for writing failed.
    #[error("cannot open {} for writing", .path.display())]
    OpenForWrite {
        /// The file that was opened.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A `read(2)` failed with something other than the `EAGAIN`, `EPIPE` and `EINTR` a
    /// reader of `/dev/kmsg` expects.
    #[error("cannot read {}", .path.display())]
    Read {
        /// The file that was read.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A `write(2)` failed or wrote part of the record; `EINVAL` when the record is longer
    /// than the kernel takes (1024 bytes on 6.x).
    #[error("cannot write a {len}-byte record to {}", .path.display())]
    Write {
        /// The file that was written.
        path: PathBuf,
        /// The length of the record, newline and `<N>` prefix included.
        len: usize,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A `syslog(2)` (`klogctl`) call failed; `EPERM` when `kernel.dmesg_restrict=1` and
    /// the caller lacks `CAP_SYSLOG`.
    #[error("syslog(2) {action} failed")]
    Syslog {
        /// The action that failed, e.g. `SYSLOG_ACTION_READ_ALL`.
        action: &'static str,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A kernel log file could not be read (not a regular file, unreadable, stalled).
    #[error("{reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why (it names the file).
        reason: nodedoc_model::hostfile::HostFileError,
    },
    /// A log level outside 0 (emerg) to 7 (debug) was asked for.
    #[error("log level {level} is not between 0 (emerg) and 7 (debug)")]
    InvalidLevel {
        /// The level asked for.
        level: u8,
    },
    /// The thread of a [`KmsgFollower`](crate::KmsgFollower) or its wakeup `eventfd`
    /// could not be created.
    #[error("cannot start the kernel log follower thread")]
    StartFollower {
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Neither `/dev/kmsg` nor the `syslog(2)` buffer could be read.
    #[error(
        "cannot read the kernel log: {} and {}",
        with_causes(.dev_kmsg),
        with_causes(.syslog)
    )]
    NoKernelLog {
        /// Why `/dev/kmsg` failed.
        dev_kmsg: Box<Error>,
        /// Why the `syslog(2)` fallback failed.
        syslog: Box<Error>,
    },
}

impl Error {
    /// True when the kernel refused for lack of privilege (`EPERM` or `EACCES`), the case
    /// where running as root or with `CAP_SYSLOG` would help.
    pub fn is_permission_denied(&self) -> bool {
        match self {
            Error::OpenForRead { source, .. }
            | Error::OpenForWrite { source, .. }
            | Error::Read { source, .. }
            | Error::Write { source, .. }
            | Error::Syslog { source, .. }
            | Error::StartFollower { source } => source.kind() == io::ErrorKind::PermissionDenied,
            Error::File { reason, .. } => matches!(
                reason,
                nodedoc_model::hostfile::HostFileError::Io { source, .. }
                    if source.kind() == io::ErrorKind::PermissionDenied
            ),
            Error::InvalidLevel { .. } => false,
            Error::NoKernelLog { dev_kmsg, syslog } => {
                dev_kmsg.is_permission_denied() || syslog.is_permission_denied()
            }
        }
    }
}

/// One error and its causes on one line. `NoKernelLog` holds two independent failures, so
/// they cannot both be its `source()`; this keeps both causes visible.
fn with_causes(error: &Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let _ = write!(text, ": {inner}");
        cause = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_kernel_log_shows_both_causes() {
        let error = Error::NoKernelLog {
            dev_kmsg: Box::new(Error::OpenForRead {
                path: "/dev/kmsg".into(),
                source: io::Error::from_raw_os_error(libc::EACCES),
            }),
            syslog: Box::new(Error::Syslog {
                action: "SYSLOG_ACTION_READ_ALL",
                source: io::Error::from_raw_os_error(libc::EPERM),
            }),
        };
        let text = error.to_string();
        assert!(
            text.contains("cannot open /dev/kmsg for reading: Permission denied"),
            "{text}"
        );
        assert!(
            text.contains("SYSLOG_ACTION_READ_ALL failed: Operation not permitted"),
            "{text}"
        );
        assert!(error.is_permission_denied());
    }
}
