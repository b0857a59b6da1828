//! The agent's OVSDB monitor: a thread with its own single-threaded tokio runtime that keeps a
//! [`ReconnectingMonitor`] on the Open_vSwitch tables and sends what changed, typed, over a
//! bounded channel ([`Inbox`]).
//!
//! The thread applies each update to its [`TableReplica`] (update2 diffs need the schema and
//! the old value), converts only the rows the update names into [`RowChange`]s and sends
//! them. Everything is bounded:
//!
//! - the client's own buffers ([`nodedoc_ovsdb::ClientOptions`]): a server that sends faster
//!   than this thread reads costs a reconnection with a fresh copy, never memory;
//! - the channel: at most [`QUEUED_MESSAGES`] messages and [`QUEUED_ROWS`] rows wait for the
//!   consumer. When a message does not fit, the thread stops sending updates and, as soon as
//!   the consumer has emptied the queue, sends the whole database instead
//!   ([`MonitorMessage::Resync`]), which the consumer compares with what it had. A slow
//!   consumer costs a resync, not an unbounded queue.
//!
//! Only the columns nodedoc reads are monitored (checked against the server's schema): the
//! `statistics` column that ovs-vswitchd rewrites every few seconds for every interface is
//! not, so an idle switch sends nothing.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use nodedoc_ovsdb::{
    Bridge, Client, ClientOptions, Endpoint, Interface, MonitorEvent, MonitorRequest, OpenVSwitch,
    Port, ReconnectOptions, ReconnectingMonitor, TableReplica, TableUpdates2, Uuid,
    OPEN_VSWITCH_DB,
};

use crate::live::RowChange;

/// Messages that may wait for the consumer.
pub const QUEUED_MESSAGES: usize = 1024;

/// Rows that may wait for the consumer (a resync of the whole database is sent alone,
/// whatever its size).
pub const QUEUED_ROWS: usize = 50_000;

/// What the monitor thread (or a [`Waker`]) tells the consumer.
#[derive(Debug)]
pub enum MonitorMessage {
    /// The whole database: after (re)connecting, or after the consumer fell behind. Replace
    /// what was held.
    Resync {
        /// Connections so far (1 for the first), or the same number after falling behind.
        generation: u64,
        /// When it arrived (ms since the Unix epoch).
        at_unix_ms: u64,
        /// Every row.
        rows: Vec<RowChange>,
    },
    /// The rows one update changed.
    Update {
        /// When it arrived (ms since the Unix epoch).
        at_unix_ms: u64,
        /// The rows.
        rows: Vec<RowChange>,
    },
    /// The connection was lost or could not be made; the thread retries after `retry_in`.
    Disconnected {
        /// Why.
        error: String,
        /// When it tries again.
        retry_in: Duration,
    },
    /// Sent by a [`Waker`]: no news, but the consumer should look up (a signal arrived).
    Wake,
}

impl MonitorMessage {
    fn rows(&self) -> usize {
        match self {
            MonitorMessage::Resync { rows, .. } | MonitorMessage::Update { rows, .. } => rows.len(),
            _ => 0,
        }
    }
}

/// Counters of a monitor thread, shared with the consumer.
#[derive(Debug, Default)]
pub struct MonitorStats {
    /// Updates received from the server.
    pub updates: AtomicU64,
    /// Rows they changed.
    pub rows: AtomicU64,
    /// Times the consumer fell behind and got a resync instead of updates.
    pub fell_behind: AtomicU64,
    /// Rows that could not be read as their table's type (left out; see the gaps).
    pub unreadable_rows: AtomicU64,
    /// Rows sent and not yet taken.
    queued_rows: AtomicUsize,
}

/// The consumer's end: a bounded channel the monitor thread and [`Waker`]s send to.
#[derive(Debug)]
pub struct Inbox {
    receiver: Receiver<MonitorMessage>,
    sender: SyncSender<MonitorMessage>,
    stats: Arc<MonitorStats>,
    max_rows: usize,
}

impl Default for Inbox {
    fn default() -> Self {
        Inbox::new()
    }
}

impl Inbox {
    /// An empty inbox holding at most [`QUEUED_MESSAGES`] and [`QUEUED_ROWS`].
    pub fn new() -> Inbox {
        Inbox::with_bounds(QUEUED_MESSAGES, QUEUED_ROWS)
    }

    /// An empty inbox holding at most `messages` messages and `rows` rows.
    pub fn with_bounds(messages: usize, rows: usize) -> Inbox {
        let (sender, receiver) = mpsc::sync_channel(messages.max(1));
        Inbox {
            receiver,
            sender,
            stats: Arc::new(MonitorStats::default()),
            max_rows: rows.max(1),
        }
    }

