//! The second reading, and where a task stuck in `D` is blocked, read only once it is known to
//! be stuck.
//!
//! A task in `D` at two readings is not necessarily stuck: a process forking in a loop passes
//! through `D` (in `kernel_clone`, waiting for its vfork child) thousands of times a second,
//! and two readings catch it in two different waits; a stack read a moment later is of a third
//! moment (`do_wait`). Reading the stack during the first reading, as the scan once did, paired
//! one moment's wchan with another moment's stack. So, for each task in `D` at the first
//! reading:
//!
//! 1. the second reading must find the same process (pid and start time) in `D`, and it must
//!    not have run in between: its context-switch count (`voluntary_ctxt_switches` +
//!    `nonvoluntary_ctxt_switches`) has not moved — the test the kernel's own hung-task
//!    detector makes (`check_hung_task` in kernel/hung_task.c);
//! 2. only then are its wchan, kernel stack, system call and wchan again read;
//! 3. then its stat and context switches once more: still the same process, still in `D`,
//!    still not run, the same wchan both times, and a stack that holds that wchan. Otherwise the
//!    stack is discarded ([`BlockedCheck::StackDiscarded`]) and the task is not reported stuck.
//!
//! A check with a single reading (`--interval 0`) runs steps 2 and 3 right after the scan: the
//! stack is still only kept when it is provably of the wait the scan saw.

use std::os::fd::{AsFd, BorrowedFd};

use nodedoc_model::{BlockedCheck, Gaps, Process, TaskSample, TaskState};

use crate::parse::{parse_status, parse_wchan};
use crate::scan::{read_stack_at, read_stat, read_syscall_at};
use crate::{read_at, ProcRoot, ReadError};

const SOURCE: &str = "procfs";

/// Where [`resample`] is between two of its reads of one task; tests change a fake root there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadStep {
    /// The second reading found the task in `D` and not run; its stack is read next.
    BeforeStack,
    /// Its wchan and stack were read; its system call, wchan and stat are read again next.
    AfterStack,
}

/// Reads every process's state and CPU times again (the second reading). A process that
/// exited, or whose pid now belongs to another process, is left out. For each task in `D` at
/// both readings, checks that it is one wait and reads where it is blocked (see the module
/// documentation): on success its `kernel_stack`, `syscall` and `wchan` in `processes` are
/// replaced by what was read then; the outcome is the sample's `blocked`.
pub fn resample(root: &ProcRoot, processes: &mut [Process], gaps: &mut Gaps) -> Vec<TaskSample> {
    resample_between(root, processes, gaps, &mut |_, _| {})
}

/// [`resample`], calling `between(pid, step)` between its reads.
pub(crate) fn resample_between(
    root: &ProcRoot,
    processes: &mut [Process],
    gaps: &mut Gaps,
    between: &mut dyn FnMut(i32, ReadStep),
) -> Vec<TaskSample> {
    let mut buf = Vec::with_capacity(1024);
    let mut samples = Vec::with_capacity(processes.len());
    for process in processes.iter_mut() {
        let Ok(dir) = root.open_pid(process.pid) else {
            continue;
        };
        let sampled_at_us = crate::monotonic_us();
        let Ok(stat) = read_stat(root, dir.as_fd(), process.pid, &mut buf) else {
            continue;
        };
        if stat.start_time != process.start_time_ticks {
            continue;
        }
        let state = TaskState::from_letter(stat.state);
        let blocked = (blocked_task(process) && state == TaskState::UninterruptibleSleep)
            .then(|| confirm(root, dir.as_fd(), process, &mut buf, gaps, between));
        samples.push(TaskSample {
            pid: process.pid,
            start_time_ticks: stat.start_time,
            state,
            utime_ticks: stat.utime,
            stime_ticks: stat.stime,
            sampled_at_us,
            blocked,
        });
    }
    samples.sort_by_key(|s| s.pid);
    samples
}

/// For a check with a single reading: reads where each task in `D` is blocked, right after the
/// scan, keeping it only when it is provably of the wait the scan saw (steps 2 and 3 of the
/// module documentation; the context switches are compared with the scan's). A stack that is
/// discarded is said in `gaps`.
pub fn read_blocked(root: &ProcRoot, processes: &mut [Process], gaps: &mut Gaps) {
    let mut buf = Vec::with_capacity(1024);
    for process in processes.iter_mut().filter(|p| blocked_task(p)) {
        let Ok(dir) = root.open_pid(process.pid) else {
            continue;
        };
        let check = confirm(root, dir.as_fd(), process, &mut buf, gaps, &mut |_, _| {});
        if let BlockedCheck::RanBetween { .. } = check {
            gaps.record(
                SOURCE,
                "/proc/PID/stack",
                "not read: the task ran after the scan saw it in D (it was passing through)",
                process.pid.to_string(),
            );
        }
    }
}

