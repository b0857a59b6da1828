//! Reads the kernel log into nodedoc's [`KernelLog`]: from `/dev/kmsg`, from the
//! `syslog(2)` buffer when `/dev/kmsg` cannot be opened, or from saved `dmesg` text; and
//! writes records to `/dev/kmsg` for test labs. [`KmsgFollower`] follows `/dev/kmsg` live
//! for an agent: only new records, a cursor kept between rounds, bounded work in floods,
//! and every lost record counted.
//!
//! # The `/dev/kmsg` format
//!
//! Each `read(2)` of `/dev/kmsg` returns exactly one record (Documentation/ABI/testing/dev-kmsg):
//!
//! ```text
//! 6,1234,5678901234,-;unregister_netdevice: waiting for cli-veth to become free. Usage count = 1
//!  SUBSYSTEM=net
//!  DEVICE=n3
//! ```
//!
//! The prefix before the first `;` is `prio,seq,usec,flags`, possibly followed by more
//! comma-separated fields that readers must ignore. `prio` is `facility * 8 + level`;
//! `seq` numbers records without gaps, so a gap is lost records; `usec` is the time since
//! boot; `flags` is `-`, or on kernels before 4.9 `c`/`+` for fragments of a line printed
//! in pieces. The message follows, with every byte outside printable ASCII, and `\`,
//! written as `\xNN`, so a record is always one line. Lines that start with a space carry
//! `KEY=value` context such as the device a driver message is about. See
//! [`parse_kmsg_record`].
//!
//! # Reading semantics
//!
//! A reader has its own position in the kernel's ring buffer, starting at the oldest record
//! still there. The kernel keeps writing while it reads, and the reader can fall behind:
//!
//! - `EAGAIN`: no record after the position. `/dev/kmsg` is opened `O_NONBLOCK` because
//!   a blocking read would wait here for the next record, possibly forever; nodedoc wants a
//!   snapshot of what is there now, so `EAGAIN` ends the read.
//! - `EPIPE`: the ring wrapped over records the reader had not read yet. The kernel moves
//!   the position to the oldest record left and reports the loss once; reading goes on, and
//!   the loss is counted in [`KernelLog::overwritten`].
//! - `EINVAL`: the buffer is smaller than the record; the kernel does not truncate, so the
//!   buffer is sized for the largest record.
//!
//! Opening `/dev/kmsg` for reading needs `CAP_SYSLOG` when `kernel.dmesg_restrict=1`; so
//! does `syslog(2)`, the fallback, which serves the same ring as text without sequence
//! numbers or dictionaries (see [`read_syslog_buffer`]). [`read_kernel_log`] tries one then
//! the other and says which it got in [`KernelLog::source`].
//!
//! Nothing here panics on what it reads: a record that does not parse is counted in
//! [`KernelLog::malformed`] and skipped.
//!
//! # Reports parsed out of the log
//!
//! Every [`KernelLog`] built here also carries what the kernel reported in several lines:
//! blocked tasks with their call traces ([`KernelLog::blocked_task_reports`], see
//! [`blocked_task_reports`]) and the reference-tracker stacks of network devices that
//! cannot be freed ([`KernelLog::netdev_ref_trackers`], see [`netdev_ref_trackers`]).
//! Parsing their structure is collection; judging them is the detectors' work. The same
//! parsers read saved text (`dmesg`, `dmesg -T`, `journalctl -k`, syslog files) through
//! [`parse_log_line`], which takes off the prefixes those tools add.
#![deny(missing_docs)]

mod call_trace;
mod dev_kmsg;
mod dmesg;
mod error;
mod file;
mod follow;
mod log_line;
mod record;
mod ref_tracker;

use std::path::Path;

pub use dev_kmsg::{
    parse_kmsg_dump, read_dev_kmsg, write_kmsg, write_kmsg_to, write_kmsg_with_level,
    write_kmsg_with_level_to, DEV_KMSG,
};
pub use dmesg::{parse_dmesg_text, read_syslog_buffer, LEVEL_WHEN_UNKNOWN};
pub use error::Error;
pub use file::{parse_kernel_log_file, read_kernel_log_file, DEFAULT_TAIL_BYTES};
pub use follow::{Drained, FollowLimits, FollowStats, FollowerThread, KmsgFollower, Start};
pub use nodedoc_model::{
    BlockedTaskReport, KernelLog, KernelLogSource, KmsgRecord, NetdevRefTrackerReport,
};
pub use record::{parse_kmsg_record, ParseError, ParseProblem, PrefixField};

pub use call_trace::{
    blocked_task_reports, blocked_task_reports_in_text, parse_trace_frame, BlockedTaskReports,
    MAX_FRAMES, MAX_LINE_BYTES, MAX_REPORTS,
};
pub use log_line::{parse_log_line, LogLine};
pub use ref_tracker::{
    netdev_ref_trackers, netdev_ref_trackers_in_text, MAX_DEVICES, MAX_HOLDERS, MAX_HOLDER_FRAMES,
};

/// Reads the kernel log from [`DEV_KMSG`], or from the `syslog(2)` buffer when that fails;
/// [`KernelLog::source`] says which ([`KernelLogSource::DevKmsg`] or
/// [`KernelLogSource::DmesgText`]).
///
/// Records older than `since_us` microseconds after boot are left out and counted. Fails
/// only when both sources fail, with both reasons.
pub fn read_kernel_log(since_us: Option<u64>) -> Result<KernelLog, Error> {
    match read_dev_kmsg(Path::new(DEV_KMSG), since_us) {
        Ok(log) => Ok(log),
        Err(dev_kmsg) => read_syslog_buffer(since_us).map_err(|syslog| Error::NoKernelLog {
            dev_kmsg: Box::new(dev_kmsg),
            syslog: Box::new(syslog),
        }),
    }
}
