//! # `netns-gone`
//!
//! **Signature.** A live task whose network namespace has no other member, no bind mount
//! (nsfs, in any mount namespace) and no file descriptor holding it — *and* a sign that the
//! namespace was torn down (`ip netns delete`, a pod's teardown) while the task was still in
//! it (seed 003: a ceph client left in the deleted namespace of a container being killed).
//! `/proc/PID/ns/net` still answers `net:[inode]` for such a task, so membership decides, not
//! the link.
//!
//! Being alone in an unnamed namespace is not a sign: `unshare -n sleep 1000`, sandboxes and
//! systemd's `PrivateNetwork=` make such namespaces on purpose, and a task in one may well block
//! receiving on a socket of its own namespace. One snapshot cannot tell "deleted" from "never
//! named" by membership alone, so the finding needs one of these, each a fact of the snapshot:
//!
//! - **the name was deleted**: the task's mount namespace has the `/sys` that `ip netns exec
//!   NAME` mounts for the namespace it enters (source NAME), and NAME no longer names its
//!   namespace (`ip netns delete NAME` ran, or NAME now names another one);
//! - **its container is being torn down**: a SIGKILL is pending on the task (it was killed and
//!   cannot act on it), or the init of its pid namespace is exiting (`zap_pid_ns_processes`) —
//!   the runtime removed the namespace's name and other members with the rest of the container.
//!
//! **Sources.** Every task's `/proc/PID/ns/net`, nsfs mounts and `ip netns exec`'s `/sys` from
//! every mount namespace, namespace descriptors in every process's fd census, pending signals,
//! the kernel stacks of the task and of pid-namespace inits.
//!
//! **Evidence.** The namespace inode, the absence of other members, bind mounts and fds, the
//! sign of teardown, and where the task blocks. Warning when it is blocked in network code or a
//! network filesystem; information otherwise; nothing for a task that is merely exiting.
//! `hung-task` links a blocked task's finding to this one as its cause.

use std::collections::{HashMap, HashSet};

use nodedoc_model::{
    shell_command, Evidence, Finding, Process, Severity, Snapshot, Subject, TaskState,
};

use crate::index::Processes;
use crate::stacks::{in_network_code, stack_line};
use crate::{Context, Detector, Signature};

/// See the module documentation.
pub struct NetnsGone;

fn exiting(process: &Process) -> bool {
    matches!(process.state, TaskState::Zombie | TaskState::Dead)
        || process
            .kernel_stack
            .as_ref()
            .is_some_and(|s| s.iter().any(|f| f.function == "do_exit"))
}

/// Why a lone task's namespace is known to have been torn down.
enum Teardown<'a> {
    /// Started with `ip netns exec NAME`; NAME no longer names the namespace.
    NameDeleted {
        name: &'a str,
        /// The namespace NAME names now, if it was given to another.
        now_names: Option<u64>,
    },
    /// Killed, and cannot act on it.
    Killed,
    /// The init of its pid namespace is exiting.
    ContainerExiting { init: &'a Process },
}

impl Teardown<'_> {
    fn key(&self) -> &'static str {
        match self {
            Teardown::NameDeleted { .. } => "name-deleted",
            Teardown::Killed => "killed",
            Teardown::ContainerExiting { .. } => "container-exiting",
        }
    }
}

/// What the detector looks up per task, built once: membership, names, holders.
struct Namespaces<'a> {
    members: HashMap<u64, usize>,
    bind_mounted: HashSet<u64>,
    /// Network namespace inode → pids holding an fd on it.
    held_by: HashMap<u64, Vec<i32>>,
    /// Mount namespace → the name `ip netns exec` mounted its `/sys` for.
    exec_name: HashMap<u64, &'a str>,
    /// `ip netns` name → the namespace it names now.
    named: HashMap<&'a str, u64>,
    /// Tasks of a pid namespace whose init is exiting → that init.
    container_exiting: HashMap<i32, &'a Process>,
}

