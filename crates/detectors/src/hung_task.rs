//! # `hung-task`
//!
//! **Signature.** A task in uninterruptible sleep (`D`) at both readings of a check that did
//! not run in between (its context-switch count did not move, as the kernel's own hung-task
//! detector checks) and whose stack, read only then, is of that wait — or one
//! the kernel's hung-task detector reported: `INFO: task COMM:PID blocked for more than N
//! seconds.` A task in `D` ignores every signal, SIGKILL included.
//!
//! **Sources.** `/proc/PID/stat` read twice, `/proc/PID/stack`, `/proc/PID/syscall` (and the
//! fd it blocks on), `/proc/PID/wchan`, `/proc/PID/cgroup`, the freezer state of its cgroups,
//! mounts (for FUSE), and the kernel log.
//!
//! **Evidence.** State at both readings, wchan, the blocked call, the kernel stack, the cgroup,
//! the stack's classification from `stack_signature` in `data/signatures.toml` — frozen cgroup
//! (also when only `freezer.state` says so: a v1-frozen task shows an ordinary sleep stack),
//! FUSE daemon not answering (named), vfork parent, `sync()` across all filesystems (seed 003's
//! `s6-sync`), network filesystem (seed 003's ceph client), block I/O, kernel lock — and the
//! kernel's own reports, and a task waiting for its own memory-map lock (the reason `ps` hangs)
//! with the task suspected of holding it. An unknown stack is shown, not guessed at. Critical when the kernel
//! reported the task or a SIGKILL is pending on it (it was killed and cannot die). A report
//! that user space wrote into `/dev/kmsg` (its facility is not `kern`) is shown and said to be
//! so, but is not the kernel's word and does not make the finding critical. Kernel threads
//! (`kworker/…`, `jbd2/…`, `nfsd`) are hung tasks like any other.
//!
//! **From the kernel log alone.** Every task the kernel reported (its `INFO: task` line, and
//! the call trace it printed after it or in a `sysrq w` dump, `KernelLog::blocked_task_reports`)
//! that this check does not find stuck is reported with the cause its trace shows (the same
//! signature table as live stacks), the frame that decided it, and when it was reported; then
//! what a live reading says now: exited, running again (only then "no longer blocked"), or in
//! D but making progress (information). A log read from a file (`check --kernel-log`) is of
//! another time and maybe another host: its pids are not looked up here, its tasks' state now
//! is not known, and the finding is a warning. A task found stuck live gets the kernel's
//! report and trace as evidence too, and the trace's class when its live stack has none.
//!
//! **Floods.** Tasks with the same stack classification and severity share a signature, and
//! so do the kernel's reports of one class, state and writer: thousands are one group finding
//! each.
//! A `netns-gone` finding for the same task is linked as its cause, and so is the `hung-task`
//! finding of a task stuck reading this one's memory (it holds the memory-map lock).

use std::collections::BTreeMap;

use nodedoc_model::{
    shell_command, BlockedCheck, BlockedTaskReport, Evidence, Finding, KernelLog, KmsgRecord,
    Process, Severity, Snapshot, Subject, TaskState,
};

use crate::stacks::{
    classify, classify_trace, describe, describe_trace_shown_by, memory_map_lock_suspects,
    stack_line, trace_line, Classification, StackClass,
};
use crate::{duration, kernel_log_grep, logged_when, Context, Detector, Provenance, Signature};

/// See the module documentation.
pub struct HungTask;

/// How many stack frames the evidence line shows.
const FRAMES_SHOWN: usize = 6;

/// `INFO: task s6-sync:362091 blocked for more than 120 seconds.` → (comm, pid, seconds).
pub(crate) fn parse_hung_task_line(message: &str) -> Option<(&str, i32, u64)> {
    let rest = message.split_once("INFO: task ")?.1;
    let (who, rest) = rest.split_once(" blocked for more than ")?;
    let (comm, pid) = who.rsplit_once(':')?;
    let seconds = rest.split_whitespace().next()?.parse().ok()?;
    Some((comm, pid.parse().ok()?, seconds))
}

/// What the kernel log says of one task: its hung-task lines and its call trace.
struct KernelReport<'a> {
    comm: &'a str,
    /// The longest `blocked for more than N seconds`; none for a Show Blocked State dump.
    seconds: Option<u64>,
    /// `INFO: task` lines about it.
    times: usize,
    /// The last of them.
    last_line: Option<&'a KmsgRecord>,
    /// Its last report with a call trace (the kernel prints one after the line).
    trace: Option<&'a BlockedTaskReport>,
    /// Who wrote the lines: user space can forge them into `/dev/kmsg`.
    provenance: Provenance,
}

