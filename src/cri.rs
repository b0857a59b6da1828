//! Pod names for the containers of a snapshot, from a container runtime's CRI socket.
//!
//! cgroup paths give a task's container id and pod uid; only the runtime (or the API) knows the
//! pod's namespace and name. Two read-only calls (`ListPodSandbox`, `ListContainers`), each
//! bounded: on a node whose runtime is stuck — the nodes nodedoc is run on — they may never
//! answer, and the check goes on without the names, saying so. The agent (`watch`) keeps the
//! names between rounds and asks again only for a container it has not named yet
//! ([`ContainerNamer`]).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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

/// The agent asks the runtime again at most this often, and only for a container it has not
/// named yet.
pub const ASK_AGAIN_AFTER: Duration = Duration::from_secs(30);

/// Names the containers of the agent's rounds (`watch`) from a CRI socket, asking the runtime
/// as little as it can: the containers it named are kept between rounds, and it is asked
/// again only when a round shows a container id (from a task's cgroup paths) it has neither
/// named nor been asked about, at most once per [`ASK_AGAIN_AFTER`]. A runtime that stops
/// answering (the stuck runtime nodedoc is there for) leaves the last names it gave in
/// place. `check` asks once per run: [`name_containers`].
#[derive(Debug)]
pub struct ContainerNamer {
    /// `--cri-socket`, if named.
    named: Option<PathBuf>,
    /// What the runtime said the last time it answered.
    known: Vec<nodedoc_model::KnownContainer>,
    /// Ids a round showed when the runtime was last asked that it did not know (dockerd's,
    /// `ctr run`'s): no reason to ask it again.
    not_its_own: HashSet<String>,
    last_asked: Option<Instant>,
    /// The `cri` source status of the last answer (or failure), repeated every round.
    status: Option<SourceStatus>,
    /// The last failure was said on standard error (a recovery is said too, once).
    said_failing: bool,
    asked: u64,
}

impl ContainerNamer {
    /// A namer for `--cri-socket` (or the default sockets when `None`).
    pub fn new(named: Option<&Path>) -> ContainerNamer {
        ContainerNamer {
            named: named.map(Path::to_path_buf),
            known: Vec::new(),
            not_its_own: HashSet::new(),
            last_asked: None,
            status: None,
            said_failing: false,
            asked: 0,
        }
    }

    /// How many times the runtime was asked.
    #[cfg(test)]
    fn asked(&self) -> u64 {
        self.asked
    }

    /// True when the runtime should be asked now, for a round showing the container ids `ids`.
    fn should_ask(&self, ids: &HashSet<String>, now: Instant) -> bool {
        let Some(last) = self.last_asked else {
            return true;
        };
        let news = ids
            .iter()
            .any(|id| !self.not_its_own.contains(id) && !self.known.iter().any(|k| &k.id == id));
        news && now.saturating_duration_since(last) >= ASK_AGAIN_AFTER
    }

    /// Takes the runtime's answer (asked at `now`, for a round showing `ids`): the source
    /// status, and a line for standard error when a named socket starts or stops failing.
    fn answered(
        &mut self,
        ids: &HashSet<String>,
        now: Instant,
        socket: Option<&Path>,
        answer: Result<Vec<nodedoc_model::KnownContainer>, String>,
    ) -> Option<String> {
        self.last_asked = Some(now);
        self.asked += 1;
        let Some(socket) = socket else {
            self.status = Some(SourceStatus {
                source: "cri".into(),
                state: SourceState::Absent,
                detail: "no CRI socket (containerd, CRI-O) here: pods are named by uid only".into(),
            });
            return None;
        };
        let shown = socket.display().to_string();
        match answer {
            Ok(known) => {
                self.not_its_own = ids
                    .iter()
                    .filter(|id| !known.iter().any(|k| &k.id == *id))
                    .cloned()
                    .collect();
                self.status = Some(SourceStatus {
                    source: "cri".into(),
                    state: SourceState::Collected,
                    detail: format!(
                        "{shown}: {} containers and pod sandboxes named (asked again only for a container not named yet, at most every {} s)",
                        known.len(),
                        ASK_AGAIN_AFTER.as_secs()
                    ),
                });
                self.known = known;
                let recovered = std::mem::take(&mut self.said_failing);
                recovered.then(|| format!("--cri-socket {shown} can be read again"))
            }
            Err(e) => {
                let kept = if self.known.is_empty() {
                    "pods are named by uid only".to_string()
                } else {
                    format!("the {} names of its last answer are kept", self.known.len())
                };
                self.status = Some(SourceStatus {
                    source: "cri".into(),
                    state: SourceState::Failed,
                    detail: format!(
                        "{e} ({kept}; asked again in {} s at the earliest)",
                        ASK_AGAIN_AFTER.as_secs()
                    ),
                });
                let say = self.named.is_some() && !self.said_failing;
                self.said_failing |= say;
                say.then(|| {
                    format!(
                        "--cri-socket {shown} could not be read: {e} (said once; the source status of each round says it again)"
                    )
                })
            }
        }
    }

