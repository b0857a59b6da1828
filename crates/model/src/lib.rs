//! The data nodedoc passes between its stages.
//!
//! nodedoc is a pipeline: collectors read the host into a [`Snapshot`], detectors turn a
//! snapshot into [`Finding`]s, and the report renders a [`Report`]. Everything here is plain
//! serde data so a snapshot taken on one machine (`nodedoc collect -o FILE`) gives the same
//! findings on another (`nodedoc check --from FILE`).
//!
//! Compatibility rule: fields added to a snapshot type must be `#[serde(default)]`, so that
//! files written by an older nodedoc of the same format version keep loading. A change that
//! old readers would misread bumps [`SNAPSHOT_VERSION`].
#![deny(missing_docs)]

pub mod clock;
mod container;
mod cpu;
mod file;
mod finding;
mod gaps;
mod history;
pub mod hostfile;
mod kernel_log;
mod kube;
mod ovs;
mod process;
mod rule_match;
mod service_log;
mod snapshot;
mod system;
pub mod text;

pub use container::{ContainerRef, ContainerRuntime, KnownContainer, PodRef};
pub use cpu::{
    CpuPoint, CpuProfile, CpuSeries, KernelStackCount, NetlinkDumpSocket, NetlinkDumps,
    ProfileMethod, SamplingCost,
};
pub use file::{
    parse_snapshot, read_snapshot, read_snapshot_with, write_snapshot, SnapshotFileError,
    SnapshotLimits, DEFAULT_MAX_SNAPSHOT_BYTES,
};
pub use finding::{
    Evidence, Finding, FindingGroup, FindingId, GroupMember, Reference, Report, ReportSummary,
    Severity, Subject, REPORT_FORMAT,
};
pub use gaps::{Gap, Gaps};
pub use history::{FdPoint, FdSeries, History};
pub use kernel_log::{
    BadPrintkCaller, BlockedTaskOrigin, BlockedTaskReport, BlockerLock, KernelLog, KernelLogFile,
    KernelLogSource, KmsgRecord, LockBlocker, LogPosition, NetdevRefTrackerReport, PrintkCaller,
    RefTrackerStack, TaskStateLine, TraceFrame,
};
pub use kube::{
    history_limit_patch, ApiserverMetrics, ContainerId, ContainerRole, ContainerState, CreatedWith,
    EffectiveLimit, KubeCondition, KubeContainerStatus, KubeDeployment, KubeListing, KubeMeta,
    KubeOwner, KubePod, KubeReplicaSet, KubeState, LimitSource, RevisionHistory, StoredObjects,
    REVISION_ANNOTATION, UNLIMITED_REVISION_HISTORY,
};
pub use ovs::{
    NetDevice, NetNamespace, NetworkNamespaces, OvsBridge, OvsDbEvent, OvsDbEventKind,
    OvsDbHistory, OvsDbInterfaceCounts, OvsInterface, OvsLog, OvsLogEvent, OvsLogEventKind,
    OvsPort, OvsState, VswitchdProcess,
};
pub use process::{
    syscall_name, BlockedCheck, BlockedSyscall, CgroupMembership, FdCensus, FdKind, FdKindCount,
    Limit, NamespaceFd, NamespaceIds, NetlinkProtocol, Process, ProcessKey, ResourceLimit,
    SocketResolution, StackFrame, TaskSample, TaskState,
};
pub use rule_match::{RuleKind, RuleMatch};
pub use service_log::{LogEntry, LogFormat, ServiceLog};
pub use snapshot::{
    HostInfo, Resample, Snapshot, SourceState, SourceStatus, SNAPSHOT_FORMAT, SNAPSHOT_VERSION,
};
pub use system::{CgroupHierarchy, FreezerCgroup, FreezerState, MountEntry};
