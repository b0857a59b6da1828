//! Objects as the API server and `kubectl get -o json` write them, decoded into the model.
//!
//! One decoder for both: a page of `GET /apis/apps/v1/replicasets?limit=500` (a
//! `ReplicaSetList` whose items carry no `apiVersion`/`kind`) and a file of `kubectl get
//! deploy,rs -A -o json` (a `List` whose items do) go through [`decode_list`].
//!
//! Why not k8s-openapi's types here: they decode every field of an object — a ReplicaSet's
//! whole pod template, `managedFields` as `serde_json::Value` trees — and reject any
//! `apiVersion` but their own, so an export from an old cluster (`extensions/v1beta1`) would not
//! load. These structs name only the ~20 fields detectors read; serde skips the rest without
//! building it, which is what makes 50,000 ReplicaSets cheap (docs/benchmarks.md). Writes
//! (`DeleteOptions`) and URLs use k8s-openapi and kube.

use std::collections::BTreeMap;

use nodedoc_model::{
    ContainerId, ContainerRole, ContainerState, CreatedWith, KubeCondition, KubeContainerStatus,
    KubeDeployment, KubeMeta, KubeOwner, KubePod, KubeReplicaSet, REVISION_ANNOTATION,
};
use serde::Deserialize;

/// The annotation `kubectl apply` keeps the last applied manifest in.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// A list: `PodList`, `ReplicaSetList`, or kubectl's `List`.
#[derive(Debug, Deserialize)]
pub(crate) struct WireList {
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default, rename = "apiVersion")]
    pub api_version: Option<String>,
    #[serde(default)]
    pub metadata: ListMeta,
    #[serde(default)]
    pub items: Vec<WireObject>,
}

/// `metadata` of a list.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListMeta {
    #[serde(default, rename = "continue")]
    pub continue_token: Option<String>,
    #[serde(default, rename = "remainingItemCount")]
    pub remaining_item_count: Option<i64>,
}

