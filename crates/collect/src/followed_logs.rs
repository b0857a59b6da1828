//! Services' logs the agent follows (`watch --log FILE`): each file tailed across rotation and
//! truncation ([`FileTail`]), its new lines parsed as `check --log` parses a whole file
//! ([`crate::service_log`]), and a bounded window of entries kept — those of the last
//! [`LogWindow::age`] and at most [`LogWindow::max_entries`] per file — so that a finding made
//! of a log's lines (`container-stop-failed`, `kubelet-pleg-unhealthy`) resolves once its
//! lines age out, as it would if the service stopped logging the failure.
//!
//! An entry's age counts from the earlier of when the agent read it and the time the line
//! itself carries (a line stamped long ago is old news even when read now; a line stamped in
//! the future, from a skewed clock, still ages from when it was read). When the agent starts,
//! the last [`START_BYTES`] of each file are read: of those, only the lines whose own time is
//! inside the window are kept (klog lines carry no year, so kubelet's earlier lines are not).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Duration;

use nodedoc_model::{Gaps, LogEntry, ServiceLog, Snapshot, SourceState, SourceStatus};

use crate::service_log::LineParser;
use crate::tail::{FileTail, TailStart};

/// How much of the end of each file is read when the agent starts.
pub const START_BYTES: u64 = 16 << 20;

/// Bytes read per file per round at most; the rest waits for the next round.
pub const MAX_BYTES_PER_READ: u64 = 16 << 20;

/// A line longer than this without its newline is taken as it is (a writer that never ends
/// its line does not grow the agent).
const MAX_PARTIAL_LINE: usize = 1 << 20;

/// Which of a followed log's entries are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogWindow {
    /// Entries older than this are let go.
    pub age: Duration,
    /// At most this many entries per file (the most recent).
    pub max_entries: usize,
}

impl Default for LogWindow {
    fn default() -> Self {
        LogWindow {
            age: Duration::from_secs(15 * 60),
            max_entries: 10_000,
        }
    }
}

/// One followed file.
#[derive(Debug)]
struct FollowedLog {
    tail: FileTail,
    parser: LineParser,
    /// The end of the last read that had no newline yet.
    partial: Vec<u8>,
    /// Entries kept, oldest first, with the time their age counts from (ms since the epoch).
    entries: VecDeque<(i64, LogEntry)>,
    /// Lines seen in the file read now (counted from where reading started).
    line: u64,
    /// Entries read since the agent started.
    read: u64,
    /// Entries let go because the window held its maximum.
    dropped: u64,
    /// The byte reading started at (the first read of a large file starts in its middle).
    started_at: Option<u64>,
    /// It is ovs-vswitchd's own log: not a service log.
    ovs: bool,
    /// The file could not be read when the agent started: all it holds once it can is new.
    missing_at_start: bool,
}

/// The services' logs the agent follows.
#[derive(Debug)]
pub struct FollowedLogs {
    logs: Vec<FollowedLog>,
    window: LogWindow,
}

impl FollowedLogs {
    /// Follows `paths`, keeping `window` of each.
    pub fn new(paths: &[PathBuf], window: LogWindow) -> FollowedLogs {
        let mut logs: Vec<FollowedLog> = Vec::new();
        for path in paths {
            if logs.iter().any(|l| l.tail.path() == path) {
                continue;
            }
            logs.push(FollowedLog {
                tail: FileTail::new(path, TailStart::LastBytes(START_BYTES), MAX_BYTES_PER_READ),
                parser: LineParser::default(),
                partial: Vec::new(),
                entries: VecDeque::new(),
                line: 0,
                read: 0,
                dropped: 0,
                started_at: None,
                ovs: false,
                missing_at_start: false,
            });
        }
        FollowedLogs { logs, window }
    }

    /// True when no file is followed.
    pub fn is_empty(&self) -> bool {
        self.logs.is_empty()
    }

