use std::fmt;

use serde::{Deserialize, Serialize};

/// One process (thread group) as read from `/proc/PID`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Process {
    /// Process id in the initial pid namespace.
    pub pid: i32,
    /// Parent process id.
    pub ppid: i32,
    /// The kernel's short name for the task (`/proc/PID/comm`, at most 15 bytes).
    pub comm: String,
    /// Arguments from `/proc/PID/cmdline`; empty for kernel threads and zombies.
    #[serde(default)]
    pub cmdline: Vec<String>,
    /// Scheduler state of the thread-group leader.
    pub state: TaskState,
    /// When the process started, in clock ticks since boot (field 22 of `/proc/PID/stat`).
    pub start_time_ticks: u64,
    /// Real uid, when `/proc/PID/status` could be read.
    #[serde(default)]
    pub uid: Option<u32>,
    /// Number of threads.
    pub threads: u32,
    /// True for kernel threads (`PF_KTHREAD`), which have no fds, limits or user memory.
    #[serde(default)]
    pub kernel_thread: bool,
    /// `RLIMIT_NOFILE` (`Max open files` in `/proc/PID/limits`).
    #[serde(default)]
    pub nofile: Option<ResourceLimit>,
    /// Namespace inodes; a `None` field could not be read (see the snapshot's gaps).
    #[serde(default)]
    pub namespaces: NamespaceIds,
    /// Cgroup memberships from `/proc/PID/cgroup`.
    #[serde(default)]
    pub cgroups: Vec<CgroupMembership>,
    /// The kernel function the task sleeps in (`/proc/PID/wchan`), if any.
    #[serde(default)]
    pub wchan: Option<String>,
    /// User CPU time in clock ticks.
    pub utime_ticks: u64,
    /// System CPU time in clock ticks.
    pub stime_ticks: u64,
    /// When `/proc/PID/stat` was read, in microseconds of `CLOCK_MONOTONIC`, so CPU shares
    /// can be computed against the [`TaskSample`] taken later.
    #[serde(default)]
    pub sampled_at_us: u64,
    /// The open file descriptors by kind; `None` when `/proc/PID/fd` could not be read.
    #[serde(default)]
    pub fds: Option<FdCensus>,
    /// The kernel stack (`/proc/PID/stack`), read only for tasks that a detector needs it for
    /// (uninterruptible sleep and other suspects), to keep scans cheap.
    #[serde(default)]
    pub kernel_stack: Option<Vec<StackFrame>>,
    /// The task's pid in each pid namespace it belongs to, outermost first (`NSpid` of
    /// `/proc/PID/status`). The last is its pid inside its own namespace: 1 for the init of
    /// a container's pid namespace.
    #[serde(default)]
    pub nspid: Vec<i32>,
    /// The environment variables a detector needs, and only those (names starting with
    /// `CNI_`): nothing else from `/proc/PID/environ` is kept, so no secret is collected.
    #[serde(default)]
    pub environment: std::collections::BTreeMap<String, String>,
    /// The system call the task is blocked in (`/proc/PID/syscall`), read with the stack.
    #[serde(default)]
    pub syscall: Option<BlockedSyscall>,
    /// A SIGKILL is pending (`SigPnd`/`ShdPnd` of `/proc/PID/status`): the task was killed
    /// and has not been able to act on it.
    #[serde(default)]
    pub sigkill_pending: bool,
    /// Reading `/proc/PID/cmdline` did not finish within the scan's deadline: its memory-map
    /// lock is held, so `ps`, `top` and `pgrep -f` hang on this process too. `cmdline` and
    /// `environment` are then empty because they could not be read, not because they are.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub memory_map_blocked: bool,
    /// Context switches of the thread-group leader so far (`voluntary_ctxt_switches` +
    /// `nonvoluntary_ctxt_switches` of `/proc/PID/status`). A task whose count has not moved
    /// between two readings did not run in between: the kernel's hung-task detector uses the
    /// same test.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_switches: Option<u64>,
}