impl<'a> Namespaces<'a> {
    fn of(snapshot: &'a Snapshot, processes: &Processes<'a>) -> Namespaces<'a> {
        let mut members: HashMap<u64, usize> = HashMap::new();
        for ns in snapshot.processes.iter().filter_map(|p| p.namespaces.net) {
            *members.entry(ns).or_default() += 1;
        }
        let mut bind_mounted = HashSet::new();
        let mut named = HashMap::new();
        let mut exec_name = HashMap::new();
        for mount in &snapshot.mounts {
            if let Some(("net", ns)) = mount.namespace() {
                bind_mounted.insert(ns);
                // `ip netns add NAME` bind-mounts the namespace at /run/netns/NAME.
                if let Some((dir, name)) = mount.mount_point.rsplit_once('/') {
                    if dir.ends_with("/netns") {
                        named.insert(name, ns);
                    }
                }
            }
            if let Some(name) = mount.ip_netns_exec_name() {
                exec_name.insert(mount.mount_namespace, name);
            }
        }
        let mut held_by: HashMap<u64, Vec<i32>> = HashMap::new();
        for process in &snapshot.processes {
            for fd in process.fds.iter().flat_map(|f| &f.namespace_fds) {
                if fd.namespace == "net" {
                    held_by.entry(fd.inode).or_default().push(process.pid);
                }
            }
        }
        let mut container_exiting = HashMap::new();
        for init in &snapshot.processes {
            let zapping = init
                .kernel_stack
                .as_ref()
                .is_some_and(|s| s.iter().any(|f| f.function == "zap_pid_ns_processes"));
            if zapping {
                for member in processes.descendants(init.pid) {
                    container_exiting.insert(member.pid, init);
                }
            }
        }
        Namespaces {
            members,
            bind_mounted,
            held_by,
            exec_name,
            named,
            container_exiting,
        }
    }

    /// Why `process`'s namespace `ns` is known to be torn down, if it is.
    fn teardown(&self, process: &'a Process, ns: u64) -> Option<Teardown<'a>> {
        if let Some(name) = process.namespaces.mnt.and_then(|m| self.exec_name.get(&m)) {
            let now_names = self.named.get(name).copied();
            if now_names != Some(ns) {
                return Some(Teardown::NameDeleted { name, now_names });
            }
        }
        if process.sigkill_pending {
            return Some(Teardown::Killed);
        }
        self.container_exiting
            .get(&process.pid)
            .map(|init| Teardown::ContainerExiting { init })
    }
}

