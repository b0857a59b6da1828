//! `fuse-hang`: a FUSE filesystem of ours whose daemon receives reads and never answers. A
//! reader of its file is then killed: it stays in unkillable D in `request_wait_answer` until
//! the daemon dies — what a hung sshfs, s3fs or lxcfs does to everything that touches it.

use std::time::Duration;

use super::{private_dir, release_first, require_root, Scenario};
use crate::fuse::STUCK_FILE;
use crate::process::{spawn_helper, state, wait_until, wchan};
use crate::{Expectation, LabContext, LabError, LabGuard, Resource};

pub(super) const SCENARIO: Scenario = Scenario {
    name: "fuse-hang",
    summary: "a FUSE daemon that never answers, and a killed reader stuck in D behind it",
    seed: "003 (tasks in D behind a filesystem that does not answer)",
    settle_secs: 0,
    start,
};

/// A mounted FUSE filesystem of ours whose daemon never answers a read.
pub(super) struct StuckFuse {
    /// The daemon's pid.
    pub daemon: i32,
    /// Where it is mounted.
    pub mountpoint: String,
    /// Its one file: reading it never returns.
    pub file: String,
    /// Appears once the daemon has received a read (and holds it unanswered).
    pub read_received: std::path::PathBuf,
}

/// Mounts a FUSE filesystem whose reads never answer, recording the mount, its directory and
/// its daemon in the guard.
pub(super) fn mount_stuck_fuse(
    guard: &mut LabGuard,
    cx: &LabContext,
    scenario: &str,
) -> Result<StuckFuse, LabError> {
    require_root(scenario)?;
    if !std::path::Path::new("/dev/fuse").exists() {
        return Err(LabError::Unsupported {
            scenario: scenario.into(),
            reason: "/dev/fuse is missing (load the fuse module)".into(),
        });
    }
    let dir = private_dir(guard, scenario, "nodedoc-lab-fuse-")?;
    let mountpoint = dir.join("mnt");
    std::fs::create_dir(&mountpoint)
        .map_err(|e| LabError::setup(scenario, &format!("mkdir {}", mountpoint.display()), e))?;
    let mount_text = mountpoint.display().to_string();
    let marker = dir.join("read-received");
    let marker_text = marker.display().to_string();
    let daemon = spawn_helper(
        guard,
        cx,
        "fuse-daemon",
        &[],
        &[
            "fuse-daemon",
            "--mountpoint",
            &mount_text,
            "--received-marker",
            &marker_text,
        ],
        |_| {},
    )?;
    guard.instance_mut().resources.push(Resource::Mount {
        path: mountpoint.clone(),
    });
    Ok(StuckFuse {
        daemon,
        mountpoint: mount_text,
        file: mountpoint.join(STUCK_FILE).display().to_string(),
        read_received: marker,
    })
}

fn start(guard: &mut LabGuard, cx: &LabContext) -> Result<(), LabError> {
    let StuckFuse {
        daemon,
        mountpoint: mount_text,
        file,
        read_received: marker,
    } = mount_stuck_fuse(guard, cx, SCENARIO.name)?;
    let reader = spawn_helper(
        guard,
        cx,
        "fuse-reader",
        &[],
        &["fuse-reader", "--path", &file],
        |_| {},
    )?;
    // Wait until the daemon holds the request: a request still queued in the kernel would be
    // dropped, not waited for, when the reader is killed.
    let waiting = wait_until(Duration::from_secs(10), || {
        marker.exists() && wchan(reader).is_some_and(|w| w == "request_wait_answer")
    });
    if !waiting {
        return Err(LabError::setup(
            SCENARIO.name,
            "read",
            "the reader never waited in request_wait_answer",
        ));
    }
    // A killed reader cannot finish: the kernel waits uninterruptibly for the daemon's reply.
    if let Some(target) = rustix::process::Pid::from_raw(reader) {
        let _ = rustix::process::kill_process(target, rustix::process::Signal::KILL);
    }
    if !wait_until(Duration::from_secs(10), || state(reader) == Some('D')) {
        return Err(LabError::setup(
            SCENARIO.name,
            "kill the reader",
            "it did not enter D state",
        ));
    }
    // Teardown kills the daemon first: that aborts the connection and frees the reader.
    release_first(guard, daemon);

    let instance = guard.instance_mut();
    instance
        .facts
        .insert("daemon_pid".into(), daemon.to_string());
    instance
        .facts
        .insert("reader_pid".into(), reader.to_string());
    instance
        .facts
        .insert("mountpoint".into(), mount_text.clone());
    instance.expect.push(Expectation {
        detector: "hung-task".into(),
        subject: format!("pid/{reader}"),
        evidence: vec![
            "stack classified as fuse-no-answer".into(),
            format!("served by fuse-daemon (pid {daemon})"),
            "a SIGKILL is pending".into(),
        ],
    });
    Ok(())
}
