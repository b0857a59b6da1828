//! # `pidns-exit-hang`
//!
//! **Signature.** A task whose kernel stack holds `zap_pid_ns_processes`: the init of a pid
//! namespace (a container's first process) that got SIGKILL and waits, in `do_wait`, for
//! every other task of its namespace to die. It shows state `S`, and SIGKILL does nothing
//! more: `docker stop` and `kill -9` leave the container running (seed 003).
//!
//! **Sources.** Kernel stacks of pid-namespace inits sleeping in `do_wait` and of every task
//! still in their namespace (their descendants), states, wchans, and the freezer state of
//! their cgroups.
//!
//! **Evidence.** The init's stack; every task left in the namespace with its state, wchan and
//! stack; the blockers — tasks in `D` or frozen — named with their `hung-task` classification
//! ("child 362091 s6-sync is in D state in sync()"), and for frozen ones the freezer state and
//! the command to thaw. Linked to the blockers' `hung-task` findings as its causes.

use nodedoc_model::{
    shell_command, Evidence, Finding, FreezerState, Process, Severity, Subject, TaskState,
};

use crate::stacks::{classify, describe, stack_line};
use crate::{Context, Detector, Signature};

/// See the module documentation.
pub struct PidnsExitHang;

/// How many members of the namespace the evidence lists one by one.
const MEMBERS_SHOWN: usize = 8;

