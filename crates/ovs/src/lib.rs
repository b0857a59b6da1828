//! nodedoc's Open vSwitch collector, and the guarded fix for orphaned ports.
//!
//! [`collect`] joins the snapshot when an OVSDB socket is found (by default
//! `/var/run/openvswitch/db.sock`): the bridge → port → interface topology read in one OVSDB
//! transaction ([`nodedoc_ovsdb::dump`]), the ovs-vswitchd serving it (pid, handler and
//! revalidator threads), the events of its log ([`log`]) and the kernel's network devices in
//! every network namespace ([`netns`]), so detectors can tell an interface whose device was
//! moved into a namespace from one whose device no longer exists anywhere. No socket means
//! no OVS on this host: the `ovsdb` source is `absent`, which is not an error.
//!
//! Like every nodedoc collector it never judges: what is wrong is the detectors' business.
//! [`fix`] is the one place that writes: it removes ports the `ovs-orphan-port` detector
//! named, in one transaction guarded by `wait` operations on the rows that were read.
#![deny(missing_docs)]

mod error;
pub mod fix;
pub mod live;
pub mod log;
pub mod log_follow;
pub mod monitor;
pub mod netns;
pub mod vswitchd;

use std::path::{Path, PathBuf};
use std::time::Duration;

use nodedoc_model::{
    Gaps, NetworkNamespaces, OvsBridge, OvsInterface, OvsPort, OvsState, Process, SourceState,
    SourceStatus, VswitchdProcess,
};
use nodedoc_ovsdb::{Endpoint, OvsDump};

pub use error::OvsError;

/// The database socket of a packaged Open vSwitch.
pub const DEFAULT_ENDPOINT: &str = "unix:/var/run/openvswitch/db.sock";

/// What to read.
#[derive(Clone, Debug)]
pub struct OvsOptions {
    /// The OVSDB endpoint (`unix:PATH`, `tcp:HOST:PORT`); `None` for [`DEFAULT_ENDPOINT`],
    /// whose absence is not an error.
    pub endpoint: Option<String>,
    /// ovs-vswitchd.log, when not to be found among ovs-vswitchd's open files.
    pub log: Option<PathBuf>,
    /// Bounds connecting and reading OVSDB.
    pub timeout: Duration,
    /// How much of the end of the log to read.
    pub log_tail_bytes: u64,
    /// Reading a host file (the log, a pidfile) gives up after this long without progress.
    pub file_deadline: Duration,
    /// Where named network namespaces are (`/run/netns`).
    pub run_netns: PathBuf,
}

impl Default for OvsOptions {
    fn default() -> Self {
        OvsOptions {
            endpoint: None,
            log: None,
            timeout: Duration::from_secs(10),
            log_tail_bytes: log::DEFAULT_TAIL_BYTES,
            file_deadline: nodedoc_model::hostfile::DEFAULT_STALL_DEADLINE,
            run_netns: PathBuf::from(netns::NETNS_RUN_DIR),
        }
    }
}

/// What [`collect`] read, with how each source went.
#[derive(Debug, Default)]
pub struct OvsCollection {
    /// `ovsdb`, and when OVS was found, `netns` and `ovs-log`.
    pub sources: Vec<SourceStatus>,
    /// The OVS state, when the database was read.
    pub ovs: Option<OvsState>,
    /// Network devices in every namespace, when OVS was found.
    pub network: Option<NetworkNamespaces>,
    /// What could not be read.
    pub gaps: Gaps,
}

fn status(source: &str, state: SourceState, detail: impl Into<String>) -> SourceStatus {
    SourceStatus {
        source: source.into(),
        state,
        detail: detail.into(),
    }
}

/// Runs a future on a private single-threaded runtime (the rest of nodedoc is synchronous).
pub fn block_on<F: std::future::Future>(future: F) -> Result<F::Output, OvsError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(OvsError::Runtime)?;
    Ok(runtime.block_on(future))
}

/// Reads the OVSDB topology at `endpoint`: the lean dump (what the detectors and `ovs ports`
/// use), bounded by `timeout` as a whole.
pub fn read_dump(endpoint: &Endpoint, timeout: Duration) -> Result<OvsDump, OvsError> {
    let options = nodedoc_ovsdb::ClientOptions {
        connect_timeout: timeout,
        request_timeout: Some(timeout),
        ..nodedoc_ovsdb::ClientOptions::default()
    };
    let work = async {
        let client = nodedoc_ovsdb::Client::connect_with(endpoint, options).await?;
        OvsDump::fetch_monitored(&client).await
    };
    let outcome = block_on(async { tokio::time::timeout(timeout, work).await })?;
    match outcome {
        Ok(result) => Ok(result?),
        Err(_) => Err(OvsError::Ovsdb(nodedoc_ovsdb::Error::Timeout {
            endpoint: endpoint.to_string(),
            method: "dump".into(),
            timeout,
        })),
    }
}

