use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::process::{kill_verified, wait_gone};

/// Something a lab created and must remove.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Resource {
    /// A process the lab started: SIGKILLed if the pid still has this start time.
    Process {
        /// What it is for (`fd-hog`, …).
        role: String,
        /// Its pid.
        pid: i32,
        /// Its start time (`/proc/PID/stat` field 22), so a reused pid is left alone.
        start_time_ticks: u64,
    },
    /// A named network namespace (`ip netns add NAME`).
    NetNs {
        /// The name.
        name: String,
    },
    /// A cgroup directory, removed once empty.
    Cgroup {
        /// Its path under /sys/fs/cgroup.
        path: PathBuf,
    },
    /// A cgroup v1 freezer frozen by the lab: thawed on release.
    Frozen {
        /// The freezer cgroup.
        path: PathBuf,
    },
    /// A mount the lab made, detached on release (`umount -l`): a FUSE mount whose daemon is
    /// gone cannot be unmounted any other way.
    Mount {
        /// The mount point.
        path: PathBuf,
    },
    /// A directory the lab owns, removed with its contents.
    Dir {
        /// The directory.
        path: PathBuf,
    },
}

/// How long a process gets to exit on SIGTERM.
const GRACE: Duration = Duration::from_secs(2);

/// How long teardown waits for a killed process or a thawed cgroup.
const TEARDOWN_WAIT: Duration = Duration::from_secs(10);

impl Resource {
    /// Removes the resource. Already gone is success.
    pub fn release(&self) -> Result<(), String> {
        match self {
            Resource::Process {
                role,
                pid,
                start_time_ticks,
            } => {
                // SIGTERM first lets a helper clean up after itself (the zombie parent reaps
                // its zombies); SIGKILL if it does not go.
                use rustix::process::Signal;
                kill_verified(*pid, *start_time_ticks, Signal::TERM)
                    .map_err(|e| format!("{role} (pid {pid}): {e}"))?;
                if wait_gone(*pid, *start_time_ticks, GRACE) {
                    return Ok(());
                }
                kill_verified(*pid, *start_time_ticks, Signal::KILL)
                    .map_err(|e| format!("{role} (pid {pid}): {e}"))?;
                if wait_gone(*pid, *start_time_ticks, TEARDOWN_WAIT) {
                    Ok(())
                } else {
                    Err(format!(
                        "{role} (pid {pid}) did not exit within {TEARDOWN_WAIT:?} of SIGKILL"
                    ))
                }
            }
            Resource::NetNs { name } => {
                let path = PathBuf::from("/run/netns").join(name);
                if !path.exists() {
                    return Ok(());
                }
                let status = std::process::Command::new("ip")
                    .args(["netns", "delete", name])
                    .status()
                    .map_err(|e| format!("ip netns delete {name}: {e}"))?;
                if status.success() {
                    Ok(())
                } else {
                    Err(format!("ip netns delete {name}: {status}"))
                }
            }
            Resource::Cgroup { path } => {
                let deadline = Instant::now() + TEARDOWN_WAIT;
                loop {
                    match std::fs::remove_dir(path) {
                        Ok(()) => return Ok(()),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                        // EBUSY while exiting tasks are still being removed from it.
                        Err(e) if Instant::now() < deadline => {
                            let _ = e;
                            std::thread::sleep(Duration::from_millis(50));
                        }
                        Err(e) => return Err(format!("rmdir {}: {e}", path.display())),
                    }
                }
            }
            Resource::Frozen { path } => {
                let state = path.join("freezer.state");
                match std::fs::write(&state, "THAWED") {
                    Ok(()) => Ok(()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    Err(e) => Err(format!("thaw {}: {e}", state.display())),
                }
            }
            Resource::Mount { path } => {
                match rustix::mount::unmount(path, rustix::mount::UnmountFlags::DETACH) {
                    // EINVAL: not a mount point (any more); ENOENT: gone.
                    Ok(()) | Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => {
                        Ok(())
                    }
                    Err(e) => Err(format!("umount -l {}: {e}", path.display())),
                }
            }
            Resource::Dir { path } => match std::fs::remove_dir_all(path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(format!("rm -r {}: {e}", path.display())),
            },
        }
    }
}