/// What `/proc/PID/syscall` says a sleeping task is doing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockedSyscall {
    /// The system call number (architecture-specific), or -1 when the task is blocked outside
    /// a system call (in a page fault, say).
    pub number: i64,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<u64>,
    /// For calls whose first argument is a file descriptor (`read`, `write`, …), what that
    /// descriptor is (`/proc/PID/fd/N` link target), e.g. `pipe:[1234]` or a path.
    #[serde(default)]
    pub fd_target: Option<String>,
}

impl BlockedSyscall {
    /// The call's name on `machine` (`uname -m`), for the calls detectors talk about.
    pub fn name(&self, machine: &str) -> Option<&'static str> {
        syscall_name(machine, self.number)
    }

    /// The first argument as a file descriptor, for calls that take one.
    pub fn fd(&self, machine: &str) -> Option<i32> {
        let name = self.name(machine)?;
        FD_FIRST_ARG
            .contains(&name)
            .then(|| self.args.first().map(|&a| a as i32))
            .flatten()
    }
}

/// Calls whose first argument is a file descriptor.
pub(crate) const FD_FIRST_ARG: &[&str] = &[
    "read",
    "write",
    "pread64",
    "pwrite64",
    "readv",
    "writev",
    "ioctl",
    "fsync",
    "fdatasync",
    "recvfrom",
    "recvmsg",
    "sendto",
    "sendmsg",
    "accept",
    "accept4",
    "connect",
    "flock",
    "getdents64",
    "ftruncate",
];

/// Names of the system calls detectors talk about, by architecture.
pub fn syscall_name(machine: &str, number: i64) -> Option<&'static str> {
    let table: &[(i64, &str)] = match machine {
        "x86_64" => &[
            (0, "read"),
            (1, "write"),
            (2, "open"),
            (7, "poll"),
            (16, "ioctl"),
            (17, "pread64"),
            (18, "pwrite64"),
            (19, "readv"),
            (20, "writev"),
            (23, "select"),
            (35, "nanosleep"),
            (42, "connect"),
            (43, "accept"),
            (44, "sendto"),
            (45, "recvfrom"),
            (46, "sendmsg"),
            (47, "recvmsg"),
            (58, "vfork"),
            (61, "wait4"),
            (73, "flock"),
            (74, "fsync"),
            (75, "fdatasync"),
            (76, "truncate"),
            (77, "ftruncate"),
            (162, "sync"),
            (202, "futex"),
            (217, "getdents64"),
            (230, "clock_nanosleep"),
            (232, "epoll_wait"),
            (247, "waitid"),
            (257, "openat"),
            (270, "pselect6"),
            (271, "ppoll"),
            (288, "accept4"),
            (306, "syncfs"),
            (437, "openat2"),
        ],
        "aarch64" => &[
            (17, "getcwd"),
            (29, "ioctl"),
            (32, "flock"),
            (45, "truncate"),
            (46, "ftruncate"),
            (56, "openat"),
            (61, "getdents64"),
            (63, "read"),
            (64, "write"),
            (65, "readv"),
            (66, "writev"),
            (67, "pread64"),
            (68, "pwrite64"),
            (72, "pselect6"),
            (73, "ppoll"),
            (81, "sync"),
            (82, "fsync"),
            (83, "fdatasync"),
            (95, "waitid"),
            (98, "futex"),
            (101, "nanosleep"),
            (115, "clock_nanosleep"),
            (202, "accept"),
            (203, "connect"),
            (206, "sendto"),
            (207, "recvfrom"),
            (211, "sendmsg"),
            (212, "recvmsg"),
            (242, "accept4"),
            (260, "wait4"),
            (267, "syncfs"),
            (437, "openat2"),
        ],
        _ => return None,
    };
    table
        .iter()
        .find(|(n, _)| *n == number)
        .map(|(_, name)| *name)
}

impl Process {
    /// The identity of this process that survives pid reuse.
    pub fn key(&self) -> ProcessKey {
        ProcessKey {
            pid: self.pid,
            start_time_ticks: self.start_time_ticks,
        }
    }

    /// A short human label: `comm (pid N)`.
    pub fn label(&self) -> String {
        format!("{} (pid {})", self.comm, self.pid)
    }
}

/// A pid together with its start time: two processes with the same pid are the same process
/// only if they also started at the same tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ProcessKey {
    /// Process id.
    pub pid: i32,
    /// Start time in clock ticks since boot.
    pub start_time_ticks: u64,
}

