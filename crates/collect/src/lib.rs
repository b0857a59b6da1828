//! Live collection: reads this host into a [`Snapshot`]. Collectors never judge; this crate
//! only decides what to read and records how it went.
//!
//! A [`Collector`] is built from plain [`CollectOptions`] (only the binary knows flags) and
//! keeps what it learnt between runs, as `facebookincubator/below`'s collector does. `nodedoc
//! check` is one [`Collector::snapshot`]: the full reading, then the second reading of every
//! process after the interval. Each source degrades alone: a failed source is a
//! [`SourceStatus`] and gaps in the snapshot, never a failed collection.
#![deny(missing_docs)]

mod cpu;
pub mod files;
pub mod followed_logs;
pub mod history;
pub mod journal;
pub mod kernel_log;
pub mod log_rules;
pub mod ovs_stream;
mod round;
pub mod service_log;
pub mod tail;
#[cfg(test)]
mod test_support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use nodedoc_model::{
    Gaps, KernelLog, Process, Resample, Snapshot, SourceState, SourceStatus, TaskState,
};
use nodedoc_procfs::{ProcRoot, ResolutionMode, ScanOptions};

pub use cpu::CpuHogOptions;
pub use nodedoc_perf::ProfileOptions;

/// What a live collection reads.
#[derive(Clone, Debug)]
pub struct CollectOptions {
    /// Read every process's state a second time after this interval, to tell stuck tasks
    /// from passing ones and measure CPU shares; zero for a single reading.
    pub interval: Duration,
    /// Only read kernel log records from this recent past; `None`: since boot.
    pub since: Option<Duration>,
    /// How sockets are told apart in the fd census.
    pub socket_resolution: ResolutionMode,
    /// Take the fd census (by kind, netlink sockets by protocol).
    pub fd_census: bool,
    /// Worker threads for the process scan; clamped to [`MAX_THREADS`].
    pub threads: usize,
    /// Give up reading a process's command line after this long (see
    /// [`nodedoc_procfs::DEFAULT_MEMORY_MAP_DEADLINE`]).
    pub memory_map_deadline: Duration,
    /// Where Open vSwitch is.
    pub ovs: OvsSource,
    /// The operator's log rules (`[[log]]` tables of the config file).
    pub log_rules: Vec<nodedoc_config::LogRules>,
    /// Inputs read from files: a saved kernel log that replaces this host's.
    pub files: files::FileInputs,
    /// Which processes count as CPU hogs, and how their kernel call paths are sampled.
    pub cpu_hog: CpuHogOptions,
    /// Services' logs the agent follows (`watch --log`): read by [`Collector::round`] only,
    /// what they gained each round, into a window of their recent entries.
    pub followed_logs: Vec<PathBuf>,
    /// Which entries of a followed log are kept.
    pub log_window: followed_logs::LogWindow,
}

/// How much of the end of each configured log a `check` matches the rules against.
pub const CHECK_LOG_RULE_BYTES: u64 = 256 << 20;

/// How much of the end of each configured log the agent reads when it starts (for `condition`
/// rules: a filesystem remounted read-only before the agent started is still read-only).
pub const WATCH_LOG_RULE_BYTES: u64 = 16 << 20;

/// Every this many agent rounds, every process is read in full.
pub const FULL_EVERY: u64 = 30;

/// Worker threads beyond this only add contention on `/proc`.
pub const MAX_THREADS: usize = 64;

impl Default for CollectOptions {
    fn default() -> Self {
        CollectOptions {
            interval: Duration::from_millis(300),
            since: None,
            socket_resolution: ResolutionMode::Auto,
            fd_census: true,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_map_deadline: nodedoc_procfs::DEFAULT_MEMORY_MAP_DEADLINE,
            ovs: OvsSource::default(),
            log_rules: Vec::new(),
            files: files::FileInputs::default(),
            cpu_hog: CpuHogOptions::default(),
            followed_logs: Vec::new(),
            log_window: followed_logs::LogWindow::default(),
        }
    }
}

/// Where Open vSwitch is.
#[derive(Clone, Debug, Default)]
pub struct OvsSource {
    /// The OVSDB to read (`unix:PATH`, `tcp:HOST:PORT`); `None` for the packaged default
    /// socket, whose absence means no Open vSwitch here (not an error).
    pub endpoint: Option<String>,
    /// ovs-vswitchd's log, when it is not among the daemon's open files.
    pub log: Option<PathBuf>,
}

