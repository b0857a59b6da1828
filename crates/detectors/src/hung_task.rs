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
//! so, but is not the kernel's word and does not make the finding critical.
//!
//! **Floods.** Tasks with the same stack classification and severity share a signature, and
//! so do earlier reports by the same writer: thousands are one group finding each.
//! A `netns-gone` finding for the same task is linked as its cause, and so is the `hung-task`
//! finding of a task stuck reading this one's memory (it holds the memory-map lock).

use std::collections::BTreeMap;

use nodedoc_model::{
    shell_command, BlockedCheck, Evidence, Finding, KmsgRecord, Process, Severity, Subject,
    TaskState,
};

use crate::stacks::{classify, describe, memory_map_lock_suspects, stack_line, Classification};
use crate::{duration, Context, Detector, Provenance, Signature};

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

/// The kernel's hung-task reports, by pid.
struct KernelReport<'a> {
    comm: &'a str,
    seconds: u64,
    times: usize,
    last: &'a KmsgRecord,
    /// Who wrote the lines: user space can forge them into `/dev/kmsg`.
    provenance: Provenance,
}

impl Detector for HungTask {
    fn id(&self) -> &'static str {
        "hung-task"
    }

    fn detect(&self, cx: &mut Context<'_>) {
        let snapshot = cx.snapshot;
        let mut reports: BTreeMap<i32, KernelReport<'_>> = BTreeMap::new();
        for record in snapshot.kernel_log.iter().flat_map(|log| &log.records) {
            if let Some((comm, pid, seconds)) = parse_hung_task_line(&record.message) {
                let report = reports.entry(pid).or_insert(KernelReport {
                    comm,
                    seconds,
                    times: 0,
                    last: record,
                    provenance: Provenance::default(),
                });
                report.times += 1;
                report.provenance.add(record);
                report.seconds = report.seconds.max(seconds);
                report.last = record;
            }
        }

        let mut blocked: Vec<(&Process, Option<Classification>)> = snapshot
            .processes
            .iter()
            .filter(|p| p.state == TaskState::UninterruptibleSleep && !p.kernel_thread)
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
            let report = reports.remove(&process.pid);
            // Tasks stuck the same way (one stack signature, one severity) are one failure.
            let signature = match &classification {
                Some(c) => Signature::new(
                    c.signature.id.clone(),
                    format!(
                        "{{count}} tasks are stuck in uninterruptible sleep: {}",
                        c.signature.title
                    ),
                    u64::MAX - process.start_time_ticks,
                    "longest running first",
                ),
                None => Signature::new(
                    "unclassified",
                    "{count} tasks are stuck in uninterruptible sleep: unclassified stacks",
                    u64::MAX - process.start_time_ticks,
                    "longest running first",
                ),
            };
            let finding = self.blocked_task(cx, process, classification, report.as_ref());
            let values = finding.1;
            let pairs: Vec<(&str, &str)> = values.iter().map(|(k, v)| (*k, v.as_str())).collect();
            cx.emit_as(signature, finding.0, &pairs);
        }

        // Kernel reports of tasks that are no longer blocked: worth knowing, not broken now.
        for (pid, report) in reports {
            let running_again = snapshot.process(pid).is_some_and(|p| p.comm == report.comm);
            let subject = Subject::Process {
                pid,
                comm: report.comm.to_string(),
            };
            let reporter = if report.provenance.kernel_wrote_any() {
                "the kernel reported"
            } else {
                "a line user space wrote into the kernel log reports"
            };
            let mut finding = Finding::new(
                self.id(),
                Severity::Info,
                subject,
                format!(
                    "{reporter} {} (pid {pid}) blocked for more than {} s; it is {} now",
                    report.comm,
                    report.seconds,
                    if running_again {
                        "no longer blocked"
                    } else {
                        "gone"
                    }
                ),
            );
            finding.evidence.push(Evidence::new(
                format!(
                    "\"{}\" ({} report{})",
                    report.last.message.trim(),
                    report.times,
                    if report.times == 1 { "" } else { "s" }
                ),
                shell_command!(
                    "dmesg | grep -F -- {}",
                    format!("task {}:{pid} blocked", report.comm)
                ),
            ));
            finding.evidence.extend(report.provenance.evidence());
            let signature = Signature::new(
                format!("reported-earlier/{}", report.provenance.key()),
                format!(
                    "{{count}} tasks {} blocked earlier are no longer blocked",
                    if report.provenance.kernel_wrote_any() {
                        "the kernel reported"
                    } else {
                        "that lines user space wrote into the kernel log report"
                    }
                ),
                report.times as u64,
                "most reported first",
            );
            let classification = format!(
                "The kernel's hung-task detector saw {} (pid {pid}) in uninterruptible sleep for more than {} s. It is not blocked any more, so whatever held it has let go; the kernel log around that time says what was slow.",
                report.comm, report.seconds
            );
            cx.emit_as(
                signature,
                finding,
                &[
                    ("classification", &classification),
                    ("classification_fix", "Nothing to do now. If it recurs, run `nodedoc check` while it happens to see the blocked stack."),
                ],
            );
        }
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
    ) -> (Finding, Vec<(&'static str, String)>) {
        let snapshot = cx.snapshot;
        let pid = process.pid;
        let title = classification
            .as_ref()
            .map_or("unclassified stack", |c| c.signature.title.as_str());
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
        if let Some(report) = report {
            finding.evidence.push(Evidence::new(
                format!(
                    "{} blocked for more than {} s ({} time{})",
                    if report.provenance.kernel_wrote_any() {
                        "the kernel reported it"
                    } else {
                        "a line user space wrote into the kernel log reports it"
                    },
                    report.seconds,
                    report.times,
                    if report.times == 1 { "" } else { "s" }
                ),
                shell_command!(
                    "dmesg | grep -F -- {}",
                    format!("task {}:{pid} blocked", report.comm)
                ),
            ));
            finding.evidence.extend(report.provenance.evidence());
        }
        let (explanation, fix) = match &classification {
            Some(class) => {
                finding.evidence.push(Evidence::fact(format!(
                    "stack classified as {}: {} (matched {})",
                    class.signature.id, class.signature.title, class.frame
                )));
                let description = describe(cx.processes(), process, class);
                finding.evidence.extend(description.evidence);
                finding.references.extend(description.references);
                (description.explanation, description.fix)
            }
            None => (
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
                monotonic_us: 5,
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
            monotonic_us: 5,
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
