//! # `cni-plugin-hang`
//!
//! **Signature.** A process whose environment holds `CNI_COMMAND` (a CNI plugin run by the
//! container runtime or kubelet) alive longer than a threshold (default 10 s; plugins return
//! in milliseconds). Blocked reading fd 0 — `/proc/PID/syscall` a `read` on fd 0, fd 0 a pipe
//! or a tty, wchan `pipe_read`, `anon_pipe_read`, `n_tty_read` or `wait_woken` depending on the
//! kernel — during `VERSION` is the containernetworking/cni skel bug fixed in v0.7.0-alpha0
//! (2018): the library read stdin for every command, and `VERSION` gets none (seed 003).
//!
//! **Sources.** Only the `CNI_*` variables of `/proc/PID/environ`, the process's age, wchan,
//! kernel stack, blocked system call and what fd 0 is.
//!
//! **Evidence.** The command, container id, netns, interface, age, and where it blocks.

use nodedoc_model::{shell_command, Evidence, FdKind, Finding, Process, Severity, Subject};

use crate::stacks::stack_line;
use crate::{duration, Context, Detector, Signature};

/// See the module documentation.
pub struct CniPluginHang;

/// Kernel functions a reader of an empty pipe or a silent tty sleeps in, across kernels.
const STDIN_WAITS: &[&str] = &[
    "pipe_read",
    "anon_pipe_read",
    "pipe_wait",
    "pipe_wait_readable",
    "n_tty_read",
    "wait_woken",
];

/// True when the process waits for input on fd 0.
fn reads_stdin(process: &Process, machine: &str) -> bool {
    let stdin_is_pipe_or_tty = process
        .fds
        .as_ref()
        .and_then(|f| f.stdin.as_ref())
        .is_some_and(|k| matches!(k, FdKind::Pipe | FdKind::CharDevice | FdKind::NamedPipe));
    let read_on_fd0 = process
        .syscall
        .as_ref()
        .is_some_and(|s| s.name(machine) == Some("read") && s.args.first() == Some(&0));
    let waits_like_stdin = process
        .wchan
        .as_deref()
        .is_some_and(|w| STDIN_WAITS.contains(&w));
    stdin_is_pipe_or_tty && (read_on_fd0 || (process.syscall.is_none() && waits_like_stdin))
}

