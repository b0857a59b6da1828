//! systemd journal files (`check --journal DIR|FILE`): the entries of the services nodedoc
//! reads (kubelet, containerd, dockerd, ovs-vswitchd) and the kernel's.
//!
//! **Reader.** systemd's own `journalctl --file/--directory … -o export`, asked only for the
//! entries and fields used here (export format: binary-safe, and cheaper for journalctl to
//! print and for us to read than `-o json`). It reads every journal format systemd writes (compact,
//! keyed hash, compressed with xz, lz4 or zstd, sealed, being written, corrupt tails) and is
//! present wherever journal files are made. Why not a pure-Rust reader: docs/benchmarks.md.
//!
//! **Mapping.** An entry belongs to a service by its `_SYSTEMD_UNIT` (`kubelet.service`,
//! `containerd.service`, `docker.service`, `ovs-vswitchd.service`), else its
//! `SYSLOG_IDENTIFIER`. Kernel entries (`_TRANSPORT=kernel`) become a kernel log — of the
//! last boot that has any, since the time since boot starts again at each boot. ovs-vswitchd's
//! entries become its log for the OVS detectors; the others service logs
//! ([`nodedoc_model::ServiceLog`], format `journal`, `MESSAGE` whole).

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use nodedoc_model::{KernelLog, LogEntry, LogFormat, OvsLog, ServiceLog};

/// Entries read per journal path at most (the most recent), all services together.
pub const MAX_ENTRIES: usize = 200_000;

/// How long journalctl may take on one path before it is stopped.
pub const DEADLINE: Duration = Duration::from_secs(120);

/// The services read, as (name, `_SYSTEMD_UNIT`, `SYSLOG_IDENTIFIER`).
const SERVICES: [(&str, &str, &str); 4] = [
    ("kubelet", "kubelet.service", "kubelet"),
    ("containerd", "containerd.service", "containerd"),
    ("dockerd", "docker.service", "dockerd"),
    ("ovs-vswitchd", "ovs-vswitchd.service", "ovs-vswitchd"),
];

/// Fields asked of journalctl (it adds the `__` ones itself).
const FIELDS: &str = "MESSAGE,PRIORITY,_SYSTEMD_UNIT,SYSLOG_IDENTIFIER,_TRANSPORT,_PID,_SOURCE_MONOTONIC_TIMESTAMP,_BOOT_ID";

/// Why journal files could not be read.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The path itself: missing, not permitted, neither a file nor a directory.
    #[error("{path}: {source}")]
    Path {
        /// The path named.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// journalctl could not be started.
    #[error("journalctl, which reads journal files, could not be run (Debian: apt-get install systemd): {0}")]
    NoJournalctl(std::io::Error),
    /// journalctl failed (not a journal file, a corrupt header).
    #[error("journalctl could not read {path}: {why}")]
    Journalctl {
        /// The path named.
        path: String,
        /// What journalctl said.
        why: String,
    },
    /// journalctl made no end before [`DEADLINE`].
    #[error("journalctl took more than {} s on {path} and was stopped", DEADLINE.as_secs())]
    Timeout {
        /// The path named.
        path: String,
    },
}

/// What the journal files at one path held.
#[derive(Debug, Default)]
pub struct JournalRead {
    /// Kernel entries of the last boot that has any, as a kernel log.
    pub kernel: Option<KernelLog>,
    /// Kernel entries of earlier boots, left out.
    pub kernel_earlier_boots: u64,
    /// ovs-vswitchd's entries as its log.
    pub ovs: Option<OvsLog>,
    /// kubelet, containerd, dockerd.
    pub services: Vec<ServiceLog>,
    /// Entries read in all.
    pub entries: u64,
    /// Lines of journalctl's output that were not JSON objects.
    pub malformed: u64,
}

