//! ovs-vswitchd.log: a bounded tail, reduced to the events nodedoc's detectors read.
//!
//! OVS log lines are `TIMESTAMP|SEQUENCE|MODULE|LEVEL|MESSAGE`, e.g.
//! `2021-04-15T12:36:29.723Z|00595|bridge|INFO|bridge br-int: added interface ha-d489f511-9f on port 17744`.
//! In the failure nodedoc looks for, ovs-vswitchd writes thousands of lines a second (one
//! `error receiving Ethernet packet` per poll of a device that is gone, until the rate
//! limiter starts saying `Dropped N log messages`), so only the end of the file is read and
//! repetitive lines are kept as counts.

use std::collections::{BTreeMap, HashMap, VecDeque};
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
    // Four-digit years, as OVS writes them: a longer one would overflow the arithmetic.
    if !(0..=9999).contains(&year) {
        return None;
    }
    let field = |v: i64| u32::try_from(v).ok();
    nodedoc_model::clock::civil_ms(
        year,
        field(month)?,
        field(day)?,
        field(hour)?,
        field(minute)?,
        field(second)?,
        field(millis)?,
    )
}

/// Reduces log text to an [`OvsLog`]. `first_line` is the line number of the text's first
/// line, when known.
pub fn reduce(text: &str, first_line: Option<u64>) -> OvsLog {
    let mut builder = LogBuilder::new(first_line, LogBounds::ONE_SHOT);
    for line in text.lines() {
        builder.push(line, 0);
    }
    builder.to_log()
}

/// How much a [`LogBuilder`] keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogBounds {
    /// Add/delete events kept per interface (the most recent; counts keep the rest).
    pub add_delete_per_interface: usize,
    /// Add/delete events kept in all: past it, the interface holding the most loses its
    /// oldest.
    pub add_delete_total: usize,
    /// Interfaces followed: past it, the one quiet the longest is forgotten with its counts.
    pub interfaces: usize,
}

impl LogBounds {
    /// One read of a bounded tail (`check`): the tail bounds the rest.
    pub const ONE_SHOT: LogBounds = LogBounds {
        add_delete_per_interface: ADD_DELETE_KEPT_PER_INTERFACE,
        add_delete_total: usize::MAX,
        interfaces: usize::MAX,
    };

    /// A log followed for as long as the agent runs: bounded whatever the log says.
    pub const AGENT: LogBounds = LogBounds {
        add_delete_per_interface: ADD_DELETE_KEPT_PER_INTERFACE,
        add_delete_total: 10_000,
        interfaces: 4_096,
    };
}

/// What the log said about one interface (or, for the builder's `global`, about none).
#[derive(Debug, Default)]
struct InterfaceLog {
    /// Lines of each kind.
    counts: BTreeMap<&'static str, u64>,
    /// The most recent add/delete events, with their order in the log.
    add_delete: VecDeque<(u64, OvsLogEvent)>,
    /// The first line of each repetitive kind.
    first: BTreeMap<&'static str, (u64, OvsLogEvent)>,
    /// The last line of each repetitive kind, once there was more than one.
    last: BTreeMap<&'static str, (u64, OvsLogEvent)>,
    /// The order of its last event (who is quiet the longest).
    last_order: u64,
    /// When its last line arrived (the caller's clock, ms).
    last_arrival_ms: u64,
}

/// Builds an [`OvsLog`] line by line: `check` feeds it a tail once, the agent keeps feeding it
/// the lines a [`LogFollower`](crate::log_follow::LogFollower) reads. Every line counts; of the
/// events only what the detectors read is kept — the most recent add/delete lines of each
/// interface and the first and last line of each repetitive kind — within [`LogBounds`].
#[derive(Debug)]
pub struct LogBuilder {
    bounds: LogBounds,
    first_line: Option<u64>,
    next_line: u64,
    lines_read: u64,
    first_timestamp: Option<String>,
    last_timestamp: Option<String>,
    interfaces: HashMap<String, InterfaceLog>,
    global: InterfaceLog,
    order: u64,
    add_delete_kept: usize,
    forgotten: u64,
}

impl LogBuilder {
    /// An empty builder; `first_line` is the line number of the first line it will be given,
    /// when known (events then count from 1).
    pub fn new(first_line: Option<u64>, bounds: LogBounds) -> LogBuilder {
        LogBuilder {
            bounds,
            first_line,
            next_line: first_line.unwrap_or(1),
            lines_read: 0,
            first_timestamp: None,
            last_timestamp: None,
            interfaces: HashMap::new(),
            global: InterfaceLog::default(),
            order: 0,
            add_delete_kept: 0,
            forgotten: 0,
        }
    }