/// A process's state letter from `/proc/PID/stat`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TaskState {
    /// `R`: running or runnable.
    #[serde(rename = "R")]
    Running,
    /// `S`: interruptible sleep.
    #[serde(rename = "S")]
    Sleeping,
    /// `D`: uninterruptible sleep; signals, SIGKILL included, wait until it returns.
    #[serde(rename = "D")]
    UninterruptibleSleep,
    /// `T`: stopped by a signal.
    #[serde(rename = "T")]
    Stopped,
    /// `t`: stopped by a tracer.
    #[serde(rename = "t")]
    TracingStop,
    /// `Z`: exited, waiting for its parent to reap it.
    #[serde(rename = "Z")]
    Zombie,
    /// `X`: dead, being torn down.
    #[serde(rename = "X")]
    Dead,
    /// `I`: idle kernel thread.
    #[serde(rename = "I")]
    Idle,
    /// `P`: parked kernel thread.
    #[serde(rename = "P")]
    Parked,
    /// `W`, `K` and letters from kernels newer than this build.
    #[serde(other, rename = "?")]
    Other,
}

impl TaskState {
    /// Parses the state letter of `/proc/PID/stat`.
    pub fn from_letter(letter: char) -> TaskState {
        match letter {
            'R' => TaskState::Running,
            'S' => TaskState::Sleeping,
            'D' => TaskState::UninterruptibleSleep,
            'T' => TaskState::Stopped,
            't' => TaskState::TracingStop,
            'Z' => TaskState::Zombie,
            'X' | 'x' => TaskState::Dead,
            'I' => TaskState::Idle,
            'P' => TaskState::Parked,
            _ => TaskState::Other,
        }
    }

    /// The letter `ps` shows.
    pub fn letter(self) -> char {
        match self {
            TaskState::Running => 'R',
            TaskState::Sleeping => 'S',
            TaskState::UninterruptibleSleep => 'D',
            TaskState::Stopped => 'T',
            TaskState::TracingStop => 't',
            TaskState::Zombie => 'Z',
            TaskState::Dead => 'X',
            TaskState::Idle => 'I',
            TaskState::Parked => 'P',
            TaskState::Other => '?',
        }
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words = match self {
            TaskState::Running => "running",
            TaskState::Sleeping => "sleeping",
            TaskState::UninterruptibleSleep => "uninterruptible sleep",
            TaskState::Stopped => "stopped",
            TaskState::TracingStop => "tracing stop",
            TaskState::Zombie => "zombie",
            TaskState::Dead => "dead",
            TaskState::Idle => "idle",
            TaskState::Parked => "parked",
            TaskState::Other => "other",
        };
        write!(f, "{} ({})", self.letter(), words)
    }
}

/// One resource limit value: a number, or `unlimited`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Limit {
    /// A finite limit.
    Finite(u64),
    /// No limit (`RLIM_INFINITY`).
    Unlimited,
}

impl Limit {
    /// The finite value, if any.
    pub fn finite(self) -> Option<u64> {
        match self {
            Limit::Finite(n) => Some(n),
            Limit::Unlimited => None,
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::Finite(n) => write!(f, "{n}"),
            Limit::Unlimited => f.write_str("unlimited"),
        }
    }
}

impl Serialize for Limit {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Limit::Finite(n) => serializer.serialize_u64(*n),
            Limit::Unlimited => serializer.serialize_str("unlimited"),
        }
    }
}

impl<'de> Deserialize<'de> for Limit {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Number(u64),
            Word(String),
        }
        match Repr::deserialize(deserializer)? {
            Repr::Number(n) => Ok(Limit::Finite(n)),
            Repr::Word(w) if w == "unlimited" => Ok(Limit::Unlimited),
            Repr::Word(w) => Err(serde::de::Error::custom(format!(
                "expected a number or \"unlimited\", found {w:?}"
            ))),
        }
    }
}

/// A soft/hard resource limit pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceLimit {
    /// The limit the kernel enforces.
    pub soft: Limit,
    /// The ceiling the process may raise its soft limit to.
    pub hard: Limit,
}

