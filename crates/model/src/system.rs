use std::fmt;

use serde::{Deserialize, Serialize};

/// The freezer state of one cgroup that holds a process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreezerCgroup {
    /// Which hierarchy the path is in.
    pub hierarchy: CgroupHierarchy,
    /// The cgroup path inside the hierarchy (as in `/proc/PID/cgroup`).
    pub path: String,
    /// Its state.
    pub state: FreezerState,
}

impl FreezerCgroup {
    /// The file a human reads (and writes to thaw), e.g.
    /// `/sys/fs/cgroup/freezer/x/freezer.state`.
    pub fn state_file(&self) -> String {
        match self.hierarchy {
            CgroupHierarchy::V1Freezer => {
                format!("/sys/fs/cgroup/freezer{}/freezer.state", self.path)
            }
            CgroupHierarchy::V2 { ref mount } => format!("{mount}{}/cgroup.freeze", self.path),
        }
    }

    /// What to write into [`state_file`](Self::state_file) to thaw it.
    pub fn thaw_value(&self) -> &'static str {
        match self.hierarchy {
            CgroupHierarchy::V1Freezer => "THAWED",
            CgroupHierarchy::V2 { .. } => "0",
        }
    }
}

/// A cgroup hierarchy that can freeze tasks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "version", rename_all = "kebab-case")]
pub enum CgroupHierarchy {
    /// The cgroup v1 `freezer` controller (mounted at `/sys/fs/cgroup/freezer`). Tasks it
    /// freezes cannot be killed until thawed; they show state `D` on recent kernels.
    V1Freezer,
    /// cgroup2 (`cgroup.freeze`). Frozen tasks show `S` and still die on SIGKILL.
    V2 {
        /// Where cgroup2 is mounted (`/sys/fs/cgroup` or `/sys/fs/cgroup/unified`).
        mount: String,
    },
}

/// Whether a cgroup is frozen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FreezerState {
    /// Not frozen.
    Thawed,
    /// Being frozen: some tasks not stopped yet.
    Freezing,
    /// Frozen.
    Frozen,
}

impl fmt::Display for FreezerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FreezerState::Thawed => "THAWED",
            FreezerState::Freezing => "FREEZING",
            FreezerState::Frozen => "FROZEN",
        })
    }
}

/// A mount nodedoc keeps: namespace files (`nsfs`, which keep a namespace alive), FUSE and
/// network filesystems, and the `/sys` of `ip netns exec` ([`MountEntry::ip_netns_exec_name`]). Read from `/proc/PID/mountinfo` of one process per mount namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountEntry {
    /// The mount namespace it was seen in.
    pub mount_namespace: u64,
    /// A process of that mount namespace, whose `/proc/PID/mountinfo` shows it.
    pub seen_via_pid: i32,
    /// The mount id.
    pub mount_id: u64,
    /// Device major number.
    pub major: u32,
    /// Device minor number (for FUSE: the connection number in /sys/fs/fuse/connections).
    pub minor: u32,
    /// The root of the mount within its filesystem (`net:[4026532181]` for an nsfs mount).
    pub root: String,
    /// Where it is mounted.
    pub mount_point: String,
    /// Filesystem type (`nsfs`, `fuse.sshfs`, `ceph`, `nfs4`, …).
    pub fs_type: String,
    /// Mount source (`sshfs#host:/`, `10.0.0.1:/export`, …).
    pub source: String,
}

impl MountEntry {
    /// For an nsfs mount, the namespace type and inode it keeps alive.
    pub fn namespace(&self) -> Option<(&str, u64)> {
        if self.fs_type != "nsfs" {
            return None;
        }
        let (kind, rest) = self.root.split_once(":[")?;
        Some((kind, rest.strip_suffix(']')?.parse().ok()?))
    }

    /// For the `/sys` that `ip netns exec NAME` mounts in the mount namespace it creates, NAME:
    /// iproute2 mounts a sysfs of the entered network namespace on `/sys` with the namespace's
    /// name as the source, where any other sysfs says `sysfs` (or `none`).
    pub fn ip_netns_exec_name(&self) -> Option<&str> {
        (self.fs_type == "sysfs"
            && self.mount_point == "/sys"
            && !matches!(self.source.as_str(), "sysfs" | "none" | ""))
        .then_some(self.source.as_str())
    }

    /// True for FUSE filesystems (`fuse`, `fuse.NAME`, `fuseblk`).
    pub fn is_fuse(&self) -> bool {
        self.fs_type == "fuse" || self.fs_type == "fuseblk" || self.fs_type.starts_with("fuse.")
    }
}