impl KernelReport<'_> {
    /// When the kernel last reported it: (time since boot, wall clock) as the log says.
    fn when(&self) -> (u64, Option<i64>) {
        match (self.last_line, self.trace) {
            (Some(line), _) => (line.monotonic_us, line.wall_clock_ms),
            (None, Some(trace)) => (
                trace.logged_at.monotonic_us.unwrap_or(0),
                trace.logged_at.wall_clock_ms,
            ),
            (None, None) => (0, None),
        }
    }

    /// `blocked for more than 120 s`, or how a dump of blocked tasks listed it.
    fn blocked(&self) -> String {
        match self.seconds {
            Some(seconds) => format!("blocked for more than {seconds} s"),
            None => "in uninterruptible sleep (a dump of the blocked tasks)".to_string(),
        }
    }

    fn reporter(&self) -> &'static str {
        if self.provenance.kernel_wrote_any() {
            "the kernel reported"
        } else {
            "a line user space wrote into the kernel log reports"
        }
    }

    /// The evidence of the kernel's report: the line (or the dump), how often, and when.
    fn evidence(&self, snapshot: &Snapshot, log: &KernelLog, pid: i32) -> Vec<Evidence> {
        let (monotonic_us, wall_clock_ms) = self.when();
        let when = logged_when(snapshot, log, monotonic_us, wall_clock_ms);
        let mut evidence = Vec::new();
        match self.last_line {
            Some(line) => evidence.push(Evidence::new(
                format!(
                    "\"{}\" ({} report{}, the last at {when})",
                    line.message.trim(),
                    self.times,
                    if self.times == 1 { "" } else { "s" }
                ),
                kernel_log_grep(log, &format!("task {}:{pid} blocked", self.comm), None),
            )),
            None => evidence.push(Evidence::new(
                format!(
                    "listed among the tasks in uninterruptible sleep by a dump of them (sysrq w) at {when}"
                ),
                kernel_log_grep(log, "Show Blocked State", Some(40)),
            )),
        }
        evidence.extend(self.provenance.evidence());
        evidence
    }
}

/// What a live reading says now of a task the kernel log reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Now {
    /// The log came from a file: its pids are not this host's, and nothing is known now.
    NotKnown,
    /// No such process now (or its pid belongs to a process started after the report).
    Exited,
    /// The process is there, and not in D.
    Running(TaskState),
    /// In D at the first reading, but it ran before the second.
    MakingProgress,
}

impl Now {
    fn key(self) -> &'static str {
        match self {
            Now::NotKnown => "in-the-log",
            Now::Exited => "exited",
            Now::Running(_) => "running",
            Now::MakingProgress => "making-progress",
        }
    }

    /// Appended to the summary.
    fn summary(self) -> String {
        match self {
            Now::NotKnown => String::new(),
            Now::Exited => "; it has exited since".to_string(),
            Now::Running(state) => {
                format!("; it is no longer blocked (state {} now)", state.letter())
            }
            Now::MakingProgress => "; it ran between this check's two readings".to_string(),
        }
    }

    /// Appended to a group's summary.
    fn group_summary(self) -> &'static str {
        match self {
            Now::NotKnown => "",
            Now::Exited => "; they have exited since",
            Now::Running(_) => "; they are no longer blocked",
            Now::MakingProgress => "; they ran between this check's two readings",
        }
    }

    /// A sentence for the explanation.
    fn explanation(self) -> String {
        match self {
            Now::NotKnown => "The log was read from a file: whether the task is still blocked cannot be told from it, and its pid is not looked up on this host.".to_string(),
            Now::Exited => "It has exited since, so what held it let go at some point (a task in D cannot die before): the trace says what was slow then.".to_string(),
            Now::Running(state) => format!("This check read it in state {} (not D): what held it has let go, for now.", state.letter()),
            Now::MakingProgress => "This check found it in D again, but it ran between the two readings: it is making progress, slowly, through the same kind of wait.".to_string(),
        }
    }
}

