//! The text form of the kernel log: what `syslog(2)` returns and `dmesg` prints.

use nodedoc_model::{KernelLog, KernelLogSource, KmsgRecord, PrintkCaller};

use crate::dev_kmsg::LogBuilder;
use crate::Error;

/// The level given to lines that carry no `<prio>`, such as plain `dmesg` output.
///
/// Text without priorities cannot tell; info is the level of most kernel lines and the
/// least alarming, so a detector that weighs levels does not raise on a guess. Detectors
/// should match on message text for such logs.
pub const LEVEL_WHEN_UNKNOWN: u8 = 6;

/// `SYSLOG_ACTION_READ_ALL` from `include/linux/syslog.h`.
const SYSLOG_ACTION_READ_ALL: libc::c_int = 3;
/// `SYSLOG_ACTION_SIZE_BUFFER` from `include/linux/syslog.h`.
const SYSLOG_ACTION_SIZE_BUFFER: libc::c_int = 10;

/// Reads the kernel log through `syslog(2)` (`klogctl`), the fallback when `/dev/kmsg`
/// cannot be opened, and parses it with [`parse_dmesg_text`].
///
/// This is the text `dmesg --raw` prints: one line per line of each record, every line with
/// the record's `<prio>` and `[seconds.micros]`, so facility and level survive but the
/// sequence number and the dictionary do not (`sequence` is 0). Bytes are raw, not
/// escaped; text that is not UTF-8 is replaced with U+FFFD.
///
/// Reading does not clear the buffer. It fails with `EPERM` when `kernel.dmesg_restrict=1`
/// and the caller lacks `CAP_SYSLOG`.
pub fn read_syslog_buffer(since_us: Option<u64>) -> Result<KernelLog, Error> {
    // SAFETY: SIZE_BUFFER ignores the buffer and length arguments.
    let size = unsafe { libc::klogctl(SYSLOG_ACTION_SIZE_BUFFER, std::ptr::null_mut(), 0) };
    let size = usize::try_from(size).map_err(|_| Error::Syslog {
        action: "SYSLOG_ACTION_SIZE_BUFFER",
        source: std::io::Error::last_os_error(),
    })?;
    // The kernel's length argument is an int; a ring that big does not exist, but the
    // cast must not wrap if a kernel ever claims one.
    let length = libc::c_int::try_from(size).unwrap_or(libc::c_int::MAX);
    let mut buffer = vec![0u8; length as usize];
    // SAFETY: `buffer` is valid for writes of `length` bytes and outlives the call.
    let read = unsafe {
        libc::klogctl(
            SYSLOG_ACTION_READ_ALL,
            buffer.as_mut_ptr().cast::<libc::c_char>(),
            length,
        )
    };
    let read = usize::try_from(read).map_err(|_| Error::Syslog {
        action: "SYSLOG_ACTION_READ_ALL",
        source: std::io::Error::last_os_error(),
    })?;
    buffer.truncate(read);
    Ok(parse_dmesg_text(
        &String::from_utf8_lossy(&buffer),
        since_us,
    ))
}

