//! # `netns-gone`
//!
//! **Signature.** A live task whose network namespace has no other member, no bind mount
//! (nsfs, in any mount namespace) and no file descriptor holding it: the namespace was torn
//! down (`ip netns delete`, a pod's teardown) while the task was still in it (seed 003: a ceph
//! client left in a deleted namespace). `/proc/PID/ns/net` still answers `net:[inode]` for such
//! a task, so membership decides, not the link.
//!
//! **Sources.** Every task's `/proc/PID/ns/net`, nsfs mounts from every mount namespace,
//! namespace descriptors in every process's fd census, the task's kernel stack.
//!
//! **Evidence.** The namespace inode, the absence of other members, bind mounts and fds, and
//! where the task blocks. Warning when it is blocked in network code or a network filesystem;
//! information otherwise; nothing for a task that is merely exiting. `hung-task` links a
//! blocked task's finding to this one as its cause.

use std::collections::HashMap;

use nodedoc_model::{shell_command, Evidence, Finding, Process, Severity, Subject, TaskState};

use crate::stacks::{in_network_code, stack_line};
use crate::{Context, Detector};

/// See the module documentation.
pub struct NetnsGone;

fn exiting(process: &Process) -> bool {
    matches!(process.state, TaskState::Zombie | TaskState::Dead)
        || process
            .kernel_stack
            .as_ref()
            .is_some_and(|s| s.iter().any(|f| f.function == "do_exit"))
}

