//! Deleting the ReplicaSets a Deployment's history limit would have removed, guarded.
//!
//! The plan does what the deployment controller's `cleanupDeployment` does when the limit
//! is finite (kubernetes/kubernetes pkg/controller/deployment/sync.go): of the old
//! ReplicaSets not already being deleted, lowest revision first, the surplus beyond the
//! limit is deleted — each only if it has no pods, wants none, and the controller has seen
//! its latest spec. Those in the surplus that still have pods are left alone and named, as
//! the controller leaves them. The current revision is never an old ReplicaSet
//! ([`KubeState::revision_histories`]).
//!
//! How many to keep: `--keep N` if given; else the Deployment's own limit when finite; else
//! 10, apps/v1's default (the Deployment's limit is 2147483647 then: set it, or the history
//! grows back — the plan prints the `kubectl patch` for that).
//!
//! Applying re-checks every ReplicaSet right before deleting it: the Deployment and the
//! ReplicaSet are read again, and a ReplicaSet that is gone, was replaced (another uid),
//! changed (another resourceVersion), is now the current revision, or has pods is spared with
//! the reason. The `DELETE` carries preconditions on the uid and resourceVersion just read, so
//! a change between the re-check and the delete makes the API server refuse it (409) instead
//! of deleting what nobody looked at. Deletes are sequential, as the controller's are: the API
//! server of a cluster with this problem is short of memory already.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::core::params::{DeleteParams, Preconditions};
use kube::core::Request;
use kube::Resource;
use nodedoc_model::text::{ShellCommand, Unquotable, Words};
use nodedoc_model::{shell_command, KubeState, REVISION_ANNOTATION};
use serde::Serialize;

use crate::api::{ApiFailure, Session};

/// apps/v1's default `revisionHistoryLimit`: what is kept of a Deployment without a finite one.
pub const DEFAULT_KEEP: u32 = 10;

/// The deletions for a set of Deployments.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HistoryCleanup {
    /// One entry per Deployment with something to delete or spare.
    pub deployments: Vec<DeploymentCleanup>,
}

/// The plan for one Deployment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DeploymentCleanup {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Its uid as read.
    pub uid: String,
    /// Its current revision as read.
    pub revision: Option<u64>,
    /// The current revision's ReplicaSet, never deleted.
    pub current: Option<String>,
    /// Old ReplicaSets kept.
    pub keep: u32,
    /// Why that many (`--keep`, its own limit, or apps/v1's default).
    pub keep_why: String,
    /// Its limit is 2147483647: the plan only trims; set a limit or the history grows back.
    pub unlimited: bool,
    /// Old ReplicaSets it has.
    pub old: usize,
    /// What will be deleted, oldest revision first.
    pub delete: Vec<PlannedDeletion>,
    /// ReplicaSets in the surplus that are left alone, with why.
    pub spared: Vec<Spared>,
}

/// One ReplicaSet to delete, as it was read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PlannedDeletion {
    /// Its name.
    pub name: String,
    /// Its uid as read.
    pub uid: String,
    /// Its resourceVersion as read.
    pub resource_version: String,
    /// Its revision.
    pub revision: Option<u64>,
}

/// A ReplicaSet left alone.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Spared {
    /// Namespace/name.
    pub name: String,
    /// Why.
    pub why: String,
}