/// Parses the text of the kernel log as `syslog(2)`, `dmesg --raw` or plain `dmesg`
/// prints it, live or saved to a file.
///
/// Each line is `[<prio>][[seconds.micros] ][[caller] ]message`:
///
/// - `<prio>` gives facility and level; without it the facility is 0 and the level is
///   [`LEVEL_WHEN_UNKNOWN`]. util-linux prints `<-1>` for a facility it does not know, which
///   is treated as absent.
/// - `[   12.345678]` gives the timestamp; without it (`printk.time=0`, or text that does
///   not start with a timestamp such as `[Firmware Bug]: …`) the record's time is unknown:
///   `monotonic_us` is 0 and the record is kept whatever `since_us` says, because its age
///   cannot be told.
/// - `[    T123]`, the caller id of `CONFIG_PRINTK_CALLER`, becomes
///   [`KmsgRecord::caller`] and leaves the message, so messages start where detectors
///   expect.
///
/// A line with neither prefix that starts with whitespace is how util-linux `dmesg` prints
/// the second and later lines of a multi-line record: it takes the previous record's level,
/// facility and time, and loses its indentation. Sequence numbers are 0 and dictionaries
/// empty: the text has neither. `\xNN` is left as written, since `dmesg` text is not
/// escaped by the kernel (util-linux escapes some bytes itself, which cannot be told apart
/// from text that contains `\x`).
///
/// A line is counted in [`KernelLog::malformed`] when its prefix is there but broken: a
/// `<prio>` cut short or out of range, a timestamp cut short (`[   12.34`), unparseable
/// (`[1.2.3]`) or out of range. Blank lines are skipped uncounted. The result's source is
/// [`KernelLogSource::DmesgText`]; a caller parsing a user's file may set it to
/// [`KernelLogSource::File`].
pub fn parse_dmesg_text(text: &str, since_us: Option<u64>) -> KernelLog {
    let mut log = LogBuilder::new(KernelLogSource::DmesgText, since_us);
    // The last line's level, facility, time and caller, for the lines that continue it.
    let mut previous: Option<(u8, u8, Option<u64>, Option<PrintkCaller>)> = None;
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        let Ok(parsed) = parse_dmesg_line(line) else {
            log.count_malformed();
            previous = None;
            continue;
        };
        let continues_previous = parsed.priority.is_none()
            && parsed.timestamp_us.is_none()
            && line.starts_with(char::is_whitespace);
        let (level, facility, timestamp_us, caller, message) = match previous {
            Some((level, facility, timestamp_us, caller)) if continues_previous => (
                level,
                facility,
                timestamp_us,
                caller,
                parsed.message.trim_start(),
            ),
            _ => {
                let (level, facility) = match parsed.priority {
                    Some(Priority::Known { level, facility }) => (level, facility),
                    Some(Priority::Unknown) | None => (LEVEL_WHEN_UNKNOWN, 0),
                };
                (
                    level,
                    facility,
                    parsed.timestamp_us,
                    parsed.caller,
                    parsed.message,
                )
            }
        };
        previous = Some((level, facility, timestamp_us, caller));
        let record = KmsgRecord {
            level,
            facility,
            sequence: 0,
            monotonic_us: timestamp_us.unwrap_or(0),
            continuation: false,
            message: message.to_string(),
            dictionary: Vec::new(),
            caller,
            wall_clock_ms: None,
        };
        match (since_us, timestamp_us) {
            (Some(since), Some(at)) if at < since => log.skip_before_window(),
            _ => log.keep(record),
        }
    }
    log.finish()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Priority {
    Known {
        level: u8,
        facility: u8,
    },
    /// util-linux's `<-1>`.
    Unknown,
}

#[derive(Debug, PartialEq, Eq)]
struct DmesgLine<'a> {
    priority: Option<Priority>,
    timestamp_us: Option<u64>,
    caller: Option<PrintkCaller>,
    message: &'a str,
}

/// A line whose prefix is present but broken.
#[derive(Debug, PartialEq, Eq)]
struct Malformed;

fn parse_dmesg_line(line: &str) -> Result<DmesgLine<'_>, Malformed> {
    let (priority, rest) = match split_priority(line)? {
        Some((priority, rest)) => (Some(priority), rest),
        None => (None, line),
    };
    let (timestamp_us, caller, rest) = match split_timestamp(rest)? {
        Some((timestamp_us, rest)) => {
            let (caller, rest) = split_caller_id(rest);
            (Some(timestamp_us), caller, rest)
        }
        None => (None, None, rest),
    };
    Ok(DmesgLine {
        priority,
        timestamp_us,
        caller,
        message: rest,
    })
}

