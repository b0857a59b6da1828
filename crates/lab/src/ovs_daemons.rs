//! A private Open vSwitch for labs: `ovsdb-server` and `ovs-vswitchd` in one directory,
//! supervised by a helper process (`nodedoc lab-helper ovs-daemons --dir DIR`).
//!
//! Why a supervising helper: the daemons run without `--detach`, as the helper's children,
//! so they never become orphans that PID 1 must reap (this machine's PID 1 reaps lazily and
//! `pgrep` would list the zombies). The helper is a child subreaper too, so anything the
//! daemons fork is reaped here. On SIGTERM (the lab's teardown) it stops both daemons,
//! reaps them and exits; the lab then removes the directory.
//!
//! What outlives the daemons: with the userspace datapath, ovs-vswitchd makes the datapath's
//! `ovs-netdev` and every internal port a persistent tap device, which it does not delete when
//! it exits. The scenario names them before the daemons start and records each as a
//! [`Resource::Link`](crate::Resource::Link), released after this helper.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::LabError;

/// Where Debian installs the Open_vSwitch schema.
pub(crate) const VSWITCH_SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";

fn helper_error(detail: impl std::fmt::Display) -> LabError {
    LabError::Helper {
        helper: "ovs-daemons".into(),
        detail: detail.to_string(),
    }
}

/// `ovs-vsctl`, `ovsdb-tool`, … with every OVS default path inside `dir`.
pub(crate) fn ovs_command(program: &str, dir: &Path) -> Command {
    let mut command = Command::new(program);
    command
        .env("OVS_RUNDIR", dir)
        .env("OVS_LOGDIR", dir)
        .env("OVS_DBDIR", dir)
        .stdin(Stdio::null());
    command
}

/// Runs a command to completion; its stderr in the error.
pub(crate) fn run(mut command: Command, what: &str) -> Result<String, String> {
    let output = command
        .output()
        .map_err(|e| format!("{what}: cannot run: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "{what}: {} ({})",
            String::from_utf8_lossy(&output.stderr).trim(),
            output.status
        ))
    }
}

fn wait_for(path: &Path, what: &str) -> Result<(), LabError> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !path.exists() {
        if Instant::now() > deadline {
            return Err(helper_error(format!(
                "{what}: {} did not appear",
                path.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// The helper: starts the daemons in `--dir`, says `ready`, stops them on SIGTERM.
pub(crate) fn ovs_daemons(args: &[String]) -> Result<(), LabError> {
    let dir = args
        .windows(2)
        .find(|pair| pair[0] == "--dir")
        .map(|pair| PathBuf::from(&pair[1]))
        .ok_or_else(|| helper_error("--dir is required"))?;
    // SAFETY: marks this process as a subreaper; no memory is involved.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    // SIGTERM is taken with sigwait below; blocked now, and unblocked in the daemons (a
    // blocked mask is inherited across exec).
    // SAFETY: plain signal-mask calls while single-threaded.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
    let spawn = |program: &str, args: Vec<String>| -> Result<std::process::Child, LabError> {
        let mut command = ovs_command(program, &dir);
        command
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        use std::os::unix::process::CommandExt;
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            command.pre_exec(|| {
                let mut all: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut all);
                libc::sigaddset(&mut all, libc::SIGTERM);
                libc::pthread_sigmask(libc::SIG_UNBLOCK, &all, std::ptr::null_mut());
                Ok(())
            });
        }
        command
            .spawn()
            .map_err(|e| helper_error(format!("cannot start {program}: {e}")))
    };
    let path = |name: &str| dir.join(name).display().to_string();

    let mut create = ovs_command("ovsdb-tool", &dir);
    create.args(["create", &path("conf.db"), VSWITCH_SCHEMA]);
    run(create, "ovsdb-tool create").map_err(helper_error)?;
    let mut children = Vec::new();
    children.push(spawn(
        "ovsdb-server",
        vec![
            path("conf.db"),
            format!("--remote=punix:{}", path("db.sock")),
            format!("--pidfile={}", path("ovsdb-server.pid")),
            format!("--unixctl={}", path("ovsdb-server.ctl")),
            format!("--log-file={}", path("ovsdb-server.log")),
        ],
    )?);
    let started = (|| {
        wait_for(&dir.join("db.sock"), "ovsdb-server")?;
        let mut init = ovs_command("ovs-vsctl", &dir);
        init.args([
            &format!("--db=unix:{}", path("db.sock")),
            "--no-wait",
            "init",
        ]);
        run(init, "ovs-vsctl init").map_err(helper_error)?;
        Ok::<_, LabError>(())
    })();
    if let Err(e) = started {
        stop(&mut children);
        return Err(e);
    }
    match spawn(
        "ovs-vswitchd",
        vec![
            format!("unix:{}", path("db.sock")),
            format!("--pidfile={}", path("ovs-vswitchd.pid")),
            format!("--unixctl={}", path("ovs-vswitchd.ctl")),
            format!("--log-file={}", path("ovs-vswitchd.log")),
        ],
    ) {
        Ok(child) => children.push(child),
        Err(e) => {
            stop(&mut children);
            return Err(e);
        }
    }
    if let Err(e) = wait_for(&dir.join("ovs-vswitchd.ctl"), "ovs-vswitchd") {
        stop(&mut children);
        return Err(e);
    }
    crate::helpers::ready();
    let mut signal = 0;
    // SAFETY: waits for the blocked SIGTERM.
    unsafe { libc::sigwait(&set, &mut signal) };
    stop(&mut children);
    std::process::exit(0)
}

/// Stops the daemons newest first (ovs-vswitchd before the database it reads), SIGKILL
/// after 5 s, and reaps them and anything else re-parented to us.
fn stop(children: &mut Vec<std::process::Child>) {
    while let Some(mut child) = children.pop() {
        // SAFETY: signalling our own child, which has not been reaped yet.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() > deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
    // Orphans of the daemons, re-parented to this subreaper.
    // SAFETY: reaping children of this process.
    while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } > 0 {}
}
