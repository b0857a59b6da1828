//! # `pod-stuck-terminating`
//!
//! **Signature.** A pod whose deletion was requested and that is still there well after its
//! grace period. The API server sets `deletionTimestamp` to the request time *plus* the grace
//! period (`deletionGracePeriodSeconds`): the moment the pod is meant to be gone, by which the
//! kubelet has sent SIGKILL. A pod still listed more than `pod_terminating_margin_secs` (60 s)
//! after it is stuck.
//!
//! **Sources.** The pods of this node (`kubernetes` source, or `kubectl get pods -A -o json`
//! files), and — when the snapshot has them — the node's processes with their cgroups and the
//! findings of the node-level detectors.
//!
//! **Chain.** The pod's containers are found on the node by the cgroup paths of their tasks:
//! the pod uid (`kubepods…pod<uid>`) and the container ids the kubelet reports
//! (`containerd://<id>`), via [`Process::container`]. The pod finding is caused by the findings
//! about those tasks (`pidns-exit-hang`: seed 003's init that cannot exit; `hung-task`,
//! `netns-gone`, `zombie-processes`), by a `cni-plugin-hang` working for the pod
//! (`CNI_CONTAINERID` one of its containers, `CNI_NETNS` one of its tasks' namespaces), by
//! `netdev-unregister-stuck` of the pod's Calico veth (`cali` + the first 11 hex digits of
//! sha1(`namespace.pod`)), and by the `zombie-processes` of a CNI plugin left a zombie after the
//! deletion was requested (seed 001's calico). When every container is gone from the node and
//! none of these applies, a device the kernel is still waiting to free on this node is linked:
//! namespace teardown on the node waits behind it (seed 001).
//!
//! **Evidence.** When deletion was requested and how far past the grace period it is; the
//! finalizers; the containers as the kubelet reported them; the tasks still on the node; the
//! basis of each link. Template values: `pod`, `reason_explanation`, `reason_fix`.

use std::collections::{BTreeSet, HashMap};

use nodedoc_model::{
    shell_command, ContainerState, Evidence, Finding, FindingId, KubePod, Process, Severity,
    Subject, TaskState,
};
use sha1::{Digest, Sha1};

use crate::{catalog, duration, utc, Context, Detector, Signature};

/// See the module documentation.
pub struct PodStuckTerminating;

/// Node-level detectors whose findings about a pod's tasks explain the pod.
const TASK_CAUSES: &[&str] = &[
    "pidns-exit-hang",
    "hung-task",
    "netns-gone",
    "cni-plugin-hang",
    "zombie-processes",
];

/// How far up a pod task's parents the init of its pid namespace is looked for.
const ANCESTORS_WALKED: usize = 8;

/// How many tasks of the pod the evidence lists.
const TASKS_SHOWN: usize = 6;

