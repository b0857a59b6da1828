//! Open vSwitch for the agent: live streams instead of a new reading every round.
//!
//! `check` reads OVS once ([`nodedoc_ovs::collect`]): an OVSDB dump, the log's last 16 MiB,
//! the devices of every network namespace. Doing that every round would cost the agent a
//! dump and a re-parse per round and still see changes only at the next round. Instead
//! [`OvsStream`] keeps:
//!
//! - an **OVSDB replica**: a monitor thread ([`nodedoc_ovs::monitor`]) sends the rows each
//!   update changed; [`OvsTables`] applies them, names the Interface events (seed 002's tap
//!   lifecycle) and patches the snapshot's [`OvsState`] in place;
//! - **ovs-vswitchd.log followed** by offset and inode ([`LogFollower`]), found as `check`
//!   finds it (`--ovs-log`, or among the trusted daemon's open files);
//! - the **devices of every namespace**, read again only when a namespace came or went, the
//!   replica or the log said an interface changed, or every [`NETNS_EVERY_ROUNDS`] rounds;
//! - a bounded **history** of Interface row events ([`OvsDbHistory`]), which
//!   `ovs-port-flapping` reads besides the log.
//!
//! Between rounds [`OvsStream::follow`] waits for the monitor and applies what arrives to the
//! last round's snapshot, so the agent can re-run the OVS detectors within milliseconds of
//! an update. Every interface the update named has its device looked for by name in
//! nodedoc's namespace (one ioctl); one not there is marked unverified until the next round
//! reads every namespace, so a tap just plugged does not look orphaned because the
//! namespaces were read before it existed.
//!
//! Each part degrades alone, with a source status that says how it was read: `ovsdb`
//! (connected, reconnecting, how far behind), `ovs-log`, `netns`.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use nodedoc_model::{
    Gaps, NetworkNamespaces, OvsDbEvent, OvsDbHistory, OvsState, Process, Snapshot, SourceState,
    SourceStatus,
};
use nodedoc_ovs::live::{self, OvsTables, Touched};
use nodedoc_ovs::log::LogReadOptions;
use nodedoc_ovs::log_follow::LogFollower;
use nodedoc_ovs::monitor::{Inbox, MonitorMessage, MonitorThread, Waker};
use nodedoc_ovs::{netns, Daemon};
use nodedoc_ovsdb::{Endpoint, ReconnectOptions};

use crate::OvsSource;

/// The devices of every namespace are read again at least this often (in rounds), to see a
/// device that vanished with no namespace coming or going and no OVSDB change (a device
/// deleted by hand).
pub const NETNS_EVERY_ROUNDS: u64 = 6;

/// How long the first round waits for the monitor's first copy of the database.
pub const FIRST_COPY_WAIT: Duration = Duration::from_secs(10);

/// An interface quiet this long in ovs-vswitchd.log is forgotten (its add/delete loop, if it
/// had one, ended an hour ago).
pub const LOG_QUIET_MS: u64 = live::HISTORY_WINDOW_SECS * 1000;

/// Messages taken from the monitor per call before the caller gets to run its detectors.
const BATCH: usize = 256;

/// What arrived between rounds.
#[derive(Clone, Debug, Default)]
pub struct OvsNews {
    /// The snapshot's OVS part changed: the OVS detectors should run again.
    pub changed: bool,
    /// The Interface events that arrived, in order.
    pub events: Vec<OvsDbEvent>,
    /// The monitor started over from a fresh copy (reconnection, or it fell behind).
    pub resynced: bool,
    /// The connection was lost (why); the OVS part stays as it was until the next round.
    pub disconnected: Option<String>,
    /// A [`Waker`] woke the caller.
    pub woken: bool,
}

/// Why the last reading of the namespaces is no longer enough.
#[derive(Debug, Default)]
struct Network {
    last: Option<NetworkNamespaces>,
    /// Namespaces known at the last reading.
    key: Vec<(u64, String)>,
    /// An interface changed since: read again at the next round.
    stale: bool,
    rounds_since: u64,
    /// How the last round got it, for the `netns` source.
    how: &'static str,
}

