use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use nodedoc_model::{
    BlockedSyscall, Gaps, NamespaceIds, Process, SocketResolution, StackFrame, TaskState,
};

use crate::census::{census, CensusRequest, NetTables, ResolutionMode};
use crate::memory_map::{Guarded, MemoryMapReader};
use crate::parse::{
    parse_cgroup, parse_cmdline, parse_environ_selected, parse_limits_nofile, parse_namespace_link,
    parse_stack, parse_stat, parse_status, parse_syscall, parse_wchan, Stat, PF_KTHREAD,
};
use crate::{read_at, ProcRoot, ReadError};

const SOURCE: &str = "procfs";

/// What a scan reads.
pub struct ScanOptions<'a> {
    /// Take an fd census of every process.
    pub fd_census: bool,
    /// How the census resolves socket protocols.
    pub resolution: ResolutionMode,
    /// Worker threads (at least 1).
    pub threads: usize,
    /// Read `/proc/PID/stack` and `/proc/PID/syscall` for the processes this returns true
    /// for (it sees everything else already read). Stacks cost a lock in the kernel per task,
    /// so only suspects get one.
    pub wants_kernel_detail: &'a (dyn Fn(&Process) -> bool + Sync),
    /// Environment variables to keep, by name prefix (`CNI_`). Everything else in
    /// `/proc/PID/environ` is discarded while it is parsed; empty skips the file.
    pub environment_prefixes: &'a [&'a str],
    /// How long reading one process's `cmdline` and `environ` may take before the scan gives
    /// up on them: those reads wait for the process's memory-map lock, which a stuck task can
    /// hold forever (the reason `ps` hangs on a sick node).
    pub memory_map_deadline: Duration,
}

impl Default for ScanOptions<'_> {
    fn default() -> Self {
        ScanOptions {
            fd_census: true,
            resolution: ResolutionMode::Auto,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            wants_kernel_detail: &|p: &Process| p.state == TaskState::UninterruptibleSleep,
            environment_prefixes: &[],
            memory_map_deadline: DEFAULT_MEMORY_MAP_DEADLINE,
        }
    }
}

/// Long enough that a busy 2-core host does not trip it (a normal read takes microseconds),
/// short enough that a stuck process costs one pause, not the diagnosis.
pub const DEFAULT_MEMORY_MAP_DEADLINE: Duration = Duration::from_secs(2);

/// The result of a scan.
#[derive(Debug, Default)]
pub struct ProcessScan {
    /// The processes read, by pid.
    pub processes: Vec<Process>,
    /// What could not be read.
    pub gaps: Gaps,
    /// Processes that exited between the listing and their reading.
    pub vanished: u64,
}

impl ProcessScan {
    /// How many processes' sockets were resolved each way (for the report's one line).
    pub fn resolution_counts(&self) -> Vec<(SocketResolution, usize)> {
        let mut counts = std::collections::BTreeMap::new();
        for census in self.processes.iter().filter_map(|p| p.fds.as_ref()) {
            *counts.entry(census.socket_resolution).or_insert(0) += 1;
        }
        counts.into_iter().collect()
    }
}

/// Reads every process under `root`, on `options.threads` threads.
pub fn scan(root: &ProcRoot, options: &ScanOptions<'_>) -> Result<ProcessScan, ReadError> {
    let pids = root.pids()?;
    let tables = NetTables::default();
    let next = AtomicUsize::new(0);
    // More threads than processes would only wait.
    let threads = options.threads.clamp(1, pids.len().max(1));
    let worker = || {
        let mut part = ProcessScan::default();
        let mut buf = Vec::with_capacity(4096);
        let mut memory_map = MemoryMapReader::new(options.memory_map_deadline);
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(&pid) = pids.get(i) else { break };
            // Every thread is already busy with a process of its own: splitting one process's
            // census further would only add contention.
            let read = read_process_with(
                root,
                pid,
                options,
                &tables,
                1,
                &mut part.gaps,
                &mut buf,
                &mut memory_map,
            );
            match read {
                Ok(process) => part.processes.push(process),
                Err(e) if e.is_vanished() => part.vanished += 1,
                Err(e) => part
                    .gaps
                    .record(SOURCE, "/proc/PID/stat", e.reason(), pid.to_string()),
            }
        }
        part
    };
    let mut result = if threads == 1 {
        worker()
    } else {
        std::thread::scope(|scope| {
            // When the system refuses a thread (its thread or memory limit), the ones already
            // started share the work; with none, this thread does it. Never a panic.
            let handles: Vec<_> = (0..threads)
                .map_while(|_| std::thread::Builder::new().spawn_scoped(scope, worker).ok())
                .collect();
            let mut all = if handles.is_empty() {
                worker()
            } else {
                ProcessScan::default()
            };
            for handle in handles {
                let part = handle.join().expect("procfs scan worker panicked");
                all.processes.extend(part.processes);
                all.gaps.merge(part.gaps);
                all.vanished += part.vanished;
            }
            all
        })
    };
    result.processes.sort_by_key(|p| p.pid);
    if result.vanished > 0 {
        let n = result.vanished;
        for _ in 0..n {
            result
                .gaps
                .record(SOURCE, "/proc/PID", "exited during the scan", "");
        }
    }
    Ok(result)
}

