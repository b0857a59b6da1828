use std::fmt;
use std::str::FromStr;

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
    /// The blocked-task reports the kernel printed: `INFO: task X:PID blocked for more than
    /// N seconds.` with its call trace, and the tasks of a `sysrq: Show Blocked State` dump.
    /// Parsed from [`records`](Self::records) when the log was read; at most a few hundred
    /// are kept, the rest are counted in
    /// [`blocked_task_reports_dropped`](Self::blocked_task_reports_dropped).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocked_task_reports: Vec<BlockedTaskReport>,
    /// Blocked-task reports beyond the ones kept.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub blocked_task_reports_dropped: u64,
    /// What the kernel's reference tracker (`CONFIG_NET_DEV_REFCNT_TRACKER`, kernels 5.17 and
    /// later) printed under `unregister_netdevice: waiting for DEV to become free`: the
    /// stacks that took the references still held. One entry per device, its latest print.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub netdev_ref_trackers: Vec<NetdevRefTrackerReport>,
    /// For a log read from a file (`check --kernel-log`, a journal): where it came from and
    /// what it says of its own time. Such a log is of another time, possibly another boot or
    /// host: its "now" is its last record, not the moment of collection, and its pids are not
    /// this host's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<KernelLogFile>,
}

/// What a kernel log read from a file says about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelLogFile {
    /// The file (or `journal:PATH` for the kernel entries of journal files).
    pub path: String,
    /// The form its lines were written in, as recognised (`dmesg`, `dmesg -T`, `syslog`,
    /// `journalctl`, `/dev/kmsg records`, `journal`).
    pub format: String,
    /// The kernel release the log names (`Linux version X` at boot, or the `Not tainted X` /
    /// `Tainted: … X` line of a report): the release of the kernel that wrote it, which need
    /// not be this host's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_release: Option<String>,
    /// Lines of other programs than the kernel (syslog files mix them) that were skipped.
    #[serde(default)]
    pub other_lines: u64,
    /// Bytes at the start of the file that were not read (only the end of a large file is).
    #[serde(default)]
    pub skipped_bytes: u64,
    /// The time since boot of the last record that has one: the log's "now" on that clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_monotonic_us: Option<u64>,
    /// The wall-clock time of the last record that has one (see
    /// [`KmsgRecord::wall_clock_ms`]): the log's "now" on that clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_wall_clock_ms: Option<i64>,
}

impl KernelLog {
    /// How long before the log's "now" a record was written, in seconds. For a log read live
    /// that "now" is the collection (`host`'s uptime, on the monotonic clock); for a log read
    /// from a file it is the file's last record, on the wall clock when both have one, else
    /// on the time since boot. `None` when no common clock says (a record without a
    /// timestamp).
    pub fn age_secs(
        &self,
        host: &crate::HostInfo,
        monotonic_us: u64,
        wall_clock_ms: Option<i64>,
    ) -> Option<f64> {
        match &self.file {
            None => (monotonic_us > 0 || self.source == KernelLogSource::DevKmsg)
                .then(|| host.uptime_us.saturating_sub(monotonic_us) as f64 / 1e6),
            // The wall clock first: a syslog file spans reboots, and the time since boot of
            // its last line is of the last boot only.
            Some(file) => match (file.last_wall_clock_ms, wall_clock_ms) {
                (Some(last), Some(at)) => Some(last.saturating_sub(at).max(0) as f64 / 1e3),
                // A record later on that clock than the log's end is of an earlier boot: its
                // age cannot be told without a wall clock.
                _ => match (file.last_monotonic_us, monotonic_us > 0) {
                    (Some(last), true) if last >= monotonic_us => {
                        Some((last - monotonic_us) as f64 / 1e6)
                    }
                    _ => None,
                },
            },
        }
    }

