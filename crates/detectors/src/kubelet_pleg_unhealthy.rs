//! # `kubelet-pleg-unhealthy`
//!
//! **Signature.** kubelet logs `PLEG is not healthy: pleg was last seen active 3m5s ago;
//! threshold is 3m0s` (as `skipping pod synchronization - PLEG is not healthy: …` or as the
//! `err` of `"Skipping pod synchronization"`): its pod lifecycle event generator's relist — a
//! `ListPodSandbox`/`ListContainers`/status round through the runtime for every pod — took
//! longer than the threshold. The node turns NotReady, new pods do not start, deleted ones
//! stay Terminating (seed 001).
//!
//! **Sources.** `Snapshot::service_logs` (kubelet's log file given with `check --log`, or its
//! journal entries); the findings of what slows the runtime on the node.
//!
//! **Evidence.** How many such lines, first and last time, the longest "last seen active", the
//! threshold, the last line and where it is. **Chain.** Caused by what keeps the runtime busy
//! or blocked: a container the runtime cannot stop (`container-stop-failed`, or a
//! `pidns-exit-hang` no stop failure names), a network device the kernel cannot free
//! (`netdev-unregister-stuck`: pod network teardown waits behind it), a CNI plugin that does not
//! return (`cni-plugin-hang`), a runtime's or kubelet's own task stuck in D state (`hung-task`).
//!
//! Template values: `{longest}`, `{threshold}`, `{causes}`.

use nodedoc_model::{shell_command, Evidence, Finding, FindingId, Severity, Subject};

use crate::service_logs::{at, Line};
use crate::{duration, Context, Detector};

/// See the module documentation.
pub struct KubeletPlegUnhealthy;

/// What kubelet writes.
const NEEDLE: &str = "PLEG is not healthy";

/// Within this many seconds of collection, the last line means PLEG is unhealthy now.
const RECENT_SECS: i64 = 600;

/// Names (comm, at most 15 bytes) of the processes that run containers on a node: a task of
/// theirs stuck in D state stalls the runtime calls PLEG makes.
const RUNTIME_COMMS: &[&str] = &[
    "kubelet",
    "containerd",
    "containerd-shim",
    "dockerd",
    "docker-containe",
    "runc",
    "crio",
    "conmon",
];

/// A Go duration (`3m5.30015447s`, `1h2m0s`, `250ms`) in seconds.
fn go_duration(text: &str) -> Option<f64> {
    let mut total = 0.0;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .filter(|&n| n > 0)?;
        let value: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        total += value * scale;
        rest = &rest[unit_end..];
    }
    Some(total)
}

/// The text between `before` and `after` in `text`.
fn between<'t>(text: &'t str, before: &str, after: &str) -> Option<&'t str> {
    let start = text.find(before)? + before.len();
    let len = text[start..].find(after)?;
    Some(&text[start..start + len])
}

