//! What the Kubernetes API — or `kubectl get … -o json` files — said, as far as detectors need
//! it: this node's pods, the cluster's Deployments and ReplicaSets, and kube-apiserver's memory.
//!
//! Only the fields a detector reads are kept (a ReplicaSet's pod template, labels and managed
//! fields are dropped while the object is read), so 50,000 ReplicaSets cost a few megabytes in a
//! snapshot, not the hundreds the API sent. Times are seconds since the Unix epoch, as the API's
//! RFC 3339 timestamps say them (whole seconds).

use std::fmt;

use serde::{Deserialize, Serialize};

/// The annotation the deployment controller writes on a Deployment and its ReplicaSets: the
/// rollout revision (`"1"`, `"2"`, …).
pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";

/// `math.MaxInt32`: the `revisionHistoryLimit` extensions/v1beta1 gave every Deployment that did
/// not set one, which the deployment controller reads as "keep every old ReplicaSet".
pub const UNLIMITED_REVISION_HISTORY: i32 = i32::MAX;

/// `kubectl patch deployment -n NS NAME -p '{"spec":{"revisionHistoryLimit":N}}'`: what sets a
/// Deployment's history limit.
pub fn history_limit_patch(
    namespace: &str,
    name: &str,
    limit: u32,
) -> Result<crate::text::ShellCommand, crate::text::Unquotable> {
    let patch = format!("{{\"spec\":{{\"revisionHistoryLimit\":{limit}}}}}");
    crate::shell_command!(
        "kubectl patch deployment -n {} {} -p {}",
        namespace,
        name,
        patch.as_str()
    )
}

/// What was read from Kubernetes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KubeState {
    /// Where the objects came from, in order: `api:https://HOST:PORT` or `file:PATH`.
    #[serde(default)]
    pub origins: Vec<String>,
    /// This node's name in Kubernetes, when known (the API source lists only its pods).
    #[serde(default)]
    pub node_name: Option<String>,
    /// When the objects were read (the clock a pod's deletion is compared with); for files,
    /// when nodedoc read them.
    pub read_at_unix: i64,
    /// Pods: from the API, those on this node; from files, whatever they hold.
    #[serde(default)]
    pub pods: Vec<KubePod>,
    /// Deployments of every namespace.
    #[serde(default)]
    pub deployments: Vec<KubeDeployment>,
    /// ReplicaSets of every namespace.
    #[serde(default)]
    pub replica_sets: Vec<KubeReplicaSet>,
    /// How each kind was listed, and whether the list is complete.
    #[serde(default)]
    pub listings: Vec<KubeListing>,
    /// kube-apiserver's own metrics, when it let them be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apiserver: Option<ApiserverMetrics>,
}

impl KubeState {
    /// The listing of `kind` (`Pod`, `Deployment`, `ReplicaSet`), if that kind was listed.
    pub fn listing(&self, kind: &str) -> Option<&KubeListing> {
        self.listings.iter().find(|l| l.kind == kind)
    }

    /// True when every listing of `kind` is complete (and there is at least one).
    pub fn complete(&self, kind: &str) -> bool {
        let mut of_kind = self.listings.iter().filter(|l| l.kind == kind).peekable();
        of_kind.peek().is_some() && of_kind.all(|l| l.complete)
    }
}

/// How one kind was listed from one origin.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubeListing {
    /// `Pod`, `Deployment` or `ReplicaSet`.
    pub kind: String,
    /// The origin (as in [`KubeState::origins`]).
    pub origin: String,
    /// What was asked: `all namespaces`, `spec.nodeName=NODE`, or `file`.
    pub scope: String,
    /// Objects kept.
    pub items: u64,
    /// Pages the API sent (1 for a file).
    pub pages: u32,
    /// Bytes of JSON the objects came in (the API's responses, or the whole file): what
    /// kube-apiserver serialises for every full list of them.
    #[serde(default)]
    pub bytes: u64,
    /// False when the list stopped early (a cap, an error mid-way): counts are then lower
    /// bounds, and the gaps say why.
    pub complete: bool,
}

