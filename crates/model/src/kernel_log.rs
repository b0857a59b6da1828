use serde::{Deserialize, Serialize};

/// The kernel's log buffer, as read at collection time.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KernelLog {
    /// Where the records came from.
    pub source: KernelLogSource,
    /// Records in sequence order.
    pub records: Vec<KmsgRecord>,
    /// Records the kernel overwrote while nodedoc was reading (`EPIPE` from `/dev/kmsg`).
    #[serde(default)]
    pub overwritten: u64,
    /// Records left out because they were older than the `--since` window, if one was given.
    #[serde(default)]
    pub skipped_before_window: u64,
    /// Lines that could not be parsed and were skipped.
    #[serde(default)]
    pub malformed: u64,
}

/// Where kernel log records were read from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KernelLogSource {
    /// `/dev/kmsg`: structured records with sequence numbers and facilities.
    #[default]
    DevKmsg,
    /// The text of `dmesg`, when `/dev/kmsg` could not be read: no facility, no sequence.
    DmesgText,
    /// A saved file given by the user.
    File,
}

/// One kernel log record (`/dev/kmsg` format: `prio,seq,usec,flags;message`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KmsgRecord {
    /// Syslog level, 0 (emerg) to 7 (debug).
    pub level: u8,
    /// Syslog facility; 0 is the kernel, 1 is user space writing to `/dev/kmsg`.
    pub facility: u8,
    /// Sequence number (monotonic, gaps mean lost records); 0 when unknown.
    pub sequence: u64,
    /// Time since boot in microseconds (`CLOCK_MONOTONIC`-like, stops during suspend).
    pub monotonic_us: u64,
    /// True for a continuation fragment (`c` flag in older kernels).
    #[serde(default)]
    pub continuation: bool,
    /// The message text, unescaped.
    pub message: String,
    /// `KEY=value` continuation lines (e.g. `SUBSYSTEM=net`, `DEVICE=n3`).
    #[serde(default)]
    pub dictionary: Vec<(String, String)>,
}