/// Shows what a long collection is doing (the binary draws it on a terminal).
pub trait Progress {
    /// The current step.
    fn step(&self, what: &str);
}

/// No progress shown.
pub struct Silent;

impl Progress for Silent {
    fn step(&self, _what: &str) {}
}

/// Why a collection could not run at all (a source that fails is not one of these: it is
/// recorded in the snapshot).
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// `/proc` cannot be opened or listed: there is nothing to diagnose from.
    #[error("cannot read /proc: {0}")]
    Procfs(#[source] nodedoc_procfs::ReadError),
    /// A collector thread panicked (a bug).
    #[error("the {0} reader panicked")]
    Panicked(&'static str),
}

/// Reads this host, keeping what it learnt between runs.
#[derive(Debug)]
pub struct Collector {
    options: CollectOptions,
    fd_history: history::FdHistory,
    cache: round::ProcessCache,
    kernel_log: kernel_log::KernelLogWindow,
    rules: Option<log_rules::LogRulesStream>,
    cpu: cpu::CpuWatch,
    ovs: ovs_stream::OvsStream,
    followed_logs: followed_logs::FollowedLogs,
}

impl Collector {
    /// A collector with these options.
    pub fn new(mut options: CollectOptions) -> Collector {
        options.threads = options.threads.clamp(1, MAX_THREADS);
        Collector {
            ovs: ovs_stream::OvsStream::new(options.ovs.clone()),
            followed_logs: followed_logs::FollowedLogs::new(
                &options.followed_logs,
                options.log_window,
            ),
            options,
            fd_history: history::FdHistory::default(),
            cache: round::ProcessCache::default(),
            kernel_log: kernel_log::KernelLogWindow::default(),
            rules: None,
            cpu: cpu::CpuWatch::default(),
        }
    }

    /// Adds this reading's descriptor counts to the history and the history to the snapshot.
    fn note_fd_history(&mut self, snapshot: &mut Snapshot) -> u64 {
        let at_unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        self.fd_history.record(&snapshot.processes, at_unix_ms);
        snapshot.history = self.fd_history.to_model();
        at_unix_ms
    }

    /// Takes back a round's snapshot once it has been analysed, so the next round starts from
    /// its processes and kernel log window without the collector holding a copy of either
    /// meanwhile. Without it the next round reads every process in full and the window starts
    /// empty (correct, only costlier).
    pub fn recycle(&mut self, snapshot: Snapshot) {
        self.cache.recycle(snapshot.processes);
        if let Some(log) = snapshot.kernel_log {
            self.kernel_log.recycle(log.records);
        }
    }

    /// Where the kernel log follower starts on the first round (default: every record still
    /// in the ring); an agent restarting from its state file resumes after the sequence it
    /// had processed.
    pub fn resume_kernel_log_after(&mut self, sequence: u64) {
        self.kernel_log.resume_after(sequence);
    }

    /// The kernel log records that arrived in the last round (for counters), and the
    /// follower's counts.
    pub fn kernel_log_stream(&self) -> &kernel_log::KernelLogWindow {
        &self.kernel_log
    }

    /// The options in force (threads clamped).
    pub fn options(&self) -> &CollectOptions {
        &self.options
    }

    /// One full reading of this host, then the second reading after the interval: what
    /// `nodedoc check` analyses.
    pub fn snapshot(&mut self, progress: &dyn Progress) -> Result<Snapshot, CollectError> {
        let mut snapshot = collect_live(&self.options, progress)?;
        // The hook for `cpu-hog`: the processes above the threshold between the two readings
        // have their kernel call paths sampled now.
        progress.step("sampling busy processes");
        self.cpu
            .after_second_reading(&self.options.cpu_hog, &mut snapshot);
        if !self.options.log_rules.is_empty() {
            progress.step("matching log rules");
            let stream = self.rules.get_or_insert_with(|| {
                log_rules::LogRulesStream::new(
                    &self.options.log_rules,
                    &tail::TailStart::LastBytes(CHECK_LOG_RULE_BYTES),
                    true,
                )
            });
            let records = snapshot
                .kernel_log
                .as_ref()
                .map_or(&[][..], |log| &log.records[..]);
            let mut gaps = Gaps::new();
            snapshot.rule_matches = stream.read(records, &mut gaps);
            snapshot.gaps.extend(gaps.into_vec());
        }
        self.note_fd_history(&mut snapshot);
        Ok(snapshot)
    }

    /// One round of the agent: what [`snapshot`](Self::snapshot) reads, at a fraction of the
    /// cost. Every process's `stat` and descriptor count are read; only processes that are
    /// new, whose count moved, that are in `D` or `Z`, that a detector watches (a leak being
    /// followed, a CNI plugin, a pid-namespace init) are read in full with their fd census;
    /// the others keep their last full reading with the fresh state and CPU times. Every
    /// [`FULL_EVERY`] rounds every process is read in full (limits and cgroups change too).
    /// The second reading covers only tasks in `D` or `Z`.
    pub fn round(&mut self, progress: &dyn Progress) -> Result<Snapshot, CollectError> {
        let watched = self.fd_history.followed();
        let kernel_log = self.kernel_log.take_round();
        let mut snapshot = round::round(
            &self.options,
            &mut self.cache,
            &watched,
            kernel_log,
            &mut |snapshot, gaps| self.ovs.round(snapshot, gaps),
            progress,
        )?;
        if !self.options.log_rules.is_empty() {
            let stream = self.rules.get_or_insert_with(|| {
                log_rules::LogRulesStream::new(
                    &self.options.log_rules,
                    &tail::TailStart::LastBytes(WATCH_LOG_RULE_BYTES),
                    false,
                )
            });
            let mut gaps = Gaps::new();
            snapshot.rule_matches = stream.read(self.kernel_log.arrived(), &mut gaps);
            snapshot.gaps.extend(gaps.into_vec());
        }
        if !self.followed_logs.is_empty() {
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis().min(i64::MAX as u128) as i64);
            let mut gaps = Gaps::new();
            self.followed_logs.read(now_ms, &mut snapshot, &mut gaps);
            snapshot.gaps.extend(gaps.into_vec());
        }
        let at_unix_ms = self.note_fd_history(&mut snapshot);
        // The hook for `cpu-hog`: shares since the previous round, and the kernel call paths
        // of the processes above the threshold.
        let cpu_series = self
            .cpu
            .after_round(&self.options.cpu_hog, &mut snapshot, at_unix_ms);
        if !cpu_series.is_empty() {
            snapshot
                .history
                .get_or_insert_with(nodedoc_model::History::default)
                .cpu_series = cpu_series;
        }
        Ok(snapshot)
    }
}