/// The metadata nodedoc keeps of any object.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubeMeta {
    /// Namespace (empty for cluster-scoped objects).
    #[serde(default)]
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The object's uid: a name can be reused, the uid cannot.
    #[serde(default)]
    pub uid: String,
    /// The version the object was read at (`metadata.resourceVersion`): a write guarded by it
    /// fails if the object changed since.
    #[serde(default)]
    pub resource_version: String,
    /// `metadata.generation`: bumped by every change of the spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// `metadata.creationTimestamp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_unix: Option<i64>,
    /// `metadata.deletionTimestamp`: set when deletion was requested. For a graceful delete
    /// the API sets it to the request time *plus* the grace period: the moment by which the
    /// object is meant to be gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_unix: Option<i64>,
    /// `metadata.deletionGracePeriodSeconds`: the grace period of that request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_grace_period_secs: Option<i64>,
    /// `metadata.finalizers`: the object is not removed while any remains.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finalizers: Vec<String>,
    /// The owner reference marked `controller: true` (the Deployment of a ReplicaSet, the
    /// ReplicaSet or StatefulSet of a pod).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<KubeOwner>,
}

impl KubeMeta {
    /// `namespace/name` (just `name` for a cluster-scoped object).
    pub fn key(&self) -> String {
        if self.namespace.is_empty() {
            self.name.clone()
        } else {
            format!("{}/{}", self.namespace, self.name)
        }
    }
}

/// An owner reference.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubeOwner {
    /// `apps/v1`, …
    #[serde(default)]
    pub api_version: String,
    /// `Deployment`, `ReplicaSet`, `StatefulSet`, …
    pub kind: String,
    /// The owner's name (same namespace).
    pub name: String,
    /// The owner's uid.
    #[serde(default)]
    pub uid: String,
}

/// A pod.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KubePod {
    /// Its metadata.
    pub meta: KubeMeta,
    /// `spec.nodeName`: the node it runs on, once scheduled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    /// `spec.terminationGracePeriodSeconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_grace_period_secs: Option<i64>,
    /// `status.phase`: `Pending`, `Running`, `Succeeded`, `Failed`, `Unknown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// `status.reason`, e.g. `NodeLost`, `Evicted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `status.conditions`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<KubeCondition>,
    /// The statuses of its init, regular and ephemeral containers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<KubeContainerStatus>,
}

/// A pod condition.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubeCondition {
    /// `Ready`, `ContainersReady`, `PodScheduled`, `DisruptionTarget`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// Machine-readable reason, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Human-readable message, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When the status last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_unix: Option<i64>,
}

/// Where a container comes in a pod.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ContainerRole {
    /// `spec.initContainers`.
    Init,
    /// `spec.containers`.
    #[default]
    App,
    /// `spec.ephemeralContainers` (kubectl debug).
    Ephemeral,
}

/// One container's status as the kubelet reported it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubeContainerStatus {
    /// The container's name in the pod spec.
    pub name: String,
    /// Init, app or ephemeral.
    #[serde(default)]
    pub role: ContainerRole,
    /// The runtime's id of the current instance, once it was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<ContainerId>,
    /// Its state.
    #[serde(default)]
    pub state: ContainerState,
    /// `ready`.
    #[serde(default)]
    pub ready: bool,
    /// `restartCount`.
    #[serde(default)]
    pub restart_count: i32,
}

/// A container id as the kubelet writes it: `containerd://<64 hex>`, `docker://…`, `cri-o://…`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ContainerId {
    /// The runtime: `containerd`, `docker`, `cri-o`, …
    pub runtime: String,
    /// The id: what appears in the cgroup paths of the container's tasks.
    pub id: String,
}

impl ContainerId {
    /// Parses `runtime://id`; a bare id gets an empty runtime. `None` for an empty string.
    pub fn parse(text: &str) -> Option<ContainerId> {
        let (runtime, id) = text.split_once("://").unwrap_or(("", text));
        (!id.is_empty()).then(|| ContainerId {
            runtime: runtime.to_string(),
            id: id.to_string(),
        })
    }

    /// The first 12 characters, as `crictl ps` prints ids.
    pub fn short(&self) -> &str {
        &self.id[..self.id.len().min(12)]
    }
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.runtime.is_empty() {
            f.write_str(&self.id)
        } else {
            write!(f, "{}://{}", self.runtime, self.id)
        }
    }
}

/// A container's state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum ContainerState {
    /// Running since `started_unix`.
    Running {
        /// `startedAt`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        started_unix: Option<i64>,
    },
    /// Not running yet (or restarting), with the kubelet's reason.
    Waiting {
        /// `CrashLoopBackOff`, `ContainerCreating`, …
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Exited.
    Terminated {
        /// Its exit code (137: killed by SIGKILL).
        exit_code: i32,
        /// `Completed`, `Error`, `OOMKilled`, …
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// `finishedAt`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        finished_unix: Option<i64>,
    },
    /// The status says none of the above.
    #[default]
    Unknown,
}

