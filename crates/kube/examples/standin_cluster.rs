//! Serves a cluster with a ReplicaSet history leak from the stand-in for kube-apiserver (not a
//! real API server: see `nodedoc_kube::standin`), for benchmarks and demonstrations:
//!
//! ```sh
//! cargo run --release -p nodedoc-kube --features stand-in --example standin_cluster -- \
//!     --leaking 50 --revisions 900 --healthy 450 --dir /tmp/cluster
//! kubectl --kubeconfig /tmp/cluster/kubeconfig get deploy,rs -A -o json > rs.json
//! ```
//!
//! `--leaking` Deployments keep every old ReplicaSet (revisionHistoryLimit 2147483647, as
//! extensions/v1beta1 left them), each with `--revisions` old ones and its current one;
//! `--healthy` Deployments have apps/v1's 10 old ones and their current one. It prints the
//! kubeconfig's path and serves until its standard input closes.

use std::io::Read;

use nodedoc_kube::standin::{objects, Cluster, StandIn};

fn main() {
    let mut leaking = 50u64;
    let mut revisions = 900u64;
    let mut healthy = 450u64;
    let mut dir = std::env::temp_dir();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--leaking" => leaking = value.parse().expect("a number"),
            "--revisions" => revisions = value.parse().expect("a number"),
            "--healthy" => healthy = value.parse().expect("a number"),
            "--dir" => dir = value.into(),
            _ => panic!("unknown flag {flag}"),
        }
    }
    let t0 = 1_700_000_000;
    let mut cluster = Cluster::default();
    for (count, limit, old, prefix) in [
        (leaking, Some(i32::MAX), revisions, "legacy"),
        (healthy, Some(10), 10, "svc"),
    ] {
        for d in 0..count {
            let ns = format!("team-{}", d % 20);
            let name = format!("{prefix}-{d}");
            let current = old + 1;
            let dep =
                objects::deployment(&ns, &name, &format!("uid-{name}"), current, 2, limit, t0);
            for r in 1..=current {
                let pods = if r == current { 2 } else { 0 };
                cluster
                    .replica_sets
                    .push(objects::replica_set(&dep, r, pods, t0 + r as i64 * 60));
            }
            cluster.deployments.push(dep);
        }
    }
    cluster.metrics = Some(format!(
        "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 1.3958643712e+10\n\
         # TYPE apiserver_storage_objects gauge\napiserver_storage_objects{{resource=\"replicasets.apps\"}} {}\n",
        cluster.replica_sets.len()
    ));
    let total = cluster.replica_sets.len();
    let standin = StandIn::start(cluster).expect("start the stand-in");
    std::fs::create_dir_all(&dir).expect("create --dir");
    let kubeconfig = standin
        .write_kubeconfig(&dir)
        .expect("write the kubeconfig");
    eprintln!(
        "stand-in for kube-apiserver at {} with {total} ReplicaSets",
        standin.url()
    );
    println!("{}", kubeconfig.display());
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}
