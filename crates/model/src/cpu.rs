//! What busy processes do on the CPU: kernel call paths sampled from their threads.

use serde::{Deserialize, Serialize};

use crate::ProcessKey;

/// The kernel call paths of one process that used more CPU than the `cpu-hog` threshold,
/// sampled for a short window after it was seen busy. Bounded: at most
/// [`CpuProfile::MAX_STACKS`] distinct paths (the most frequent), the samples of the others
/// counted in `stacks_omitted_samples`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CpuProfile {
    /// Its pid.
    pub pid: i32,
    /// Its start time (with the pid, its identity).
    pub start_time_ticks: u64,
    /// Its comm when sampled.
    pub comm: String,
    /// How the paths were obtained.
    pub method: ProfileMethod,
    /// When the window started, milliseconds since the Unix epoch.
    pub taken_at_unix_ms: u64,
    /// How long the threads were sampled, in milliseconds.
    pub window_ms: u64,
    /// Samples per second of CPU time of each sampled thread (perf), or readings per second
    /// of each thread's stack (`proc-stack`).
    pub frequency_hz: u64,
    /// Threads of the process when sampling started.
    pub threads: u32,
    /// Threads sampled (the busiest first, when there were more than nodedoc samples).
    pub threads_sampled: u32,
    /// CPU the sampled threads used during the window, in cores (1.0 = one core), from their
    /// task clocks; `None` with `proc-stack`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_cores: Option<f64>,
    /// Every sample taken.
    pub samples: u64,
    /// Samples taken while the thread ran its own code (user mode): they have no kernel path.
    pub user_samples: u64,
    /// Distinct kernel call paths, most frequent first. Frames are outermost first (the
    /// system call entry, then down to the function that was running), as flame graphs fold
    /// them: `jq -r '.frames | join(";") + " " + (.samples|tostring)'` is folded-stack input.
    #[serde(default)]
    pub stacks: Vec<KernelStackCount>,
    /// Kernel samples whose path is not in `stacks` (beyond the bound).
    #[serde(default)]
    pub stacks_omitted_samples: u64,
    /// Samples the kernel dropped because nodedoc's ring buffer was full.
    #[serde(default)]
    pub lost_samples: u64,
    /// What sampling cost nodedoc.
    pub cost: SamplingCost,
    /// Netlink sockets of the process in the middle of a dump (`Dump` of
    /// `/proc/PID/net/netlink`), when that table was read (only without perf, and only when its
    /// namespace holds few netlink sockets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netlink_dumps: Option<NetlinkDumps>,
    /// Why the profile is weaker than a perf one, or what it could not sample.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl CpuProfile {
    /// Distinct kernel paths kept at most.
    pub const MAX_STACKS: usize = 128;

    /// Frames kept per path at most (the outermost ones are kept).
    pub const MAX_DEPTH: usize = 64;

    /// The identity of the process.
    pub fn key(&self) -> ProcessKey {
        ProcessKey {
            pid: self.pid,
            start_time_ticks: self.start_time_ticks,
        }
    }

    /// Samples taken in the kernel (with a path).
    pub fn kernel_samples(&self) -> u64 {
        self.stacks.iter().map(|s| s.samples).sum::<u64>() + self.stacks_omitted_samples
    }
}

/// One kernel call path and how many samples had it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelStackCount {
    /// Samples with this path.
    pub samples: u64,
    /// Function names, outermost first; a module function is written `name [module]`, an
    /// address outside every known symbol `[unknown]`.
    pub frames: Vec<String>,
}

/// How a [`CpuProfile`] was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProfileMethod {
    /// `perf_event_open` task-clock sampling of each thread with kernel call chains: where
    /// the CPU time actually goes.
    PerfEvents,
    /// `/proc/PID/task/TID/stack` read repeatedly: weak. It shows where a thread is when
    /// it is read, not where it spends CPU time, and on a kernel without preemption a thread
    /// busy in a system call shows only its return path (`exit_to_user_mode_loop`).
    ProcStack,
}

/// What taking a profile cost nodedoc.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SamplingCost {
    /// CPU time of the sampling thread from opening the events to closing them (setup,
    /// draining the ring buffers, teardown), in microseconds; symbolization is not included.
    pub cpu_us: u64,
    /// Wall time of the same, in microseconds.
    pub wall_us: u64,
    /// Ring-buffer memory mapped while sampling, in bytes.
    #[serde(default)]
    pub ring_bytes: u64,
}

/// Netlink sockets of a process in the middle of a dump.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetlinkDumps {
    /// Netlink sockets in the process's network namespace (from `/proc/PID/net/protocols`).
    pub namespace_sockets: u64,
    /// The process's netlink sockets with `Dump` set: a dump request (RTM_GETADDR,
    /// RTM_GETROUTE, …) the kernel is still answering.
    pub dumping: Vec<NetlinkDumpSocket>,
    /// The process's netlink sockets found in the table.
    pub sockets: u32,
}

/// One netlink socket with a dump in progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetlinkDumpSocket {
    /// The netlink protocol number (`Eth` column: 0 is NETLINK_ROUTE).
    pub protocol: u32,
    /// The socket's inode.
    pub inode: u64,
}

/// CPU shares of a process over the agent's rounds, while it is above the `cpu-hog`
/// threshold (`nodedoc watch`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CpuSeries {
    /// Its pid.
    pub pid: i32,
    /// Its start time (with the pid, its identity).
    pub start_time_ticks: u64,
    /// Its comm when last seen.
    pub comm: String,
    /// Consecutive rounds, up to the last, in which it was above the threshold.
    pub rounds_above: u64,
    /// Since when (the reading that began the first of those rounds), milliseconds since
    /// the Unix epoch.
    pub above_since_unix_ms: u64,
    /// The shares of the last rounds, oldest first (bounded).
    pub points: Vec<CpuPoint>,
}

impl CpuSeries {
    /// The identity of the process.
    pub fn key(&self) -> ProcessKey {
        ProcessKey {
            pid: self.pid,
            start_time_ticks: self.start_time_ticks,
        }
    }
}

/// CPU used by a process between two rounds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CpuPoint {
    /// When the round read it, milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
    /// Cores used since the previous round (1.0 = one core).
    pub cores: f64,
    /// The part of it spent in the kernel (system time).
    pub kernel_cores: f64,
}