impl Detector for HungTask {
    fn id(&self) -> &'static str {
        "hung-task"
    }

    fn detect(&self, cx: &mut Context<'_>) {
        let snapshot = cx.snapshot;
        let log = snapshot.kernel_log.as_ref();
        let mut reports = kernel_reports(log);
        // A log from a file is of another time, maybe another host: its pids are not matched
        // with this host's processes.
        let from_file = log.is_some_and(KernelLog::is_from_file);

        let mut blocked: Vec<(&Process, Option<Classification>)> = snapshot
            .processes
            .iter()
            // Kernel threads too (kworker, jbd2, nfsd): the kernel's own detector watches
            // them, and one stuck in D is as stuck as any task.
            .filter(|p| p.state == TaskState::UninterruptibleSleep)
            .filter(
                |p| match snapshot.resample.as_ref().map(|r| r.task(p.key())) {
                    // In D at both readings is not enough: it must not have run in between,
                    // and its stack must be of that wait (see `BlockedCheck`).
                    Some(Some(sample)) => {
                        sample.state == TaskState::UninterruptibleSleep
                            && sample.blocked.as_ref().is_none_or(BlockedCheck::confirmed)
                    }
                    // Gone at the second reading: it was passing through D.
                    Some(None) => false,
                    // No second reading in this snapshot: one reading has to do.
                    None => true,
                },
            )
            .map(|p| (p, classify(snapshot, p)))
            .collect();
        // A task waiting for its memory-map lock links to the reader that holds it, whose
        // finding must exist first: those writers go last (the sort is stable).
        blocked.sort_by_key(|(_, class)| {
            class
                .as_ref()
                .is_some_and(|c| c.signature.id == "memory-map-lock-write")
        });
        for (process, classification) in blocked {
            let report = if from_file {
                None
            } else {
                reports
                    .remove(&process.pid)
                    .filter(|r| same_task(snapshot, process, r))
            };
            let trace_class = report
                .as_ref()
                .and_then(|r| r.trace)
                .and_then(|trace| classify_trace(trace).map(|class| (trace, class)));
            // Tasks stuck the same way (one stack signature, one severity) are one failure.
            let (id, title) = match (&classification, &trace_class) {
                (Some(c), _) => (c.signature.id.as_str(), c.signature.title.as_str()),
                (None, Some((_, class))) => {
                    (class.signature.id.as_str(), class.signature.title.as_str())
                }
                (None, None) => ("unclassified", "unclassified stacks"),
            };
            let signature = Signature::new(
                id,
                format!("{{count}} tasks are stuck in uninterruptible sleep: {title}"),
                u64::MAX - process.start_time_ticks,
                "longest running first",
            );
            let finding =
                self.blocked_task(cx, process, classification, report.as_ref(), trace_class);
            let values = finding.1;
            let pairs: Vec<(&str, &str)> = values.iter().map(|(k, v)| (*k, v.as_str())).collect();
            cx.emit_as(signature, finding.0, &pairs);
        }

        // Tasks the kernel reported that this check does not find stuck.
        let Some(log) = log else { return };
        for (pid, report) in reports {
            let now = if from_file {
                Now::NotKnown
            } else {
                now_of(snapshot, pid, &report)
            };
            self.reported_task(cx, log, pid, &report, now);
        }
    }
}

/// The kernel log's reports, by pid: the `INFO: task` lines and the call traces the kernel
/// printed after them (or in a dump of blocked tasks).
fn kernel_reports(log: Option<&KernelLog>) -> BTreeMap<i32, KernelReport<'_>> {
    let mut reports: BTreeMap<i32, KernelReport<'_>> = BTreeMap::new();
    let Some(log) = log else {
        return reports;
    };
    for record in &log.records {
        if let Some((comm, pid, seconds)) = parse_hung_task_line(&record.message) {
            let report = reports.entry(pid).or_insert(KernelReport {
                comm,
                seconds: None,
                times: 0,
                last_line: None,
                trace: None,
                provenance: Provenance::default(),
            });
            report.times += 1;
            report.provenance.add(record);
            report.seconds = report.seconds.max(Some(seconds));
            report.last_line = Some(record);
        }
    }
    for trace in &log.blocked_task_reports {
        let report = reports.entry(trace.pid).or_insert_with(|| {
            // Only in a dump of blocked tasks: no `INFO: task` line to count.
            let mut provenance = Provenance::default();
            provenance.add_facility(trace.logged_at.facility.unwrap_or(0));
            KernelReport {
                comm: &trace.comm,
                seconds: None,
                times: 0,
                last_line: None,
                trace: None,
                provenance,
            }
        });
        // The latest trace, unless it has no frames and an earlier one has.
        if !trace.frames.is_empty() || report.trace.is_none() {
            report.trace = Some(trace);
        }
        report.seconds = report.seconds.max(trace.blocked_secs);
    }
    reports
}

/// True when `process` can be the task the kernel reported: the same name, and started
/// before the report (a pid is reused by later processes).
fn same_task(snapshot: &Snapshot, process: &Process, report: &KernelReport<'_>) -> bool {
    if process.comm != report.comm {
        return false;
    }
    let (reported_us, _) = report.when();
    let ticks = snapshot.host.clock_ticks_per_sec;
    if reported_us == 0 || ticks == 0 {
        return true;
    }
    let started_us = process.start_time_ticks.saturating_mul(1_000_000) / ticks;
    started_us <= reported_us
}

/// What this check's readings say of a task the kernel reported, when it is not among the
/// tasks found stuck.
fn now_of(snapshot: &Snapshot, pid: i32, report: &KernelReport<'_>) -> Now {
    let Some(process) = snapshot
        .process(pid)
        .filter(|p| same_task(snapshot, p, report))
    else {
        return Now::Exited;
    };
    let second = snapshot.resample.as_ref().map(|r| r.task(process.key()));
    match second {
        Some(None) => Now::Exited,
        Some(Some(sample)) if sample.state != TaskState::UninterruptibleSleep => {
            Now::Running(sample.state)
        }
        _ if process.state != TaskState::UninterruptibleSleep => Now::Running(process.state),
        _ => Now::MakingProgress,
    }
}

