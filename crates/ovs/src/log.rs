//! ovs-vswitchd.log: a bounded tail, reduced to the events nodedoc's detectors read.
//!
//! OVS log lines are `TIMESTAMP|SEQUENCE|MODULE|LEVEL|MESSAGE`, e.g.
//! `2021-04-15T12:36:29.723Z|00595|bridge|INFO|bridge br-int: added interface ha-d489f511-9f on port 17744`.
//! In the failure nodedoc looks for, ovs-vswitchd writes thousands of lines a second (one
//! `error receiving Ethernet packet` per poll of a device that is gone, until the rate
//! limiter starts saying `Dropped N log messages`), so only the end of the file is read and
//! repetitive lines are kept as counts.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::Duration;

use nodedoc_model::hostfile::{self, HostFileError, Progress};
use nodedoc_model::{OvsLog, OvsLogEvent, OvsLogEventKind};

use crate::error::OvsError;
use crate::vswitchd::TrustedOwners;

/// How much of the end of the log is read by default: at the flood rate of the seed's
/// incident this is still minutes of history, and the add/delete lines of a flapping port
/// survive in it because the rate limiter caps the flood.
pub const DEFAULT_TAIL_BYTES: u64 = 16 << 20;

/// Below this, the skipped head of the file is read once to count its lines, so events
/// carry their real line numbers (`sed -n Np` works); above it they count from the tail.
const LINE_COUNT_LIMIT: u64 = 64 << 20;

/// Add/delete events kept per interface (the most recent; counts keep the rest).
const ADD_DELETE_KEPT_PER_INTERFACE: usize = 512;

/// Parses one log line into an event, or `None` for lines nodedoc does not read.
pub fn parse_line(line: &str) -> Option<(String, OvsLogEventKind)> {
    let mut fields = line.splitn(5, '|');
    let timestamp = fields.next()?;
    let _sequence = fields.next()?;
    // The messages are matched by their text alone: the same message comes from different
    // modules across OVS versions (dpif vs dpif_netlink, bridge vs netdev).
    let _module = fields.next()?;
    let _level = fields.next()?;
    let message = fields.next()?.trim_end();
    let kind = parse_message(message)?;
    Some((timestamp.to_string(), kind))
}

fn parse_message(message: &str) -> Option<OvsLogEventKind> {
    if let Some(rest) = message.strip_prefix("bridge ") {
        // "bridge BR: added interface X on port N"
        let (bridge, what) = rest.split_once(": ")?;
        let (added, rest) = if let Some(rest) = what.strip_prefix("added interface ") {
            (true, rest)
        } else if let Some(rest) = what.strip_prefix("deleted interface ") {
            (false, rest)
        } else {
            return None;
        };
        let (interface, port) = rest.rsplit_once(" on port ")?;
        let ofport: i64 = port.trim().parse().ok()?;
        if interface.is_empty() || bridge.is_empty() {
            return None;
        }
        let (bridge, interface) = (bridge.to_string(), interface.to_string());
        return Some(if added {
            OvsLogEventKind::InterfaceAdded {
                bridge,
                interface,
                ofport,
            }
        } else {
            OvsLogEventKind::InterfaceDeleted {
                bridge,
                interface,
                ofport,
            }
        });
    }
    if let Some(rest) = message.strip_prefix("error receiving Ethernet packet on ") {
        let (interface, error) = rest.split_once(": ")?;
        return Some(OvsLogEventKind::ReceiveError {
            interface: interface.to_string(),
            error: error.to_string(),
        });
    }
    if let Some(rest) = message.strip_prefix("Dropped ") {
        let (count, rest) = rest.split_once(' ')?;
        if !rest.starts_with("log messages") {
            return None;
        }
        return Some(OvsLogEventKind::DroppedMessages {
            count: count.parse().ok()?,
        });
    }
    if let Some(rest) = message.strip_prefix("could not open network device ") {
        // "could not open network device X (No such device)"
        let (interface, error) = rest.split_once(" (")?;
        return Some(OvsLogEventKind::OpenFailed {
            interface: interface.to_string(),
            error: error.strip_suffix(')').unwrap_or(error).to_string(),
        });
    }
    if let Some((datapath, rest)) = message.split_once(": failed to query port ") {
        // "system@ovs-system: failed to query port X: No such device" (module dpif)
        let (interface, error) = rest.split_once(": ")?;
        return Some(OvsLogEventKind::QueryPortFailed {
            datapath: datapath.to_string(),
            interface: interface.to_string(),
            error: error.to_string(),
        });
    }
    None
}