    /// True when the log was read from a file rather than from this host's kernel.
    pub fn is_from_file(&self) -> bool {
        self.file.is_some() || self.source == KernelLogSource::File
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
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
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
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
    /// The task or CPU that printed the record, when the kernel has `CONFIG_PRINTK_CALLER`
    /// (`caller=T123` in `/dev/kmsg`, `[  T123]` in `dmesg`). Lets the lines of one report
    /// be told from lines other CPUs printed in between.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<PrintkCaller>,
    /// The wall-clock stamp a saved text log printed before the line (`dmesg -T`, syslog,
    /// `journalctl`), in milliseconds since the Unix epoch. A stamp without a zone (syslog's
    /// local time) is read as if it were UTC: it keeps its digits, and differences between
    /// records are right, but it is not the instant in UTC. A stamp without a year (syslog)
    /// gets the year of the file's last modification (one less for months after it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_clock_ms: Option<i64>,
}

/// Who printed a kernel log line (`CONFIG_PRINTK_CALLER`): a task, or a CPU in interrupt
/// context. Written `T123` and `C1`, as the kernel prints it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum PrintkCaller {
    /// A task, by its pid (`T123`).
    Thread(u32),
    /// A CPU, outside task context (`C1`).
    Cpu(u32),
}

impl fmt::Display for PrintkCaller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrintkCaller::Thread(pid) => write!(f, "T{pid}"),
            PrintkCaller::Cpu(cpu) => write!(f, "C{cpu}"),
        }
    }
}

/// A caller id that is not `T<digits>` or `C<digits>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadPrintkCaller(String);

impl fmt::Display for BadPrintkCaller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not a printk caller id (T<pid> or C<cpu>)",
            self.0
        )
    }
}

impl std::error::Error for BadPrintkCaller {}

impl FromStr for PrintkCaller {
    type Err = BadPrintkCaller;

    /// Parses `T123` or `C1`; spaces around it (`[  T123]` pads it) are ignored.
    fn from_str(text: &str) -> Result<PrintkCaller, BadPrintkCaller> {
        let bad = || BadPrintkCaller(text.chars().take(24).collect());
        let id = text.trim();
        let (kind, number) = id.split_at_checked(1).ok_or_else(bad)?;
        if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let number: u32 = number.parse().map_err(|_| bad())?;
        match kind {
            "T" => Ok(PrintkCaller::Thread(number)),
            "C" => Ok(PrintkCaller::Cpu(number)),
            _ => Err(bad()),
        }
    }
}

impl TryFrom<String> for PrintkCaller {
    type Error = BadPrintkCaller;
    fn try_from(text: String) -> Result<PrintkCaller, BadPrintkCaller> {
        text.parse()
    }
}

impl From<PrintkCaller> for String {
    fn from(caller: PrintkCaller) -> String {
        caller.to_string()
    }
}

/// Where in the log a line was, as far as the log says: any of these can be missing (text
/// without timestamps, `dmesg -T` text without a monotonic time, text without sequence
/// numbers).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogPosition {
    /// The `/dev/kmsg` sequence number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u64>,
    /// Microseconds since boot (`[  123.456789]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monotonic_us: Option<u64>,
    /// The wall-clock time as the log printed it (`Mar  5 08:31:52` of syslog,
    /// `Thu May 20 08:53:35 2021` of `dmesg -T`, an ISO 8601 stamp of `journalctl`); kept as
    /// text because such stamps often lack a year or a time zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_clock: Option<String>,
    /// That stamp in milliseconds since the Unix epoch, when the reader of a file could tell
    /// (see [`KmsgRecord::wall_clock_ms`] for what a stamp without a zone or year becomes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_clock_ms: Option<i64>,
    /// The syslog facility of a line user space wrote into `/dev/kmsg` (any other than the
    /// kernel's 0), which is not the kernel's word. `None` for the kernel's lines and where
    /// the log does not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facility: Option<u8>,
}

/// What made the kernel print a blocked task.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BlockedTaskOrigin {
    /// The hung-task detector (`khungtaskd`): `INFO: task X:PID blocked for more than N
    /// seconds.`
    #[default]
    HungTaskDetector,
    /// A dump of the tasks in uninterruptible sleep, `echo w > /proc/sysrq-trigger`
    /// (`sysrq: Show Blocked State`), or a task in state D in another task dump.
    ShowBlockedState,
}