/// Collects Open vSwitch. `processes` is the procfs scan (for ovs-vswitchd and the network
/// namespaces of running processes).
pub fn collect(options: &OvsOptions, processes: &[Process]) -> OvsCollection {
    let mut out = OvsCollection::default();
    let explicit = options.endpoint.is_some();
    let text = options.endpoint.as_deref().unwrap_or(DEFAULT_ENDPOINT);
    let endpoint: Endpoint = match text.parse() {
        Ok(endpoint) => endpoint,
        Err(e) => {
            out.sources
                .push(status("ovsdb", SourceState::Failed, e.to_string()));
            log_alone(options, &mut out);
            return out;
        }
    };
    if let Err(missing) = socket_check(&endpoint, explicit) {
        out.sources.push(missing);
        log_alone(options, &mut out);
        return out;
    }
    let dump = match read_dump(&endpoint, options.timeout) {
        Ok(dump) => dump,
        Err(e) => {
            out.sources
                .push(status("ovsdb", SourceState::Failed, e.to_string()));
            out.gaps.record("ovsdb", "OVSDB dump", e.to_string(), text);
            log_alone(options, &mut out);
            return out;
        }
    };
    let mut ovs = state_from_dump(&dump, &endpoint.to_string());
    out.sources.push(status(
        "ovsdb",
        SourceState::Collected,
        ovsdb_detail(&endpoint.to_string(), &ovs),
    ));

    let daemon = Daemon::find(&endpoint, explicit, processes, options.file_deadline);
    daemon.record_ignored(&mut out.gaps);
    ovs.vswitchd = daemon.process.clone();
    let base = log::LogReadOptions {
        tail_bytes: options.log_tail_bytes,
        stall_deadline: options.file_deadline,
        owners: None,
    };
    match daemon.log_location(options.log.as_deref(), processes, &base) {
        Some((path, how, log_options)) => match log::read_log(&path, &log_options, &how) {
            Ok(log) => {
                out.sources.push(status(
                    "ovs-log",
                    SourceState::Collected,
                    format!(
                        "{} ({how}): {} lines read from byte {} of {}{}",
                        log.path,
                        log.lines_read,
                        log.read_from,
                        log.size,
                        daemon.note()
                    ),
                ));
                ovs.log = Some(log);
            }
            Err(e) => out
                .sources
                .push(daemon.log_failed(&path, &e, &mut out.gaps)),
        },
        None => out.sources.push(daemon.no_log()),
    }

    let pairs: Vec<(i32, u64)> = processes
        .iter()
        .filter_map(|p| Some((p.pid, p.namespaces.net?)))
        .collect();
    let network = netns::collect(&pairs, &options.run_netns);
    out.sources
        .push(network_status(&network, &mut out.gaps, ""));
    out.network = Some(network);
    out.ovs = Some(ovs);
    out
}

/// Checks that a `unix:` endpoint's socket exists. Without one there is no Open vSwitch:
/// `absent` for the packaged default, `failed` for an endpoint the operator named.
pub fn socket_check(endpoint: &Endpoint, explicit: bool) -> Result<(), SourceStatus> {
    let Some(path) = socket_path(endpoint) else {
        return Ok(());
    };
    if path.exists() {
        return Ok(());
    }
    Err(if explicit {
        status(
            "ovsdb",
            SourceState::Failed,
            format!("no OVSDB socket at {}", path.display()),
        )
    } else {
        status(
            "ovsdb",
            SourceState::Absent,
            format!(
                "no OVSDB socket at {} (Open vSwitch not running here)",
                path.display()
            ),
        )
    })
}

/// The `ovsdb` source's detail for a state read from `endpoint`.
pub fn ovsdb_detail(endpoint: &str, ovs: &OvsState) -> String {
    format!(
        "{endpoint}: Open vSwitch {}, {} bridges, {} interfaces",
        ovs.ovs_version.as_deref().unwrap_or("(version not set)"),
        ovs.bridges.len(),
        ovs.interfaces().count()
    )
}