/// `2021-04-15T12:36:29.723Z` (milliseconds optional) in milliseconds since the epoch.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    let text = text.strip_suffix('Z')?;
    let (date, time) = text.split_once('T')?;
    let mut date_parts = date.splitn(3, '-');
    let year: i64 = date_parts.next()?.parse().ok()?;
    let month: i64 = date_parts.next()?.parse().ok()?;
    let day: i64 = date_parts.next()?.parse().ok()?;
    let (hms, millis) = match time.split_once('.') {
        Some((hms, frac)) => {
            // ASCII digits only: a multi-byte character among the first three would make
            // the scale's exponent underflow (found by the property test).
            let digits = frac.get(..frac.len().min(3))?;
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let scale = 10i64.pow(3 - digits.len() as u32);
            (hms, digits.parse::<i64>().ok()? * scale)
        }
        None => (time, 0),
    };
    let mut time_parts = hms.splitn(3, ':');
    let hour: i64 = time_parts.next()?.parse().ok()?;
    let minute: i64 = time_parts.next()?.parse().ok()?;
    let second: i64 = time_parts.next()?.parse().ok()?;
    // Four-digit years, as OVS writes them: a longer one would overflow the arithmetic below.
    if !(0..=9999).contains(&year)
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    // Howard Hinnant's days-from-civil.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + hour * 3600 + minute * 60 + second) * 1000) + millis)
}

/// Reduces log text to an [`OvsLog`]. `first_line` is the line number of the text's first
/// line, when known.
pub fn reduce(text: &str, first_line: Option<u64>) -> OvsLog {
    let base = first_line.unwrap_or(1);
    let mut log = OvsLog {
        first_line,
        ..OvsLog::default()
    };
    let mut events: Vec<OvsLogEvent> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        log.lines_read += 1;
        let timestamp = line.split('|').next().unwrap_or_default();
        if parse_timestamp(timestamp).is_some() {
            if log.first_timestamp.is_none() {
                log.first_timestamp = Some(timestamp.to_string());
            }
            log.last_timestamp = Some(timestamp.to_string());
        }
        let Some((timestamp, kind)) = parse_line(line) else {
            continue;
        };
        *log.counts.entry(kind.name().to_string()).or_default() += 1;
        if let Some(interface) = kind.interface() {
            *log.interface_counts
                .entry(interface.to_string())
                .or_default()
                .entry(kind.name().to_string())
                .or_default() += 1;
        }
        events.push(OvsLogEvent {
            line: base + index as u64,
            unix_ms: parse_timestamp(&timestamp),
            timestamp,
            kind,
        });
    }
    log.events = thin(events);
    log
}

