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
        // Reap it if it is our child (or was re-parented to us, a subreaper).
        let ours = match rustix::process::Pid::from_raw(pid) {
            Some(p) => {
                match rustix::process::waitpid(Some(p), rustix::process::WaitOptions::NOHANG) {
                    Ok(Some(_)) => return true,
                    Ok(None) => true,
                    Err(_) => false,
                }
            }
            None => false,
        };
        match (start_time(pid), state(pid)) {
            (Some(t), _) if t != start_time_ticks => return true,
            (None, _) | (_, None) => return true,
            // Someone else's zombie: it holds nothing any more; its parent reaps it.
            (_, Some('Z')) if !ours => return true,
            _ => {}
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts `[WRAPPER…] nodedoc lab-helper ARGS`, waits for its `ready` line, and records it in
/// the guard. Returns its pid (the wrapper's, when there is one: `unshare --fork` stays the
/// parent; `ip netns exec` execs into the helper). `configure` can adjust the command
/// (environment, …).
pub(crate) fn spawn_helper(
    guard: &mut LabGuard,
    cx: &LabContext,
    role: &str,
    wrapper: &[&str],
    args: &[&str],
    configure: impl FnOnce(&mut Command),
) -> Result<i32, LabError> {
    let scenario = guard.instance().scenario.clone();
    let mut command = match wrapper.split_first() {
        Some((program, rest)) => {
            let mut command = Command::new(program);
            command.args(rest).arg(&cx.helper);
            command
        }
        None => Command::new(&cx.helper),
    };
    // Helpers outlive `lab start`: they must not hold its stderr or stdin, or whoever reads
    // those (a terminal, a test capturing output) would wait for them forever. A helper
    // reports failure on its stdout instead of `ready`.
    command
        .arg("lab-helper")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    // Nor may they hold any other descriptor of their caller (a test harness's jobserver
    // pipe, a terminal): a lab's fault must look the same wherever it is started, down to
    // the fd count, and a long-lived helper must not keep someone else's pipe open.
    // SAFETY: close_range is async-signal-safe; it runs after stdio is in place.
    unsafe {
        use std::os::unix::process::CommandExt;
        command.pre_exec(|| {
            if libc::close_range(
                3,
                libc::c_uint::MAX,
                libc::CLOSE_RANGE_CLOEXEC as libc::c_int,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
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

/// Polls `condition` every 10 ms until it holds or `timeout` passes; returns whether it held.
pub(crate) fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The pids whose parent is `parent`.
pub(crate) fn children_of(parent: i32) -> Vec<i32> {
    let mut children = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return children;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(close) = stat.iter().rposition(|&b| b == b')') else {
            continue;
        };
        let ppid = std::str::from_utf8(&stat[close + 1..])
            .ok()
            .and_then(|rest| rest.split_ascii_whitespace().nth(1))
            .and_then(|p| p.parse::<i32>().ok());
        if ppid == Some(parent) {
            children.push(pid);
        }
    }
    children.sort_unstable();
    children
}

/// Waits for the first child of `parent` and records it as a lab process.
pub(crate) fn adopt_child(guard: &mut LabGuard, parent: i32, role: &str) -> Result<i32, LabError> {
    let mut child = None;
    wait_until(Duration::from_secs(10), || {
        child = children_of(parent).first().copied();
        child.is_some()
    });
    let pid = child.ok_or_else(|| LabError::Helper {
        helper: role.to_string(),
        detail: format!("no child of pid {parent} appeared"),
    })?;
    record_process(guard, role, pid);
    Ok(pid)
}

/// Records an existing process as a lab resource (killed on teardown).
pub(crate) fn record_process(guard: &mut LabGuard, role: &str, pid: i32) {
    let start_time_ticks = start_time(pid).unwrap_or(0);
    guard.instance_mut().resources.push(Resource::Process {
        role: role.to_string(),
        pid,
        start_time_ticks,
    });
}

/// The kernel function `pid` sleeps in.
pub(crate) fn wchan(pid: i32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/wchan")).ok()
}

/// True when `/proc/PID/stack` holds `function`.
pub(crate) fn stack_has(pid: i32, function: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stack")).is_ok_and(|s| {
        s.lines().any(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|f| f.split('+').next() == Some(function))
        })
    })
}

/// Runs a command to completion; its stderr in the error.
pub(crate) fn run(mut command: Command, what: &str) -> Result<String, String> {
    let output = command
        .stdin(Stdio::null())
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
