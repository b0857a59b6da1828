//! A service's log given as a file (`check --log FILE`): kubelet's klog, containerd's and
//! dockerd's logfmt, or any text, one entry per line, into a bounded
//! [`ServiceLog`]. The format is recognised from the lines themselves, and a syslog or
//! `journalctl` prefix (`Dec 01 10:00:00 node-1 kubelet[812]: …`) is taken off and names the
//! service. ovs-vswitchd's own log format is not a service log: it goes to the OVS state
//! ([`is_ovs_log`]), where the OVS detectors read it.

use std::collections::BTreeMap;
use std::path::Path;

use nodedoc_model::hostfile::{self, HostFileError};
use nodedoc_model::{LogEntry, LogFormat, ServiceLog};

/// How much of the end of a service log is read: a kubelet or containerd log of gigabytes
/// costs its tail, which holds the hours before the incident.
pub const DEFAULT_TAIL_BYTES: u64 = 64 << 20;

/// Entries kept per log (the most recent): the detectors look for recent failures, and a
/// snapshot stays small.
pub const MAX_ENTRIES: usize = 100_000;

/// Longest message kept, in bytes (a longer one is cut at a character boundary).
const MAX_MESSAGE_BYTES: usize = 16 << 10;

/// Reads the end of the file at `path` (a regular file only; a stalled read is abandoned).
/// Returns its text, and the bytes skipped before the tail.
pub fn read_text(path: &Path) -> Result<(String, u64), HostFileError> {
    let tail = hostfile::read_tail(path, DEFAULT_TAIL_BYTES, hostfile::DEFAULT_STALL_DEADLINE)?;
    let text = String::from_utf8_lossy(&tail.bytes).into_owned();
    Ok((text, tail.skipped))
}

/// True when the text is ovs-vswitchd's log (`2021-04-15T12:36:29.723Z|00595|bridge|INFO|…`),
/// judged on its first lines that are not blank.
pub fn is_ovs_log(text: &str) -> bool {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty()).take(20);
    let mut seen = 0;
    for line in &mut lines {
        let mut fields = line.splitn(5, '|');
        let stamp = fields.next().unwrap_or_default();
        let ok = nodedoc_ovs::log::parse_timestamp(stamp).is_some()
            && fields
                .next()
                .is_some_and(|seq| seq.bytes().all(|b| b.is_ascii_digit()))
            && fields.count() == 3;
        if !ok {
            return false;
        }
        seen += 1;
    }
    seen > 0
}

/// Parses a service log's text. `source` is where it came from (a path); the service is
/// what a syslog prefix names, else what the file name says (`kubelet.log`), else unknown.
pub fn parse(text: &str, source: &str) -> ServiceLog {
    let mut log = ServiceLog {
        source: source.to_string(),
        ..ServiceLog::default()
    };
    let mut parser = LineParser::default();
    let mut entries: std::collections::VecDeque<LogEntry> = std::collections::VecDeque::new();
    for (index, raw) in text.lines().enumerate() {
        let Some(mut entry) = parser.line(raw) else {
            continue;
        };
        entry.line = index as u64 + 1;
        log.entries_read += 1;
        if entries.len() == MAX_ENTRIES {
            entries.pop_front();
            log.entries_dropped += 1;
        }
        entries.push_back(entry);
    }
    log.entries = entries.into();
    parser.describe(&mut log);
    log
}

/// Reads a service log line by line: a file read whole (`check --log`) or followed (`watch
/// --log`). It learns the log's format and service from the lines it sees.
#[derive(Debug, Default)]
pub struct LineParser {
    formats: BTreeMap<&'static str, u64>,
    program: Option<String>,
}

impl LineParser {
    /// The entry of one line, with a syslog or journal prefix taken off (and remembered: it
    /// names the service); `None` for a blank line. The entry's `line` is left at 0.
    pub fn line(&mut self, raw: &str) -> Option<LogEntry> {
        if raw.trim().is_empty() {
            return None;
        }
        let prefixed = nodedoc_kmsg::parse_log_line(raw);
        let line = match prefixed.program {
            Some(p) => {
                if self.program.is_none() {
                    self.program =
                        Some(p.trim_end_matches(|c: char| c.is_ascii_digit()).to_string());
                }
                prefixed.message.trim_start()
            }
            None => raw,
        };
        let (format, entry) = parse_line(line);
        *self.formats.entry(format_name(format)).or_default() += 1;
        Some(entry)
    }