/// Namespace inodes from `/proc/PID/ns/*`. Two tasks share a namespace iff the inodes match.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceIds {
    /// `pid:[inode]`.
    pub pid: Option<u64>,
    /// `net:[inode]`.
    pub net: Option<u64>,
    /// `mnt:[inode]`.
    pub mnt: Option<u64>,
}

/// One line of `/proc/PID/cgroup`: `hierarchy-id:controllers:path`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupMembership {
    /// Hierarchy id; 0 is the unified (cgroup2) hierarchy.
    pub hierarchy: u32,
    /// Comma-separated controllers (empty for cgroup2, `name=systemd` for named ones).
    pub controllers: String,
    /// Path of the cgroup inside that hierarchy.
    pub path: String,
}

/// One frame of `/proc/PID/stack`, e.g. `[<0>] iterate_supers+0xa2/0x110`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackFrame {
    /// Kernel function name.
    pub function: String,
    /// `+0xa2/0x110` offset and size, as printed.
    #[serde(default)]
    pub offset: Option<String>,
    /// Module in brackets after the frame, e.g. `ceph`.
    #[serde(default)]
    pub module: Option<String>,
}

impl fmt::Display for StackFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.function)?;
        if let Some(offset) = &self.offset {
            write!(f, "+{offset}")?;
        }
        if let Some(module) = &self.module {
            write!(f, " [{module}]")?;
        }
        Ok(())
    }
}

/// How many descriptors of each kind a process holds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FdCensus {
    /// Open descriptors (entries of `/proc/PID/fd`).
    pub total: u64,
    /// Counts per kind, biggest first.
    pub kinds: Vec<FdKindCount>,
    /// How socket families and protocols were told apart for this process.
    pub socket_resolution: SocketResolution,
    /// Descriptors that hold a namespace open (`net:[…]`, `mnt:[…]`), which keeps the
    /// namespace alive even when no task is in it.
    #[serde(default)]
    pub namespace_fds: Vec<NamespaceFd>,
    /// What standard input (fd 0) is, when open.
    #[serde(default)]
    pub stdin: Option<FdKind>,
    /// Descriptors open on `/dev/fuse`: the process serves a FUSE filesystem.
    #[serde(default)]
    pub fuse_device_fds: u64,
}

impl FdCensus {
    /// The count for one kind (0 when absent).
    pub fn count(&self, kind: &FdKind) -> u64 {
        self.kinds
            .iter()
            .find(|k| &k.kind == kind)
            .map_or(0, |k| k.count)
    }

    /// All sockets, of any family.
    pub fn sockets(&self) -> u64 {
        self.kinds
            .iter()
            .filter(|k| k.kind.is_socket())
            .map(|k| k.count)
            .sum()
    }
}

/// One row of a census.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FdKindCount {
    /// What the descriptors are.
    #[serde(flatten)]
    pub kind: FdKind,
    /// How many.
    pub count: u64,
}

/// A descriptor that refers to a namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceFd {
    /// The fd number.
    pub fd: i32,
    /// `net`, `mnt`, `pid`, …
    pub namespace: String,
    /// The namespace inode.
    pub inode: u64,
}

/// How a census told socket protocols apart.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum SocketResolution {
    /// The process holds no sockets.
    #[default]
    NoSockets,
    /// Each socket was duplicated with `pidfd_getfd(2)` and asked `SO_DOMAIN`/`SO_PROTOCOL`:
    /// exact, linear in the number of sockets.
    PidfdGetfd,
    /// Socket inodes were looked up in `/proc/PID/net/netlink` and friends: slow with many
    /// netlink sockets and may miss sockets created or closed while the table is read.
    ProcNetTables,
    /// Protocols could not be resolved: sockets are counted as `unresolved-socket`.
    Unresolved,
    /// Read from `lsof` output saved in a bundle (a sosreport): lsof's `TYPE` and `NAME`
    /// columns, netlink protocols as lsof matched them in `/proc/net/netlink`, and the sockets
    /// it left as `sock … protocol: NETLINK` looked up in the bundle's copy of that table.
    /// Exact when lsof's table read was; sockets neither could place are `unresolved-socket`.
    Lsof,
}