impl Collector {
    /// Open vSwitch as the agent follows it (the monitor, the log, the namespaces).
    pub fn ovs_stream(&self) -> &ovs_stream::OvsStream {
        &self.ovs
    }

    /// A handle that wakes [`follow_streams`](Self::follow_streams) from another thread (a
    /// signal handler stopping the agent).
    pub fn stream_waker(&self) -> nodedoc_ovs::monitor::Waker {
        self.ovs.waker()
    }

    /// Between rounds: waits up to `timeout` for news on the streams that are followed
    /// live (OVSDB monitor updates) and applies it to `last`, the last round's snapshot.
    /// When [`OvsNews::changed`](ovs_stream::OvsNews::changed) says so, the OVS detectors
    /// should run again over `last`.
    pub fn follow_streams(
        &mut self,
        last: Option<&mut Snapshot>,
        timeout: Duration,
    ) -> ovs_stream::OvsNews {
        self.ovs.follow(last, timeout)
    }
}

/// How processes are read in full, by `check`'s scan and by an agent round alike.
pub(crate) fn scan_options(args: &CollectOptions) -> ScanOptions<'static> {
    ScanOptions {
        fd_census: args.fd_census,
        resolution: args.socket_resolution,
        threads: args.threads.clamp(1, MAX_THREADS),
        wants_kernel_detail: &wants_kernel_detail,
        environment_prefixes: ENVIRONMENT_PREFIXES,
        memory_map_deadline: args.memory_map_deadline,
    }
}

/// Which tasks get their kernel stack and blocked system call read during the scan: the
/// ones the hang detectors examine. Reading a stack takes a lock per task in the kernel, so
/// a scan reads only these:
/// - the init of a pid namespace sleeping in `do_wait`, which is where an init that was
///   killed waits for its namespace to empty (`pidns-exit-hang`);
/// - CNI plugins (`cni-plugin-hang`).
///
/// Never a task in uninterruptible sleep: its stack is read only once the second reading
/// shows it stuck in the same wait (`nodedoc_procfs::resample`).
pub(crate) fn wants_kernel_detail(process: &Process) -> bool {
    process.state != TaskState::UninterruptibleSleep && wants_detail_if_not_blocked(process)
}

