//! Classifies a blocked task against the stack signature table (`data/signatures.toml`) and
//! describes what it waits for: the freezer that froze it, the FUSE daemon that does not
//! answer, the vfork child that does not exec, the lock it waits for. Shared by `hung-task`,
//! `pidns-exit-hang` and `netns-gone`, for live stacks (`/proc/PID/stack`) and for the call
//! traces the kernel printed in its log ([`classify_report`]).

use nodedoc_model::text::{ShellCommand, Unquotable};
use nodedoc_model::{
    shell_command, BlockedTaskReport, Evidence, FreezerState, MountEntry, Process, Reference,
    Snapshot, StackFrame, TraceFrame,
};

use crate::catalog::{base_function, catalog, render, StackSignature};
use crate::index::Processes;

/// What a blocked task's stack says.
pub(crate) struct Classification {
    /// The matching signature.
    pub signature: &'static StackSignature,
    /// The frame that matched (or the freezer, for a frozen task).
    pub frame: String,
}

/// Functions that only schedule: skipped, with the lock functions of `lock-wait`, when
/// looking for the frame that names where a wait was entered.
const SCHEDULING_FRAMES: &[&str] = &[
    "schedule",
    "__schedule",
    "schedule_preempt_disabled",
    "schedule_timeout",
    "io_schedule",
    "io_schedule_timeout",
    "preempt_schedule",
];

/// A frame as classification sees it, from `/proc/PID/stack` or from a trace in the log.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Frame<'a> {
    pub function: &'a str,
    pub module: Option<&'a str>,
    /// False for a `? ` frame of a trace in the log.
    pub reliable: bool,
}

impl<'a> From<&'a StackFrame> for Frame<'a> {
    fn from(frame: &'a StackFrame) -> Frame<'a> {
        Frame {
            function: &frame.function,
            module: frame.module.as_deref(),
            reliable: true,
        }
    }
}

impl<'a> From<&'a TraceFrame> for Frame<'a> {
    fn from(frame: &'a TraceFrame) -> Frame<'a> {
        Frame {
            function: &frame.function,
            module: frame.module.as_deref(),
            reliable: frame.reliable,
        }
    }
}

/// A stack's class: the signature that matched and the frames that decided it.
#[derive(Debug)]
pub struct StackClass {
    /// The matching signature.
    pub signature: &'static StackSignature,
    /// The deciding frame's index in the stack (the report's frames, `?` ones included),
    /// innermost first.
    pub index: usize,
    /// The deciding frame's function, as printed.
    pub frame: String,
    /// Where the wait was entered, for signatures that name it (`lock-wait`).
    pub site: Option<String>,
    /// True when only unreliable (`?`) frames matched anything.
    pub from_unreliable: bool,
    /// What the task in turn waits for, for signatures that name it (`nfs-server`).
    pub inner: Option<Box<StackClass>>,
}

/// Classifies a stack: the first signature, in table order, with a matching frame, and its
/// innermost matching frame. Reliable frames first; `?` frames only when no reliable frame
/// matches anything (on some kernels every frame of a trace is marked `?`).
pub(crate) fn classify_frames(frames: &[Frame<'_>]) -> Option<StackClass> {
    classify_among(frames, &[])
}

/// [`classify_frames`] without the signatures whose ids are in `skip`.
fn classify_among(frames: &[Frame<'_>], skip: &[&str]) -> Option<StackClass> {
    let table = &catalog().stack_signature;
    for unreliable_too in [false, true] {
        let considered = |frame: &Frame<'_>| {
            (frame.reliable || unreliable_too) && !frame.function.starts_with("__pfx_")
        };
        let found = table
            .iter()
            .filter(|signature| !skip.contains(&signature.id.as_str()))
            .find_map(|signature| {
                frames
                    .iter()
                    .position(|f| considered(f) && signature.matches_frame(f.function, f.module))
                    .map(|index| (signature, index))
            });
        let Some((signature, index)) = found else {
            continue;
        };
        let site = signature
            .names_site
            .then(|| site_after(frames, index, unreliable_too))
            .flatten()
            .map(str::to_string);
        let inner = signature.inner_without.as_ref().and_then(|without| {
            let mut skip: Vec<&str> = skip.to_vec();
            skip.push(&signature.id);
            skip.extend(without.iter().map(String::as_str));
            classify_among(frames, &skip).map(Box::new)
        });
        return Some(StackClass {
            signature,
            index,
            frame: frames[index].function.to_string(),
            site,
            from_unreliable: unreliable_too,
            inner,
        });
    }
    None
}

/// The first frame after `index` that is not a lock or scheduling function: the caller that
/// took the lock.
fn site_after<'a>(frames: &[Frame<'a>], index: usize, unreliable_too: bool) -> Option<&'a str> {
    let lock = catalog().stack_signature("lock-wait");
    frames[index + 1..]
        .iter()
        .filter(|f| f.reliable || unreliable_too)
        .map(|f| f.function)
        .find(|function| {
            let base = base_function(function);
            !function.starts_with("__pfx_")
                && !SCHEDULING_FRAMES.contains(&base)
                && !lock.is_some_and(|l| l.matches(base))
        })
}

