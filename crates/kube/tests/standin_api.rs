//! The API source and the ReplicaSet fix against the stand-in for kube-apiserver
//! (`nodedoc_kube::standin`: an HTTP server answering in the API server's JSON, not a real
//! API server — none can be installed here).

use std::time::Duration;

use nodedoc_kube::api::{ApiOptions, Session};
use nodedoc_kube::fix::HistoryCleanup;
use nodedoc_kube::standin::{objects, Cluster, Kind, StandIn};
use nodedoc_model::{HostInfo, Snapshot, SourceState};

const T0: i64 = 1_795_000_000;

/// `deployments` Deployments in namespace `shop`, each with `old` scaled-down ReplicaSets and
/// its current one (3 pods).
fn cluster(deployments: usize, old: u64, limit: Option<i32>) -> Cluster {
    let mut cluster = Cluster::default();
    for d in 0..deployments {
        let name = format!("web{d}");
        let current = old + 1;
        let dep = objects::deployment("shop", &name, &format!("uid-{name}"), current, 3, limit, T0);
        for revision in 1..=old {
            cluster.replica_sets.push(objects::replica_set(
                &dep,
                revision,
                0,
                T0 + revision as i64,
            ));
        }
        cluster
            .replica_sets
            .push(objects::replica_set(&dep, current, 3, T0 + current as i64));
        cluster.deployments.push(dep);
    }
    cluster
}

fn options(standin: &StandIn, dir: &std::path::Path) -> ApiOptions {
    ApiOptions {
        kubeconfig: Some(standin.write_kubeconfig(dir).unwrap()),
        node_name: "node-1".into(),
        timeout: Duration::from_secs(20),
        ..ApiOptions::default()
    }
}

fn snapshot() -> Snapshot {
    Snapshot::new(HostInfo {
        hostname: "node-1".into(),
        ..HostInfo::default()
    })
}

#[test]
fn replicasets_are_listed_in_pages_with_continue_tokens_and_credentials() {
    let standin = StandIn::start(cluster(3, 411, Some(i32::MAX))).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut snap = snapshot();
    nodedoc_kube::add_api(&mut snap, &options(&standin, dir.path()));
    let kube = snap.kube.as_ref().expect("kube state");
    assert_eq!(kube.replica_sets.len(), 3 * 412);
    assert_eq!(kube.deployments.len(), 3);
    let listing = kube.listing("ReplicaSet").unwrap();
    assert!(listing.complete);
    assert_eq!(listing.pages, 3, "1,236 objects in pages of 500");
    assert!(listing.bytes > 1_000_000, "{}", listing.bytes);
    let log = standin.log();
    let rs_requests: Vec<&String> = log
        .iter()
        .filter(|l| l.starts_with("GET /apis/apps/v1/replicasets"))
        .collect();
    assert_eq!(rs_requests.len(), 3, "{log:#?}");
    assert!(rs_requests[0].contains("limit=500") && !rs_requests[0].contains("continue="));
    assert!(rs_requests[1].contains("continue="));
    assert!(log.iter().all(|l| l.ends_with("(token)")), "{log:#?}");
    let source = snap.source("kubernetes").unwrap();
    assert_eq!(source.state, SourceState::Collected, "{}", source.detail);
    assert!(
        source
            .detail
            .contains("1236 ReplicaSets (all namespaces, 3 pages)"),
        "{}",
        source.detail
    );
}

#[test]
fn only_this_nodes_pods_are_asked_for() {
    let mut c = Cluster::default();
    c.pods.push(objects::pod(
        "a",
        "here",
        "11111111-1111-1111-1111-111111111111",
        "node-1",
        &[("app", "ab")],
        T0,
    ));
    c.pods.push(objects::pod(
        "a",
        "there",
        "22222222-2222-2222-2222-222222222222",
        "node-2",
        &[("app", "cd")],
        T0,
    ));
    let standin = StandIn::start(c).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut snap = snapshot();
    nodedoc_kube::add_api(&mut snap, &options(&standin, dir.path()));
    let pods = &snap.kube.as_ref().unwrap().pods;
    assert_eq!(pods.len(), 1);
    assert_eq!(pods[0].meta.name, "here");
    let log = standin.log();
    assert!(
        log.iter().any(|l| l.starts_with("GET /api/v1/pods?")
            && l.contains("fieldSelector=spec.nodeName%3Dnode-1")),
        "{log:#?}"
    );
}

