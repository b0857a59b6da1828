use serde::{Deserialize, Serialize};

use crate::{
    CpuProfile, FreezerCgroup, Gap, History, KernelLog, KnownContainer, KubeState, MountEntry,
    NetworkNamespaces, OvsState, Process, RuleMatch, ServiceLog, TaskSample,
};

/// The value of [`Snapshot::format`]: tells a nodedoc snapshot from any other JSON.
pub const SNAPSHOT_FORMAT: &str = "nodedoc-snapshot";

/// The snapshot format version this build writes and the newest it reads.
pub const SNAPSHOT_VERSION: u32 = 1;

/// Everything the collectors read from one host at one time. Detectors see nothing else.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Always [`SNAPSHOT_FORMAT`].
    pub format: String,
    /// The format version ([`SNAPSHOT_VERSION`] when written by this build).
    pub version: u32,
    /// Facts about the machine and the moment of collection.
    pub host: HostInfo,
    /// Which sources were read, and how.
    #[serde(default)]
    pub sources: Vec<SourceStatus>,
    /// Every process, sorted by pid.
    #[serde(default)]
    pub processes: Vec<Process>,
    /// A second, cheap reading of every process's state and CPU time.
    #[serde(default)]
    pub resample: Option<Resample>,
    /// The kernel log, when it was read.
    #[serde(default)]
    pub kernel_log: Option<KernelLog>,
    /// What could not be read.
    #[serde(default)]
    pub gaps: Vec<Gap>,
    /// Freezer state of the cgroups that hold processes.
    #[serde(default)]
    pub freezers: Vec<FreezerCgroup>,
    /// Mounts of interest from every mount namespace (nsfs, FUSE, network filesystems).
    #[serde(default)]
    pub mounts: Vec<MountEntry>,
    /// Open vSwitch, when an OVSDB socket was found.
    #[serde(default)]
    pub ovs: Option<OvsState>,
    /// The kernel's network devices in every network namespace, when read.
    #[serde(default)]
    pub network: Option<NetworkNamespaces>,
    /// Earlier rounds, for detectors that need time (`nodedoc watch`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<History>,
    /// Logs of services (containerd, dockerd, kubelet, …) read from files or journals.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service_logs: Vec<ServiceLog>,
    /// Lines that matched the user's log rules (`[[log.rule]]` in the config file): events of
    /// this reading, and conditions since the agent started.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rule_matches: Vec<RuleMatch>,
    /// Containers a runtime or the API named (pod namespace and name by container id), to
    /// name the containers that cgroup paths identify.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<KnownContainer>,
    /// What the Kubernetes API (or `kubectl get -o json` files) said: this node's pods, the
    /// cluster's Deployments and ReplicaSets, kube-apiserver's memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube: Option<KubeState>,
    /// Kernel call paths of the processes that used more CPU than the `cpu-hog` threshold
    /// (sampled after the reading that showed them busy), by pid.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cpu_profiles: Vec<CpuProfile>,
}

impl Snapshot {
    /// An empty snapshot of `host`, ready for collectors to fill.
    pub fn new(host: HostInfo) -> Snapshot {
        Snapshot {
            format: SNAPSHOT_FORMAT.to_string(),
            version: SNAPSHOT_VERSION,
            host,
            sources: Vec::new(),
            processes: Vec::new(),
            resample: None,
            kernel_log: None,
            gaps: Vec::new(),
            freezers: Vec::new(),
            mounts: Vec::new(),
            ovs: None,
            network: None,
            history: None,
            service_logs: Vec::new(),
            rule_matches: Vec::new(),
            containers: Vec::new(),
            kube: None,
            cpu_profiles: Vec::new(),
        }
    }

    /// The process with this pid, if it was seen.
    pub fn process(&self, pid: i32) -> Option<&Process> {
        self.processes
            .binary_search_by_key(&pid, |p| p.pid)
            .ok()
            .map(|i| &self.processes[i])
    }

    /// Seconds the process had been running at collection time, if it can be told.
    pub fn process_age_secs(&self, process: &Process) -> Option<f64> {
        let ticks = self.host.clock_ticks_per_sec;
        if ticks == 0 {
            return None;
        }
        let started = process.start_time_ticks as f64 / ticks as f64;
        let now = self.host.uptime_us as f64 / 1e6;
        Some((now - started).max(0.0))
    }

    /// The freezer state that applies to a process: its v1 freezer cgroup, else its cgroup2
    /// cgroup, when that is frozen or freezing.
    pub fn freezer_of(&self, process: &Process) -> Option<&FreezerCgroup> {
        process.cgroups.iter().find_map(|membership| {
            self.freezers.iter().find(|f| {
                f.path == membership.path
                    && match f.hierarchy {
                        crate::CgroupHierarchy::V1Freezer => {
                            membership.controllers.split(',').any(|c| c == "freezer")
                        }
                        crate::CgroupHierarchy::V2 { .. } => membership.hierarchy == 0,
                    }
            })
        })
    }

