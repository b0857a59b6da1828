//! # `replicaset-history-leak`
//!
//! **Signature.** A Deployment whose old ReplicaSets pile up: more than its limit allows, or
//! an effective `revisionHistoryLimit` of 2147483647 (`math.MaxInt32`, extensions/v1beta1's
//! default, which the deployment controller reads as "keep them all"). Every ReplicaSet is a
//! full pod template that kube-apiserver keeps decoded in its watch cache and serialises into
//! every list; seed 003's API server went from 13 GB to 4 GB once thousands were deleted.
//!
//! **Sources.** Deployments and ReplicaSets of every namespace (`kubernetes` source, or
//! `kubectl get deploy,rs -A -o json` files), kube-apiserver's `/metrics` when readable.
//!
//! **Decision.** Per Deployment: the ReplicaSets it controls (owner reference), the current
//! revision's set apart, the rest old ([`KubeState::revision_histories`]); the effective limit
//! and why ([`KubeDeployment::effective_history_limit`]). The surplus is the old ones beyond
//! the limit — beyond apps/v1's default of 10 when the limit keeps everything. A surplus of at
//! least `replicaset_history_warning` (100) is a warning, of `replicaset_history_critical`
//! (1,000) critical; a limit that keeps everything with a smaller surplus is information.
//! When the limit is finite and still exceeded, the evidence says why the controller did not
//! clean up: a rollout that never completed (it cleans up only after one), old ReplicaSets
//! that still have pods (it never deletes those), ReplicaSets already being deleted.
//!
//! **Evidence.** The counts for the Deployment (current, old, scaled down), the limit with
//! why, the apiVersion it was written through when the object tells, the counts over the
//! cluster, kube-apiserver's resident memory and stored ReplicaSets where its metrics say.
//! Template values: `deployment`, `old`, `limit_text`, `keep`, `patch`.

use nodedoc_model::{
    shell_command, Evidence, Finding, KubeState, LimitSource, RevisionHistory, Severity, Subject,
};

use crate::{thousands, Context, Detector, Signature};

/// See the module documentation.
pub struct ReplicasetHistoryLeak;

/// What a Deployment's history amounts to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryCount {
    /// `namespace/name`.
    pub deployment: String,
    /// ReplicaSets it controls, current included.
    pub replica_sets: usize,
    /// Old ones.
    pub old: usize,
    /// Old ones with no pods that want none.
    pub old_scaled_down: usize,
    /// Old ones the controller should have deleted: beyond the limit, or beyond 10 when the
    /// limit keeps everything.
    pub surplus: usize,
    /// The limit's verdict: old ReplicaSets kept (`None`: all).
    pub keeps: Option<u32>,
}

/// The reference a limit that keeps everything is measured against: apps/v1's default.
const APPS_V1_DEFAULT: u32 = 10;

/// Counts one Deployment's history.
pub fn count(history: &RevisionHistory<'_>) -> HistoryCount {
    let limit = history.deployment.effective_history_limit();
    let old = history.old.len();
    let cleanable = history
        .old
        .iter()
        .filter(|rs| rs.meta.deletion_unix.is_none())
        .count();
    HistoryCount {
        deployment: history.deployment.meta.key(),
        replica_sets: old + usize::from(history.current.is_some()),
        old,
        old_scaled_down: history.old.iter().filter(|rs| rs.scaled_down()).count(),
        surplus: cleanable.saturating_sub(limit.keeps.unwrap_or(APPS_V1_DEFAULT) as usize),
        keeps: limit.keeps,
    }
}

/// Counts every Deployment's history (what `jq` would compute from the same file).
pub fn counts(kube: &KubeState) -> Vec<HistoryCount> {
    kube.revision_histories().iter().map(count).collect()
}