impl fmt::Display for SocketResolution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SocketResolution::NoSockets => "no sockets",
            SocketResolution::PidfdGetfd => "pidfd_getfd + SO_PROTOCOL (exact)",
            SocketResolution::ProcNetTables => "/proc/PID/net tables (approximate)",
            SocketResolution::Unresolved => "unresolved",
            SocketResolution::Lsof => {
                "lsof in the bundle (netlink protocols from /proc/net/netlink)"
            }
        })
    }
}

/// What an open file descriptor refers to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum FdKind {
    /// A regular file.
    File,
    /// A directory.
    Directory,
    /// A character device (`/dev/null`, a tty, `/dev/fuse`, …).
    CharDevice,
    /// A block device.
    BlockDevice,
    /// A named FIFO in the filesystem.
    NamedPipe,
    /// An anonymous pipe (`pipe:[inode]`).
    Pipe,
    /// A `memfd_create(2)` file.
    Memfd,
    /// An `AF_UNIX` socket.
    UnixSocket,
    /// A TCP socket (IPv4 or IPv6).
    TcpSocket,
    /// A UDP socket (IPv4 or IPv6).
    UdpSocket,
    /// An `AF_PACKET` socket.
    PacketSocket,
    /// An `AF_NETLINK` socket of one protocol.
    NetlinkSocket {
        /// `NETLINK_ROUTE`, `NETLINK_GENERIC`, …
        protocol: NetlinkProtocol,
    },
    /// A socket of another family, or an inet socket of another protocol.
    OtherSocket {
        /// Address family (`AF_*`).
        family: u16,
        /// Protocol number within the family.
        protocol: i32,
    },
    /// A socket whose family could not be resolved (see the census's resolution).
    UnresolvedSocket,
    /// An anonymous inode: `eventfd`, `eventpoll`, `timerfd`, `signalfd`, `bpf-map`, …
    AnonInode {
        /// The type without brackets, as the kernel names it.
        name: String,
    },
    /// A namespace file (`net:[…]`, …).
    Namespace,
    /// Anything else (`/proc/PID/fd` link targets nodedoc does not know).
    Other,
}

impl FdKind {
    /// True for sockets of any family.
    pub fn is_socket(&self) -> bool {
        matches!(
            self,
            FdKind::UnixSocket
                | FdKind::TcpSocket
                | FdKind::UdpSocket
                | FdKind::PacketSocket
                | FdKind::NetlinkSocket { .. }
                | FdKind::OtherSocket { .. }
                | FdKind::UnresolvedSocket
        )
    }
}

impl fmt::Display for FdKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FdKind::File => f.write_str("regular file"),
            FdKind::Directory => f.write_str("directory"),
            FdKind::CharDevice => f.write_str("character device"),
            FdKind::BlockDevice => f.write_str("block device"),
            FdKind::NamedPipe => f.write_str("named pipe"),
            FdKind::Pipe => f.write_str("pipe"),
            FdKind::Memfd => f.write_str("memfd"),
            FdKind::UnixSocket => f.write_str("unix socket"),
            FdKind::TcpSocket => f.write_str("tcp socket"),
            FdKind::UdpSocket => f.write_str("udp socket"),
            FdKind::PacketSocket => f.write_str("packet socket"),
            FdKind::NetlinkSocket { protocol } => write!(f, "netlink socket {protocol}"),
            FdKind::OtherSocket { family, protocol } => {
                write!(f, "socket of family {family} protocol {protocol}")
            }
            FdKind::UnresolvedSocket => f.write_str("socket (family unresolved)"),
            FdKind::AnonInode { name } => write!(f, "anon_inode [{name}]"),
            FdKind::Namespace => f.write_str("namespace"),
            FdKind::Other => f.write_str("other"),
        }
    }
}

/// A netlink protocol number (`NETLINK_*` from `<linux/netlink.h>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "NetlinkProtocolRepr", try_from = "NetlinkProtocolRepr")]
pub struct NetlinkProtocol(pub u16);