/// A Deployment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubeDeployment {
    /// Its metadata.
    pub meta: KubeMeta,
    /// The apiVersion it was read as: `apps/v1` from any current API server; a file may say
    /// `extensions/v1beta1`, `apps/v1beta1` or `apps/v1beta2`.
    pub api_version: String,
    /// The apiVersion it was created through, when the object tells (see [`CreatedWith`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_with: Option<CreatedWith>,
    /// `spec.replicas`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// `spec.revisionHistoryLimit` as stored. The API server fills in the default of the
    /// apiVersion the object was *created* through, so this is the effective value; absent
    /// only in files written by hand or by tools that strip defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision_history_limit: Option<i32>,
    /// The `deployment.kubernetes.io/revision` annotation: the current rollout revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
    /// `spec.paused`.
    #[serde(default)]
    pub paused: bool,
    /// `status.observedGeneration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `status.replicas`.
    #[serde(default)]
    pub status_replicas: i32,
    /// `status.updatedReplicas`: pods of the current template.
    #[serde(default)]
    pub updated_replicas: i32,
    /// `status.availableReplicas`.
    #[serde(default)]
    pub available_replicas: i32,
}

impl KubeDeployment {
    /// The deployment controller's `DeploymentComplete`: every desired pod is of the current
    /// template and available, and the controller has seen the latest spec. It cleans up old
    /// ReplicaSets only then (or while the Deployment is paused).
    pub fn rollout_complete(&self) -> bool {
        let desired = self.replicas.unwrap_or(1);
        self.updated_replicas == desired
            && self.status_replicas == desired
            && self.available_replicas == desired
            && match (self.observed_generation, self.meta.generation) {
                (Some(observed), Some(generation)) => observed >= generation,
                _ => true,
            }
    }
}

/// The apiVersion an object was created through, and what says so.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedWith {
    /// `extensions/v1beta1`, `apps/v1`, …
    pub api_version: String,
    /// Where that was read: `managedFields` (the first manager's entry) or the
    /// `kubectl.kubernetes.io/last-applied-configuration` annotation.
    pub evidence: String,
}

/// A ReplicaSet.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubeReplicaSet {
    /// Its metadata (`controller`: the Deployment that owns it, if any).
    pub meta: KubeMeta,
    /// The apiVersion it was read as.
    pub api_version: String,
    /// The `deployment.kubernetes.io/revision` annotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
    /// `spec.replicas` (the API defaults it to 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// `status.replicas`: pods it still has.
    #[serde(default)]
    pub status_replicas: i32,
    /// `status.observedGeneration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The `pod-template-hash` label: the template this ReplicaSet runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_template_hash: Option<String>,
}

impl KubeReplicaSet {
    /// True when it has no pods and wants none, and the controller has seen its latest spec:
    /// the deployment controller's own test before it deletes an old ReplicaSet.
    pub fn scaled_down(&self) -> bool {
        self.replicas.unwrap_or(1) == 0
            && self.status_replicas == 0
            && match (self.meta.generation, self.observed_generation) {
                (Some(generation), Some(observed)) => generation <= observed,
                (Some(_), None) => false,
                _ => true,
            }
    }
}

/// What `revisionHistoryLimit` the deployment controller applies to a Deployment, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EffectiveLimit {
    /// Old ReplicaSets the controller keeps; `None`: every one of them (it never cleans up).
    pub keeps: Option<u32>,
    /// Where the value comes from.
    pub why: LimitSource,
}

/// Where a Deployment's effective `revisionHistoryLimit` comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "kebab-case")]
pub enum LimitSource {
    /// The object holds a finite value: set in the manifest, or filled in at creation by the
    /// API version's default (10 for apps/v1 and apps/v1beta2, 2 for apps/v1beta1); the
    /// stored object cannot tell which.
    Stored {
        /// The value.
        value: i32,
    },
    /// The object holds 2147483647 (`math.MaxInt32`): extensions/v1beta1's default for a
    /// Deployment created through it without the field (or that value set by hand). The
    /// controller reads it as "no limit".
    ExtensionsV1beta1Default,
    /// The object as given holds no value (a file written by a tool that strips defaults):
    /// the default of the apiVersion it says it is.
    Unset {
        /// That apiVersion.
        api_version: String,
    },
}

