//! Classifies a blocked task against the stack signature table (`data/signatures.toml`) and
//! describes what it waits for: the freezer that froze it, the FUSE daemon that does not
//! answer, the vfork child that does not exec, the lock it waits for. Shared by `hung-task`,
//! `pidns-exit-hang` and `netns-gone`.

use nodedoc_model::{Evidence, FreezerState, MountEntry, Process, Reference, Snapshot, StackFrame};

use crate::catalog::{catalog, render, StackSignature};
use crate::index::Processes;

/// What a blocked task's stack says.
pub(crate) struct Classification {
    /// The matching signature.
    pub signature: &'static StackSignature,
    /// The frame that matched (or the freezer, for a frozen task).
    pub frame: String,
}

/// Functions that only take or wait for a lock: the frame after them names the lock's site.
const LOCK_FRAMES: &[&str] = &[
    "rwsem_down_read_slowpath",
    "rwsem_down_write_slowpath",
    "call_rwsem_down_read_failed",
    "call_rwsem_down_write_failed",
    "__mutex_lock",
    "__mutex_lock_slowpath",
    "mutex_lock",
    "__down",
    "down",
    "down_read",
    "down_write",
    "__rt_mutex_slowlock",
    "schedule",
    "schedule_preempt_disabled",
];

/// Classifies `process`: a frozen cgroup first (a v1-frozen task shows an ordinary stack),
/// then the first signature, in table order, with a matching frame.
pub(crate) fn classify(snapshot: &Snapshot, process: &Process) -> Option<Classification> {
    let table = &catalog().stack_signature;
    if let Some(freezer) = snapshot.freezer_of(process) {
        if freezer.state != FreezerState::Thawed {
            let signature = table.iter().find(|s| s.id == "frozen-cgroup")?;
            return Some(Classification {
                signature,
                frame: format!("freezer {} {}", freezer.path, freezer.state),
            });
        }
    }
    let stack = process.kernel_stack.as_ref()?;
    table.iter().find_map(|signature| {
        stack
            .iter()
            .find(|frame| signature.matches(&frame.function))
            .map(|frame| Classification {
                signature,
                frame: frame.function.clone(),
            })
    })
}

/// The tasks that may hold `process`'s memory-map lock for reading. The kernel does not
/// record readers of an rwsem, so these are the suspects: tasks blocked while reading another
/// process's memory (the `remote-memory-access` signature).
pub(crate) fn memory_map_lock_suspects<'a>(
    processes: &Processes<'a>,
    process: &Process,
) -> Vec<&'a Process> {
    let readers: Vec<&Process> = processes
        .remote_readers
        .iter()
        .copied()
        .filter(|p| p.pid != process.pid)
        .collect();
    // A reader blocked in a read of this very process's /proc/PID/mem is no longer a suspect.
    let proven: Vec<&Process> = readers
        .iter()
        .copied()
        .filter(|reader| reads_memory_of(reader, process.pid))
        .collect();
    if proven.is_empty() {
        readers
    } else {
        proven
    }
}

/// True when `reader` is blocked in a read of `/proc/PID/mem` of process `pid`.
fn reads_memory_of(reader: &Process, pid: i32) -> bool {
    reader
        .syscall
        .as_ref()
        .and_then(|s| s.fd_target.as_deref())
        .is_some_and(|target| target == format!("/proc/{pid}/mem"))
}

/// The stack's top frames, innermost first: `a ← b ← c`.
pub(crate) fn stack_line(stack: &[StackFrame], frames: usize) -> String {
    let mut line = stack
        .iter()
        .take(frames)
        .map(|f| f.function.as_str())
        .collect::<Vec<_>>()
        .join(" ← ");
    if stack.len() > frames {
        line.push_str(" ← …");
    }
    line
}

/// The site of a lock wait: the first frame below the locking functions.
fn lock_site(stack: &[StackFrame]) -> Option<&str> {
    let mut in_lock = false;
    for frame in stack {
        if LOCK_FRAMES.contains(&frame.function.as_str()) {
            in_lock = true;
        } else if in_lock {
            return Some(&frame.function);
        }
    }
    None
}