    /// The counters of the monitor sending here.
    pub fn stats(&self) -> &MonitorStats {
        &self.stats
    }

    /// Rows waiting to be taken.
    pub fn queued_rows(&self) -> usize {
        self.stats.queued_rows.load(Ordering::Relaxed)
    }

    /// A handle that wakes [`recv_timeout`](Self::recv_timeout) from another thread (a
    /// signal handler).
    pub fn waker(&self) -> Waker {
        Waker(self.sender.clone())
    }

    /// The next message, waiting at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<MonitorMessage> {
        let message = self.receiver.recv_timeout(timeout).ok()?;
        self.taken(&message);
        Some(message)
    }

    /// The next message, if one is waiting.
    pub fn try_recv(&self) -> Option<MonitorMessage> {
        let message = self.receiver.try_recv().ok()?;
        self.taken(&message);
        Some(message)
    }

    fn taken(&self, message: &MonitorMessage) {
        self.stats
            .queued_rows
            .fetch_sub(message.rows(), Ordering::Relaxed);
    }
}

/// Wakes an [`Inbox`]'s consumer.
#[derive(Clone, Debug)]
pub struct Waker(SyncSender<MonitorMessage>);

impl Waker {
    /// Wakes the consumer (if the queue is full, it is awake anyway).
    pub fn wake(&self) {
        let _ = self.0.try_send(MonitorMessage::Wake);
    }
}

/// The thread's end of an [`Inbox`].
struct Outbox {
    sender: SyncSender<MonitorMessage>,
    stats: Arc<MonitorStats>,
    max_rows: usize,
}

enum SendError {
    /// No room: the consumer is behind.
    Full,
    /// The consumer is gone: the thread ends.
    Gone,
}

impl Outbox {
    fn send(&self, message: MonitorMessage) -> Result<(), SendError> {
        let rows = message.rows();
        let queued = self.stats.queued_rows.load(Ordering::Relaxed);
        if queued > 0 && queued + rows > self.max_rows {
            return Err(SendError::Full);
        }
        self.stats.queued_rows.fetch_add(rows, Ordering::Relaxed);
        match self.sender.try_send(message) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.stats.queued_rows.fetch_sub(rows, Ordering::Relaxed);
                match e {
                    TrySendError::Full(_) => Err(SendError::Full),
                    TrySendError::Disconnected(_) => Err(SendError::Gone),
                }
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.stats.queued_rows.load(Ordering::Relaxed) == 0
    }
}