/// Reads the journal file or directory at `path` with journalctl.
pub fn read(path: &Path) -> Result<JournalRead, JournalError> {
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|source| JournalError::Path {
        path: shown.clone(),
        source,
    })?;
    // `--file=PATH` as one word: a path starting with `-` is not an option.
    let location = if meta.is_dir() {
        format!("--directory={}", path.display())
    } else if meta.is_file() {
        format!("--file={}", path.display())
    } else {
        return Err(JournalError::Path {
            path: shown,
            source: std::io::Error::other("not a regular file or a directory"),
        });
    };
    let mut command = Command::new("journalctl");
    command.args([
        location.as_str(),
        "--output=export",
        "--no-pager",
        "--all",
        "--quiet",
    ]);
    command.arg(format!("--output-fields={FIELDS}"));
    command.arg(format!("--lines={MAX_ENTRIES}"));
    // The entries wanted: the kernel's, or one of the services'. Terms of one field are
    // alternatives; `+` separates alternatives made of other fields.
    command.arg("_TRANSPORT=kernel");
    for (_, unit, _) in SERVICES {
        command.arg("+").arg(format!("_SYSTEMD_UNIT={unit}"));
    }
    for (_, _, ident) in SERVICES {
        command.arg("+").arg(format!("SYSLOG_IDENTIFIER={ident}"));
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("SYSTEMD_COLORS", "0")
        .env("SYSTEMD_PAGER", "");
    let mut child = command.spawn().map_err(JournalError::NoJournalctl)?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.by_ref().take(64 << 10).read_to_string(&mut text);
        text
    });
    // A journalctl that hangs (a file on a dead mount) is stopped at the deadline.
    let pid = rustix::process::Pid::from_raw(child.id() as i32);
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if finished.recv_timeout(DEADLINE).is_err() {
            // Our own child, not reaped yet (it is waited for below): the pid is still its.
            if let Some(pid) = pid {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
            true
        } else {
            false
        }
    });
    let mut builder = Builder::default();
    let mut reader = BufReader::new(stdout);
    while let Some(entry) = next_export_entry(&mut reader, &mut builder.malformed) {
        builder.push(&entry);
    }
    let status = child.wait();
    let _ = done.send(());
    let timed_out = watchdog.join().unwrap_or(false);
    let errors = errors.join().unwrap_or_default();
    if timed_out {
        return Err(JournalError::Timeout { path: shown });
    }
    let why = match status {
        Ok(status) if status.success() => return Ok(builder.finish(&shown)),
        Ok(status) if errors.trim().is_empty() => format!("it exited with {status}"),
        Ok(_) => errors.trim().lines().take(3).collect::<Vec<_>>().join("; "),
        Err(e) => e.to_string(),
    };
    Err(JournalError::Journalctl { path: shown, why })
}

/// One entry: its fields as text (a binary value is read as UTF-8, lossily; a field repeated
/// in the entry keeps its first value).
#[derive(Default)]
struct Fields(Vec<(String, String)>);

