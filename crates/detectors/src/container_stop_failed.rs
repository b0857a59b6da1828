//! # `container-stop-failed`
//!
//! **Signature.** A container runtime (or kubelet) logged that it could not stop a container:
//! containerd's CRI `StopContainer for "<id>" failed … DeadlineExceeded … wait container …
//! context deadline exceeded`, dockerd's `Container failed to exit within 10 seconds of kill -
//! trying direct SIGKILL` and `tried to kill container, but did not receive an exit event`,
//! kubelet's `StopContainer … from runtime service failed` / `Kill container failed` (seed 003).
//! The lines are data (`container_stop_line` in `data/signatures.toml`).
//!
//! **Sources.** `Snapshot::service_logs` (files given with `check --log`, journal entries);
//! the processes' cgroups, to expand the short ids dockerd logs and to tell whether the
//! container still has tasks.
//!
//! **Evidence.** Per container: how many failed stops, of which kind, first and last time, the
//! last line and where it is. **Chain.** Caused by the `pidns-exit-hang` of the same container
//! (its killed init, found by the container id in its cgroups or its namespace members') and,
//! through it, by the blocking child's `hung-task`; without one, by the `hung-task` findings of
//! the container's tasks.
//!
//! Template values: `{container}`, `{writer}`, `{cause}`, `{cause_fix}`.

use std::collections::BTreeMap;

use nodedoc_model::{
    shell_command, ContainerRef, ContainerRuntime, Evidence, Finding, FindingId, PodRef, Severity,
    Subject,
};

use crate::catalog::{catalog, ContainerStopLine};
use crate::service_logs::{at, first_id, id_after, Line};
use crate::{Context, Detector, Signature};

/// See the module documentation.
pub struct ContainerStopFailed;

/// The logged lines about one container.
#[derive(Default)]
struct Stops<'a> {
    lines: Vec<(Line<'a>, &'static ContainerStopLine)>,
}

/// The container id a matching line names.
fn logged_id<'a>(line: &Line<'a>, signature: &ContainerStopLine) -> Option<&'a str> {
    let message = line.entry.message.as_str();
    signature
        .id_fields
        .iter()
        .find_map(|f| line.field(f).and_then(first_id))
        .or_else(|| {
            signature
                .id_after
                .as_deref()
                .and_then(|marker| id_after(message, marker))
        })
        .or_else(|| id_after(message, "container="))
        .or_else(|| id_after(message, "containerID="))
}

