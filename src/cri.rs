//! Pod names for the containers of a snapshot, from a container runtime's CRI socket.
//!
//! cgroup paths give a task's container id and pod uid; only the runtime (or the API) knows the
//! pod's namespace and name. Two read-only calls (`ListPodSandbox`, `ListContainers`), each
//! bounded: on a node whose runtime is stuck — the nodes nodedoc is run on — they may never
//! answer, and the check goes on without the names, saying so.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nodedoc_model::{Snapshot, SourceState, SourceStatus};

/// Sockets tried when none is given: containerd's, then CRI-O's.
const DEFAULT_SOCKETS: &[&str] = &["/run/containerd/containerd.sock", "/run/crio/crio.sock"];

/// How long each call may take.
const DEADLINE: Duration = Duration::from_secs(5);

/// Fills `snapshot.containers` from `socket` (or a default one that exists) and records the
/// `cri` source's status.
pub fn name_containers(snapshot: &mut Snapshot, socket: Option<&Path>) {
    let socket: Option<PathBuf> = socket.map(Path::to_path_buf).or_else(|| {
        DEFAULT_SOCKETS
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
    });
    let Some(socket) = socket else {
        snapshot.sources.push(SourceStatus {
            source: "cri".into(),
            state: SourceState::Absent,
            detail: "no CRI socket (containerd, CRI-O) here: pods are named by uid only".into(),
        });
        return;
    };
    let listed = nodedoc_cri::CriClient::connect(&socket).and_then(|c| c.inventory(DEADLINE));
    let status = match listed {
        Ok(known) => {
            let detail = format!(
                "{}: {} containers and pod sandboxes named",
                socket.display(),
                known.len()
            );
            snapshot.containers.extend(known);
            SourceStatus {
                source: "cri".into(),
                state: SourceState::Collected,
                detail,
            }
        }
        Err(e) => SourceStatus {
            source: "cri".into(),
            state: SourceState::Failed,
            detail: format!("{e} (pods are named by uid only)"),
        },
    };
    snapshot.sources.push(status);
}

/// A `--cri-socket` named on the command line that could not be read: an error after the
/// report (exit 3), as for the other named inputs.
pub fn unusable(socket: Option<&Path>, snapshot: &Snapshot) -> Option<String> {
    let socket = socket?;
    let status = snapshot.source("cri")?;
    (status.state != SourceState::Collected).then(|| {
        format!(
            "--cri-socket {} could not be read: {}",
            socket.display(),
            status.detail
        )
    })
}