/// Splits `<prio>` off the line. `Ok(None)` when the line does not start with one: a `<`
/// not followed by digits is message text.
fn split_priority(line: &str) -> Result<Option<(Priority, &str)>, Malformed> {
    let Some(after_bracket) = line.strip_prefix('<') else {
        return Ok(None);
    };
    let (negative, number) = match after_bracket.strip_prefix('-') {
        Some(number) => (true, number),
        None => (false, after_bracket),
    };
    let digits_end = number
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(number.len());
    if digits_end == 0 {
        return Ok(None);
    }
    let Some(rest) = number[digits_end..].strip_prefix('>') else {
        // `<6` at the end of the line is a prefix cut short; `<3 you` is a message.
        return if digits_end == number.len() {
            Err(Malformed)
        } else {
            Ok(None)
        };
    };
    if negative {
        return Ok(Some((Priority::Unknown, rest)));
    }
    let priority: u64 = number[..digits_end].parse().map_err(|_| Malformed)?;
    let facility = u8::try_from(priority >> 3).map_err(|_| Malformed)?;
    let level = (priority & 7) as u8;
    Ok(Some((Priority::Known { level, facility }, rest)))
}

/// Splits `[seconds.micros] ` off the line. `Ok(None)` when the bracket holds something
/// other than a number (`[Firmware Bug]`), so it is message text.
fn split_timestamp(text: &str) -> Result<Option<(u64, &str)>, Malformed> {
    let Some(after_bracket) = text.strip_prefix('[') else {
        return Ok(None);
    };
    let looks_numeric = |inside: &str| {
        inside.contains(|c: char| c.is_ascii_digit())
            && inside
                .chars()
                .all(|c| c == ' ' || c == '.' || c.is_ascii_digit())
    };
    let Some(close) = after_bracket.find(']') else {
        // `[   12.34` to the end of the line is a timestamp cut short.
        return if looks_numeric(after_bracket) {
            Err(Malformed)
        } else {
            Ok(None)
        };
    };
    let inside = &after_bracket[..close];
    if !looks_numeric(inside) {
        return Ok(None);
    }
    let timestamp_us = parse_seconds(inside.trim_start_matches(' ')).ok_or(Malformed)?;
    let rest = &after_bracket[close + 1..];
    Ok(Some((timestamp_us, rest.strip_prefix(' ').unwrap_or(rest))))
}

/// `12.345678` (or `12`) to microseconds. Fractions are scaled to six digits, so text
/// from tools that print fewer or more places still lands on the right microsecond.
fn parse_seconds(text: &str) -> Option<u64> {
    let (seconds, fraction) = text.split_once('.').unwrap_or((text, ""));
    if seconds.is_empty() || !seconds.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let micros = fraction
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(6)
        .fold(0u64, |value, digit| value * 10 + u64::from(digit - b'0'));
    seconds
        .parse::<u64>()
        .ok()?
        .checked_mul(1_000_000)?
        .checked_add(micros)
}