    /// Sets the format of `log` (the one most lines have) and its service (what a prefix
    /// named, else its file name, else kubelet for klog), from the lines seen so far.
    pub fn describe(&self, log: &mut ServiceLog) {
        log.service = service_from_name(&log.source);
        // The format most lines have; on a tie, a structured one (plain lines are what any
        // program prints besides).
        log.format = match self
            .formats
            .iter()
            .max_by_key(|(f, n)| (**n, **f != "plain"))
            .map(|(f, _)| *f)
        {
            Some("logfmt") => LogFormat::Logfmt,
            Some("klog") => LogFormat::Klog,
            _ => LogFormat::Plain,
        };
        if let Some(program) = self.program.as_ref().filter(|p| !p.is_empty()) {
            log.service = Some(service_name(program).unwrap_or(program).to_string());
        } else if log.service.is_none() && log.format == LogFormat::Klog {
            // Of the services nodedoc reads, only kubelet writes klog.
            log.service = Some("kubelet".into());
        }
    }
}

/// The format's name as source statuses show it.
pub(crate) fn format_name(format: LogFormat) -> &'static str {
    match format {
        LogFormat::Logfmt => "logfmt",
        LogFormat::Klog => "klog",
        LogFormat::Journal => "journal",
        LogFormat::Plain => "plain",
    }
}

/// The service a file or program name says, for the ones nodedoc knows.
fn service_name(name: &str) -> Option<&'static str> {
    let name = name.to_ascii_lowercase();
    ["kubelet", "containerd", "dockerd", "ovs-vswitchd"]
        .into_iter()
        .find(|s| name.contains(s))
        .or_else(|| name.contains("docker").then_some("dockerd"))
}

fn service_from_name(source: &str) -> Option<String> {
    let file = Path::new(source).file_name()?.to_str()?;
    service_name(file).map(str::to_string)
}

/// One line in whichever format it is written.
pub fn parse_line(line: &str) -> (LogFormat, LogEntry) {
    if let Some(entry) = parse_klog(line) {
        return (LogFormat::Klog, entry);
    }
    if let Some(entry) = parse_logfmt(line) {
        return (LogFormat::Logfmt, entry);
    }
    (
        LogFormat::Plain,
        LogEntry {
            message: bounded(line.trim_end()),
            ..LogEntry::default()
        },
    )
}

fn bounded(text: &str) -> String {
    if text.len() <= MAX_MESSAGE_BYTES {
        return text.to_string();
    }
    let mut end = MAX_MESSAGE_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// `E0102 15:04:05.000000    1234 file.go:12] message`: level letter, month and day, time,
/// thread id, source location. klog prints no year, so the entry has no time.
fn parse_klog(line: &str) -> Option<LogEntry> {
    let bytes = line.as_bytes();
    if bytes.len() < 22 || !matches!(bytes[0], b'I' | b'W' | b'E' | b'F') {
        return None;
    }
    if !bytes[1..5].iter().all(u8::is_ascii_digit) || bytes[5] != b' ' {
        return None;
    }
    let (header, message) = line.split_once("] ")?;
    let mut words = header.split_whitespace();
    let _date = words.next()?;
    let time = words.next()?;
    if time.len() < 8 || time.as_bytes()[2] != b':' {
        return None;
    }
    let _thread = words.next()?;
    let location = words.next()?;
    let mut fields = BTreeMap::new();
    fields.insert("source".to_string(), location.to_string());
    Some(LogEntry {
        level: Some(line[..1].to_string()),
        message: bounded(message.trim_end()),
        fields,
        ..LogEntry::default()
    })
}

/// `time="…" level=error msg="…" key=value`: logfmt as logrus writes it (containerd,
/// dockerd). A line is logfmt when it has a `msg` key and a `level` or `time` key.
fn parse_logfmt(line: &str) -> Option<LogEntry> {
    let pairs = logfmt_pairs(line)?;
    let get = |k: &str| pairs.iter().find(|(key, _)| key == k).map(|(_, v)| v);
    let message = get("msg")?;
    if get("level").is_none() && get("time").is_none() {
        return None;
    }
    Some(LogEntry {
        at_unix_ms: get("time").and_then(|t| rfc3339_ms(t)),
        level: get("level").cloned(),
        message: bounded(message),
        fields: pairs
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "msg" | "time" | "level"))
            .map(|(k, v)| (k.clone(), bounded(v)))
            .collect(),
        ..LogEntry::default()
    })
}