impl Fields {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn text(fields: &Fields, name: &str) -> Option<String> {
    fields.get(name).map(str::to_string)
}

fn number(fields: &Fields, name: &str) -> Option<u64> {
    fields.get(name)?.parse().ok()
}

/// Longest field value kept, in bytes (journald's own default cap on a line is 48 KiB).
const MAX_VALUE_BYTES: u64 = 64 << 10;

/// Most fields kept per entry: journald's own limit (`ENTRY_FIELD_COUNT_MAX`, 1,024). A
/// hostile file's entry with more costs no more than that (and no quadratic lookups).
const MAX_FIELDS: usize = 1024;

/// Longest line read as one piece: a field name or a `NAME=value` line (journalctl writes a
/// value with a newline or control characters in the binary form, so text lines are one field).
const MAX_LINE_BYTES: u64 = MAX_VALUE_BYTES + 4096;

/// Reads one line into `line` (without reading more than [`MAX_LINE_BYTES`] of it into memory:
/// the rest of a longer line is skipped). `Ok(0)` at the end of the stream.
fn read_line_bounded(reader: &mut impl BufRead, line: &mut Vec<u8>) -> std::io::Result<usize> {
    let read = reader
        .by_ref()
        .take(MAX_LINE_BYTES)
        .read_until(b'\n', line)?;
    if read as u64 == MAX_LINE_BYTES && line.last() != Some(&b'\n') {
        // Skip to the end of the line, a buffer at a time.
        loop {
            let buffer = reader.fill_buf()?;
            if buffer.is_empty() {
                break;
            }
            match buffer.iter().position(|&b| b == b'\n') {
                Some(end) => {
                    reader.consume(end + 1);
                    break;
                }
                None => {
                    let all = buffer.len();
                    reader.consume(all);
                }
            }
        }
        line.push(b'\n');
    }
    Ok(read)
}

/// The next entry of journal export format (systemd's `-o export`: `NAME=value` lines, or
/// `NAME`, a little-endian 64-bit length, the bytes and a newline for a value that is not
/// plain text; a blank line ends an entry). `None` at the end of the stream. A value longer
/// than [`MAX_VALUE_BYTES`] is cut; a stream that breaks off mid-value counts as malformed.
fn next_export_entry(reader: &mut impl BufRead, malformed: &mut u64) -> Option<Fields> {
    let mut fields = Fields::default();
    let mut line = Vec::new();
    loop {
        line.clear();
        match read_line_bounded(reader, &mut line) {
            Ok(0) | Err(_) => return (!fields.0.is_empty()).then_some(fields),
            Ok(_) => {}
        }
        if line == b"\n" {
            if fields.0.is_empty() {
                continue;
            }
            return Some(fields);
        }
        let line = line.strip_suffix(b"\n").unwrap_or(&line);
        if let Some(eq) = line.iter().position(|&b| b == b'=') {
            let name = String::from_utf8_lossy(&line[..eq]).into_owned();
            if fields.0.len() < MAX_FIELDS && fields.get(&name).is_none() {
                let value = &line[eq + 1..];
                let value = &value[..value.len().min(MAX_VALUE_BYTES as usize)];
                fields
                    .0
                    .push((name, String::from_utf8_lossy(value).into_owned()));
            }
            continue;
        }
        // A binary value: its length, the bytes, a newline.
        let name = String::from_utf8_lossy(line).into_owned();
        let mut size = [0u8; 8];
        if reader.read_exact(&mut size).is_err() {
            *malformed += 1;
            return None;
        }
        let size = u64::from_le_bytes(size);
        let mut value = Vec::new();
        let kept = reader
            .by_ref()
            .take(size.min(MAX_VALUE_BYTES))
            .read_to_end(&mut value);
        let skipped = std::io::copy(
            &mut reader.by_ref().take(size.saturating_sub(MAX_VALUE_BYTES)),
            &mut std::io::sink(),
        );
        let mut newline = [0u8; 1];
        if kept.is_err() || skipped.is_err() || reader.read_exact(&mut newline).is_err() {
            *malformed += 1;
            return None;
        }
        if fields.0.len() < MAX_FIELDS && fields.get(&name).is_none() {
            fields
                .0
                .push((name, String::from_utf8_lossy(&value).into_owned()));
        }
    }
}

/// A kernel entry: boot id, time since boot (µs), wall clock (µs), priority, message.
type KernelEntry = (String, u64, Option<u64>, u8, String);

#[derive(Default)]
struct Builder {
    entries: u64,
    malformed: u64,
    kernel: Vec<KernelEntry>,
    /// ovs-vswitchd's entries: wall clock (µs), message.
    ovs: Vec<(Option<u64>, String)>,
    services: Vec<ServiceLog>,
}

impl Builder {
    fn push(&mut self, fields: &Fields) {
        self.entries += 1;
        let index = self.entries;
        let message = text(fields, "MESSAGE").unwrap_or_default();
        let realtime = number(fields, "__REALTIME_TIMESTAMP");
        if text(fields, "_TRANSPORT").as_deref() == Some("kernel") {
            let monotonic = number(fields, "_SOURCE_MONOTONIC_TIMESTAMP")
                .or_else(|| number(fields, "__MONOTONIC_TIMESTAMP"))
                .unwrap_or(0);
            let priority = number(fields, "PRIORITY").map_or(6, |p| p.min(7) as u8);
            let boot = text(fields, "_BOOT_ID").unwrap_or_default();
            self.kernel
                .push((boot, monotonic, realtime, priority, message));
            return;
        }
        let unit = text(fields, "_SYSTEMD_UNIT");
        let ident = text(fields, "SYSLOG_IDENTIFIER");
        let Some(service) = SERVICES
            .iter()
            .find(|(_, u, _)| unit.as_deref() == Some(*u))
            .or_else(|| {
                SERVICES
                    .iter()
                    .find(|(_, _, i)| ident.as_deref() == Some(*i))
            })
            .map(|(name, _, _)| *name)
        else {
            return;
        };
        if service == "ovs-vswitchd" {
            self.ovs.push((realtime, message));
            return;
        }
        let mut entry_fields = std::collections::BTreeMap::new();
        for name in ["_PID", "_SYSTEMD_UNIT", "SYSLOG_IDENTIFIER"] {
            if let Some(value) = text(fields, name) {
                entry_fields.insert(name.to_string(), value);
            }
        }
        let entry = LogEntry {
            line: index,
            at_unix_ms: realtime.map(|us| (us / 1000) as i64),
            level: number(fields, "PRIORITY").map(|p| priority_name(p).to_string()),
            message,
            fields: entry_fields,
        };
        match self
            .services
            .iter_mut()
            .find(|l| l.service.as_deref() == Some(service))
        {
            Some(log) => {
                log.entries.push(entry);
                log.entries_read += 1;
            }
            None => self.services.push(ServiceLog {
                source: String::new(),
                service: Some(service.to_string()),
                format: LogFormat::Journal,
                entries: vec![entry],
                entries_read: 1,
                entries_dropped: 0,
            }),
        }
    }