impl Detector for PidnsExitHang {
    fn id(&self) -> &'static str {
        "pidns-exit-hang"
    }

    fn detect(&self, cx: &mut Context<'_>) {
        let snapshot = cx.snapshot;
        for init in &snapshot.processes {
            let Some(stack) = init.kernel_stack.as_deref() else {
                continue;
            };
            if !stack.iter().any(|f| f.function == "zap_pid_ns_processes") {
                continue;
            }
            // The tasks of its namespace: its descendants, and anything else whose pid
            // namespace inode is theirs (the init's own link is gone while it exits).
            let processes = cx.processes();
            let mut members = processes.descendants(init.pid);
            let namespaces: std::collections::BTreeSet<u64> =
                members.iter().filter_map(|m| m.namespaces.pid).collect();
            let mut listed: std::collections::HashSet<i32> =
                members.iter().map(|m| m.pid).collect();
            for &ns in &namespaces {
                for &other in processes.in_pid_namespace(ns) {
                    if other.pid != init.pid && listed.insert(other.pid) {
                        members.push(other);
                    }
                }
            }
            members.sort_by_key(|m| m.pid);
            let frozen = |p: &Process| {
                snapshot
                    .freezer_of(p)
                    .is_some_and(|f| f.state != FreezerState::Thawed)
            };
            let blockers: Vec<&Process> = members
                .iter()
                .copied()
                .filter(|p| p.state == TaskState::UninterruptibleSleep || frozen(p))
                .collect();

            let blocker_text = |p: &Process| -> String {
                let what = match classify(snapshot, p) {
                    Some(c) if c.signature.id == "frozen-cgroup" => {
                        let freezer = snapshot
                            .freezer_of(p)
                            .map(|f| format!(" ({} {})", f.path, f.state))
                            .unwrap_or_default();
                        format!("is frozen by the cgroup freezer{freezer}")
                    }
                    Some(c) => format!("is in D state: {}", c.signature.title),
                    None => format!(
                        "is in D state{}",
                        p.wchan
                            .as_deref()
                            .map(|w| format!(" in {w}"))
                            .unwrap_or_default()
                    ),
                };
                format!("child {} {} {what}", p.pid, p.comm)
            };
            let summary_tail = match blockers.as_slice() {
                [] => format!(
                    "{} task{} still in its namespace",
                    members.len(),
                    if members.len() == 1 { "" } else { "s" }
                ),
                [one] => blocker_text(one),
                many => format!(
                    "{} tasks cannot die, e.g. {}",
                    many.len(),
                    blocker_text(many[0])
                ),
            };
            let mut finding = Finding::new(
                self.id(),
                Severity::Critical,
                Subject::process(init),
                format!(
                    "{} is a killed pid-namespace init that cannot exit: {summary_tail}; the container cannot exit until it dies",
                    init.label()
                ),
            );
            finding.evidence.push(Evidence::new(
                format!("kernel stack: {}", stack_line(stack, 6)),
                shell_command!("cat /proc/{}/stack", init.pid),
            ));
            if let Some(ns) = namespaces.iter().next() {
                finding.evidence.push(Evidence::new(
                    format!("its pid namespace is pid:[{ns}] (the init's own link is gone: it is exiting)"),
                    shell_command!("ls -l /proc/*/ns/pid 2>/dev/null | grep -F -- {}", format!("pid:[{ns}]")),
                ));
            }
            if let Some(inner) = init.nspid.last() {
                finding.evidence.push(Evidence::new(
                    format!(
                        "pid {} in its own namespace (NSpid {:?})",
                        inner, init.nspid
                    ),
                    shell_command!("grep NSpid /proc/{}/status", init.pid),
                ));
            }
            for member in members.iter().take(MEMBERS_SHOWN) {
                let stack = member
                    .kernel_stack
                    .as_deref()
                    .filter(|s| !s.is_empty())
                    .map(|s| format!(", stack {}", stack_line(s, 4)))
                    .unwrap_or_default();
                finding.evidence.push(Evidence::new(
                    format!(
                        "still in the namespace: {} (pid {}), state {}{}{stack}",
                        member.comm,
                        member.pid,
                        member.state,
                        member
                            .wchan
                            .as_deref()
                            .map(|w| format!(", wchan {w}"))
                            .unwrap_or_default()
                    ),
                    shell_command!("cat /proc/{}/stack", member.pid),
                ));
            }
            if members.len() > MEMBERS_SHOWN {
                finding.evidence.push(Evidence::fact(format!(
                    "and {} more tasks",
                    members.len() - MEMBERS_SHOWN
                )));
            }
            let mut blocker_fixes = Vec::new();
            let mut blocker_explanations = Vec::new();
            for blocker in &blockers {
                if let Some(class) = classify(snapshot, blocker) {
                    let description = describe(cx.processes(), blocker, &class);
                    finding.evidence.extend(description.evidence);
                    for reference in description.references {
                        if !finding.references.contains(&reference) {
                            finding.references.push(reference);
                        }
                    }
                    blocker_explanations.push(description.explanation);
                    blocker_fixes.push(description.fix);
                } else {
                    blocker_explanations.push(format!(
                        "{} (pid {}) is in uninterruptible sleep; its stack matches no known signature.",
                        blocker.comm, blocker.pid
                    ));
                    blocker_fixes.push(format!(
                        "find what {} (pid {}) waits for in its stack (`cat /proc/{}/stack`).",
                        blocker.comm, blocker.pid, blocker.pid
                    ));
                }
                let subject = Subject::process(blocker);
                if let Some(cause) = cx.finding("hung-task", &subject) {
                    finding.caused_by.push(cause.id.clone());
                }
            }
            if blockers.is_empty() {
                blocker_explanations.push(
                    "none of the tasks left is in D state or frozen; they may be exiting slowly, so check again."
                        .to_string(),
                );
                blocker_fixes.push(
                    "check again in a few seconds; if the same tasks remain, look at their stacks."
                        .to_string(),
                );
            }
            // Its container: the init's own cgroups say while it exits only on cgroup2 (its v1
            // paths already read `/`); the tasks left in its namespace are in it too.
            finding.container = snapshot
                .container_of(init)
                .or_else(|| members.iter().find_map(|m| snapshot.container_of(m)));
            let blockers_text = blocker_explanations.join(" ");
            let fixes_text = blocker_fixes.join(" ");
            let signature = Signature::new(
                if blockers.is_empty() {
                    "no-blocker"
                } else {
                    "blocked"
                },
                "{count} killed pid-namespace inits cannot exit: their containers cannot stop",
                u64::MAX - init.start_time_ticks,
                "longest running first",
            );
            cx.emit_as(
                signature,
                finding,
                &[("blockers", &blockers_text), ("blocker_fix", &fixes_text)],
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{process, resampled, snapshot};
    use nodedoc_model::{CgroupHierarchy, CgroupMembership, FreezerCgroup};
    use nodedoc_procfs::parse::parse_stack;

    #[test]
    fn seed_003_the_init_waits_for_s6_sync_and_links_its_hung_task() {
        let mut init = process(291967, "envoy");
        init.nspid = vec![291967, 1];
        init.kernel_stack = Some(parse_stack(crate::stacks::tests::SEED_ZAP));
        let mut s6 = process(362091, "s6-sync");
        s6.ppid = 291967;
        s6.state = TaskState::UninterruptibleSleep;
        s6.kernel_stack = Some(parse_stack(crate::stacks::tests::SEED_S6_SYNC));
        let mut snap = snapshot(vec![init, s6.clone()]);
        snap.resample = Some(resampled(&[&s6], TaskState::UninterruptibleSleep));
        let findings = crate::run(&snap, &Default::default());
        let hang = findings
            .iter()
            .find(|f| f.detector == "pidns-exit-hang")
            .expect("finding");
        assert_eq!(hang.pid, Some(291967));
        assert_eq!(hang.severity, Severity::Critical);
        assert!(
            hang.summary
                .contains("child 362091 s6-sync is in D state: sync() across every filesystem"),
            "{}",
            hang.summary
        );
        let hung = findings
            .iter()
            .find(|f| f.detector == "hung-task")
            .expect("hung-task");
        assert_eq!(hang.caused_by, vec![hung.id.clone()]);
        assert_eq!(hung.causes, vec![hang.id.clone()]);
        assert!(hang.fix.contains("S6_SYNC_DISKS=0"), "{}", hang.fix);
    }

    #[test]
    fn a_frozen_child_is_named_with_the_thaw_command() {
        let mut init = process(100, "sh");
        init.nspid = vec![100, 1];
        init.kernel_stack = Some(parse_stack(crate::stacks::tests::SEED_ZAP));
        let mut child = process(101, "sleep");
        child.ppid = 100;
        child.state = TaskState::UninterruptibleSleep;
        child.kernel_stack = Some(parse_stack(crate::stacks::tests::LAB_FROZEN_SLEEP));
        child.cgroups = vec![CgroupMembership {
            hierarchy: 4,
            controllers: "freezer".into(),
            path: "/lab".into(),
        }];
        let mut snap = snapshot(vec![init, child]);
        snap.freezers.push(FreezerCgroup {
            hierarchy: CgroupHierarchy::V1Freezer,
            path: "/lab".into(),
            state: FreezerState::Frozen,
        });
        let findings = crate::run(&snap, &Default::default());
        let hang = findings
            .iter()
            .find(|f| f.detector == "pidns-exit-hang")
            .unwrap();
        assert!(
            hang.summary
                .contains("child 101 sleep is frozen by the cgroup freezer (/lab FROZEN)"),
            "{}",
            hang.summary
        );
        assert!(
            hang.fix
                .contains("echo THAWED > /sys/fs/cgroup/freezer/lab/freezer.state"),
            "{}",
            hang.fix
        );
        assert!(hang
            .evidence
            .iter()
            .any(|e| e.fact.contains("its cgroup /lab is FROZEN")));
    }
}