impl Detector for NetnsGone {
    fn id(&self) -> &'static str {
        "netns-gone"
    }

    fn detect(&self, cx: &mut Context<'_>) {
        let snapshot = cx.snapshot;
        let namespaces = Namespaces::of(snapshot, cx.processes());
        // The host's namespace: pid 1's when it could be read, else the most populated one.
        let host_netns = snapshot
            .process(1)
            .and_then(|p| p.namespaces.net)
            .or_else(|| {
                namespaces
                    .members
                    .iter()
                    .max_by_key(|(_, n)| **n)
                    .map(|(ns, _)| *ns)
            });
        for process in &snapshot.processes {
            let Some(ns) = process.namespaces.net else {
                continue;
            };
            if process.kernel_thread
                || Some(ns) == host_netns
                || namespaces.members[&ns] > 1
                || exiting(process)
            {
                continue;
            }
            let bind_mounted = namespaces.bind_mounted.contains(&ns);
            let held_by_fd = namespaces
                .held_by
                .get(&ns)
                .is_some_and(|holders| holders.iter().any(|&h| h != process.pid));
            if bind_mounted || held_by_fd {
                continue;
            }
            // Alone and unnamed is how a fresh `unshare -n` looks too: only a sign of teardown
            // makes it gone.
            let Some(teardown) = namespaces.teardown(process, ns) else {
                continue;
            };
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
            finding.evidence.extend(teardown_evidence(&teardown, pid));
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
            let signature = Signature::new(
                teardown.key(),
                "{count} tasks were left in network namespaces torn down under them",
                u64::MAX - process.start_time_ticks,
                "longest running first",
            );
            cx.emit_as(
                signature,
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

/// The evidence of how the namespace is known to be torn down.
fn teardown_evidence(teardown: &Teardown<'_>, pid: i32) -> Vec<Evidence> {
    match teardown {
        Teardown::NameDeleted { name, now_names } => {
            let started = format!(
                "it was started with `ip netns exec {name}`: its /sys is the sysfs that `ip netns exec` mounts for the namespace it enters"
            );
            let gone = match now_names {
                None => format!(
                    "{name} is no longer in `ip netns list`: the name was deleted while it was inside"
                ),
                Some(other) => format!(
                    "{name} now names another namespace, net:[{other}]: the name was deleted and made again while it was inside"
                ),
            };
            vec![
                Evidence::new(
                    started,
                    shell_command!("grep -F -- ' /sys ' /proc/{}/mountinfo", pid),
                ),
                Evidence::new(gone, shell_command!("ip netns list")),
            ]
        }
        Teardown::Killed => vec![Evidence::new(
            "a SIGKILL is pending on it: it was killed and cannot act on it, so whatever removed the namespace's name and other members is tearing it down",
            shell_command!("grep -E 'SigPnd|ShdPnd' /proc/{}/status", pid),
        )],
        Teardown::ContainerExiting { init } => vec![Evidence::new(
            format!(
                "the init of its pid namespace, {} (pid {}), is exiting (zap_pid_ns_processes): its container is being torn down",
                init.comm, init.pid
            ),
            shell_command!("cat /proc/{}/stack", init.pid),
        )],
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
        // The seed: `kill -9` did not kill it either.
        ceph.sigkill_pending = true;
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
        assert!(gone
            .evidence
            .iter()
            .any(|e| e.fact.starts_with("a SIGKILL is pending on it")));
        let hung = findings
            .iter()
            .find(|f| f.detector == "hung-task")
            .expect("hung-task");
        assert_eq!(hung.caused_by, vec![gone.id.clone()]);
    }

    #[test]
    fn a_named_shared_or_exiting_namespace_is_not_gone() {
        // Each killed, so only what spares it keeps it from being gone.
        let mut mounted = in_netns(10, "a", 501);
        mounted.kernel_stack = Some(vec![]);
        mounted.sigkill_pending = true;
        let mut held = in_netns(11, "b", 502);
        held.sigkill_pending = true;
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
        exiting.sigkill_pending = true;
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

    /// `unshare -n sleep 1000`, a sandbox, `PrivateNetwork=`: alone in a namespace nobody
    /// named, on purpose — even blocked receiving on a socket of its own namespace.
    #[test]
    fn a_lone_task_in_a_fresh_unnamed_namespace_is_not_gone() {
        let sleeper = in_netns(20, "sleep", 900);
        let mut receiver = in_netns(21, "receiver", 901);
        receiver.kernel_stack = Some(parse_stack(crate::stacks::tests::LAB_UDP_RECV));
        let snap = snapshot(vec![in_netns(1, "init", 100), sleeper, receiver]);
        let findings = crate::run(&snap, &Default::default());
        assert!(findings.is_empty(), "{findings:#?}");
    }

    fn sysfs_of_ip_netns_exec(mount_namespace: u64, name: &str) -> MountEntry {
        MountEntry {
            mount_namespace,
            seen_via_pid: 30,
            mount_id: 49,
            major: 0,
            minor: 40,
            root: "/".into(),
            mount_point: "/sys".into(),
            fs_type: "sysfs".into(),
            source: name.into(),
        }
    }

    fn netns_mount(inode: u64, name: &str) -> MountEntry {
        MountEntry {
            mount_namespace: 2,
            seen_via_pid: 1,
            mount_id: 70,
            major: 0,
            minor: 4,
            root: format!("net:[{inode}]"),
            mount_point: format!("/run/netns/{name}"),
            fs_type: "nsfs".into(),
            source: "nsfs".into(),
        }
    }

    /// The lab: `ip netns exec ndlab-1 udp-wait`, then `ip netns delete ndlab-1`.
    #[test]
    fn a_task_started_in_a_named_namespace_whose_name_was_deleted_is_left_in_it() {
        let mut helper = in_netns(30, "udp-wait", 900);
        helper.namespaces.mnt = Some(3);
        helper.kernel_stack = Some(parse_stack(crate::stacks::tests::LAB_UDP_RECV));
        let mut snap = snapshot(vec![in_netns(1, "init", 100), helper]);
        snap.mounts.push(sysfs_of_ip_netns_exec(3, "ndlab-1"));
        let findings = crate::run(&snap, &Default::default());
        assert_eq!(findings.len(), 1, "{findings:#?}");
        let f = &findings[0];
        assert_eq!((f.detector.as_str(), f.pid), ("netns-gone", Some(30)));
        assert_eq!(f.severity, Severity::Warning);
        assert!(
            f.summary.contains(
                "net:[900] was torn down under it; it is blocked in __skb_wait_for_more_packets"
            ),
            "{}",
            f.summary
        );
        let facts: Vec<&str> = f.evidence.iter().map(|e| e.fact.as_str()).collect();
        assert!(facts.contains(&"it was started with `ip netns exec ndlab-1`: its /sys is the sysfs that `ip netns exec` mounts for the namespace it enters"), "{facts:#?}");
        assert!(facts.contains(&"ndlab-1 is no longer in `ip netns list`: the name was deleted while it was inside"), "{facts:#?}");

        // The name made again for another namespace: still deleted under it.
        snap.mounts.push(netns_mount(901, "ndlab-1"));
        let findings = crate::run(&snap, &Default::default());
        assert!(findings[0].evidence.iter().any(|e| e.fact == "ndlab-1 now names another namespace, net:[901]: the name was deleted and made again while it was inside"));

        // Still named: nothing is gone.
        snap.mounts.pop();
        snap.mounts.push(netns_mount(900, "ndlab-1"));
        assert!(crate::run(&snap, &Default::default()).is_empty());
    }

    #[test]
    fn a_task_of_a_container_whose_init_is_exiting_is_left_in_its_namespace() {
        let mut init = in_netns(40, "pause", 100);
        init.kernel_stack = Some(parse_stack(crate::stacks::tests::SEED_ZAP));
        let mut app = in_netns(41, "app", 902);
        app.ppid = 40;
        let snap = snapshot(vec![in_netns(1, "init", 100), init, app]);
        let findings = crate::run(&snap, &Default::default());
        let f = findings
            .iter()
            .find(|f| f.detector == "netns-gone")
            .expect("netns-gone");
        assert_eq!((f.pid, f.severity), (Some(41), Severity::Info));
        assert!(f.evidence.iter().any(|e| e.fact
            == "the init of its pid namespace, pause (pid 40), is exiting (zap_pid_ns_processes): its container is being torn down"));
    }
}