/// Reads one process (with a census on a single thread). Useful for `nodedoc fds PID`.
pub fn read_process(
    root: &ProcRoot,
    pid: i32,
    options: &ScanOptions<'_>,
    gaps: &mut Gaps,
) -> Result<Process, ReadError> {
    let tables = NetTables::default();
    let mut buf = Vec::new();
    let mut memory_map = MemoryMapReader::new(options.memory_map_deadline);
    read_process_with(
        root,
        pid,
        options,
        &tables,
        options.threads,
        gaps,
        &mut buf,
        &mut memory_map,
    )
}

pub(crate) fn read_stat(
    root: &ProcRoot,
    dir: BorrowedFd<'_>,
    pid: i32,
    buf: &mut Vec<u8>,
) -> Result<Stat, ReadError> {
    read_at(dir, c"stat", buf).map_err(|e| ReadError::from_io(root.display(pid, "stat"), e))?;
    parse_stat(buf).map_err(|what| ReadError::parse(root.display(pid, "stat"), Some(1), what))
}

#[allow(clippy::too_many_arguments)]
fn read_process_with(
    root: &ProcRoot,
    pid: i32,
    options: &ScanOptions<'_>,
    tables: &NetTables,
    census_threads: usize,
    gaps: &mut Gaps,
    buf: &mut Vec<u8>,
    memory_map: &mut MemoryMapReader,
) -> Result<Process, ReadError> {
    let dir_fd = root.open_pid(pid)?;
    let dir = dir_fd.as_fd();
    let sampled_at_us = crate::monotonic_us();
    let stat = read_stat(root, dir, pid, buf)?;
    let state = TaskState::from_letter(stat.state);
    let kernel_thread = stat.flags & PF_KTHREAD != 0;
    let zombie = state == TaskState::Zombie;
    let mut process = Process {
        pid,
        ppid: stat.ppid,
        comm: stat.comm,
        cmdline: Vec::new(),
        state,
        start_time_ticks: stat.start_time,
        uid: None,
        threads: stat.num_threads,
        kernel_thread,
        nofile: None,
        namespaces: NamespaceIds::default(),
        cgroups: Vec::new(),
        wchan: None,
        utime_ticks: stat.utime,
        stime_ticks: stat.stime,
        sampled_at_us,
        fds: None,
        kernel_stack: None,
        nspid: Vec::new(),
        environment: Default::default(),
        syscall: None,
        sigkill_pending: false,
        memory_map_blocked: false,
        context_switches: None,
    };

    // Each optional read records a gap on failure, except when the process is simply gone:
    // then the whole process is dropped as vanished.
    let optional = |what: &'static str,
                    result: Result<(), ReadError>,
                    gaps: &mut Gaps|
     -> Result<(), ReadError> {
        match result {
            Ok(()) => Ok(()),
            Err(e) if e.is_vanished() && !process_alive(dir) => Err(e),
            // The process is there but this part of it is gone: an exiting task has already
            // dropped its namespaces and files.
            Err(e) if e.is_vanished() => {
                gaps.record(SOURCE, what, "gone (the task is exiting)", pid.to_string());
                Ok(())
            }
            Err(e) => {
                gaps.record(SOURCE, what, e.reason(), pid.to_string());
                Ok(())
            }
        }
    };

    let status = read_at(dir, c"status", buf)
        .map_err(|e| ReadError::from_io(root.display(pid, "status"), e))
        .and_then(|()| {
            parse_status(&String::from_utf8_lossy(buf)).map_err(|(line, what)| {
                ReadError::parse(root.display(pid, "status"), Some(line), what)
            })
        })
        .map(|status| {
            process.uid = Some(status.uid);
            process.nspid = status.nspid;
            process.sigkill_pending = status.sigkill_pending;
            process.context_switches = status.context_switches;
        });
    optional("/proc/PID/status", status, gaps)?;

    let wchan = read_at(dir, c"wchan", buf)
        .map_err(|e| ReadError::from_io(root.display(pid, "wchan"), e))
        .map(|()| process.wchan = parse_wchan(buf));
    optional("/proc/PID/wchan", wchan, gaps)?;

    if kernel_thread {
        return Ok(process);
    }

    let cgroup = read_at(dir, c"cgroup", buf)
        .map_err(|e| ReadError::from_io(root.display(pid, "cgroup"), e))
        .map(|()| process.cgroups = parse_cgroup(&String::from_utf8_lossy(buf)).0);
    optional("/proc/PID/cgroup", cgroup, gaps)?;

    // A zombie has released its memory, files and namespaces: nothing more to read, and
    // their absence is not a gap.
    if zombie {
        return Ok(process);
    }

    let want_environ = !options.environment_prefixes.is_empty();
    let files: &[&'static std::ffi::CStr] = if want_environ {
        &[c"cmdline", c"environ"]
    } else {
        &[c"cmdline"]
    };
    // Only a task of the process itself can be the writer everyone queues behind (or, rarely,
    // a vfork child sharing its memory, which then shows D as well). A single-threaded process
    // that is not in D has no such writer, and reading it directly saves the helper thread's
    // two context switches (a quarter of a whole-host check with 1,000 processes here).
    let may_block = stat.num_threads > 1 || state == TaskState::UninterruptibleSleep;
    match memory_map.read(dir, files, may_block) {
        Guarded::Read(mut results) => {
            let environ = want_environ.then(|| results.pop()).flatten();
            if let Some(cmdline) = results.pop() {
                let cmdline = cmdline
                    .map_err(|e| ReadError::from_io(root.display(pid, "cmdline"), e))
                    .map(|bytes| process.cmdline = parse_cmdline(&bytes));
                optional("/proc/PID/cmdline", cmdline, gaps)?;
            }
            if let Some(environ) = environ {
                let environ = environ
                    .map_err(|e| ReadError::from_io(root.display(pid, "environ"), e))
                    .map(|bytes| {
                        process.environment =
                            parse_environ_selected(&bytes, options.environment_prefixes)
                    });
                optional("/proc/PID/environ", environ, gaps)?;
            }
        }
        Guarded::Blocked => {
            process.memory_map_blocked = true;
            gaps.record(
                SOURCE,
                "/proc/PID/cmdline",
                format!(
                    "blocked for {} s: its memory-map lock is held (ps hangs on it too)",
                    options.memory_map_deadline.as_secs_f32()
                ),
                pid.to_string(),
            );
        }
    }

    let limits = read_at(dir, c"limits", buf)
        .map_err(|e| ReadError::from_io(root.display(pid, "limits"), e))
        .and_then(|()| {
            parse_limits_nofile(&String::from_utf8_lossy(buf)).map_err(|(line, what)| {
                ReadError::parse(root.display(pid, "limits"), Some(line), what)
            })
        })
        .map(|limit| process.nofile = Some(limit));
    optional("/proc/PID/limits", limits, gaps)?;

    let mut link = [std::mem::MaybeUninit::<u8>::uninit(); 64];
    for (name, slot) in [
        (c"ns/pid", &mut process.namespaces.pid),
        (c"ns/net", &mut process.namespaces.net),
        (c"ns/mnt", &mut process.namespaces.mnt),
    ] {
        let read = rustix::fs::readlinkat_raw(dir, name, &mut link)
            .map_err(|e| ReadError::from_io(root.display(pid, &name.to_string_lossy()), e.into()))
            .and_then(|(target, _)| {
                parse_namespace_link(target)
                    .map(|(_, inode)| *slot = Some(inode))
                    .ok_or_else(|| {
                        ReadError::parse(root.display(pid, "ns"), None, "not ns:[inode]")
                    })
            });
        optional("/proc/PID/ns/*", read, gaps)?;
    }

    if options.fd_census {
        let request = CensusRequest {
            pid_dir: dir,
            pid,
            netns: process.namespaces.net,
            live: root.is_live(),
            mode: options.resolution,
            tables,
            threads: census_threads,
        };
        let result = census(&request).map(|c| process.fds = Some(c));
        optional("/proc/PID/fd", result, gaps)?;
    }

    if (options.wants_kernel_detail)(&process) {
        let stack = read_stack_at(root, dir, pid, buf).map(|s| process.kernel_stack = Some(s));
        optional("/proc/PID/stack", stack, gaps)?;
        let syscall = read_syscall_at(root, dir, pid, buf).map(|s| process.syscall = s);
        optional("/proc/PID/syscall", syscall, gaps)?;
    }
    Ok(process)
}