    fn finish(self, path: &str) -> JournalRead {
        let mut out = JournalRead {
            entries: self.entries,
            malformed: self.malformed,
            ..JournalRead::default()
        };
        for mut log in self.services {
            // `journal:UNIT`, as the model documents it: the detectors quote
            // `journalctl -u UNIT` from it, the command to run on the node. The path is in the
            // `journal` source.
            let unit = SERVICES
                .iter()
                .find(|(name, _, _)| log.service.as_deref() == Some(*name))
                .map_or("", |(_, unit, _)| *unit);
            log.source = format!("journal:{unit}");
            out.services.push(log);
        }
        if !self.ovs.is_empty() {
            out.ovs = Some(ovs_log(&self.ovs, path));
        }
        if let Some((last_boot, ..)) = self.kernel.last() {
            let last_boot = last_boot.clone();
            let (this, earlier): (Vec<_>, Vec<_>) =
                self.kernel.into_iter().partition(|k| k.0 == last_boot);
            out.kernel_earlier_boots = earlier.len() as u64;
            out.kernel = Some(kernel_log(&this, path));
        }
        out
    }
}

fn priority_name(priority: u64) -> &'static str {
    [
        "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
    ][priority.min(7) as usize]
}

/// The kernel's entries as `/dev/kmsg` records (level, sequence, time since boot, text),
/// read by the kernel-log parser like a saved `/dev/kmsg`, then given their wall clock.
fn kernel_log(entries: &[KernelEntry], path: &str) -> KernelLog {
    let mut dump = String::new();
    let mut wall: Vec<Option<i64>> = Vec::new();
    for (_, monotonic, realtime, priority, message) in entries {
        // One record per line: the journal may keep a multi-line printk as one entry.
        for line in message.split('\n') {
            let sequence = wall.len();
            // A record is one line: other control characters are shown escaped later, but
            // a carriage return or form feed must not split it.
            let line: String = line
                .chars()
                .map(|c| if c == '\r' || c == '\u{c}' { ' ' } else { c })
                .collect();
            dump.push_str(&format!("{priority},{sequence},{monotonic},-;{line}\n"));
            wall.push(realtime.map(|us| (us / 1000) as i64));
        }
    }
    let mut log = nodedoc_kmsg::parse_kernel_log_file(&dump, None);
    for record in &mut log.records {
        if let Some(Some(ms)) = wall.get(record.sequence as usize) {
            record.wall_clock_ms = Some(*ms);
        }
    }
    let last_wall = log.records.iter().rev().find_map(|r| r.wall_clock_ms);
    if let Some(file) = &mut log.file {
        file.path = format!("journal:{path}");
        file.format = "journal".into();
        file.last_wall_clock_ms = last_wall;
    }
    log
}