fn wants_detail_if_not_blocked(process: &Process) -> bool {
    (process.wchan.as_deref() == Some("do_wait")
        && process.nspid.len() > 1
        && process.nspid.last() == Some(&1))
        || process.environment.contains_key("CNI_COMMAND")
        || process.memory_map_blocked
}

/// The only environment variables nodedoc reads (see `cni-plugin-hang`).
pub(crate) const ENVIRONMENT_PREFIXES: &[&str] = &["CNI_"];

/// Tasks whose stack the scan did not read but a detector needs, now that every process is
/// known: every member of a pid namespace whose init is stuck in `zap_pid_ns_processes`,
/// and every task alone in its network namespace (is it blocked in network code?).
fn second_look(snapshot: &Snapshot) -> Vec<i32> {
    let mut pids = std::collections::BTreeSet::new();
    for init in &snapshot.processes {
        let zapping = init
            .kernel_stack
            .as_ref()
            .is_some_and(|s| s.iter().any(|f| f.function == "zap_pid_ns_processes"));
        if zapping {
            pids.extend(snapshot.descendants(init.pid).iter().map(|p| p.pid));
        }
    }
    let mut members: std::collections::HashMap<u64, usize> = std::collections::HashMap::new();
    for ns in snapshot.processes.iter().filter_map(|p| p.namespaces.net) {
        *members.entry(ns).or_default() += 1;
    }
    for process in &snapshot.processes {
        if process.namespaces.net.is_some_and(|ns| members[&ns] == 1) {
            pids.insert(process.pid);
        }
    }
    // Tasks in D get theirs once the second reading shows them stuck (resample).
    pids.into_iter()
        .filter(|pid| {
            snapshot.process(*pid).is_some_and(|p| {
                p.kernel_stack.is_none()
                    && !p.kernel_thread
                    && p.state != TaskState::UninterruptibleSleep
            })
        })
        .collect()
}

/// Reads this host.
fn collect_live(args: &CollectOptions, progress: &dyn Progress) -> Result<Snapshot, CollectError> {
    let started = Instant::now();
    let mut snapshot = Snapshot::new(nodedoc_procfs::host_info());
    let mut gaps = Gaps::new();

    // The kernel log is read on its own thread while /proc is scanned: the two are
    // independent and each mostly waits on the kernel.
    let since_us = args.since.map(|window| {
        snapshot
            .host
            .uptime_us
            .saturating_sub(window.as_micros().min(u128::from(u64::MAX)) as u64)
    });
    // A kernel log file named by the operator replaces this host's.
    let kernel_log_file = args.files.kernel_log.clone();
    let kernel_log = std::thread::spawn(move || match kernel_log_file {
        Some(path) => files::read_kernel_log(&path),
        None => nodedoc_kmsg::read_kernel_log(since_us),
    });

    progress.step("reading processes");
    let root = ProcRoot::live().map_err(CollectError::Procfs)?;
    let options = scan_options(args);
    let scan = nodedoc_procfs::scan(&root, &options).map_err(CollectError::Procfs)?;
    let process_count = scan.processes.len();
    let resolutions = scan.resolution_counts();
    let vanished = scan.vanished;
    gaps.merge(scan.gaps);
    snapshot.processes = scan.processes;

    let procfs_detail = procfs_detail(args, process_count, &resolutions, vanished);
    complete(
        args,
        &root,
        snapshot,
        gaps,
        procfs_detail,
        KernelLogInput::Reading(kernel_log),
        &mut |snapshot, gaps| collect_ovs(&args.ovs, snapshot, gaps),
        started,
        progress,
        &|_| true,
    )
}

/// The kernel log of a collection: being read on its own thread (`check`), or already
/// taken from the follower (an agent round).
pub(crate) enum KernelLogInput {
    Reading(std::thread::JoinHandle<Result<KernelLog, nodedoc_kmsg::Error>>),
    Read(Box<Result<KernelLog, nodedoc_kmsg::Error>>),
}