pub(crate) fn read_syscall_at(
    root: &ProcRoot,
    dir: BorrowedFd<'_>,
    pid: i32,
    buf: &mut Vec<u8>,
) -> Result<Option<BlockedSyscall>, ReadError> {
    read_at(dir, c"syscall", buf)
        .map_err(|e| ReadError::from_io(root.display(pid, "syscall"), e))?;
    let parsed = parse_syscall(&String::from_utf8_lossy(buf))
        .map_err(|what| ReadError::parse(root.display(pid, "syscall"), Some(1), what))?;
    let Some((number, args)) = parsed else {
        return Ok(None);
    };
    let mut syscall = BlockedSyscall {
        number,
        args,
        fd_target: None,
    };
    // /proc/PID/syscall is read on the machine that runs the task, so this build's
    // architecture names the numbers.
    if let Some(fd) = syscall.fd(std::env::consts::ARCH) {
        let name = format!("fd/{fd}");
        let mut link = [std::mem::MaybeUninit::<u8>::uninit(); 4096];
        if let Ok((target, _)) = rustix::fs::readlinkat_raw(dir, name.as_str(), &mut link) {
            syscall.fd_target = Some(String::from_utf8_lossy(target).into_owned());
        }
    }
    Ok(Some(syscall))
}

/// Reads the kernel stack and blocked system call of one process, for tasks a detector asks
/// about after the scan (the members of a pid namespace whose init is stuck, say).
pub fn read_kernel_detail(
    root: &ProcRoot,
    pid: i32,
) -> Result<(Vec<StackFrame>, Option<BlockedSyscall>), ReadError> {
    let dir = root.open_pid(pid)?;
    let mut buf = Vec::new();
    let stack = read_stack_at(root, dir.as_fd(), pid, &mut buf)?;
    let syscall = read_syscall_at(root, dir.as_fd(), pid, &mut buf)?;
    Ok((stack, syscall))
}

