//! The agent's round: a cheap reading of every process, and a full one only where something
//! changed or a detector looks.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use nodedoc_model::{Gaps, Process, ProcessKey, Snapshot, TaskState};
use nodedoc_procfs::{FdCountMethod, ProcRoot};

use crate::{
    complete, procfs_detail, wants_kernel_detail, CollectError, CollectOptions, Progress,
    FULL_EVERY,
};

/// What a round remembers of the previous ones.
#[derive(Debug, Default)]
pub(crate) struct ProcessCache {
    method: Option<FdCountMethod>,
    known: HashMap<ProcessKey, Process>,
    rounds: u64,
}

impl ProcessCache {
    /// Takes back the processes of the last round's snapshot.
    pub(crate) fn recycle(&mut self, processes: Vec<Process>) {
        self.known = processes.into_iter().map(|p| (p.key(), p)).collect();
    }
}

/// True when a task's state says a detector needs it read now.
fn suspect(state: TaskState) -> bool {
    matches!(state, TaskState::UninterruptibleSleep | TaskState::Zombie)
}

pub(crate) fn round(
    args: &CollectOptions,
    cache: &mut ProcessCache,
    watched: &HashSet<ProcessKey>,
    kernel_log: Result<nodedoc_model::KernelLog, nodedoc_kmsg::Error>,
    ovs: &mut dyn FnMut(&mut Snapshot, &mut Gaps),
    progress: &dyn Progress,
) -> Result<Snapshot, CollectError> {
    let started = Instant::now();
    let mut snapshot = Snapshot::new(nodedoc_procfs::host_info());
    let mut gaps = Gaps::new();

    progress.step("reading processes");
    let root = ProcRoot::live().map_err(CollectError::Procfs)?;
    let method = *cache
        .method
        .get_or_insert_with(|| nodedoc_procfs::fd_count_method(&root));
    let light = nodedoc_procfs::light_scan(&root, method).map_err(CollectError::Procfs)?;
    let options = crate::scan_options(args);
    let everyone = cache.rounds % FULL_EVERY == 0;
    let mut vanished = light.vanished;
    let mut read_in_full = 0usize;
    let mut processes = Vec::with_capacity(light.tasks.len());
    let mut resolutions: HashMap<nodedoc_model::SocketResolution, usize> = HashMap::new();
    for task in light.tasks {
        let key = ProcessKey {
            pid: task.pid,
            start_time_ticks: task.start_time_ticks,
        };
        let cached = cache.known.remove(&key);
        let moved = cached.as_ref().is_some_and(|p| {
            task.fd_count.is_some() && p.fds.as_ref().map(|f| f.total) != task.fd_count
        });
        let needs_full = everyone
            || cached.is_none()
            || moved
            || suspect(task.state)
            || watched.contains(&key)
            || cached.as_ref().is_some_and(wants_kernel_detail);
        if !needs_full {
            let mut process = cached.expect("cached when not read in full");
            process.ppid = task.ppid;
            process.comm = task.comm;
            process.state = task.state;
            process.utime_ticks = task.utime_ticks;
            process.stime_ticks = task.stime_ticks;
            process.threads = task.threads;
            process.sampled_at_us = task.sampled_at_us;
            // A stack read in an earlier round says nothing about now: the second look
            // reads it again for the tasks that need one.
            process.kernel_stack = None;
            process.syscall = None;
            processes.push(process);
            continue;
        }
        read_in_full += 1;
        match nodedoc_procfs::read_process(&root, task.pid, &options, &mut gaps) {
            Ok(process) if process.start_time_ticks == task.start_time_ticks => {
                if let Some(fds) = &process.fds {
                    *resolutions.entry(fds.socket_resolution).or_default() += 1;
                }
                processes.push(process);
            }
            // The pid was reused between the two reads: the task we listed is gone.
            Ok(_) => vanished += 1,
            Err(e) if e.is_vanished() => vanished += 1,
            Err(e) => gaps.record("procfs", "/proc/PID", e.reason(), task.pid.to_string()),
        }
    }
    processes.sort_by_key(|p| p.pid);
    // The processes go to the snapshot; `Collector::recycle` brings them back for the next
    // round (holding a copy here would double the agent's largest data).
    cache.known.clear();
    cache.rounds += 1;
    let process_count = processes.len();
    snapshot.processes = processes;
    let mut resolutions: Vec<_> = resolutions.into_iter().collect();
    resolutions.sort();
    let mut detail = procfs_detail(args, process_count, &resolutions, vanished);
    detail.push_str(&format!(
        "; {read_in_full} read in full this round, the others from their stat and descriptor count"
    ));
    complete(
        args,
        &root,
        snapshot,
        gaps,
        detail,
        crate::KernelLogInput::Read(Box::new(kernel_log)),
        ovs,
        started,
        progress,
        &|p| suspect(p.state),
    )
}