/// The FUSE mount a task is blocked on: the one holding the file of its blocked system call,
/// else the only FUSE mount of its mount namespace.
pub(crate) fn fuse_mount<'a>(snapshot: &'a Snapshot, process: &Process) -> Option<&'a MountEntry> {
    let in_namespace: Vec<&MountEntry> = snapshot
        .mounts
        .iter()
        .filter(|m| m.is_fuse() && Some(m.mount_namespace) == process.namespaces.mnt)
        .collect();
    let target = process
        .syscall
        .as_ref()
        .and_then(|s| s.fd_target.as_deref());
    if let Some(path) = target {
        let best = in_namespace
            .iter()
            .filter(|m| {
                path == m.mount_point
                    || path.starts_with(&format!("{}/", m.mount_point.trim_end_matches('/')))
            })
            .max_by_key(|m| m.mount_point.len());
        if let Some(mount) = best {
            return Some(mount);
        }
    }
    match in_namespace.as_slice() {
        [only] => Some(only),
        _ => None,
    }
}

/// The processes that may serve a FUSE mount: holders of /dev/fuse, those naming the mount
/// point on their command line first.
pub(crate) fn fuse_daemons<'a>(processes: &Processes<'a>, mount: &MountEntry) -> Vec<&'a Process> {
    let holders: Vec<&Process> = processes.fuse_holders.clone();
    let naming: Vec<&Process> = holders
        .iter()
        .copied()
        .filter(|p| p.cmdline.iter().any(|a| a == &mount.mount_point))
        .collect();
    if naming.is_empty() {
        holders
    } else {
        naming
    }
}

/// The explanation, fix, evidence and references a classification adds to a finding.
pub(crate) struct Description {
    pub explanation: String,
    pub fix: String,
    pub evidence: Vec<Evidence>,
    pub references: Vec<Reference>,
}