impl Detector for ReplicasetHistoryLeak {
    fn id(&self) -> &'static str {
        "replicaset-history-leak"
    }

    fn detect(&self, cx: &mut Context<'_>) {
        let Some(kube) = cx.snapshot.kube.as_ref() else {
            return;
        };
        if kube.deployments.is_empty() {
            return;
        }
        let histories = kube.revision_histories();
        let counts: Vec<HistoryCount> = histories.iter().map(count).collect();
        let complete = kube.complete("ReplicaSet");
        let at_least = if complete { "" } else { "at least " };
        let total_old: usize = counts.iter().map(|c| c.old).sum();
        let total_surplus: usize = counts.iter().map(|c| c.surplus).sum();
        let leaking = counts
            .iter()
            .filter(|c| c.surplus >= cx.config.replicaset_history_warning as usize)
            .count();
        let owned: usize = counts.iter().map(|c| c.replica_sets).sum();
        let unowned = kube.replica_sets.len().saturating_sub(owned);
        let cluster_line = {
            let mut fact = format!(
                "across the cluster: {at_least}{} ReplicaSets, {} of them old, {} beyond their Deployment's limit (or beyond 10 where the limit keeps all) in {} Deployment{}",
                thousands(kube.replica_sets.len() as u64),
                thousands(total_old as u64),
                thousands(total_surplus as u64),
                thousands(leaking as u64),
                if leaking == 1 { "" } else { "s" }
            );
            if unowned > 0 {
                fact.push_str(&format!(
                    "; {} ReplicaSets no listed Deployment controls",
                    thousands(unowned as u64)
                ));
            }
            if let Some(listing) = kube.listing("ReplicaSet").filter(|l| l.bytes > 0) {
                fact.push_str(&format!(
                    "; their JSON is {} as listed (kube-apiserver decodes every one into its watch cache and serialises them all for every full list)",
                    mib(listing.bytes)
                ));
            }
            Evidence::new(
                fact,
                shell_command!("kubectl get rs -A --no-headers | wc -l"),
            )
        };
        let apiserver_line = kube.apiserver.as_ref().and_then(|m| {
            let memory = m.resident_memory_bytes?;
            let stored = m
                .stored("replicasets.apps")
                .map(|n| format!("; it stores {} ReplicaSets", thousands(n)))
                .unwrap_or_default();
            Some(Evidence::new(
                format!(
                    "kube-apiserver (the instance that answered) has {} resident{stored} (seed 003: 13 GB, 4 GB once the leaked ReplicaSets were deleted)",
                    gib(memory)
                ),
                shell_command!("kubectl get --raw /metrics | grep -E '^(process_resident_memory_bytes|apiserver_(storage|resource)_objects.*replicasets)'"),
            ))
        });

        for (history, counted) in histories.iter().zip(&counts) {
            let d = history.deployment;
            let limit = d.effective_history_limit();
            let unlimited = limit.keeps.is_none();
            let severity = if counted.surplus >= cx.config.replicaset_history_critical as usize {
                Severity::Critical
            } else if counted.surplus >= cx.config.replicaset_history_warning as usize {
                Severity::Warning
            } else if unlimited {
                Severity::Info
            } else {
                continue;
            };
            let ns = d.meta.namespace.as_str();
            let name = d.meta.name.as_str();
            let limit_text = match &limit.why {
                LimitSource::ExtensionsV1beta1Default => format!(
                    "revisionHistoryLimit is {} (math.MaxInt32, extensions/v1beta1's default): the controller keeps every old ReplicaSet",
                    i32::MAX
                ),
                LimitSource::Stored { value } => {
                    format!("revisionHistoryLimit is {value}")
                }
                LimitSource::Unset { api_version } => format!(
                    "revisionHistoryLimit is not set in this file; {api_version}'s default {}",
                    match limit.keeps {
                        Some(n) => format!("is {n}"),
                        None => "keeps every old ReplicaSet".to_string(),
                    }
                ),
            };
            let summary = if unlimited {
                format!(
                    "deployment {} keeps every old ReplicaSet: {at_least}{} so far ({})",
                    d.meta.key(),
                    thousands(counted.old as u64),
                    limit_text_short(&limit.why)
                )
            } else {
                format!(
                    "deployment {} has {at_least}{} old ReplicaSets, {} beyond its revisionHistoryLimit of {}",
                    d.meta.key(),
                    thousands(counted.old as u64),
                    thousands(counted.surplus as u64),
                    limit.keeps.unwrap_or_default()
                )
            };
            let mut finding = Finding::new(
                self.id(),
                severity,
                Subject::KubeObject {
                    kind: "Deployment".into(),
                    namespace: ns.to_string(),
                    name: name.to_string(),
                },
                summary,
            );
            let current = history
                .current
                .map(|rs| {
                    format!(
                        "current {} (revision {})",
                        rs.meta.name,
                        rs.revision.map_or("?".to_string(), |r| r.to_string())
                    )
                })
                .unwrap_or_else(|| "no current ReplicaSet found".to_string());
            finding.evidence.push(Evidence::new(
                format!(
                    "{at_least}{} ReplicaSets: {current}, {} old ({} scaled down to 0)",
                    thousands(counted.replica_sets as u64),
                    thousands(counted.old as u64),
                    thousands(counted.old_scaled_down as u64)
                ),
                shell_command!("kubectl rollout history deployment -n {} {}", ns, name),
            ));
            finding.evidence.push(Evidence::new(
                limit_text.clone(),
                shell_command!(
                    "kubectl get deployment -n {} {} -o jsonpath={}",
                    ns,
                    name,
                    "{.spec.revisionHistoryLimit}"
                ),
            ));
            if let Some(created) = &d.created_with {
                finding.evidence.push(Evidence::fact(format!(
                    "written through {}: {}",
                    created.api_version, created.evidence
                )));
            }
            if !unlimited && counted.surplus > 0 {
                finding
                    .evidence
                    .push(Evidence::fact(why_not_cleaned(history, counted)));
            }
            finding.evidence.push(cluster_line.clone());
            if let Some(line) = &apiserver_line {
                finding.evidence.push(line.clone());
            }
            let keep = limit.keeps.unwrap_or(APPS_V1_DEFAULT).min(APPS_V1_DEFAULT);
            let patch = match nodedoc_model::history_limit_patch(ns, name, keep) {
                Ok(command) => format!("`{command}`"),
                Err(why) => format!("(no command: {why})"),
            };
            let signature = Signature::new(
                if unlimited { "keeps-all" } else { "over-limit" },
                if unlimited {
                    "{count} Deployments keep every old ReplicaSet"
                } else {
                    "{count} Deployments have old ReplicaSets beyond their limit"
                },
                counted.surplus as u64,
                "most old ReplicaSets beyond the limit first",
            );
            cx.emit_as(
                signature,
                finding,
                &[
                    ("deployment", &d.meta.key()),
                    ("old", &thousands(counted.old as u64)),
                    ("limit_text", &limit_text),
                    ("keep", &keep.to_string()),
                    ("patch", &patch),
                ],
            );
        }
    }
}