#[test]
fn rbac_refusals_are_gaps_that_say_what_to_grant_and_the_rest_is_read() {
    let mut c = cluster(1, 2, None);
    c.forbidden.insert("list replicasets".into());
    c.forbidden.insert("get metrics".into());
    let standin = StandIn::start(c).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut snap = snapshot();
    nodedoc_kube::add_api(&mut snap, &options(&standin, dir.path()));
    let source = snap.source("kubernetes").unwrap();
    assert_eq!(source.state, SourceState::Partial, "{}", source.detail);
    let kube = snap.kube.as_ref().unwrap();
    assert_eq!(kube.deployments.len(), 1);
    assert!(!kube.complete("ReplicaSet"));
    let gap = snap
        .gaps
        .iter()
        .find(|g| g.what == "ReplicaSets (all namespaces)")
        .expect("gap");
    assert!(
        gap.reason
            .starts_with("forbidden by RBAC (replicasets.apps is forbidden: User"),
        "{}",
        gap.reason
    );
    assert!(snap
        .gaps
        .iter()
        .any(|g| g.what.contains("/metrics") && g.reason.contains("forbidden")));
}

#[test]
fn an_expired_continue_token_restarts_the_list_once() {
    let mut c = cluster(2, 300, None);
    c.expire_next_continue = true;
    let standin = StandIn::start(c).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut snap = snapshot();
    let mut opts = options(&standin, dir.path());
    opts.pods = false;
    nodedoc_kube::add_api(&mut snap, &opts);
    let kube = snap.kube.as_ref().unwrap();
    assert_eq!(kube.replica_sets.len(), 602);
    assert!(kube.complete("ReplicaSet"));
    assert!(snap
        .gaps
        .iter()
        .any(|g| g.reason.contains("continue token expired (410)")));
}