/// Open vSwitch followed between rounds; see the module documentation.
#[derive(Debug)]
pub struct OvsStream {
    source: OvsSource,
    inbox: Inbox,
    monitor: Option<MonitorThread>,
    tables: Option<OvsTables>,
    generation: u64,
    /// Why the monitor is not connected, while it is not.
    disconnected: Option<String>,
    history: Option<OvsDbHistory>,
    log: Option<LogFollower>,
    network: Network,
    /// The daemon whose open files the followed log was found among.
    log_daemon: Option<(i32, u64)>,
    /// Add/delete lines in the log at the last round.
    log_add_delete: u64,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn status(source: &str, state: SourceState, detail: impl Into<String>) -> SourceStatus {
    SourceStatus {
        source: source.into(),
        state,
        detail: detail.into(),
    }
}

impl OvsStream {
    /// A stream of the Open vSwitch at `source`; nothing connects before the first round.
    pub fn new(source: OvsSource) -> OvsStream {
        OvsStream {
            source,
            inbox: Inbox::new(),
            monitor: None,
            tables: None,
            generation: 0,
            disconnected: None,
            history: None,
            log: None,
            network: Network::default(),
            log_daemon: None,
            log_add_delete: 0,
        }
    }

    /// A handle that wakes [`follow`](Self::follow) from another thread.
    pub fn waker(&self) -> Waker {
        self.inbox.waker()
    }

    /// The monitor's counters: updates, rows, times it fell behind; and rows queued now.
    pub fn monitor_stats(&self) -> (u64, u64, u64, usize) {
        use std::sync::atomic::Ordering::Relaxed;
        let stats = self.inbox.stats();
        (
            stats.updates.load(Relaxed),
            stats.rows.load(Relaxed),
            stats.fell_behind.load(Relaxed),
            self.inbox.queued_rows(),
        )
    }

    /// The log follower, once the log was found.
    pub fn log_follower(&self) -> Option<&LogFollower> {
        self.log.as_ref()
    }

    fn endpoint(&self) -> Result<(Endpoint, bool), String> {
        let explicit = self.source.endpoint.is_some();
        let text = self
            .source
            .endpoint
            .as_deref()
            .unwrap_or(nodedoc_ovs::DEFAULT_ENDPOINT);
        text.parse()
            .map(|e| (e, explicit))
            .map_err(|e: nodedoc_ovsdb::EndpointError| e.to_string())
    }

    /// Applies one message to the tables; returns the events and what was touched (`None`
    /// for a resync: everything).
    fn take(&mut self, message: MonitorMessage, news: &mut OvsNews) -> Option<Touched> {
        match message {
            MonitorMessage::Wake => {
                news.woken = true;
                Some(Touched::default())
            }
            MonitorMessage::Disconnected { error, retry_in } => {
                let reason = format!("{error}; reconnecting in {:.1}s", retry_in.as_secs_f64());
                if self.tables.is_some() && self.disconnected.is_none() {
                    news.disconnected = Some(reason.clone());
                }
                // The tables stay, to be compared with the copy that comes on reconnection.
                self.disconnected = Some(reason);
                Some(Touched::default())
            }
            MonitorMessage::Resync {
                generation,
                at_unix_ms,
                rows,
            } => {
                self.generation = generation;
                self.disconnected = None;
                match &mut self.tables {
                    // What happened meanwhile, as the two copies tell.
                    Some(tables) => news.events.extend(tables.replace(rows, at_unix_ms)),
                    None => self.tables = Some(OvsTables::from_rows(rows)),
                }
                if let Some(history) = &mut self.history {
                    history.resyncs += 1;
                }
                if self.history.is_none() {
                    self.history = Some(live::new_history(at_unix_ms));
                }
                news.resynced = true;
                None
            }
            MonitorMessage::Update { at_unix_ms, rows } => {
                let Some(tables) = self.tables.as_mut() else {
                    return Some(Touched::default());
                };
                let applied = tables.apply(rows, at_unix_ms);
                news.events.extend(applied.events);
                Some(applied.touched)
            }
        }
    }

