use serde::{Deserialize, Serialize};

use crate::{CpuSeries, FdKindCount, ProcessKey};

/// What the collector saw over earlier rounds, for detectors that need time (`fd-leak`,
/// `leak-per-event`). Bounded: a fixed number of points per series and of series, kept by the
/// collector between rounds (`nodedoc watch`), or empty for a single `check`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// Descriptor counts over time of the processes whose count moved.
    #[serde(default)]
    pub fd_series: Vec<FdSeries>,
    /// Processes whose count moved in the last round but are not followed: every series
    /// slot holds a process that is still moving.
    #[serde(default)]
    pub untracked_movers: u64,
    /// CPU shares over time of the processes above the `cpu-hog` threshold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cpu_series: Vec<CpuSeries>,
}

impl History {
    /// The CPU series of the process with this identity.
    pub fn cpu_series_of(&self, key: ProcessKey) -> Option<&CpuSeries> {
        self.cpu_series.iter().find(|s| s.key() == key)
    }

    /// The series of the process with this identity.
    pub fn fd_series_of(&self, key: ProcessKey) -> Option<&FdSeries> {
        self.fd_series
            .iter()
            .find(|s| s.pid == key.pid && s.start_time_ticks == key.start_time_ticks)
    }
}

/// One process's open descriptors, round after round.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FdSeries {
    /// Its pid.
    pub pid: i32,
    /// Its start time (with the pid, its identity).
    pub start_time_ticks: u64,
    /// Its comm when last seen.
    pub comm: String,
    /// Oldest first. When the series is full, older points are thinned (every other one
    /// dropped), so it keeps covering the whole time since the count started moving.
    pub points: Vec<FdPoint>,
}

impl FdSeries {
    /// The identity of the process.
    pub fn key(&self) -> ProcessKey {
        ProcessKey {
            pid: self.pid,
            start_time_ticks: self.start_time_ticks,
        }
    }
}

/// A process's descriptor count at one round.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FdPoint {
    /// When it was read, milliseconds since the Unix epoch (log lines carry wall-clock
    /// times: `leak-per-event` matches them against these).
    pub at_unix_ms: u64,
    /// Open descriptors.
    pub total: u64,
    /// Counts by kind, when the census ran that round (empty otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<FdKindCount>,
}
