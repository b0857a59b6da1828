//! # `zombie-processes`
//!
//! **Signature.** Processes in state `Z` that are still zombies at the second reading
//! (`check` re-reads every process after a short interval), grouped by parent: a parent that
//! leaves its exited children unreaped "never reaps its children". A zombie seen in one
//! reading only may be reaped a moment later and is not reported.
//!
//! **Sources.** `/proc/PID/stat`: state, ppid and start time, read twice.
//!
//! **Evidence.** The parent, how many zombies it holds, their pids and names, and the oldest
//! one's start (a zombie's exit time is not recorded by the kernel; its start time is a lower
//! bound on how long the parent has been neglecting it). Seed 001: a `calico` CNI plugin left
//! as a zombie after a pod's network teardown, never reaped by its parent.

use std::collections::BTreeMap;

use nodedoc_model::{shell_command, Evidence, Finding, Process, Severity, Subject, TaskState};

use crate::{duration, thousands, Context, Detector, Signature};

/// See the module documentation.
pub struct ZombieProcesses;

/// How many zombies the evidence names one by one.
const ZOMBIES_SHOWN: usize = 5;

impl Detector for ZombieProcesses {
    fn id(&self) -> &'static str {
        "zombie-processes"
    }

    fn detect(&self, cx: &mut Context<'_>) {
        let snapshot = cx.snapshot;
        let mut by_parent: BTreeMap<i32, Vec<&Process>> = BTreeMap::new();
        for process in snapshot
            .processes
            .iter()
            .filter(|p| p.state == TaskState::Zombie)
        {
            let still_zombie = match &snapshot.resample {
                Some(resample) => resample
                    .task(process.key())
                    .is_some_and(|t| t.state == TaskState::Zombie),
                // A snapshot without a second reading: every zombie counts, and the evidence
                // says it was seen once.
                None => true,
            };
            if still_zombie {
                by_parent.entry(process.ppid).or_default().push(process);
            }
        }
        for (ppid, mut zombies) in by_parent {
            zombies.sort_by_key(|z| z.start_time_ticks);
            let parent = snapshot.process(ppid);
            let parent_comm = parent.map_or_else(|| "?".to_string(), |p| p.comm.clone());
            let count = zombies.len();
            let severity = if count >= cx.config.zombie_critical_count {
                Severity::Critical
            } else {
                Severity::Warning
            };
            let oldest_age = snapshot.process_age_secs(zombies[0]);
            let names = {
                let mut names: Vec<&str> = zombies.iter().map(|z| z.comm.as_str()).collect();
                names.sort_unstable();
                names.dedup();
                names.join(", ")
            };
            let subject = Subject::Process {
                pid: ppid,
                comm: parent_comm.clone(),
            };
            let mut finding = Finding::new(
                self.id(),
                severity,
                subject,
                format!(
                    "{parent_comm} (pid {ppid}) never reaps its children: {} zombie{} ({names}){}",
                    thousands(count as u64),
                    if count == 1 { "" } else { "s" },
                    oldest_age.map_or(String::new(), |a| format!(
                        ", the oldest started {} ago",
                        duration(a)
                    ))
                ),
            );
            finding.evidence.push(Evidence::new(
                format!("{} zombie children of pid {ppid}", thousands(count as u64)),
                shell_command!(
                    "ps -o pid,ppid,stat,lstart,comm --ppid {} | awk 'NR==1 || $3 ~ /^Z/'",
                    ppid
                ),
            ));
            for zombie in zombies.iter().take(ZOMBIES_SHOWN) {
                let age = snapshot
                    .process_age_secs(zombie)
                    .map_or(String::new(), |a| format!(", started {} ago", duration(a)));
                finding.evidence.push(Evidence::new(
                    format!("zombie {} (pid {}){age}", zombie.comm, zombie.pid),
                    shell_command!("cat /proc/{}/stat", zombie.pid),
                ));
            }
            if count > ZOMBIES_SHOWN {
                finding.evidence.push(Evidence::fact(format!(
                    "and {} more",
                    count - ZOMBIES_SHOWN
                )));
            }
            match &snapshot.resample {
                Some(r) => finding.evidence.push(Evidence::fact(format!(
                    "still zombies when read again {} ms later",
                    r.interval_ms
                ))),
                None => finding.evidence.push(Evidence::fact(
                    "seen in a single reading (the snapshot has no second sample)",
                )),
            }
            if let Some(parent) = parent {
                if !parent.cmdline.is_empty() {
                    finding.evidence.push(Evidence::new(
                        format!("parent command: {}", parent.cmdline.join(" ")),
                        shell_command!("tr '\\0' ' ' < /proc/{}/cmdline", ppid),
                    ));
                }
            }
            let ppid_text = ppid.to_string();
            let count_text = count.to_string();
            let signature = Signature::new(
                "unreaped",
                "{count} parents never reap their exited children",
                count as u64,
                "most zombies first",
            );
            cx.emit_as(
                signature,
                finding,
                &[
                    ("pid", &ppid_text),
                    ("comm", &parent_comm),
                    ("count", &count_text),
                    ("names", &names),
                ],
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{process, sample, snapshot};
    use nodedoc_model::Resample;

    fn zombie(pid: i32, ppid: i32, comm: &str, start: u64) -> Process {
        let mut p = process(pid, comm);
        p.ppid = ppid;
        p.state = TaskState::Zombie;
        p.start_time_ticks = start;
        p
    }

    #[test]
    fn seed_001_calico_zombie_is_blamed_on_its_parent_when_it_persists() {
        let parent = process(4200, "containerd-shim");
        let calico = zombie(5100, 4200, "calico", 1_000);
        let transient = zombie(5200, 1, "sh", 2_000);
        let mut snap = snapshot(vec![
            process(1, "init"),
            parent,
            calico.clone(),
            transient.clone(),
        ]);
        snap.resample = Some(Resample {
            interval_ms: 300,
            tasks: vec![sample(&calico, TaskState::Zombie)],
        });
        let findings = crate::run(&snap, &Default::default());
        assert_eq!(findings.len(), 1, "{findings:#?}");
        let f = &findings[0];
        assert_eq!(f.detector, "zombie-processes");
        assert_eq!(f.pid, Some(4200));
        assert_eq!(f.severity, Severity::Warning);
        assert!(
            f.summary
                .contains("containerd-shim (pid 4200) never reaps its children: 1 zombie (calico)"),
            "{}",
            f.summary
        );
        assert!(f
            .evidence
            .iter()
            .any(|e| e.fact.starts_with("zombie calico (pid 5100)")));
        assert!(f.fix.contains("4200"));
    }

    #[test]
    fn a_reused_pid_is_not_the_same_zombie() {
        let z = zombie(5100, 4200, "calico", 1_000);
        let mut snap = snapshot(vec![process(4200, "p"), z.clone()]);
        let mut other = sample(&z, TaskState::Zombie);
        other.start_time_ticks += 1;
        snap.resample = Some(Resample {
            interval_ms: 300,
            tasks: vec![other],
        });
        assert!(crate::run(&snap, &Default::default()).is_empty());
    }
}