    /// Takes the waiting messages (after waiting up to `wait` for the first; at most
    /// [`BATCH`]); returns the news and what to patch (`None`: rebuild).
    fn drain(&mut self, wait: Duration) -> (OvsNews, Option<Touched>) {
        let mut news = OvsNews::default();
        let mut touched = Some(Touched::default());
        let mut first = if wait.is_zero() {
            self.inbox.try_recv()
        } else {
            self.inbox.recv_timeout(wait)
        };
        let mut taken = 0;
        while let Some(message) = first.take() {
            let is_update = matches!(
                message,
                MonitorMessage::Update { .. } | MonitorMessage::Resync { .. }
            );
            match self.take(message, &mut news) {
                None => touched = None,
                Some(t) => {
                    if let Some(all) = &mut touched {
                        merge(all, t);
                    }
                }
            }
            if is_update {
                news.changed = true;
            }
            taken += 1;
            if taken >= BATCH {
                break;
            }
            first = self.inbox.try_recv();
        }
        let events_so_far = std::mem::take(&mut news.events);
        if let Some(history) = &mut self.history {
            live::record_events(history, &events_so_far);
        }
        news.events = events_so_far;
        (news, touched)
    }

    /// Reads Open vSwitch into `snapshot` for a round: what the replica holds now, the
    /// daemon, what the log added, and the namespaces' devices when they may have changed.
    /// `snapshot` holds the round's processes (the daemon and the namespaces are found
    /// among them).
    pub fn round(&mut self, snapshot: &mut Snapshot, gaps: &mut Gaps) {
        let (endpoint, explicit) = match self.endpoint() {
            Ok(endpoint) => endpoint,
            Err(e) => {
                snapshot
                    .sources
                    .push(status("ovsdb", SourceState::Failed, e));
                return;
            }
        };
        if let Err(missing) = nodedoc_ovs::socket_check(&endpoint, explicit) {
            // No socket, no Open vSwitch (now): whatever was held is stale.
            self.tables = None;
            snapshot.sources.push(missing);
            return;
        }
        if self.monitor.is_none() {
            let options = ReconnectOptions::default();
            match MonitorThread::spawn(endpoint.clone(), options, &self.inbox) {
                Ok(thread) => self.monitor = Some(thread),
                Err(e) => {
                    snapshot.sources.push(status(
                        "ovsdb",
                        SourceState::Failed,
                        format!("cannot start the OVSDB monitor thread: {e}"),
                    ));
                    return;
                }
            }
        }
        // The first round waits for the first copy, as `check` waits for its dump (a failed
        // first connection ends the wait).
        if self.tables.is_none() && self.disconnected.is_none() {
            let deadline = Instant::now() + FIRST_COPY_WAIT;
            while self.tables.is_none() && self.disconnected.is_none() {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                self.drain(left);
            }
        }
        // Everything queued (a bounded number of batches: updates that keep coming wait
        // for the streams between rounds): the round reads the tables as they are now.
        for _ in 0..(nodedoc_ovs::monitor::QUEUED_MESSAGES / BATCH + 1) {
            let (news, _) = self.drain(Duration::ZERO);
            if !news.changed && !news.woken && news.disconnected.is_none() {
                break;
            }
        }
        let endpoint_text = endpoint.to_string();
        let tables = match (&self.tables, &self.disconnected) {
            (Some(tables), None) => tables,
            (_, why) => {
                let why = why
                    .clone()
                    .unwrap_or_else(|| "no copy of the database yet".to_string());
                gaps.record("ovsdb", "OVSDB monitor", why.clone(), endpoint_text.clone());
                snapshot.sources.push(status(
                    "ovsdb",
                    SourceState::Failed,
                    format!("{endpoint_text}: {why}"),
                ));
                return;
            }
        };
        let mut ovs = tables.to_state(&endpoint_text);
        let (updates, _, fell_behind, queued) = self.monitor_stats();
        let mut detail = nodedoc_ovs::ovsdb_detail(&endpoint_text, &ovs);
        detail.push_str(&format!(
            "; followed by monitor (connection {}, {updates} updates",
            self.generation
        ));
        if fell_behind > 0 {
            detail.push_str(&format!(", fell behind {fell_behind} times"));
        }
        if queued > 0 {
            detail.push_str(&format!(", {queued} rows queued"));
        }
        detail.push(')');
        snapshot
            .sources
            .push(status("ovsdb", SourceState::Collected, detail));

        let now = now_ms();
        let daemon = Daemon::find(
            &endpoint,
            explicit,
            &snapshot.processes,
            nodedoc_model::hostfile::DEFAULT_STALL_DEADLINE,
        );
        daemon.record_ignored(gaps);
        ovs.vswitchd = daemon.process.clone();
        self.follow_log(
            &daemon,
            &snapshot.processes,
            now,
            gaps,
            &mut snapshot.sources,
        );
        if let Some(follower) = &mut self.log {
            follower.forget_quiet(now, LOG_QUIET_MS);
            let log = follower.log();
            // An interface added or deleted: its device may have come or gone.
            let add_delete = log.count("interface-added") + log.count("interface-deleted");
            if add_delete != self.log_add_delete {
                self.log_add_delete = add_delete;
                self.network.stale = true;
            }
            ovs.log = Some(log);
        }
        if let Some(history) = &mut self.history {
            live::forget_quiet(history, now);
            ovs.db_history = Some(history.clone());
        }

        let pairs: Vec<(i32, u64)> = snapshot
            .processes
            .iter()
            .filter_map(|p| Some((p.pid, p.namespaces.net?)))
            .collect();
        let run_netns = PathBuf::from(netns::NETNS_RUN_DIR);
        let key = netns::namespace_key(&pairs, &run_netns);
        let network = &mut self.network;
        network.rounds_since += 1;
        let why = if network.last.is_none() {
            Some("")
        } else if network.key != key {
            Some("; read again: namespaces came or went")
        } else if network.stale {
            Some("; read again: interfaces changed")
        } else if network.rounds_since >= NETNS_EVERY_ROUNDS {
            Some("; read again (every few rounds)")
        } else {
            None
        };
        if let Some(why) = why {
            network.last = Some(netns::collect(&pairs, &run_netns));
            network.key = key;
            network.stale = false;
            network.rounds_since = 0;
            network.how = why;
        } else {
            network.how = "; unchanged since an earlier round (no namespace came or went, no interface changed)";
        }
        let read = network.last.clone().expect("read above");
        snapshot
            .sources
            .push(nodedoc_ovs::network_status(&read, gaps, network.how));
        snapshot.network = Some(read);
        snapshot.ovs = Some(ovs);
    }

