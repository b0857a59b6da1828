//! Reads a sosreport — the bundle `sos report` (formerly `sosreport`) makes on a node for a
//! support case — into a nodedoc [`Snapshot`], so every detector the content supports runs on
//! it as on a live host (`nodedoc check --sos PATH`).
//!
//! What the snapshot gets, and from which file of the report:
//!
//! | snapshot | sosreport file |
//! |---|---|
//! | processes: state, parent, uid, wait channel, start, CPU time, command line | `sos_commands/process/ps_axo_flags_state_uid_pid_ppid_…_wchan_20_lstart_tty_time_cmd` |
//! | processes: `comm`, threads, cgroups | `sos_commands/process/ps_axo_pid_ppid_user_group_lwp_nlwp_start_time_comm_cgroup` |
//! | a second reading of every state (zombies and D tasks still there) | `sos_commands/process/ps_auxwww` (sos runs it first, before lsof) |
//! | fd census per process, netlink sockets by protocol | `sos_commands/process/lsof_-b_M_-n_-l_-c` (or `lsof_M_-n_-l_-c`), `proc/net/netlink` |
//! | `RLIMIT_NOFILE`, uid, pending SIGKILL, kernel stacks (newer sos, first 2,048 pids) | `proc/PID/limits`, `proc/PID/status`, `proc/PID/stack` |
//! | kernel log with blocked-task reports | `sos_commands/kernel/dmesg` |
//! | kernel release, machine, host name, clock | `sos_commands/kernel/uname_-a`, `sos_commands/host/hostname`, `sos_commands/date/date{,_--utc}`, `proc/stat` (`btime`, CPUs) |
//! | Open vSwitch topology and Interface rows | `sos_commands/openvswitch/ovsdb-client_-f_list_dump` (else `ovs-vsctl_-t_5_list_interface` + `ovs-vsctl_-t_5_show`) |
//! | ovs-vswitchd and its log | `run/openvswitch/ovs-vswitchd.pid`, the copied `ovs-vswitchd.log` (`var/log/openvswitch/`, or wherever `OVS_LOGDIR` pointed: found through `sos_reports/manifest.json`) |
//! | network devices by namespace | `sos_commands/networking/ip_-d_address`, `ip_netns`, `ip_netns_exec_NAME_ip_address_show` |
//! | mounts of interest, freezer states | `proc/1/mountinfo`, `sys/fs/cgroup/…/freezer.state` (cgroups plugin) |
//!
//! What a report lacks is said, per detector, in the snapshot's gaps (no `/proc/PID/limits` in
//! sos 4.0, stacks for the first 2,048 pids only, an lsof that sos's timeout killed, a
//! `dmesg` without facilities, namespaces without a name). Every file is untrusted input: see
//! [`bundle`](crate::Limits) for how it is read.
#![deny(missing_docs)]

mod build;
mod bundle;
mod lsof;
mod net;
mod ovs;
mod ps;

use std::path::{Path, PathBuf};

pub use build::read_sosreport;
pub use bundle::Limits;

/// Why a sosreport could not be read at all. (A file missing from a report is not an error:
/// it is a gap in the snapshot.)
#[derive(Debug, thiserror::Error)]
pub enum SosError {
    /// The path could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path given.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The path is not a sosreport.
    #[error("{} is not a sosreport: {why}", path.display())]
    NotASosreport {
        /// The path given.
        path: PathBuf,
        /// What was found instead.
        why: String,
    },
    /// The tarball is corrupt or not a tar archive.
    #[error("{}: cannot read the archive: {source}", path.display())]
    Archive {
        /// The tarball.
        path: PathBuf,
        /// The decoder's or tar reader's error.
        source: std::io::Error,
    },
    /// The tarball is beyond a size limit.
    #[error("{}: {what}: not read", path.display())]
    TooLarge {
        /// The tarball.
        path: PathBuf,
        /// Which limit.
        what: String,
    },
    /// The tarball is not a regular file, stalled, …
    #[error(transparent)]
    File(#[from] nodedoc_model::hostfile::HostFileError),
}

impl SosError {
    /// The path the error is about.
    pub fn path(&self) -> &Path {
        match self {
            SosError::Io { path, .. }
            | SosError::NotASosreport { path, .. }
            | SosError::Archive { path, .. }
            | SosError::TooLarge { path, .. } => path,
            SosError::File(e) => e.path(),
        }
    }
}