#[test]
fn the_object_cap_stops_the_list_and_says_how_many_more() {
    let standin = StandIn::start(cluster(1, 120, None)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut snap = snapshot();
    let mut opts = options(&standin, dir.path());
    opts.page_size = 50;
    opts.max_objects = 100;
    nodedoc_kube::add_api(&mut snap, &opts);
    let kube = snap.kube.as_ref().unwrap();
    assert_eq!(kube.replica_sets.len(), 100);
    assert!(!kube.complete("ReplicaSet"));
    let gap = snap
        .gaps
        .iter()
        .find(|g| g.what.starts_with("ReplicaSets"))
        .unwrap();
    assert!(
        gap.reason
            .contains("stopped at 100 objects; the API server has 21 more"),
        "{}",
        gap.reason
    );
}

#[test]
fn an_unreachable_server_is_a_failed_source_not_an_error() {
    let standin = StandIn::start(Cluster::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let opts = options(&standin, dir.path());
    drop(standin); // nothing listens there now
    let mut snap = snapshot();
    nodedoc_kube::add_api(&mut snap, &opts);
    let source = snap.source("kubernetes").unwrap();
    assert_eq!(source.state, SourceState::Failed, "{}", source.detail);
    assert!(snap.kube.is_none());
    assert!(
        snap.gaps
            .iter()
            .any(|g| g.reason.starts_with("unreachable")),
        "{:?}",
        snap.gaps
    );
}

#[test]
fn no_pods_on_an_unknown_node_name_says_to_pass_node_name() {
    let standin = StandIn::start(Cluster::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut snap = snapshot();
    nodedoc_kube::add_api(&mut snap, &options(&standin, dir.path()));
    assert!(
        snap.gaps
            .iter()
            .any(|g| g.reason.contains("no node named \"node-1\"")
                && g.reason.contains("--node-name"))
    );
}

#[test]
fn apiserver_memory_comes_from_its_metrics() {
    let mut c = cluster(1, 1, None);
    c.metrics = Some(
        "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 1.3958643712e+10\n\
         # TYPE apiserver_storage_objects gauge\napiserver_storage_objects{resource=\"replicasets.apps\"} 2\n"
            .into(),
    );
    let standin = StandIn::start(c).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut snap = snapshot();
    nodedoc_kube::add_api(&mut snap, &options(&standin, dir.path()));
    let metrics = snap.kube.as_ref().unwrap().apiserver.as_ref().unwrap();
    assert_eq!(metrics.resident_memory_bytes, Some(13_958_643_712));
    assert_eq!(metrics.stored("replicasets.apps"), Some(2));
}

/// Reads the stand-in's cluster into a state, as `fix` does.
fn read(standin: &StandIn, dir: &std::path::Path) -> nodedoc_model::KubeState {
    let mut snap = snapshot();
    let mut opts = options(standin, dir);
    opts.pods = false;
    nodedoc_kube::add_api(&mut snap, &opts);
    snap.kube.unwrap()
}

/// A session on the stand-in; like the binary, made on the runtime that uses it (the
/// client's connection worker lives on that runtime).
async fn session(standin: &StandIn, dir: &std::path::Path) -> Session {
    let path = standin.write_kubeconfig(dir).unwrap();
    let Ok(nodedoc_kube::api::Credentials::Found { config, .. }) =
        nodedoc_kube::api::credentials(Some(&path), None).await
    else {
        panic!("credentials")
    };
    Session::new(*config, Duration::from_secs(10), None, 64 << 20).unwrap()
}

#[test]
fn the_fix_deletes_the_surplus_oldest_first_and_never_the_current_or_a_busy_one() {
    let mut c = cluster(1, 14, Some(i32::MAX));
    // Revision 3 still has a pod (a rollout that never finished scaling it down).
    let dep = c.deployments[0].clone();
    c.replica_sets[2] = objects::replica_set(&dep, 3, 1, T0 + 3);
    let standin = StandIn::start(c).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = read(&standin, dir.path());
    let plan = HistoryCleanup::plan(&state, &|_, _| true, None);
    let d = &plan.deployments[0];
    assert_eq!((d.keep, d.unlimited, d.old), (10, true, 14));
    let revisions: Vec<u64> = d.delete.iter().map(|p| p.revision.unwrap()).collect();
    assert_eq!(revisions, vec![1, 2, 4], "the 4 oldest minus the busy one");
    assert_eq!(d.spared.len(), 1);
    assert!(
        d.spared[0].why.contains("still has 1 pod"),
        "{:?}",
        d.spared
    );
    assert_eq!(
        d.current.as_deref(),
        Some(format!("web0-{}", objects::hash("web0", 15)).as_str())
    );
    assert_eq!(
        plan.patch_commands()[0].as_ref().unwrap().as_str(),
        "kubectl patch deployment -n shop web0 -p '{\"spec\":{\"revisionHistoryLimit\":10}}'"
    );

    // Between the plan and the delete: revision 2 changes (the re-check sees it), and
    // revision 4 changes right after its re-check (the precondition catches it: 409).
    let rs2 = d.delete[1].name.clone();
    let rs4 = d.delete[2].name.clone();
    standin.with(|c| {
        let i = c.find(Kind::ReplicaSet, "shop", &rs2).unwrap();
        c.touch(Kind::ReplicaSet, i);
    });
    let rs4_hook = rs4.clone();
    standin.set_hook(move |c, req| {
        if req.method == "DELETE" && req.path.ends_with(&rs4_hook) {
            let i = c.find(Kind::ReplicaSet, "shop", &rs4_hook).unwrap();
            c.touch(Kind::ReplicaSet, i);
        }
    });
    let mut seen = Vec::new();
    let (outcomes, failure) = nodedoc_kube::block_on(async {
        let session = session(&standin, dir.path()).await;
        plan.apply(&session, &mut |o| seen.push(o.clone())).await
    })
    .unwrap();
    assert_eq!(failure, None);
    assert_eq!(outcomes, seen);
    assert!(outcomes[0].deleted, "{outcomes:?}");
    assert!(
        !outcomes[1].deleted && outcomes[1].detail.starts_with("changed since the plan"),
        "{outcomes:?}"
    );
    assert!(
        !outcomes[2].deleted
            && outcomes[2]
                .detail
                .contains("changed between the re-check and the delete")
            && outcomes[2]
                .detail
                .contains("Precondition failed: ResourceVersion"),
        "{outcomes:?}"
    );
    let left = standin.with(|c| c.replica_sets.len());
    assert_eq!(left, 14, "15 minus the one deleted");
    let deletes: Vec<String> = standin
        .log()
        .into_iter()
        .filter(|l| l.starts_with("DELETE"))
        .collect();
    assert_eq!(deletes.len(), 2, "{deletes:?}");
}

#[test]
fn the_fix_spares_what_became_current_and_stops_on_rbac() {
    let standin = StandIn::start(cluster(1, 12, Some(i32::MAX))).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = read(&standin, dir.path());
    let plan = HistoryCleanup::plan(&state, &|_, _| true, None);
    assert_eq!(plan.deletions(), 2);
    // A rollback to revision 1 happened meanwhile: the Deployment's revision is now 1's.
    standin.with(|c| {
        c.deployments[0]["metadata"]["annotations"]["deployment.kubernetes.io/revision"] =
            serde_json::json!("1");
        c.forbidden.insert("delete replicasets".into());
    });
    let (outcomes, failure) = nodedoc_kube::block_on(async {
        let session = session(&standin, dir.path()).await;
        plan.apply(&session, &mut |_| {}).await
    })
    .unwrap();
    assert!(
        outcomes[0]
            .detail
            .contains("now the deployment's current revision (1)"),
        "{outcomes:?}"
    );
    let failure = failure.expect("403 stops the work");
    assert!(failure.forbidden(), "{failure}");
    assert_eq!(standin.with(|c| c.replica_sets.len()), 13);
}