impl HungTask {
    /// The finding for one blocked task, and the template values for the catalog.
    fn blocked_task(
        &self,
        cx: &Context<'_>,
        process: &Process,
        classification: Option<Classification>,
        report: Option<&KernelReport<'_>>,
        trace_class: Option<(&BlockedTaskReport, StackClass)>,
    ) -> (Finding, Vec<(&'static str, String)>) {
        let snapshot = cx.snapshot;
        let pid = process.pid;
        let title = match (&classification, &trace_class) {
            (Some(c), _) => c.signature.title.as_str(),
            (None, Some((_, class))) => class.signature.title.as_str(),
            (None, None) => "unclassified stack",
        };
        // A line user space forged into the kernel log is shown, but does not make it critical.
        let reported_by_kernel = report.is_some_and(|r| r.provenance.kernel_wrote_any());
        let severity = if reported_by_kernel || process.sigkill_pending {
            Severity::Critical
        } else {
            Severity::Warning
        };
        let mut finding = Finding::new(
            self.id(),
            severity,
            Subject::process(process),
            format!(
                "{} is stuck in uninterruptible sleep: {title}",
                process.label()
            ),
        );
        let readings = match &snapshot.resample {
            Some(r) => match r.task(process.key()).and_then(|t| t.blocked.as_ref()) {
                Some(BlockedCheck::Confirmed {
                    context_switches: Some(n),
                }) => format!(
                    "in state D at both readings, {} ms apart, without running in between (context switches {n} at both, and after its stack was read)",
                    r.interval_ms
                ),
                _ => format!("in state D at both readings, {} ms apart", r.interval_ms),
            },
            None => "in state D (one reading only: the snapshot has no second sample)".to_string(),
        };
        finding.evidence.push(Evidence::new(
            readings,
            shell_command!("grep State /proc/{}/status", pid),
        ));
        if process.sigkill_pending {
            finding.evidence.push(Evidence::new(
                "a SIGKILL is pending: it was killed and cannot act on it",
                shell_command!("grep -E 'SigPnd|ShdPnd' /proc/{}/status", pid),
            ));
        }
        if let Some(age) = snapshot.process_age_secs(process) {
            finding.evidence.push(Evidence::new(
                format!("running for {}", duration(age)),
                shell_command!("ps -o lstart= -p {}", pid),
            ));
        }
        if let Some(wchan) = &process.wchan {
            finding.evidence.push(Evidence::new(
                format!("sleeping in {wchan}"),
                shell_command!("cat /proc/{}/wchan", pid),
            ));
        }
        if let Some(syscall) = &process.syscall {
            let name = syscall
                .name(&snapshot.host.machine)
                .map_or_else(|| format!("system call {}", syscall.number), str::to_string);
            let text = match (&syscall.fd_target, syscall.fd(&snapshot.host.machine)) {
                _ if syscall.number < 0 => {
                    "blocked outside a system call (a page fault or an exit path)".to_string()
                }
                (Some(target), Some(fd)) => format!("blocked in {name}(fd {fd} → {target})"),
                _ => format!("blocked in {name}()"),
            };
            finding.evidence.push(Evidence::new(
                text,
                shell_command!("cat /proc/{}/syscall", pid),
            ));
        }
        if let Some(stack) = process.kernel_stack.as_deref().filter(|s| !s.is_empty()) {
            finding.evidence.push(Evidence::new(
                format!("kernel stack: {}", stack_line(stack, FRAMES_SHOWN)),
                shell_command!("cat /proc/{}/stack", pid),
            ));
        }
        if let Some(cgroup) = process.cgroups.iter().find(|c| c.path != "/") {
            finding.evidence.push(Evidence::new(
                format!("cgroup {}", cgroup.path),
                shell_command!("cat /proc/{}/cgroup", pid),
            ));
        }
        if process.kernel_thread {
            finding.evidence.push(Evidence::fact(
                "a kernel thread: nothing can kill it, and the work it does (a journal commit, writeback, a workqueue, a server's requests) waits with it",
            ));
        }
        if let (Some(report), Some(log)) = (report, &snapshot.kernel_log) {
            finding.evidence.push(Evidence::new(
                format!(
                    "{} it {} ({} time{})",
                    report.reporter(),
                    report.blocked(),
                    report.times.max(1),
                    if report.times > 1 { "s" } else { "" }
                ),
                kernel_log_grep(log, &format!("task {}:{pid} blocked", report.comm), None),
            ));
            finding.evidence.extend(report.evidence(snapshot, log, pid));
            if let Some(trace) = report.trace.filter(|t| !t.frames.is_empty()) {
                let mut fact = format!(
                    "the kernel's call trace in that report: {}",
                    trace_line(trace, false, FRAMES_SHOWN)
                );
                if let Some((_, class)) = &trace_class {
                    fact.push_str(&format!(
                        " (classified as {}, decided by {})",
                        class.signature.id, class.frame
                    ));
                }
                finding.evidence.push(Evidence::fact(fact));
            }
        }
        let (explanation, fix) = match (&classification, trace_class) {
            (Some(class), _) => {
                finding.evidence.push(Evidence::fact(format!(
                    "stack classified as {}: {} (matched {})",
                    class.signature.id, class.signature.title, class.frame
                )));
                let description = describe(cx.processes(), process, class);
                finding.evidence.extend(description.evidence);
                finding.references.extend(description.references);
                (description.explanation, description.fix)
            }
            // Its live stack could not be read or matched nothing; the kernel's trace did.
            (None, Some((trace, class))) => {
                let log = snapshot.kernel_log.as_ref().expect("a trace comes from a log");
                let description = describe_trace_shown_by(
                    trace,
                    &class,
                    kernel_log_grep(log, &format!(":{pid} "), None),
                );
                finding.evidence.extend(
                    description
                        .evidence
                        .into_iter()
                        .filter(|e| e.fact.starts_with("decided by") || e.fact.starts_with("what it waits for")),
                );
                finding.references.extend(description.references);
                (description.explanation, description.fix)
            }
            (None, None) => (
                format!(
                    "{} has been in uninterruptible sleep{} across both readings. Its kernel stack matches none of nodedoc's known signatures; it is shown in the evidence as it is. nodedoc does not guess.",
                    process.label(),
                    process.wchan.as_deref().map(|w| format!(" in {w}")).unwrap_or_default()
                ),
                "Read the stack from the top to see what it waits for; `echo w > /proc/sysrq-trigger; dmesg` dumps the stacks of every blocked task, which often shows who holds what it waits for.".to_string(),
            ),
        };
        if let Some(cause) = cx.finding("netns-gone", &finding.subject) {
            finding.caused_by.push(cause.id.clone());
        }
        if classification
            .as_ref()
            .is_some_and(|c| c.signature.id == "memory-map-lock-write")
        {
            for reader in memory_map_lock_suspects(cx.processes(), process) {
                if let Some(cause) = cx.finding(self.id(), &Subject::process(reader)) {
                    finding.caused_by.push(cause.id.clone());
                }
            }
        }
        (
            finding,
            vec![("classification", explanation), ("classification_fix", fix)],
        )
    }
}

impl HungTask {
    /// The finding for a task the kernel log reported that this check does not find stuck:
    /// the cause its call trace shows, when it was reported, and what is known of it now.
    fn reported_task(
        &self,
        cx: &mut Context<'_>,
        log: &KernelLog,
        pid: i32,
        report: &KernelReport<'_>,
        now: Now,
    ) {
        let snapshot = cx.snapshot;
        let trace = report.trace.filter(|t| !t.frames.is_empty());
        let class = trace.and_then(|t| classify_trace(t).map(|c| (t, c)));
        let cause = match (&class, trace) {
            (Some((_, class)), _) => class.signature.title.clone(),
            (None, Some(_)) => "its call trace matches no known signature".to_string(),
            (None, None) => "no call trace in the log".to_string(),
        };
        // The kernel's word about a task whose state now cannot be read is a warning: an SRE
        // holding only the log must see it. A task a live reading shows past it, or a line
        // user space wrote, is information.
        let severity = match now {
            Now::NotKnown if report.provenance.kernel_wrote_any() => Severity::Warning,
            _ => Severity::Info,
        };
        let mut finding = Finding::new(
            self.id(),
            severity,
            Subject::Process {
                pid,
                comm: report.comm.to_string(),
            },
            format!(
                "{} {} (pid {pid}) {}: {cause}{}",
                report.reporter(),
                report.comm,
                report.blocked(),
                now.summary()
            ),
        );
        finding.evidence.extend(report.evidence(snapshot, log, pid));
        let seen = match report.seconds {
            Some(seconds) => format!(
                "The kernel's hung-task detector saw {} (pid {pid}) in uninterruptible sleep for more than {seconds} s.",
                report.comm
            ),
            None => format!(
                "The kernel listed {} (pid {pid}) among the tasks in uninterruptible sleep.",
                report.comm
            ),
        };
        let class_id = match (&class, trace) {
            (Some((_, class)), _) => class.signature.id.clone(),
            (None, Some(_)) => "unclassified".to_string(),
            (None, None) => "no-trace".to_string(),
        };
        let (explanation, fix) = match (class, trace) {
            (Some((trace, class)), _) => {
                let description = describe_trace_shown_by(
                    trace,
                    &class,
                    kernel_log_grep(log, &format!(":{pid} "), None),
                );
                // The first evidence repeats the report's line, already shown.
                finding
                    .evidence
                    .extend(description.evidence.into_iter().skip(1));
                finding.references.extend(description.references);
                let fix = match now {
                    Now::NotKnown | Now::MakingProgress => description.fix,
                    Now::Exited | Now::Running(_) => format!(
                        "Nothing to do for this task now. If it recurs: {}",
                        description.fix
                    ),
                };
                (
                    format!("{} {}", description.explanation, now.explanation()),
                    fix,
                )
            }
            (None, Some(trace)) => {
                finding.evidence.push(Evidence::fact(format!(
                    "its call trace: {}",
                    trace_line(trace, true, 8)
                )));
                (
                    format!(
                        "{seen} Its call trace (in the evidence) matches none of nodedoc's known signatures; it is shown as it is. nodedoc does not guess. {}",
                        now.explanation()
                    ),
                    "Read the trace from the top to see what it waited for; the lines the kernel printed around the report often show what was slow (I/O errors, a server not answering, a lock holder's own report).".to_string(),
                )
            }
            (None, None) => (
                format!(
                    "{seen} The log holds no call trace for it (the kernel prints one right after the line, unless the log was cut there). {}",
                    now.explanation()
                ),
                "Look at the kernel log right after the report for its trace; if the task is stuck again, run `nodedoc check` while it is, to read its live stack.".to_string(),
            ),
        };
        let signature = Signature::new(
            format!(
                "reported/{class_id}/{}/{}",
                now.key(),
                report.provenance.key()
            ),
            format!(
                "{{count}} tasks {} {}: {cause}{}",
                if report.provenance.kernel_wrote_any() {
                    "the kernel reported"
                } else {
                    "lines user space wrote into the kernel log report"
                },
                if report.seconds.is_some() {
                    "blocked"
                } else {
                    "in uninterruptible sleep"
                },
                now.group_summary()
            ),
            report.times as u64,
            "most reported first",
        );
        cx.emit_as(
            signature,
            finding,
            &[
                ("classification", &explanation),
                ("classification_fix", &fix),
            ],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{process, resampled, sample, snapshot};
    use nodedoc_model::KernelLog;
    use nodedoc_procfs::parse::parse_stack;

    fn blocked(pid: i32, comm: &str, stack: &str) -> Process {
        let mut p = process(pid, comm);
        p.state = TaskState::UninterruptibleSleep;
        p.kernel_stack = Some(parse_stack(stack));
        p
    }

    #[test]
    fn seed_003_s6_sync_is_classified_with_the_s6_overlay_fix() {
        let s6 = blocked(362091, "s6-sync", crate::stacks::tests::SEED_S6_SYNC);
        let mut snap = snapshot(vec![s6.clone()]);
        snap.resample = Some(resampled(&[&s6], TaskState::UninterruptibleSleep));
        snap.kernel_log = Some(KernelLog {
            records: vec![nodedoc_model::KmsgRecord {
                level: 3,
                facility: 0,
                sequence: 1,
                monotonic_us: 200_000_000,
                continuation: false,
                message: "INFO: task s6-sync:362091 blocked for more than 120 seconds.".into(),
                dictionary: vec![],
                caller: None,
                wall_clock_ms: None,
            }],
            ..KernelLog::default()
        });
        let findings = crate::run(&snap, &Default::default());
        assert_eq!(findings.len(), 1, "{findings:#?}");
        let f = &findings[0];
        assert_eq!(f.detector, "hung-task");
        assert_eq!(f.pid, Some(362091));
        assert_eq!(f.severity, Severity::Critical, "the kernel reported it");
        assert!(
            f.summary.contains("sync() across every filesystem"),
            "{}",
            f.summary
        );
        assert!(f.evidence.iter().any(|e| e
            .fact
            .contains("kernel stack: call_rwsem_down_read_failed ← iterate_supers ← sys_sync")));
        assert!(f
            .evidence
            .iter()
            .any(|e| e.fact.contains("blocked for more than 120 s")));
        assert!(f.fix.contains("S6_SYNC_DISKS=0"), "{}", f.fix);
        assert!(
            f.explanation.contains("s6-overlay before 1.22"),
            "{}",
            f.explanation
        );
    }

    #[test]
    fn a_hung_task_line_user_space_forged_is_shown_but_not_the_kernels_word() {
        let s6 = blocked(362091, "s6-sync", crate::stacks::tests::SEED_S6_SYNC);
        let mut snap = snapshot(vec![s6.clone()]);
        snap.resample = Some(resampled(&[&s6], TaskState::UninterruptibleSleep));
        let line = |pid: i32| nodedoc_model::KmsgRecord {
            level: 3,
            facility: 1,
            sequence: 1,
            monotonic_us: 200_000_000,
            continuation: false,
            message: format!("INFO: task s6-sync:{pid} blocked for more than 120 seconds."),
            dictionary: vec![],
            caller: None,
            wall_clock_ms: None,
        };
        snap.kernel_log = Some(KernelLog {
            records: vec![line(362091), line(4242)],
            ..KernelLog::default()
        });
        let findings = crate::run(&snap, &Default::default());
        let stuck = findings.iter().find(|f| f.pid == Some(362091)).unwrap();
        assert_eq!(
            stuck.severity,
            Severity::Warning,
            "a forged report does not make it critical"
        );
        assert!(stuck.evidence.iter().any(|e| e.fact
            == "a line user space wrote into the kernel log reports it blocked for more than 120 s (1 time)"));
        assert!(stuck.evidence.iter().any(|e| e.fact
            == "the line was written to /dev/kmsg by user space (facility user) — not the kernel's own report"));
        let earlier = findings.iter().find(|f| f.pid == Some(4242)).unwrap();
        assert_eq!(earlier.severity, Severity::Info);
        assert!(
            earlier.summary.starts_with(
                "a line user space wrote into the kernel log reports s6-sync (pid 4242)"
            ),
            "{}",
            earlier.summary
        );
        assert!(earlier
            .evidence
            .iter()
            .any(|e| e.fact.contains("not the kernel's own report")));
    }

    #[test]
    fn a_memory_map_writer_is_caused_by_the_reader_that_holds_its_lock() {
        // The writer has the lower pid: it is still linked to the reader found after it.
        let mut writer = blocked(100, "victim", crate::stacks::tests::LAB_MMAP_WRITER);
        writer.memory_map_blocked = true;
        let reader = blocked(200, "mem-reader", crate::stacks::tests::LAB_MEM_READER);
        let mut snap = snapshot(vec![writer.clone(), reader.clone()]);
        snap.resample = Some(resampled(
            &[&writer, &reader],
            TaskState::UninterruptibleSleep,
        ));
        let findings = crate::run(&snap, &Default::default());
        let find = |pid| findings.iter().find(|f| f.pid == Some(pid)).unwrap();
        let (w, r) = (find(100), find(200));
        assert!(w.summary.contains("memory-map lock"), "{}", w.summary);
        assert!(
            r.summary.contains("reading another process's memory"),
            "{}",
            r.summary
        );
        assert_eq!(w.caused_by, vec![r.id.clone()]);
        assert_eq!(r.causes, vec![w.id.clone()]);
    }

    #[test]
    fn a_task_that_left_d_is_not_reported_and_unknown_stacks_are_not_guessed() {
        let passing = blocked(10, "dd", crate::stacks::tests::SEED_CEPH);
        let stuck = blocked(11, "mystery", "[<0>] some_driver_wait+0x1/0x2\n");
        let mut snap = snapshot(vec![passing.clone(), stuck.clone()]);
        let mut resample = resampled(&[&stuck], TaskState::UninterruptibleSleep);
        resample.tasks.push(sample(&passing, TaskState::Running));
        resample.tasks.sort_by_key(|t| t.pid);
        snap.resample = Some(resample);
        let findings = crate::run(&snap, &Default::default());
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].pid, Some(11));
        assert!(findings[0].summary.contains("unclassified stack"));
        assert!(findings[0].explanation.contains("does not guess"));
        assert!(findings[0]
            .evidence
            .iter()
            .any(|e| e.fact.contains("some_driver_wait")));
    }

