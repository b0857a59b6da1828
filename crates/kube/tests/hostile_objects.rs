//! `--kube-objects` files are untrusted input (exports from a cluster in trouble, passed around
//! in tickets). Objects with the right names in the wrong shapes — numbers where strings go,
//! huge and negative counts, broken timestamps, owner references to nothing, deep nesting — must
//! give objects or a clear error naming the file, never a panic, and every detector must run
//! over what was read.

use nodedoc_model::Snapshot;
use proptest::prelude::*;
use serde_json::{json, Value};

const KEYS: &[&str] = &[
    "kind",
    "apiVersion",
    "metadata",
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "finalizers",
    "ownerReferences",
    "controller",
    "annotations",
    "deployment.kubernetes.io/revision",
    "kubectl.kubernetes.io/last-applied-configuration",
    "spec",
    "replicas",
    "revisionHistoryLimit",
    "paused",
    "nodeName",
    "terminationGracePeriodSeconds",
    "status",
    "phase",
    "conditions",
    "containerStatuses",
    "initContainerStatuses",
    "containerID",
    "state",
    "terminated",
    "running",
    "startedAt",
    "items",
];

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        Just(json!(2_147_483_647)),
        Just(json!(18_446_744_073_709_551_615u64)),
        Just(json!(-1)),
        Just(json!(1e308)),
        prop_oneof![
            Just("Deployment"),
            Just("ReplicaSet"),
            Just("Pod"),
            Just("List"),
            Just("apps/v1"),
            Just("extensions/v1beta1"),
            Just("2026-12-01T10:00:00Z"),
            Just("9999-99-99T99:99:99Z"),
            Just("containerd://b32a2fd9b0a141bdc9be897b80762009665ce408cde67b93e64dc2b1c1aa2c78"),
            Just("docker://"),
            Just("\u{1b}]0;pwned\u{7}"),
        ]
        .prop_map(Value::from),
        "[ -~λé]{0,16}".prop_map(Value::from),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            proptest::collection::vec((proptest::sample::select(KEYS), inner), 0..7).prop_map(
                |pairs| Value::Object(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            ),
        ]
    })
}

/// An object of one of the kinds read, with some fields replaced by anything.
fn object() -> impl Strategy<Value = Value> {
    (
        proptest::sample::select(&["Deployment", "ReplicaSet", "Pod", "Node"][..]),
        proptest::collection::vec((proptest::sample::select(KEYS), value()), 0..6),
    )
        .prop_map(|(kind, replaced)| {
            let mut object = json!({
                "apiVersion": if kind == "Pod" { "v1" } else { "apps/v1" },
                "kind": kind,
                "metadata": {
                    "name": "web-5d4f", "namespace": "prod", "uid": "a548c954-93c6-4845-b26d-89d63b4e1fd7",
                    "creationTimestamp": "2026-11-01T00:00:00Z",
                    "annotations": {"deployment.kubernetes.io/revision": "7"},
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "u1", "controller": true}]
                },
                "spec": {"replicas": 0, "revisionHistoryLimit": 2147483647, "nodeName": "node-1"},
                "status": {"phase": "Running", "containerStatuses": [{"name": "c", "containerID": "containerd://b32a2fd9b0a141bdc9be897b80762009665ce408cde67b93e64dc2b1c1aa2c78", "state": {"running": {"startedAt": "2026-11-01T00:00:01Z"}}}]}
            });
            for (key, v) in replaced {
                let map = object.as_object_mut().unwrap();
                let within = match key {
                    "name" | "namespace" | "uid" | "deletionTimestamp" | "ownerReferences"
                    | "annotations" | "deletionGracePeriodSeconds" | "creationTimestamp"
                    | "generation" => "metadata",
                    "replicas" | "revisionHistoryLimit" | "nodeName"
                    | "terminationGracePeriodSeconds" => "spec",
                    "phase" | "containerStatuses" => "status",
                    _ => "",
                };
                // An earlier replacement may have made the parent a non-object.
                match map.get_mut(within).and_then(Value::as_object_mut) {
                    Some(parent) => parent.insert(key.to_string(), v),
                    None => map.insert(key.to_string(), v),
                };
            }
            object
        })
}

fn check(text: &[u8]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("objects.json");
    std::fs::write(&path, text).unwrap();
    let mut snapshot = Snapshot::new(Default::default());
    match nodedoc_kube::add_files(&mut snapshot, &[path]) {
        Ok(()) => {
            let findings = nodedoc_detectors::run(&snapshot, &Default::default());
            for finding in &findings {
                prop_assert!(!finding.summary.is_empty());
            }
        }
        Err(e) => prop_assert!(e.to_string().contains("objects.json"), "{e}"),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn lists_of_misshapen_objects_read_or_fail_clearly(
        items in proptest::collection::vec(object(), 0..12),
        list_kind in proptest::sample::select(&["List", "ReplicaSetList", "", "Pod"][..]),
    ) {
        let list = json!({"apiVersion": "v1", "kind": list_kind, "items": items});
        check(&serde_json::to_vec(&list).unwrap())?;
    }

    #[test]
    fn any_json_reads_or_fails_clearly(v in value()) {
        check(&serde_json::to_vec(&v).unwrap())?;
    }

    #[test]
    fn any_bytes_read_or_fail_clearly(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        check(&bytes)?;
    }
}

/// The extremes the generator reaches only by chance: a deleted pod whose grace periods and
/// times are at the ends of their ranges.
#[test]
fn extreme_grace_periods_and_times_do_not_overflow() {
    for grace in [i64::MAX, i64::MIN, -1, 0] {
        for deleted in [
            "2026-12-01T10:00:00Z",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
        ] {
            let pod = json!({"apiVersion": "v1", "kind": "List", "items": [{
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "p", "namespace": "n", "uid": "u", "deletionTimestamp": deleted,
                    "deletionGracePeriodSeconds": grace, "creationTimestamp": deleted,
                    "finalizers": ["x"]},
                "spec": {"nodeName": "node-1", "terminationGracePeriodSeconds": grace},
                "status": {"phase": "Running"}
            }]});
            check(&serde_json::to_vec(&pod).unwrap()).unwrap();
        }
    }
}

/// A Deployment and its ReplicaSets with counts, limits and revisions at the ends of their
/// ranges, and 30 ReplicaSets so the history detector has something to count.
#[test]
fn extreme_counts_limits_and_revisions_do_not_overflow() {
    for n in [i64::MAX, i64::MIN, -1, 0, 2_147_483_647] {
        let mut items = vec![json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "prod", "uid": "d1", "generation": n,
                "annotations": {"deployment.kubernetes.io/revision": n.to_string()}},
            "spec": {"replicas": n, "revisionHistoryLimit": n, "paused": true},
            "status": {"replicas": n, "observedGeneration": n}
        })];
        for i in 0..30 {
            items.push(json!({
                "apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": format!("web-{i}"), "namespace": "prod", "uid": format!("r{i}"),
                    "annotations": {"deployment.kubernetes.io/revision": if i % 2 == 0 { n.to_string() } else { i.to_string() }},
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "d1", "controller": true}]},
                "spec": {"replicas": if i % 3 == 0 { n } else { 0 }},
                "status": {"replicas": n}
            }));
        }
        let list = json!({"apiVersion": "v1", "kind": "List", "items": items});
        check(&serde_json::to_vec(&list).unwrap()).unwrap();
    }
}