    /// Names the containers of a round's snapshot (its `containers` and `cri` source
    /// status), asking the runtime first when [`should_ask`](Self::should_ask) says so.
    /// Returns a line for standard error when a named socket starts or stops failing.
    pub fn name(&mut self, snapshot: &mut Snapshot, now: Instant) -> Option<String> {
        let ids: HashSet<String> = snapshot
            .processes
            .iter()
            .filter_map(|p| p.container().map(|c| c.id))
            .collect();
        let mut said = None;
        if self.should_ask(&ids, now) {
            let socket = self.named.clone().or_else(|| {
                DEFAULT_SOCKETS
                    .iter()
                    .map(PathBuf::from)
                    .find(|p| p.exists())
            });
            let answer = match &socket {
                Some(socket) => nodedoc_cri::CriClient::connect(socket)
                    .and_then(|c| c.inventory(DEADLINE))
                    .map_err(|e| e.to_string()),
                None => Ok(Vec::new()),
            };
            said = self.answered(&ids, now, socket.as_deref(), answer);
        }
        snapshot.containers.clone_from(&self.known);
        snapshot.sources.retain(|s| s.source != "cri");
        snapshot.sources.extend(self.status.clone());
        said
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nodedoc_model::KnownContainer;

    fn id(n: u8) -> String {
        format!("{n:02x}").repeat(32)
    }

    fn known(n: u8) -> KnownContainer {
        KnownContainer {
            id: id(n),
            name: Some(format!("c{n}")),
            pod_uid: None,
            pod_namespace: Some("default".into()),
            pod_name: Some(format!("pod-{n}")),
        }
    }

    fn ids(ns: &[u8]) -> HashSet<String> {
        ns.iter().map(|n| id(*n)).collect()
    }

    /// One round at `now` showing `round`, the runtime answering `answer` when asked.
    fn round(
        namer: &mut ContainerNamer,
        round: &[u8],
        now: Instant,
        answer: Result<Vec<KnownContainer>, String>,
    ) -> Option<String> {
        let ids = ids(round);
        if namer.should_ask(&ids, now) {
            namer.answered(&ids, now, Some(Path::new("/run/x.sock")), answer)
        } else {
            None
        }
    }

    #[test]
    fn the_runtime_is_asked_again_only_for_a_new_container_and_at_most_every_30_s() {
        let socket = Path::new("/run/x.sock");
        let mut namer = ContainerNamer::new(Some(socket));
        let t0 = Instant::now();
        // The first round asks; rounds that show only named containers do not.
        round(&mut namer, &[1], t0, Ok(vec![known(1)]));
        assert_eq!(namer.asked(), 1);
        for s in 1..100 {
            round(&mut namer, &[1], t0 + Duration::from_secs(s), Ok(vec![]));
        }
        assert_eq!(namer.asked(), 1);
        // A new container within 30 s of the last question waits; after them it is asked for.
        round(
            &mut namer,
            &[1, 2],
            t0 + Duration::from_secs(100),
            Ok(vec![]),
        );
        assert_eq!(namer.asked(), 2);
        round(
            &mut namer,
            &[1, 2, 3],
            t0 + Duration::from_secs(110),
            Ok(vec![]),
        );
        assert_eq!(namer.asked(), 2);
        round(
            &mut namer,
            &[1, 2, 3],
            t0 + Duration::from_secs(130),
            Ok(vec![known(1), known(2), known(3)]),
        );
        assert_eq!(namer.asked(), 3);
        assert_eq!(namer.known.len(), 3);
        // A container the runtime does not know (dockerd's) is not a reason to ask again.
        round(
            &mut namer,
            &[1, 9],
            t0 + Duration::from_secs(200),
            Ok(vec![known(1)]),
        );
        assert_eq!(namer.asked(), 4);
        for s in 201..400 {
            round(&mut namer, &[1, 9], t0 + Duration::from_secs(s), Ok(vec![]));
        }
        assert_eq!(namer.asked(), 4);
        assert_eq!(namer.known, vec![known(1)]);
    }

    #[test]
    fn a_named_socket_that_fails_is_said_once_and_its_last_names_are_kept() {
        let mut namer = ContainerNamer::new(Some(Path::new("/run/x.sock")));
        let t0 = Instant::now();
        assert_eq!(round(&mut namer, &[1], t0, Ok(vec![known(1)])), None);
        let at = |s: u64| t0 + Duration::from_secs(s);
        let said = round(
            &mut namer,
            &[1, 2],
            at(30),
            Err("connection refused".into()),
        );
        assert!(
            said.as_deref()
                .is_some_and(|s| s
                    .starts_with("--cri-socket /run/x.sock could not be read: connection refused")),
            "{said:?}"
        );
        // Asked again (container 2 is still unnamed) but not said again.
        for s in (60..600).step_by(30) {
            assert_eq!(
                round(&mut namer, &[1, 2], at(s), Err("connection refused".into())),
                None
            );
        }
        // Once at 0 s, at 30 s, then every 30 s from 60 s to 570 s.
        assert_eq!(namer.asked(), 2 + 18);
        let status = namer.status.clone().unwrap();
        assert_eq!(status.state, SourceState::Failed);
        assert!(
            status
                .detail
                .contains("the 1 names of its last answer are kept"),
            "{}",
            status.detail
        );
        assert_eq!(namer.known, vec![known(1)]);
        // It answers again: said once.
        let said = round(&mut namer, &[1, 2], at(600), Ok(vec![known(1), known(2)]));
        assert_eq!(
            said.as_deref(),
            Some("--cri-socket /run/x.sock can be read again")
        );
        assert_eq!(namer.status.unwrap().state, SourceState::Collected);
    }

    #[test]
    fn without_a_named_socket_a_failure_is_only_the_source_status() {
        let mut namer = ContainerNamer::new(None);
        let said = round(&mut namer, &[1], Instant::now(), Err("refused".into()));
        assert_eq!(said, None);
        assert_eq!(namer.status.unwrap().state, SourceState::Failed);
    }
}