/// ovs-vswitchd's entries as its log. Its syslog lines are `ovs|00942|bridge|INFO|…` (the
/// first field is not a time): the entry's time takes its place, so that the lines read as
/// in ovs-vswitchd.log.
fn ovs_log(entries: &[(Option<u64>, String)], path: &str) -> OvsLog {
    let mut text = String::new();
    for (realtime, message) in entries {
        match (message.split_once('|'), realtime) {
            (Some((first, rest)), Some(us))
                if nodedoc_ovs::log::parse_timestamp(first).is_none() =>
            {
                text.push_str(&iso_ms((us / 1000) as i64));
                text.push('|');
                text.push_str(rest);
            }
            _ => text.push_str(message),
        }
        text.push('\n');
    }
    let mut log = nodedoc_ovs::log::reduce(&text, Some(1));
    log.path = format!("journal:{path}");
    log.found_by = "--journal".into();
    log.size = text.len() as u64;
    log
}

/// Milliseconds since the epoch as `2021-04-15T12:36:29.723Z`, as ovs-vswitchd.log has it.
fn iso_ms(ms: i64) -> String {
    format!(
        "{}Z",
        nodedoc_model::clock::format_ms(ms).replacen(' ', "T", 1)
    )
}

#[cfg(test)]
mod tests {
    use proptest::strategy::Strategy;

    use super::*;

    #[test]
    fn times_read_back() {
        for ms in [0, 1_796_108_548_566, 951_782_400_000, 4_102_444_799_999] {
            assert_eq!(
                nodedoc_ovs::log::parse_timestamp(&iso_ms(ms)),
                Some(ms),
                "{ms}"
            );
        }
        assert_eq!(iso_ms(1_796_108_548_566), "2026-12-01T07:02:28.566Z");
    }

    fn entries_of(stream: Vec<u8>) -> (Vec<Fields>, u64) {
        let mut malformed = 0;
        let mut reader = std::io::BufReader::with_capacity(1024, std::io::Cursor::new(stream));
        let mut entries = Vec::new();
        while let Some(entry) = next_export_entry(&mut reader, &mut malformed) {
            entries.push(entry);
        }
        (entries, malformed)
    }

    /// Regression: a hostile journal's 8 MiB text line and an entry of 100,000 fields cost at
    /// most the caps (before, the whole line was read into memory and each field was looked
    /// up among all the ones before it).
    #[test]
    fn a_huge_line_and_a_huge_entry_are_cut_to_the_caps() {
        let mut stream = b"MESSAGE=".to_vec();
        stream.extend(std::iter::repeat_n(b'x', 8 << 20));
        stream.extend_from_slice(b"\nPRIORITY=3\n\n");
        for i in 0..100_000 {
            stream.extend_from_slice(format!("F{i}=v\n").as_bytes());
        }
        stream.extend_from_slice(b"\nMESSAGE=last\n\n");
        let (entries, malformed) = entries_of(stream);
        assert_eq!((entries.len(), malformed), (3, 0));
        assert_eq!(
            entries[0].get("MESSAGE").unwrap().len(),
            MAX_VALUE_BYTES as usize
        );
        assert_eq!(entries[0].get("PRIORITY"), Some("3"));
        assert_eq!(entries[1].0.len(), MAX_FIELDS);
        assert_eq!(entries[2].get("MESSAGE"), Some("last"));
    }