impl Detector for CniPluginHang {
    fn id(&self) -> &'static str {
        "cni-plugin-hang"
    }

    fn detect(&self, cx: &mut Context<'_>) {
        let snapshot = cx.snapshot;
        let machine = snapshot.host.machine.as_str();
        for process in &snapshot.processes {
            let Some(command) = process.environment.get("CNI_COMMAND") else {
                continue;
            };
            let Some(age) = snapshot.process_age_secs(process) else {
                continue;
            };
            if age < cx.config.cni_plugin_timeout_secs as f64 {
                continue;
            }
            let env = |name: &str| process.environment.get(name).map_or("?", String::as_str);
            let pid = process.pid;
            let blocked_on_stdin = reads_stdin(process, machine);
            let skel_bug = blocked_on_stdin && command == "VERSION";
            let mut finding = Finding::new(
                self.id(),
                Severity::Warning,
                Subject::process(process),
                format!(
                    "CNI plugin {} has run CNI_COMMAND={command} for {}{}",
                    process.label(),
                    duration(age),
                    if skel_bug {
                        "; it waits for stdin, the containernetworking/cni skel < 0.7.0 bug"
                    } else if blocked_on_stdin {
                        "; it waits for its configuration on stdin"
                    } else {
                        ""
                    }
                ),
            );
            finding.evidence.push(Evidence::new(
                format!(
                    "CNI_COMMAND={command} CNI_CONTAINERID={} CNI_NETNS={} CNI_IFNAME={}",
                    env("CNI_CONTAINERID"),
                    env("CNI_NETNS"),
                    env("CNI_IFNAME")
                ),
                shell_command!("tr '\\0' '\\n' < /proc/{}/environ | grep ^CNI_", pid),
            ));
            finding.evidence.push(Evidence::new(
                format!(
                    "running for {}: {}",
                    duration(age),
                    process.cmdline.join(" ")
                ),
                shell_command!("ps -o pid,etime,args -p {}", pid),
            ));
            if let Some(stdin) = process.fds.as_ref().and_then(|f| f.stdin.as_ref()) {
                finding.evidence.push(Evidence::new(
                    format!("fd 0 is a {stdin}"),
                    shell_command!("ls -l /proc/{}/fd/0", pid),
                ));
            }
            if let Some(syscall) = &process.syscall {
                let name = syscall.name(machine).unwrap_or("?");
                let fd = syscall
                    .fd(machine)
                    .map(|fd| format!("fd {fd}"))
                    .unwrap_or_default();
                finding.evidence.push(Evidence::new(
                    format!("blocked in {name}({fd})"),
                    shell_command!("cat /proc/{}/syscall", pid),
                ));
            }
            if let Some(wchan) = &process.wchan {
                finding.evidence.push(Evidence::new(
                    format!("sleeping in {wchan}"),
                    shell_command!("cat /proc/{}/wchan", pid),
                ));
            }
            if let Some(stack) = process.kernel_stack.as_deref().filter(|s| !s.is_empty()) {
                finding.evidence.push(Evidence::new(
                    format!("kernel stack: {}", stack_line(stack, 6)),
                    shell_command!("cat /proc/{}/stack", pid),
                ));
            }
            let where_text = if skel_bug {
                "It is blocked reading standard input, which the runtime keeps open and never writes for VERSION: the spec gives VERSION no input. Plugins built with containernetworking/cni's skel before v0.7.0-alpha0 (2018) read all of stdin for every command (ioutil.ReadAll(os.Stdin)), so VERSION hangs until stdin is closed; v0.7.0 stopped reading stdin for VERSION.".to_string()
            } else if blocked_on_stdin {
                "It is blocked reading standard input: the runtime that started it has not written its network configuration, or has not closed stdin after writing it.".to_string()
            } else {
                format!(
                    "It is not waiting for input; it is {}{}. The evidence shows where it blocks.",
                    process.state,
                    process
                        .wchan
                        .as_deref()
                        .map(|w| format!(" in {w}"))
                        .unwrap_or_default()
                )
            };
            let cni_fix = if skel_bug {
                format!(
                    "Upgrade the plugin's cni library (github.com/containernetworking/cni) to v0.7.0 or later and rebuild it; kill the hung call (`kill {pid}`); `nodedoc probe cni` shows which installed plugins hang on VERSION."
                )
            } else if blocked_on_stdin {
                format!("Look at the runtime that started it (parent pid {}): it must write the configuration and close stdin. Kill the hung plugin (`kill {pid}`) to let the runtime retry.", process.ppid)
            } else {
                format!("Find what the plugin waits for (its stack and system call above: an IPAM datastore such as etcd, a lock, the network); kill it (`kill {pid}`) to let the runtime retry.")
            };
            let pid_text = pid.to_string();
            let age_text = duration(age);
            // The command is the plugin's environment, anyone's text: only the spec's
            // commands name a signature.
            let known = ["ADD", "DEL", "CHECK", "VERSION", "GC", "STATUS"]
                .into_iter()
                .find(|c| c == command)
                .unwrap_or("other");
            let (why, why_text) = if skel_bug {
                (
                    "skel-stdin",
                    "they wait for stdin, the containernetworking/cni skel < 0.7.0 bug",
                )
            } else if blocked_on_stdin {
                ("stdin", "they wait for their configuration on stdin")
            } else {
                ("elsewhere", "they block outside stdin")
            };
            let signature = Signature::new(
                format!("{known}/{why}"),
                format!("{{count}} CNI plugins have run CNI_COMMAND={known} too long: {why_text}"),
                age as u64,
                "longest running first",
            );
            cx.emit_as(
                signature,
                finding,
                &[
                    ("pid", &pid_text),
                    ("comm", &process.comm),
                    ("command", command),
                    ("age", &age_text),
                    ("container", env("CNI_CONTAINERID")),
                    ("netns", env("CNI_NETNS")),
                    ("where", &where_text),
                    ("cni_fix", &cni_fix),
                ],
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{process, snapshot};
    use nodedoc_model::{BlockedSyscall, FdCensus, SocketResolution};

    fn plugin(command: &str, started_ticks: u64) -> Process {
        let mut p = process(900, "xxipam");
        p.start_time_ticks = started_ticks;
        p.environment.insert("CNI_COMMAND".into(), command.into());
        p.environment
            .insert("CNI_CONTAINERID".into(), "10f0451e1345".into());
        p.wchan = Some("anon_pipe_read".into());
        p.syscall = Some(BlockedSyscall {
            number: 0,
            args: vec![0, 0x7ffc, 512, 0, 0, 0],
            fd_target: Some("pipe:[7]".into()),
        });
        p.fds = Some(FdCensus {
            total: 3,
            kinds: vec![],
            socket_resolution: SocketResolution::NoSockets,
            namespace_fds: vec![],
            stdin: Some(FdKind::Pipe),
            ..Default::default()
        });
        p
    }

    fn x86_snapshot(processes: Vec<Process>) -> nodedoc_model::Snapshot {
        let mut snap = snapshot(processes);
        snap.host.machine = "x86_64".into();
        snap
    }

    #[test]
    fn seed_003_version_blocked_on_stdin_is_the_skel_bug() {
        // Uptime 10,000 s; started at tick 100 (1 s after boot): far past the threshold.
        let findings = crate::run(
            &x86_snapshot(vec![plugin("VERSION", 100)]),
            &Default::default(),
        );
        assert_eq!(findings.len(), 1);
        let f = &findings[0];
        assert_eq!(f.detector, "cni-plugin-hang");
        assert_eq!(f.pid, Some(900));
        assert!(f.summary.contains("skel < 0.7.0 bug"), "{}", f.summary);
        assert!(
            f.fix.contains("Upgrade the plugin's cni library"),
            "{}",
            f.fix
        );
        assert!(f.evidence.iter().any(|e| e.fact == "blocked in read(fd 0)"));
        assert!(f
            .evidence
            .iter()
            .any(|e| e.fact.contains("CNI_CONTAINERID=10f0451e1345")));
    }

    #[test]
    fn young_plugins_and_other_waits_are_told_apart() {
        // Started 2 s before the snapshot: not hung yet.
        let young = plugin("VERSION", 999_800);
        assert!(crate::run(&x86_snapshot(vec![young]), &Default::default()).is_empty());
        let mut add = plugin("ADD", 100);
        add.syscall = Some(BlockedSyscall {
            number: 202,
            args: vec![],
            fd_target: None,
        });
        add.wchan = Some("futex_wait_queue".into());
        let f = &crate::run(&x86_snapshot(vec![add]), &Default::default())[0];
        assert!(!f.summary.contains("stdin"), "{}", f.summary);
        assert!(
            f.explanation.contains("not waiting for input"),
            "{}",
            f.explanation
        );
    }
}
