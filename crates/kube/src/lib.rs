//! nodedoc's Kubernetes source: what the API says about this node's pods, the cluster's
//! Deployments and ReplicaSets and kube-apiserver's memory — read live through the `kube`
//! crate (kubeconfig or in-cluster credentials), or offline from `kubectl get … -o json` files
//! — into the snapshot's [`KubeState`]; and the guarded ReplicaSet history fix ([`fix`]).
//!
//! Collectors never judge: this crate reads, bounds and records gaps. The rest of nodedoc is
//! synchronous; tokio stays inside this crate ([`block_on`]).
//!
//! Bounds: the API is read in pages (`limit`, `continue`), at most
//! [`ApiOptions::max_objects`] objects per kind and [`ApiOptions::max_response_bytes`] per
//! response, every request within [`ApiOptions::timeout`] of the start; files are read only
//! when they are regular files of at most [`file::MAX_OBJECTS_FILE_BYTES`].
//!
//! There is no kube-apiserver to test against on nodedoc's build machines: the API paths are
//! tested against [`standin`] (feature `stand-in`), an HTTP server that answers as the API
//! server does — and is named a stand-in wherever it is used.
#![deny(missing_docs)]

pub mod api;
pub mod file;
pub mod fix;
mod metrics;
#[cfg(feature = "stand-in")]
pub mod standin;
mod wire;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use nodedoc_model::{Gaps, KubeListing, KubeState, Snapshot, SourceState, SourceStatus};

pub use api::{ApiOptions, ApiReading};

/// The source names this crate records in a snapshot.
pub const API_SOURCE: &str = "kubernetes";
/// The source name of `--kube-objects` files.
pub const FILES_SOURCE: &str = "kube-objects";

/// Why Kubernetes objects could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// A `--kube-objects` file could not be read or is not `kubectl get -o json` output.
    #[error("{}: {why}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// The credentials could not be loaded or the client not built.
    #[error("Kubernetes client: {0}")]
    Client(String),
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// A request failed (for the fix, where a failure stops the work).
    #[error("{0}")]
    Api(#[from] api::ApiFailure),
}

/// Runs `future` on a runtime of its own (this crate's only way in from synchronous code).
pub fn block_on<F: std::future::Future>(future: F) -> Result<F::Output, KubeError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(KubeError::Runtime)?;
    Ok(runtime.block_on(future))
}

/// Seconds since the Unix epoch, now.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Adds the objects of `kubectl get … -o json` files to `snapshot` (its `kube` state, a
/// `kube-objects` source and gaps). A file that cannot be read or is not such output is an
/// error naming it: the user asked for it.
pub fn add_files(snapshot: &mut Snapshot, files: &[PathBuf]) -> Result<(), KubeError> {
    if files.is_empty() {
        return Ok(());
    }
    let state = snapshot.kube.get_or_insert_with(|| KubeState {
        read_at_unix: now_unix(),
        ..KubeState::default()
    });
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    let mut gaps = Gaps::new();
    for path in files {
        let read = file::read(path)?;
        let origin = format!("file:{}", path.display());
        let decoded = read.decoded;
        for (kind, n) in [
            ("Pod", decoded.pods.len()),
            ("Deployment", decoded.deployments.len()),
            ("ReplicaSet", decoded.replica_sets.len()),
        ] {
            *counts.entry(kind).or_default() += n as u64;
            if n > 0 {
                state.listings.push(KubeListing {
                    kind: kind.to_string(),
                    origin: origin.clone(),
                    scope: "file".to_string(),
                    items: n as u64,
                    pages: 1,
                    bytes: read.bytes,
                    complete: true,
                });
            }
        }
        record_decode_gaps(&mut gaps, FILES_SOURCE, &origin, &decoded);
        merge(state, decoded);
        state.origins.push(origin);
    }
    let detail = format!(
        "{} file{}: {}",
        files.len(),
        if files.len() == 1 { "" } else { "s" },
        counts
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(kind, n)| format!("{n} {kind}{}", if *n == 1 { "" } else { "s" }))
            .collect::<Vec<_>>()
            .join(", ")
    );
    snapshot.sources.push(SourceStatus {
        source: FILES_SOURCE.to_string(),
        state: if gaps.is_empty() {
            SourceState::Collected
        } else {
            SourceState::Partial
        },
        detail,
    });
    snapshot.gaps.extend(gaps.into_vec());
    Ok(())
}

/// Reads the API as `options` say and adds what it said to `snapshot`: the `kube` state, the
/// `kubernetes` source's status, and gaps (unreachable, forbidden, capped). Never fails: a
/// cluster that cannot be read is a source state, as for every other source.
pub fn add_api(snapshot: &mut Snapshot, options: &ApiOptions) {
    let reading = api::read(options);
    snapshot.sources.push(reading.status);
    snapshot.gaps.extend(reading.gaps);
    if let Some(read) = reading.state {
        match &mut snapshot.kube {
            Some(state) => {
                state.origins.extend(read.origins);
                state.listings.extend(read.listings);
                state.node_name = read.node_name.or(state.node_name.take());
                state.read_at_unix = read.read_at_unix;
                if read.apiserver.is_some() {
                    state.apiserver = read.apiserver;
                }
                let decoded = wire::Decoded {
                    pods: read.pods,
                    deployments: read.deployments,
                    replica_sets: read.replica_sets,
                    ..Default::default()
                };
                merge(state, decoded);
            }
            None => snapshot.kube = Some(read),
        }
    }
}

/// Adds decoded objects to `state`; an object already there (same uid, or same kind,
/// namespace and name when a uid is missing) is replaced by the later reading.
pub(crate) fn merge(state: &mut KubeState, decoded: wire::Decoded) {
    fn merge_into<T>(existing: &mut Vec<T>, new: Vec<T>, key: impl Fn(&T) -> String) {
        if existing.is_empty() {
            *existing = new;
            return;
        }
        let mut at: HashMap<String, usize> = existing
            .iter()
            .enumerate()
            .map(|(i, o)| (key(o), i))
            .collect();
        for object in new {
            let k = key(&object);
            match at.get(&k) {
                Some(&i) => existing[i] = object,
                None => {
                    at.insert(k, existing.len());
                    existing.push(object);
                }
            }
        }
    }
    fn key(meta: &nodedoc_model::KubeMeta) -> String {
        if meta.uid.is_empty() {
            format!("{}/{}", meta.namespace, meta.name)
        } else {
            meta.uid.clone()
        }
    }
    merge_into(&mut state.pods, decoded.pods, |p| key(&p.meta));
    merge_into(
        &mut state.deployments,
        decoded.deployments,
        |d| key(&d.meta),
    );
    merge_into(&mut state.replica_sets, decoded.replica_sets, |r| {
        key(&r.meta)
    });
}

/// Gaps for what a decoded list left out: kinds nodedoc does not read, unparsable times.
pub(crate) fn record_decode_gaps(
    gaps: &mut Gaps,
    source: &str,
    origin: &str,
    decoded: &wire::Decoded,
) {
    if decoded.bad_time_count > 0 {
        for example in &decoded.bad_times {
            gaps.record(
                source,
                "timestamps of objects",
                "not RFC 3339: left out",
                format!("{origin}: {example}"),
            );
        }
    }
    for (kind, n) in &decoded.skipped {
        gaps.record(
            source,
            "objects of other kinds",
            "not read by any detector: skipped",
            format!("{origin}: {n} {kind}"),
        );
    }
}