/// Keeps every add/delete (the most recent per interface) and only the first and last line
/// of each repetitive kind per interface.
fn thin(events: Vec<OvsLogEvent>) -> Vec<OvsLogEvent> {
    let mut add_delete_seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut last_of: BTreeMap<(String, &'static str), usize> = BTreeMap::new();
    let mut first_of: BTreeMap<(String, &'static str), usize> = BTreeMap::new();
    for (i, event) in events.iter().enumerate() {
        let interface = event.kind.interface().unwrap_or_default().to_string();
        match event.kind {
            OvsLogEventKind::InterfaceAdded { .. } | OvsLogEventKind::InterfaceDeleted { .. } => {
                *add_delete_seen.entry(interface).or_default() += 1;
            }
            _ => {
                let key = (interface, event.kind.name());
                first_of.entry(key.clone()).or_insert(i);
                last_of.insert(key, i);
            }
        }
    }
    let mut add_delete_skip: BTreeMap<String, usize> = add_delete_seen
        .into_iter()
        .map(|(k, n)| (k, n.saturating_sub(ADD_DELETE_KEPT_PER_INTERFACE)))
        .collect();
    let mut kept = Vec::new();
    for (i, event) in events.into_iter().enumerate() {
        let interface = event.kind.interface().unwrap_or_default().to_string();
        let keep = match event.kind {
            OvsLogEventKind::InterfaceAdded { .. } | OvsLogEventKind::InterfaceDeleted { .. } => {
                let skip = add_delete_skip.entry(interface).or_default();
                if *skip > 0 {
                    *skip -= 1;
                    false
                } else {
                    true
                }
            }
            _ => {
                let key = (interface, event.kind.name());
                first_of.get(&key) == Some(&i) || last_of.get(&key) == Some(&i)
            }
        };
        if keep {
            kept.push(event);
        }
    }
    kept
}

/// How to read the log: how much of its end, how long to wait on a stalled read, and whose
/// file it must be.
#[derive(Clone, Debug)]
pub struct LogReadOptions {
    /// How much of the end of the log to read ([`DEFAULT_TAIL_BYTES`]).
    pub tail_bytes: u64,
    /// Give up after this long without progress (a filesystem that does not answer).
    pub stall_deadline: Duration,
    /// Who must own the file: set for a log found through the daemon (root or the daemon's
    /// uid); `None` for a file the operator named.
    pub owners: Option<TrustedOwners>,
}

impl LogReadOptions {
    /// Reads the last `tail_bytes` of a file the operator named, with the default deadline.
    pub fn tail(tail_bytes: u64) -> LogReadOptions {
        LogReadOptions {
            tail_bytes,
            stall_deadline: hostfile::DEFAULT_STALL_DEADLINE,
            owners: None,
        }
    }
}

/// Reads the end of the log at `path` and reduces it. Only a regular file is opened (a FIFO or
/// device is refused unopened, see [`nodedoc_model::hostfile`]), of the right owner when
/// `options.owners` is set, and the read is abandoned when it stalls.
pub fn read_log(path: &Path, options: &LogReadOptions, found_by: &str) -> Result<OvsLog, OvsError> {
    let owned = path.to_path_buf();
    let options_owned = options.clone();
    let (bytes, size, read_pos, lines_before) =
        hostfile::guarded(path, options.stall_deadline, move |progress| {
            read_tail(&owned, &options_owned, progress)
        })
        .map_err(OvsError::Log)?;
    let start = size.saturating_sub(options.tail_bytes);
    let (text_start, first_line) = if start == 0 {
        (0, Some(1))
    } else {
        match bytes.iter().position(|&b| b == b'\n') {
            // The skipped bytes hold exactly one newline, at `newline`.
            Some(newline) => (newline + 1, lines_before.map(|n| n + 2)),
            None => (bytes.len(), None),
        }
    };
    let text = String::from_utf8_lossy(&bytes[text_start..]);
    let mut log = reduce(&text, first_line);
    log.path = path.display().to_string();
    log.found_by = found_by.to_string();
    log.size = size;
    log.read_from = read_pos + text_start as u64;
    Ok(log)
}

/// Opens the log and reads its tail, on [`hostfile::guarded`]'s thread: the bytes from one
/// before the tail, the file's size, where the bytes start, and the lines before them.
fn read_tail(
    path: &Path,
    options: &LogReadOptions,
    progress: &Progress,
) -> Result<(Vec<u8>, u64, u64, Option<u64>), HostFileError> {
    let io = |source| HostFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let (mut file, meta) = hostfile::open_regular(path)?;
    if let Some(owners) = &options.owners {
        hostfile::require_owner(path, &meta, owners.uids(), owners.words())?;
    }
    progress.tick();
    let size = meta.len();
    let start = size.saturating_sub(options.tail_bytes);
    // From one byte before the tail: if that byte is a newline, the tail starts on a whole
    // line; otherwise the partial line up to the first newline is dropped.
    let read_pos = start.saturating_sub(1);
    let lines_before = if read_pos == 0 {
        Some(0)
    } else if read_pos <= LINE_COUNT_LIMIT {
        Some(count_lines(&mut file, read_pos, progress).map_err(io)?)
    } else {
        None
    };
    file.seek(SeekFrom::Start(read_pos)).map_err(io)?;
    let mut bytes = Vec::with_capacity((size - read_pos) as usize);
    // The file keeps growing while it is read: stop at what was there plus a little.
    progress
        .reader(&mut file)
        .take(size - read_pos + (1 << 20))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    Ok((bytes, size, read_pos, lines_before))
}

/// Newlines in the first `limit` bytes of `file`.
fn count_lines(file: &mut File, limit: u64, progress: &Progress) -> std::io::Result<u64> {
    file.seek(SeekFrom::Start(0))?;
    let mut reader = progress.reader(file).take(limit);
    let mut buffer = vec![0u8; 1 << 20];
    let mut lines = 0u64;
    loop {
        let n = reader.read(&mut buffer)?;
        if n == 0 {
            return Ok(lines);
        }
        lines += buffer[..n].iter().filter(|&&b| b == b'\n').count() as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_kind_parses() {
        let cases = [
            (
                "2021-04-15T12:36:29.723Z|00595|bridge|INFO|bridge br-int: added interface ha-d489f511-9f on port 17744",
                OvsLogEventKind::InterfaceAdded { bridge: "br-int".into(), interface: "ha-d489f511-9f".into(), ofport: 17744 },
            ),
            (
                "2021-04-15T12:36:32.790Z|00597|bridge|INFO|bridge br-int: deleted interface ha-d489f511-9f on port 17744",
                OvsLogEventKind::InterfaceDeleted { bridge: "br-int".into(), interface: "ha-d489f511-9f".into(), ofport: 17744 },
            ),
            (
                "2026-11-25T12:07:20.015Z|00051|netdev_linux|WARN|error receiving Ethernet packet on ha-d489f511-9f: File descriptor in bad state",
                OvsLogEventKind::ReceiveError { interface: "ha-d489f511-9f".into(), error: "File descriptor in bad state".into() },
            ),
            (
                "2026-11-25T12:08:20.015Z|00090|netdev_linux|WARN|Dropped 81234 log messages in last 60 seconds (most recently, 0 seconds ago) due to excessive rate",
                OvsLogEventKind::DroppedMessages { count: 81234 },
            ),
            (
                "2021-04-26T08:13:16.076Z|00938|dpif|DBG|system@ovs-system: failed to query port ha-d489f511-9f: No such device",
                OvsLogEventKind::QueryPortFailed { datapath: "system@ovs-system".into(), interface: "ha-d489f511-9f".into(), error: "No such device".into() },
            ),
            (
                "2026-11-25T12:10:00.000Z|00020|bridge|WARN|could not open network device ha-d489f511-9f (No such device)",
                OvsLogEventKind::OpenFailed { interface: "ha-d489f511-9f".into(), error: "No such device".into() },
            ),
        ];
        for (line, kind) in cases {
            let (_, parsed) = parse_line(line).unwrap_or_else(|| panic!("{line}"));
            assert_eq!(parsed, kind, "{line}");
        }
    }

    #[test]
    fn other_and_hostile_lines_are_skipped_not_fatal() {
        for line in [
            "",
            "|||",
            "garbage",
            "2021-04-15T12:36:29.723Z|00595|bridge|INFO|bridge br-int: using datapath ID 00005e9d86f40c4d",
            "2021-04-15T12:36:29.723Z|00595|bridge|INFO|bridge br-int: added interface x on port many",
            "2021-04-15T12:36:29.723Z|00595|bridge|INFO|bridge : added interface x on port 1",
            "2021-04-15T12:36:29.723Z|00595|netdev_linux|WARN|Dropped lots log messages",
            "2021-04-15T12:36:29.723Z|00595|netdev_linux|WARN|error receiving Ethernet packet on x",
            "x|y|z|w|could not open network device tap0",
        ] {
            assert_eq!(parse_line(line), None, "{line:?}");
        }
    }

    #[test]
    fn timestamps() {
        assert_eq!(
            parse_timestamp("2021-04-15T12:36:29.723Z"),
            Some(1_618_490_189_723)
        );
        assert_eq!(parse_timestamp("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_timestamp("2000-02-29T00:00:01.5Z"),
            Some(951_782_401_500)
        );
        for bad in ["", "2021-04-15 12:36:29Z", "2021-13-01T00:00:00Z", "xT:Z"] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
    }

    /// Regressions found by the property test (tests/log_properties.rs): a fraction of
    /// multi-byte characters underflowed the scale's exponent, and a long year overflowed
    /// the day count. Both panicked in debug builds and gave garbage in release ones. The
    /// fuzz target `ovs_log` found the first one too, from a seed line with one byte
    /// changed (`\xea` read as U+FFFD), the first entry.
    #[test]
    fn hostile_timestamps_are_rejected_not_overflowed() {
        for bad in [
            "2021-04-15T12:36:30.\u{fffd}001Z",
            "2021-04-15T12:36:29.\u{e9}\u{e9}Z",
            "2021-04-15T12:36:29.\u{661}\u{661}Z",
            "99999999999999999-01-01T00:00:00Z",
            "-9223372036854775808-01-01T00:00:00Z",
            "2021-04-15T12:36:29.Z",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
        assert_eq!(
            parse_timestamp("2021-04-15T12:36:29.7239Z"),
            Some(1_618_490_189_723)
        );
    }

    #[test]
    fn floods_reduce_to_counts_with_first_and_last_lines() {
        let mut text = String::new();
        text.push_str(
            "2026-11-25T12:07:19.988Z|00046|bridge|INFO|bridge br0: added interface x on port 2\n",
        );
        for i in 0..1000 {
            text.push_str(&format!(
                "2026-11-25T12:07:20.{:03}Z|{:05}|netdev_linux|WARN|error receiving Ethernet packet on x: File descriptor in bad state\n",
                i % 1000,
                i + 47
            ));
        }
        let log = reduce(&text, Some(1));
        assert_eq!(log.lines_read, 1001);
        assert_eq!(log.count("receive-error"), 1000);
        assert_eq!(log.interface_counts["x"]["receive-error"], 1000);
        assert_eq!(log.events.len(), 3, "added + first and last receive errors");
        assert_eq!(log.events[1].line, 2);
        assert_eq!(log.events[2].line, 1001);
        assert_eq!(
            log.first_timestamp.as_deref(),
            Some("2026-11-25T12:07:19.988Z")
        );
    }

    #[test]
    fn tails_start_at_a_whole_line_with_real_line_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ovs-vswitchd.log");
        let mut text = String::new();
        for port in 1..=100 {
            text.push_str(&format!(
                "2021-04-15T12:36:29.723Z|{port:05}|bridge|INFO|bridge br-int: added interface p{port} on port {port}\n"
            ));
        }
        std::fs::write(&path, &text).unwrap();
        let whole = read_log(
            &path,
            &LogReadOptions::tail(DEFAULT_TAIL_BYTES),
            "--ovs-log",
        )
        .unwrap();
        assert_eq!(whole.count("interface-added"), 100);
        assert_eq!(whole.read_from, 0);
        let tail = read_log(&path, &LogReadOptions::tail(1000), "--ovs-log").unwrap();
        assert!(tail.read_from > 0);
        let first = &tail.events[0];
        let OvsLogEventKind::InterfaceAdded { ofport, .. } = first.kind else {
            panic!("{first:?}");
        };
        // Line N is port N: numbering survived the skipped head.
        assert_eq!(first.line, ofport as u64);
        assert_eq!(tail.events.last().unwrap().line, 100);
        let missing = read_log(
            &dir.path().join("nope.log"),
            &LogReadOptions::tail(10),
            "--ovs-log",
        )
        .unwrap_err();
        assert!(missing.to_string().contains("nope.log"), "{missing}");
    }

    #[test]
    fn a_log_found_through_the_daemon_must_be_a_regular_file_of_its_owner() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ovs-vswitchd.log");
        std::fs::write(&path, "2021-04-15T12:36:29.723Z|00001|bridge|INFO|bridge br-int: added interface p1 on port 1\n").unwrap();
        // SAFETY: getuid cannot fail.
        let me = unsafe { libc::getuid() };
        let mut options = LogReadOptions::tail(DEFAULT_TAIL_BYTES);
        options.owners = Some(TrustedOwners::root().and(me, "the daemon's"));
        assert_eq!(read_log(&path, &options, "test").unwrap().lines_read, 1);
        if me == 0 {
            // A file someone else could have put there.
            std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
            let err = read_log(&path, &options, "test").unwrap_err();
            assert!(
                err.to_string()
                    .ends_with("ovs-vswitchd.log is owned by uid 65534, not by root: not read"),
                "{err}"
            );
        }
        let fifo = dir.path().join("fifo-vswitchd.log");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o666) }, 0);
        let err = read_log(&fifo, &options, "test").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "ovs-vswitchd log {} is a FIFO (named pipe), not a regular file: not opened",
                fifo.display()
            )
        );
    }
}