impl Detector for ContainerStopFailed {
    fn id(&self) -> &'static str {
        "container-stop-failed"
    }

    fn detect(&self, cx: &mut Context<'_>) {
        let snapshot = cx.snapshot;
        if snapshot.service_logs.is_empty() {
            return;
        }
        let signatures = &catalog().container_stop_line;
        // Containers that have tasks now, by full id: dockerd logs short ids.
        let mut live: BTreeMap<String, (ContainerRef, usize)> = BTreeMap::new();
        for process in &snapshot.processes {
            if let Some(container) = snapshot.container_of(process) {
                live.entry(container.id.clone()).or_insert((container, 0)).1 += 1;
            }
        }
        let mut by_container: BTreeMap<String, Stops<'_>> = BTreeMap::new();
        for line in Line::all(&snapshot.service_logs) {
            let Some(signature) = signatures.iter().find(|s| line.contains_all(&s.contains)) else {
                continue;
            };
            let Some(id) = logged_id(&line, signature) else {
                continue;
            };
            let full = live
                .keys()
                .find(|full| full.starts_with(id))
                .cloned()
                .unwrap_or_else(|| id.to_string());
            by_container
                .entry(full)
                .or_default()
                .lines
                .push((line, signature));
        }

        for (id, stops) in by_container {
            let failed: Vec<&(Line<'_>, &ContainerStopLine)> = stops
                .lines
                .iter()
                .filter(|(_, s)| s.kind == "failed")
                .collect();
            let Some(&&(last, last_signature)) = failed.last() else {
                continue;
            };
            let writer = last_signature.writer.as_str();
            let mut container =
                live.get(&id)
                    .map(|(c, _)| c.clone())
                    .unwrap_or_else(|| ContainerRef {
                        id: id.clone(),
                        runtime: match writer {
                            "containerd" => Some(ContainerRuntime::Containerd),
                            "dockerd" => Some(ContainerRuntime::Docker),
                            _ => None,
                        },
                        name: None,
                        pod: None,
                    });
            // kubelet names the pod: `pod="namespace/name" podUID=…`.
            for (line, _) in &stops.lines {
                if let (Some(pod), Some(uid)) = (line.field("pod"), line.field("podUID")) {
                    let (namespace, name) = pod.split_once('/').unwrap_or(("", pod));
                    let entry = container.pod.get_or_insert(PodRef {
                        uid: uid.to_string(),
                        namespace: None,
                        name: None,
                    });
                    entry.namespace.get_or_insert_with(|| namespace.to_string());
                    entry.name.get_or_insert_with(|| name.to_string());
                }
                if let Some(name) = line.field("containerName") {
                    container.name.get_or_insert_with(|| name.to_string());
                }
            }
            // The killed init of this container, and the task that holds it.
            let hang = cx
                .findings_of("pidns-exit-hang")
                .find(|f| f.container.as_ref().is_some_and(|c| c.id == id));
            let tasks = live.get(&id).map_or(0, |(_, n)| *n);
            let (cause, cause_fix, causes, severity) = match hang {
                Some(hang) => (
                    format!("its init cannot exit: {}", hang.summary),
                    hang.fix.clone(),
                    vec![hang.id.clone()],
                    Severity::Critical,
                ),
                None => {
                    let hung: Vec<FindingId> = cx
                        .findings_of("hung-task")
                        .filter(|f| f.container.as_ref().is_some_and(|c| c.id == id))
                        .map(|f| f.id.clone())
                        .collect();
                    let (cause, severity) = match (tasks, hung.len()) {
                        (0, _) => (
                            "no task of it is left now: it stopped later, or was never on this host".to_string(),
                            Severity::Warning,
                        ),
                        (n, 0) => (
                            format!("it still has {n} task(s), none of them found blocked; look at their states and stacks"),
                            Severity::Critical,
                        ),
                        (n, k) => (
                            format!("it still has {n} task(s), {k} of them stuck in uninterruptible sleep (linked)"),
                            Severity::Critical,
                        ),
                    };
                    let fix = "find the container's tasks (`grep -l ID /proc/*/cgroup`) and what each waits for (`cat /proc/PID/stack`); a task in D state must be released first.".replace("ID", container.short_id());
                    (cause, fix, hung, severity)
                }
            };
            let mut finding = Finding::new(
                self.id(),
                severity,
                Subject::Container { id: id.clone() },
                format!(
                    "{writer} could not stop {container}: {} failed stop{} logged, the last at {}; {cause}",
                    failed.len(),
                    if failed.len() == 1 { "" } else { "s" },
                    at(last.entry.at_unix_ms),
                ),
            );
            // Counts per kind of line, with the command that shows them.
            let mut kinds: BTreeMap<&str, Vec<&Line<'_>>> = BTreeMap::new();
            for (line, signature) in &stops.lines {
                kinds.entry(signature.id.as_str()).or_default().push(line);
            }
            for (kind, lines) in &kinds {
                let signature = signatures.iter().find(|s| s.id == *kind).expect("matched");
                let first = lines.first().expect("non-empty");
                let last = lines.last().expect("non-empty");
                finding.evidence.push(Evidence::new(
                    format!(
                        "{} × {} ({}), first {}, last {}",
                        lines.len(),
                        signature.meaning,
                        signature.writer,
                        at(first.entry.at_unix_ms),
                        at(last.entry.at_unix_ms)
                    ),
                    log_command(first, container.short_id()),
                ));
            }
            finding.evidence.push(Evidence::fact(format!(
                "last failure ({}): level={} msg={}{}",
                last.place(),
                last.entry.level.as_deref().unwrap_or("?"),
                last.entry.message,
                last.error()
                    .map(|e| format!(" error={e}"))
                    .unwrap_or_default()
            )));
            finding.caused_by = causes;
            finding.container = Some(container.clone());
            cx.emit_as(
                Signature::new(
                    format!(
                        "{writer}/{}",
                        if hang.is_some() { "init-hang" } else { "other" }
                    ),
                    "{count} containers could not be stopped",
                    failed.len() as u64,
                    "most failed stops first",
                ),
                finding,
                &[
                    ("container", &container.to_string()),
                    ("writer", writer),
                    ("cause", &cause),
                    ("cause_fix", &cause_fix),
                ],
            );
        }
    }
}

