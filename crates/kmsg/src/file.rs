//! A kernel log saved to a file (`check --kernel-log FILE`): `dmesg` in its forms (`-T`,
//! `-x`, `--raw`), `journalctl -k`, syslog files (`/var/log/kern.log`, `/var/log/messages`),
//! or `/dev/kmsg` records saved as they are.
//!
//! Such a log is of another time, often of another boot or another host: its records keep
//! the times they were printed with, and [`KernelLogFile`] says what the log's own "now" is
//! (its last record), so that detectors judge "still going on" against the log and not
//! against this host's clock.

use std::path::Path;
use std::time::Duration;

use nodedoc_model::clock;
use nodedoc_model::hostfile;
use nodedoc_model::{KernelLog, KernelLogFile, KernelLogSource, KmsgRecord, PrintkCaller};

use crate::call_trace::cut;
use crate::log_line::{parse_log_line, LogLine};
use crate::Error;

/// How much of the end of a kernel log file is read: far more than a kernel ring holds
/// (`log_buf_len` is 128 KiB to 32 MiB), while a syslog file of gigabytes costs its tail.
pub const DEFAULT_TAIL_BYTES: u64 = 64 << 20;

/// Reads a kernel log saved to `path` (only its last `tail_bytes`; see
/// [`parse_kernel_log_file`]). Only a regular file is opened, and a read that makes no
/// progress for `stall` is abandoned.
pub fn read_kernel_log_file(
    path: &Path,
    tail_bytes: u64,
    stall: Duration,
) -> Result<KernelLog, Error> {
    let tail = hostfile::read_tail(path, tail_bytes, stall).map_err(|reason| Error::File {
        path: path.to_path_buf(),
        reason,
    })?;
    let text = String::from_utf8_lossy(&tail.bytes);
    let mut log = parse_kernel_log_file(&text, tail.modified_unix);
    if let Some(file) = &mut log.file {
        file.path = path.display().to_string();
        file.skipped_bytes = tail.skipped;
    }
    Ok(log)
}

/// Parses the text of a kernel log file. `modified_unix` (the file's modification time;
/// without it, now) gives the year to stamps that have none (syslog's `Mar  3 10:11:12`).
///
/// Saved `/dev/kmsg` records (`6,1234,5678901234,-;…`) are parsed as such
/// ([`parse_kmsg_dump`](crate::parse_kmsg_dump)). Anything else is text: each line's tool
/// prefixes are taken off ([`parse_log_line`]) and what they said kept — level and facility
/// (`<14>`, `dmesg -x`), the time since boot (`[  12.345678]`), the wall clock (`dmesg -T`,
/// syslog, `journalctl`), the printk caller id. Lines of other programs than the kernel (a
/// syslog file mixes them) are skipped and counted. A line with no prefix at all continues
/// the one before (how `dmesg` prints the later lines of a multi-line record) and takes its
/// level, facility and times.
///
/// The result has [`KernelLogSource::File`] and a [`KernelLogFile`] whose path the caller
/// fills in.
pub fn parse_kernel_log_file(text: &str, modified_unix: Option<i64>) -> KernelLog {
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    if crate::parse_kmsg_record(first.as_bytes()).is_ok() && first.contains(';') {
        let mut log = crate::parse_kmsg_dump(text.as_bytes(), None);
        log.file = Some(describe(&log, "/dev/kmsg records", 0));
        return log;
    }
    // Without the file's time, this year: stamps without one keep their order and gaps
    // (only a log that crosses New Year's Eve is then a year off on one side).
    let year_hint = Some(clock::year_month(modified_unix.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    })));
    let mut records: Vec<KmsgRecord> = Vec::new();
    let mut other_lines = 0u64;
    let mut format: Option<&'static str> = None;
    // What the last kernel line said, for the lines that continue it.
    let mut previous: Option<Inherited> = None;
    for raw in text.lines() {
        if raw.trim().is_empty() {
            continue;
        }
        let line = parse_log_line(cut(raw));
        if !line.is_kernel() {
            other_lines += 1;
            previous = None;
            continue;
        }
        let bare = line.level.is_none()
            && line.monotonic_us.is_none()
            && line.wall_clock.is_none()
            && line.program.is_none()
            && line.caller.is_none();
        let inherited = match (&previous, bare) {
            (Some(previous), true) => previous.clone(),
            _ => {
                format = format.or_else(|| format_of(&line));
                Inherited {
                    level: line.level.unwrap_or(crate::LEVEL_WHEN_UNKNOWN),
                    facility: line.facility.unwrap_or(0),
                    monotonic_us: line.monotonic_us,
                    wall_clock_ms: line
                        .wall_clock
                        .and_then(|stamp| clock::parse_stamp(stamp, year_hint)),
                    caller: line.caller,
                }
            }
        };
        records.push(KmsgRecord {
            level: inherited.level,
            facility: inherited.facility,
            sequence: 0,
            monotonic_us: inherited.monotonic_us.unwrap_or(0),
            continuation: false,
            message: line.message.to_string(),
            dictionary: Vec::new(),
            caller: inherited.caller,
            wall_clock_ms: inherited.wall_clock_ms,
        });
        previous = Some(inherited);
    }
    let blocked = crate::blocked_task_reports_in_text(text);
    let mut log = KernelLog {
        source: KernelLogSource::File,
        records,
        blocked_task_reports: blocked.reports,
        blocked_task_reports_dropped: blocked.dropped,
        netdev_ref_trackers: crate::netdev_ref_trackers_in_text(text),
        ..KernelLog::default()
    };
    // The reports keep their stamps as printed; give them the instant, as the records have.
    let instant = |position: &mut nodedoc_model::LogPosition| {
        position.wall_clock_ms = position
            .wall_clock
            .as_deref()
            .and_then(|stamp| clock::parse_stamp(stamp, year_hint));
    };
    for report in &mut log.blocked_task_reports {
        instant(&mut report.logged_at);
    }
    for tracker in &mut log.netdev_ref_trackers {
        instant(&mut tracker.logged_at);
    }
    log.file = Some(describe(&log, format.unwrap_or("text"), other_lines));
    log
}