/// Classifies the call trace of a blocked-task report from the kernel log with the same
/// signature table as live stacks. `None` when no signature matches: an unknown stack is
/// shown, not guessed at.
pub fn classify_trace(report: &BlockedTaskReport) -> Option<StackClass> {
    let frames: Vec<Frame<'_>> = report.frames.iter().map(Frame::from).collect();
    classify_frames(&frames)
}

/// The explanation, fix, evidence and references for a blocked-task report of the kernel
/// log classified as `class`, from the log alone: what needs the live system (the FUSE
/// daemon, the freezer state, a vfork child) is named as not known from the log.
pub fn describe_trace(report: &BlockedTaskReport, class: &StackClass) -> Description {
    let pid = report.pid.to_string();
    describe_trace_shown_by(
        report,
        class,
        shell_command!("dmesg | grep -F -- {}", format!(":{pid} ").as_str()),
    )
}

/// The top frames of a report's call trace, innermost first (`a ← b ← c`): the reliable
/// ones, and the `?` ones too when `unreliable_too`.
pub(crate) fn trace_line(
    report: &BlockedTaskReport,
    unreliable_too: bool,
    frames: usize,
) -> String {
    let kept: Vec<StackFrame> = report
        .frames
        .iter()
        .filter(|f| f.reliable || unreliable_too)
        .map(|f| StackFrame {
            function: f.function.clone(),
            offset: f.offset.clone(),
            module: f.module.clone(),
        })
        .collect();
    stack_line(&kept, frames)
}

