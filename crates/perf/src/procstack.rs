//! The weak fallback: `/proc/PID/task/TID/stack` of the running threads, read repeatedly.
//!
//! It shows where a thread is when the file is read, not where its CPU time goes: a thread
//! is read while it is off the CPU (the reader runs instead), so it shows the last place it
//! was switched out. On a kernel without preemption a thread busy in a system call is only
//! switched out on its way back to user space, so every read shows `exit_to_user_mode_loop`
//! (measured here). Used only when perf events are refused, and said to be weak.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::threads::{thread_state, Thread};

/// Threads read per process at most.
pub(crate) const MAX_THREADS: usize = 8;

/// Readings per second of each thread.
pub(crate) const FREQUENCY_HZ: u64 = 50;

/// What reading the stacks of one process gave.
#[derive(Debug, Default)]
pub(crate) struct StackReadings {
    pub threads_sampled: u32,
    /// Reads of a running thread.
    pub samples: u64,
    /// Reads that gave an empty stack.
    pub empty: u64,
    /// Stacks (function names, innermost first, as the file lists them) and their counts.
    pub stacks: HashMap<Vec<String>, u64>,
    pub errors: Vec<String>,
}

/// Reads the stacks of the running threads of every target (at most [`MAX_THREADS`] each,
/// busiest first) every 1/[`FREQUENCY_HZ`] s for `window`.
pub(crate) fn sample(
    pids: &[i32],
    threads: &[Vec<Thread>],
    window: Duration,
) -> Vec<StackReadings> {
    let mut readings: Vec<StackReadings> = pids.iter().map(|_| StackReadings::default()).collect();
    let chosen: Vec<Vec<i32>> = threads
        .iter()
        .map(|list| list.iter().take(MAX_THREADS).map(|t| t.tid).collect())
        .collect();
    for (reading, tids) in readings.iter_mut().zip(&chosen) {
        reading.threads_sampled = tids.len() as u32;
    }
    let step = Duration::from_millis(1000 / FREQUENCY_HZ);
    let deadline = Instant::now() + window;
    while Instant::now() < deadline {
        for ((pid, tids), reading) in pids.iter().zip(&chosen).zip(readings.iter_mut()) {
            for &tid in tids {
                if thread_state(*pid, tid) != Some('R') {
                    continue;
                }
                match std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stack")) {
                    Ok(text) => {
                        reading.samples += 1;
                        let frames = parse_stack(&text);
                        if frames.is_empty() {
                            reading.empty += 1;
                        } else {
                            *reading.stacks.entry(frames).or_default() += 1;
                        }
                    }
                    Err(e) if reading.errors.len() < 4 => reading
                        .errors
                        .push(format!("/proc/{pid}/task/{tid}/stack: {e}")),
                    Err(_) => {}
                }
            }
        }
        std::thread::sleep(step.min(deadline.saturating_duration_since(Instant::now())));
    }
    readings
}

/// `[<0>] netlink_dump+0x1a3/0x2c0 [mod]` lines to `netlink_dump [mod]`, innermost first.
pub(crate) fn parse_stack(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| {
            let rest = line.trim().split_once("] ").map_or(line.trim(), |(_, r)| r);
            let mut parts = rest.split_ascii_whitespace();
            let function = parts.next()?.split('+').next()?;
            if function.is_empty() {
                return None;
            }
            Some(match parts.next() {
                Some(module) if module.starts_with('[') => format!("{function} {module}"),
                _ => function.to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn stack_lines_become_function_names() {
        let text = "[<0>] exit_to_user_mode_loop+0x9d/0x130\n[<0>] do_syscall_64+0x1d6/0x1f0\n[<0>] entry_SYSCALL_64_after_hwframe+0x77/0x7f\n";
        assert_eq!(
            super::parse_stack(text),
            vec![
                "exit_to_user_mode_loop",
                "do_syscall_64",
                "entry_SYSCALL_64_after_hwframe"
            ]
        );
        assert_eq!(
            super::parse_stack("[<0>] ovs_flow_cmd_dump+0x10/0x20 [openvswitch]\n"),
            vec!["ovs_flow_cmd_dump [openvswitch]"]
        );
    }
}