/// The host-side veth Calico gives a pod: `cali` + sha1(`namespace.name`) in hex, first 11
/// digits (projectcalico `VethNameForWorkload`, with the default interface prefix).
pub fn calico_veth(namespace: &str, name: &str) -> String {
    let digest = Sha1::digest(format!("{namespace}.{name}").as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("cali{}", &hex[..11])
}

impl Detector for PodStuckTerminating {
    fn id(&self) -> &'static str {
        "pod-stuck-terminating"
    }

    fn detect(&self, cx: &mut Context<'_>) {
        let snapshot = cx.snapshot;
        let Some(kube) = snapshot.kube.as_ref() else {
            return;
        };
        let now = kube.read_at_unix;
        let margin = cx.config.pod_terminating_margin_secs as i64;
        let stuck: Vec<&KubePod> = kube
            .pods
            .iter()
            .filter(|p| {
                p.meta
                    .deletion_unix
                    .is_some_and(|d| now.saturating_sub(d) > margin)
            })
            .collect();
        if stuck.is_empty() {
            return;
        }
        let have_node = !snapshot.processes.is_empty();
        let this_node = kube
            .node_name
            .clone()
            .or_else(|| have_node.then(|| snapshot.host.hostname.clone()));
        // Tasks by pod uid and container id, from their cgroup paths.
        let mut by_pod: HashMap<String, Vec<&Process>> = HashMap::new();
        let mut by_container: HashMap<String, Vec<&Process>> = HashMap::new();
        let mut container_of: HashMap<i32, String> = HashMap::new();
        for process in &snapshot.processes {
            if let Some(uid) = process.pod_uid() {
                by_pod.entry(uid).or_default().push(process);
            }
            if let Some(found) = process.container() {
                container_of.insert(process.pid, found.id.clone());
                by_container.entry(found.id).or_default().push(process);
            }
        }
        let cni_plugins = &catalog().kube.cni_plugins;

        for pod in stuck {
            let deletion = pod.meta.deletion_unix.unwrap_or(now);
            let grace = pod.meta.deletion_grace_period_secs.unwrap_or(0).max(0);
            // Saturating: the times and the grace period come from the API or a file, untrusted.
            let requested = deletion.saturating_sub(grace);
            let overdue = now.saturating_sub(deletion);
            let on_this_node = have_node
                && this_node.is_some()
                && pod.node_name.as_deref() == this_node.as_deref();
            let ns = pod.meta.namespace.as_str();
            let name = pod.meta.name.as_str();
            let pod_key = pod.meta.key();

            // The pod's tasks on this node.
            let mut tasks: Vec<&Process> = Vec::new();
            let mut seen = BTreeSet::new();
            if on_this_node {
                let ids = pod
                    .containers
                    .iter()
                    .filter_map(|c| c.container_id.as_ref())
                    .map(|c| c.id.as_str());
                for p in by_pod
                    .get(&pod.meta.uid)
                    .into_iter()
                    .flatten()
                    .chain(ids.flat_map(|id| by_container.get(id).into_iter().flatten()))
                {
                    if seen.insert(p.pid) {
                        tasks.push(p);
                    }
                }
                tasks.sort_by_key(|p| p.pid);
            }
            let mut container_ids: BTreeSet<&str> = pod
                .containers
                .iter()
                .filter_map(|c| c.container_id.as_ref())
                .map(|c| c.id.as_str())
                .collect();
            // The sandbox (pause) container's id is not in the pod's status; its cgroup says it.
            for t in &tasks {
                if let Some(id) = container_of.get(&t.pid) {
                    container_ids.insert(id.as_str());
                }
            }

            // Links, each with the basis it rests on.
            let mut causes: Vec<(FindingId, String)> = Vec::new();
            let add = |causes: &mut Vec<(FindingId, String)>, id: FindingId, basis: String| {
                if !causes.iter().any(|(known, _)| *known == id) {
                    causes.push((id, basis));
                }
            };
            for task in &tasks {
                for detector in TASK_CAUSES {
                    if let Some(f) = cx.finding(detector, &Subject::process(task)) {
                        add(
                            &mut causes,
                            f.id.clone(),
                            format!("{detector}: {} — a task of this pod", f.summary),
                        );
                    }
                }
                // The init of the task's pid namespace, when it is the one that cannot exit
                // (its own cgroup may not say the pod: an exiting task cannot be moved).
                let mut ancestor = snapshot.process(task.ppid);
                for _ in 0..ANCESTORS_WALKED {
                    let Some(a) = ancestor.filter(|a| a.pid > 1) else {
                        break;
                    };
                    if let Some(f) = cx.finding("pidns-exit-hang", &Subject::process(a)) {
                        add(
                            &mut causes,
                            f.id.clone(),
                            format!(
                                "pidns-exit-hang: {} — the init above {} of this pod",
                                f.summary,
                                task.label()
                            ),
                        );
                        break;
                    }
                    ancestor = snapshot.process(a.ppid);
                }
            }
            if on_this_node {
                let netns_paths: BTreeSet<String> = tasks
                    .iter()
                    .map(|t| format!("/proc/{}/ns/net", t.pid))
                    .collect();
                for p in &snapshot.processes {
                    let for_pod = p
                        .environment
                        .get("CNI_CONTAINERID")
                        .is_some_and(|id| container_ids.contains(id.as_str()))
                        || p.environment
                            .get("CNI_NETNS")
                            .is_some_and(|n| netns_paths.contains(n));
                    if for_pod {
                        if let Some(f) = cx.finding("cni-plugin-hang", &Subject::process(p)) {
                            add(
                            &mut causes,
                                f.id.clone(),
                                format!(
                                    "cni-plugin-hang: {} — working for this pod (CNI_CONTAINERID/CNI_NETNS)",
                                    f.summary
                                ),
                            );
                        }
                    }
                }
                // CNI plugins left zombies since the deletion was requested.
                for z in snapshot
                    .processes
                    .iter()
                    .filter(|p| p.state == TaskState::Zombie && cni_plugins.contains(&p.comm))
                {
                    let Some(started) = start_unix(snapshot, z) else {
                        continue;
                    };
                    if started.saturating_add(5) < requested || started > now {
                        continue;
                    }
                    let Some(parent) = snapshot.process(z.ppid) else {
                        continue;
                    };
                    if let Some(f) = cx.finding("zombie-processes", &Subject::process(parent)) {
                        add(
                            &mut causes,
                            f.id.clone(),
                            format!(
                                "zombie CNI plugin {} (pid {}) started {} after this pod's deletion was requested: a CNI call (its network teardown?) whose caller, {} (pid {}), never reaped it",
                                z.comm,
                                z.pid,
                                duration(started.saturating_sub(requested) as f64),
                                parent.comm,
                                parent.pid
                            ),
                        );
                    }
                }
            }
            let veth = calico_veth(ns, name);
            if let Some(f) = cx.finding(
                "netdev-unregister-stuck",
                &Subject::NetDevice { name: veth.clone() },
            ) {
                add(
                    &mut causes,
                    f.id.clone(),
                    format!(
                        "the kernel cannot free {veth}, this pod's Calico veth (cali + sha1(\"{ns}.{name}\")[:11])"
                    ),
                );
            }
            let running: Vec<&str> = pod
                .containers
                .iter()
                .filter(|c| matches!(c.state, ContainerState::Running { .. }))
                .map(|c| c.name.as_str())
                .collect();
            if on_this_node && tasks.is_empty() && running.is_empty() && causes.is_empty() {
                let waiting: Vec<(FindingId, String)> = cx
                    .findings_of("netdev-unregister-stuck")
                    .filter(|f| f.severity == Severity::Critical)
                    .map(|f| {
                        (
                            f.id.clone(),
                            format!(
                                "on this node {} — every network namespace teardown on the node waits behind it",
                                f.summary
                            ),
                        )
                    })
                    .collect();
                for (id, basis) in waiting {
                    add(&mut causes, id, basis);
                }
            }

            // What the pod waits for, in one clause, and what to do.
            let Waiting {
                reason,
                explanation: reason_explanation,
                fix: reason_fix,
                key,
            } = what_it_waits_for(pod, &tasks, &running, on_this_node, &container_of);
            let finalizers = &pod.meta.finalizers;
            let statefulset = pod
                .meta
                .controller
                .as_ref()
                .is_some_and(|o| o.kind == "StatefulSet");
            let severity = if statefulset {
                Severity::Critical
            } else {
                Severity::Warning
            };
            let mut finding = Finding::new(
                self.id(),
                severity,
                Subject::KubeObject {
                    kind: "Pod".into(),
                    namespace: ns.to_string(),
                    name: name.to_string(),
                },
                format!(
                    "pod {pod_key} is stuck Terminating, {} past its {grace}s grace period: {reason}",
                    duration(overdue as f64)
                ),
            );
            finding.evidence.push(Evidence::new(
                format!(
                    "deletionTimestamp {} = deletion requested at {} + grace period {grace}s; {} past it",
                    utc(deletion.max(0) as u64),
                    utc(requested.max(0) as u64),
                    duration(overdue as f64)
                ),
                shell_command!(
                    "kubectl get pod -n {} {} -o jsonpath={}",
                    ns,
                    name,
                    "{.metadata.deletionTimestamp} {.metadata.deletionGracePeriodSeconds}"
                ),
            ));
            if !finalizers.is_empty() {
                finding.evidence.push(Evidence::fact(format!(
                    "finalizers: {}",
                    finalizers.join(", ")
                )));
            }
            finding.evidence.push(Evidence::fact(format!(
                "node {}, phase {}, uid {}{}",
                pod.node_name.as_deref().unwrap_or("(none)"),
                pod.phase.as_deref().unwrap_or("?"),
                pod.meta.uid,
                pod.meta
                    .controller
                    .as_ref()
                    .map(|o| format!(", controlled by {} {}", o.kind, o.name))
                    .unwrap_or_default()
            )));
            for c in &pod.containers {
                let state = state_text(&c.state);
                let id = c
                    .container_id
                    .as_ref()
                    .map(|id| format!(" ({id})"))
                    .unwrap_or_default();
                let command = match &c.container_id {
                    Some(id) => shell_command!("crictl inspect {}", id.id.as_str()),
                    None => shell_command!("kubectl get pod -n {} {} -o yaml", ns, name),
                };
                finding.evidence.push(Evidence::new(
                    format!("container {}{id}: {state}", c.name),
                    command,
                ));
            }
            for task in tasks.iter().take(TASKS_SHOWN) {
                let container = container_of
                    .get(&task.pid)
                    .map(|id| format!("container {}", &id[..id.len().min(12)]))
                    .unwrap_or_else(|| "the pod's cgroup".to_string());
                finding.evidence.push(Evidence::new(
                    format!(
                        "still on this node: {} in {container}, state {}{}",
                        task.label(),
                        task.state,
                        task.wchan
                            .as_deref()
                            .map(|w| format!(", wchan {w}"))
                            .unwrap_or_default()
                    ),
                    shell_command!("cat /proc/{}/stack", task.pid),
                ));
            }
            if tasks.len() > TASKS_SHOWN {
                finding.evidence.push(Evidence::fact(format!(
                    "and {} more tasks of the pod",
                    tasks.len() - TASKS_SHOWN
                )));
            }
            if !have_node {
                finding.evidence.push(Evidence::fact(
                    "no reading of the node's processes here: analyse it with a snapshot of its node to link what holds it",
                ));
            }
            for (id, basis) in &causes {
                finding
                    .evidence
                    .push(Evidence::fact(format!("caused by {basis}")));
                finding.caused_by.push(id.clone());
            }
            let signature = Signature::new(
                key,
                "{count} pods are stuck Terminating",
                overdue.max(0) as u64,
                "longest overdue first",
            );
            cx.emit_as(
                signature,
                finding,
                &[
                    ("pod", &pod_key),
                    ("reason_explanation", &reason_explanation),
                    ("reason_fix", &reason_fix),
                ],
            );
        }
    }
}