/// Names of the protocols in `<linux/netlink.h>`, indexed by number.
const NETLINK_PROTOCOL_NAMES: &[(u16, &str)] = &[
    (0, "NETLINK_ROUTE"),
    (1, "NETLINK_UNUSED"),
    (2, "NETLINK_USERSOCK"),
    (3, "NETLINK_FIREWALL"),
    (4, "NETLINK_SOCK_DIAG"),
    (5, "NETLINK_NFLOG"),
    (6, "NETLINK_XFRM"),
    (7, "NETLINK_SELINUX"),
    (8, "NETLINK_ISCSI"),
    (9, "NETLINK_AUDIT"),
    (10, "NETLINK_FIB_LOOKUP"),
    (11, "NETLINK_CONNECTOR"),
    (12, "NETLINK_NETFILTER"),
    (13, "NETLINK_IP6_FW"),
    (14, "NETLINK_DNRTMSG"),
    (15, "NETLINK_KOBJECT_UEVENT"),
    (16, "NETLINK_GENERIC"),
    (18, "NETLINK_SCSITRANSPORT"),
    (19, "NETLINK_ECRYPTFS"),
    (20, "NETLINK_RDMA"),
    (21, "NETLINK_CRYPTO"),
    (22, "NETLINK_SMC"),
];

impl NetlinkProtocol {
    /// `NETLINK_ROUTE`: rtnetlink (links, addresses, routes).
    pub const ROUTE: NetlinkProtocol = NetlinkProtocol(0);
    /// `NETLINK_SOCK_DIAG`.
    pub const SOCK_DIAG: NetlinkProtocol = NetlinkProtocol(4);
    /// `NETLINK_GENERIC`: genetlink, used by the OVS kernel datapath for upcalls.
    pub const GENERIC: NetlinkProtocol = NetlinkProtocol(16);

    /// The `NETLINK_*` name, if the number is known.
    pub fn name(self) -> Option<&'static str> {
        NETLINK_PROTOCOL_NAMES
            .iter()
            .find(|(n, _)| *n == self.0)
            .map(|(_, name)| *name)
    }

    /// Looks a protocol up by its `NETLINK_*` name.
    pub fn from_name(name: &str) -> Option<NetlinkProtocol> {
        NETLINK_PROTOCOL_NAMES
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(number, _)| NetlinkProtocol(*number))
    }

    /// The word `lsof` prints in its NODE column for this protocol (`GENERIC`, `ROUTE`, …).
    pub fn lsof_word(self) -> String {
        match self.name() {
            Some(name) => name.trim_start_matches("NETLINK_").to_string(),
            None => self.0.to_string(),
        }
    }
}

impl fmt::Display for NetlinkProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "netlink protocol {}", self.0),
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum NetlinkProtocolRepr {
    Number(u16),
    Name(String),
}

impl From<NetlinkProtocol> for NetlinkProtocolRepr {
    fn from(p: NetlinkProtocol) -> Self {
        match p.name() {
            Some(name) => NetlinkProtocolRepr::Name(name.to_string()),
            None => NetlinkProtocolRepr::Number(p.0),
        }
    }
}

impl TryFrom<NetlinkProtocolRepr> for NetlinkProtocol {
    type Error = String;
    fn try_from(repr: NetlinkProtocolRepr) -> Result<Self, Self::Error> {
        match repr {
            NetlinkProtocolRepr::Number(n) => Ok(NetlinkProtocol(n)),
            NetlinkProtocolRepr::Name(name) => NetlinkProtocol::from_name(&name)
                .ok_or_else(|| format!("unknown netlink protocol name {name:?}")),
        }
    }
}

/// A cheap second reading of one task, taken a short interval after the main scan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskSample {
    /// Process id.
    pub pid: i32,
    /// Start time, to tell a reused pid apart.
    pub start_time_ticks: u64,
    /// State at the second reading.
    pub state: TaskState,
    /// User CPU ticks at the second reading.
    pub utime_ticks: u64,
    /// System CPU ticks at the second reading.
    pub stime_ticks: u64,
    /// When it was read, in microseconds of `CLOCK_MONOTONIC`.
    pub sampled_at_us: u64,
    /// For a task in `D` at both readings: whether it is one wait, not two, and the kernel
    /// stack (with wchan and system call) read at the second reading is of that wait. `None`
    /// when not checked: not in `D` at both readings, or a snapshot of an older nodedoc.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked: Option<BlockedCheck>,
}