/// The command that shows a log's lines about a container: `grep` in a file, `journalctl` for
/// a journal unit.
fn log_command(
    line: &Line<'_>,
    short_id: &str,
) -> Result<nodedoc_model::text::ShellCommand, nodedoc_model::text::Unquotable> {
    match line.log.source.strip_prefix("journal:") {
        Some(unit) => shell_command!("journalctl -u {} | grep -F -- {}", unit, short_id),
        None => shell_command!("grep -F -- {} {}", short_id, line.log.source.as_str()),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::testing::{process, resampled, snapshot};
    use nodedoc_model::{CgroupMembership, LogEntry, LogFormat, ServiceLog, TaskState};
    use nodedoc_procfs::parse::parse_stack;

    pub(crate) const ID: &str = "b32a2fd9b0a141bdc9be897b80762009665ce408cde67b93e64dc2b1c1aa2c78";
    pub(crate) const UID: &str = "a548c954-93c6-4845-b26d-89d63b4e1fd7";

    /// containerd 1.6.20's line, recorded by the containerd-stop-hang lab, as the logfmt
    /// reader gives it (msg unquoted, other keys as fields).
    pub(crate) fn containerd_log() -> ServiceLog {
        let mut fields = std::collections::BTreeMap::new();
        fields.insert(
            "error".to_string(),
            format!("rpc error: code = DeadlineExceeded desc = an error occurs during waiting for container \"{ID}\" to be killed: wait container \"{ID}\": context deadline exceeded"),
        );
        ServiceLog {
            source: "/var/log/containerd.log".into(),
            service: Some("containerd".into()),
            format: LogFormat::Logfmt,
            entries: vec![LogEntry {
                line: 142,
                at_unix_ms: Some(1_796_108_548_566),
                level: Some("error".into()),
                message: format!("StopContainer for \"{ID}\" failed"),
                fields,
            }],
            entries_read: 142,
            entries_dropped: 0,
        }
    }

    fn in_container(p: &mut nodedoc_model::Process, extra: &str) {
        p.cgroups = vec![
            CgroupMembership {
                hierarchy: 6,
                controllers: "freezer".into(),
                path: format!("/kubepods/besteffort/pod{UID}/{ID}{extra}"),
            },
            CgroupMembership {
                hierarchy: 0,
                controllers: String::new(),
                path: format!("/kubepods/besteffort/pod{UID}/{ID}"),
            },
        ];
    }

    #[test]
    fn seed_003_a_failed_cri_stop_is_chained_to_the_init_and_its_frozen_child() {
        let mut init = process(30910, "sh");
        init.nspid = vec![30910, 1];
        init.kernel_stack = Some(parse_stack(crate::stacks::tests::SEED_ZAP));
        in_container(&mut init, "");
        let mut child = process(30921, "sleep");
        child.ppid = 30910;
        child.state = TaskState::UninterruptibleSleep;
        child.kernel_stack = Some(parse_stack(crate::stacks::tests::LAB_FROZEN_SLEEP));
        in_container(&mut child, "/nodedoc-frozen");
        let mut snap = snapshot(vec![init, child.clone()]);
        snap.resample = Some(resampled(&[&child], TaskState::UninterruptibleSleep));
        snap.freezers.push(nodedoc_model::FreezerCgroup {
            hierarchy: nodedoc_model::CgroupHierarchy::V1Freezer,
            path: format!("/kubepods/besteffort/pod{UID}/{ID}/nodedoc-frozen"),
            state: nodedoc_model::FreezerState::Frozen,
        });
        snap.service_logs.push(containerd_log());
        let findings = crate::run(&snap, &Default::default());
        let stop = findings
            .iter()
            .find(|f| f.detector == "container-stop-failed")
            .expect("container-stop-failed");
        assert_eq!(stop.subject, Subject::Container { id: ID.into() });
        assert_eq!(stop.severity, Severity::Critical);
        let container = stop.container.as_ref().unwrap();
        assert_eq!(container.pod.as_ref().unwrap().uid, UID);
        assert!(
            stop.summary
                .starts_with("containerd could not stop container b32a2fd9b0a1"),
            "{}",
            stop.summary
        );
        assert!(
            stop.summary.contains("1 failed stop logged"),
            "{}",
            stop.summary
        );
        assert!(
            stop.summary.contains("child 30921 sleep is frozen"),
            "{}",
            stop.summary
        );
        assert!(stop
            .evidence
            .iter()
            .any(|e| e.fact.contains("/var/log/containerd.log:142")
                && e.fact.contains("context deadline exceeded")));
        assert!(stop.evidence.iter().any(
            |e| e.command.as_deref() == Some("grep -F -- b32a2fd9b0a1 /var/log/containerd.log")
        ));
        // The chain: container-stop-failed ← pidns-exit-hang ← hung-task.
        let hang = findings
            .iter()
            .find(|f| f.detector == "pidns-exit-hang")
            .unwrap();
        let hung = findings.iter().find(|f| f.detector == "hung-task").unwrap();
        assert_eq!(stop.caused_by, vec![hang.id.clone()]);
        assert_eq!(hang.caused_by, vec![hung.id.clone()]);
        assert_eq!(hang.causes, vec![stop.id.clone()]);
        // Both process findings name the container.
        assert_eq!(hang.container.as_ref().unwrap().id, ID);
        assert_eq!(hung.container.as_ref().unwrap().id, ID);
        assert!(stop.fix.contains("echo THAWED"), "{}", stop.fix);
    }

    /// The journal keeps a daemon's logfmt line whole in MESSAGE: ids are read from inside it.
    #[test]
    fn journal_entries_holding_whole_logfmt_lines_are_read_the_same() {
        let raw = |n: u64, message: String| LogEntry {
            line: n,
            at_unix_ms: Some(1_796_108_548_566),
            level: Some("err".into()),
            message,
            fields: [("_SYSTEMD_UNIT".to_string(), "x.service".to_string())].into(),
        };
        let docker = "972e2fd3d94941e43c8d915e88e9900fbb3458ca476509d62b09166222260ad6";
        let mut snap = snapshot(vec![]);
        snap.service_logs.push(ServiceLog {
            source: "journal:containerd.service".into(),
            service: Some("containerd".into()),
            format: LogFormat::Journal,
            entries: vec![raw(5, format!(r#"time="2026-12-01T07:02:28.566406368Z" level=error msg="StopContainer for \"{ID}\" failed" error="rpc error: code = DeadlineExceeded desc = an error occurs during waiting for container \"{ID}\" to be killed: wait container \"{ID}\": context deadline exceeded""#))],
            entries_read: 1,
            entries_dropped: 0,
        });
        // dockerd 20.10.24, recorded by the docker-stop-hang lab.
        snap.service_logs.push(ServiceLog {
            source: "journal:docker.service".into(),
            service: Some("dockerd".into()),
            format: LogFormat::Journal,
            entries: vec![
                raw(8, format!(r#"time="2026-12-01T07:30:17.971102685Z" level=error msg="Container failed to exit within 10 seconds of kill - trying direct SIGKILL" container={docker} error="context deadline exceeded""#)),
                raw(9, format!(r#"time="2026-12-01T07:30:21.971809642Z" level=error msg="Error killing the container" container={docker} error="tried to kill container, but did not receive an exit event""#)),
            ],
            entries_read: 2,
            entries_dropped: 0,
        });
        let findings = crate::run(&snap, &Default::default());
        let keys: Vec<String> = findings
            .iter()
            .filter(|f| f.detector == "container-stop-failed")
            .map(|f| f.subject.key())
            .collect();
        assert_eq!(
            keys,
            vec![format!("container/{docker}"), format!("container/{ID}")]
        );
        let docker_stop = findings
            .iter()
            .find(|f| f.subject.key() == format!("container/{docker}"))
            .unwrap();
        assert!(
            docker_stop.summary.contains("2 failed stops logged"),
            "{}",
            docker_stop.summary
        );
        // Nothing of it runs here any more: said, and a warning.
        assert!(
            docker_stop.summary.contains("no task of it is left now"),
            "{}",
            docker_stop.summary
        );
        assert_eq!(docker_stop.severity, Severity::Warning);
    }

    #[test]
    fn dockerd_short_ids_are_expanded_and_sigterm_alone_is_not_a_failure() {
        let line = |n: u64, message: String, fields: &[(&str, &str)]| LogEntry {
            line: n,
            at_unix_ms: Some(1_623_312_555_458),
            level: Some("info".into()),
            message,
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        let short = &ID[..12];
        let mut p = process(500, "envoy");
        p.cgroups = vec![CgroupMembership {
            hierarchy: 3,
            controllers: "pids".into(),
            path: format!("/docker/{ID}"),
        }];
        let mut snap = snapshot(vec![p]);
        // Seed 003's dockerd lines (older dockerd: the id in the message).
        snap.service_logs.push(ServiceLog {
            source: "journal:docker.service".into(),
            service: Some("dockerd".into()),
            format: LogFormat::Journal,
            entries: vec![
                line(1, format!("Container {short} failed to exit within 10 seconds of kill - trying direct SIGKILL"), &[]),
                line(2, format!("Container {ID} failed to exit within 30 seconds of signal 15 - using the force"), &[]),
                line(3, format!("Container {short} failed to exit within 10 seconds of kill - trying direct SIGKILL"), &[]),
                // Another container only ignored SIGTERM: no finding.
                line(4, "Container failed to exit within 1s of signal 15 - using the force".into(), &[("container", "0123456789ab0123456789ab0123456789ab0123456789ab0123456789abcdef")]),
            ],
            entries_read: 4,
            entries_dropped: 0,
        });
        let findings = crate::run(&snap, &Default::default());
        let stops: Vec<_> = findings
            .iter()
            .filter(|f| f.detector == "container-stop-failed")
            .collect();
        assert_eq!(stops.len(), 1, "{stops:#?}");
        let stop = stops[0];
        assert_eq!(stop.subject.key(), format!("container/{ID}"));
        assert!(
            stop.summary.contains("2 failed stops logged"),
            "{}",
            stop.summary
        );
        assert!(
            stop.summary.contains("it still has 1 task(s)"),
            "{}",
            stop.summary
        );
        assert_eq!(
            stop.container.as_ref().unwrap().runtime,
            Some(ContainerRuntime::Docker)
        );
        assert!(stop
            .evidence
            .iter()
            .any(|e| e.fact.starts_with("1 × the container ignored SIGTERM")));
        assert!(stop.evidence.iter().any(|e| e.command.as_deref()
            == Some("journalctl -u docker.service | grep -F -- b32a2fd9b0a1")));
    }
}
