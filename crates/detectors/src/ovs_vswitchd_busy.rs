//! # `ovs-vswitchd-busy`
//!
//! **Signature.** ovs-vswitchd uses more than `ovs_busy_cpu_share` (50 %) of a core between
//! the check's two readings. An idle switch costs ovs-vswitchd next to nothing; measured on
//! OVS 3.1 with the userspace datapath, one port whose device vanished (its namespace
//! deleted before `del-port`) keeps it at ~80 % of a core, polling the dead device and
//! logging `error receiving Ethernet packet on X: File descriptor in bad state` until the
//! rate limiter drops the lines. Seed 000: high CPU, stack always in the kernel.
//!
//! **Sources.** `/proc/PID/stat` CPU ticks at both readings, the OVS topology, the log tail.
//!
//! **Evidence.** The share (`top -H -p PID`), the threads, and the log flood. Linked to its
//! cause: the `ovs-orphan-port` findings whose device the log shows being polled (or, with no
//! log, those whose row still holds an ofport: the busy-looping kind).

use nodedoc_model::{shell_command, Evidence, Finding, Severity, Subject};

use crate::{ovs, thousands, Context, Detector};

/// See the module documentation.
pub struct OvsVswitchdBusy;

impl Detector for OvsVswitchdBusy {
    fn id(&self) -> &'static str {
        "ovs-vswitchd-busy"
    }

    fn detect(&self, cx: &mut Context<'_>) {
        let snapshot = cx.snapshot;
        let Some(process) = ovs::vswitchd(snapshot) else {
            return;
        };
        let Some(later) = snapshot
            .resample
            .as_ref()
            .and_then(|r| r.task(process.key()))
        else {
            return;
        };
        let ticks = snapshot.host.clock_ticks_per_sec;
        let elapsed_us = later.sampled_at_us.saturating_sub(process.sampled_at_us);
        if ticks == 0 || elapsed_us == 0 {
            return;
        }
        let used = (later.utime_ticks + later.stime_ticks)
            .saturating_sub(process.utime_ticks + process.stime_ticks);
        let share = used as f64 / ticks as f64 / (elapsed_us as f64 / 1e6);
        if share < cx.config.ovs_busy_cpu_share {
            return;
        }
        let pid = process.pid;
        let subject = Subject::Process {
            pid,
            comm: process.comm.clone(),
        };
        let mut finding = Finding::new(
            self.id(),
            Severity::Warning,
            subject,
            format!(
                "{} used {:.0}% of a core over {} ms",
                process.label(),
                share * 100.0,
                elapsed_us / 1000
            ),
        );
        finding.evidence.push(Evidence::new(
            format!(
                "{used} ticks of CPU time ({:.0}% of a core) in {} ms between the two readings",
                share * 100.0,
                elapsed_us / 1000
            ),
            shell_command!("top -H -p {}", pid),
        ));
        let ovs_state = snapshot.ovs.as_ref();
        if let Some(v) = ovs_state.and_then(|o| o.vswitchd.as_ref()) {
            finding.evidence.push(Evidence::new(
                format!(
                    "{} threads: {} handlers, {} revalidators",
                    v.threads, v.handler_threads, v.revalidator_threads
                ),
                shell_command!("ps -T -o spid,comm,pcpu -p {}", pid),
            ));
        }
        let log = ovs_state.and_then(|o| o.log.as_ref());
        if let (Some(log), Some(ovs_state)) = (log, ovs_state) {
            let errors = log.count("receive-error");
            if errors > 0 {
                finding.evidence.push(Evidence::new(
                    format!(
                        "{} `error receiving Ethernet packet` lines and {} `Dropped N log messages` lines in the last {} lines of {}",
                        thousands(errors),
                        thousands(log.count("dropped-messages")),
                        thousands(log.lines_read),
                        log.path
                    ),
                    shell_command!("tail -f -- {}", ovs::log_path(ovs_state)),
                ));
            }
        }
        // The cause: orphaned ports ovs-vswitchd is seen polling.
        let causes: Vec<_> = cx
            .findings_of("ovs-orphan-port")
            .filter(|f| {
                let name = match &f.subject {
                    Subject::OvsInterface { name, .. } => name.as_str(),
                    _ => return false,
                };
                match log {
                    Some(log) => log.interface_count(name, "receive-error") > 0,
                    None => ovs_state
                        .and_then(|o| o.interface(name))
                        .is_some_and(|(_, _, i)| i.ofport.is_some_and(|p| p >= 0)),
                }
            })
            .map(|f| f.id.clone())
            .collect();
        finding.caused_by.extend(causes);
        let pid_text = pid.to_string();
        let share_text = format!("{:.0}%", share * 100.0);
        cx.emit(finding, &[("pid", &pid_text), ("share", &share_text)]);
    }
}

#[cfg(test)]
mod tests {
    use nodedoc_model::{Resample, TaskSample};

    #[test]
    fn busy_vswitchd_is_chained_to_the_orphan_it_polls() {
        let mut s = crate::ovs_netlink_socket_excess::tests::seed_000_snapshot();
        let log = s.ovs.as_mut().unwrap().log.as_mut().unwrap();
        log.counts.insert("receive-error".into(), 5000);
        log.interface_counts
            .entry("ha-d489f511-9f".into())
            .or_default()
            .insert("receive-error".into(), 5000);
        let vswitchd = &mut s.processes[0];
        vswitchd.utime_ticks = 1000;
        vswitchd.sampled_at_us = 1_000_000;
        s.resample = Some(Resample {
            interval_ms: 1000,
            tasks: vec![TaskSample {
                pid: 812,
                start_time_ticks: 100,
                state: nodedoc_model::TaskState::Running,
                utime_ticks: 1040,
                stime_ticks: 38,
                sampled_at_us: 2_000_000,
                blocked: None,
            }],
        });
        let findings = crate::run(&s, &Default::default());
        let busy = findings
            .iter()
            .find(|f| f.detector == "ovs-vswitchd-busy")
            .expect("busy");
        assert!(
            busy.summary.contains("used 78% of a core over 1000 ms"),
            "{}",
            busy.summary
        );
        assert_eq!(
            busy.caused_by,
            vec![nodedoc_model::FindingId(
                "ovs-orphan-port:ovs-interface/ha-d489f511-9f".into()
            )]
        );
        // Below the threshold: nothing.
        s.resample.as_mut().unwrap().tasks[0].utime_ticks = 1010;
        s.resample.as_mut().unwrap().tasks[0].stime_ticks = 0;
        assert!(!crate::run(&s, &Default::default())
            .iter()
            .any(|f| f.detector == "ovs-vswitchd-busy"));
    }
}
