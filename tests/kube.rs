//! The Kubernetes side end to end: the real binary against the stand-in for kube-apiserver
//! (`nodedoc_kube::standin`, an HTTP server answering in the API server's JSON — there is no
//! kube-apiserver to install here), real kubectl output, and real stuck processes.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{check_json, finding, has_evidence, lab_context, nodedoc};
use nodedoc_kube::standin::{objects, Cluster, StandIn};
use nodedoc_model::{Severity, SourceState};

const T0: i64 = 1_795_000_000;

/// A cluster like seed 003's: `api` (created through extensions/v1beta1: limit 2147483647)
/// with `old` scaled-down revisions, revision 2 of which still has a pod; `web` at its limit.
fn leaking_cluster(old: u64) -> Cluster {
    let mut c = Cluster::default();
    let api = objects::deployment("prod", "api", "uid-api", old + 1, 3, Some(i32::MAX), T0);
    for r in 1..=old {
        let pods = if r == 2 { 1 } else { 0 };
        c.replica_sets
            .push(objects::replica_set(&api, r, pods, T0 + r as i64));
    }
    c.replica_sets
        .push(objects::replica_set(&api, old + 1, 3, T0 + old as i64 + 1));
    c.deployments.push(api);
    let web = objects::deployment("prod", "web", "uid-web", 12, 2, Some(10), T0);
    for r in 2..=12 {
        c.replica_sets.push(objects::replica_set(
            &web,
            r,
            if r == 12 { 2 } else { 0 },
            T0 + r as i64,
        ));
    }
    c.deployments.push(web);
    c.metrics = Some(
        "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 1.3958643712e+10\n".into(),
    );
    c
}

fn kubectl() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("kubectl"))
        .find(|p| p.is_file())
}

