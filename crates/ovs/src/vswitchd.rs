//! Finding the ovs-vswitchd that serves a database, its upcall threads and its log file.

use std::path::{Path, PathBuf};

use nodedoc_model::{Process, VswitchdProcess};

/// The process name (`/proc/PID/comm`).
pub const VSWITCHD_COMM: &str = "ovs-vswitchd";

/// Where packaged OVS keeps its pidfiles.
const PACKAGED_RUNDIRS: &[&str] = &["/run/openvswitch", "/var/run/openvswitch"];

fn comm_of(pid: i32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|c| c.trim_end().to_string())
}

fn start_time_of(pid: i32) -> Option<u64> {
    let stat = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    let close = stat.iter().rposition(|&b| b == b')')?;
    std::str::from_utf8(&stat[close + 1..])
        .ok()?
        .split_ascii_whitespace()
        .nth(19)?
        .parse()
        .ok()
}

/// Finds the ovs-vswitchd serving the database at `socket` (a unix socket path, when the
/// endpoint is one; `default_endpoint` when it is the packaged default).
///
/// In order: the pidfile beside the socket (ovs-vswitchd writes it in the same `OVS_RUNDIR`),
/// the packaged pidfiles (for the default endpoint), then the processes named
/// `ovs-vswitchd` whose command line names the socket — or, for the default endpoint, the one
/// running at all. With `--monitor`, two processes carry the name; the worker (the one with
/// threads) is the one wanted.
pub fn find(
    socket: Option<&Path>,
    default_endpoint: bool,
    processes: &[Process],
) -> Option<(i32, String)> {
    let mut pidfiles: Vec<PathBuf> = Vec::new();
    if let Some(dir) = socket.and_then(Path::parent) {
        pidfiles.push(dir.join("ovs-vswitchd.pid"));
    }
    if default_endpoint {
        pidfiles.extend(
            PACKAGED_RUNDIRS
                .iter()
                .map(|d| Path::new(d).join("ovs-vswitchd.pid")),
        );
    }
    for pidfile in pidfiles {
        let Ok(text) = std::fs::read_to_string(&pidfile) else {
            continue;
        };
        let Ok(pid) = text.trim().parse::<i32>() else {
            continue;
        };
        if comm_of(pid).as_deref() == Some(VSWITCHD_COMM) {
            return Some((pid, format!("pidfile {}", pidfile.display())));
        }
    }
    let candidates: Vec<&Process> = processes
        .iter()
        .filter(|p| p.comm == VSWITCHD_COMM && !p.kernel_thread)
        .collect();
    let names_socket = |p: &&Process| {
        socket.is_some_and(|s| {
            let s = s.to_string_lossy();
            p.cmdline.iter().any(|arg| arg.contains(s.as_ref()))
        })
    };
    let mut matching: Vec<&Process> = candidates.iter().copied().filter(names_socket).collect();
    if matching.is_empty() && default_endpoint {
        // Packaged daemons name the default socket implicitly (no argument, or `unix:` of
        // the default path, which the check above already matched).
        matching = candidates
            .iter()
            .copied()
            .filter(|p| !p.cmdline.iter().any(|a| a.starts_with("unix:")))
            .collect();
    }
    matching
        .into_iter()
        .max_by_key(|p| p.threads)
        .map(|p| (p.pid, "procfs (name and command line)".to_string()))
}

/// Reads ovs-vswitchd's threads: handlers and revalidators by name.
pub fn describe(pid: i32, found_by: String) -> Option<VswitchdProcess> {
    let start_time_ticks = start_time_of(pid)?;
    let mut process = VswitchdProcess {
        pid,
        start_time_ticks,
        found_by,
        ..VswitchdProcess::default()
    };
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            process.threads += 1;
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            let comm = comm.trim_end();
            // ovs-vswitchd names them handlerN and revalidatorN (N a global thread counter).
            if comm.starts_with("handler") {
                process.handler_threads += 1;
            } else if comm.starts_with("revalidator") {
                process.revalidator_threads += 1;
            }
        }
    }
    Some(process)
}

/// Finds ovs-vswitchd's log: the first of its open files that is a `.log` (read with
/// `readlink`, never opened through /proc, lowest fd first — the log is opened at startup),
/// else the `--log-file=PATH` argument. Returns the path and how it was found.
pub fn find_log(pid: i32, cmdline: &[String]) -> Option<(PathBuf, String)> {
    if let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
        let mut fds: Vec<u32> = entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect();
        fds.sort_unstable();
        for fd in fds {
            let Ok(target) = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")) else {
                continue;
            };
            let name = target.to_string_lossy();
            if name.starts_with('/') && name.ends_with(".log") && name.contains("vswitchd") {
                return Some((target, format!("open by ovs-vswitchd (fd {fd})")));
            }
        }
    }
    for arg in cmdline {
        if let Some(path) = arg.strip_prefix("--log-file=") {
            return Some((PathBuf::from(path), "ovs-vswitchd --log-file".to_string()));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_not_ovs_vswitchd() {
        let me = std::process::id() as i32;
        let described = describe(me, "test".into()).unwrap();
        assert!(described.threads >= 1);
        assert_eq!(described.handler_threads, 0);
        assert_eq!(
            find(Some(Path::new("/nonexistent/db.sock")), false, &[]),
            None
        );
        assert_eq!(
            find_log(me, &["--log-file=/x/ovs-vswitchd.log".into()])
                .unwrap()
                .0,
            PathBuf::from("/x/ovs-vswitchd.log")
        );
    }
}