impl Detector for KubeletPlegUnhealthy {
    fn id(&self) -> &'static str {
        "kubelet-pleg-unhealthy"
    }

    fn detect(&self, cx: &mut Context<'_>) {
        let snapshot = cx.snapshot;
        let lines: Vec<Line<'_>> = Line::all(&snapshot.service_logs)
            .filter(|l| l.contains_all(&[NEEDLE]))
            .collect();
        let (Some(first), Some(last)) = (lines.first(), lines.last()) else {
            return;
        };
        let text = |l: &Line<'_>| -> String {
            match l.error() {
                Some(e) if e.contains(NEEDLE) => e.to_string(),
                _ => l.entry.message.clone(),
            }
        };
        let mut longest: Option<f64> = None;
        let mut threshold: Option<String> = None;
        for line in &lines {
            let t = text(line);
            if let Some(seen) = between(&t, "last seen active ", " ago").and_then(go_duration) {
                longest = Some(longest.map_or(seen, |l: f64| l.max(seen)));
            }
            if let Some(th) = t.split("threshold is ").nth(1) {
                let th = th.trim_end_matches(['"', '\\', ' ', ';', '}']);
                threshold = Some(th.to_string());
            }
        }
        let recent = last
            .entry
            .at_unix_ms
            .is_some_and(|ms| snapshot.host.collected_at_unix as i64 - ms / 1000 <= RECENT_SECS);

        // What slows the runtime on this node.
        let mut causes: Vec<(FindingId, String)> = Vec::new();
        let stop_failed: Vec<&Finding> = cx.findings_of("container-stop-failed").collect();
        for f in &stop_failed {
            causes.push((f.id.clone(), f.summary.clone()));
        }
        for f in cx.findings_of("pidns-exit-hang") {
            let named = stop_failed.iter().any(|s| s.caused_by.contains(&f.id));
            if !named {
                causes.push((f.id.clone(), f.summary.clone()));
            }
        }
        for detector in ["netdev-unregister-stuck", "cni-plugin-hang"] {
            for f in cx.findings_of(detector) {
                causes.push((f.id.clone(), f.summary.clone()));
            }
        }
        for f in cx.findings_of("hung-task") {
            let runtime_task = f
                .subject
                .pid()
                .and_then(|pid| snapshot.process(pid))
                .is_some_and(|p| RUNTIME_COMMS.contains(&p.comm.as_str()));
            if runtime_task {
                causes.push((f.id.clone(), f.summary.clone()));
            }
        }

        let mut finding = Finding::new(
            self.id(),
            if recent {
                Severity::Critical
            } else {
                Severity::Warning
            },
            Subject::Host,
            format!(
                "kubelet reported PLEG unhealthy {} time{}, last at {}{}{}",
                lines.len(),
                if lines.len() == 1 { "" } else { "s" },
                at(last.entry.at_unix_ms),
                longest
                    .map(|s| format!(" (relist stalled up to {})", duration(s)))
                    .unwrap_or_default(),
                match causes.len() {
                    0 => String::new(),
                    1 => format!("; the runtime is held up by: {}", causes[0].1),
                    n => format!("; {n} findings hold up the runtime, e.g. {}", causes[0].1),
                }
            ),
        );
        let command = |l: &Line<'_>| match l.log.source.strip_prefix("journal:") {
            Some(unit) => shell_command!("journalctl -u {} | grep -F 'PLEG is not healthy'", unit),
            None => shell_command!("grep -F 'PLEG is not healthy' {}", l.log.source.as_str()),
        };
        finding.evidence.push(Evidence::new(
            format!(
                "{} line(s) `PLEG is not healthy`, first {}, last {}",
                lines.len(),
                at(first.entry.at_unix_ms),
                at(last.entry.at_unix_ms)
            ),
            command(last),
        ));
        if let (Some(longest), Some(threshold)) = (longest, &threshold) {
            finding.evidence.push(Evidence::fact(format!(
                "PLEG was last seen active up to {} before; the threshold is {threshold}",
                duration(longest)
            )));
        }
        finding.evidence.push(Evidence::fact(format!(
            "last line ({}): {}",
            last.place(),
            text(last)
        )));
        finding.caused_by = causes.iter().map(|(id, _)| id.clone()).collect();
        let causes_text = if causes.is_empty() {
            "nodedoc found nothing on this node that holds the runtime up; look at the runtime's own log around the time of the lines, its goroutines (containerd: SIGUSR1 dumps them) and the number of pods and containers (a relist walks them all).".to_string()
        } else {
            let list: Vec<String> = causes.iter().map(|(_, s)| s.clone()).collect();
            format!("On this node: {}.", list.join("; "))
        };
        let longest_text = longest.map_or_else(|| "longer than".into(), duration);
        cx.emit(
            finding,
            &[
                ("longest", &longest_text),
                ("threshold", threshold.as_deref().unwrap_or("3m0s")),
                ("causes", &causes_text),
            ],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::snapshot;
    use nodedoc_model::{LogEntry, LogFormat, ServiceLog};

    fn kubelet_log(entries: Vec<(u64, Option<i64>, &str, Option<&str>)>) -> ServiceLog {
        ServiceLog {
            source: "/var/log/kubelet.log".into(),
            service: Some("kubelet".into()),
            format: LogFormat::Klog,
            entries: entries
                .into_iter()
                .map(|(line, at, message, err)| LogEntry {
                    line,
                    at_unix_ms: at,
                    level: Some("E".into()),
                    message: message.into(),
                    fields: err
                        .map(|e| [("err".to_string(), e.to_string())].into())
                        .unwrap_or_default(),
                })
                .collect(),
            entries_read: 3,
            entries_dropped: 0,
        }
    }

    #[test]
    fn go_durations_parse() {
        assert_eq!(go_duration("3m0s"), Some(180.0));
        assert!((go_duration("3m5.30015447s").unwrap() - 185.300_154_47).abs() < 1e-6);
        assert_eq!(go_duration("1h2m"), Some(3720.0));
        assert_eq!(go_duration("250ms"), Some(0.25));
        assert_eq!(go_duration("soon"), None);
        assert_eq!(go_duration(""), None);
    }

    #[test]
    fn seed_001_pleg_lines_are_counted_and_linked_to_the_stuck_device_and_the_stop() {
        let mut snap = snapshot(vec![]);
        snap.host.collected_at_unix = 1_796_108_600;
        let now = snap.host.collected_at_unix as i64 * 1000;
        snap.service_logs.push(kubelet_log(vec![
            (10, Some(now - 400_000), "skipping pod synchronization - PLEG is not healthy: pleg was last seen active 3m0.540806405s ago; threshold is 3m0s", None),
            (11, Some(now - 60_000), "Skipping pod synchronization", Some("PLEG is not healthy: pleg was last seen active 4m10.2s ago; threshold is 3m0s")),
            (12, Some(now - 50_000), "Successfully probed", None),
        ]));
        snap.service_logs
            .push(crate::container_stop_failed::tests::containerd_log());
        let findings = crate::run(&snap, &Default::default());
        let pleg = findings
            .iter()
            .find(|f| f.detector == "kubelet-pleg-unhealthy")
            .expect("pleg");
        assert_eq!(pleg.severity, Severity::Critical);
        assert!(
            pleg.summary
                .starts_with("kubelet reported PLEG unhealthy 2 times"),
            "{}",
            pleg.summary
        );
        assert!(
            pleg.summary.contains("relist stalled up to 4m 10s"),
            "{}",
            pleg.summary
        );
        assert!(
            pleg.evidence.iter().any(|e| e.fact
                == "PLEG was last seen active up to 4m 10s before; the threshold is 3m0s"),
            "{:#?}",
            pleg.evidence
        );
        let stop = findings
            .iter()
            .find(|f| f.detector == "container-stop-failed")
            .expect("stop");
        assert_eq!(pleg.caused_by, vec![stop.id.clone()]);
        assert!(
            pleg.explanation
                .contains("containerd could not stop container b32a2fd9b0a1"),
            "{}",
            pleg.explanation
        );
    }

    #[test]
    fn a_journal_entry_holding_the_whole_klog_line_is_read_the_same() {
        let mut snap = snapshot(vec![]);
        snap.host.collected_at_unix = 1_796_108_600;
        let mut log = kubelet_log(vec![(
            77,
            Some(1_796_108_500_000),
            r#"E1201 07:01:40.123456    1234 kubelet.go:2010] "Skipping pod synchronization" err="PLEG is not healthy: pleg was last seen active 3m0.5s ago; threshold is 3m0s""#,
            None,
        )]);
        log.source = "journal:kubelet.service".into();
        log.format = LogFormat::Journal;
        snap.service_logs.push(log);
        let findings = crate::run(&snap, &Default::default());
        let pleg = findings
            .iter()
            .find(|f| f.detector == "kubelet-pleg-unhealthy")
            .unwrap();
        assert!(
            pleg.evidence
                .iter()
                .any(|e| e.fact
                    == "PLEG was last seen active up to 3m 0s before; the threshold is 3m0s"),
            "{:#?}",
            pleg.evidence
        );
        assert!(pleg.evidence.iter().any(|e| e.command.as_deref()
            == Some("journalctl -u kubelet.service | grep -F 'PLEG is not healthy'")));
    }

    /// Seed 001: a runtime task stuck in the kernel stalls every relist; a blocked task of some
    /// other program does not.
    #[test]
    fn a_runtime_task_stuck_in_d_is_a_cause_and_an_unrelated_one_is_not() {
        use crate::testing::{process, resampled};
        use nodedoc_model::TaskState;
        use nodedoc_procfs::parse::parse_stack;
        let stuck = |pid: i32, comm: &str| {
            let mut p = process(pid, comm);
            p.state = TaskState::UninterruptibleSleep;
            p.kernel_stack = Some(parse_stack(crate::stacks::tests::SEED_CEPH));
            p
        };
        let shim = stuck(700, "containerd-shim");
        let backup = stuck(800, "backup");
        let mut snap = snapshot(vec![shim.clone(), backup.clone()]);
        snap.resample = Some(resampled(
            &[&shim, &backup],
            TaskState::UninterruptibleSleep,
        ));
        snap.host.collected_at_unix = 1_796_108_600;
        snap.service_logs.push(kubelet_log(vec![(
            1,
            Some(1_796_108_590_000),
            "skipping pod synchronization - PLEG is not healthy: pleg was last seen active 3m1s ago; threshold is 3m0s",
            None,
        )]));
        let findings = crate::run(&snap, &Default::default());
        let pleg = findings
            .iter()
            .find(|f| f.detector == "kubelet-pleg-unhealthy")
            .unwrap();
        let hung_shim = findings
            .iter()
            .find(|f| f.detector == "hung-task" && f.pid == Some(700))
            .unwrap();
        assert!(findings
            .iter()
            .any(|f| f.detector == "hung-task" && f.pid == Some(800)));
        assert_eq!(pleg.caused_by, vec![hung_shim.id.clone()]);
        assert!(
            pleg.summary.contains("the runtime is held up by: "),
            "{}",
            pleg.summary
        );
    }

    /// The node-condition form, as quoted in kubernetes/kubernetes#45419 (journalctl -u kubelet).
    #[test]
    fn the_node_condition_line_gives_the_stall_and_threshold() {
        let mut snap = snapshot(vec![]);
        snap.host.collected_at_unix = 1_494_000_000;
        snap.service_logs.push(kubelet_log(vec![(
            3,
            Some(1_493_992_796_872),
            "Node became not ready: {Type:Ready Status:False LastHeartbeatTime:2017-05-05 13:59:56.872865742 +0000 UTC LastTransitionTime:2017-05-05 13:59:56.872865742 +0000 UTC Reason:KubeletNotReady Message:PLEG is not healthy: pleg was last seen active 3m7.629592089s ago; threshold is 3m0s}",
            None,
        )]));
        let findings = crate::run(&snap, &Default::default());
        let pleg = findings
            .iter()
            .find(|f| f.detector == "kubelet-pleg-unhealthy")
            .unwrap();
        assert!(
            pleg.evidence
                .iter()
                .any(|e| e.fact
                    == "PLEG was last seen active up to 3m 7s before; the threshold is 3m0s"),
            "{:#?}",
            pleg.evidence
        );
    }

    #[test]
    fn old_lines_are_a_warning_and_no_cause_is_said_so() {
        let mut snap = snapshot(vec![]);
        snap.host.collected_at_unix = 1_796_108_600;
        snap.service_logs.push(kubelet_log(vec![(
            1,
            Some(1_000),
            "skipping pod synchronization - PLEG is not healthy: pleg was last seen active 3m5s ago; threshold is 3m0s",
            None,
        )]));
        let findings = crate::run(&snap, &Default::default());
        let pleg = findings
            .iter()
            .find(|f| f.detector == "kubelet-pleg-unhealthy")
            .unwrap();
        assert_eq!(pleg.severity, Severity::Warning);
        assert!(pleg.caused_by.is_empty());
        assert!(
            pleg.explanation
                .contains("nodedoc found nothing on this node"),
            "{}",
            pleg.explanation
        );
    }
}