    /// Finds the log (again, when the daemon changed), reads what was appended.
    fn follow_log(
        &mut self,
        daemon: &Daemon,
        processes: &[Process],
        now: u64,
        gaps: &mut Gaps,
        sources: &mut Vec<SourceStatus>,
    ) {
        let base = LogReadOptions::tail(nodedoc_ovs::log::DEFAULT_TAIL_BYTES);
        let identity = daemon.process.as_ref().map(|v| (v.pid, v.start_time_ticks));
        let location = match (&self.source.log, &self.log) {
            // A log found through the daemon stays followed while the daemon is the same:
            // looking for it again costs a readlink per descriptor of ovs-vswitchd.
            (None, Some(follower)) if identity.is_some() && identity == self.log_daemon => {
                Some((follower.path().to_path_buf(), String::new(), base.clone()))
            }
            _ => daemon.log_location(self.source.log.as_deref(), processes, &base),
        };
        self.log_daemon = identity;
        let Some((path, how, options)) = location else {
            self.log = None;
            sources.push(daemon.no_log());
            return;
        };
        if self
            .log
            .as_ref()
            .is_some_and(|f| f.path() != path.as_path())
        {
            self.log = None;
        }
        let outcome = match &mut self.log {
            Some(follower) => follower.poll(now).map(drop),
            None => LogFollower::start(&path, &how, &options, now).map(|f| {
                self.log = Some(f);
            }),
        };
        match (outcome, &self.log) {
            (Ok(()), Some(follower)) => {
                sources.push(status(
                    "ovs-log",
                    SourceState::Collected,
                    format!("{}{}", follower.detail(), daemon.note()),
                ));
            }
            (Err(e), _) => sources.push(daemon.log_failed(&path, &e, gaps)),
            (Ok(()), None) => sources.push(daemon.no_log()),
        }
    }