/// `kubectl --kubeconfig K get WHAT -A -o json`, as a user would export it.
fn kubectl_export(
    kubectl: &Path,
    kubeconfig: &Path,
    dir: &Path,
    what: &str,
    file: &str,
) -> PathBuf {
    let out = Command::new(kubectl)
        .args(["--kubeconfig"])
        .arg(kubeconfig)
        .args(["--cache-dir"])
        .arg(dir.join("kubectl-cache"))
        .args(["get", what, "-A", "-o", "json"])
        .env("HOME", dir)
        .output()
        .expect("run kubectl");
    assert!(
        out.status.success(),
        "kubectl get {what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = dir.join(file);
    std::fs::write(&path, &out.stdout).unwrap();
    path
}

#[test]
fn kubectl_output_from_the_stand_in_is_analysed_offline() {
    let Some(kubectl) = kubectl() else {
        eprintln!("SKIPPED: no kubectl on PATH (.ci/run installs kubernetes-client)");
        return;
    };
    let standin = StandIn::start(leaking_cluster(1200)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = standin.write_kubeconfig(dir.path()).unwrap();
    let file = kubectl_export(
        &kubectl,
        &kubeconfig,
        dir.path(),
        "deploy,rs",
        "deploy-rs.json",
    );
    // Real kubectl output: a List whose items carry apiVersion and kind, read in pages.
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("\"kind\": \"List\"") && text.contains("\"kind\": \"ReplicaSet\""));
    assert!(
        standin
            .log()
            .iter()
            .any(|l| l.starts_with("GET /apis/apps/v1/replicasets?continue=")),
        "kubectl pages through the stand-in: {:#?}",
        standin.log()
    );

    let (report, code) = check_json(&["--offline", "--kube-objects", file.to_str().unwrap()]);
    assert_eq!(code, 2, "critical: 1,190 beyond the limit");
    let api = finding(&report, "replicaset-history-leak", "deployment/prod/api");
    assert_eq!(api.severity, Severity::Critical);
    assert_eq!(
        api.summary,
        "deployment prod/api keeps every old ReplicaSet: 1,200 so far (revisionHistoryLimit 2147483647, extensions/v1beta1's default)"
    );
    assert!(
        has_evidence(api, "1,201 ReplicaSets: current api-"),
        "{:#?}",
        api.evidence
    );
    assert!(
        has_evidence(api, "1,200 old (1,199 scaled down to 0)"),
        "{:#?}",
        api.evidence
    );
    assert!(report
        .findings
        .iter()
        .all(|f| f.subject.key() != "deployment/prod/web"));
    let source = report
        .sources
        .iter()
        .find(|s| s.source == "kube-objects")
        .unwrap();
    assert_eq!(source.detail, "1 file: 2 Deployments, 1212 ReplicaSets");

    // `kubectl get pods -A -o json` of a pod stuck for an hour: found without the node.
    let now = nodedoc_kube::now_unix();
    standin.with(|c| {
        let pod = objects::pod(
            "mesh",
            "db-0",
            "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
            "node-7",
            &[("db", "ab12")],
            now - 7200,
        );
        c.pods.push(objects::terminating(pod, now - 3600, 30));
        c.pods.push(objects::pod(
            "mesh",
            "db-1",
            "aaaaaaaa-bbbb-cccc-dddd-ffffffffffff",
            "node-7",
            &[("db", "cd34")],
            now - 7200,
        ));
    });
    let pods = kubectl_export(&kubectl, &kubeconfig, dir.path(), "pods", "pods.json");
    let (report, _) = check_json(&["--offline", "--kube-objects", pods.to_str().unwrap()]);
    let stuck = finding(&report, "pod-stuck-terminating", "pod/mesh/db-0");
    assert!(
        stuck
            .summary
            .ends_with("past its 30s grace period: the kubelet still reports db running"),
        "{}",
        stuck.summary
    );
    assert!(has_evidence(
        stuck,
        "no reading of the node's processes here"
    ));
    assert_eq!(
        report
            .findings
            .iter()
            .filter(|f| f.detector == "pod-stuck-terminating")
            .count(),
        1
    );
}

#[test]
fn live_check_reads_the_api_and_reports_the_leak_with_apiserver_memory() {
    let standin = StandIn::start(leaking_cluster(150)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = standin.write_kubeconfig(dir.path()).unwrap();
    let (report, _) = check_json(&[
        "--interval",
        "0",
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--node-name",
        "node-under-test",
    ]);
    let source = report
        .sources
        .iter()
        .find(|s| s.source == "kubernetes")
        .unwrap();
    assert_eq!(source.state, SourceState::Collected, "{}", source.detail);
    let api = finding(&report, "replicaset-history-leak", "deployment/prod/api");
    assert_eq!(api.severity, Severity::Warning, "140 beyond 10: a warning");
    assert!(has_evidence(
        api,
        "kube-apiserver (the instance that answered) has 13.0 GiB resident"
    ));
    assert!(standin
        .log()
        .iter()
        .any(|l| l.contains("/api/v1/pods?") && l.contains("spec.nodeName%3Dnode-under-test")));
}

#[test]
fn rbac_and_unreachable_apis_are_source_states_not_failures() {
    let mut c = leaking_cluster(3);
    c.forbidden.insert("list replicasets".into());
    let standin = StandIn::start(c).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = standin.write_kubeconfig(dir.path()).unwrap();
    let (report, code) = check_json(&[
        "--interval",
        "0",
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
    ]);
    assert_ne!(code, 3);
    let source = report
        .sources
        .iter()
        .find(|s| s.source == "kubernetes")
        .unwrap();
    assert_eq!(source.state, SourceState::Partial);
    assert!(report
        .gaps
        .iter()
        .any(|g| g.source == "kubernetes" && g.reason.starts_with("forbidden by RBAC")));
    drop(standin);
    let (report, code) = check_json(&[
        "--interval",
        "0",
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
    ]);
    assert_ne!(code, 3);
    let source = report
        .sources
        .iter()
        .find(|s| s.source == "kubernetes")
        .unwrap();
    assert_eq!(source.state, SourceState::Failed, "{}", source.detail);
}

#[test]
fn a_bad_objects_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("truncated.json");
    std::fs::write(&path, "{\"apiVersion\": \"v1\", \"items\": [").unwrap();
    let out = nodedoc(&[
        "check",
        "--offline",
        "--kube-objects",
        path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("truncated.json: line 1 column 31: the JSON ends early"),
        "{stderr}"
    );
    let out = nodedoc(&["check", "--offline", "--kube-objects", "/dev/zero"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a regular file"));
}

#[test]
fn fix_is_a_dry_run_without_a_terminal_and_deletes_exactly_the_plan_with_yes() {
    let standin = StandIn::start(leaking_cluster(14)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = standin.write_kubeconfig(dir.path()).unwrap();
    let k = kubeconfig.to_str().unwrap();

    let out = nodedoc(&["fix", "replicaset-history-leak", "--kubeconfig", k]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("deployment prod/api: 14 old, keep 10 (apps/v1's default"),
        "{text}"
    );
    assert!(text.contains("spare prod/api-"), "{text}");
    assert!(
        text.contains(
            "kubectl patch deployment -n prod api -p '{\"spec\":{\"revisionHistoryLimit\":10}}'"
        ),
        "{text}"
    );
    assert!(text.contains("dry run: nothing changed"), "{text}");
    assert!(!standin.log().iter().any(|l| l.starts_with("DELETE")));

    let out = nodedoc(&[
        "fix",
        "replicaset-history-leak",
        "--kubeconfig",
        k,
        "--yes",
        "--format",
        "json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let planned: Vec<&str> = report["plan"]["deployments"][0]["delete"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    let api = objects::deployment("prod", "api", "uid-api", 15, 3, None, T0);
    let name = |r: u64| format!("api-{}", objects::hash("api", r));
    // The 4 oldest beyond 10, minus revision 2 (it has a pod): 1, 3, 4.
    assert_eq!(planned, vec![name(1), name(3), name(4)]);
    assert_eq!(
        report["plan"]["deployments"][0]["current"],
        serde_json::json!(name(15))
    );
    assert_eq!(report["applied"], serde_json::json!(true));
    let deleted: Vec<&str> = report["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["deleted"] == serde_json::json!(true))
        .map(|o| o["replica_set"].as_str().unwrap())
        .collect();
    assert_eq!(
        deleted,
        vec![
            format!("prod/{}", name(1)),
            format!("prod/{}", name(3)),
            format!("prod/{}", name(4))
        ]
    );
    let left: Vec<String> = standin.with(|c| {
        c.replica_sets
            .iter()
            .map(|r| r["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    });
    assert!(left.contains(&name(2)), "the one with a pod stays");
    assert!(left.contains(&name(15)), "the current revision stays");
    assert_eq!(left.len(), 14 + 1 + 11 - 3);
    let _ = api;
    // Each DELETE carried the preconditions the stand-in checks.
    assert_eq!(
        standin
            .log()
            .iter()
            .filter(|l| l.starts_with("DELETE"))
            .count(),
        3
    );
}

/// A cgroup2 directory made for this test under the unified hierarchy, removed on drop.
struct TestCgroup {
    top: PathBuf,
    leaf: PathBuf,
}

impl TestCgroup {
    fn new(pod_uid: &str, container_id: &str) -> Option<TestCgroup> {
        let unified = Path::new("/sys/fs/cgroup/unified");
        if !unified.join("cgroup.procs").exists() {
            return None;
        }
        let top = unified.join(format!("nodedoc-kube-test-{}", std::process::id()));
        let leaf = top
            .join("kubepods/besteffort")
            .join(format!("pod{pod_uid}"))
            .join(container_id);
        std::fs::create_dir_all(&leaf).ok()?;
        Some(TestCgroup { top, leaf })
    }

    fn adopt(&self, pid: &str) -> std::io::Result<()> {
        std::fs::write(self.leaf.join("cgroup.procs"), pid)
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        // Leaf first; a task still inside keeps its directory (reported, not hidden).
        let mut dir = self.leaf.clone();
        while dir.starts_with(&self.top) {
            for _ in 0..50 {
                if std::fs::remove_dir(&dir).is_ok() || !dir.exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            if !dir.pop() {
                break;
            }
        }
        if self.top.exists() {
            eprintln!("could not remove {}", self.top.display());
        }
    }
}

#[test]
fn a_terminating_pod_is_chained_to_its_container_init_that_cannot_exit() {
    // Seed 003 for real: a pid-namespace init killed while a child is frozen (the lab), the
    // child in a cgroup named as the kubelet names a pod's container, and the API saying the
    // pod has been Terminating for 10 minutes.
    let uid = format!("7e3a1c2b-5d4f-4a6b-8c9d-{:012x}", std::process::id());
    let container_id = format!("{:0>64}", format!("{:x}cafe", std::process::id()));
    let Some(cgroup) = TestCgroup::new(&uid, &container_id) else {
        eprintln!("SKIPPED: no cgroup2 hierarchy at /sys/fs/cgroup/unified");
        return;
    };
    let lab = nodedoc_lab::start("pidns-exit-hang", &lab_context()).expect("start lab");
    let init = lab.instance().fact("init_pid").unwrap().to_string();
    let child = lab.instance().fact("child_pid").unwrap().to_string();
    cgroup
        .adopt(&child)
        .expect("move the frozen child into the pod's cgroup");

    let now = nodedoc_kube::now_unix();
    let mut c = Cluster::default();
    let pod = objects::pod(
        "mesh",
        "envoy-0",
        &uid,
        "node-under-test",
        &[("envoy", &container_id)],
        now - 86_400,
    );
    c.pods.push(objects::terminating(pod, now - 600, 30));
    let standin = StandIn::start(c).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = standin.write_kubeconfig(dir.path()).unwrap();
    let (report, code) = check_json(&[
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--node-name",
        "node-under-test",
    ]);
    lab.stop().expect("thaw, and everything exits");
    drop(cgroup);

    assert_eq!(code, 2);
    let pod = finding(&report, "pod-stuck-terminating", "pod/mesh/envoy-0");
    assert_eq!(pod.severity, Severity::Warning);
    assert!(
        pod.summary.starts_with("pod mesh/envoy-0 is stuck Terminating, 9m ")
            && pod.summary.contains("past its 30s grace period: 1 of its tasks is still on this node, e.g. pidns-child (pid"),
        "{}",
        pod.summary
    );
    let hang = finding(&report, "pidns-exit-hang", &format!("pid/{init}"));
    let hung = finding(&report, "hung-task", &format!("pid/{child}"));
    assert!(pod.caused_by.contains(&hang.id), "{:?}", pod.caused_by);
    assert!(pod.caused_by.contains(&hung.id), "{:?}", pod.caused_by);
    assert!(hang.causes.contains(&pod.id));
    assert!(
        has_evidence(pod, &format!("container {}", &container_id[..12])),
        "{:#?}",
        pod.evidence
    );
}

#[test]
fn a_collected_snapshot_carries_the_cluster_to_check_from() {
    let standin = StandIn::start(leaking_cluster(120)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = standin.write_kubeconfig(dir.path()).unwrap();
    let snapshot = dir.path().join("node.json");
    let out = nodedoc(&[
        "collect",
        "--interval",
        "0",
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "-o",
        snapshot.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(standin); // analysed elsewhere, later: the API is not asked again
    let (report, _) = check_json(&["--from", snapshot.to_str().unwrap()]);
    let api = finding(&report, "replicaset-history-leak", "deployment/prod/api");
    assert_eq!(api.severity, Severity::Warning);
    assert!(report
        .sources
        .iter()
        .any(|s| s.source == "kubernetes" && s.state == SourceState::Collected));
}

/// `watch` reads this node's pods from the API (it used to read no Kubernetes at all, so
/// `pod-stuck-terminating` could only fire in `check`): a pod Terminating 10 minutes past its
/// grace period opens the finding; once the API no longer lists it, the next reading resolves
/// it. Only this node's pods are asked for, never the cluster's workloads. The stand-in
/// answers as kube-apiserver would; the reading interval is shortened for the test
/// (`--kube-every`, hidden).
#[test]
fn watch_opens_pod_stuck_terminating_from_the_api_and_resolves_it_when_the_pod_is_gone() {
    use std::io::BufRead;
    let now = nodedoc_kube::now_unix();
    let mut c = Cluster::default();
    let uid = format!("5b1e0c2a-7d4f-4a6b-8c9d-{:012x}", std::process::id());
    let container_id = format!("{:0>64}", format!("{:x}beef", std::process::id()));
    let pod = objects::pod(
        "mesh",
        "envoy-1",
        &uid,
        "node-under-test",
        &[("envoy", &container_id)],
        now - 86_400,
    );
    c.pods.push(objects::terminating(pod, now - 600, 30));
    let standin = StandIn::start(c).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = standin.write_kubeconfig(dir.path()).unwrap();

    let mut watch = Command::new(common::NODEDOC)
        .args([
            "watch",
            "--format",
            "json",
            "--interval",
            "1s",
            "--sample",
            "0s",
            "--no-fds",
            "--resolve-after",
            "1",
            "--kube-every",
            "2s",
            // Bounds the test if an event never comes: the watch ends, and so do its lines.
            "--rounds",
            "120",
            "--node-name",
            "node-under-test",
            "--kubeconfig",
        ])
        .arg(&kubeconfig)
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("start watch");
    let stdout = watch.stdout.take().unwrap();
    let _guard = common::KillOnDrop(watch);
    let mut lines = std::io::BufReader::new(stdout).lines();
    let mut next = |kind: nodedoc_agent::EventKind| -> nodedoc_agent::Event {
        for line in lines.by_ref() {
            let event: nodedoc_agent::Event = serde_json::from_str(&line.unwrap()).unwrap();
            if event.event == kind
                && event.finding.detector == "pod-stuck-terminating"
                && event.finding.subject.key() == "pod/mesh/envoy-1"
            {
                return event;
            }
        }
        panic!("watch ended without a {kind:?} of pod-stuck-terminating");
    };
    let opened = next(nodedoc_agent::EventKind::Open);
    assert!(
        opened
            .finding
            .summary
            .starts_with("pod mesh/envoy-1 is stuck Terminating, "),
        "{}",
        opened.finding.summary
    );
    assert!(opened.finding.summary.contains("past its 30s grace period"));

    // The pod is gone from the API: the next reading resolves it.
    standin.with(|c| c.pods.clear());
    let resolved = next(nodedoc_agent::EventKind::Resolve);
    assert_eq!(resolved.finding.id, opened.finding.id);

    let log = standin.log();
    assert!(log
        .iter()
        .any(|l| l.contains("/api/v1/pods?") && l.contains("spec.nodeName%3Dnode-under-test")));
    assert!(
        !log.iter().any(|l| l.contains("replicasets")
            || l.contains("deployments")
            || l.contains("/metrics")),
        "{log:?}"
    );
}