impl HistoryCleanup {
    /// The plan for the Deployments `wanted` accepts (by namespace and name), keeping `keep`
    /// old ReplicaSets if given (see the module documentation).
    pub fn plan(
        state: &KubeState,
        wanted: &dyn Fn(&str, &str) -> bool,
        keep: Option<u32>,
    ) -> HistoryCleanup {
        let mut plan = HistoryCleanup::default();
        for history in state.revision_histories() {
            let d = history.deployment;
            if !wanted(&d.meta.namespace, &d.meta.name) {
                continue;
            }
            let limit = d.effective_history_limit();
            let (keep, keep_why) = match (keep, limit.keeps) {
                (Some(n), _) => (n, "--keep".to_string()),
                (None, Some(n)) => (n, format!("its revisionHistoryLimit ({n})")),
                (None, None) => (
                    DEFAULT_KEEP,
                    format!(
                        "apps/v1's default ({DEFAULT_KEEP}): its own limit keeps every revision"
                    ),
                ),
            };
            let cleanable: Vec<_> = history
                .old
                .iter()
                .filter(|rs| rs.meta.deletion_unix.is_none())
                .collect();
            let surplus = cleanable.len().saturating_sub(keep as usize);
            let mut entry = DeploymentCleanup {
                namespace: d.meta.namespace.clone(),
                name: d.meta.name.clone(),
                uid: d.meta.uid.clone(),
                revision: d.revision,
                current: history.current.map(|rs| rs.meta.name.clone()),
                keep,
                keep_why,
                unlimited: limit.keeps.is_none(),
                old: history.old.len(),
                ..DeploymentCleanup::default()
            };
            for rs in cleanable.into_iter().take(surplus) {
                if rs.scaled_down() {
                    entry.delete.push(PlannedDeletion {
                        name: rs.meta.name.clone(),
                        uid: rs.meta.uid.clone(),
                        resource_version: rs.meta.resource_version.clone(),
                        revision: rs.revision,
                    });
                } else {
                    entry.spared.push(Spared {
                        name: rs.meta.key(),
                        why: not_scaled_down(rs),
                    });
                }
            }
            if !entry.delete.is_empty() || !entry.spared.is_empty() {
                plan.deployments.push(entry);
            }
        }
        plan
    }

    /// How many ReplicaSets the plan deletes.
    pub fn deletions(&self) -> usize {
        self.deployments.iter().map(|d| d.delete.len()).sum()
    }

    /// `kubectl delete rs -n NS NAME…` per Deployment: what the plan amounts to, without the
    /// guards (kubectl cannot express preconditions).
    pub fn kubectl_commands(&self) -> Vec<Result<ShellCommand, Unquotable>> {
        self.deployments
            .iter()
            .filter(|d| !d.delete.is_empty())
            .map(|d| {
                let names: Vec<&str> = d.delete.iter().map(|p| p.name.as_str()).collect();
                shell_command!(
                    "kubectl delete rs -n {} {}",
                    d.namespace.as_str(),
                    Words(&names)
                )
            })
            .collect()
    }

    /// The `kubectl patch` that sets a limit on each Deployment whose limit keeps everything.
    pub fn patch_commands(&self) -> Vec<Result<ShellCommand, Unquotable>> {
        self.deployments
            .iter()
            .filter(|d| d.unlimited)
            .map(|d| nodedoc_model::history_limit_patch(&d.namespace, &d.name, d.keep))
            .collect()
    }

    /// Deletes what the plan says, re-checking each ReplicaSet first (module documentation).
    /// `progress` is told each outcome as it happens. A failure that is not about one object
    /// (unreachable, forbidden) stops the work and is returned with what was done so far.
    pub async fn apply(
        &self,
        session: &Session,
        progress: &mut dyn FnMut(&Outcome),
    ) -> (Vec<Outcome>, Option<ApiFailure>) {
        let mut outcomes = Vec::new();
        for d in &self.deployments {
            if d.delete.is_empty() {
                continue;
            }
            let current = match recheck_deployment(session, d).await {
                Ok(Ok(current)) => current,
                Ok(Err(why)) => {
                    for p in &d.delete {
                        let outcome = Outcome::spared(d, p, why.clone());
                        progress(&outcome);
                        outcomes.push(outcome);
                    }
                    continue;
                }
                Err(failure) => return (outcomes, Some(failure)),
            };
            for p in &d.delete {
                let outcome = match delete_one(session, d, p, &current).await {
                    Ok(outcome) => outcome,
                    Err(failure) => return (outcomes, Some(failure)),
                };
                progress(&outcome);
                outcomes.push(outcome);
            }
        }
        (outcomes, None)
    }
}

/// What became of one planned deletion.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// `namespace/name`.
    pub replica_set: String,
    /// Deleted, or not.
    pub deleted: bool,
    /// Why not (or `deleted`).
    pub detail: String,
}

impl Outcome {
    fn spared(d: &DeploymentCleanup, p: &PlannedDeletion, why: String) -> Outcome {
        Outcome {
            replica_set: format!("{}/{}", d.namespace, p.name),
            deleted: false,
            detail: why,
        }
    }
}