    /// The container `process` is in, from its cgroups, named with what
    /// [`containers`](Snapshot::containers) knows of it (a runtime's CRI answer), else with
    /// what the Kubernetes API said of this node's pods ([`kube`](Snapshot::kube): the
    /// container ids of their `containerStatuses`, or the pod uid of the cgroup path).
    pub fn container_of(&self, process: &Process) -> Option<crate::ContainerRef> {
        let mut container = process.container()?;
        container.enrich(&self.containers);
        let named = container
            .pod
            .as_ref()
            .is_some_and(|p| p.name.is_some() && p.namespace.is_some());
        if let (false, Some(kube)) = (named, &self.kube) {
            let by_id = kube.pods.iter().find_map(|pod| {
                pod.containers
                    .iter()
                    .find(|c| {
                        c.container_id
                            .as_ref()
                            .is_some_and(|i| i.id == container.id)
                    })
                    .map(|c| (pod, Some(c.name.as_str())))
            });
            let by_uid = || {
                let uid = &container.pod.as_ref()?.uid;
                kube.pods
                    .iter()
                    .find(|pod| &pod.meta.uid == uid)
                    .map(|pod| (pod, None))
            };
            if let Some((pod, name)) = by_id.or_else(by_uid) {
                let known = crate::KnownContainer {
                    id: container.id.clone(),
                    name: name.map(str::to_string),
                    pod_uid: Some(pod.meta.uid.clone()),
                    pod_namespace: Some(pod.meta.namespace.clone()),
                    pod_name: Some(pod.meta.name.clone()),
                };
                container.enrich(std::slice::from_ref(&known));
            }
        }
        Some(container)
    }

    /// Processes whose parent chain leads to `ancestor` (not including it), by pid. Linear in
    /// the number of processes.
    pub fn descendants(&self, ancestor: i32) -> Vec<&Process> {
        let mut children: std::collections::HashMap<i32, Vec<&Process>> =
            std::collections::HashMap::new();
        for p in self.processes.iter().filter(|p| p.ppid != p.pid) {
            children.entry(p.ppid).or_default().push(p);
        }
        let mut seen = std::collections::HashSet::from([ancestor]);
        let mut found: Vec<&Process> = Vec::new();
        let mut frontier = vec![ancestor];
        while let Some(parent) = frontier.pop() {
            for &child in children.get(&parent).into_iter().flatten() {
                if seen.insert(child.pid) {
                    found.push(child);
                    frontier.push(child.pid);
                }
            }
        }
        found.sort_by_key(|p| p.pid);
        found
    }

    /// The kernel profile of the process with this identity, if it was sampled.
    pub fn cpu_profile(&self, key: crate::ProcessKey) -> Option<&CpuProfile> {
        self.cpu_profiles.iter().find(|p| p.key() == key)
    }

    /// The status of one source, by name.
    pub fn source(&self, name: &str) -> Option<&SourceStatus> {
        self.sources.iter().find(|s| s.source == name)
    }
}

/// Facts about the collecting machine.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HostInfo {
    /// `uname -n`.
    pub hostname: String,
    /// `uname -r`, e.g. `6.18.44-fc-v782`.
    pub kernel_release: String,
    /// `uname -v`.
    #[serde(default)]
    pub kernel_version: String,
    /// `uname -m`.
    #[serde(default)]
    pub machine: String,
    /// Collection time, seconds since the Unix epoch.
    pub collected_at_unix: u64,
    /// `CLOCK_MONOTONIC` at collection, in microseconds: the clock of kernel log timestamps
    /// and of process start times.
    pub uptime_us: u64,
    /// Boot time, seconds since the Unix epoch (`btime` of `/proc/stat`).
    #[serde(default)]
    pub boot_time_unix: u64,
    /// `sysconf(_SC_CLK_TCK)`: the unit of process start and CPU times.
    pub clock_ticks_per_sec: u64,
    /// Online CPUs.
    #[serde(default)]
    pub online_cpus: u32,
    /// The nodedoc version that collected.
    pub collector_version: String,
}

/// The second reading of every process, taken a short interval after the main scan. It tells
/// a task stuck in `D` from one passing through, a zombie nobody reaps from one about to be
/// reaped, and gives CPU shares.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Resample {
    /// The interval that was asked for, in milliseconds.
    pub interval_ms: u64,
    /// The readings; a process missing here had exited.
    pub tasks: Vec<TaskSample>,
}

impl Resample {
    /// The second reading of the process with this identity, if it still existed.
    pub fn task(&self, key: crate::ProcessKey) -> Option<&TaskSample> {
        self.tasks
            .binary_search_by_key(&key.pid, |t| t.pid)
            .ok()
            .map(|i| &self.tasks[i])
            .filter(|t| t.start_time_ticks == key.start_time_ticks)
    }
}

/// Whether and how one source was read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceStatus {
    /// `procfs`, `kernel-log`, `ovsdb`, …
    pub source: String,
    /// The outcome.
    pub state: SourceState,
    /// One line on how it was read, or why not.
    pub detail: String,
}

/// The outcome of reading one source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceState {
    /// Read completely.
    Collected,
    /// Read, with gaps.
    Partial,
    /// Not present on this host (no OVSDB socket, say): not an error.
    Absent,
    /// Present but could not be read.
    Failed,
    /// Not asked for.
    Skipped,
}