impl KubeDeployment {
    /// The `revisionHistoryLimit` the deployment controller applies, and why.
    pub fn effective_history_limit(&self) -> EffectiveLimit {
        match self.revision_history_limit {
            Some(UNLIMITED_REVISION_HISTORY) => EffectiveLimit {
                keeps: None,
                why: LimitSource::ExtensionsV1beta1Default,
            },
            Some(value) => EffectiveLimit {
                keeps: Some(value.max(0) as u32),
                why: LimitSource::Stored { value },
            },
            None => EffectiveLimit {
                keeps: match self.api_version.as_str() {
                    "extensions/v1beta1" => None,
                    "apps/v1beta1" => Some(2),
                    _ => Some(10),
                },
                why: LimitSource::Unset {
                    api_version: self.api_version.clone(),
                },
            },
        }
    }
}

/// A Deployment and the ReplicaSets it controls.
#[derive(Clone, Debug)]
pub struct RevisionHistory<'a> {
    /// The Deployment.
    pub deployment: &'a KubeDeployment,
    /// The ReplicaSet of its current revision: the Deployment's revision annotation, else the
    /// highest revision among its ReplicaSets (newest first on a tie). Never an old one.
    pub current: Option<&'a KubeReplicaSet>,
    /// Every other ReplicaSet it controls, in the order the deployment controller deletes them:
    /// lowest revision first, then oldest, then by name.
    pub old: Vec<&'a KubeReplicaSet>,
}

impl KubeState {
    /// Every Deployment with the ReplicaSets it controls (by the owner reference's uid, or its
    /// name where a file lacks uids). Linear in the number of objects.
    pub fn revision_histories(&self) -> Vec<RevisionHistory<'_>> {
        let mut by_owner: std::collections::HashMap<(&str, &str), Vec<&KubeReplicaSet>> =
            std::collections::HashMap::new();
        for rs in &self.replica_sets {
            if let Some(owner) = rs
                .meta
                .controller
                .as_ref()
                .filter(|o| o.kind == "Deployment")
            {
                let key = if owner.uid.is_empty() {
                    (rs.meta.namespace.as_str(), owner.name.as_str())
                } else {
                    ("", owner.uid.as_str())
                };
                by_owner.entry(key).or_default().push(rs);
            }
        }
        let mut histories = Vec::with_capacity(self.deployments.len());
        for deployment in &self.deployments {
            let mut owned: Vec<&KubeReplicaSet> = Vec::new();
            if !deployment.meta.uid.is_empty() {
                owned.extend(
                    by_owner
                        .remove(&("", deployment.meta.uid.as_str()))
                        .unwrap_or_default(),
                );
            }
            owned.extend(
                by_owner
                    .remove(&(
                        deployment.meta.namespace.as_str(),
                        deployment.meta.name.as_str(),
                    ))
                    .unwrap_or_default(),
            );
            owned.sort_by(|a, b| {
                a.revision
                    .unwrap_or(0)
                    .cmp(&b.revision.unwrap_or(0))
                    .then(a.meta.created_unix.cmp(&b.meta.created_unix))
                    .then_with(|| a.meta.name.cmp(&b.meta.name))
            });
            let current_at = deployment
                .revision
                .and_then(|r| owned.iter().rposition(|rs| rs.revision == Some(r)))
                .or_else(|| owned.len().checked_sub(1));
            let current = current_at.map(|i| owned.remove(i));
            histories.push(RevisionHistory {
                deployment,
                current,
                old: owned,
            });
        }
        histories
    }
}

/// kube-apiserver's metrics (`GET /metrics`), of the one instance that answered.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ApiserverMetrics {
    /// Where they were read (`api:https://HOST:PORT/metrics`, or a file).
    pub origin: String,
    /// `process_resident_memory_bytes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resident_memory_bytes: Option<u64>,
    /// Objects stored per resource (`apiserver_resource_objects`, or the older
    /// `apiserver_storage_objects`), for the resources detectors talk about.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stored_objects: Vec<StoredObjects>,
}

impl ApiserverMetrics {
    /// The stored count of `resource` (`replicasets.apps`), if the metrics gave one.
    pub fn stored(&self, resource: &str) -> Option<u64> {
        self.stored_objects
            .iter()
            .find(|s| s.resource == resource)
            .map(|s| s.count)
    }
}