/// One line on how processes were read.
pub(crate) fn procfs_detail(
    args: &CollectOptions,
    process_count: usize,
    resolutions: &[(nodedoc_model::SocketResolution, usize)],
    vanished: u64,
) -> String {
    let mut detail = format!("{process_count} processes");
    if !args.fd_census {
        detail.push_str("; fd census skipped (--no-fds)");
    } else {
        let parts: Vec<String> = resolutions
            .iter()
            .filter(|(r, _)| *r != nodedoc_model::SocketResolution::NoSockets)
            .map(|(r, n)| format!("{n} process{} by {r}", if *n == 1 { "" } else { "es" }))
            .collect();
        if !parts.is_empty() {
            detail.push_str(&format!("; sockets resolved: {}", parts.join(", ")));
        }
    }
    if vanished > 0 {
        detail.push_str(&format!("; {vanished} exited during the scan"));
    }
    detail
}

/// What every collection does once its processes are read: mounts and cgroups, the second
/// look at suspects, Open vSwitch, the kernel log, and the second reading.
#[allow(clippy::too_many_arguments)]
pub(crate) fn complete(
    args: &CollectOptions,
    root: &ProcRoot,
    mut snapshot: Snapshot,
    mut gaps: Gaps,
    procfs_detail: String,
    kernel_log: KernelLogInput,
    ovs: &mut dyn FnMut(&mut Snapshot, &mut Gaps),
    started: Instant,
    progress: &dyn Progress,
    second_reading_of: &dyn Fn(&Process) -> bool,
) -> Result<Snapshot, CollectError> {
    progress.step("reading mounts and cgroups");
    snapshot.mounts = nodedoc_procfs::read_mounts(root, &snapshot.processes, &mut gaps);
    snapshot.freezers = nodedoc_procfs::read_freezers(
        std::path::Path::new("/sys/fs/cgroup"),
        &snapshot.processes,
        &mut gaps,
    );
    for pid in second_look(&snapshot) {
        match nodedoc_procfs::read_kernel_detail(root, pid) {
            Ok((stack, syscall)) => {
                if let Ok(i) = snapshot.processes.binary_search_by_key(&pid, |p| p.pid) {
                    snapshot.processes[i].kernel_stack = Some(stack);
                    snapshot.processes[i].syscall = syscall;
                }
            }
            Err(e) if e.is_vanished() => {}
            Err(e) => gaps.record("procfs", "/proc/PID/stack", e.reason(), pid.to_string()),
        }
    }
    snapshot.sources.push(SourceStatus {
        source: "procfs".into(),
        state: if gaps.is_empty() {
            SourceState::Collected
        } else {
            SourceState::Partial
        },
        detail: procfs_detail,
    });

    progress.step("reading Open vSwitch");
    ovs(&mut snapshot, &mut gaps);

    progress.step("reading the kernel log");
    let kernel_log = match kernel_log {
        KernelLogInput::Reading(thread) => thread.join(),
        KernelLogInput::Read(result) => Ok(*result),
    };
    match kernel_log {
        Ok(result) => {
            let what = match &args.files.kernel_log {
                Some(path) => path.display().to_string(),
                None => "/dev/kmsg and syslog(2)".to_string(),
            };
            files::set_kernel_log(&mut snapshot, &mut gaps, result, &what);
        }
        Err(_) => return Err(CollectError::Panicked("kernel log")),
    }
    if !args.files.logs.is_empty() {
        progress.step("reading the services' logs");
        files::read_service_logs(&args.files, &mut snapshot, &mut gaps);
    }
    if !args.files.journal.is_empty() {
        progress.step("reading the journal files");
        files::read_journals(&args.files, &mut snapshot, &mut gaps);
    }

    if !args.interval.is_zero() {
        // The interval counts from the first reading: the scan itself already took part of it.
        let elapsed = started.elapsed();
        if elapsed < args.interval {
            progress.step("sampling again");
            std::thread::sleep(args.interval - elapsed);
        }
        let tasks = if snapshot.processes.iter().all(second_reading_of) {
            nodedoc_procfs::resample(root, &mut snapshot.processes, &mut gaps)
        } else {
            // Only some tasks (an agent round: those in D or Z): read them, then put back
            // what the second reading learnt (the stacks of confirmed hung tasks).
            let mut subset: Vec<Process> = snapshot
                .processes
                .iter()
                .filter(|p| second_reading_of(p))
                .cloned()
                .collect();
            let tasks = nodedoc_procfs::resample(root, &mut subset, &mut gaps);
            for read in subset {
                if let Ok(i) = snapshot
                    .processes
                    .binary_search_by_key(&read.pid, |p| p.pid)
                {
                    snapshot.processes[i] = read;
                }
            }
            tasks
        };
        snapshot.resample = Some(Resample {
            interval_ms: duration_ms(args.interval),
            tasks,
        });
    } else {
        nodedoc_procfs::read_blocked(root, &mut snapshot.processes, &mut gaps);
    }
    snapshot.gaps = gaps.into_vec();
    Ok(snapshot)
}

