//! What a helper that supervises daemons needs (`ovs-daemons`, `runtime-daemon`): be their
//! subreaper, take SIGTERM (teardown) with `sigwait` while the daemons keep the default
//! action, stop a daemon with SIGTERM then SIGKILL, reap what is re-parented to it.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// SIGTERM blocked in this (single-threaded) helper, to be taken with [`Self::wait`].
pub(crate) struct Supervisor {
    set: libc::sigset_t,
}

impl Supervisor {
    /// Makes this process a subreaper and blocks SIGTERM in it.
    pub fn start() -> Supervisor {
        // SAFETY: marks this process as a subreaper; no memory is involved.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        // SAFETY: plain signal-mask calls while single-threaded.
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        unsafe {
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGTERM);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        }
        Supervisor { set }
    }

    /// Unblocks SIGTERM in what `command` runs (a blocked mask is inherited across exec).
    pub fn unblock_in(command: &mut Command) {
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
    }

    /// Waits for SIGTERM.
    pub fn wait(&self) {
        let mut signal = 0;
        // SAFETY: waits for the blocked SIGTERM.
        unsafe { libc::sigwait(&self.set, &mut signal) };
    }
}

/// Stops one daemon: SIGTERM, SIGKILL after `grace`; reaps it.
pub(crate) fn stop_child(child: &mut Child, grace: Duration) {
    // SAFETY: signalling our own child, which has not been reaped yet.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + grace;
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

/// Reaps every exited child (orphans of the daemons, re-parented to this subreaper).
pub(crate) fn reap_exited() {
    // SAFETY: reaping children of this process.
    while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } > 0 {}
}