/// The `netns` source for a reading of every namespace (`how` is appended to its detail);
/// the namespaces that could not be read go to `gaps`.
pub fn network_status(network: &NetworkNamespaces, gaps: &mut Gaps, how: &str) -> SourceStatus {
    let devices: usize = network.namespaces.iter().map(|n| n.devices.len()).sum();
    let detail = format!(
        "{devices} devices in {} network namespaces{}{how}",
        network.namespaces.len(),
        if network.unreadable.is_empty() {
            String::new()
        } else {
            format!("; {} unreadable", network.unreadable.len())
        }
    );
    for reason in &network.unreadable {
        gaps.record("netns", "network namespace", reason.clone(), "");
    }
    status(
        "netns",
        if network.complete() {
            SourceState::Collected
        } else {
            SourceState::Partial
        },
        detail,
    )
}

/// Without an OVSDB, the log the operator named (`--ovs-log`) is still read: an SRE holding
/// only a copied ovs-vswitchd.log must get what it says (flapping ports, devices that do not
/// exist), not "no problems". The state is marked [`OvsState::log_only`]: its topology is
/// unknown. No log named: nothing to read, and no OVS state.
fn log_alone(options: &OvsOptions, out: &mut OvsCollection) {
    let Some(path) = &options.log else {
        return;
    };
    let log_options = log::LogReadOptions {
        tail_bytes: options.log_tail_bytes,
        stall_deadline: options.file_deadline,
        owners: None,
    };
    match log::read_log(path, &log_options, "--ovs-log") {
        Ok(log) => {
            out.sources.push(status(
                "ovs-log",
                SourceState::Collected,
                format!(
                    "{} (--ovs-log, without the OVSDB: the log alone): {} lines read from byte {} of {}",
                    log.path, log.lines_read, log.read_from, log.size
                ),
            ));
            out.ovs = Some(OvsState {
                log: Some(log),
                log_only: true,
                ..OvsState::default()
            });
        }
        Err(e) => {
            out.gaps.record(
                "ovs-log",
                "ovs-vswitchd.log",
                e.to_string(),
                path.display().to_string(),
            );
            out.sources
                .push(status("ovs-log", SourceState::Failed, e.to_string()));
        }
    }
}

/// The ovs-vswitchd serving a database, as far as it can be trusted (see [`vswitchd`]).
#[derive(Clone, Debug, Default)]
pub struct Daemon {
    /// The daemon, when one was found and trusted.
    pub process: Option<VswitchdProcess>,
    /// How it was found.
    pub found: Option<vswitchd::Found>,
    /// Candidates that were not trusted, and why.
    pub ignored: Vec<vswitchd::Ignored>,
}

impl Daemon {
    /// Looks for the ovs-vswitchd serving `endpoint` among `processes` and the pidfiles.
    pub fn find(
        endpoint: &Endpoint,
        explicit: bool,
        processes: &[Process],
        file_deadline: Duration,
    ) -> Daemon {
        let socket = socket_path(endpoint);
        // Who may run the daemon and own its files: root, and the owner of a rundir only that
        // owner can write (see `vswitchd`'s documentation).
        let owners = vswitchd::TrustedOwners::for_rundir(socket.and_then(Path::parent));
        let search = vswitchd::find(socket, !explicit, processes, &owners, file_deadline);
        let process = search
            .found
            .as_ref()
            .and_then(|found| vswitchd::describe(found.pid, found.how.clone()));
        Daemon {
            process,
            found: search.found,
            ignored: search.ignored,
        }
    }

    /// Records the candidates not trusted in `gaps`.
    pub fn record_ignored(&self, gaps: &mut Gaps) {
        for ignored in &self.ignored {
            gaps.record(
                "ovs-vswitchd",
                "ovs-vswitchd candidate",
                ignored.reason.clone(),
                ignored.subject.clone(),
            );
        }
    }

    /// `; ovs-vswitchd candidate pid N ignored: WHY` for the first few candidates not
    /// trusted, so the `ovs-log` source says why no daemon (or not that one) was used.
    pub fn note(&self) -> String {
        const SHOWN: usize = 3;
        let mut note = String::new();
        for ignored in self.ignored.iter().take(SHOWN) {
            note.push_str(&format!("; {ignored}"));
        }
        if self.ignored.len() > SHOWN {
            note.push_str(&format!(
                "; {} more candidates ignored (see gaps)",
                self.ignored.len() - SHOWN
            ));
        }
        note
    }