    proptest::proptest! {
        /// Any bytes: the reader ends, and what it keeps stays within the caps.
        #[test]
        fn any_stream_ends_within_the_caps(
            chunks in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::collection::vec(proptest::num::u8::ANY, 0..64),
                    proptest::string::string_regex("[A-Z_]{1,8}(=[ -~]{0,20})?\n\n?").unwrap().prop_map(String::into_bytes),
                    (proptest::string::string_regex("[A-Z]{1,6}\n").unwrap(), 0u64..40, proptest::collection::vec(proptest::num::u8::ANY, 0..40))
                        .prop_map(|(name, len, bytes)| {
                            let mut v = name.into_bytes();
                            v.extend_from_slice(&len.to_le_bytes());
                            v.extend(bytes);
                            v
                        }),
                ],
                0..40,
            )
        ) {
            let (entries, _) = entries_of(chunks.concat());
            for entry in &entries {
                proptest::prop_assert!(entry.0.len() <= MAX_FIELDS);
                for (_, value) in &entry.0 {
                    // Lossy UTF-8 may grow a byte into three.
                    proptest::prop_assert!(value.len() <= 3 * MAX_VALUE_BYTES as usize);
                }
            }
            let mut b = Builder::default();
            for entry in &entries {
                b.push(entry);
            }
            let _ = b.finish("/j");
        }
    }

    /// What `journalctl -o export` prints: text fields, a binary one (a control character
    /// in MESSAGE), an entry of another unit, and a stream cut off in a binary value.
    #[test]
    fn entries_go_to_their_service_and_binary_fields_are_read() {
        let mut stream = Vec::new();
        stream.extend_from_slice(b"__REALTIME_TIMESTAMP=1796108548566000\n_TRANSPORT=stdout\n_SYSTEMD_UNIT=kubelet.service\nPRIORITY=3\nMESSAGE=PLEG is not healthy: a=b\n\n");
        stream.extend_from_slice(b"SYSLOG_IDENTIFIER=dockerd\nPRIORITY=6\nMESSAGE\n");
        stream.extend_from_slice(&3u64.to_le_bytes());
        stream.extend_from_slice(b"hi\x1b\n\n");
        stream.extend_from_slice(b"SYSLOG_IDENTIFIER=sshd\nMESSAGE=not ours\n\n");
        stream.extend_from_slice(b"SYSLOG_IDENTIFIER=kubelet\nMESSAGE\n");
        stream.extend_from_slice(&100u64.to_le_bytes());
        stream.extend_from_slice(b"cut off");
        let mut b = Builder::default();
        let mut reader = std::io::Cursor::new(stream);
        while let Some(entry) = next_export_entry(&mut reader, &mut b.malformed) {
            b.push(&entry);
        }
        let read = b.finish("/j");
        assert_eq!((read.entries, read.malformed), (3, 1));
        let services: Vec<(&str, &str, Option<&str>)> = read
            .services
            .iter()
            .map(|l| {
                (
                    l.source.as_str(),
                    l.entries[0].message.as_str(),
                    l.entries[0].level.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            services,
            vec![
                (
                    "journal:kubelet.service",
                    "PLEG is not healthy: a=b",
                    Some("err")
                ),
                ("journal:docker.service", "hi\u{1b}", Some("info")),
            ]
        );
        assert_eq!(
            read.services[0].entries[0].at_unix_ms,
            Some(1_796_108_548_566)
        );
    }
}