/// Splits a `CONFIG_PRINTK_CALLER` id, `[    T123] ` or `[     C1] `, off the text.
pub(crate) fn split_caller_id(text: &str) -> (Option<PrintkCaller>, &str) {
    let Some(after_bracket) = text.strip_prefix('[') else {
        return (None, text);
    };
    let Some(close) = after_bracket.find(']') else {
        return (None, text);
    };
    let Ok(caller) = after_bracket[..close].trim_start_matches(' ').parse() else {
        return (None, text);
    };
    let rest = &after_bracket[close + 1..];
    (Some(caller), rest.strip_prefix(' ').unwrap_or(rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn only_record(text: &str) -> KmsgRecord {
        let log = parse_dmesg_text(text, None);
        assert_eq!(log.malformed, 0, "{text:?}");
        assert_eq!(log.records.len(), 1, "{text:?}: {:?}", log.records);
        log.records.into_iter().next().unwrap()
    }

    #[test]
    fn raw_syslog_line() {
        let record = only_record("<6>[   12.345678] unregister_netdevice: waiting for cli-veth to become free. Usage count = 1\n");
        assert_eq!((record.level, record.facility), (6, 0));
        assert_eq!(record.monotonic_us, 12_345_678);
        assert_eq!(record.sequence, 0);
        assert_eq!(
            record.message,
            "unregister_netdevice: waiting for cli-veth to become free. Usage count = 1"
        );
    }

    #[test]
    fn plain_dmesg_line() {
        let record = only_record(
            "[243000.000123] INFO: task s6-sync:362091 blocked for more than 120 seconds.",
        );
        assert_eq!((record.level, record.facility), (LEVEL_WHEN_UNKNOWN, 0));
        assert_eq!(record.monotonic_us, 243_000_000_123);
        assert_eq!(
            record.message,
            "INFO: task s6-sync:362091 blocked for more than 120 seconds."
        );
    }

    #[test]
    fn user_facility_and_wide_priorities() {
        // Written as <3>, <191> and <9999> to /dev/kmsg; the kernel stored these.
        assert_eq!(
            (
                only_record("<11>[  470.003612] x").facility,
                only_record("<11>[  470.003612] x").level
            ),
            (1, 3)
        );
        let local7 = only_record("<191>[  470.015278] x");
        assert_eq!((local7.facility, local7.level), (23, 7));
        let wrapped = only_record("<1807>[  470.015280] x");
        assert_eq!((wrapped.facility, wrapped.level), (225, 7));
    }

    #[test]
    fn util_linux_unknown_priority() {
        let record = only_record("<-1>[  470.015278] probe fac23");
        assert_eq!((record.level, record.facility), (LEVEL_WHEN_UNKNOWN, 0));
        assert_eq!(record.monotonic_us, 470_015_278);
        assert_eq!(record.message, "probe fac23");
    }

    #[test]
    fn no_timestamp() {
        // printk.time=0, and a bracket that is part of the message.
        let record = only_record("<4>[Firmware Bug]: TSC doesn't count with P0 frequency!");
        assert_eq!(record.level, 4);
        assert_eq!(record.monotonic_us, 0);
        assert_eq!(
            record.message,
            "[Firmware Bug]: TSC doesn't count with P0 frequency!"
        );
        assert_eq!(only_record("<6>hello").message, "hello");
        assert_eq!(only_record("just text").message, "just text");
        assert_eq!(only_record("<3 you").message, "<3 you");
        assert_eq!(only_record("<>x").message, "<>x");
        assert_eq!(only_record("[]x").message, "[]x");
    }

    #[test]
    fn timestamp_precision() {
        assert_eq!(only_record("[0.000000] a").monotonic_us, 0);
        assert_eq!(only_record("[1.5] a").monotonic_us, 1_500_000);
        assert_eq!(only_record("[1.1234567] a").monotonic_us, 1_123_456);
        assert_eq!(only_record("[  7] a").monotonic_us, 7_000_000);
        assert_eq!(only_record("[7.] a").monotonic_us, 7_000_000);
    }

    #[test]
    fn caller_id_leaves_the_message_for_the_caller_field() {
        let record = only_record("<6>[    0.000000] [    T0] Linux version 6.18.44");
        assert_eq!(record.message, "Linux version 6.18.44");
        assert_eq!(record.caller, Some(PrintkCaller::Thread(0)));
        let cpu = only_record("[    1.000000] [     C1] x");
        assert_eq!(
            (cpu.message.as_str(), cpu.caller),
            ("x", Some(PrintkCaller::Cpu(1)))
        );
        // util-linux prints the two brackets without a space between them.
        let joined = only_record("[ 1431.920513][ T1054] INFO: task jbd2/sda-8:3563 blocked");
        assert_eq!(joined.caller, Some(PrintkCaller::Thread(1054)));
        assert_eq!(joined.message, "INFO: task jbd2/sda-8:3563 blocked");
        // Not caller ids: kept.
        assert_eq!(only_record("[    1.000000] [drm] x").message, "[drm] x");
        assert_eq!(only_record("[    1.000000] [T] x").message, "[T] x");
        // Only right after a timestamp.
        assert_eq!(only_record("<6>[T1] x").message, "[T1] x");
    }

    #[test]
    fn continuation_lines_keep_the_caller() {
        let log = parse_dmesg_text("[  1.0] [  T42] first\n                  second\n", None);
        assert_eq!(log.records[1].message, "second");
        assert_eq!(log.records[1].caller, Some(PrintkCaller::Thread(42)));
    }

    #[test]
    fn multi_line_record_as_util_linux_prints_it() {
        let text = "<7>[  470.015271] probe nl a\n                  b\\c\ttab end\n<5>[  470.015275] next\n";
        let log = parse_dmesg_text(text, None);
        assert_eq!(log.records.len(), 3);
        assert_eq!(log.records[1].message, "b\\c\ttab end");
        assert_eq!(log.records[1].level, 7);
        assert_eq!(log.records[1].monotonic_us, 470_015_271);
        assert_eq!(log.records[2].level, 5);
    }

    #[test]
    fn multi_line_record_as_syslog_returns_it() {
        let text = "<14>[  470.015271] probe nl a\n<14>[  470.015271] b\\c\ttab \u{fffd} end\n";
        let log = parse_dmesg_text(text, None);
        assert_eq!(log.records.len(), 2);
        assert_eq!(log.records[1].facility, 1);
        assert_eq!(log.records[1].message, "b\\c\ttab \u{fffd} end");
    }

    #[test]
    fn escapes_are_left_alone() {
        assert_eq!(only_record("[1.0] a\\x41").message, "a\\x41");
    }

    #[test]
    fn malformed_prefixes_are_counted() {
        let text = "<6\n\
                    <99999999999999999999999>[1.0] x\n\
                    <2048>[1.0] x\n\
                    [   12.34\n\
                    [1.2.3] x\n\
                    [.5] x\n\
                    [99999999999999999999.0] x\n\
                    [ 1 2.0] x\n\
                    <6>[1.0] fine\n";
        let log = parse_dmesg_text(text, None);
        assert_eq!(log.malformed, 8, "{:?}", log.records);
        assert_eq!(log.records.len(), 1);
        assert_eq!(log.records[0].message, "fine");
    }

    #[test]
    fn continuation_after_malformed_line_stands_alone() {
        let log = parse_dmesg_text("<3>[1.0] a\n[1.2.3] bad\n   indented\n", None);
        assert_eq!(log.malformed, 1);
        assert_eq!(log.records[1].message, "   indented");
        assert_eq!(log.records[1].monotonic_us, 0);
    }

    #[test]
    fn window() {
        let text = "<6>[1.000000] old\n    old continued\n<6>[2.000000] edge\n<6>no time\n<6>[3.000000] new\n";
        let log = parse_dmesg_text(text, Some(2_000_000));
        assert_eq!(log.skipped_before_window, 2);
        let messages: Vec<&str> = log.records.iter().map(|r| r.message.as_str()).collect();
        assert_eq!(messages, ["edge", "no time", "new"]);
    }

    #[test]
    fn blank_lines_and_crlf() {
        let log = parse_dmesg_text("\n\r\n[1.0] a\r\n   \n[2.0] b", None);
        assert_eq!(log.malformed, 0);
        let messages: Vec<&str> = log.records.iter().map(|r| r.message.as_str()).collect();
        assert_eq!(messages, ["a", "b"]);
        assert_eq!(log.source, KernelLogSource::DmesgText);
    }

    #[test]
    fn every_truncation_of_a_real_line() {
        let line =
            "<3>[243000.000123] INFO: task s6-sync:362091 blocked for more than 120 seconds.";
        for cut in 0..=line.len() {
            let log = parse_dmesg_text(&line[..cut], None);
            assert!(
                log.records.len() + log.malformed as usize <= 1,
                "cut at {cut}"
            );
        }
    }
}