/// Any object, with the union of the fields nodedoc reads from pods, Deployments and
/// ReplicaSets (their names do not collide in ways that matter).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct WireObject {
    #[serde(default, rename = "apiVersion")]
    pub api_version: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub metadata: WireMeta,
    #[serde(default)]
    pub spec: WireSpec,
    #[serde(default)]
    pub status: WireStatus,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireMeta {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub uid: String,
    #[serde(default)]
    pub resource_version: String,
    #[serde(default)]
    pub generation: Option<i64>,
    #[serde(default)]
    pub creation_timestamp: Option<String>,
    #[serde(default)]
    pub deletion_timestamp: Option<String>,
    #[serde(default)]
    pub deletion_grace_period_seconds: Option<i64>,
    #[serde(default)]
    pub finalizers: Vec<String>,
    #[serde(default)]
    pub owner_references: Vec<WireOwner>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub managed_fields: Vec<WireManagedField>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireOwner {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub uid: String,
    #[serde(default)]
    pub controller: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireManagedField {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub manager: String,
    #[serde(default)]
    pub operation: String,
    // `fieldsV1` is skipped unbuilt.
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireSpec {
    // Pod
    #[serde(default)]
    pub node_name: Option<String>,
    #[serde(default)]
    pub termination_grace_period_seconds: Option<i64>,
    // Deployment, ReplicaSet
    #[serde(default)]
    pub replicas: Option<i32>,
    #[serde(default)]
    pub revision_history_limit: Option<i32>,
    #[serde(default)]
    pub paused: Option<bool>,
    // A pod's `containers` and a workload's `template` are skipped unbuilt.
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireStatus {
    // Pod
    #[serde(default)]
    pub phase: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub conditions: Vec<WireCondition>,
    #[serde(default)]
    pub container_statuses: Vec<WireContainerStatus>,
    #[serde(default)]
    pub init_container_statuses: Vec<WireContainerStatus>,
    #[serde(default)]
    pub ephemeral_container_statuses: Vec<WireContainerStatus>,
    // Deployment, ReplicaSet
    #[serde(default)]
    pub replicas: Option<i32>,
    #[serde(default)]
    pub updated_replicas: Option<i32>,
    #[serde(default)]
    pub available_replicas: Option<i32>,
    #[serde(default)]
    pub observed_generation: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireCondition {
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub last_transition_time: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireContainerStatus {
    #[serde(default)]
    pub name: String,
    #[serde(default, rename = "containerID")]
    pub container_id: Option<String>,
    #[serde(default)]
    pub state: WireContainerState,
    #[serde(default)]
    pub ready: bool,
    #[serde(default)]
    pub restart_count: i32,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct WireContainerState {
    #[serde(default)]
    pub running: Option<WireRunning>,
    #[serde(default)]
    pub waiting: Option<WireWaiting>,
    #[serde(default)]
    pub terminated: Option<WireTerminated>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireRunning {
    #[serde(default)]
    pub started_at: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct WireWaiting {
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireTerminated {
    #[serde(default)]
    pub exit_code: i32,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub finished_at: Option<String>,
}

/// The objects of one list (or one file), decoded.
#[derive(Debug, Default)]
pub(crate) struct Decoded {
    pub pods: Vec<KubePod>,
    pub deployments: Vec<KubeDeployment>,
    pub replica_sets: Vec<KubeReplicaSet>,
    /// Items of other kinds (Services, …), by kind: not an error, not kept.
    pub skipped: BTreeMap<String, u64>,
    /// Timestamps that did not parse (`field: value`), at most a few.
    pub bad_times: Vec<String>,
    pub bad_time_count: u64,
}

/// The kind of a list's items: `ReplicaSetList` → `ReplicaSet`; kubectl's `List` names none
/// (its items carry their own).
fn item_kind_of_list(kind: Option<&str>) -> Option<&str> {
    kind.and_then(|k| k.strip_suffix("List"))
        .filter(|k| !k.is_empty())
}

/// Decodes the items of `list` into `into`. An item's own `kind`/`apiVersion` win over the
/// list's (kubectl's `List` items carry them; an API page's do not).
pub(crate) fn decode_list(list: WireList, into: &mut Decoded) {
    let list_item_kind = item_kind_of_list(list.kind.as_deref()).map(str::to_string);
    for item in list.items {
        let kind = item
            .kind
            .clone()
            .or_else(|| list_item_kind.clone())
            .unwrap_or_default();
        let api_version = item
            .api_version
            .clone()
            .or_else(|| list.api_version.clone())
            .unwrap_or_default();
        decode_object(item, &kind, &api_version, into);
    }
}

/// Decodes one object of `kind`.
pub(crate) fn decode_object(item: WireObject, kind: &str, api_version: &str, into: &mut Decoded) {
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    match (kind, group) {
        ("Pod", "") => {
            let pod = pod(item, into);
            into.pods.push(pod);
        }
        ("Deployment", "apps" | "extensions") => {
            let deployment = deployment(item, api_version, into);
            into.deployments.push(deployment);
        }
        ("ReplicaSet", "apps" | "extensions") => {
            let rs = replica_set(item, api_version, into);
            into.replica_sets.push(rs);
        }
        _ => {
            let name = if kind.is_empty() { "(no kind)" } else { kind };
            *into.skipped.entry(name.to_string()).or_default() += 1;
        }
    }
}

/// An RFC 3339 time as Unix seconds; a bad one is counted, and `None`.
fn unix(field: &str, value: Option<&str>, into: &mut Decoded) -> Option<i64> {
    let text = value?;
    match text.parse::<jiff::Timestamp>() {
        Ok(t) => Some(t.as_second()),
        Err(_) => {
            into.bad_time_count += 1;
            if into.bad_times.len() < 3 {
                into.bad_times.push(format!("{field}: {text}"));
            }
            None
        }
    }
}

fn meta(m: &WireMeta, into: &mut Decoded) -> KubeMeta {
    let controller = m
        .owner_references
        .iter()
        .find(|o| o.controller == Some(true))
        .map(|o| KubeOwner {
            api_version: o.api_version.clone(),
            kind: o.kind.clone(),
            name: o.name.clone(),
            uid: o.uid.clone(),
        });
    KubeMeta {
        namespace: m.namespace.clone(),
        name: m.name.clone(),
        uid: m.uid.clone(),
        resource_version: m.resource_version.clone(),
        generation: m.generation,
        created_unix: unix("creationTimestamp", m.creation_timestamp.as_deref(), into),
        deletion_unix: unix("deletionTimestamp", m.deletion_timestamp.as_deref(), into),
        deletion_grace_period_secs: m.deletion_grace_period_seconds,
        finalizers: m.finalizers.clone(),
        controller,
    }
}

fn revision(m: &WireMeta) -> Option<u64> {
    m.annotations
        .get(REVISION_ANNOTATION)
        .and_then(|r| r.trim().parse().ok())
}

fn pod(item: WireObject, into: &mut Decoded) -> KubePod {
    let meta = meta(&item.metadata, into);
    let status = item.status;
    let mut containers = Vec::new();
    for (role, list) in [
        (ContainerRole::Init, status.init_container_statuses),
        (ContainerRole::App, status.container_statuses),
        (
            ContainerRole::Ephemeral,
            status.ephemeral_container_statuses,
        ),
    ] {
        for c in list {
            let state = if let Some(running) = c.state.running {
                ContainerState::Running {
                    started_unix: unix("startedAt", running.started_at.as_deref(), into),
                }
            } else if let Some(terminated) = c.state.terminated {
                ContainerState::Terminated {
                    exit_code: terminated.exit_code,
                    reason: terminated.reason,
                    finished_unix: unix("finishedAt", terminated.finished_at.as_deref(), into),
                }
            } else if let Some(waiting) = c.state.waiting {
                ContainerState::Waiting {
                    reason: waiting.reason,
                }
            } else {
                ContainerState::Unknown
            };
            containers.push(KubeContainerStatus {
                name: c.name,
                role,
                container_id: c.container_id.as_deref().and_then(ContainerId::parse),
                state,
                ready: c.ready,
                restart_count: c.restart_count,
            });
        }
    }
    let conditions = status
        .conditions
        .into_iter()
        .map(|c| KubeCondition {
            last_transition_unix: unix(
                "lastTransitionTime",
                c.last_transition_time.as_deref(),
                into,
            ),
            kind: c.kind,
            status: c.status,
            reason: c.reason,
            message: c.message,
        })
        .collect();
    KubePod {
        meta,
        node_name: item.spec.node_name.filter(|n| !n.is_empty()),
        termination_grace_period_secs: item.spec.termination_grace_period_seconds,
        phase: status.phase,
        reason: status.reason,
        conditions,
        containers,
    }
}

/// What apiVersion the object was written through, when it tells: the last manifest
/// `kubectl apply` applied, else a managedFields entry of a pre-apps/v1 version.
fn created_with(m: &WireMeta) -> Option<CreatedWith> {
    #[derive(Deserialize)]
    struct Applied {
        #[serde(rename = "apiVersion")]
        api_version: Option<String>,
    }
    if let Some(applied) = m.annotations.get(LAST_APPLIED) {
        if let Ok(Applied {
            api_version: Some(api_version),
        }) = serde_json::from_str::<Applied>(applied)
        {
            return Some(CreatedWith {
                api_version,
                evidence: format!("the {LAST_APPLIED} annotation (the manifest last applied)"),
            });
        }
    }
    m.managed_fields
        .iter()
        .find(|f| f.api_version != "apps/v1" && !f.api_version.is_empty())
        .map(|f| CreatedWith {
            api_version: f.api_version.clone(),
            evidence: format!(
                "managedFields: manager {:?} ({}) wrote it through {}",
                f.manager, f.operation, f.api_version
            ),
        })
}

fn deployment(item: WireObject, api_version: &str, into: &mut Decoded) -> KubeDeployment {
    let meta_out = meta(&item.metadata, into);
    KubeDeployment {
        created_with: created_with(&item.metadata),
        revision: revision(&item.metadata),
        meta: meta_out,
        api_version: api_version.to_string(),
        replicas: item.spec.replicas,
        revision_history_limit: item.spec.revision_history_limit,
        paused: item.spec.paused.unwrap_or(false),
        observed_generation: item.status.observed_generation,
        status_replicas: item.status.replicas.unwrap_or(0),
        updated_replicas: item.status.updated_replicas.unwrap_or(0),
        available_replicas: item.status.available_replicas.unwrap_or(0),
    }
}

fn replica_set(item: WireObject, api_version: &str, into: &mut Decoded) -> KubeReplicaSet {
    let meta_out = meta(&item.metadata, into);
    KubeReplicaSet {
        revision: revision(&item.metadata),
        pod_template_hash: item.metadata.labels.get("pod-template-hash").cloned(),
        meta: meta_out,
        api_version: api_version.to_string(),
        replicas: item.spec.replicas,
        status_replicas: item.status.replicas.unwrap_or(0),
        observed_generation: item.status.observed_generation,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `ReplicaSetList` page as kube-apiserver sends it: items without apiVersion/kind.
    const API_PAGE: &str = r#"{
      "kind": "ReplicaSetList", "apiVersion": "apps/v1",
      "metadata": {"resourceVersion": "912", "continue": "eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ", "remainingItemCount": 3},
      "items": [{
        "metadata": {
          "name": "web-7d4b9c8f5d", "namespace": "shop", "uid": "6f0c…",
          "resourceVersion": "900", "generation": 2,
          "creationTimestamp": "2026-11-20T08:00:00Z",
          "labels": {"app": "web", "pod-template-hash": "7d4b9c8f5d"},
          "annotations": {"deployment.kubernetes.io/desired-replicas": "3", "deployment.kubernetes.io/revision": "41"},
          "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "d-1", "controller": true, "blockOwnerDeletion": true}],
          "managedFields": [{"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "apps/v1", "time": "2026-11-20T08:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}}]
        },
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}}},
        "status": {"replicas": 0, "observedGeneration": 2}
      }]
    }"#;

    #[test]
    fn an_api_page_takes_kind_and_version_from_the_list() {
        let list: WireList = serde_json::from_str(API_PAGE).unwrap();
        assert_eq!(
            list.metadata.continue_token.as_deref(),
            Some("eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ")
        );
        let mut decoded = Decoded::default();
        decode_list(list, &mut decoded);
        let rs = &decoded.replica_sets[0];
        assert_eq!(rs.api_version, "apps/v1");
        assert_eq!(rs.revision, Some(41));
        assert_eq!(rs.replicas, Some(0));
        assert!(rs.scaled_down());
        assert_eq!(rs.meta.controller.as_ref().unwrap().uid, "d-1");
        assert_eq!(rs.meta.created_unix, Some(1_795_161_600));
        assert_eq!(rs.pod_template_hash.as_deref(), Some("7d4b9c8f5d"));
    }

    #[test]
    fn a_legacy_export_keeps_its_api_version_and_says_how_it_was_written() {
        let text = r#"{"apiVersion": "v1", "kind": "List", "items": [
          {"apiVersion": "extensions/v1beta1", "kind": "Deployment",
           "metadata": {"name": "api", "namespace": "default", "uid": "u",
             "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"apiVersion\":\"extensions/v1beta1\",\"kind\":\"Deployment\"}"}},
           "spec": {"replicas": 2, "revisionHistoryLimit": 2147483647, "template": {}},
           "status": {"replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}},
          {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api"}}
        ]}"#;
        let mut decoded = Decoded::default();
        decode_list(serde_json::from_str(text).unwrap(), &mut decoded);
        let d = &decoded.deployments[0];
        assert_eq!(d.api_version, "extensions/v1beta1");
        assert_eq!(d.revision_history_limit, Some(i32::MAX));
        assert_eq!(
            d.created_with.as_ref().unwrap().api_version,
            "extensions/v1beta1"
        );
        assert!(d.rollout_complete());
        assert_eq!(decoded.skipped.get("Service"), Some(&1));
    }

    #[test]
    fn a_terminating_pod_keeps_its_deletion_and_containers() {
        let text = r#"{"apiVersion": "v1", "kind": "Pod",
          "metadata": {"name": "envoy-0", "namespace": "mesh", "uid": "3c1f8a7e-2b4d-4e6f-9a1b-0c2d3e4f5a6b",
            "deletionTimestamp": "2026-11-25T10:00:30Z", "deletionGracePeriodSeconds": 30,
            "finalizers": ["example.com/hold"],
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "envoy", "uid": "s", "controller": true}]},
          "spec": {"nodeName": "node-1", "terminationGracePeriodSeconds": 30, "containers": [{"name": "envoy"}]},
          "status": {"phase": "Running",
            "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": "2026-11-25T10:00:01Z"}],
            "containerStatuses": [{"name": "envoy", "containerID": "containerd://10f0451e1345f5028f636e2b09c9f8204e55a01f5f09f2e57de3c17d3f93f492",
              "state": {"running": {"startedAt": "2026-11-24T00:00:00Z"}}, "ready": false, "restartCount": 0}],
            "initContainerStatuses": [{"name": "init", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}}"#;
        let item: WireObject = serde_json::from_str(text).unwrap();
        let mut decoded = Decoded::default();
        decode_object(item, "Pod", "v1", &mut decoded);
        let pod = &decoded.pods[0];
        assert_eq!(pod.meta.deletion_grace_period_secs, Some(30));
        assert_eq!(pod.meta.deletion_unix, Some(1_795_600_830));
        assert_eq!(pod.node_name.as_deref(), Some("node-1"));
        assert_eq!(pod.meta.finalizers, vec!["example.com/hold"]);
        assert_eq!(pod.containers.len(), 2);
        assert_eq!(pod.containers[0].role, ContainerRole::Init);
        let envoy = &pod.containers[1];
        assert_eq!(envoy.container_id.as_ref().unwrap().runtime, "containerd");
        assert!(matches!(envoy.state, ContainerState::Running { .. }));
        assert_eq!(pod.meta.controller.as_ref().unwrap().kind, "StatefulSet");
    }

    #[test]
    fn bad_times_are_counted_not_fatal() {
        let text = r#"{"metadata": {"name": "x", "creationTimestamp": "yesterday"}}"#;
        let mut decoded = Decoded::default();
        decode_object(
            serde_json::from_str(text).unwrap(),
            "ReplicaSet",
            "apps/v1",
            &mut decoded,
        );
        assert_eq!(decoded.replica_sets[0].meta.created_unix, None);
        assert_eq!(decoded.bad_time_count, 1);
        assert_eq!(decoded.bad_times, vec!["creationTimestamp: yesterday"]);
    }
}