    /// Lines given so far.
    pub fn lines_read(&self) -> u64 {
        self.lines_read
    }

    /// Interfaces forgotten to stay within the bounds (or for being quiet).
    pub fn forgotten(&self) -> u64 {
        self.forgotten
    }

    /// Line numbers start again at 1 (the log was rotated or truncated).
    pub fn restart_numbering(&mut self) {
        self.next_line = 1;
    }

    /// Takes one line (without its newline); `now_ms` is when it arrived, for
    /// [`forget_quiet`](Self::forget_quiet). Returns true when it was an event.
    pub fn push(&mut self, line: &str, now_ms: u64) -> bool {
        let number = self.next_line;
        self.next_line += 1;
        self.lines_read += 1;
        let timestamp = line.split('|').next().unwrap_or_default();
        if parse_timestamp(timestamp).is_some() {
            if self.first_timestamp.is_none() {
                self.first_timestamp = Some(timestamp.to_string());
            }
            self.last_timestamp = Some(timestamp.to_string());
        }
        let Some((timestamp, kind)) = parse_line(line) else {
            return false;
        };
        let name = kind.name();
        let event = OvsLogEvent {
            line: number,
            unix_ms: parse_timestamp(&timestamp),
            timestamp,
            kind,
        };
        self.order += 1;
        let order = self.order;
        let add_delete = matches!(
            event.kind,
            OvsLogEventKind::InterfaceAdded { .. } | OvsLogEventKind::InterfaceDeleted { .. }
        );
        let entry = match event.kind.interface() {
            None => &mut self.global,
            Some(interface) => {
                if !self.interfaces.contains_key(interface)
                    && self.interfaces.len() >= self.bounds.interfaces
                {
                    self.forget_quietest();
                }
                self.interfaces.entry(interface.to_string()).or_default()
            }
        };
        *entry.counts.entry(name).or_default() += 1;
        entry.last_order = order;
        entry.last_arrival_ms = now_ms;
        if add_delete {
            entry.add_delete.push_back((order, event));
            self.add_delete_kept += 1;
            if entry.add_delete.len() > self.bounds.add_delete_per_interface {
                entry.add_delete.pop_front();
                self.add_delete_kept -= 1;
            }
            if self.add_delete_kept > self.bounds.add_delete_total {
                self.trim_largest();
            }
        } else if let std::collections::btree_map::Entry::Vacant(first) = entry.first.entry(name) {
            first.insert((order, event));
        } else {
            entry.last.insert(name, (order, event));
        }
        true
    }

    /// Forgets the interface whose last event is the oldest.
    fn forget_quietest(&mut self) {
        let quietest = self
            .interfaces
            .iter()
            .min_by_key(|(_, log)| log.last_order)
            .map(|(name, _)| name.clone());
        if let Some(name) = quietest {
            if let Some(log) = self.interfaces.remove(&name) {
                self.add_delete_kept -= log.add_delete.len();
                self.forgotten += 1;
            }
        }
    }

    /// Drops the oldest add/delete event of the interface that keeps the most.
    fn trim_largest(&mut self) {
        if let Some(log) = self
            .interfaces
            .values_mut()
            .max_by_key(|log| log.add_delete.len())
        {
            if log.add_delete.pop_front().is_some() {
                self.add_delete_kept -= 1;
            }
        }
    }

    /// Forgets every interface with no line since `quiet_ms` before `now_ms`: a loop that
    /// stopped that long ago is no longer news. Returns how many were forgotten.
    pub fn forget_quiet(&mut self, now_ms: u64, quiet_ms: u64) -> usize {
        let horizon = now_ms.saturating_sub(quiet_ms);
        let before = self.interfaces.len();
        let mut dropped = 0;
        self.interfaces.retain(|_, log| {
            let keep = log.last_arrival_ms >= horizon;
            if !keep {
                dropped += log.add_delete.len();
            }
            keep
        });
        self.add_delete_kept -= dropped;
        let forgotten = before - self.interfaces.len();
        self.forgotten += forgotten as u64;
        forgotten
    }