/// The level, facility, times and caller a line without prefixes takes from the line before.
#[derive(Clone, Debug)]
struct Inherited {
    level: u8,
    facility: u8,
    monotonic_us: Option<u64>,
    wall_clock_ms: Option<i64>,
    caller: Option<PrintkCaller>,
}

/// The tool that wrote a line, from its prefixes.
fn format_of(line: &LogLine<'_>) -> Option<&'static str> {
    match (line.program, line.wall_clock, line.monotonic_us) {
        (Some(_), Some(stamp), _) if stamp.contains('-') => Some("syslog (ISO 8601 stamps)"),
        (Some(_), Some(_), _) => Some("syslog or journalctl -k"),
        (None, Some(_), _) => Some("dmesg -T"),
        (None, None, Some(_)) => Some("dmesg"),
        _ => None,
    }
}

/// What the log says of itself: the kernel that wrote it, its last times.
fn describe(log: &KernelLog, format: &str, other_lines: u64) -> KernelLogFile {
    let kernel_release = log
        .records
        .iter()
        .rev()
        .find_map(|r| linux_version(&r.message))
        .or_else(|| {
            log.blocked_task_reports
                .iter()
                .rev()
                .find_map(|r| r.kernel_release.clone())
        });
    KernelLogFile {
        path: String::new(),
        format: format.to_string(),
        kernel_release,
        other_lines,
        skipped_bytes: 0,
        last_monotonic_us: log
            .records
            .iter()
            .rev()
            .map(|r| r.monotonic_us)
            .find(|&us| us > 0),
        last_wall_clock_ms: log.records.iter().rev().find_map(|r| r.wall_clock_ms),
    }
}

/// `Linux version 6.1.0-18-amd64 (debian-kernel@…) …` → `6.1.0-18-amd64`.
fn linux_version(message: &str) -> Option<String> {
    let rest = message.trim_start().strip_prefix("Linux version ")?;
    let release = rest.split_whitespace().next()?;
    (!release.is_empty() && release.len() <= 128).then(|| release.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dmesg_text_keeps_its_own_clock() {
        let text = "[    0.000000] Linux version 5.15.0-91-generic (buildd@lcy02) #101-Ubuntu SMP\n\
                    [ 1000.000001] unregister_netdevice: waiting for veth1 to become free. Usage count = 1\n\
                    [ 1010.000001] unregister_netdevice: waiting for veth1 to become free. Usage count = 1\n\
                    [ 2000.5] eth0: link up\n";
        let log = parse_kernel_log_file(text, None);
        assert_eq!(log.source, KernelLogSource::File);
        assert_eq!(log.records.len(), 4);
        let file = log.file.unwrap();
        assert_eq!(file.format, "dmesg");
        assert_eq!(file.kernel_release.as_deref(), Some("5.15.0-91-generic"));
        assert_eq!(file.last_monotonic_us, Some(2_000_500_000));
        assert_eq!(file.last_wall_clock_ms, None);
    }

    #[test]
    fn syslog_lines_of_other_programs_are_skipped_and_yearless_stamps_get_a_year() {
        // 2024-02-10: a file last written in February; a December line is of 2023.
        let modified = clock::civil_ms(2024, 2, 10, 0, 0, 0, 0).unwrap() / 1000;
        let text = "Dec 31 23:59:50 node-1 kernel: [  5.000000] first\n\
                    Dec 31 23:59:55 node-1 CRON[123]: (root) CMD (true)\n\
                    Jan  1 00:00:10 node-1 kernel: unregister_netdevice: waiting for veth1 to become free. Usage count = 1\n";
        let log = parse_kernel_log_file(text, Some(modified));
        assert_eq!(log.records.len(), 2);
        assert_eq!(log.records[0].monotonic_us, 5_000_000);
        assert_eq!(
            log.records[0].wall_clock_ms,
            clock::civil_ms(2023, 12, 31, 23, 59, 50, 0)
        );
        assert_eq!(
            log.records[1].wall_clock_ms,
            clock::civil_ms(2024, 1, 1, 0, 0, 10, 0)
        );
        let file = log.file.as_ref().unwrap();
        assert_eq!(file.other_lines, 1);
        assert_eq!(file.format, "syslog or journalctl -k");
        assert_eq!(file.last_monotonic_us, Some(5_000_000));
        // The log's "now" is its last line: the veth line is 0 s old, the first 20 s.
        let host = nodedoc_model::HostInfo {
            uptime_us: 99_000_000_000,
            ..Default::default()
        };
        assert_eq!(
            log.age_secs(&host, 0, log.records[1].wall_clock_ms),
            Some(0.0)
        );
        assert_eq!(
            log.age_secs(&host, 0, log.records[0].wall_clock_ms),
            Some(20.0)
        );
    }

    /// A syslog file spans reboots: the time since boot starts again at each, so ages are
    /// taken on the wall clock when the lines have one.
    #[test]
    fn ages_across_a_reboot_are_on_the_wall_clock() {
        let modified = clock::civil_ms(2024, 3, 1, 0, 0, 0, 0).unwrap() / 1000;
        let text = "Feb 10 10:00:00 node-1 kernel: [ 9000.000000] unregister_netdevice: waiting for veth1 to become free. Usage count = 1\n\
                    Feb 10 11:00:00 node-1 kernel: [    5.000000] Linux version 6.1.0-18-amd64 (debian-kernel@lists.debian.org)\n";
        let log = parse_kernel_log_file(text, Some(modified));
        let first = &log.records[0];
        assert_eq!(first.monotonic_us, 9_000_000_000);
        let host = nodedoc_model::HostInfo::default();
        assert_eq!(
            log.age_secs(&host, first.monotonic_us, first.wall_clock_ms),
            Some(3600.0)
        );
        // Without a wall clock, the time since boot is all there is; a time later than the
        // log's end on that clock is of an earlier boot, whose age cannot be told.
        assert_eq!(log.age_secs(&host, 4_000_000, None), Some(1.0));
        assert_eq!(log.age_secs(&host, 9_000_000_000, None), None);
        assert_eq!(
            log.file.as_ref().unwrap().kernel_release.as_deref(),
            Some("6.1.0-18-amd64")
        );
    }

    #[test]
    fn dmesg_t_and_continuations_and_user_space_facility() {
        let text = "[Thu May 20 08:53:35 2021] INFO: task mount.nfs:1234 blocked for more than 120 seconds.\n\
                    [Thu May 20 08:53:35 2021]       Not tainted 5.11.0 #1\n\
                    <14>[  470.015271] forged by user space\n\
                    \x20 continued line\n";
        let log = parse_kernel_log_file(text, None);
        assert_eq!(log.file.as_ref().unwrap().format, "dmesg -T");
        assert_eq!(
            log.records[0].wall_clock_ms,
            clock::civil_ms(2021, 5, 20, 8, 53, 35, 0)
        );
        assert_eq!(log.records[2].facility, 1);
        assert_eq!(
            log.records[3].facility, 1,
            "a continuation keeps the facility"
        );
        assert_eq!(log.records[3].monotonic_us, 470_015_271);
        assert_eq!(log.blocked_task_reports.len(), 1);
        let report = &log.blocked_task_reports[0];
        assert_eq!(report.pid, 1234);
        assert_eq!(
            report.logged_at.wall_clock_ms,
            clock::civil_ms(2021, 5, 20, 8, 53, 35, 0),
            "a report's stamp is read as the records' are"
        );
    }

    #[test]
    fn saved_dev_kmsg_records() {
        let text = "6,1,5000000,-;Linux version 6.1.0 (x) #1\n4,2,9000000,-;unregister_netdevice: waiting for lo to become free. Usage count = 1\n";
        let log = parse_kernel_log_file(text, None);
        assert_eq!(log.records.len(), 2);
        let file = log.file.unwrap();
        assert_eq!(file.format, "/dev/kmsg records");
        assert_eq!(file.kernel_release.as_deref(), Some("6.1.0"));
        assert_eq!(file.last_monotonic_us, Some(9_000_000));
    }
}