/// True while `/proc/PID` still answers: tells "this file is missing" from "the process
/// exited".
fn process_alive(dir: BorrowedFd<'_>) -> bool {
    rustix::fs::statat(dir, c"stat", rustix::fs::AtFlags::empty()).is_ok()
}

pub(crate) fn read_stack_at(
    root: &ProcRoot,
    dir: BorrowedFd<'_>,
    pid: i32,
    buf: &mut Vec<u8>,
) -> Result<Vec<StackFrame>, ReadError> {
    read_at(dir, c"stack", buf).map_err(|e| ReadError::from_io(root.display(pid, "stack"), e))?;
    Ok(parse_stack(&String::from_utf8_lossy(buf)))
}

/// Reads the kernel stack of one process (`/proc/PID/stack`).
pub fn read_stack(root: &ProcRoot, pid: i32) -> Result<Vec<StackFrame>, ReadError> {
    let dir = root.open_pid(pid)?;
    read_stack_at(root, dir.as_fd(), pid, &mut Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_this_live_host_and_finds_itself() {
        let root = ProcRoot::live().unwrap();
        let scan = scan(&root, &ScanOptions::default()).unwrap();
        let me = std::process::id() as i32;
        let process = scan
            .processes
            .iter()
            .find(|p| p.pid == me)
            .expect("own process");
        assert!(process.nofile.is_some());
        assert!(process.namespaces.net.is_some());
        let fds = process.fds.as_ref().expect("own census");
        assert!(fds.total >= 3);
        assert!(scan.processes.iter().any(|p| p.kernel_thread));
    }
}