fn not_scaled_down(rs: &nodedoc_model::KubeReplicaSet) -> String {
    if rs.status_replicas > 0 {
        format!("it still has {} pod(s)", rs.status_replicas)
    } else if rs.replicas.unwrap_or(1) > 0 {
        format!("it wants {} replica(s)", rs.replicas.unwrap_or(1))
    } else {
        "the controller has not yet seen its latest spec (observedGeneration < generation)"
            .to_string()
    }
}

/// The Deployment read again: its current revision, or why its ReplicaSets are spared.
async fn recheck_deployment(
    session: &Session,
    d: &DeploymentCleanup,
) -> Result<Result<Option<u64>, String>, ApiFailure> {
    let path = Deployment::url_path(&(), Some(&d.namespace));
    match session
        .get_object(
            &path,
            &d.name,
            &format!("get deployment {}/{}", d.namespace, d.name),
        )
        .await
    {
        Ok(object) => {
            if object.metadata.uid != d.uid {
                return Ok(Err(format!(
                    "deployment {}/{} was replaced since the plan (uid {} → {})",
                    d.namespace, d.name, d.uid, object.metadata.uid
                )));
            }
            Ok(Ok(object
                .metadata
                .annotations
                .get(REVISION_ANNOTATION)
                .and_then(|r| r.parse().ok())))
        }
        Err(f) if f.not_found() => Ok(Err(format!(
            "deployment {}/{} is gone (its ReplicaSets go with it)",
            d.namespace, d.name
        ))),
        Err(f) => Err(f),
    }
}

/// Re-reads one ReplicaSet and deletes it if it is still what the plan showed.
async fn delete_one(
    session: &Session,
    d: &DeploymentCleanup,
    p: &PlannedDeletion,
    current_revision: &Option<u64>,
) -> Result<Outcome, ApiFailure> {
    let path = ReplicaSet::url_path(&(), Some(&d.namespace));
    let key = format!("{}/{}", d.namespace, p.name);
    let spared = |why: String| Outcome {
        replica_set: key.clone(),
        deleted: false,
        detail: why,
    };
    let object = match session
        .get_object(&path, &p.name, &format!("get replicaset {key}"))
        .await
    {
        Ok(object) => object,
        Err(f) if f.not_found() => return Ok(spared("already gone".to_string())),
        Err(f) => return Err(f),
    };
    let mut decoded = crate::wire::Decoded::default();
    crate::wire::decode_object(object, "ReplicaSet", "apps/v1", &mut decoded);
    let Some(rs) = decoded.replica_sets.pop() else {
        return Ok(spared("the answer was not a ReplicaSet".to_string()));
    };
    if rs.meta.uid != p.uid {
        return Ok(spared(format!(
            "replaced since the plan (uid {} → {})",
            p.uid, rs.meta.uid
        )));
    }
    if rs.meta.resource_version != p.resource_version {
        return Ok(spared(format!(
            "changed since the plan (resourceVersion {} → {})",
            p.resource_version, rs.meta.resource_version
        )));
    }
    let owners: BTreeSet<&str> = rs.meta.controller.iter().map(|o| o.uid.as_str()).collect();
    if !owners.contains(d.uid.as_str()) {
        return Ok(spared("no longer controlled by the deployment".to_string()));
    }
    if rs.revision.is_some() && rs.revision == *current_revision {
        return Ok(spared(format!(
            "it is now the deployment's current revision ({})",
            rs.revision.unwrap_or_default()
        )));
    }
    if !rs.scaled_down() {
        return Ok(spared(not_scaled_down(&rs)));
    }
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some(rs.meta.uid.clone()),
            resource_version: Some(rs.meta.resource_version.clone()),
        }),
        ..DeleteParams::background()
    };
    let request = Request::new(&path)
        .delete(&p.name, &params)
        .map_err(|e| ApiFailure {
            what: format!("delete replicaset {key}"),
            code: None,
            reason: "BadRequest".into(),
            message: e.to_string(),
        })?;
    match session
        .send(request, &format!("delete replicaset {key}"))
        .await
    {
        Ok(_) => Ok(Outcome {
            replica_set: key.clone(),
            deleted: true,
            detail: "deleted".to_string(),
        }),
        Err(f) if f.not_found() => Ok(spared("already gone".to_string())),
        Err(f) if f.code == Some(409) => Ok(spared(format!(
            "changed between the re-check and the delete: {}",
            f.message
        ))),
        Err(f) => Err(f),
    }
}
