//! The operator's log rules (`[[log]]` tables of the config file), applied as the logs are
//! read: every new line of each configured file (followed across rotation) and every kernel
//! log record goes through the rule sets once; what matched is kept for the snapshot.
//!
//! Matching here rather than in a detector keeps the snapshot small: a gigabyte of log is not
//! carried to the detectors, only the lines a rule named (the `log-rules` detector makes the
//! findings). What is kept is bounded: an `event` rule's matches of the current reading (the
//! most recent [`MAX_EVENT_MATCHES`]), a `condition` rule's matches since the start (the most
//! recent [`MAX_CONDITION_MATCHES`] per rule; a condition heals only with a reboot).
//!
//! A file's first reading scans its end ([`TailStart`]); lines written before nodedoc started
//! count only for `condition` rules — an old event is not news.

use std::collections::{BTreeMap, VecDeque};

use nodedoc_config::{LogRules, LogSource, RuleSet, Scanner};
use nodedoc_model::{Gaps, KmsgRecord, RuleKind, RuleMatch};

use crate::tail::{FileTail, TailStart};

/// Event matches kept per reading.
pub const MAX_EVENT_MATCHES: usize = 1_000;

/// Condition matches kept per rule.
pub const MAX_CONDITION_MATCHES: usize = 100;

/// Bytes of a file read per reading at most; the rest waits for the next one.
pub const MAX_BYTES_PER_READ: u64 = 64 << 20;

struct FileRules {
    tail: FileTail,
    scanners: Vec<(RuleSet, Scanner)>,
    first: bool,
}

/// The rule sets at work on the configured logs.
pub struct LogRulesStream {
    files: Vec<FileRules>,
    kernel: Vec<RuleSet>,
    kernel_first: bool,
    old_events_count: bool,
    conditions: BTreeMap<String, VecDeque<RuleMatch>>,
}

impl std::fmt::Debug for LogRulesStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogRulesStream")
            .field("files", &self.files.len())
            .field("kernel_rule_sets", &self.kernel.len())
            .finish()
    }
}

impl LogRulesStream {
    /// Streams for `logs`; each file's first reading starts at `start`. With
    /// `old_events_count` (a one-shot `check`), event rules count on what was already
    /// written too.
    pub fn new(logs: &[LogRules], start: &TailStart, old_events_count: bool) -> LogRulesStream {
        let mut files: Vec<FileRules> = Vec::new();
        let mut kernel = Vec::new();
        for log in logs {
            for source in &log.sources {
                match source {
                    LogSource::KernelLog => kernel.push(log.rules.clone()),
                    LogSource::File(path) => {
                        let scanner = (log.rules.clone(), log.rules.scanner());
                        match files.iter_mut().find(|f| f.tail.path() == path) {
                            Some(file) => file.scanners.push(scanner),
                            None => files.push(FileRules {
                                tail: FileTail::new(path, start.clone(), MAX_BYTES_PER_READ),
                                scanners: vec![scanner],
                                first: true,
                            }),
                        }
                    }
                }
            }
        }
        LogRulesStream {
            files,
            kernel,
            kernel_first: true,
            old_events_count,
            conditions: BTreeMap::new(),
        }
    }

    /// True when no rule is configured.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.kernel.is_empty()
    }

    /// Reads what the files gained and matches it and `kernel_records` (the kernel log
    /// records new since the last reading); returns this reading's matches: its events and
    /// every condition so far. Files that cannot be read are recorded in `gaps`.
    pub fn read(&mut self, kernel_records: &[KmsgRecord], gaps: &mut Gaps) -> Vec<RuleMatch> {
        let mut events: VecDeque<RuleMatch> = VecDeque::new();
        let mut conditions: Vec<RuleMatch> = Vec::new();
        let mut keep = |m: RuleMatch, old: bool| match m.kind {
            RuleKind::Condition => conditions.push(m),
            RuleKind::Event if !old => {
                if events.len() == MAX_EVENT_MATCHES {
                    events.pop_front();
                }
                events.push_back(m);
            }
            RuleKind::Event => {}
        };
        for file in &mut self.files {
            let source = file.tail.path().display().to_string();
            let read = match file.tail.read_new() {
                Ok(read) => read,
                Err(e) => {
                    gaps.record("log-rules", "a configured log file", e.to_string(), &source);
                    continue;
                }
            };
            let old = std::mem::replace(&mut file.first, false) && !self.old_events_count;
            for (rules, scanner) in &mut file.scanners {
                if read.rotated || read.truncated {
                    // The old file's unfinished last line ends here; lines count afresh.
                    scanner.finish(|m| keep(m.to_event(&source), old));
                    *scanner = rules.scanner();
                }
                scanner.feed(&read.bytes, |m| keep(m.to_event(&source), old));
            }
        }
        let old = std::mem::replace(&mut self.kernel_first, false) && !self.old_events_count;
        for rules in &self.kernel {
            let mut scanner = rules.scanner();
            for record in kernel_records {
                scanner.feed_line(record.message.as_bytes(), |m| {
                    keep(m.to_event("kernel-log"), old);
                });
            }
        }
        for m in conditions {
            let kept = self.conditions.entry(m.rule.clone()).or_default();
            if kept.len() == MAX_CONDITION_MATCHES {
                kept.pop_front();
            }
            kept.push_back(m);
        }
        let mut out: Vec<RuleMatch> = events.into_iter().collect();
        out.extend(self.conditions.values().flatten().cloned());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::append;

    fn config(dir: &std::path::Path, log: &std::path::Path) -> nodedoc_config::Config {
        let text = format!(
            r#"
[[log]]
path = "{}"

[[log.rule]]
id = "disk-gone"
severity = "critical"
pattern = 'I/O error, dev (?P<dev>\w+)'
summary = "I/O errors on {{dev}}"

[[log.rule]]
id = "read-only"
kind = "condition"
severity = "critical"
pattern = 'Remounting filesystem read-only'
"#,
            log.display()
        );
        let path = dir.join("nodedoc.toml");
        std::fs::write(&path, text).unwrap();
        nodedoc_config::Config::load(&path, &[]).unwrap()
    }

    #[test]
    fn old_events_do_not_count_old_conditions_do_and_new_lines_match() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("kern.log");
        append(
            &log,
            "I/O error, dev sda, sector 1\nRemounting filesystem read-only\n",
        );
        let config = config(dir.path(), &log);
        let mut stream = LogRulesStream::new(&config.logs, &TailStart::LastBytes(1 << 20), false);
        let mut gaps = Gaps::new();
        let first = stream.read(&[], &mut gaps);
        assert_eq!(
            first.iter().map(|m| m.rule.as_str()).collect::<Vec<_>>(),
            vec!["read-only"]
        );
        append(&log, "I/O error, dev sdb, sector 9\n");
        let second = stream.read(&[], &mut gaps);
        let rules: Vec<&str> = second.iter().map(|m| m.rule.as_str()).collect();
        assert_eq!(rules, vec!["disk-gone", "read-only"]);
        assert_eq!(second[0].summary, "I/O errors on sdb");
        // Nothing new: the event is gone, the condition stays.
        let third = stream.read(&[], &mut gaps);
        assert_eq!(
            third.iter().map(|m| m.rule.as_str()).collect::<Vec<_>>(),
            vec!["read-only"]
        );
        assert!(gaps.is_empty());
    }
}