/// Adds Open vSwitch (and the network devices of every namespace) to a snapshot whose
/// processes are read.
pub fn collect_ovs(source: &OvsSource, snapshot: &mut Snapshot, gaps: &mut Gaps) {
    let options = nodedoc_ovs::OvsOptions {
        endpoint: source.endpoint.clone(),
        log: source.log.clone(),
        ..nodedoc_ovs::OvsOptions::default()
    };
    let collection = nodedoc_ovs::collect(&options, &snapshot.processes);
    snapshot.sources.extend(collection.sources);
    gaps.merge(collection.gaps);
    snapshot.ovs = collection.ovs;
    snapshot.network = collection.network;
}

/// What `ovs ports` and `fix` need: processes without their fd census (for ovs-vswitchd
/// and the network namespaces) and Open vSwitch.
pub fn collect_ovs_only(source: &OvsSource) -> Result<Snapshot, CollectError> {
    let mut snapshot = Snapshot::new(nodedoc_procfs::host_info());
    let mut gaps = Gaps::new();
    let root = ProcRoot::live().map_err(CollectError::Procfs)?;
    let options = ScanOptions {
        fd_census: false,
        wants_kernel_detail: &|_| false,
        ..ScanOptions::default()
    };
    let scan = nodedoc_procfs::scan(&root, &options).map_err(CollectError::Procfs)?;
    gaps.merge(scan.gaps);
    snapshot.processes = scan.processes;
    collect_ovs(source, &mut snapshot, &mut gaps);
    snapshot.gaps = gaps.into_vec();
    Ok(snapshot)
}

pub(crate) fn kernel_log_status(log: &KernelLog) -> SourceStatus {
    let source = match (&log.file, log.source) {
        (Some(file), _) => format!(
            "{} ({}{})",
            file.path,
            file.format,
            file.kernel_release
                .as_deref()
                .map(|r| format!(", written by kernel {r}"))
                .unwrap_or_default()
        ),
        (None, nodedoc_model::KernelLogSource::DevKmsg) => "/dev/kmsg".to_string(),
        (None, nodedoc_model::KernelLogSource::DmesgText) => {
            "syslog(2) text (no /dev/kmsg)".to_string()
        }
        (None, nodedoc_model::KernelLogSource::File) => "a saved file".to_string(),
    };
    let mut detail = format!("{}: {} records", source, log.records.len());
    if let Some(file) = &log.file {
        if file.skipped_bytes > 0 {
            detail.push_str(&format!(
                ", only its last {} MiB read ({} bytes before them skipped)",
                nodedoc_kmsg::DEFAULT_TAIL_BYTES >> 20,
                file.skipped_bytes
            ));
        }
        if file.other_lines > 0 {
            detail.push_str(&format!(
                ", {} lines of other programs skipped",
                file.other_lines
            ));
        }
    }
    if log.skipped_before_window > 0 {
        detail.push_str(&format!(
            ", {} older ones outside --since",
            log.skipped_before_window
        ));
    }
    if log.overwritten > 0 {
        detail.push_str(&format!(", {} overwritten while reading", log.overwritten));
    }
    if log.malformed > 0 {
        detail.push_str(&format!(", {} malformed skipped", log.malformed));
    }
    SourceStatus {
        source: "kernel-log".into(),
        // A file is all there is; syslog(2) text lacks what /dev/kmsg has.
        state: if matches!(
            log.source,
            nodedoc_model::KernelLogSource::DevKmsg | nodedoc_model::KernelLogSource::File
        ) {
            SourceState::Collected
        } else {
            SourceState::Partial
        },
        detail,
    }
}

fn duration_ms(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}