/// How a task in `D` at both readings was checked before its kernel stack was believed.
///
/// A task that forks in a loop passes through `D` (in `kernel_clone`, waiting for a vfork
/// child) thousands of times a second: two readings can each catch it in `D` in a different
/// wait, and a stack read a moment later is of yet another moment (`do_wait`). So the stack is
/// read only at the second reading, only when the task has not run since the first (its
/// context-switch count has not moved), and kept only if, once read, the task is still the same
/// process, still in `D`, still not run, and sleeping in the same function.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum BlockedCheck {
    /// One wait from the first reading to after the stack was read: the stack is of it.
    Confirmed {
        /// The context-switch count, unchanged throughout (`None` where `/proc/PID/status`
        /// gives none: then only state and start time were checked).
        #[serde(default)]
        context_switches: Option<u64>,
    },
    /// It ran between the readings: two waits, not one stuck task.
    RanBetween {
        /// Context switches at the first reading.
        first: u64,
        /// At the second.
        second: u64,
    },
    /// While its stack was read it left `D`, ran, exited or its pid was taken, or the stack
    /// does not hold the function it sleeps in: the stack is discarded.
    StackDiscarded {
        /// Why, e.g. `it left D (now S)`, `it ran (context switches 12 → 13)`, `its wchan
        /// changed (kernel_clone → do_wait)`, `it exited`.
        why: String,
    },
}

impl BlockedCheck {
    /// True when the stack read at the second reading is of the wait seen at both readings.
    pub fn confirmed(&self) -> bool {
        matches!(self, BlockedCheck::Confirmed { .. })
    }
}

impl TaskSample {
    /// The identity of the sampled process.
    pub fn key(&self) -> ProcessKey {
        ProcessKey {
            pid: self.pid,
            start_time_ticks: self.start_time_ticks,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netlink_protocols_serialize_by_name_and_read_back_either_way() {
        let kind = FdKind::NetlinkSocket {
            protocol: NetlinkProtocol::GENERIC,
        };
        let json = serde_json::to_string(&kind).unwrap();
        assert_eq!(
            json,
            r#"{"kind":"netlink-socket","protocol":"NETLINK_GENERIC"}"#
        );
        let back: FdKind = serde_json::from_str(&json).unwrap();
        assert_eq!(back, kind);
        let numeric: FdKind =
            serde_json::from_str(r#"{"kind":"netlink-socket","protocol":31}"#).unwrap();
        assert_eq!(
            numeric,
            FdKind::NetlinkSocket {
                protocol: NetlinkProtocol(31)
            }
        );
        assert!(serde_json::from_str::<FdKind>(
            r#"{"kind":"netlink-socket","protocol":"NETLINK_BOGUS"}"#
        )
        .is_err());
    }

    #[test]
    fn census_rows_flatten_the_kind() {
        let row = FdKindCount {
            kind: FdKind::AnonInode {
                name: "eventfd".into(),
            },
            count: 3,
        };
        let json = serde_json::to_string(&row).unwrap();
        assert_eq!(json, r#"{"kind":"anon-inode","name":"eventfd","count":3}"#);
        assert_eq!(serde_json::from_str::<FdKindCount>(&json).unwrap(), row);
    }

    #[test]
    fn limits_read_numbers_and_unlimited() {
        let limit: ResourceLimit =
            serde_json::from_str(r#"{"soft":1024,"hard":"unlimited"}"#).unwrap();
        assert_eq!(limit.soft, Limit::Finite(1024));
        assert_eq!(limit.hard, Limit::Unlimited);
        assert!(serde_json::from_str::<Limit>(r#""lots""#).is_err());
    }

    #[test]
    fn unknown_state_letters_do_not_fail() {
        let state: TaskState = serde_json::from_str(r#""W""#).unwrap();
        assert_eq!(state, TaskState::Other);
        assert_eq!(TaskState::from_letter('D'), TaskState::UninterruptibleSleep);
        assert_eq!(TaskState::UninterruptibleSleep.letter(), 'D');
    }
}
