//! `memory-map-lock`: why `ps` hangs on a sick node. A process maps a file of a FUSE
//! filesystem that never answers; a second process reads that page through `/proc/PID/mem`
//! and waits for it, holding the first one's memory-map lock for reading; the first one then
//! asks for the lock for writing (an mmap) and blocks in D. From then on every read of its
//! `/proc/PID/cmdline` or `environ` queues behind the writer: `ps aux`, `top`, `pgrep -f`
//! hang. nodedoc must name both tasks and not hang itself.

use std::time::Duration;

use super::fuse_hang::{mount_stuck_fuse, StuckFuse};
use super::{release_first, Scenario};
use crate::process::{spawn_helper, state, wait_until};
use crate::{Expectation, LabContext, LabError, LabGuard};

pub(super) const SCENARIO: Scenario = Scenario {
    name: "memory-map-lock",
    summary: "a process whose memory-map lock is held by a stuck reader: `ps aux` hangs on it",
    seed: "003 (a task in D that `strace -p` hangs on; `ps` hangs the same way here)",
    settle_secs: 0,
    start,
};

fn start(guard: &mut LabGuard, cx: &LabContext) -> Result<(), LabError> {
    let StuckFuse {
        daemon,
        file,
        read_received,
        ..
    } = mount_stuck_fuse(guard, cx, SCENARIO.name)?;
    let victim = spawn_helper(
        guard,
        cx,
        "mm-victim",
        &[],
        &["mm-victim", "--path", &file],
        |_| {},
    )?;
    let victim_text = victim.to_string();
    let reader = spawn_helper(
        guard,
        cx,
        "mem-reader",
        &[],
        &["mem-reader", "--pid", &victim_text, "--path", &file],
        |_| {},
    )?;
    // Teardown kills the daemon first: the reader's fault then fails, it lets go of the lock,
    // and the victim's mmap completes.
    release_first(guard, daemon);
    let holding = wait_until(Duration::from_secs(10), || {
        read_received.exists() && state(reader) == Some('D')
    });
    if !holding {
        return Err(LabError::setup(
            SCENARIO.name,
            "read /proc/PID/mem",
            "the reader never waited for the FUSE daemon",
        ));
    }
    if let Some(target) = rustix::process::Pid::from_raw(victim) {
        let _ = rustix::process::kill_process(target, rustix::process::Signal::USR1);
    }
    if !wait_until(Duration::from_secs(10), || state(victim) == Some('D')) {
        return Err(LabError::setup(
            SCENARIO.name,
            "mmap in the victim",
            "it did not block on its memory-map lock",
        ));
    }

    let instance = guard.instance_mut();
    instance
        .facts
        .insert("daemon_pid".into(), daemon.to_string());
    instance.facts.insert("victim_pid".into(), victim_text);
    instance
        .facts
        .insert("reader_pid".into(), reader.to_string());
    instance.expect.push(Expectation {
        detector: "hung-task".into(),
        subject: format!("pid/{victim}"),
        evidence: vec![
            "stack classified as memory-map-lock-write".into(),
            "`ps aux` hangs on this process".into(),
            format!("mem-reader (pid {reader}) is stuck reading another process's memory"),
        ],
    });
    instance.expect.push(Expectation {
        detector: "hung-task".into(),
        subject: format!("pid/{reader}"),
        evidence: vec!["stack classified as remote-memory-access".into()],
    });
    Ok(())
}