    /// Reads what each file gained, lets go of what aged out by `now_unix_ms`, and puts each
    /// log's window into `snapshot.service_logs` with a `service-log` source status whose
    /// detail starts with the path. A file that cannot be read (yet) is a failed status and a
    /// gap; it is tried again next round, from its start.
    pub fn read(&mut self, now_unix_ms: i64, snapshot: &mut Snapshot, gaps: &mut Gaps) {
        let window_ms = self.window.age.as_millis().min(i64::MAX as u128) as i64;
        let oldest = now_unix_ms.saturating_sub(window_ms);
        for log in &mut self.logs {
            let shown = log.tail.path().display().to_string();
            let error = match log.tail.read_new() {
                Ok(read) => {
                    let first = log.started_at.is_none();
                    if first {
                        let start = log
                            .tail
                            .cursor()
                            .map_or(0, |c| c.offset.saturating_sub(read.bytes.len() as u64));
                        log.started_at = Some(start);
                    }
                    if log.read == 0 && !log.ovs && !read.bytes.is_empty() {
                        // Judged on the first lines the file shows.
                        log.ovs = crate::service_log::is_ovs_log(&String::from_utf8_lossy(
                            &read.bytes[..read.bytes.len().min(64 << 10)],
                        ));
                    }
                    if !log.ovs {
                        let backlog = first && !log.missing_at_start;
                        let (old, new) = read.restarted_at.map_or((&read.bytes[..], None), |at| {
                            (&read.bytes[..at], Some(&read.bytes[at..]))
                        });
                        log.take(old, backlog, now_unix_ms, oldest, self.window);
                        if let Some(new) = new {
                            // A new file (or the same one from its start): the old one's
                            // last line ended with it, and lines count from 1 again.
                            log.end_of_file(now_unix_ms, self.window);
                            log.line = 0;
                            log.take(new, false, now_unix_ms, oldest, self.window);
                        }
                    }
                    None
                }
                Err(e) => {
                    log.missing_at_start |= log.started_at.is_none();
                    Some(e.to_string())
                }
            };
            while log.entries.front().is_some_and(|(at, _)| *at < oldest) {
                log.entries.pop_front();
            }
            let mut service = ServiceLog {
                source: shown.clone(),
                entries: log.entries.iter().map(|(_, e)| e.clone()).collect(),
                entries_read: log.read,
                entries_dropped: log.dropped,
                ..ServiceLog::default()
            };
            log.parser.describe(&mut service);
            let status = match (&error, log.ovs) {
                (Some(e), _) => {
                    gaps.record("service-log", "--log", e.clone(), shown.clone());
                    SourceStatus {
                        source: "service-log".into(),
                        state: SourceState::Failed,
                        detail: format!("{shown} (--log, followed): {e}"),
                    }
                }
                (None, true) => SourceStatus {
                    source: "service-log".into(),
                    state: SourceState::Failed,
                    detail: format!(
                        "{shown} (--log, followed): ovs-vswitchd's own log, not a service's: follow it with --ovs-log"
                    ),
                },
                (None, false) => SourceStatus {
                    source: "service-log".into(),
                    state: SourceState::Collected,
                    detail: format!(
                        "{shown} (--log, followed: {}, {} format): {} entries of the last {} kept, {} read since the agent started{}{}",
                        service
                            .service
                            .as_deref()
                            .unwrap_or("service not named by its lines"),
                        crate::service_log::format_name(service.format),
                        service.entries.len(),
                        shown_age(self.window.age),
                        log.read,
                        if log.dropped > 0 {
                            format!(
                                ", {} let go beyond {} entries",
                                log.dropped, self.window.max_entries
                            )
                        } else {
                            String::new()
                        },
                        match log.started_at {
                            Some(start) if start > 0 => format!(
                                "; read from byte {start}, line numbers count from there"
                            ),
                            _ => String::new(),
                        }
                    ),
                },
            };
            snapshot.sources.push(status);
            if error.is_none() && !log.ovs {
                snapshot.service_logs.retain(|l| l.source != service.source);
                snapshot.service_logs.push(service);
            }
        }
    }
}

impl FollowedLog {
    /// Parses the complete lines of `bytes` (after what was left of the last read) into the
    /// window. On the first read of a file that was there when the agent started
    /// (`backlog`), lines whose own time is not inside the window (or who have none) are not
    /// kept: they were written before the agent started.
    fn take(&mut self, bytes: &[u8], backlog: bool, now: i64, oldest: i64, window: LogWindow) {
        self.partial.extend_from_slice(bytes);
        let mut lines = self.partial.split(|b| *b == b'\n').collect::<Vec<_>>();
        // The last piece has no newline yet: kept for the next read, unless it is too long.
        let rest = lines.pop().unwrap_or_default().to_vec();
        let mut skip_first = backlog && self.started_at.is_some_and(|s| s > 0);
        let mut taken = Vec::with_capacity(lines.len());
        for raw in lines {
            self.line += 1;
            if std::mem::take(&mut skip_first) {
                // Reading started inside this line.
                continue;
            }
            let text = String::from_utf8_lossy(raw);
            let Some(mut entry) = self.parser.line(text.trim_end_matches('\r')) else {
                continue;
            };
            entry.line = self.line;
            let at = entry.at_unix_ms.map_or(now, |own| own.min(now));
            if backlog && entry.at_unix_ms.is_none_or(|own| own < oldest) {
                continue;
            }
            taken.push((at, entry));
        }
        self.partial = rest;
        for entry in taken {
            self.keep(entry, window);
        }
        if self.partial.len() > MAX_PARTIAL_LINE {
            self.end_of_file(now, window);
        }
    }

    /// Takes what is left without a newline as a line of its own (the file it was in ended,
    /// or it is too long to wait for).
    fn end_of_file(&mut self, now: i64, window: LogWindow) {
        let raw = std::mem::take(&mut self.partial);
        if raw.is_empty() {
            return;
        }
        self.line += 1;
        if let Some(mut entry) = self.parser.line(&String::from_utf8_lossy(&raw)) {
            entry.line = self.line;
            let at = entry.at_unix_ms.map_or(now, |own| own.min(now));
            self.keep((at, entry), window);
        }
    }