/// What a stuck pod waits for, in a clause for the summary, the explanation and fix templates'
/// values, and its signature key.
struct Waiting {
    reason: String,
    explanation: String,
    fix: String,
    key: &'static str,
}

fn what_it_waits_for(
    pod: &KubePod,
    tasks: &[&Process],
    running: &[&str],
    on_this_node: bool,
    container_of: &HashMap<i32, String>,
) -> Waiting {
    let finalizers = &pod.meta.finalizers;
    let pod_key = pod.meta.key();
    let (ns, name) = (pod.meta.namespace.as_str(), pod.meta.name.as_str());
    let (reason, explanation, fix, key) = if !finalizers.is_empty() {
        (
            format!("it waits for finalizer{} {}", plural(finalizers.len()), finalizers.join(", ")),
            format!(
                "The API server keeps an object while any finalizer remains, and {pod_key} has {}: whoever added {} must remove {} after its own cleanup. Nothing on the node holds it.",
                finalizers.join(", "),
                if finalizers.len() == 1 { "it" } else { "them" },
                if finalizers.len() == 1 { "it" } else { "them" },
            ),
            format!(
                "Find the controller that owns the finalizer and why it has not finished (its logs). Only if that controller is gone for good, remove the finalizer: {} — its cleanup is then skipped.",
                match shell_command!(
                    "kubectl patch pod -n {} {} --type=merge -p {}",
                    ns,
                    name,
                    "{\"metadata\":{\"finalizers\":null}}"
                ) {
                    Ok(c) => format!("`{c}`"),
                    Err(why) => format!("(no command: {why})"),
                }
            ),
            "finalizers",
        )
    } else if !tasks.is_empty() {
        let first = tasks[0];
        let container = container_of
            .get(&first.pid)
            .map(|id| format!(", container {}", &id[..id.len().min(12)]))
            .unwrap_or_default();
        (
            format!(
                "{} of its tasks {} still on this node, e.g. {}{container}",
                tasks.len(),
                if tasks.len() == 1 { "is" } else { "are" },
                first.label()
            ),
            "The kubelet deletes the pod from the API only after every container has stopped; some of its tasks are still alive on this node, so the container runtime's stop has not finished.".to_string(),
            "Resolve what keeps those tasks alive (the linked findings); the kubelet finishes the deletion by itself once they are gone.".to_string(),
            "tasks-on-node",
        )
    } else if !running.is_empty() {
        (
            format!("the kubelet still reports {} running", running.join(", ")),
            "The kubelet has not reported its containers stopped: it may be unable to stop them, or it is not running or not reporting (node NotReady).".to_string(),
            format!(
                "Look on node {} (run nodedoc there): the container runtime's logs for the stop, and whether the kubelet is up.",
                pod.node_name.as_deref().unwrap_or("?")
            ),
            "containers-running",
        )
    } else if on_this_node {
        (
            "its containers are gone from this node; the kubelet has not finished tearing it down".to_string(),
            "Every container has stopped, yet the pod remains: the kubelet's teardown is not done — the pod's network (a CNI DEL, the namespace's devices) or its volumes.".to_string(),
            "Check the linked findings, the kubelet's log for the pod (`journalctl -u kubelet | grep POD_UID`) and its mounts under /var/lib/kubelet/pods/POD_UID.".to_string(),
            "teardown",
        )
    } else {
        (
            match pod.node_name.as_deref() {
                Some(node) => format!("it is on node {node}"),
                None => "it was never scheduled".to_string(),
            },
            "The node side of this pod was not read here.".to_string(),
            match pod.node_name.as_deref() {
                Some(node) => format!("Run nodedoc on node {node} (with this pod's API reading) to see what holds it there."),
                None => "An unscheduled pod is deleted by the API server itself: check kube-controller-manager and the API server.".to_string(),
            },
            "elsewhere",
        )
    };
    Waiting {
        reason,
        explanation,
        fix,
        key,
    }
}