/// [`describe_trace`], its first evidence shown by `shown_by` (the log's own command: `dmesg`
/// for this host's, `grep` on a file).
pub(crate) fn describe_trace_shown_by(
    report: &BlockedTaskReport,
    class: &StackClass,
    shown_by: Result<ShellCommand, Unquotable>,
) -> Description {
    let pid = report.pid.to_string();
    let (inner, inner_fix) = inner_text(class.inner.as_deref(), &pid, &report.comm);
    let mut values: Vec<(&str, String)> = vec![
        ("pid", pid.clone()),
        ("comm", report.comm.clone()),
        ("frame", class.frame.clone()),
        (
            "lock_site",
            class
                .site
                .clone()
                .unwrap_or_else(|| "an unknown caller".into()),
        ),
        ("inner", inner),
        ("inner_fix", inner_fix),
    ];
    values.extend(placeholders_unknown_from_the_log());
    let pairs: Vec<(&str, &str)> = values.iter().map(|(k, v)| (*k, v.as_str())).collect();

    let mut evidence = Vec::new();
    let waited = match report.blocked_secs {
        Some(secs) => format!(
            "the kernel reported {} (pid {pid}) blocked{} for more than {secs} s",
            report.comm,
            if report.in_io_wait {
                " in I/O wait"
            } else {
                ""
            }
        ),
        None => format!(
            "the kernel listed {} (pid {pid}) among the tasks in uninterruptible sleep",
            report.comm
        ),
    };
    evidence.push(Evidence::new(waited, shown_by));
    if let Some(release) = &report.kernel_release {
        let taint = match report.taint.as_deref() {
            Some("") | None => "not tainted".to_string(),
            Some(flags) => format!("tainted {flags}"),
        };
        evidence.push(Evidence::fact(format!("kernel {release}, {taint}")));
    }
    if let Some(work) = &report.workqueue {
        evidence.push(Evidence::fact(format!("running the work {work}")));
    }
    evidence.push(Evidence::fact(format!(
        "its call trace: {}",
        trace_line(report, class.from_unreliable, 8)
    )));
    let mut decided = format!("decided by {}: {}", class.frame, class.signature.title);
    if let Some(site) = &class.site {
        decided.push_str(&format!(", entered from {site}"));
    }
    if class.from_unreliable {
        decided.push_str(" (only frames the unwinder marked unreliable, `?`, matched)");
    }
    evidence.push(Evidence::fact(decided));
    if let Some(inner) = &class.inner {
        evidence.push(Evidence::fact(format!(
            "what it waits for in turn: {} ({})",
            inner.signature.title, inner.frame
        )));
    }
    if let Some(blocker) = &report.blocker {
        let owner = match (&blocker.owner_comm, blocker.owner_pid) {
            (Some(comm), Some(owner)) => format!("{comm} (pid {owner})"),
            _ => "not found by the kernel".to_string(),
        };
        let mut fact = format!("the kernel names the likely holder of the lock: {owner}");
        if !blocker.owner_frames.is_empty() {
            let owner_stack: Vec<StackFrame> = blocker
                .owner_frames
                .iter()
                .filter(|f| f.reliable)
                .map(|f| StackFrame {
                    function: f.function.clone(),
                    offset: None,
                    module: f.module.clone(),
                })
                .collect();
            fact.push_str(&format!(", whose trace is {}", stack_line(&owner_stack, 6)));
        }
        evidence.push(Evidence::fact(fact));
    }
    Description {
        explanation: render(&class.signature.explanation, &pairs),
        fix: render(&class.signature.fix, &pairs),
        evidence,
        references: class.signature.references.clone(),
    }
}

