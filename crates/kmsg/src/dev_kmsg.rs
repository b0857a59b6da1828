//! Reading and writing `/dev/kmsg`.

use std::path::Path;

use nodedoc_model::{KernelLog, KernelLogSource, KmsgRecord};
use rustix::fd::OwnedFd;
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use crate::record::parse_kmsg_record;
use crate::Error;

/// Where the kernel log lives.
pub const DEV_KMSG: &str = "/dev/kmsg";

/// The read buffer. The kernel fails a read with `EINVAL` rather than truncate a record, and
/// a record can be up to `CONSOLE_EXT_LOG_MAX` (8 KiB) with its dictionary; 64 KiB leaves
/// room for kernels that raise that.
pub(crate) const READ_BUFFER_BYTES: usize = 64 * 1024;

/// A bound on records read in one call. A kernel printing in a tight loop (a soft-lockup
/// storm, a netdev refcount leak on a busy host) can append records faster than they are
/// read, and a reader waiting for `EAGAIN` would then never finish. The largest usual ring
/// (`log_buf_len=32M`) holds well under this many records.
const MAX_RECORDS_PER_READ: u64 = 4 << 20;

/// Reads every record in the kernel's ring buffer from `path` (normally [`DEV_KMSG`]).
///
/// Records whose [`monotonic_us`](KmsgRecord::monotonic_us) is below `since_us` are
/// counted in [`KernelLog::skipped_before_window`] and dropped; the boundary is inclusive.
/// Records that do not parse are counted in [`KernelLog::malformed`]. When the kernel
/// overwrote records between two reads (`EPIPE`), the number lost, worked out from the gap
/// in sequence numbers, is added to [`KernelLog::overwritten`]; when there is no earlier
/// record to measure from, each `EPIPE` counts as one, a lower bound.
///
/// The file is opened non-blocking, and reading stops at the first `EAGAIN`: that is the
/// end of what the kernel has, and a blocking read would instead wait for the next record.
/// Reading also stops after 4 Mi records, so a kernel logging faster than this reads cannot
/// keep it busy forever.
///
/// `path` must be the device: a regular file does not return one record per read, so a
/// saved copy is for [`parse_kmsg_dump`].
///
/// Fails when `path` cannot be opened (`EPERM` when `kernel.dmesg_restrict=1` without
/// `CAP_SYSLOG`) or a read fails some other way.
pub fn read_dev_kmsg(path: &Path, since_us: Option<u64>) -> Result<KernelLog, Error> {
    let kmsg = open_for_read(path)?;

    let mut log = LogBuilder::new(KernelLogSource::DevKmsg, since_us);
    let mut buffer = vec![0u8; READ_BUFFER_BYTES];
    let mut reads = 0u64;
    while reads < MAX_RECORDS_PER_READ {
        match rustix::io::read(&kmsg, &mut buffer[..]) {
            // Not something /dev/kmsg does, but a path that is not /dev/kmsg might.
            Ok(0) => break,
            Ok(length) => {
                reads += 1;
                log.push_raw(&buffer[..length]);
            }
            Err(Errno::AGAIN) => break,
            Err(Errno::PIPE) => log.note_overwrite(),
            Err(Errno::INTR) => continue,
            Err(errno) => {
                return Err(Error::Read {
                    path: path.to_path_buf(),
                    source: errno.into(),
                })
            }
        }
    }
    Ok(log.finish())
}

/// Opens `path` for reading records, at the oldest one in the ring, non-blocking: `EAGAIN`
/// is the end of what the kernel has, where a blocking read would wait for the next record.
pub(crate) fn open_for_read(path: &Path) -> Result<OwnedFd, Error> {
    rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|errno| Error::OpenForRead {
        path: path.to_path_buf(),
        source: errno.into(),
    })
}