/// One blocked task as the kernel reported it, with its call trace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockedTaskReport {
    /// What printed it.
    pub origin: BlockedTaskOrigin,
    /// The task's command name (may hold any bytes the task set; escape before printing).
    pub comm: String,
    /// Its pid (a thread id).
    pub pid: i32,
    /// `N` of `blocked for more than N seconds`; none for a Show Blocked State dump.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_secs: Option<u64>,
    /// `blocked in I/O wait for more than`: the kernel accounted the wait as I/O wait.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub in_io_wait: bool,
    /// Where the report's first line was in the log.
    #[serde(default)]
    pub logged_at: LogPosition,
    /// The kernel release of the `Tainted:` / `Not tainted` line (`5.13.0-7614-generic`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_release: Option<String>,
    /// The taint flags of that line (`POE`), empty for `Not tainted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taint: Option<String>,
    /// The task line of `sched_show_task` (`task:X state:D stack:0 pid:123 ppid:1 …`, or
    /// the older `X D ffff… 0 123 1 0x…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskStateLine>,
    /// `Workqueue: writeback wb_workfn (flush-8:0)`: the work a kworker was running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workqueue: Option<String>,
    /// The call trace, innermost frame first, at most a few dozen frames.
    #[serde(default)]
    pub frames: Vec<TraceFrame>,
    /// Frames beyond the ones kept.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub frames_dropped: u32,
    /// The lock owner the kernel named (6.14+: `INFO: task X:PID is blocked on a mutex
    /// likely owned by task Y:PID.`), with the owner's trace when it printed one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocker: Option<LockBlocker>,
}

fn is_zero_u32(n: &u32) -> bool {
    *n == 0
}

/// The task line `sched_show_task` prints.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskStateLine {
    /// The command name as that line printed it (truncated to 13 or 15 characters by old
    /// kernels).
    pub comm: String,
    /// The state letter (`D`, and `I`, `S`, `R` … for a lock owner).
    pub state: String,
    /// The pid on the line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// The thread group id (kernels 6.5+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tgid: Option<i32>,
    /// The parent pid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ppid: Option<i32>,
    /// The task flags, as printed (`0x00004000`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flags: Option<String>,
}

/// One frame of a call trace printed in the kernel log.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceFrame {
    /// The function, as printed (compiler suffixes such as `.isra.0` included).
    pub function: String,
    /// `0x2a0/0x880`: offset and size, when printed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<String>,
    /// The module in brackets after the frame (`nfsd`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    /// False for `? func+…`: an address found on the stack that the unwinder could not
    /// prove is a return address (often a stale leftover of an earlier call).
    pub reliable: bool,
}

impl fmt::Display for TraceFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.reliable {
            f.write_str("? ")?;
        }
        f.write_str(&self.function)?;
        if let Some(offset) = &self.offset {
            write!(f, "+{offset}")?;
        }
        if let Some(module) = &self.module {
            write!(f, " [{module}]")?;
        }
        Ok(())
    }
}

/// The kind of lock a blocker report names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BlockerLock {
    /// A mutex (`likely owned by`).
    Mutex,
    /// A semaphore (`likely last held by`).
    Semaphore,
    /// An rw-semaphore, wanted for reading.
    RwSemaphoreRead,
    /// An rw-semaphore, wanted for writing.
    RwSemaphoreWrite,
}

/// The lock a hung task waits for and the task the kernel believes holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockBlocker {
    /// The kind of lock.
    pub lock: BlockerLock,
    /// The holder's command name, when the kernel found it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_comm: Option<String>,
    /// The holder's pid, when the kernel found it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_pid: Option<i32>,
    /// The holder's call trace, when the kernel printed it (it does not when the holder is
    /// itself reported as hung).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owner_frames: Vec<TraceFrame>,
}

/// `unregister_netdevice: waiting for DEV to become free. Usage count = N` and the
/// reference-tracker stacks that followed it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetdevRefTrackerReport {
    /// The device.
    pub device: String,
    /// The usage count of that line.
    pub usage_count: i64,
    /// Where that line was in the log.
    #[serde(default)]
    pub logged_at: LogPosition,
    /// The stacks that took the references still held, as many as the kernel printed.
    #[serde(default)]
    pub holders: Vec<RefTrackerStack>,
}

/// One stack of a reference-tracker print: `netdev@ffff… has 1/2 users at` (6.5+), or
/// `leaked reference.` / `leaked 3 references.` (5.17 to 6.4), followed by the stack.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefTrackerStack {
    /// References taken at this stack.
    pub users: u32,
    /// References of the device in all, when printed (`1/2` → 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u32>,
    /// The stack that took them, innermost frame first.
    #[serde(default)]
    pub frames: Vec<TraceFrame>,
}