/// Fills the signature's templates for `process`, with the evidence that names what it waits
/// for.
pub(crate) fn describe(
    processes: &Processes<'_>,
    process: &Process,
    class: &Classification,
) -> Description {
    let snapshot = processes.snapshot;
    let pid = process.pid.to_string();
    let stack: &[StackFrame] = process.kernel_stack.as_deref().unwrap_or(&[]);
    let mut evidence = Vec::new();
    let mut values: Vec<(&str, String)> = vec![
        ("pid", pid.clone()),
        ("comm", process.comm.clone()),
        ("frame", class.frame.clone()),
    ];
    match class.signature.id.as_str() {
        "frozen-cgroup" => {
            if let Some(freezer) = snapshot.freezer_of(process) {
                evidence.push(Evidence::new(
                    format!("its cgroup {} is {}", freezer.path, freezer.state),
                    format!("cat {}", freezer.state_file()),
                ));
                values.push(("freezer", format!("{} is {}", freezer.path, freezer.state)));
                values.push(("thaw_command", freezer.thaw_command()));
            } else {
                values.push(("freezer", "its cgroup".into()));
                values.push((
                    "thaw_command",
                    "echo THAWED > /sys/fs/cgroup/freezer/PATH/freezer.state".into(),
                ));
            }
        }
        "fuse-no-answer" => {
            let mount = fuse_mount(snapshot, process);
            let (mount_text, mount_point, connection) = match mount {
                Some(m) => (
                    format!("{} ({}, from {})", m.mount_point, m.fs_type, m.source),
                    m.mount_point.clone(),
                    m.minor.to_string(),
                ),
                None => (
                    "a FUSE mount".to_string(),
                    "MOUNTPOINT".to_string(),
                    "N".to_string(),
                ),
            };
            if let Some(m) = mount {
                evidence.push(Evidence::new(
                    format!("blocked on FUSE mount {mount_text}, connection {}", m.minor),
                    format!("grep ' {} ' /proc/{pid}/mountinfo", m.mount_point),
                ));
            }
            let daemons = mount
                .map(|m| fuse_daemons(processes, m))
                .unwrap_or_default();
            let (daemon, daemon_short) = match daemons.as_slice() {
                [] => (
                    "No process holding /dev/fuse was found: the daemon may have been killed without the mount being aborted.".to_string(),
                    "not found".to_string(),
                ),
                [one] => {
                    evidence.push(Evidence::new(
                        format!("served by {} (pid {}), which holds /dev/fuse open", one.comm, one.pid),
                        "ls -l /proc/*/fd 2>/dev/null | grep /dev/fuse",
                    ));
                    (
                        format!(
                            "The daemon is {} (pid {}): it received the request and has not replied.",
                            one.comm, one.pid
                        ),
                        format!("{} pid {}", one.comm, one.pid),
                    )
                }
                many => {
                    let names: Vec<String> = many.iter().map(|p| format!("{} (pid {})", p.comm, p.pid)).collect();
                    evidence.push(Evidence::new(
                        format!("processes holding /dev/fuse: {}", names.join(", ")),
                        "ls -l /proc/*/fd 2>/dev/null | grep /dev/fuse",
                    ));
                    (
                        format!("The daemon is one of {}.", names.join(", ")),
                        names.join(" or "),
                    )
                }
            };
            values.push(("mount", mount_text));
            values.push(("mount_point", mount_point));
            values.push(("connection", connection));
            values.push(("daemon", daemon));
            values.push(("daemon_short", daemon_short));
        }
        "vfork-parent" => {
            let children = processes.children(process.pid);
            let (child, child_short, child_pid) = match children.first() {
                Some(c) => {
                    evidence.push(Evidence::new(
                        format!(
                            "its vfork child {} (pid {}) is in state {}{}",
                            c.comm,
                            c.pid,
                            c.state,
                            c.wchan
                                .as_deref()
                                .map(|w| format!(", sleeping in {w}"))
                                .unwrap_or_default()
                        ),
                        format!("cat /proc/{}/stat /proc/{}/wchan", c.pid, c.pid),
                    ));
                    (
                        format!(
                            "{} (pid {}) is in state {}{}",
                            c.comm,
                            c.pid,
                            c.state,
                            c.wchan
                                .as_deref()
                                .map(|w| format!(" in {w}"))
                                .unwrap_or_default()
                        ),
                        format!("{} pid {}", c.comm, c.pid),
                        c.pid.to_string(),
                    )
                }
                None => (
                    "it could not be found".into(),
                    "the child".into(),
                    "CHILD".into(),
                ),
            };
            values.push(("child", child));
            values.push(("child_short", child_short));
            values.push(("child_pid", child_pid));
        }
        "remote-memory-access" => {
            let fault = if stack.iter().any(|f| f.function == "filemap_fault") {
                ", a page of a file mapping (is its filesystem answering?)"
            } else {
                ""
            };
            values.push(("fault", fault.to_string()));
        }
        "memory-map-lock-write" => {
            if process.memory_map_blocked {
                evidence.push(Evidence::new(
                    format!("reading /proc/{pid}/cmdline did not return: `ps aux` hangs on this process"),
                    format!("timeout 5 cat /proc/{pid}/cmdline"),
                ));
            }
            let mem = format!("/proc/{pid}/mem");
            let readers = memory_map_lock_suspects(processes, process);
            let reads_ours = |reader: &Process| reads_memory_of(reader, process.pid);
            for reader in &readers {
                let what = if reads_ours(reader) {
                    format!("this process's memory through {mem}")
                } else {
                    "another process's memory".to_string()
                };
                evidence.push(Evidence::new(
                    format!(
                        "{} (pid {}) is stuck reading {what}: {}",
                        reader.comm,
                        reader.pid,
                        stack_line(reader.kernel_stack.as_deref().unwrap_or(&[]), 4)
                    ),
                    format!(
                        "cat /proc/{}/stack; ls -l /proc/{}/fd | grep /mem",
                        reader.pid, reader.pid
                    ),
                ));
            }
            let names: Vec<String> = readers
                .iter()
                .map(|p| format!("{} (pid {})", p.comm, p.pid))
                .collect();
            let holders = match readers.as_slice() {
                [] => String::new(),
                [one] if reads_ours(one) => format!(
                    "It is held by {} (pid {}), stuck reading {mem}.",
                    one.comm, one.pid
                ),
                _ => format!(
                    "Suspected holder: {}, stuck reading another process's memory.",
                    names.join(", ")
                ),
            };
            let holders_short = if names.is_empty() {
                "none found".to_string()
            } else {
                names.join(", ")
            };
            values.push(("holders", holders));
            values.push(("holders_short", holders_short));
        }
        "lock-wait" => {
            values.push((
                "lock_site",
                lock_site(stack).unwrap_or("an unknown caller").to_string(),
            ));
        }
        _ => {}
    }
    let pairs: Vec<(&str, &str)> = values.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Description {
        explanation: render(&class.signature.explanation, &pairs),
        fix: render(&class.signature.fix, &pairs),
        evidence,
        references: class.signature.references.clone(),
    }
}