/// The running monitor thread; dropping it stops the thread.
#[derive(Debug)]
pub struct MonitorThread {
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MonitorThread {
    /// Starts monitoring `endpoint`, sending to `inbox`.
    pub fn spawn(
        endpoint: Endpoint,
        options: ReconnectOptions,
        inbox: &Inbox,
    ) -> std::io::Result<MonitorThread> {
        let (shutdown, stop) = tokio::sync::oneshot::channel();
        let outbox = Outbox {
            sender: inbox.sender.clone(),
            stats: inbox.stats.clone(),
            max_rows: inbox.max_rows,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name("nodedoc-ovsdb".into())
            .spawn(move || runtime.block_on(run(endpoint, options, outbox, stop)))?;
        Ok(MonitorThread {
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }
}

impl Drop for MonitorThread {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// One row of the replica, typed; `None` when it is gone or cannot be read.
fn typed(
    replica: &TableReplica,
    table: &str,
    uuid: Uuid,
    stats: &MonitorStats,
) -> Option<RowChange> {
    let row = replica.row(table, uuid);
    let unreadable = |e: nodedoc_ovsdb::DataError| {
        let _ = e;
        stats.unreadable_rows.fetch_add(1, Ordering::Relaxed);
    };
    let change = match table {
        OpenVSwitch::TABLE => RowChange::Root(
            uuid,
            row.and_then(|r| {
                OpenVSwitch::from_row(Some(uuid), r)
                    .map_err(unreadable)
                    .ok()
            }),
        ),
        Bridge::TABLE => RowChange::Bridge(
            uuid,
            row.and_then(|r| Bridge::from_row(Some(uuid), r).map_err(unreadable).ok()),
        ),
        Port::TABLE => RowChange::Port(
            uuid,
            row.and_then(|r| Port::from_row(Some(uuid), r).map_err(unreadable).ok()),
        ),
        Interface::TABLE => RowChange::Interface(
            uuid,
            row.and_then(|r| {
                Interface::from_row(Some(uuid), r)
                    .map_err(unreadable)
                    .ok()
                    .map(|i| crate::interface_model(&i))
            }),
        ),
        _ => return None,
    };
    Some(change)
}

/// Every row of the replica, typed.
fn everything(replica: &TableReplica, stats: &MonitorStats) -> Vec<RowChange> {
    [
        OpenVSwitch::TABLE,
        Bridge::TABLE,
        Port::TABLE,
        Interface::TABLE,
    ]
    .into_iter()
    .flat_map(|table| {
        replica
            .rows(table)
            .filter_map(|(uuid, _)| typed(replica, table, uuid, stats))
            .collect::<Vec<_>>()
    })
    .collect()
}

/// The rows `update` names, typed, as the replica holds them once it is applied (a deleted
/// row is `None`).
fn changed(replica: &TableReplica, update: &TableUpdates2, stats: &MonitorStats) -> Vec<RowChange> {
    update
        .iter()
        .filter_map(|(table, uuid, _)| typed(replica, table, uuid, stats))
        .collect()
}

/// Fetches the schema once to know which columns to ask for.
async fn connect_requests(
    endpoint: &Endpoint,
    options: &ClientOptions,
) -> Result<Vec<MonitorRequest>, nodedoc_ovsdb::Error> {
    let client = Client::connect_with(endpoint, options.clone()).await?;
    let schema = client.get_schema(OPEN_VSWITCH_DB).await?;
    Ok(nodedoc_ovsdb::OvsDump::monitor_requests(&schema))
}

async fn run(
    endpoint: Endpoint,
    options: ReconnectOptions,
    outbox: Outbox,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let mut backoff = nodedoc_ovsdb::Backoff::new(options.initial_backoff, options.max_backoff);
    'connect: loop {
        let requests = tokio::select! {
            _ = &mut stop => return,
            result = connect_requests(&endpoint, &options.client) => result,
        };
        let requests = match requests {
            Ok(requests) => requests,
            Err(error) => {
                let retry_in = backoff.next_delay();
                if let Err(SendError::Gone) = outbox.send(MonitorMessage::Disconnected {
                    error: error.to_string(),
                    retry_in,
                }) {
                    return;
                }
                tokio::select! {
                    _ = &mut stop => return,
                    _ = tokio::time::sleep(retry_in) => continue 'connect,
                }
            }
        };
        backoff.reset();
        let Ok(mut monitor) =
            ReconnectingMonitor::new(endpoint.clone(), OPEN_VSWITCH_DB, requests, options.clone())
        else {
            return;
        };
        let mut replica: Option<TableReplica> = None;
        let mut generation = 0;
        // Updates were dropped: the consumer gets the whole database once it has room.
        let mut behind = false;
        loop {
            let event = tokio::select! {
                _ = &mut stop => return,
                event = monitor.next() => Some(event),
                _ = tokio::time::sleep(Duration::from_millis(50)), if behind => None,
            };
            let at_unix_ms = now_ms();
            match event {
                None => {}
                Some(MonitorEvent::Initial {
                    generation: g,
                    schema,
                    state,
                }) => {
                    generation = g;
                    let mut fresh = TableReplica::new(schema);
                    if fresh.reset(&state).is_err() {
                        // A copy that cannot be read: start over, as after a lost connection.
                        continue 'connect;
                    }
                    replica = Some(fresh);
                    behind = true;
                }
                Some(MonitorEvent::Update(update)) => {
                    outbox.stats.updates.fetch_add(1, Ordering::Relaxed);
                    let Some(current) = replica.as_mut() else {
                        continue;
                    };
                    if current.apply(&update).is_err() {
                        continue 'connect;
                    }
                    let rows = changed(current, &update, &outbox.stats);
                    outbox
                        .stats
                        .rows
                        .fetch_add(rows.len() as u64, Ordering::Relaxed);
                    if !behind {
                        match outbox.send(MonitorMessage::Update { at_unix_ms, rows }) {
                            Ok(()) => {}
                            Err(SendError::Full) => {
                                behind = true;
                                outbox.stats.fell_behind.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(SendError::Gone) => return,
                        }
                    }
                }
                Some(MonitorEvent::Disconnected { error, retry_in }) => {
                    replica = None;
                    behind = false;
                    if let Err(SendError::Gone) = outbox.send(MonitorMessage::Disconnected {
                        error: error.to_string(),
                        retry_in,
                    }) {
                        return;
                    }
                }
            }
            if behind && outbox.is_empty() {
                if let Some(current) = &replica {
                    let rows = everything(current, &outbox.stats);
                    match outbox.send(MonitorMessage::Resync {
                        generation,
                        at_unix_ms,
                        rows,
                    }) {
                        Ok(()) => behind = false,
                        Err(SendError::Full) => {}
                        Err(SendError::Gone) => return,
                    }
                }
            }
        }
    }
}