/// `key=value` and `key="quoted \" value"` pairs; `None` when the line is not made of them.
fn logfmt_pairs(line: &str) -> Option<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    let mut rest = line.trim();
    while !rest.is_empty() {
        let eq = rest.find('=')?;
        let key = &rest[..eq];
        if key.is_empty() || key.contains(|c: char| c.is_whitespace() || c == '"') {
            return None;
        }
        rest = &rest[eq + 1..];
        let value;
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut out = String::new();
            let mut end = None;
            let mut chars = quoted.char_indices();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some((_, 'n')) => out.push('\n'),
                        Some((_, 't')) => out.push('\t'),
                        Some((_, other)) => out.push(other),
                        None => {}
                    },
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    c => out.push(c),
                }
            }
            // An unterminated quote: the rest of the line is the value.
            let end = end.unwrap_or(quoted.len());
            value = out;
            rest = &quoted[end..];
        } else {
            let end = rest.find(' ').unwrap_or(rest.len());
            value = rest[..end].to_string();
            rest = &rest[end..];
        }
        pairs.push((key.to_string(), value));
        rest = rest.trim_start();
    }
    Some(pairs)
}

/// RFC 3339 (`2026-12-01T07:02:28.566406368Z`, `…+08:00`) in milliseconds since the epoch.
pub fn rfc3339_ms(text: &str) -> Option<i64> {
    nodedoc_model::clock::parse_iso(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// containerd 1.6's CRI error as it writes it (seed 003; the line recorded from the
    /// containerd-stop-hang lab).
    const CONTAINERD: &str = r#"time="2026-12-01T07:02:28.566406368Z" level=error msg="StopContainer for \"b32a2fd9b0a1\" failed" error="rpc error: code = DeadlineExceeded desc = context deadline exceeded""#;

    #[test]
    fn logfmt_klog_and_plain_lines() {
        let (format, e) = parse_line(CONTAINERD);
        assert_eq!(format, LogFormat::Logfmt);
        assert_eq!(e.message, r#"StopContainer for "b32a2fd9b0a1" failed"#);
        assert_eq!(e.level.as_deref(), Some("error"));
        assert_eq!(e.at_unix_ms, Some(1_796_108_548_566));
        assert_eq!(
            e.fields.get("error").map(String::as_str),
            Some("rpc error: code = DeadlineExceeded desc = context deadline exceeded")
        );

        let (format, e) = parse_line(
            "E1201 07:02:30.123456    812 kubelet.go:2394] \"PLEG is not healthy\" pleg=\"pleg was last seen active 3m0.5s ago; threshold is 3m0s\"",
        );
        assert_eq!(format, LogFormat::Klog);
        assert_eq!(e.level.as_deref(), Some("E"));
        assert!(e.message.starts_with("\"PLEG is not healthy\""));
        assert_eq!(
            e.fields.get("source").map(String::as_str),
            Some("kubelet.go:2394")
        );

        let (format, e) = parse_line("level=error without a message key");
        assert_eq!(format, LogFormat::Plain);
        assert_eq!(e.message, "level=error without a message key");
        assert_eq!(
            rfc3339_ms("2026-12-01T15:02:28.566+08:00"),
            Some(1_796_108_548_566)
        );
        assert_eq!(rfc3339_ms("not a time"), None);
    }

    #[test]
    fn a_journalctl_prefix_names_the_service_and_entries_are_bounded() {
        let text = format!(
            "Dec 01 07:02:28 node-1 containerd[812]: {CONTAINERD}\n\nDec 01 07:02:29 node-1 containerd[812]: plain words\n"
        );
        let log = parse(&text, "/tmp/copied.txt");
        assert_eq!(log.service.as_deref(), Some("containerd"));
        assert_eq!(log.format, LogFormat::Logfmt);
        assert_eq!(log.entries.len(), 2);
        assert_eq!(
            log.entries[0].message,
            r#"StopContainer for "b32a2fd9b0a1" failed"#
        );
        assert_eq!(log.entries[1].line, 3);

        let many: String = (0..MAX_ENTRIES + 5)
            .map(|i| format!("line {i}\n"))
            .collect();
        let log = parse(&many, "/var/log/kubelet.log");
        assert_eq!(log.service.as_deref(), Some("kubelet"));
        assert_eq!(log.entries.len(), MAX_ENTRIES);
        assert_eq!(log.entries_dropped, 5);
        assert_eq!(log.entries_read, MAX_ENTRIES as u64 + 5);
        assert_eq!(log.entries[0].message, "line 5");
    }

    #[test]
    fn ovs_logs_are_told_apart() {
        assert!(is_ovs_log(
            "2021-04-15T12:36:29.723Z|00595|bridge|INFO|bridge br-int: added interface ha-d489f511-9f on port 17744\n"
        ));
        assert!(!is_ovs_log(CONTAINERD));
        assert!(!is_ovs_log(""));
    }
}