/// Parses a saved copy of `/dev/kmsg` records, for example from
/// `dd if=/dev/kmsg iflag=nonblock`: records one after another, each a prefix line
/// followed by its ` KEY=value` lines.
///
/// The result has [`KernelLogSource::File`]. Windowing and counting of malformed records are
/// as in [`read_dev_kmsg`]; [`KernelLog::overwritten`] stays 0 because a file does not
/// say what was lost before it was saved. Blank lines are skipped without being counted.
pub fn parse_kmsg_dump(dump: &[u8], since_us: Option<u64>) -> KernelLog {
    let mut log = LogBuilder::new(KernelLogSource::File, since_us);
    let mut record_start = 0;
    let mut line_start = 0;
    while line_start < dump.len() {
        let line_end = dump[line_start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(dump.len(), |at| line_start + at + 1);
        // A line that does not begin with a space starts the next record.
        if line_start > record_start && dump[line_start] != b' ' {
            log.push_raw_unless_blank(&dump[record_start..line_start]);
            record_start = line_start;
        }
        line_start = line_end;
    }
    log.push_raw_unless_blank(&dump[record_start..]);
    log.finish()
}

/// Builds a [`KernelLog`] one record at a time, applying the window and the counters.
pub(crate) struct LogBuilder {
    log: KernelLog,
    since_us: Option<u64>,
    last_sequence: Option<u64>,
    overwrite_pending: bool,
}

impl LogBuilder {
    pub(crate) fn new(source: KernelLogSource, since_us: Option<u64>) -> LogBuilder {
        LogBuilder {
            log: KernelLog {
                source,
                ..KernelLog::default()
            },
            since_us,
            last_sequence: None,
            overwrite_pending: false,
        }
    }

    fn push_raw(&mut self, raw: &[u8]) {
        match parse_kmsg_record(raw) {
            Ok(record) => self.push(record),
            Err(_) => self.log.malformed += 1,
        }
    }

    fn push_raw_unless_blank(&mut self, raw: &[u8]) {
        if !raw.iter().all(u8::is_ascii_whitespace) {
            self.push_raw(raw);
        }
    }

    /// `EPIPE`: the kernel moved this reader past records it overwrote. How many is only
    /// known from the next record's sequence number.
    fn note_overwrite(&mut self) {
        self.overwrite_pending = true;
    }

    pub(crate) fn push(&mut self, record: KmsgRecord) {
        if self.overwrite_pending {
            self.overwrite_pending = false;
            self.log.overwritten += match self.last_sequence {
                Some(last) if record.sequence > last.saturating_add(1) => {
                    record.sequence - last - 1
                }
                _ => 1,
            };
        }
        self.last_sequence = Some(record.sequence);
        self.push_windowed(record);
    }

    fn push_windowed(&mut self, record: KmsgRecord) {
        if self
            .since_us
            .is_some_and(|since| record.monotonic_us < since)
        {
            self.log.skipped_before_window += 1;
        } else {
            self.log.records.push(record);
        }
    }

    /// Keeps a record the caller has already windowed, for sources where a record's time
    /// can be unknown and `monotonic_us` alone cannot decide.
    pub(crate) fn keep(&mut self, record: KmsgRecord) {
        self.log.records.push(record);
    }

    pub(crate) fn count_malformed(&mut self) {
        self.log.malformed += 1;
    }

    pub(crate) fn skip_before_window(&mut self) {
        self.log.skipped_before_window += 1;
    }

    /// The log, with the reports parsed out of its records.
    pub(crate) fn finish(mut self) -> KernelLog {
        if self.overwrite_pending {
            self.log.overwritten += 1;
        }
        let blocked = crate::blocked_task_reports(&self.log.records);
        self.log.blocked_task_reports = blocked.reports;
        self.log.blocked_task_reports_dropped = blocked.dropped;
        self.log.netdev_ref_trackers = crate::netdev_ref_trackers(&self.log.records);
        self.log
    }
}

/// Writes one record to [`DEV_KMSG`]; see [`write_kmsg_to`].
pub fn write_kmsg(line: &str) -> Result<(), Error> {
    write_kmsg_to(Path::new(DEV_KMSG), line)
}

/// Writes one record to `path` (normally [`DEV_KMSG`]), for test labs that need a known
/// record in the kernel log.
///
/// A newline is appended when `line` lacks one: without it the kernel keeps the record open
/// for a continuation. A leading `<N>` sets the priority as the kernel parses it (see
/// [`write_kmsg_with_level`]).
///
/// What the kernel does with the record, measured on 6.18:
///
/// - The facility is 1 (user) unless `<N>` asks for a nonzero one: the kernel never lets
///   user space log as facility 0, the kernel's own. Without `<N>` the level is the
///   kernel's default (`kernel.printk`'s second field, normally 4).
/// - With `kernel.printk_devkmsg=ratelimit` (the default) the kernel keeps at most 10
///   records per open file per 5 s and *silently drops* the rest, reporting the write as
///   successful; it logs "N output lines suppressed" when the file is closed. Each call
///   here opens the file afresh, so each call has its own budget and is not dropped.
///   With `kernel.printk_devkmsg=off` every write is dropped that way.
/// - A record longer than 1024 bytes fails with `EINVAL`.
/// - A newline inside `line` does not split it: it stays one record, with `\x0a` in it
///   as read back from `/dev/kmsg`.
/// - Text after a NUL byte is dropped by the kernel.
///
/// Writing needs write access to `path` (root, by default).
pub fn write_kmsg_to(path: &Path, line: &str) -> Result<(), Error> {
    let mut record = String::with_capacity(line.len() + 1);
    record.push_str(line);
    if !record.ends_with('\n') {
        record.push('\n');
    }
    let kmsg = rustix::fs::open(path, OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty()).map_err(
        |errno| Error::OpenForWrite {
            path: path.to_path_buf(),
            source: errno.into(),
        },
    )?;
    let write_error = |source| Error::Write {
        path: path.to_path_buf(),
        len: record.len(),
        source,
    };
    // One write(2) is one record, so a short write cannot be completed by a second one.
    loop {
        match rustix::io::write(&kmsg, record.as_bytes()) {
            Ok(written) if written == record.len() => return Ok(()),
            Ok(written) => {
                return Err(write_error(std::io::Error::new(
                    std::io::ErrorKind::WriteZero,
                    format!("short write: {written} of {} bytes", record.len()),
                )))
            }
            Err(Errno::INTR) => continue,
            Err(errno) => return Err(write_error(errno.into())),
        }
    }
}

/// Writes `text` to [`DEV_KMSG`] at syslog `level` (0 emerg … 7 debug) by prefixing
/// `<level>`; see [`write_kmsg_to`] for what the kernel does with it. The record is read
/// back with facility 1 (user).
pub fn write_kmsg_with_level(level: u8, text: &str) -> Result<(), Error> {
    write_kmsg_with_level_to(Path::new(DEV_KMSG), level, text)
}

/// [`write_kmsg_with_level`] to `path`.
pub fn write_kmsg_with_level_to(path: &Path, level: u8, text: &str) -> Result<(), Error> {
    if level > 7 {
        return Err(Error::InvalidLevel { level });
    }
    write_kmsg_to(path, &format!("<{level}>{text}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(sequence: u64, monotonic_us: u64) -> KmsgRecord {
        KmsgRecord {
            level: 6,
            facility: 0,
            sequence,
            monotonic_us,
            continuation: false,
            message: format!("record {sequence}"),
            dictionary: vec![],
            caller: None,
            wall_clock_ms: None,
        }
    }

    #[test]
    fn window_is_inclusive() {
        let mut log = LogBuilder::new(KernelLogSource::DevKmsg, Some(100));
        log.push(record(1, 99));
        log.push(record(2, 100));
        log.push(record(3, 101));
        let log = log.finish();
        assert_eq!(log.skipped_before_window, 1);
        let kept: Vec<u64> = log.records.iter().map(|r| r.sequence).collect();
        assert_eq!(kept, [2, 3]);
    }

    #[test]
    fn overwrite_counts_the_sequence_gap() {
        let mut log = LogBuilder::new(KernelLogSource::DevKmsg, None);
        log.push(record(10, 1));
        log.note_overwrite();
        log.push(record(15, 2));
        log.push(record(16, 3));
        assert_eq!(log.finish().overwritten, 4);
    }

    #[test]
    fn overwrite_without_a_gap_to_measure_counts_one() {
        let mut first = LogBuilder::new(KernelLogSource::DevKmsg, None);
        first.note_overwrite();
        first.note_overwrite();
        first.push(record(500, 1));
        assert_eq!(first.finish().overwritten, 1);

        let mut last = LogBuilder::new(KernelLogSource::DevKmsg, None);
        last.push(record(1, 1));
        last.note_overwrite();
        assert_eq!(last.finish().overwritten, 1);

        // A sequence that went backwards is nonsense; it still counts as a loss.
        let mut backwards = LogBuilder::new(KernelLogSource::DevKmsg, None);
        backwards.push(record(u64::MAX, 1));
        backwards.note_overwrite();
        backwards.push(record(3, 1));
        assert_eq!(backwards.finish().overwritten, 1);
    }

    #[test]
    fn dump_splits_records_at_unindented_lines() {
        let dump = b"6,1,100,-;first; with, punctuation\n SUBSYSTEM=net\n DEVICE=n3\n\
                     garbage line\n\
                     \n\
                     3,812,243000123,-;INFO: task s6-sync:362091 blocked for more than 120 seconds.\n\
                     6,813,243000200,-;no newline at end";
        let log = parse_kmsg_dump(dump, None);
        assert_eq!(log.source, KernelLogSource::File);
        assert_eq!(log.malformed, 1);
        assert_eq!(log.records.len(), 3);
        assert_eq!(log.records[0].message, "first; with, punctuation");
        assert_eq!(log.records[0].dictionary.len(), 2);
        assert_eq!(log.records[1].level, 3);
        assert_eq!(log.records[2].message, "no newline at end");
    }

    #[test]
    fn dump_window() {
        let dump = b"6,1,100,-;old\n6,2,200,-;new\n";
        let log = parse_kmsg_dump(dump, Some(150));
        assert_eq!(log.skipped_before_window, 1);
        assert_eq!(log.records.len(), 1);
        assert_eq!(log.records[0].message, "new");
    }

    #[test]
    fn empty_dump() {
        assert_eq!(
            parse_kmsg_dump(b"", None),
            KernelLog {
                source: KernelLogSource::File,
                ..KernelLog::default()
            }
        );
        assert_eq!(parse_kmsg_dump(b"\n\n  \n", None).malformed, 0);
    }

    #[test]
    fn open_error_names_the_path() {
        let error = read_dev_kmsg(Path::new("/nonexistent/kmsg"), None).unwrap_err();
        assert!(matches!(error, Error::OpenForRead { .. }));
        assert_eq!(
            error.to_string(),
            "cannot open /nonexistent/kmsg for reading"
        );
        let error = write_kmsg_to(Path::new("/nonexistent/kmsg"), "x").unwrap_err();
        assert_eq!(
            error.to_string(),
            "cannot open /nonexistent/kmsg for writing"
        );
    }

    #[test]
    fn writer_ends_records_with_one_newline() {
        let path = std::env::temp_dir().join(format!("nodedoc-kmsg-writer-{}", std::process::id()));
        // O_EXCL: a link planted at this guessable name in /tmp fails the test instead of
        // being written through; once created, the file is ours (the sticky bit keeps it).
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        for (level, text, expected) in [
            (None, "plain", "plain\n"),
            (None, "already ended\n", "already ended\n"),
            (Some(3), "leveled", "<3>leveled\n"),
            (Some(0), "", "<0>\n"),
        ] {
            std::fs::write(&path, "").unwrap();
            match level {
                Some(level) => write_kmsg_with_level_to(&path, level, text).unwrap(),
                None => write_kmsg_to(&path, text).unwrap(),
            }
            assert_eq!(std::fs::read_to_string(&path).unwrap(), expected);
        }
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn invalid_level_is_refused_before_writing() {
        let error = write_kmsg_with_level_to(Path::new("/nonexistent/kmsg"), 8, "x").unwrap_err();
        assert!(matches!(error, Error::InvalidLevel { level: 8 }));
    }
}