    /// The log as detectors read it (path, size and offsets left for the caller to fill).
    pub fn to_log(&self) -> OvsLog {
        let mut log = OvsLog {
            first_line: self.first_line,
            lines_read: self.lines_read,
            first_timestamp: self.first_timestamp.clone(),
            last_timestamp: self.last_timestamp.clone(),
            ..OvsLog::default()
        };
        let mut events: Vec<&(u64, OvsLogEvent)> = Vec::new();
        let gather = |entry: &InterfaceLog, counts: &mut BTreeMap<String, u64>| {
            for (kind, n) in &entry.counts {
                *counts.entry((*kind).to_string()).or_default() += n;
            }
        };
        gather(&self.global, &mut log.counts);
        for (name, entry) in &self.interfaces {
            gather(entry, &mut log.counts);
            log.interface_counts.insert(
                name.clone(),
                entry
                    .counts
                    .iter()
                    .map(|(kind, n)| ((*kind).to_string(), *n))
                    .collect(),
            );
        }
        for entry in std::iter::once(&self.global).chain(self.interfaces.values()) {
            events.extend(entry.add_delete.iter());
            events.extend(entry.first.values());
            events.extend(entry.last.values());
        }
        events.sort_unstable_by_key(|(order, _)| *order);
        log.events = events.into_iter().map(|(_, e)| e.clone()).collect();
        log
    }
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
    let tail = hostfile::guarded(path, options.stall_deadline, move |progress| {
        read_tail(&owned, &options_owned, progress)
    })
    .map_err(OvsError::Log)?;
    let (text_start, first_line) = tail.whole_lines();
    let text = String::from_utf8_lossy(&tail.bytes[text_start..]);
    let mut log = reduce(&text, first_line);
    log.path = path.display().to_string();
    log.found_by = found_by.to_string();
    log.size = tail.size;
    log.read_from = tail.read_pos + text_start as u64;
    Ok(log)
}

/// The tail of a log as read: the open file, the bytes from one before the tail, the file's
/// size, where the bytes start, and the lines before them (when counted).
pub(crate) struct Tail {
    pub file: File,
    pub metadata: std::fs::Metadata,
    pub bytes: Vec<u8>,
    pub size: u64,
    pub tail_start: u64,
    pub read_pos: u64,
    pub lines_before: Option<u64>,
}

impl Tail {
    /// Where in `bytes` the first whole line starts, and its line number when known.
    pub fn whole_lines(&self) -> (usize, Option<u64>) {
        if self.tail_start == 0 {
            (0, Some(1))
        } else {
            match self.bytes.iter().position(|&b| b == b'\n') {
                // The skipped bytes hold exactly one newline, at `newline`.
                Some(newline) => (newline + 1, self.lines_before.map(|n| n + 2)),
                None => (self.bytes.len(), None),
            }
        }
    }
}

/// Opens the log and reads its tail, on [`hostfile::guarded`]'s thread.
pub(crate) fn read_tail(
    path: &Path,
    options: &LogReadOptions,
    progress: &Progress,
) -> Result<Tail, HostFileError> {
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
    Ok(Tail {
        file,
        metadata: meta,
        bytes,
        size,
        tail_start: start,
        read_pos,
        lines_before,
    })
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
    fn add_delete_events_keep_the_latest_per_interface_and_stay_within_the_bounds() {
        let line = |i: u64, name: &str| {
            format!("2021-04-15T12:36:29.723Z|{i:05}|bridge|INFO|bridge br-int: added interface {name} on port {i}")
        };
        // One shot: the latest 512 of one interface, every one counted.
        let mut text = String::new();
        for i in 1..=600 {
            text.push_str(&line(i, "ha-1"));
            text.push('\n');
        }
        let log = reduce(&text, Some(1));
        assert_eq!(log.interface_count("ha-1", "interface-added"), 600);
        assert_eq!(log.events.len(), 512);
        assert_eq!(log.events[0].line, 89);
        // The agent's bounds: at most 4,096 interfaces and 10,000 add/delete events in all.
        let mut builder = LogBuilder::new(Some(1), LogBounds::AGENT);
        for i in 0..5_000u64 {
            builder.push(&line(i, &format!("tap{i}")), i);
        }
        for i in 0..20_000u64 {
            builder.push(&line(i, &format!("tap{}", 4_990 + i % 10)), 5_000 + i);
        }
        let log = builder.to_log();
        assert_eq!(log.interface_counts.len(), LogBounds::AGENT.interfaces);
        assert_eq!(builder.forgotten(), 5_000 - 4_096);
        assert!(
            log.events.len() <= LogBounds::AGENT.add_delete_total,
            "{}",
            log.events.len()
        );
        assert_eq!(log.interface_count("tap4999", "interface-added"), 2_001);
        // The busy ones keep their latest lines; the quiet ones keep theirs.
        assert_eq!(log.events_of("tap4999").count(), 512);
        assert_eq!(log.events_of("tap4000").count(), 1);
        // Log order survives the bounds.
        assert!(log.events.windows(2).all(|w| w[0].unix_ms <= w[1].unix_ms));
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