/// Values for the placeholders that a live reading fills (the freezer, the FUSE daemon, the
/// vfork child, the memory-map lock holders) when only the log is there.
fn placeholders_unknown_from_the_log() -> Vec<(&'static str, String)> {
    [
        (
            "freezer",
            "its cgroup (the freezer state is not in the log)",
        ),
        (
            "thaw_command",
            "echo THAWED > /sys/fs/cgroup/freezer/PATH/freezer.state",
        ),
        ("mount", "a FUSE mount (which one is not in the log)"),
        ("mount_point", "MOUNTPOINT"),
        ("connection", "N"),
        (
            "daemon",
            "Which daemon serves it is not in the log: look for the holder of /dev/fuse.",
        ),
        ("daemon_short", "not known from the log"),
        ("child", "its state is not in the log"),
        ("child_short", "the child"),
        ("child_pid", "CHILD"),
        ("fault", ""),
        ("holders", ""),
        ("holders_short", "not known from the log"),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_string()))
    .collect()
}

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
    let stack: Vec<Frame<'_>> = process
        .kernel_stack
        .as_ref()?
        .iter()
        .map(Frame::from)
        .collect();
    classify_frames(&stack).map(|m| Classification {
        signature: m.signature,
        frame: m.frame,
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

/// The site of a lock wait: the first frame below the lock functions.
fn lock_site(stack: &[StackFrame]) -> Option<&str> {
    let frames: Vec<Frame<'_>> = stack.iter().map(Frame::from).collect();
    let lock = catalog().stack_signature("lock-wait")?;
    let index = frames
        .iter()
        .position(|f| lock.matches_frame(f.function, f.module))?;
    site_after(&frames, index, false)
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
#[derive(Clone, Debug)]
pub struct Description {
    /// Why the task is stuck (the signature's template, filled in).
    pub explanation: String,
    /// What to do.
    pub fix: String,
    /// The facts that show it.
    pub evidence: Vec<Evidence>,
    /// Where to read more.
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
                    shell_command!("cat {}", freezer.state_file()),
                ));
                values.push(("freezer", format!("{} is {}", freezer.path, freezer.state)));
                values.push(("thaw_value", freezer.thaw_value().to_string()));
                values.push(("freezer_file", freezer.state_file()));
            } else {
                values.push(("freezer", "its cgroup".into()));
                values.push(("thaw_value", "THAWED".into()));
                values.push((
                    "freezer_file",
                    "/sys/fs/cgroup/freezer/PATH/freezer.state".into(),
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
                    shell_command!(
                        "grep -F -- {} /proc/{}/mountinfo",
                        format!(" {} ", mountinfo_escaped(&m.mount_point)),
                        process.pid
                    ),
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
                        shell_command!("ls -l /proc/*/fd 2>/dev/null | grep /dev/fuse"),
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
                        shell_command!("ls -l /proc/*/fd 2>/dev/null | grep /dev/fuse"),
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
                        shell_command!("cat /proc/{}/stat /proc/{}/wchan", c.pid, c.pid),
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
                    shell_command!("timeout 5 cat /proc/{}/cmdline", process.pid),
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
                    shell_command!(
                        "cat /proc/{}/stack; ls -l /proc/{}/fd | grep /mem",
                        reader.pid,
                        reader.pid
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
        "nfs-server" => {
            let frames: Vec<Frame<'_>> = stack.iter().map(Frame::from).collect();
            let inner = classify_frames(&frames).and_then(|m| m.inner);
            let (what, fix) = inner_text(inner.as_deref(), &pid, &process.comm);
            values.push(("inner", what));
            values.push(("inner_fix", fix));
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

/// A path as /proc/PID/mountinfo shows it: the kernel writes space, tab, newline and
/// backslash as octal escapes (`\040`).
fn mountinfo_escaped(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        match c {
            ' ' | '\t' | '\n' | '\\' => out.push_str(&format!("\\{:03o}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// What a server thread waits for, and what to do about it, from the classification of its
/// stack without the server signature: `("a kernel lock taken in nfs4_lock_state", "…")`.
fn inner_text(inner: Option<&StackClass>, pid: &str, comm: &str) -> (String, String) {
    let Some(inner) = inner else {
        return (
            "its stack matches nothing else in nodedoc's table".to_string(),
            "read its stack.".to_string(),
        );
    };
    let site = inner.site.as_deref().unwrap_or("an unknown caller");
    let values = [
        ("pid", pid),
        ("comm", comm),
        ("frame", inner.frame.as_str()),
        ("lock_site", site),
    ];
    let what = match &inner.site {
        Some(site) => format!(
            "{} ({}, taken in {site})",
            inner.signature.title, inner.frame
        ),
        None => format!("{} ({})", inner.signature.title, inner.frame),
    };
    (what, render(inner.signature.fix.trim(), &values))
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
        // The NFS server's own functions (`nfs4_lock_state [nfsd]`) are not network waits.
        .filter(|f| f.module.as_deref() != Some("nfsd"))
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

    /// Classifies a `/proc/PID/stack`-style text with trace frames (`?` allowed).
    fn trace(text: &str) -> Option<(String, String, Option<String>)> {
        let frames: Vec<TraceFrame> = text
            .lines()
            .map(|l| nodedoc_kmsg::parse_trace_frame(l).unwrap_or_else(|| panic!("{l}")))
            .collect();
        let report = BlockedTaskReport {
            frames,
            ..BlockedTaskReport::default()
        };
        classify_trace(&report).map(|c| (c.signature.id.clone(), c.frame, c.site))
    }

    fn class_of(text: &str) -> Option<String> {
        trace(text).map(|(id, _, _)| id)
    }

    /// The table before issue 10 matched `nfs4_` and `__nfs` anywhere: nfsd's own state
    /// mutex (built in, so no `[nfsd]` tag) was taken for an NFS client, and the SRE sent to
    /// the NFS server's server.
    #[test]
    fn nfsd_in_its_own_nfs4_code_is_the_server_not_a_client() {
        let built_in = "schedule+0x29/0x70
schedule_preempt_disabled+0xe/0x10
__mutex_lock_slowpath+0x1a4/0x240
mutex_lock+0x23/0x40
nfs4_lock_state+0x15/0x20
nfsd4_renew+0x49/0xb0
nfsd4_proc_compound+0x3f1/0x580
nfsd_dispatch+0xa8/0x1b0
svc_process+0x112/0x160
nfsd+0xbf/0x130";
        assert_eq!(
            trace(built_in),
            Some(("nfs-server".into(), "nfs4_lock_state".into(), None))
        );
        // nfsd's functions that start like the client's never match the client.
        for function in [
            "__nfsd_open+0x1/0x2",
            "nfs4_preprocess_stateid_op+0x1/0x2 [nfsd]",
        ] {
            assert_ne!(
                class_of(function).as_deref(),
                Some("network-filesystem"),
                "{function}"
            );
        }
        // With only lock frames and nfsd's module tag, still the server.
        assert_eq!(
            class_of("__mutex_lock+0x1/0x2\nnfsd_file_acquire+0x1/0x2 [nfsd]").as_deref(),
            Some("nfs-server")
        );
        // nfsd writing to its exported filesystem waits for the disk: the inner wait.
        let frames: Vec<TraceFrame> = ["io_schedule+0x1/0x2", "nfsd_vfs_write+0x1/0x2 [nfsd]"]
            .iter()
            .map(|l| nodedoc_kmsg::parse_trace_frame(l).unwrap())
            .collect();
        let report = BlockedTaskReport {
            frames,
            ..BlockedTaskReport::default()
        };
        let class = classify_trace(&report).unwrap();
        assert_eq!(class.signature.id, "nfs-server");
        assert_eq!(class.inner.unwrap().signature.id, "block-io");
    }

    #[test]
    fn network_filesystem_clients() {
        let cases = [
            // NFSv4 client, module-tagged.
            "rpc_wait_bit_killable+0x1e/0x90 [sunrpc]\n__rpc_execute+0x101/0x3e0 [sunrpc]\nnfs4_proc_getattr+0x73/0x90 [nfsv4]",
            // NFS client locking through lockd's client half (nlmclnt_, module lockd).
            "rpc_wait_bit_killable+0x2c/0xc0 [sunrpc]\nnlmclnt_call+0xb8/0x2c8 [lockd]\nnfs3_proc_lock+0x4c/0xe8 [nfsv3]",
            // SMB client.
            "wait_for_response+0x9d/0xd0 [cifs]\ncompound_send_recv+0x3b2/0x7a0 [cifs]\nsmb2_query_path_info+0x7f/0x100 [cifs]",
            // The seed's ceph client.
            "__ceph_do_pending_vmtruncate+0x4e/0x260 [ceph]\nceph_setattr+0x4c/0x80 [ceph]",
            // 9p.
            "p9_client_rpc+0x1/0x2 [9pnet]",
        ];
        for case in cases {
            assert_eq!(
                class_of(case).as_deref(),
                Some("network-filesystem"),
                "{case}"
            );
        }
    }

    /// syncfs(2), umount and freeze wait in sync_inodes_sb for one filesystem; the table
    /// used to call that "sync() across every filesystem on the host".
    #[test]
    fn syncfs_of_one_filesystem_is_not_sync_of_all() {
        let syncfs = "wait_for_completion+0x96/0x100\nsync_inodes_sb+0xa8/0x1c0\nsync_filesystem+0x6b/0xb0\nSyS_syncfs+0x4a/0x90";
        assert_eq!(class_of(syncfs).as_deref(), Some("writeback-wait"));
        let sync =
            "call_rwsem_down_read_failed+0x18/0x30\niterate_supers+0xa2/0x110\nsys_sync+0x44/0xb0";
        assert_eq!(class_of(sync).as_deref(), Some("sync-all-filesystems"));
        let sync_waiting = "wb_wait_for_completion+0x1/0x2\nsync_inodes_one_sb+0x1/0x2\niterate_supers+0x1/0x2\nksys_sync+0x1/0x2";
        assert_eq!(
            class_of(sync_waiting).as_deref(),
            Some("sync-all-filesystems")
        );
    }

    #[test]
    fn journals_freezer_and_rcu() {
        let xfs = "xlog_wait+0x1/0x2 [xfs]\n_xfs_log_force_lsn+0x1/0x2 [xfs]\nxfs_file_fsync+0x1/0x2 [xfs]";
        assert_eq!(
            trace(xfs).map(|t| (t.0, t.1)),
            Some(("fs-journal".into(), "xlog_wait".into()))
        );
        let ext4 = "wait_transaction_locked+0x8a/0xd0 [jbd2]\nadd_transaction_credits+0x1c0/0x2a0 [jbd2]\nstart_this_handle+0x10a/0x510 [jbd2]";
        assert_eq!(class_of(ext4).as_deref(), Some("fs-journal"));
        // The journal thread writing its commit waits for the disk.
        let jbd2 = "io_schedule+0x16/0x40\nbit_wait_io+0x11/0x50\njbd2_journal_commit_transaction+0x1181/0x1500 [jbd2]\nkjournald2+0xc2/0x260 [jbd2]";
        assert_eq!(class_of(jbd2).as_deref(), Some("block-io"));
        let frozen = "__refrigerator+0x4a/0x140\nget_signal+0x7c5/0x8a0\narch_do_signal_or_restart+0x2f/0x250";
        assert_eq!(class_of(frozen).as_deref(), Some("frozen-cgroup"));
        let rcu = "schedule+0x1/0x2\nsynchronize_rcu_expedited+0x1/0x2\nsynchronize_net+0x1/0x2";
        assert_eq!(class_of(rcu).as_deref(), Some("rcu-grace-period"));
        // A mutex taken in rcu_barrier is a lock wait, entered from rcu_barrier.
        let barrier = "__mutex_lock+0x1/0x2\nrcu_barrier+0x1/0x2\nnetdev_run_todo+0x1/0x2";
        assert_eq!(
            trace(barrier),
            Some((
                "lock-wait".into(),
                "__mutex_lock".into(),
                Some("rcu_barrier".into())
            ))
        );
    }

    #[test]
    fn reliable_frames_decide_and_compiler_suffixes_do_not_matter() {
        // A stale `? io_schedule` left on the stack does not make a lock wait block I/O.
        let stale = "? io_schedule+0x1/0x2\nrwsem_down_write_slowpath+0x1/0x2\ndown_write+0x1/0x2\ndo_unlinkat+0x1/0x2";
        assert_eq!(
            trace(stale),
            Some((
                "lock-wait".into(),
                "rwsem_down_write_slowpath".into(),
                Some("do_unlinkat".into())
            ))
        );
        // When nothing reliable matches, `?` frames do.
        assert_eq!(
            class_of("? io_schedule_timeout+0xb4/0x130\n? bit_wait+0x1/0x2").as_deref(),
            Some("block-io")
        );
        // `__pfx_` labels are padding, never a frame.
        assert_eq!(class_of("? __pfx_rpc_wait_bit_killable+0x10/0x10"), None);
        // Lock sites skip lock and scheduling frames, clones included.
        let cloned = "__mutex_lock.constprop.0+0x1/0x2\n__mutex_lock_slowpath+0x1/0x2\nmutex_lock+0x1/0x2\nrtnl_lock+0x1/0x2";
        assert_eq!(
            trace(cloned).and_then(|t| t.2).as_deref(),
            Some("rtnl_lock")
        );
        let ldsem = "schedule_timeout+0x1/0x2\n? check_preemption_disabled+0x1/0x2\nldsem_down_write+0x1/0x2\n? ldsem_down_read+0x1/0x2\ntty_ldisc_lock_pair_timeout+0x1/0x2";
        assert_eq!(
            trace(ldsem).and_then(|t| t.2).as_deref(),
            Some("tty_ldisc_lock_pair_timeout")
        );
    }

    #[test]
    fn in_network_code_skips_the_nfs_server() {
        let server =
            stack("[<0>] nfs4_lock_state+0x15/0x20 [nfsd]\n[<0>] nfsd4_renew+0x49/0xb0 [nfsd]");
        assert_eq!(in_network_code(&server), None);
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