fn limit_text_short(why: &LimitSource) -> &'static str {
    match why {
        LimitSource::ExtensionsV1beta1Default => {
            "revisionHistoryLimit 2147483647, extensions/v1beta1's default"
        }
        _ => "no revisionHistoryLimit in force",
    }
}

/// Why the controller left old ReplicaSets beyond a finite limit.
fn why_not_cleaned(history: &RevisionHistory<'_>, counted: &HistoryCount) -> String {
    let d = history.deployment;
    let mut reasons = Vec::new();
    if !d.paused && !d.rollout_complete() {
        reasons.push(format!(
            "its rollout is not complete ({} of {} pods updated, {} available): the deployment controller cleans up old ReplicaSets only after a rollout completes",
            d.updated_replicas,
            d.replicas.unwrap_or(1),
            d.available_replicas
        ));
    }
    let busy = counted.old - counted.old_scaled_down;
    if busy > 0 {
        reasons.push(format!(
            "{busy} old ReplicaSet{} still have pods or want some: the controller never deletes those",
            if busy == 1 { "" } else { "s" }
        ));
    }
    let deleting = history
        .old
        .iter()
        .filter(|rs| rs.meta.deletion_unix.is_some())
        .count();
    if deleting > 0 {
        reasons.push(format!(
            "{deleting} are already being deleted (a finalizer holds them?)"
        ));
    }
    if reasons.is_empty() {
        "the controller should have removed them: is kube-controller-manager running and leading?"
            .to_string()
    } else {
        format!("why they remain: {}", reasons.join("; "))
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::snapshot;
    use nodedoc_model::{
        ApiserverMetrics, KubeDeployment, KubeListing, KubeMeta, KubeOwner, KubeReplicaSet,
        StoredObjects,
    };

    fn deployment(name: &str, limit: Option<i32>, revision: u64) -> KubeDeployment {
        KubeDeployment {
            meta: KubeMeta {
                namespace: "shop".into(),
                name: name.into(),
                uid: format!("uid-{name}"),
                ..Default::default()
            },
            api_version: "apps/v1".into(),
            replicas: Some(3),
            revision_history_limit: limit,
            revision: Some(revision),
            status_replicas: 3,
            updated_replicas: 3,
            available_replicas: 3,
            ..Default::default()
        }
    }

    fn rs(owner: &str, revision: u64, replicas: i32) -> KubeReplicaSet {
        KubeReplicaSet {
            meta: KubeMeta {
                namespace: "shop".into(),
                name: format!("{owner}-{revision}"),
                uid: format!("{owner}-{revision}"),
                controller: Some(KubeOwner {
                    kind: "Deployment".into(),
                    name: owner.into(),
                    uid: format!("uid-{owner}"),
                    api_version: "apps/v1".into(),
                }),
                ..Default::default()
            },
            api_version: "apps/v1".into(),
            revision: Some(revision),
            replicas: Some(replicas),
            status_replicas: replicas,
            ..Default::default()
        }
    }

    /// Seed 003's cluster: `api` created through extensions/v1beta1 with 2,000 revisions, `web`
    /// on apps/v1 at its limit, `batch` with a finite limit and a rollout stuck for months.
    fn seed_003() -> nodedoc_model::Snapshot {
        let mut kube = KubeState {
            read_at_unix: 1_795_000_000,
            ..Default::default()
        };
        kube.deployments
            .push(deployment("api", Some(i32::MAX), 2000));
        kube.deployments.push(deployment("web", Some(10), 40));
        let mut batch = deployment("batch", Some(10), 300);
        batch.updated_replicas = 1;
        kube.deployments.push(batch);
        for r in 1..=2000 {
            kube.replica_sets
                .push(rs("api", r, if r == 2000 { 3 } else { 0 }));
        }
        for r in 30..=40 {
            kube.replica_sets
                .push(rs("web", r, if r == 40 { 3 } else { 0 }));
        }
        for r in 1..=300 {
            kube.replica_sets
                .push(rs("batch", r, if r >= 299 { 2 } else { 0 }));
        }
        kube.listings.push(KubeListing {
            kind: "ReplicaSet".into(),
            origin: "file:rs.json".into(),
            scope: "file".into(),
            items: 2311,
            pages: 1,
            bytes: 9 << 20,
            complete: true,
        });
        kube.apiserver = Some(ApiserverMetrics {
            origin: "api:x/metrics".into(),
            resident_memory_bytes: Some(13 << 30),
            stored_objects: vec![StoredObjects {
                resource: "replicasets.apps".into(),
                count: 2311,
            }],
        });
        let mut snap = snapshot(vec![]);
        snap.kube = Some(kube);
        snap
    }

    #[test]
    fn counts_per_deployment_and_the_limit_in_force() {
        let snap = seed_003();
        let counts = counts(snap.kube.as_ref().unwrap());
        let by_name = |n: &str| counts.iter().find(|c| c.deployment == n).unwrap().clone();
        assert_eq!(
            by_name("shop/api"),
            HistoryCount {
                deployment: "shop/api".into(),
                replica_sets: 2000,
                old: 1999,
                old_scaled_down: 1999,
                surplus: 1989,
                keeps: None,
            }
        );
        assert_eq!(by_name("shop/web").surplus, 0);
        assert_eq!(
            (by_name("shop/batch").old, by_name("shop/batch").surplus),
            (299, 289)
        );
    }

    #[test]
    fn seed_003_thousands_kept_by_the_extensions_default_is_critical_with_the_apiserver_memory() {
        let findings = crate::run(&seed_003(), &Default::default());
        let api = findings
            .iter()
            .find(|f| f.id.0 == "replicaset-history-leak:deployment/shop/api")
            .expect("finding for api");
        assert_eq!(api.severity, Severity::Critical);
        assert_eq!(
            api.summary,
            "deployment shop/api keeps every old ReplicaSet: 1,999 so far (revisionHistoryLimit 2147483647, extensions/v1beta1's default)"
        );
        let facts: Vec<&str> = api.evidence.iter().map(|e| e.fact.as_str()).collect();
        assert!(facts.contains(&"2,000 ReplicaSets: current api-2000 (revision 2000), 1,999 old (1,999 scaled down to 0)"), "{facts:#?}");
        assert!(facts
            .iter()
            .any(|f| f.starts_with("revisionHistoryLimit is 2147483647 (math.MaxInt32")));
        assert!(
            facts.iter().any(|f| f.starts_with(
                "across the cluster: 2,311 ReplicaSets, 2,308 of them old, 2,278 beyond"
            ) && f.contains("in 2 Deployments")
                && f.contains("9.0 MiB")),
            "{facts:#?}"
        );
        assert!(facts.iter().any(|f| f.starts_with("kube-apiserver (the instance that answered) has 13.0 GiB resident; it stores 2,311 ReplicaSets")));
        assert!(
            api.fix.contains("`kubectl patch deployment -n shop api -p '{\"spec\":{\"revisionHistoryLimit\":10}}'`"),
            "{}",
            api.fix
        );
        assert!(api.fix.contains("nodedoc fix replicaset-history-leak"));
        // At its limit: nothing to say.
        assert!(!findings
            .iter()
            .any(|f| f.id.0.ends_with("deployment/shop/web")));
    }

    #[test]
    fn a_finite_limit_exceeded_says_why_the_controller_did_not_clean_up() {
        let findings = crate::run(&seed_003(), &Default::default());
        let batch = findings
            .iter()
            .find(|f| f.id.0.ends_with("deployment/shop/batch"))
            .unwrap();
        assert_eq!(batch.severity, Severity::Warning);
        assert_eq!(
            batch.summary,
            "deployment shop/batch has 299 old ReplicaSets, 289 beyond its revisionHistoryLimit of 10"
        );
        let why = batch
            .evidence
            .iter()
            .find(|e| e.fact.starts_with("why they remain"))
            .unwrap();
        assert!(
            why.fact
                .contains("its rollout is not complete (1 of 3 pods updated, 3 available)"),
            "{}",
            why.fact
        );
        assert!(
            why.fact.contains("1 old ReplicaSet still have pods"),
            "{}",
            why.fact
        );
    }

    #[test]
    fn a_partial_list_says_at_least_and_an_unlimited_small_history_is_information() {
        let mut snap = seed_003();
        let kube = snap.kube.as_mut().unwrap();
        kube.listings[0].complete = false;
        kube.deployments.push(deployment("tiny", Some(i32::MAX), 3));
        for r in 1..=3 {
            kube.replica_sets
                .push(rs("tiny", r, if r == 3 { 1 } else { 0 }));
        }
        let findings = crate::run(&snap, &Default::default());
        let tiny = findings
            .iter()
            .find(|f| f.id.0.ends_with("shop/tiny"))
            .unwrap();
        assert_eq!(tiny.severity, Severity::Info);
        assert!(
            tiny.summary.contains("at least 2 so far"),
            "{}",
            tiny.summary
        );
    }
}