    fn keep(&mut self, entry: (i64, LogEntry), window: LogWindow) {
        self.read += 1;
        if self.entries.len() == window.max_entries.max(1) {
            self.entries.pop_front();
            self.dropped += 1;
        }
        self.entries.push_back(entry);
    }
}

/// `15 min`, `90 s`, `1.5 s`.
fn shown_age(age: Duration) -> String {
    let secs = age.as_secs();
    if age.subsec_nanos() != 0 {
        format!("{:.1} s", age.as_secs_f64())
    } else if secs >= 60 && secs % 60 == 0 {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::append;

    const MINUTE: i64 = 60_000;

    fn logfmt(at: &str, msg: &str) -> String {
        format!("time=\"{at}\" level=error msg=\"{msg}\"\n")
    }

    fn messages(logs: &mut FollowedLogs, now: i64) -> Vec<String> {
        let mut snapshot = Snapshot::new(nodedoc_model::HostInfo::default());
        let mut gaps = Gaps::new();
        logs.read(now, &mut snapshot, &mut gaps);
        snapshot
            .service_logs
            .iter()
            .flat_map(|l| l.entries.iter().map(|e| e.message.clone()))
            .collect()
    }

    #[test]
    fn entries_age_out_of_the_window_and_are_bounded_in_number() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("containerd.log");
        // Before the agent: one line inside the window by its own time, one far older.
        // 2026-12-01T10:00:00Z = 1_796_119_200_000 ms.
        let now = 1_796_119_200_000;
        append(&path, &logfmt("2026-12-01T09:50:00Z", "recent"));
        append(&path, &logfmt("2026-11-30T09:50:00Z", "yesterday"));
        let window = LogWindow {
            age: Duration::from_secs(15 * 60),
            max_entries: 3,
        };
        let mut logs = FollowedLogs::new(std::slice::from_ref(&path), window);
        assert_eq!(messages(&mut logs, now), ["recent"]);
        // Written while the agent runs, stamped now; a half-written line waits for its end.
        append(&path, &logfmt("2026-12-01T10:00:00Z", "new"));
        append(&path, "time=\"2026-12-01T10:00:01Z\" level=error msg=\"ha");
        assert_eq!(messages(&mut logs, now + 1000), ["recent", "new"]);
        append(&path, "lf\"\n");
        assert_eq!(messages(&mut logs, now + 2000), ["recent", "new", "half"]);
        // Five minutes on, `recent` (09:50) is out of the window.
        assert_eq!(messages(&mut logs, now + 5 * MINUTE + 1), ["new", "half"]);
        // At most three entries.
        for i in 0..3 {
            append(&path, &logfmt("2026-12-01T10:06:00Z", &format!("more {i}")));
        }
        assert_eq!(
            messages(&mut logs, now + 6 * MINUTE),
            ["more 0", "more 1", "more 2"]
        );
        assert_eq!(logs.logs[0].dropped, 2);
        // Everything is older than the window later on.
        assert!(messages(&mut logs, now + 30 * MINUTE).is_empty());
    }

    #[test]
    fn lines_without_their_own_time_age_from_when_they_were_read_and_rotation_is_followed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kubelet.log");
        append(
            &path,
            "E1201 09:59:00.000000 1 kubelet.go:1] before the agent\n",
        );
        let mut logs = FollowedLogs::new(std::slice::from_ref(&path), LogWindow::default());
        let now = 1_796_119_200_000;
        assert!(messages(&mut logs, now).is_empty(), "no year: not kept");
        append(
            &path,
            "E1201 10:00:00.000000 1 kubelet.go:2] PLEG is not healthy\n",
        );
        // logrotate: the file moves away, a new one takes its name.
        std::fs::rename(&path, dir.path().join("kubelet.log.1")).unwrap();
        append(
            &path,
            "E1201 10:00:05.000000 1 kubelet.go:3] after rotation\n",
        );
        assert_eq!(
            messages(&mut logs, now + 1000),
            ["PLEG is not healthy", "after rotation"]
        );
        let log = &logs.logs[0].entries;
        assert_eq!(
            log.back().unwrap().1.line,
            1,
            "counted from the new file's start"
        );
        assert!(messages(&mut logs, now + 15 * MINUTE + 1001).is_empty());
    }

    #[test]
    fn a_file_not_there_yet_is_a_failed_source_then_followed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("later.log");
        let mut logs = FollowedLogs::new(std::slice::from_ref(&path), LogWindow::default());
        let mut snapshot = Snapshot::new(nodedoc_model::HostInfo::default());
        let mut gaps = Gaps::new();
        logs.read(0, &mut snapshot, &mut gaps);
        let status = snapshot.source("service-log").unwrap();
        assert_eq!(status.state, SourceState::Failed);
        assert!(status.detail.starts_with(&format!("{} (", path.display())));
        append(
            &path,
            "time=\"1970-01-01T00:00:01Z\" level=error msg=\"x\"\n",
        );
        assert_eq!(messages(&mut logs, 2000), ["x"]);
    }
}