/// True when the stack is in network code or a network filesystem.
pub(crate) fn in_network_code(stack: &[StackFrame]) -> Option<&str> {
    const NETWORK_PREFIXES: &[&str] = &[
        "tcp_", "udp_", "inet_", "inet6_", "sk_wait", "sock_", "__sock_", "__skb_", "skb_recv",
        "unix_", "netlink_", "ceph_", "__ceph_", "nfs_", "nfs4_", "__nfs", "rpc_", "__rpc_",
        "cifs_", "smb2_", "p9_",
    ];
    stack
        .iter()
        .find(|f| NETWORK_PREFIXES.iter().any(|p| f.function.starts_with(p)))
        .map(|f| f.function.as_str())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::testing::{process, snapshot};
    use nodedoc_procfs::parse::parse_stack as stack;

    /// Seed 003, case 1: s6-sync in sync(), stuck on the superblock rwsem.
    pub(crate) const SEED_S6_SYNC: &str =
        "[<ffffffffa0ae9918>] call_rwsem_down_read_failed+0x18/0x30
[<ffffffffa0235da2>] iterate_supers+0xa2/0x110
[<ffffffffa0269ba4>] sys_sync+0x44/0xb0
[<ffffffffa0001c46>] do_syscall_64+0x66/0x120
[<ffffffffa0c00081>] entry_SYSCALL_64_after_hwframe+0x3d/0xa2";

    /// Seed 003, case 2: a ceph client truncating a file, its network namespace gone.
    pub(crate) const SEED_CEPH: &str =
        "[<ffffffffc08766ce>] __ceph_do_pending_vmtruncate+0x4e/0x260 [ceph]
[<ffffffffc0876f95>] __ceph_setattr+0x665/0x9b0 [ceph]
[<ffffffffc087732c>] ceph_setattr+0x4c/0x80 [ceph]
[<ffffffffa9253124>] notify_change+0x2f4/0x440
[<ffffffffa922e995>] do_truncate+0x75/0xc0
[<ffffffffa92418c3>] path_openat+0xb33/0x1480
[<ffffffffa9243c61>] do_filp_open+0x91/0x100
[<ffffffffa922ff14>] do_sys_open+0x124/0x210
[<ffffffffa923001e>] SyS_open+0x1e/0x20
[<ffffffffa9001c46>] do_syscall_64+0x66/0x120
[<ffffffffa9c00081>] entry_SYSCALL_64_after_hwframe+0x3d/0xa2
[<ffffffffffffffff>] 0xffffffffffffffff";

    /// Seed 003: the container init in zap_pid_ns_processes.
    pub(crate) const SEED_ZAP: &str = "[<ffffffffa0072807>] do_wait+0x1d7/0x250
[<ffffffffa0073c49>] kernel_wait4+0x89/0x140
[<ffffffffa0073d86>] SYSC_wait4+0x86/0x90
[<ffffffffa0073e2e>] SyS_wait4+0xe/0x10
[<ffffffffa0124183>] zap_pid_ns_processes+0x103/0x1a0
[<ffffffffa00739b9>] do_exit+0xb29/0xbe0
[<ffffffffa0073aef>] do_group_exit+0x3f/0xb0";

    /// Captured on kernel 6.18 from the `d-state` lab: a vfork parent (wait_for_vfork_done is
    /// inlined into kernel_clone on this kernel).
    pub(crate) const LAB_VFORK: &str = "[<0>] kernel_clone+0x1d3/0x400
[<0>] __do_sys_vfork+0x66/0x90
[<0>] do_syscall_64+0x71/0x290
[<0>] entry_SYSCALL_64_after_hwframe+0x76/0x7e";

    /// Captured on kernel 6.18 from the `fuse-hang` lab: a killed reader of a FUSE file.
    pub(crate) const LAB_FUSE: &str = "[<0>] request_wait_answer+0x1d8/0x290
[<0>] __fuse_simple_request+0x120/0x330
[<0>] fuse_direct_io+0x674/0xa60
[<0>] fuse_file_read_iter+0x196/0x1c0
[<0>] vfs_read+0x2a4/0x3d0
[<0>] ksys_read+0x6f/0xf0
[<0>] do_syscall_64+0x71/0x290
[<0>] entry_SYSCALL_64_after_hwframe+0x76/0x7e";

    /// Captured on kernel 6.18 from the `d-state` lab: a v1-frozen sleeper shows an ordinary
    /// nanosleep stack; only the freezer state tells.
    pub(crate) const LAB_FROZEN_SLEEP: &str = "[<0>] hrtimer_nanosleep+0xb5/0x130
[<0>] common_nsleep_timens+0x3d/0xa0
[<0>] __x64_sys_clock_nanosleep+0xde/0x150
[<0>] do_syscall_64+0x71/0x290
[<0>] entry_SYSCALL_64_after_hwframe+0x76/0x7e";

    /// Captured on kernel 6.18 from the `netns-gone` lab: blocked receiving UDP.
    pub(crate) const LAB_UDP_RECV: &str = "[<0>] __skb_wait_for_more_packets+0x120/0x170
[<0>] __skb_recv_udp+0x1ee/0x310
[<0>] udp_recvmsg+0x13a/0x550
[<0>] sock_recvmsg+0xab/0xc0
[<0>] __sys_recvfrom+0x117/0x1b0
[<0>] __x64_sys_recvfrom+0x20/0x40
[<0>] do_syscall_64+0x71/0x290
[<0>] entry_SYSCALL_64_after_hwframe+0x76/0x7e";

    /// Captured on kernel 6.18: a process's main thread creating a thread (which maps its
    /// stack) while another task holds the process's mmap_lock for reading.
    pub(crate) const LAB_MMAP_WRITER: &str = "[<0>] vm_mmap_pgoff+0xe9/0x210
[<0>] do_syscall_64+0x71/0x290
[<0>] entry_SYSCALL_64_after_hwframe+0x76/0x7e";

    /// Captured on kernel 6.18: pread of /proc/PID/mem faulting on a page of a file whose
    /// FUSE daemon does not answer; it holds PID's mmap_lock for reading meanwhile.
    pub(crate) const LAB_MEM_READER: &str = "[<0>] filemap_fault+0xac0/0x1700
[<0>] __do_fault+0x34/0xd0
[<0>] do_fault+0x319/0x660
[<0>] __handle_mm_fault+0x842/0xf80
[<0>] handle_mm_fault+0xd0/0x310
[<0>] __get_user_pages+0x1a3/0x1120
[<0>] get_user_pages_remote+0xee/0x440
[<0>] __access_remote_vm+0xd9/0x3b0
[<0>] mem_rw+0x1c4/0x2d0
[<0>] vfs_read+0xbb/0x3d0
[<0>] __x64_sys_pread64+0xa3/0xe0
[<0>] do_syscall_64+0x71/0x290
[<0>] entry_SYSCALL_64_after_hwframe+0x76/0x7e";

    fn classified(text: &str) -> Option<&'static str> {
        let mut p = process(10, "t");
        p.kernel_stack = Some(stack(text));
        classify(&snapshot(vec![p.clone()]), &p).map(|c| c.signature.id.as_str())
    }

    #[test]
    fn the_seeds_stacks_classify() {
        assert_eq!(classified(SEED_S6_SYNC), Some("sync-all-filesystems"));
        assert_eq!(classified(SEED_CEPH), Some("network-filesystem"));
        assert_eq!(classified(LAB_VFORK), Some("vfork-parent"));
        assert_eq!(classified(LAB_FUSE), Some("fuse-no-answer"));
        assert_eq!(classified(LAB_MMAP_WRITER), Some("memory-map-lock-write"));
        assert_eq!(classified(LAB_MEM_READER), Some("remote-memory-access"));
        assert_eq!(classified("[<0>] __mutex_lock.constprop.0+0x1/0x2\n[<0>] mutex_lock+0x1/0x2\n[<0>] rtnl_lock+0x15/0x20"), Some("lock-wait"));
        // Unknown stacks are not guessed at.
        assert_eq!(classified(LAB_FROZEN_SLEEP), None);
        assert_eq!(classified(SEED_ZAP), None);
        assert_eq!(classified(""), None);
    }

    #[test]
    fn a_frozen_cgroup_wins_over_an_ordinary_stack() {
        let mut p = process(10, "sleep");
        p.kernel_stack = Some(stack(LAB_FROZEN_SLEEP));
        p.cgroups = vec![nodedoc_model::CgroupMembership {
            hierarchy: 5,
            controllers: "freezer".into(),
            path: "/nodedoc-lab-1".into(),
        }];
        let mut snap = snapshot(vec![p.clone()]);
        snap.freezers.push(nodedoc_model::FreezerCgroup {
            hierarchy: nodedoc_model::CgroupHierarchy::V1Freezer,
            path: "/nodedoc-lab-1".into(),
            state: FreezerState::Frozen,
        });
        let class = classify(&snap, &p).unwrap();
        assert_eq!(class.signature.id, "frozen-cgroup");
        let description = describe(&Processes::of(&snap), &p, &class);
        assert!(
            description
                .fix
                .contains("echo THAWED > /sys/fs/cgroup/freezer/nodedoc-lab-1/freezer.state"),
            "{}",
            description.fix
        );
    }

    #[test]
    fn a_memory_map_writer_names_the_reader_that_holds_its_lock() {
        let mut writer = process(10, "victim");
        writer.kernel_stack = Some(stack(LAB_MMAP_WRITER));
        writer.memory_map_blocked = true;
        let mut reader = process(20, "mem-reader");
        reader.kernel_stack = Some(stack(LAB_MEM_READER));
        let snap = snapshot(vec![writer.clone(), reader.clone()]);

        let class = classify(&snap, &writer).unwrap();
        let description = describe(&Processes::of(&snap), &writer, &class);
        assert!(
            description
                .explanation
                .contains("Suspected holder: mem-reader (pid 20)"),
            "{}",
            description.explanation
        );
        let facts: Vec<&str> = description
            .evidence
            .iter()
            .map(|e| e.fact.as_str())
            .collect();
        assert!(
            facts
                .iter()
                .any(|f| f.contains("`ps aux` hangs on this process")),
            "{facts:?}"
        );
        assert!(
            facts.iter().any(|f| f.starts_with(
                "mem-reader (pid 20) is stuck reading another process's memory: filemap_fault"
            )),
            "{facts:?}"
        );

        let class = classify(&snap, &reader).unwrap();
        let description = describe(&Processes::of(&snap), &reader, &class);
        assert!(
            description.explanation.contains("a page of a file mapping"),
            "{}",
            description.explanation
        );

        // Once its blocked read is known to target the writer's /proc/PID/mem, it is the holder.
        let mut proven = reader.clone();
        proven.syscall = Some(nodedoc_model::BlockedSyscall {
            number: 17,
            args: vec![3],
            fd_target: Some("/proc/10/mem".into()),
        });
        let mut other = process(30, "gdb");
        other.kernel_stack = Some(stack(LAB_MEM_READER));
        let snap = snapshot(vec![writer.clone(), proven, other]);
        let description = describe(
            &Processes::of(&snap),
            &writer,
            &classify(&snap, &writer).unwrap(),
        );
        assert!(
            description
                .explanation
                .contains("It is held by mem-reader (pid 20), stuck reading /proc/10/mem."),
            "{}",
            description.explanation
        );
        assert!(
            !description.explanation.contains("gdb"),
            "{}",
            description.explanation
        );
    }

    #[test]
    fn lock_sites_name_the_caller() {
        let frames = stack("[<0>] rwsem_down_write_slowpath+0x1/0x2\n[<0>] down_write+0x1/0x2\n[<0>] do_unlinkat+0x1/0x2");
        assert_eq!(lock_site(&frames), Some("do_unlinkat"));
        assert_eq!(
            in_network_code(&stack(SEED_CEPH)),
            Some("__ceph_do_pending_vmtruncate")
        );
        assert_eq!(in_network_code(&stack(LAB_VFORK)), None);
        assert_eq!(
            in_network_code(&stack(LAB_UDP_RECV)),
            Some("__skb_wait_for_more_packets")
        );
    }
}