    /// Where the log is: `explicit` (`--ovs-log`), else among the trusted daemon's open
    /// files, to be read only if it is a regular file of root or of the daemon's owner.
    /// Returns the path, how it was found, and `base` with the owners to require.
    pub fn log_location(
        &self,
        explicit: Option<&Path>,
        processes: &[Process],
        base: &log::LogReadOptions,
    ) -> Option<(PathBuf, String, log::LogReadOptions)> {
        if let Some(path) = explicit {
            return Some((path.to_path_buf(), "--ovs-log".to_string(), base.clone()));
        }
        let (v, found) = (self.process.as_ref()?, self.found.as_ref()?);
        let cmdline = processes
            .binary_search_by_key(&found.pid, |p| p.pid)
            .ok()
            .map_or(&[][..], |i| &processes[i].cmdline[..]);
        let (path, how) = vswitchd::find_log(v.pid, cmdline)?;
        let options = log::LogReadOptions {
            owners: Some(
                vswitchd::TrustedOwners::root().and(found.uid, "the user ovs-vswitchd runs as"),
            ),
            ..base.clone()
        };
        Some((path, how, options))
    }

    /// The `ovs-log` source when the log at `path` could not be read.
    pub fn log_failed(&self, path: &Path, error: &OvsError, gaps: &mut Gaps) -> SourceStatus {
        gaps.record(
            "ovs-log",
            "ovs-vswitchd.log",
            error.to_string(),
            path.display().to_string(),
        );
        status(
            "ovs-log",
            SourceState::Failed,
            format!("{error}{}", self.note()),
        )
    }

    /// The `ovs-log` source when no log was found.
    pub fn no_log(&self) -> SourceStatus {
        let note = self.note();
        status(
            "ovs-log",
            SourceState::Absent,
            match &self.process {
                Some(v) => format!(
                    "ovs-vswitchd (pid {}) has no log file open; pass --ovs-log{note}",
                    v.pid
                ),
                None => {
                    format!("no ovs-vswitchd found for this database; pass --ovs-log{note}")
                }
            },
        )
    }
}

/// Converts the OVSDB dump into the snapshot's OVS part.
pub fn state_from_dump(dump: &OvsDump, endpoint: &str) -> OvsState {
    let root = dump.open_vswitch.as_ref();
    let other_config = root.map(|r| r.other_config.clone()).unwrap_or_default();
    let number = |key: &str| other_config.get(key).and_then(|v| v.parse::<u32>().ok());
    OvsState {
        endpoint: endpoint.to_string(),
        ovs_version: root.and_then(|r| r.ovs_version.clone()),
        db_version: root.and_then(|r| r.db_version.clone()),
        datapath_types: root.map(|r| r.datapath_types.clone()).unwrap_or_default(),
        n_handler_threads: number("n-handler-threads"),
        n_revalidator_threads: number("n-revalidator-threads"),
        other_config: other_config.clone(),
        next_cfg: root.map_or(0, |r| r.next_cfg),
        cur_cfg: root.map_or(0, |r| r.cur_cfg),
        bridges: dump
            .bridges
            .iter()
            .map(|b| OvsBridge {
                uuid: b.bridge.uuid.to_string(),
                name: b.bridge.name.clone(),
                datapath_type: b.bridge.datapath_type.clone(),
                ports: b
                    .ports
                    .iter()
                    .map(|p| OvsPort {
                        uuid: p.port.uuid.to_string(),
                        name: p.port.name.clone(),
                        interfaces: p.interfaces.iter().map(interface_model).collect(),
                    })
                    .collect(),
            })
            .collect(),
        vswitchd: None,
        log: None,
        log_only: false,
        db_history: None,
    }
}

/// An Interface row as the snapshot holds it.
pub fn interface_model(i: &nodedoc_ovsdb::Interface) -> OvsInterface {
    OvsInterface {
        uuid: i.uuid.to_string(),
        name: i.name.clone(),
        interface_type: i.interface_type.clone(),
        ofport: i.ofport,
        error: i.error.clone(),
        link_state: i.link_state.clone(),
        admin_state: i.admin_state.clone(),
        ifindex: i.ifindex,
        mac_in_use: i.mac_in_use.clone(),
        external_ids: i.external_ids.clone(),
    }
}

/// The socket path of a `unix:` endpoint.
pub fn socket_path(endpoint: &Endpoint) -> Option<&Path> {
    match endpoint {
        Endpoint::Unix(path) => Some(path),
        Endpoint::Tcp { .. } => None,
    }
}
