//! Host-wide state that detectors relate processes to: mounts of interest in every mount
//! namespace, and the freezer state of the cgroups processes live in.

use std::collections::BTreeSet;
use std::os::fd::AsFd;
use std::path::Path;

use nodedoc_model::{CgroupHierarchy, FreezerCgroup, FreezerState, Gaps, MountEntry, Process};

use crate::parse::parse_mountinfo;
use crate::{read_at, ProcRoot, ReadError};

/// Mounts worth keeping: namespace files (a bind mount keeps a namespace alive), FUSE (a
/// daemon that stops answering hangs its readers), network filesystems (they hang when the
/// network, or the network namespace, goes away), and the `/sys` that `ip netns exec NAME`
/// mounts for the namespace it enters, with NAME as its source (it tells which named
/// namespace a task was started in, after the name is deleted).
pub fn interesting(mount: &MountEntry) -> bool {
    let fs_type = mount.fs_type.as_str();
    mount.ip_netns_exec_name().is_some()
        || fs_type == "nsfs"
        || fs_type == "fuse"
        || fs_type == "fuseblk"
        || fs_type.starts_with("fuse.")
        || matches!(
            fs_type,
            "ceph" | "nfs" | "nfs4" | "cifs" | "smb3" | "9p" | "glusterfs" | "lustre"
        )
}

/// Reads `/proc/PID/mountinfo` once per mount namespace (through its first process) and
/// keeps the mounts of interest.
pub fn read_mounts(root: &ProcRoot, processes: &[Process], gaps: &mut Gaps) -> Vec<MountEntry> {
    let mut seen = BTreeSet::new();
    let mut mounts = Vec::new();
    let mut buf = Vec::new();
    for process in processes {
        let Some(mnt) = process.namespaces.mnt else {
            continue;
        };
        if !seen.insert(mnt) {
            continue;
        }
        let pid = process.pid;
        let result = root.open_pid(pid).and_then(|dir| {
            read_at(dir.as_fd(), c"mountinfo", &mut buf)
                .map_err(|e| ReadError::from_io(root.display(pid, "mountinfo"), e))
        });
        if let Err(e) = result {
            // This process exited; let the next one of the namespace answer.
            seen.remove(&mnt);
            if !e.is_vanished() {
                gaps.record("procfs", "/proc/PID/mountinfo", e.reason(), pid.to_string());
            }
            continue;
        }
        let (lines, bad) = parse_mountinfo(&String::from_utf8_lossy(&buf));
        for line in bad {
            gaps.record(
                "procfs",
                "/proc/PID/mountinfo",
                "unparsable line",
                format!("{pid}:{line}"),
            );
        }
        mounts.extend(lines.into_iter().filter(interesting).map(|m| MountEntry {
            mount_namespace: mnt,
            seen_via_pid: pid,
            ..m
        }));
    }
    mounts
}

/// The freezer state of every cgroup that holds a process and is frozen or freezing (thawed
/// ones are the norm and are left out). `cgroup_root` is normally `/sys/fs/cgroup`.
pub fn read_freezers(
    cgroup_root: &Path,
    processes: &[Process],
    gaps: &mut Gaps,
) -> Vec<FreezerCgroup> {
    let mut v1_paths = BTreeSet::new();
    let mut v2_paths = BTreeSet::new();
    for membership in processes.iter().flat_map(|p| &p.cgroups) {
        if membership.path == "/" {
            continue;
        }
        if membership.hierarchy == 0 {
            v2_paths.insert(membership.path.clone());
        } else if membership.controllers.split(',').any(|c| c == "freezer") {
            v1_paths.insert(membership.path.clone());
        }
    }
    let mut frozen = Vec::new();
    let v1_root = cgroup_root.join("freezer");
    for path in v1_paths {
        let file = v1_root
            .join(path.trim_start_matches('/'))
            .join("freezer.state");
        match std::fs::read_to_string(&file) {
            Ok(text) => {
                let state = match text.trim() {
                    "FROZEN" => FreezerState::Frozen,
                    "FREEZING" => FreezerState::Freezing,
                    _ => continue,
                };
                frozen.push(FreezerCgroup {
                    hierarchy: CgroupHierarchy::V1Freezer,
                    path,
                    state,
                });
            }
            // The cgroup went away with its last task.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => gaps.record(
                "cgroupfs",
                "freezer.state",
                e.to_string(),
                file.display().to_string(),
            ),
        }
    }
    // cgroup2 is at the root on pure-v2 hosts and at `unified` on hybrid ones.
    let v2_mount = [cgroup_root.join("unified"), cgroup_root.to_path_buf()]
        .into_iter()
        .find(|m| m.join("cgroup.controllers").exists());
    if let Some(mount) = v2_mount {
        for path in v2_paths {
            let file = mount
                .join(path.trim_start_matches('/'))
                .join("cgroup.events");
            match std::fs::read_to_string(&file) {
                Ok(text) => {
                    if text.lines().any(|l| l.trim() == "frozen 1") {
                        frozen.push(FreezerCgroup {
                            hierarchy: CgroupHierarchy::V2 {
                                mount: mount.display().to_string(),
                            },
                            path,
                            state: FreezerState::Frozen,
                        });
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => gaps.record(
                    "cgroupfs",
                    "cgroup.events",
                    e.to_string(),
                    file.display().to_string(),
                ),
            }
        }
    }
    frozen
}