/// A container state as the evidence says it.
fn state_text(state: &ContainerState) -> String {
    let reason_of =
        |r: &Option<String>| r.as_deref().map(|r| format!(" ({r})")).unwrap_or_default();
    match state {
        ContainerState::Running { started_unix } => format!(
            "running{}",
            started_unix
                .map(|s| format!(" since {}", utc(s.max(0) as u64)))
                .unwrap_or_default()
        ),
        ContainerState::Terminated {
            exit_code, reason, ..
        } => format!("terminated, exit code {exit_code}{}", reason_of(reason)),
        ContainerState::Waiting { reason } => format!("waiting{}", reason_of(reason)),
        ContainerState::Unknown => "state unknown".to_string(),
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// When a process started, in Unix seconds.
fn start_unix(snapshot: &nodedoc_model::Snapshot, process: &Process) -> Option<i64> {
    let ticks = snapshot.host.clock_ticks_per_sec;
    if ticks == 0 || snapshot.host.boot_time_unix == 0 {
        return None;
    }
    Some(snapshot.host.boot_time_unix as i64 + (process.start_time_ticks / ticks) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{process, resampled, snapshot};
    use nodedoc_model::{
        CgroupMembership, ContainerId, KubeContainerStatus, KubeMeta, KubeOwner, KubeState,
    };
    use nodedoc_procfs::parse::parse_stack;

    const UID: &str = "3c1f8a7e-2b4d-4e6f-9a1b-0c2d3e4f5a6b";
    const ID: &str = "10f0451e1345f5028f636e2b09c9f8204e55a01f5f09f2e57de3c17d3f93f492";
    /// The test snapshot's clock: boot 1,764,000,000 + 10,000 s of uptime.
    const NOW: i64 = 1_764_010_000;

    fn pod(name: &str, deletion: Option<i64>, grace: i64) -> KubePod {
        KubePod {
            meta: KubeMeta {
                namespace: "mesh".into(),
                name: name.into(),
                uid: UID.into(),
                deletion_unix: deletion,
                deletion_grace_period_secs: deletion.map(|_| grace),
                ..Default::default()
            },
            node_name: Some("test".into()),
            phase: Some("Running".into()),
            containers: vec![KubeContainerStatus {
                name: "envoy".into(),
                container_id: ContainerId::parse(&format!("containerd://{ID}")),
                state: ContainerState::Running {
                    started_unix: Some(NOW - 86_400),
                },
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn with_kube(mut snap: nodedoc_model::Snapshot, pods: Vec<KubePod>) -> nodedoc_model::Snapshot {
        snap.kube = Some(KubeState {
            node_name: Some("test".into()),
            read_at_unix: NOW,
            pods,
            ..Default::default()
        });
        snap
    }

    fn in_pod(mut p: Process) -> Process {
        p.cgroups = vec![CgroupMembership {
            hierarchy: 4,
            controllers: "freezer".into(),
            path: format!("/kubepods/burstable/pod{UID}/{ID}"),
        }];
        p
    }

    #[test]
    fn calico_names_the_veth_from_namespace_and_pod() {
        // `printf default.nginx | sha1sum` prints c440f455693b69cdd48a37aa5ecd78038f50413d, and
        // MicroK8s' scripts/dump-workload-endpoints.sh derives Calico's names the same way.
        assert_eq!(calico_veth("default", "nginx"), "calic440f455693");
        assert_eq!(calico_veth("mesh", "web-1"), "calif7025c61204");
    }

    #[test]
    fn within_the_margin_nothing_is_said() {
        let snap = with_kube(
            snapshot(vec![]),
            vec![pod("p", Some(NOW - 30), 30), pod("q", None, 0)],
        );
        let findings = crate::run(&snap, &Default::default());
        assert!(!findings
            .iter()
            .any(|f| f.detector == "pod-stuck-terminating"));
    }

    #[test]
    fn seed_003_the_pod_is_caused_by_its_init_that_cannot_exit() {
        let mut init = in_pod(process(291967, "envoy"));
        init.nspid = vec![291967, 1];
        init.kernel_stack = Some(parse_stack(crate::stacks::tests::SEED_ZAP));
        let mut s6 = in_pod(process(362091, "s6-sync"));
        s6.ppid = 291967;
        s6.state = TaskState::UninterruptibleSleep;
        s6.kernel_stack = Some(parse_stack(crate::stacks::tests::SEED_S6_SYNC));
        let mut snap = snapshot(vec![init, s6.clone()]);
        snap.resample = Some(resampled(&[&s6], TaskState::UninterruptibleSleep));
        let mut p = pod("envoy-0", Some(NOW - 7200), 30);
        p.meta.controller = Some(KubeOwner {
            kind: "StatefulSet".into(),
            name: "envoy".into(),
            ..Default::default()
        });
        let snap = with_kube(snap, vec![p]);
        let findings = crate::run(&snap, &Default::default());
        let stuck = findings
            .iter()
            .find(|f| f.detector == "pod-stuck-terminating")
            .expect("finding");
        assert_eq!(stuck.id.0, "pod-stuck-terminating:pod/mesh/envoy-0");
        assert_eq!(
            stuck.severity,
            Severity::Critical,
            "a StatefulSet's replacement waits"
        );
        assert_eq!(
            stuck.summary,
            "pod mesh/envoy-0 is stuck Terminating, 2h 0m past its 30s grace period: 2 of its tasks are still on this node, e.g. envoy (pid 291967), container 10f0451e1345"
        );
        let hang = findings
            .iter()
            .find(|f| f.detector == "pidns-exit-hang")
            .unwrap();
        let hung = findings.iter().find(|f| f.detector == "hung-task").unwrap();
        assert!(stuck.caused_by.contains(&hang.id), "{:?}", stuck.caused_by);
        assert!(stuck.caused_by.contains(&hung.id), "{:?}", stuck.caused_by);
        assert!(hang.causes.contains(&stuck.id));
        let facts: Vec<&str> = stuck.evidence.iter().map(|e| e.fact.as_str()).collect();
        assert!(facts[0].starts_with("deletionTimestamp 2025-11-24 16:46:40 UTC = deletion requested at 2025-11-24 16:46:10 UTC + grace period 30s; 2h 0m past it"), "{}", facts[0]);
        assert!(
            facts
                .iter()
                .any(|f| f.starts_with("container envoy (containerd://10f0451e")
                    && f.contains(": running since")),
            "{facts:#?}"
        );
        assert!(
            facts.iter().any(|f| f.starts_with(
                "still on this node: s6-sync (pid 362091) in container 10f0451e1345, state D"
            )),
            "{facts:#?}"
        );
    }

    #[test]
    fn seed_001_the_pods_calico_veth_and_the_zombie_plugin_are_its_causes() {
        // Every container is gone; calico's DEL left a zombie the runtime never reaped.
        let mut runtime = process(800, "containerd");
        runtime.start_time_ticks = 0;
        let mut calico = process(16900, "calico");
        calico.ppid = 800;
        calico.state = TaskState::Zombie;
        // Started 9,950 s after boot: 50 s before NOW, 4m 40s after the deletion request
        // (deletionTimestamp NOW - 300 minus its 30 s grace).
        calico.start_time_ticks = 995_000;
        let mut snap = snapshot(vec![runtime, calico.clone()]);
        snap.resample = Some(resampled(&[&calico], TaskState::Zombie));
        let veth = calico_veth("mesh", "web-1");
        snap.kernel_log = Some(nodedoc_model::KernelLog {
            source: nodedoc_model::KernelLogSource::DevKmsg,
            records: (0..20)
                .map(|i| nodedoc_model::KmsgRecord {
                    level: 0,
                    facility: 0,
                    sequence: i,
                    monotonic_us: 9_800_000_000 + i * 10_000_000,
                    continuation: false,
                    message: format!(
                        "unregister_netdevice: waiting for {veth} to become free. Usage count = 1"
                    ),
                    dictionary: vec![],
                    caller: None,
                    wall_clock_ms: None,
                })
                .collect(),
            ..Default::default()
        });
        let mut p = pod("web-1", Some(NOW - 300), 30);
        p.containers[0].state = ContainerState::Terminated {
            exit_code: 137,
            reason: Some("Error".into()),
            finished_unix: Some(NOW - 320),
        };
        let snap = with_kube(snap, vec![p]);
        let findings = crate::run(&snap, &Default::default());
        let stuck = findings
            .iter()
            .find(|f| f.detector == "pod-stuck-terminating")
            .expect("finding");
        assert_eq!(stuck.severity, Severity::Warning);
        assert!(
            stuck.summary.ends_with("its containers are gone from this node; the kubelet has not finished tearing it down"),
            "{}",
            stuck.summary
        );
        let netdev = findings
            .iter()
            .find(|f| f.detector == "netdev-unregister-stuck")
            .expect("netdev finding");
        let zombies = findings
            .iter()
            .find(|f| f.detector == "zombie-processes")
            .expect("zombie finding");
        assert!(
            stuck.caused_by.contains(&netdev.id),
            "{:?}",
            stuck.caused_by
        );
        assert!(
            stuck.caused_by.contains(&zombies.id),
            "{:?}",
            stuck.caused_by
        );
        let facts: Vec<&str> = stuck.evidence.iter().map(|e| e.fact.as_str()).collect();
        assert!(
            facts.iter().any(|f| f.contains(&format!(
                "the kernel cannot free {veth}, this pod's Calico veth"
            ))),
            "{facts:#?}"
        );
        assert!(facts.iter().any(|f| f.contains("zombie CNI plugin calico (pid 16900) started 4m 40s after this pod's deletion was requested")), "{facts:#?}");
    }

    #[test]
    fn finalizers_are_named_and_the_fix_quotes_the_patch() {
        let mut p = pod("held", Some(NOW - 600), 0);
        p.meta.finalizers = vec!["example.com/protect".into()];
        p.containers.clear();
        let snap = with_kube(snapshot(vec![]), vec![p]);
        let findings = crate::run(&snap, &Default::default());
        let stuck = findings
            .iter()
            .find(|f| f.detector == "pod-stuck-terminating")
            .unwrap();
        assert!(
            stuck
                .summary
                .ends_with("it waits for finalizer example.com/protect"),
            "{}",
            stuck.summary
        );
        assert!(
            stuck.fix.contains("`kubectl patch pod -n mesh held --type=merge -p '{\"metadata\":{\"finalizers\":null}}'`"),
            "{}",
            stuck.fix
        );
        assert!(stuck
            .evidence
            .iter()
            .any(|e| e.fact.starts_with("no reading of the node's processes")));
    }
}
