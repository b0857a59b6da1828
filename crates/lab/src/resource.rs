use std::path::{Path, PathBuf};
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
    /// A network device in the host's namespace that the lab caused, directly or through a
    /// daemon it started (the userspace datapath's tap devices outlive ovs-vswitchd: OVS
    /// makes them persistent). Deleted on release; already gone is success. Record it before
    /// starting whatever creates it, so that it is released after that has stopped.
    ///
    /// A tun/tap device is deleted the way `ip tuntap del` does, which the kernel refuses
    /// while a process has the device open. So a `shared` name — one that any instance of a
    /// program uses, like the datapath's `ovs-netdev`, which another Open vSwitch may have
    /// opened by the time this lab stops — is left to whoever holds it, and that is not an
    /// error.
    Link {
        /// The device name.
        name: String,
        /// Another program may legitimately hold it by the time the lab stops.
        #[serde(default)]
        shared: bool,
    },
    /// A lab's top-level cgroup (`nodedoc-lab-XXXXXX`) in every hierarchy, with everything a
    /// runtime created below it (pod and container cgroups): removed deepest first. Record it
    /// before starting the runtime, so that it is released after the runtime has stopped.
    CgroupTree {
        /// The top-level name.
        name: String,
    },
    /// A pod sandbox created through a lab runtime's CRI socket: stopped and removed through
    /// it (which stops and removes its containers), as kubelet would. A socket that is gone
    /// means the runtime is gone, and with it the pod.
    CriPod {
        /// The runtime's socket.
        socket: PathBuf,
        /// The sandbox id.
        id: String,
    },
    /// A container created through a lab's dockerd: removed with `docker rm --force`. A
    /// socket that is gone means the daemon is gone, and with it the container.
    DockerContainer {
        /// dockerd's socket.
        socket: PathBuf,
        /// The container's name.
        name: String,
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
            Resource::Link { name, shared } => release_link(name, *shared),
            Resource::CgroupTree { name } => crate::runtimes::remove_cgroup_tree(name),
            Resource::CriPod { socket, id } => {
                if !socket.exists() {
                    return Ok(());
                }
                let client = nodedoc_cri::CriClient::connect(socket).map_err(|e| e.to_string())?;
                client
                    .stop_pod_sandbox(id)
                    .and_then(|()| client.remove_pod_sandbox(id))
                    .map_err(|e| format!("pod sandbox {id}: {e}"))
            }
            Resource::DockerContainer { socket, name } => {
                if !socket.exists() {
                    return Ok(());
                }
                let mut command = crate::runtimes::docker_cli(socket);
                command.args(["rm", "--force", name]);
                crate::runtimes::run(command, &format!("docker rm --force {name}")).map(drop)
            }
        }
    }
}

/// `IFF_TAP` and `IFF_MULTI_QUEUE` in `/sys/class/net/NAME/tun_flags`.
const IFF_TAP: u32 = 0x0002;
const IFF_MULTI_QUEUE: u32 = 0x0100;

fn release_link(name: &str, shared: bool) -> Result<(), String> {
    // Interface names never contain '/'; refuse one that would leave /sys/class/net.
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(format!("{name:?} is not a network device name"));
    }
    let sys = Path::new("/sys/class/net").join(name);
    if !sys.exists() {
        return Ok(());
    }
    let mut command = std::process::Command::new("ip");
    let what = match std::fs::read_to_string(sys.join("tun_flags")) {
        Ok(flags) => {
            let flags = u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16)
                .map_err(|_| format!("{name}: unreadable tun_flags {flags:?}"))?;
            let mode = if flags & IFF_TAP != 0 { "tap" } else { "tun" };
            command.args(["tuntap", "del", "dev", name, "mode", mode]);
            if flags & IFF_MULTI_QUEUE != 0 {
                command.arg("multi_queue");
            }
            format!("ip tuntap del dev {name} mode {mode}")
        }
        Err(_) => {
            command.args(["link", "delete", "dev", name]);
            format!("ip link delete dev {name}")
        }
    };
    let output = command
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("{what}: {e}"))?;
    if output.status.success() || !sys.exists() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    if shared && stderr.contains("busy") {
        // Another program has it open now: it is theirs.
        return Ok(());
    }
    Err(format!("{what}: {} ({})", stderr.trim(), output.status))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::{AsRawFd, OwnedFd};

    /// Opens /dev/net/tun and attaches to the tap `name` (creating it if needed), as
    /// ovs-vswitchd does for its internal ports.
    fn attach_tap(name: &str) -> OwnedFd {
        const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
        const IFF_NO_PI: libc::c_short = 0x1000;
        let tun = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/net/tun")
            .expect("open /dev/net/tun");
        // SAFETY: an all-zero ifreq is valid; the name fits (checked below).
        let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
        assert!(name.len() < request.ifr_name.len());
        for (slot, byte) in request.ifr_name.iter_mut().zip(name.bytes()) {
            *slot = byte as libc::c_char;
        }
        request.ifr_ifru.ifru_flags = IFF_TAP as libc::c_short | IFF_NO_PI;
        // SAFETY: TUNSETIFF reads the ifreq we own.
        let rc = unsafe { libc::ioctl(tun.as_raw_fd(), TUNSETIFF, &mut request) };
        assert_eq!(
            rc,
            0,
            "TUNSETIFF {name}: {}",
            std::io::Error::last_os_error()
        );
        tun.into()
    }

    fn exists(name: &str) -> bool {
        Path::new("/sys/class/net").join(name).exists()
    }

    #[test]
    fn a_persistent_tap_is_deleted_unless_a_process_holds_a_shared_one() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("needs root: skipped");
            return;
        }
        let name = format!("ndlnk{}", crate::unique_suffix());
        let link = |shared| Resource::Link {
            name: name.clone(),
            shared,
        };
        // Already gone is success.
        assert_eq!(link(false).release(), Ok(()));

        let status = std::process::Command::new("ip")
            .args(["tuntap", "add", "dev", &name, "mode", "tap"])
            .status()
            .unwrap();
        assert!(status.success());
        // Held open by a process: a shared name is left to it, our own is an error.
        let held = attach_tap(&name);
        assert_eq!(link(true).release(), Ok(()));
        assert!(exists(&name));
        let err = link(false).release().unwrap_err();
        assert!(
            err.contains(&format!("ip tuntap del dev {name} mode tap")),
            "{err}"
        );
        assert!(err.contains("busy"), "{err}");
        // Released by the process: deleted.
        drop(held);
        assert_eq!(link(true).release(), Ok(()));
        assert!(!exists(&name), "{name} left behind");
    }

    #[test]
    fn a_link_resource_round_trips_through_the_state_file_format() {
        let link = Resource::Link {
            name: "ovs-netdev".into(),
            shared: true,
        };
        let json = serde_json::to_string(&link).unwrap();
        assert_eq!(json, r#"{"type":"link","name":"ovs-netdev","shared":true}"#);
        assert_eq!(serde_json::from_str::<Resource>(&json).unwrap(), link);
        assert!(Resource::Link {
            name: "../x".into(),
            shared: false
        }
        .release()
        .is_err());
    }
}
