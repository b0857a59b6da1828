//! Starting, identifying and stopping the processes labs create.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{LabContext, LabError, LabGuard, Resource};

/// Field 22 of `/proc/PID/stat`, or `None` when the process is gone.
pub(crate) fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    let close = stat.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&stat[close + 1..]).ok()?;
    rest.split_ascii_whitespace().nth(19)?.parse().ok()
}

/// State letter of `/proc/PID/stat`, if the process exists.
pub(crate) fn state(pid: i32) -> Option<char> {
    let stat = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    let close = stat.iter().rposition(|&b| b == b')')?;
    std::str::from_utf8(&stat[close + 1..])
        .ok()?
        .split_ascii_whitespace()
        .next()?
        .chars()
        .next()
}

/// Sends `signal` to `pid` if it is still the process that started at `start_time_ticks`.
pub(crate) fn kill_verified(
    pid: i32,
    start_time_ticks: u64,
    signal: rustix::process::Signal,
) -> Result<(), String> {
    if start_time(pid) != Some(start_time_ticks) {
        return Ok(());
    }
    let Some(target) = rustix::process::Pid::from_raw(pid) else {
        return Err("invalid pid".into());
    };
    match rustix::process::kill_process(target, signal) {
        Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(()),
        Err(e) => Err(format!("kill: {e}")),
    }
}

/// Waits until `pid` (with this start time) is gone, reaping it if it is our child.
/// Returns false on timeout.
pub(crate) fn wait_gone(pid: i32, start_time_ticks: u64, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        // Reap it if it is our child; ECHILD otherwise, which is fine.
        if let Some(p) = rustix::process::Pid::from_raw(pid) {
            let _ = rustix::process::waitpid(Some(p), rustix::process::WaitOptions::NOHANG);
        }
        match (start_time(pid), state(pid)) {
            (Some(t), Some(s)) if t == start_time_ticks && s != 'Z' => {}
            // A zombie that is not ours is its parent's to reap; it no longer holds anything.
            _ => return true,
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts `nodedoc lab-helper ARGS`, waits for its `ready` line, and records it in the guard.
/// Returns its pid. `configure` can adjust the command (environment, stdin, …).
pub(crate) fn spawn_helper(
    guard: &mut LabGuard,
    cx: &LabContext,
    role: &str,
    args: &[&str],
    configure: impl FnOnce(&mut Command),
) -> Result<i32, LabError> {
    let scenario = guard.instance().scenario.clone();
    let mut command = Command::new(&cx.helper);
    // Helpers outlive `lab start`: they must not hold its stderr or stdin, or whoever reads
    // those (a terminal, a test capturing output) would wait for them forever. A helper
    // reports failure on its stdout instead of `ready`.
    command
        .arg("lab-helper")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    configure(&mut command);
    let mut child = command.spawn().map_err(|e| {
        LabError::setup(
            &scenario,
            &format!("start {role} ({})", cx.helper.display()),
            e,
        )
    })?;
    let pid = child.id() as i32;
    let start_time_ticks = start_time(pid).unwrap_or(0);
    guard.instance_mut().resources.push(Resource::Process {
        role: role.to_string(),
        pid,
        start_time_ticks,
    });
    // The helper prints `ready` once its fault is in place. Its stdout is read to the first
    // line only; afterwards the pipe is dropped and the helper never writes again.
    let stdout = child.stdout.take().expect("piped above");
    let mut line = String::new();
    let read = BufReader::new(stdout).read_line(&mut line);
    match read {
        Ok(_) if line.trim() == "ready" => Ok(pid),
        Ok(_) if line.starts_with("error: ") => Err(LabError::Helper {
            helper: role.to_string(),
            detail: line["error: ".len()..].trim().to_string(),
        }),
        Ok(_) => {
            let status = child.try_wait().ok().flatten();
            Err(LabError::Helper {
                helper: role.to_string(),
                detail: match status {
                    Some(status) => format!("exited ({status}) before it was ready"),
                    None => format!("said {:?} instead of ready", line.trim()),
                },
            })
        }
        Err(e) => Err(LabError::Helper {
            helper: role.to_string(),
            detail: format!("reading its ready line: {e}"),
        }),
    }
}