impl Detector for NetnsGone {
    fn id(&self) -> &'static str {
        "netns-gone"
    }

    fn detect(&self, cx: &mut Context<'_>) {
        let snapshot = cx.snapshot;
        let mut members: HashMap<u64, usize> = HashMap::new();
        for ns in snapshot.processes.iter().filter_map(|p| p.namespaces.net) {
            *members.entry(ns).or_default() += 1;
        }
        // The host's namespace: pid 1's when it could be read, else the most populated one.
        let host_netns = snapshot
            .process(1)
            .and_then(|p| p.namespaces.net)
            .or_else(|| members.iter().max_by_key(|(_, n)| **n).map(|(ns, _)| *ns));
        for process in &snapshot.processes {
            let Some(ns) = process.namespaces.net else {
                continue;
            };
            if process.kernel_thread
                || Some(ns) == host_netns
                || members[&ns] > 1
                || exiting(process)
            {
                continue;
            }
            let bind_mounted = snapshot
                .mounts
                .iter()
                .any(|m| m.namespace() == Some(("net", ns)));
            let held_by_fd = snapshot.processes.iter().any(|other| {
                other.pid != process.pid
                    && other.fds.as_ref().is_some_and(|f| {
                        f.namespace_fds
                            .iter()
                            .any(|n| n.namespace == "net" && n.inode == ns)
                    })
            });
            if bind_mounted || held_by_fd {
                continue;
            }
            let pid = process.pid;
            let stack = process.kernel_stack.as_deref().unwrap_or(&[]);
            let network_frame = in_network_code(stack);
            let severity = if network_frame.is_some() {
                Severity::Warning
            } else {
                Severity::Info
            };
            let blocked = match network_frame {
                Some(frame) => format!(
                    "It is blocked in network code ({frame}): nothing in a deleted namespace will answer it, so it waits until a timeout, if there is one."
                ),
                None => "It is not blocked in network code now, but any network call it makes has nowhere to go.".to_string(),
            };
            let mut finding = Finding::new(
                self.id(),
                severity,
                Subject::process(process),
                format!(
                    "{}'s network namespace net:[{ns}] was torn down under it{}",
                    process.label(),
                    network_frame
                        .map(|f| format!("; it is blocked in {f}"))
                        .unwrap_or_default()
                ),
            );
            finding.evidence.push(Evidence::new(
                format!("in network namespace net:[{ns}]"),
                shell_command!("readlink /proc/{}/ns/net", pid),
            ));
            finding.evidence.push(Evidence::new(
                "no other task is in that namespace",
                shell_command!(
                    "ls -l /proc/*/ns/net 2>/dev/null | grep -c -F -- {}",
                    format!("net:[{ns}]")
                ),
            ));
            finding.evidence.push(Evidence::new(
                "no bind mount names it in any mount namespace (it is not in `ip netns list`)",
                shell_command!("grep -h -F -- {} /proc/*/mountinfo", format!("net:[{ns}]")),
            ));
            finding.evidence.push(Evidence::new(
                "no file descriptor of any process refers to it",
                shell_command!(
                    "ls -l /proc/*/fd 2>/dev/null | grep -F -- {}",
                    format!("net:[{ns}]")
                ),
            ));
            if !stack.is_empty() {
                finding.evidence.push(Evidence::new(
                    format!(
                        "kernel stack: {} (state {})",
                        stack_line(stack, 6),
                        process.state
                    ),
                    shell_command!("cat /proc/{}/stack", pid),
                ));
            }
            finding.evidence.push(Evidence::new(
                "what is left of the namespace's network",
                shell_command!("nsenter -t {} -n ip -o link", pid),
            ));
            let pid_text = pid.to_string();
            let inode = ns.to_string();
            cx.emit(
                finding,
                &[
                    ("pid", &pid_text),
                    ("comm", &process.comm),
                    ("inode", &inode),
                    ("blocked", &blocked),
                ],
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{process, snapshot};
    use nodedoc_model::{MountEntry, NamespaceIds};
    use nodedoc_procfs::parse::parse_stack;

    fn in_netns(pid: i32, comm: &str, net: u64) -> Process {
        let mut p = process(pid, comm);
        p.namespaces = NamespaceIds {
            pid: Some(1),
            net: Some(net),
            mnt: Some(2),
        };
        p
    }

    #[test]
    fn seed_003_ceph_client_alone_in_a_deleted_netns_is_a_warning_linked_to_its_hang() {
        let mut ceph = in_netns(400, "app", 777);
        ceph.state = TaskState::UninterruptibleSleep;
        ceph.kernel_stack = Some(parse_stack(crate::stacks::tests::SEED_CEPH));
        let snap = snapshot(vec![
            in_netns(1, "init", 100),
            in_netns(2, "sshd", 100),
            ceph,
        ]);
        let findings = crate::run(&snap, &Default::default());
        let gone = findings
            .iter()
            .find(|f| f.detector == "netns-gone")
            .expect("netns-gone");
        assert_eq!(gone.pid, Some(400));
        assert_eq!(gone.severity, Severity::Warning);
        assert!(gone.summary.contains(
            "net:[777] was torn down under it; it is blocked in __ceph_do_pending_vmtruncate"
        ));
        let hung = findings
            .iter()
            .find(|f| f.detector == "hung-task")
            .expect("hung-task");
        assert_eq!(hung.caused_by, vec![gone.id.clone()]);
    }

    #[test]
    fn a_named_shared_or_exiting_namespace_is_not_gone() {
        let mut mounted = in_netns(10, "a", 501);
        mounted.kernel_stack = Some(vec![]);
        let held = in_netns(11, "b", 502);
        let mut holder = in_netns(12, "holder", 100);
        holder.fds = Some(nodedoc_model::FdCensus {
            total: 1,
            kinds: vec![],
            socket_resolution: nodedoc_model::SocketResolution::NoSockets,
            namespace_fds: vec![nodedoc_model::NamespaceFd {
                fd: 3,
                namespace: "net".into(),
                inode: 502,
            }],
            ..Default::default()
        });
        let mut exiting = in_netns(13, "c", 503);
        exiting.kernel_stack = Some(parse_stack(
            "[<0>] do_wait+0x1/0x2\n[<0>] do_exit+0x1/0x2\n",
        ));
        let mut snap = snapshot(vec![
            in_netns(1, "init", 100),
            mounted,
            held,
            holder,
            exiting,
        ]);
        snap.mounts.push(MountEntry {
            mount_namespace: 2,
            seen_via_pid: 1,
            mount_id: 1,
            major: 0,
            minor: 4,
            root: "net:[501]".into(),
            mount_point: "/run/netns/x".into(),
            fs_type: "nsfs".into(),
            source: "nsfs".into(),
        });
        let findings = crate::run(&snap, &Default::default());
        assert!(
            findings.iter().all(|f| f.detector != "netns-gone"),
            "{findings:#?}"
        );
    }

    #[test]
    fn a_lone_idle_task_is_information_only() {
        let snap = snapshot(vec![in_netns(1, "init", 100), in_netns(20, "sleeper", 900)]);
        let findings = crate::run(&snap, &Default::default());
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].severity, Severity::Info);
    }
}