/// A task that was in `D` at the first reading: kernel threads too (a `jbd2/sda1-8` or a
/// `kworker` stuck in D holds up a journal or a workqueue, and the kernel's own hung-task
/// detector watches them as well). Idle kernel threads sleep in `I` (`TASK_IDLE`), not `D`.
fn blocked_task(process: &Process) -> bool {
    process.state == TaskState::UninterruptibleSleep
}

fn read_switches(dir: BorrowedFd<'_>, buf: &mut Vec<u8>) -> Option<u64> {
    read_at(dir, c"status", buf).ok()?;
    parse_status(&String::from_utf8_lossy(buf))
        .ok()?
        .context_switches
}

fn read_wchan(dir: BorrowedFd<'_>, buf: &mut Vec<u8>) -> Result<Option<String>, std::io::Error> {
    read_at(dir, c"wchan", buf).map(|()| parse_wchan(buf))
}

/// Steps 1 (the context switches; the caller checked state and start time) to 3 for one task
/// found in `D` again.
fn confirm(
    root: &ProcRoot,
    dir: BorrowedFd<'_>,
    process: &mut Process,
    buf: &mut Vec<u8>,
    gaps: &mut Gaps,
    between: &mut dyn FnMut(i32, ReadStep),
) -> BlockedCheck {
    let pid = process.pid;
    let discarded = |why: String, gaps: &mut Gaps| {
        gaps.record(
            SOURCE,
            "/proc/PID/stack",
            "discarded: the task changed while it was read",
            pid.to_string(),
        );
        BlockedCheck::StackDiscarded { why }
    };
    let switches = read_switches(dir, buf);
    if let (Some(first), Some(second)) = (process.context_switches, switches) {
        if first != second {
            return BlockedCheck::RanBetween { first, second };
        }
    }

    between(pid, ReadStep::BeforeStack);
    let wchan_before = read_wchan(dir, buf);
    let stack = read_stack_at(root, dir, pid, buf);
    between(pid, ReadStep::AfterStack);
    let syscall = read_syscall_at(root, dir, pid, buf);
    let wchan_after = read_wchan(dir, buf);
    let stat = read_stat(root, dir, pid, buf);
    let switches_after = read_switches(dir, buf);

    let stat = match stat {
        Ok(stat) => stat,
        Err(_) => return discarded("it exited while its stack was read".into(), gaps),
    };
    if stat.start_time != process.start_time_ticks {
        return discarded("its pid now belongs to another process".into(), gaps);
    }
    let state = TaskState::from_letter(stat.state);
    if state != TaskState::UninterruptibleSleep {
        return discarded(
            format!(
                "it left D while its stack was read (now {})",
                state.letter()
            ),
            gaps,
        );
    }
    if let (Some(before), Some(after)) = (switches, switches_after) {
        if before != after {
            return discarded(
                format!("it ran while its stack was read (context switches {before} → {after})"),
                gaps,
            );
        }
    }
    let (wchan_before, wchan_after) = match (wchan_before, wchan_after) {
        (Ok(before), Ok(after)) => (before, after),
        _ => return discarded("its wchan could not be read".into(), gaps),
    };
    if wchan_before != wchan_after {
        return discarded(
            format!(
                "its wchan changed while its stack was read ({} → {})",
                wchan_before.as_deref().unwrap_or("none"),
                wchan_after.as_deref().unwrap_or("none")
            ),
            gaps,
        );
    }
    match stack {
        Ok(stack) => {
            // The kernel names in wchan the first frame of the stack outside the scheduler;
            // a stack without it is not of that sleep.
            if let Some(wchan) = &wchan_after {
                if !stack.is_empty() && !stack.iter().any(|f| &f.function == wchan) {
                    return discarded(
                        format!(
                            "its stack (from {}) does not hold its wchan {wchan}",
                            stack[0].function
                        ),
                        gaps,
                    );
                }
            }
            process.kernel_stack = Some(stack);
        }
        Err(e) => record(gaps, "/proc/PID/stack", &e, pid),
    }
    match syscall {
        Ok(syscall) => process.syscall = syscall,
        Err(e) => record(gaps, "/proc/PID/syscall", &e, pid),
    }
    process.wchan = wchan_after;
    BlockedCheck::Confirmed {
        context_switches: switches,
    }
}

fn record(gaps: &mut Gaps, what: &str, error: &ReadError, pid: i32) {
    gaps.record(SOURCE, what, error.reason(), pid.to_string());
}