    /// A jbd2 thread's report from a real log (scality/RestBlockDriver issue 32, 3.13), as
    /// this host's log.
    fn jbd2_report() -> String {
        include_str!("../../kmsg/tests/fixtures/hung_task/scality-32-jbd2-sleep_on_buffer-3.13.txt")
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect()
    }

    fn live_log(text: &str) -> KernelLog {
        let mut log = nodedoc_kmsg::parse_dmesg_text(text, None);
        log.source = nodedoc_model::KernelLogSource::DevKmsg;
        log
    }

    fn jbd2_thread(pid: i32) -> Process {
        let mut p = blocked(
            pid,
            "jbd2/dewba1-8",
            "[<0>] sleep_on_buffer+0xe/0x20\n[<0>] __wait_on_bit+0x62/0x90\n[<0>] out_of_line_wait_on_bit+0x77/0x90\n[<0>] __wait_on_buffer+0x2c/0x30\n[<0>] jbd2_journal_commit_transaction+0x1d8a/0x1fc0\n[<0>] kjournald2+0xbd/0x250\n[<0>] kthread+0xd2/0xf0\n",
        );
        p.kernel_thread = true;
        p
    }

    /// Regression (issue 10): kernel threads in D at both readings were skipped, and then the
    /// kernel's report of them said they were "no longer blocked". A stuck kernel thread is a
    /// hung task: its live stack and the kernel's report, both.
    #[test]
    fn a_kernel_thread_stuck_in_d_is_a_hung_task_with_the_kernels_report() {
        let jbd2 = jbd2_thread(22455);
        let mut snap = snapshot(vec![jbd2.clone()]);
        snap.resample = Some(resampled(&[&jbd2], TaskState::UninterruptibleSleep));
        snap.kernel_log = Some(live_log(&jbd2_report()));
        let findings = crate::run(&snap, &Default::default());
        assert_eq!(findings.len(), 1, "{findings:#?}");
        let f = &findings[0];
        assert_eq!(f.pid, Some(22455));
        assert_eq!(f.severity, Severity::Critical, "the kernel reported it");
        assert!(
            f.summary
                .starts_with("jbd2/dewba1-8 (pid 22455) is stuck in uninterruptible sleep: "),
            "{}",
            f.summary
        );
        assert!(!f.summary.contains("no longer"), "{}", f.summary);
        let facts: Vec<&str> = f.evidence.iter().map(|e| e.fact.as_str()).collect();
        assert!(
            facts.iter().any(|e| e.starts_with("a kernel thread")),
            "{facts:#?}"
        );
        assert!(
            facts
                .iter()
                .any(|e| e.starts_with("kernel stack: sleep_on_buffer ← __wait_on_bit")),
            "the live stack: {facts:#?}"
        );
        assert!(
            facts.iter().any(|e| e.starts_with(
                "the kernel's call trace in that report: io_schedule ← sleep_on_buffer ← __wait_on_bit"
            ) && e.contains("classified as block-io, decided by io_schedule")),
            "the kernel's report: {facts:#?}"
        );
        assert!(
            facts.iter().any(|e| e.contains("10450.9s after boot")),
            "when: {facts:#?}"
        );

        // A kernel thread in D that ran between the readings is passing through.
        let mut resample = resampled(&[&jbd2], TaskState::UninterruptibleSleep);
        resample.tasks[0].blocked = Some(BlockedCheck::RanBetween {
            first: 10,
            second: 11,
        });
        snap.resample = Some(resample);
        let findings = crate::run(&snap, &Default::default());
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].severity, Severity::Info);
        assert!(
            findings[0]
                .summary
                .ends_with("; it ran between this check's two readings"),
            "{}",
            findings[0].summary
        );
    }

    /// A task the kernel reported that is gone, running again, or whose pid a later process
    /// took: the cause its trace shows and when, and what a live reading says now — "no
    /// longer blocked" only when one shows it running.
    #[test]
    fn a_reported_task_is_described_by_its_trace_and_what_a_live_reading_shows() {
        let run = |processes: Vec<Process>| {
            let mut snap = snapshot(processes.clone());
            let refs: Vec<&Process> = processes.iter().collect();
            snap.resample = Some(resampled(&refs, TaskState::Sleeping));
            snap.kernel_log = Some(live_log(&jbd2_report()));
            let findings = crate::run(&snap, &Default::default());
            assert_eq!(findings.len(), 1, "{findings:#?}");
            findings.into_iter().next().unwrap()
        };
        let gone = run(vec![]);
        assert_eq!(gone.severity, Severity::Info);
        assert_eq!(gone.pid, Some(22455));
        assert_eq!(
            gone.summary,
            format!(
                "the kernel reported jbd2/dewba1-8 (pid 22455) blocked for more than 120 s: {}; it has exited since",
                crate::catalog().stack_signature("block-io").unwrap().title
            )
        );
        assert!(gone
            .evidence
            .iter()
            .any(|e| e.fact.starts_with("decided by io_schedule")));
        assert!(
            gone.evidence.iter().any(|e| e
                .fact
                .contains("the last at 2025-11-24 18:54:10 UTC (10450.9s after boot)")),
            "{:#?}",
            gone.evidence
        );
        assert!(gone
            .fix
            .starts_with("Nothing to do for this task now. If it recurs: "));

        let mut running = jbd2_thread(22455);
        running.state = TaskState::Sleeping;
        let again = run(vec![running.clone()]);
        assert!(
            again
                .summary
                .ends_with("; it is no longer blocked (state S now)"),
            "{}",
            again.summary
        );

        // The same pid and name, started after the report: another task.
        running.start_time_ticks = 10451 * 100;
        let reused = run(vec![running]);
        assert!(
            reused.summary.ends_with("; it has exited since"),
            "{}",
            reused.summary
        );
    }

    /// Stuck now, its live stack unreadable or unknown: the kernel's trace classifies it.
    #[test]
    fn a_stuck_task_without_a_known_live_stack_takes_the_class_of_the_kernels_trace() {
        let mut jbd2 = jbd2_thread(22455);
        jbd2.kernel_stack = None;
        let mut snap = snapshot(vec![jbd2.clone()]);
        snap.resample = Some(resampled(&[&jbd2], TaskState::UninterruptibleSleep));
        snap.kernel_log = Some(live_log(&jbd2_report()));
        let f = &crate::run(&snap, &Default::default())[0];
        let title = &crate::catalog().stack_signature("block-io").unwrap().title;
        assert!(f.summary.ends_with(title.as_str()), "{}", f.summary);
        assert!(f
            .evidence
            .iter()
            .any(|e| e.fact.starts_with("decided by io_schedule")));
        assert!(
            !f.explanation.contains("does not guess"),
            "{}",
            f.explanation
        );
    }

    #[test]
    fn kernel_lines_parse() {
        assert_eq!(
            parse_hung_task_line("INFO: task s6-sync:362091 blocked for more than 120 seconds."),
            Some(("s6-sync", 362091, 120))
        );
        assert_eq!(
            parse_hung_task_line("INFO: task kworker/u8:2:42 blocked for more than 241 seconds."),
            Some(("kworker/u8:2", 42, 241))
        );
        assert_eq!(
            parse_hung_task_line("INFO: task x blocked for more than 1 seconds."),
            None
        );
        assert_eq!(parse_hung_task_line("INFO: task x:1 blocked"), None);
    }
}
