use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The log of a service nodedoc read (containerd, dockerd, kubelet, ovs-vswitchd, …): from a
/// file given with `check --log FILE`, from systemd journal files, or from a bundle.
///
/// Bounded: the collector keeps the most recent entries (and says how many it left out), so
/// a log of gigabytes costs what its tail costs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceLog {
    /// Where it came from: a path, or `journal:UNIT` for a unit read from journal files.
    pub source: String,
    /// The service, when known: the systemd unit, or what the lines say they are
    /// (`containerd`, `dockerd`, `kubelet`).
    #[serde(default)]
    pub service: Option<String>,
    /// How the lines were written.
    pub format: LogFormat,
    /// Entries in log order.
    #[serde(default)]
    pub entries: Vec<LogEntry>,
    /// Entries read in all (kept or not).
    #[serde(default)]
    pub entries_read: u64,
    /// Older entries left out to bound memory.
    #[serde(default)]
    pub entries_dropped: u64,
}

/// The way a log's lines are written, recognised from the lines themselves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// `time="…" level=error msg="…" key=value` (containerd, dockerd, logrus).
    Logfmt,
    /// `E0102 15:04:05.000000    1234 file.go:12] message` (kubelet, Kubernetes components).
    Klog,
    /// systemd journal entries (fields as the journal has them).
    Journal,
    /// Anything else: one message per line.
    #[default]
    Plain,
}

/// One entry of a service log.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    /// Line number in the file (1-based), or the entry's position in the journal.
    pub line: u64,
    /// When it was written, milliseconds since the Unix epoch, when the entry says.
    #[serde(default)]
    pub at_unix_ms: Option<i64>,
    /// Severity as written (`error`, `E`, journal `PRIORITY` 3 → `err`).
    #[serde(default)]
    pub level: Option<String>,
    /// The message (logfmt `msg`, klog's text after `]`, journal `MESSAGE`).
    pub message: String,
    /// Other fields: logfmt keys (`error`, `container`, `id`), journal fields (`_PID`,
    /// `_SYSTEMD_UNIT`), klog's source location (`source`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, String>,
}