/// How many objects of one resource the API server stores.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredObjects {
    /// `replicasets.apps`, `deployments.apps`, `pods`.
    pub resource: String,
    /// The count.
    pub count: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_ids_parse_as_the_kubelet_writes_them() {
        let id = ContainerId::parse("containerd://10f0451e1345f5028f636e2b").unwrap();
        assert_eq!(id.runtime, "containerd");
        assert_eq!(id.short(), "10f0451e1345");
        assert_eq!(id.to_string(), "containerd://10f0451e1345f5028f636e2b");
        assert_eq!(ContainerId::parse("abc").unwrap().runtime, "");
        assert_eq!(ContainerId::parse(""), None);
        assert_eq!(ContainerId::parse("docker://"), None);
    }

    #[test]
    fn a_replicaset_counts_as_scaled_down_only_when_the_controller_saw_it() {
        let mut rs = KubeReplicaSet {
            replicas: Some(0),
            ..Default::default()
        };
        rs.meta.generation = Some(3);
        rs.observed_generation = Some(3);
        assert!(rs.scaled_down());
        rs.observed_generation = Some(2);
        assert!(!rs.scaled_down(), "scale-down not yet observed");
        rs.observed_generation = Some(3);
        rs.status_replicas = 1;
        assert!(!rs.scaled_down(), "a pod is still there");
        rs.status_replicas = 0;
        rs.replicas = None;
        assert!(!rs.scaled_down(), "unset replicas default to 1");
    }

    fn rs(name: &str, owner_uid: &str, revision: u64, replicas: i32) -> KubeReplicaSet {
        KubeReplicaSet {
            meta: KubeMeta {
                namespace: "shop".into(),
                name: name.into(),
                uid: format!("uid-{name}"),
                created_unix: Some(revision as i64),
                controller: Some(KubeOwner {
                    kind: "Deployment".into(),
                    name: "web".into(),
                    uid: owner_uid.into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            revision: Some(revision),
            replicas: Some(replicas),
            status_replicas: replicas,
            ..Default::default()
        }
    }

    #[test]
    fn the_current_revision_is_never_an_old_one_and_old_ones_sort_oldest_first() {
        let mut state = KubeState::default();
        state.deployments.push(KubeDeployment {
            meta: KubeMeta {
                namespace: "shop".into(),
                name: "web".into(),
                uid: "d".into(),
                ..Default::default()
            },
            revision: Some(7),
            ..Default::default()
        });
        for (name, revision) in [("c", 9), ("a", 7), ("b", 3), ("z", 1)] {
            state.replica_sets.push(rs(name, "d", revision, 0));
        }
        state.replica_sets.push(rs("other", "someone-else", 2, 0));
        let histories = state.revision_histories();
        assert_eq!(histories.len(), 1);
        // Revision 7 is the Deployment's own (a rollback re-used it), even though 9 is higher.
        assert_eq!(histories[0].current.unwrap().meta.name, "a");
        let old: Vec<&str> = histories[0]
            .old
            .iter()
            .map(|r| r.meta.name.as_str())
            .collect();
        assert_eq!(old, vec!["z", "b", "c"]);
        // Without the annotation the highest revision is current.
        state.deployments[0].revision = None;
        assert_eq!(
            state.revision_histories()[0].current.unwrap().meta.name,
            "c"
        );
    }

    #[test]
    fn the_effective_limit_says_why() {
        let mut d = KubeDeployment {
            api_version: "apps/v1".into(),
            revision_history_limit: Some(i32::MAX),
            ..Default::default()
        };
        assert_eq!(
            d.effective_history_limit(),
            EffectiveLimit {
                keeps: None,
                why: LimitSource::ExtensionsV1beta1Default
            }
        );
        d.revision_history_limit = Some(3);
        assert_eq!(d.effective_history_limit().keeps, Some(3));
        d.revision_history_limit = None;
        assert_eq!(d.effective_history_limit().keeps, Some(10));
        d.api_version = "extensions/v1beta1".into();
        assert_eq!(d.effective_history_limit().keeps, None);
        d.api_version = "apps/v1beta1".into();
        assert_eq!(d.effective_history_limit().keeps, Some(2));
    }

    #[test]
    fn state_round_trips_and_old_snapshots_load() {
        let state = KubeState {
            origins: vec!["file:x.json".into()],
            read_at_unix: 1,
            ..Default::default()
        };
        let text = serde_json::to_string(&state).unwrap();
        assert_eq!(serde_json::from_str::<KubeState>(&text).unwrap(), state);
        let minimal: KubeState = serde_json::from_str(r#"{"read_at_unix": 5}"#).unwrap();
        assert!(minimal.pods.is_empty() && !minimal.complete("ReplicaSet"));
    }
}