    /// Waits up to `timeout` for OVSDB news and applies it to `snapshot`, the last round's
    /// (pass `None` before the first round: the news is kept for it). Returns what
    /// happened; [`OvsNews::changed`] says the OVS detectors should run again.
    pub fn follow(&mut self, snapshot: Option<&mut Snapshot>, timeout: Duration) -> OvsNews {
        let (mut news, touched) = self.drain(timeout);
        let Some(snapshot) = snapshot else {
            return news;
        };
        if !news.changed {
            return news;
        }
        if news.disconnected.is_some() || snapshot.ovs.is_none() {
            // Lost: until the next round says otherwise, the last reading stands. Or the
            // first copy arrived between rounds: the next round reads it with the daemon and
            // the log, and the detectors wait for that.
            news.changed = false;
            return news;
        }
        let (Some(tables), Some(ovs)) = (&self.tables, snapshot.ovs.as_mut()) else {
            news.changed = false;
            return news;
        };
        let names: Vec<String> = match &touched {
            Some(touched) => {
                tables.patch(ovs, touched);
                // The same bounded history the collector keeps, without copying it: the
                // same events recorded the same way.
                match ovs.db_history.as_mut() {
                    Some(history) => live::record_events(history, &news.events),
                    None => ovs.db_history.clone_from(&self.history),
                }
                touched.interfaces.iter().cloned().collect()
            }
            None => {
                let mut fresh = tables.to_state(&ovs.endpoint);
                fresh.vswitchd = ovs.vswitchd.take();
                fresh.log = ovs.log.take();
                fresh.db_history.clone_from(&self.history);
                *ovs = fresh;
                ovs.interfaces().map(|(_, _, i)| i.name.clone()).collect()
            }
        };
        if let Some(follower) = &mut self.log {
            if follower.poll(now_ms()).is_ok_and(|n| n > 0) {
                ovs.log = Some(follower.log());
            }
        }
        if !names.is_empty() {
            self.network.stale = true;
            if let Some(network) = snapshot.network.as_mut() {
                locate_devices(network, &names);
            }
        }
        news
    }

    /// The OVS state the tables hold now (for `ovs ports --watch` and tests).
    pub fn state(&self) -> Option<OvsState> {
        let (endpoint, _) = self.endpoint().ok()?;
        Some(self.tables.as_ref()?.to_state(&endpoint.to_string()))
    }
}

/// Looks for the devices of interfaces an update named that the last reading of the
/// namespaces does not have: by name in nodedoc's own namespace (one ioctl each), where a tap
/// just plugged is. Those not there are marked unverified until the next round reads every
/// namespace: `ovs-orphan-port` does not call them gone on the strength of a reading made
/// before they existed.
fn locate_devices(network: &mut NetworkNamespaces, names: &[String]) {
    let own = netns::own_namespace();
    for name in names {
        if !network.find(name).is_empty() {
            continue;
        }
        let here = own.and_then(|inode| network.namespaces.iter().position(|ns| ns.inode == inode));
        match (here, netns::device_here(name)) {
            (Some(i), Some(device)) => network.namespaces[i].devices.push(device),
            _ => {
                if !network.is_unverified(name) {
                    network.unverified.push(name.clone());
                }
            }
        }
    }
}

/// Adds `more` to `all`.
fn merge(all: &mut Touched, more: Touched) {
    all.root |= more.root;
    all.bridges.extend(more.bridges);
    all.ports.extend(more.ports);
    for (bridge, left) in more.left {
        all.left.entry(bridge).or_default().extend(left);
    }
    all.interfaces.extend(more.interfaces);
}
