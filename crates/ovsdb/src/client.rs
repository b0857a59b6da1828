//! The connection: one background task owns the socket, and cheap [`Client`] handles send
//! requests through it.
//!
//! Why a background task: ovsdb-server talks first too. It sends `echo` requests on idle
//! connections (and disconnects clients that do not answer), and it pushes `update`/`update2`
//! notifications whenever monitored tables change. Something must read the socket even when
//! no call is in flight, so the task reads continuously, answers echoes, routes replies to
//! waiting calls by `id` and notifications to monitors by their monitor id.
//!
//! Reading and writing are separate futures of that task, so a large request being written
//! never stops replies (or echoes) from being read, and the reader never waits on a slow
//! consumer.
//!
//! # Memory is bounded, whatever the server does
//! A server is not trusted to behave (nodedoc runs as root and the socket may be anyone's), so
//! every buffer has a limit in [`ClientOptions`], and passing one is an error that names it:
//! - a message is read only up to [`max_message_size`](ClientOptions::max_message_size)
//!   bytes, and decoded only if its estimated decoded size (see
//!   [`JsonStreamSplitter`](crate::JsonStreamSplitter)) stays within
//!   [`max_decoded_size`](ClientOptions::max_decoded_size) — a `serde_json::Value` takes 10
//!   to 90 times the bytes it was read from;
//! - what waits to be written is bounded by
//!   [`max_outgoing_queue`](ClientOptions::max_outgoing_queue) bytes. Calls wait for room
//!   (within their timeout). Replies owed to the server's own requests (its `echo` probes)
//!   cannot wait — the reader must go on reading — so when there is no room for one, the
//!   server is sending requests without reading the answers, and the connection ends with
//!   [`ConnectionError::PeerNotReading`];
//! - each monitor's updates that its consumer has not taken yet are bounded by
//!   [`max_monitor_backlog`](ClientOptions::max_monitor_backlog) (estimated decoded bytes).
//!   A consumer that falls further behind gets [`Error::MonitorLagged`] next, ahead of the
//!   updates still queued (which are dropped): with updates lost, only a fresh initial state
//!   is correct, and [`ReconnectingMonitor`](crate::ReconnectingMonitor) starts over from one.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

use crate::data::Row;
use crate::endpoint::{Endpoint, IntoEndpoint};
use crate::error::{
    abbreviate_json, ConnectionError, DataError, Error, OperationFailure, RpcError,
};
use crate::framing::JsonStreamSplitter;
use crate::jsonrpc::Message;
use crate::monitor::{monitor_requests_json, MonitorRequest, TableUpdates, TableUpdates2};
use crate::ops::{Operation, OperationResult};
use crate::schema::DatabaseSchema;

/// Connection settings.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// How long connecting may take.
    pub connect_timeout: Duration,
    /// How long each call waits for its reply; `None` waits for as long as the connection
    /// lives. A call that times out leaves the connection usable.
    pub request_timeout: Option<Duration>,
    /// The largest message accepted from the server, in bytes. A larger one ends the
    /// connection with [`FrameError::Oversized`](crate::FrameError::Oversized).
    ///
    /// Default 16 MiB. The Open_vSwitch database as nodedoc reads it takes about 440 bytes
    /// per interface (2.2 MB at 5,000 interfaces); initial monitor replies of big OVN
    /// databases can exceed the default.
    pub max_message_size: usize,
    /// The most memory one message may take once decoded, in bytes, as estimated while it is
    /// read (see [`JsonStreamSplitter`](crate::JsonStreamSplitter)). A costlier one ends the
    /// connection with [`FrameError::TooCostly`](crate::FrameError::TooCostly) before it is
    /// decoded.
    ///
    /// Default 96 MiB: real OVSDB replies take about 11 times their size once decoded, so
    /// this admits about 9 MB of them (20,000 interfaces as nodedoc reads them), while
    /// hostile JSON (tiny objects: 90 times their size) is stopped at about 1 MB.
    pub max_decoded_size: usize,
    /// The most bytes waiting to be sent to the server. Calls wait for room (within their
    /// timeout); a reply owed to the server (`echo`) that finds no room ends the connection
    /// with [`ConnectionError::PeerNotReading`]. Default 4 MiB; a request larger than this
    /// waits until nothing else is queued and then goes alone.
    pub max_outgoing_queue: usize,
    /// Per monitor, the most updates received but not yet taken by its consumer, counted as
    /// their estimated decoded size in bytes. Past it the monitor ends with
    /// [`Error::MonitorLagged`]. Default 32 MiB; a single update larger than this is queued
    /// when nothing else is.
    pub max_monitor_backlog: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Some(Duration::from_secs(60)),
            max_message_size: 16 << 20,
            max_decoded_size: 96 << 20,
            max_outgoing_queue: 4 << 20,
            max_monitor_backlog: 32 << 20,
        }
    }
}

/// What queuing one item costs against a byte budget of `budget` bytes (a semaphore of that
/// many permits): its size plus what holding it in a queue costs (its allocation, the queue
/// slot: about 100 bytes, measured for echo replies), and at most the whole budget so that
/// one large item can always go alone.
fn charge(bytes: usize, budget: usize) -> u32 {
    const PER_ITEM: usize = 100;
    bytes.saturating_add(PER_ITEM).min(budget_permits(budget)) as u32
}

/// Semaphore permits are `u32`s elsewhere in tokio's API: budgets beyond 4 GiB are clamped.
fn budget_permits(budget: usize) -> usize {
    budget.clamp(1, u32::MAX as usize)
}

/// Counters describing a connection's traffic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Messages read from the server.
    pub messages_received: u64,
    /// `echo` requests from the server that were answered.
    pub echo_requests_answered: u64,
    /// Replies that arrived for calls nobody was waiting for any more (timed out or
    /// dropped).
    pub unclaimed_replies: u64,
}

#[derive(Default)]
struct StatsCounters {
    messages_received: AtomicU64,
    echo_requests_answered: AtomicU64,
    unclaimed_replies: AtomicU64,
}

/// A reply: `Ok(result)` or `Err(error member)`.
type Reply = Result<Value, Value>;

/// A message waiting to be written, holding its share of the outgoing queue's room until it
/// has been written.
struct Outgoing {
    bytes: Vec<u8>,
    _room: OwnedSemaphorePermit,
}

enum MonitorMessage {
    /// An update, holding its share of the monitor's backlog until the consumer takes it.
    Update(Value, OwnedSemaphorePermit),
    Canceled,
    Closed(Arc<ConnectionError>),
    /// The backlog overflowed; the monitor was unregistered. (Also flagged in
    /// [`MonitorSlot::lagged`], so the consumer learns it ahead of the queued updates.)
    Lagged,
}

/// A registered monitor, as the reader sees it.
struct MonitorSlot {
    sender: mpsc::UnboundedSender<MonitorMessage>,
    backlog: Arc<Semaphore>,
    lagged: Arc<AtomicBool>,
}

#[derive(Default)]
struct ConnectionState {
    pending: HashMap<u64, oneshot::Sender<Reply>>,
    monitors: HashMap<String, MonitorSlot>,
    closed: Option<Arc<ConnectionError>>,
}

struct Shared {
    endpoint: String,
    options: ClientOptions,
    next_id: AtomicU64,
    state: Mutex<ConnectionState>,
    /// Unbounded as a channel, bounded by `outgoing_room`: every item holds permits.
    outgoing: mpsc::UnboundedSender<Outgoing>,
    /// Room in the outgoing queue, in bytes.
    outgoing_room: Arc<Semaphore>,
    stats: StatsCounters,
}

impl Shared {
    // A poisoned lock only means a panic elsewhere while holding it; the maps are still
    // consistent enough to keep routing messages, so recover instead of propagating.
    fn lock(&self) -> MutexGuard<'_, ConnectionState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn connection_lost(&self, method: &str) -> Error {
        let source = self
            .lock()
            .closed
            .clone()
            .unwrap_or_else(|| Arc::new(ConnectionError::ClosedByClient));
        Error::ConnectionLost {
            endpoint: self.endpoint.clone(),
            method: method.to_owned(),
            source,
        }
    }

    /// Queues a message, waiting for room. Fails only when the connection has ended.
    async fn queue(&self, bytes: Vec<u8>) -> Result<(), ()> {
        let permits = charge(bytes.len(), self.options.max_outgoing_queue);
        let room = Arc::clone(&self.outgoing_room)
            .acquire_many_owned(permits)
            .await
            .map_err(drop)?;
        self.outgoing
            .send(Outgoing { bytes, _room: room })
            .map_err(drop)
    }

    /// Queues a message if there is room now.
    fn try_queue(&self, bytes: Vec<u8>) -> Result<(), QueueFull> {
        let permits = charge(bytes.len(), self.options.max_outgoing_queue);
        let room = Arc::clone(&self.outgoing_room)
            .try_acquire_many_owned(permits)
            .map_err(|_| QueueFull)?;
        // A send error means the connection has ended: nothing is owed any more.
        let _ = self.outgoing.send(Outgoing { bytes, _room: room });
        Ok(())
    }

    /// Best effort, for cleanup that cannot wait (`cancel`, `monitor_cancel` from `Drop`):
    /// when the queue is full the server is not reading anyway.
    fn send_fire_and_forget(&self, method: &str, params: Value) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let message = Message::Request {
            id: json!(id),
            method: method.to_owned(),
            params,
        };
        let _ = self.try_queue(message.encode());
    }
}

/// The outgoing queue has no room.
struct QueueFull;

/// Dropping the last handle stops the connection task (the task itself holds only the
/// [`Shared`] state, not a handle).
struct Handle {
    shared: Arc<Shared>,
    _shutdown: oneshot::Sender<()>,
}

/// A connection to an OVSDB server. Cloning is cheap and clones share the connection; it
/// closes when the last clone and the last [`MonitorUpdates`] are dropped.
///
/// Must be created inside a tokio runtime (the connection runs as a spawned task).
#[derive(Clone)]
pub struct Client {
    handle: Arc<Handle>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.shared().endpoint)
            .field("closed", &self.closed_reason())
            .finish()
    }
}

/// Removes a call's reply slot when the call gives up (timeout, or its future is dropped),
/// so abandoned calls do not accumulate and their late replies are simply discarded.
struct PendingCall<'a> {
    shared: &'a Shared,
    id: u64,
    /// For `transact`: also ask the server to abandon it, so a blocking `wait` does not keep
    /// server resources.
    cancel_on_abandon: bool,
    armed: bool,
}

impl Drop for PendingCall<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        self.shared.lock().pending.remove(&self.id);
        if self.cancel_on_abandon {
            let cancel = Message::Notification {
                method: "cancel".into(),
                params: json!([self.id]),
            };
            let _ = self.shared.try_queue(cancel.encode());
        }
    }
}

impl Client {
    /// Connects with default [`ClientOptions`].
    ///
    /// `endpoint` is an [`Endpoint`] or a string such as `unix:/run/openvswitch/db.sock` or
    /// `tcp:127.0.0.1:6640`.
    pub async fn connect(endpoint: impl IntoEndpoint) -> Result<Client, Error> {
        Client::connect_with(endpoint, ClientOptions::default()).await
    }

    /// Connects with the given options.
    pub async fn connect_with(
        endpoint: impl IntoEndpoint,
        options: ClientOptions,
    ) -> Result<Client, Error> {
        let endpoint = endpoint.into_endpoint()?;
        let name = endpoint.to_string();
        let connect_error = |source| Error::Connect {
            endpoint: name.clone(),
            source,
        };
        let connecting = async {
            match &endpoint {
                Endpoint::Unix(path) => tokio::net::UnixStream::connect(path)
                    .await
                    .map(|s| Client::from_stream(s, name.clone(), options.clone())),
                Endpoint::Tcp { host, port } => {
                    let stream = tokio::net::TcpStream::connect((host.as_str(), *port)).await?;
                    // Requests are small and latency matters more than packet count.
                    stream.set_nodelay(true)?;
                    Ok(Client::from_stream(stream, name.clone(), options.clone()))
                }
            }
        };
        match tokio::time::timeout(options.connect_timeout, connecting).await {
            Ok(result) => result.map_err(connect_error),
            Err(_) => Err(Error::ConnectTimeout {
                endpoint: name.clone(),
                timeout: options.connect_timeout,
            }),
        }
    }

    /// Runs the protocol over an already-connected stream (for transports this crate does
    /// not dial itself, and for tests). `name` is used in error messages.
    pub fn from_stream<S>(stream: S, name: impl Into<String>, options: ClientOptions) -> Client
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (outgoing_tx, outgoing_rx) = mpsc::unbounded_channel();
        let (shutdown_tx, shutdown_rx) = oneshot::channel();
        let shared = Arc::new(Shared {
            endpoint: name.into(),
            next_id: AtomicU64::new(1),
            state: Mutex::new(ConnectionState::default()),
            outgoing: outgoing_tx,
            outgoing_room: Arc::new(Semaphore::new(budget_permits(options.max_outgoing_queue))),
            stats: StatsCounters::default(),
            options,
        });
        tokio::spawn(run_connection(
            stream,
            Arc::clone(&shared),
            outgoing_rx,
            shutdown_rx,
        ));
        Client {
            handle: Arc::new(Handle {
                shared,
                _shutdown: shutdown_tx,
            }),
        }
    }

    fn shared(&self) -> &Shared {
        &self.handle.shared
    }

    /// The endpoint this client is connected to.
    pub fn endpoint(&self) -> &str {
        &self.shared().endpoint
    }

    /// The options in effect.
    pub fn options(&self) -> &ClientOptions {
        &self.shared().options
    }

    /// Why the connection ended, or `None` while it is open.
    pub fn closed_reason(&self) -> Option<Arc<ConnectionError>> {
        self.shared().lock().closed.clone()
    }

    /// Traffic counters.
    pub fn stats(&self) -> ClientStats {
        let s = &self.shared().stats;
        ClientStats {
            messages_received: s.messages_received.load(Ordering::Relaxed),
            echo_requests_answered: s.echo_requests_answered.load(Ordering::Relaxed),
            unclaimed_replies: s.unclaimed_replies.load(Ordering::Relaxed),
        }
    }

    /// Calls any method with raw JSON parameters and returns the raw `result`, using the
    /// default request timeout.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, Error> {
        self.call_with_timeout(method, params, self.options().request_timeout)
            .await
    }

    /// Like [`call`](Self::call) with an explicit timeout (`None`: wait as long as the
    /// connection lives).
    pub async fn call_with_timeout(
        &self,
        method: &str,
        params: Value,
        timeout: Option<Duration>,
    ) -> Result<Value, Error> {
        self.request(method, params, timeout, false).await
    }

    async fn request(
        &self,
        method: &str,
        params: Value,
        timeout: Option<Duration>,
        cancel_on_abandon: bool,
    ) -> Result<Value, Error> {
        let shared = self.shared();
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let (reply_tx, reply_rx) = oneshot::channel();
        {
            let mut state = shared.lock();
            if state.closed.is_some() {
                drop(state);
                return Err(shared.connection_lost(method));
            }
            state.pending.insert(id, reply_tx);
        }
        let mut pending = PendingCall {
            shared,
            id,
            // Nothing to cancel on the server until the request has been queued.
            cancel_on_abandon: false,
            armed: true,
        };
        let message = Message::Request {
            id: json!(id),
            method: method.to_owned(),
            params,
        };
        // Waiting for room in the outgoing queue counts against the call's timeout.
        let exchange = async {
            if shared.queue(message.encode()).await.is_err() {
                return None;
            }
            pending.cancel_on_abandon = cancel_on_abandon;
            Some(reply_rx.await)
        };
        let outcome = match timeout {
            None => exchange.await,
            Some(limit) => match tokio::time::timeout(limit, exchange).await {
                Ok(outcome) => outcome,
                Err(_) => {
                    return Err(Error::Timeout {
                        endpoint: shared.endpoint.clone(),
                        method: method.to_owned(),
                        timeout: limit,
                    })
                }
            },
        };
        pending.armed = false;
        match outcome {
            Some(Ok(Ok(result))) => Ok(result),
            Some(Ok(Err(error))) => Err(Error::Rpc {
                endpoint: shared.endpoint.clone(),
                method: method.to_owned(),
                error: Box::new(RpcError::from_json(error)),
            }),
            // The request could not be queued, or the reader dropped the reply slot: the
            // connection ended.
            None | Some(Err(_)) => Err(shared.connection_lost(method)),
        }
    }

    fn bad_reply(&self, method: &str, source: DataError) -> Error {
        Error::BadReply {
            endpoint: self.endpoint().to_owned(),
            method: method.to_owned(),
            source: Box::new(source),
        }
    }

    /// `list_dbs`: the databases the server holds (e.g. `Open_vSwitch`, `_Server`).
    pub async fn list_dbs(&self) -> Result<Vec<String>, Error> {
        let result = self.call("list_dbs", json!([])).await?;
        result
            .as_array()
            .and_then(|names| {
                names
                    .iter()
                    .map(|n| n.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
            })
            .ok_or_else(|| {
                self.bad_reply(
                    "list_dbs",
                    DataError::malformed("list_dbs result", "expected an array of strings"),
                )
            })
    }

    /// `get_schema`: the schema of one database.
    pub async fn get_schema(&self, database: &str) -> Result<DatabaseSchema, Error> {
        let result = self.call("get_schema", json!([database])).await?;
        DatabaseSchema::from_json(&result).map_err(|e| self.bad_reply("get_schema", e))
    }

    /// `echo`: the server returns the parameters unchanged. Useful as a liveness check.
    pub async fn echo(&self, payload: Vec<Value>) -> Result<Vec<Value>, Error> {
        let result = self.call("echo", Value::Array(payload)).await?;
        match result {
            Value::Array(items) => Ok(items),
            other => Err(self.bad_reply(
                "echo",
                DataError::malformed(
                    "echo result",
                    format!("expected an array, found {}", abbreviate_json(&other)),
                ),
            )),
        }
    }

    /// `transact`: runs operations atomically and returns one result per operation.
    ///
    /// If any operation fails, nothing is applied and the error is
    /// [`Error::Transaction`] naming the failing operation's index (or the commit, when
    /// every operation succeeded but a constraint check at commit did not).
    ///
    /// Dropping the returned future abandons the call: its reply is discarded, and the
    /// server is sent a `cancel` for it.
    pub async fn transact(
        &self,
        database: &str,
        operations: impl IntoIterator<Item = Operation>,
    ) -> Result<Vec<OperationResult>, Error> {
        let operations: Vec<Operation> = operations.into_iter().collect();
        let mut params = Vec::with_capacity(operations.len() + 1);
        params.push(json!(database));
        params.extend(operations.iter().map(Operation::to_json));
        let result = self
            .request(
                "transact",
                Value::Array(params),
                self.options().request_timeout,
                true,
            )
            .await?;
        match interpret_transact_reply(&result, &operations) {
            Ok(results) => Ok(results),
            Err(TransactReplyError::Failed(failure)) => Err(Error::Transaction {
                endpoint: self.endpoint().to_owned(),
                database: database.to_owned(),
                failure: Box::new(failure),
            }),
            Err(TransactReplyError::Malformed(e)) => Err(self.bad_reply("transact", e)),
        }
    }

    /// `monitor` (RFC 7047): the current contents of the requested tables, then a stream
    /// of `update` notifications with old and new row values.
    pub async fn monitor(
        &self,
        database: &str,
        requests: &[MonitorRequest],
    ) -> Result<Monitor<TableUpdates>, Error> {
        self.start_monitor("monitor", database, monitor_requests_json(requests, false))
            .await
    }

    /// `monitor_cond` (ovsdb-server 2.6+): like [`monitor`](Self::monitor) with per-table
    /// conditions and the more compact `update2` notifications, whose modifications carry
    /// only diffs (apply them with [`TableReplica`](crate::TableReplica)).
    pub async fn monitor_cond(
        &self,
        database: &str,
        requests: &[MonitorRequest],
    ) -> Result<Monitor<TableUpdates2>, Error> {
        self.start_monitor(
            "monitor_cond",
            database,
            monitor_requests_json(requests, true),
        )
        .await
    }

    async fn start_monitor<U: UpdateFormat>(
        &self,
        method: &'static str,
        database: &str,
        requests: Value,
    ) -> Result<Monitor<U>, Error> {
        let shared = self.shared();
        let monitor_id = format!(
            "nodedoc-monitor-{}",
            shared.next_id.fetch_add(1, Ordering::Relaxed)
        );
        // Unbounded as a channel, bounded by the backlog semaphore: every update holds
        // permits until the consumer takes it.
        let (tx, rx) = mpsc::unbounded_channel();
        let lagged = Arc::new(AtomicBool::new(false));
        {
            let mut state = shared.lock();
            if state.closed.is_some() {
                drop(state);
                return Err(shared.connection_lost(method));
            }
            // Registered before the request goes out, so no notification can arrive for a
            // monitor the reader does not know yet.
            state.monitors.insert(
                monitor_id.clone(),
                MonitorSlot {
                    sender: tx,
                    backlog: Arc::new(Semaphore::new(budget_permits(
                        shared.options.max_monitor_backlog,
                    ))),
                    lagged: Arc::clone(&lagged),
                },
            );
        }
        // From here on, dropping `updates` (error or cancellation) unregisters the monitor
        // and, if the server may have created it, cancels it there too.
        let mut updates = MonitorUpdates {
            client: self.clone(),
            monitor_id: monitor_id.clone(),
            method,
            receiver: rx,
            lagged,
            cancel_on_drop: true,
            finished: false,
            format: PhantomData,
        };
        let result = match self
            .call(method, json!([database, monitor_id, requests]))
            .await
        {
            Ok(result) => result,
            Err(e) => {
                // An error reply means the server created nothing to cancel.
                if matches!(e, Error::Rpc { .. }) {
                    updates.cancel_on_drop = false;
                }
                return Err(e);
            }
        };
        let initial = U::parse(&result).map_err(|e| self.bad_reply(method, e))?;
        Ok(Monitor { initial, updates })
    }
}

enum TransactReplyError {
    Failed(OperationFailure),
    Malformed(DataError),
}

fn interpret_transact_reply(
    result: &Value,
    operations: &[Operation],
) -> Result<Vec<OperationResult>, TransactReplyError> {
    let malformed = |reason: String| {
        TransactReplyError::Malformed(DataError::malformed("transact result", reason))
    };
    let Value::Array(elements) = result else {
        return Err(malformed(format!(
            "expected an array, found {}",
            abbreviate_json(result)
        )));
    };
    // The first element carrying an "error" is the failure: the failing operation's slot,
    // or the extra element after the last operation when the commit failed.
    for (index, element) in elements.iter().enumerate() {
        let Some(error) = element.get("error").filter(|e| !e.is_null()) else {
            continue;
        };
        let text = |key: &str| element.get(key).and_then(Value::as_str).map(str::to_owned);
        return Err(TransactReplyError::Failed(OperationFailure {
            index,
            operation: operations.get(index).map(|op| op.name().to_owned()),
            error: error
                .as_str()
                .map_or_else(|| error.to_string(), str::to_owned),
            details: text("details"),
            syntax: text("syntax"),
        }));
    }
    if elements.len() != operations.len() {
        return Err(malformed(format!(
            "{} results for {} operations and no error",
            elements.len(),
            operations.len()
        )));
    }
    elements
        .iter()
        .enumerate()
        .map(|(i, e)| OperationResult::from_json(e, i).map_err(TransactReplyError::Malformed))
        .collect()
}

/// The two notification formats a monitor can deliver. Sealed: implemented by
/// [`TableUpdates`] (`monitor`) and [`TableUpdates2`] (`monitor_cond`).
pub trait UpdateFormat: sealed::Sealed + Sized {
    /// Parses a reply or notification payload.
    fn parse(json: &Value) -> Result<Self, DataError>;
    /// The notification method that carries this format.
    const NOTIFICATION: &'static str;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for crate::monitor::TableUpdates {}
    impl Sealed for crate::monitor::TableUpdates2 {}
}

impl UpdateFormat for TableUpdates {
    fn parse(json: &Value) -> Result<Self, DataError> {
        TableUpdates::from_json(json)
    }
    const NOTIFICATION: &'static str = "update";
}

impl UpdateFormat for TableUpdates2 {
    fn parse(json: &Value) -> Result<Self, DataError> {
        TableUpdates2::from_json(json)
    }
    const NOTIFICATION: &'static str = "update2";
}

/// An established monitor: the state when it started, and the stream of later changes.
#[derive(Debug)]
pub struct Monitor<U> {
    /// The monitored rows as they were when the monitor started (the reply to the monitor
    /// request).
    pub initial: U,
    /// Later changes.
    pub updates: MonitorUpdates<U>,
}

/// The changes a monitor reports, in commit order.
///
/// Ends with an error item when the connection is lost, the server cancels the monitor, or
/// the consumer fell more than
/// [`ClientOptions::max_monitor_backlog`] behind ([`Error::MonitorLagged`]), then yields
/// `None`. Dropping it sends `monitor_cancel` without waiting; use
/// [`cancel`](Self::cancel) to wait for the server's confirmation. Also a
/// [`futures_core::Stream`].
pub struct MonitorUpdates<U> {
    client: Client,
    monitor_id: String,
    method: &'static str,
    receiver: mpsc::UnboundedReceiver<MonitorMessage>,
    /// Set by the reader when the backlog overflowed: reported ahead of what is queued.
    lagged: Arc<AtomicBool>,
    cancel_on_drop: bool,
    finished: bool,
    format: PhantomData<fn() -> U>,
}

impl<U> std::fmt::Debug for MonitorUpdates<U> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MonitorUpdates")
            .field("endpoint", &self.client.endpoint())
            .field("monitor_id", &self.monitor_id)
            .field("finished", &self.finished)
            .finish()
    }
}

impl<U: UpdateFormat> MonitorUpdates<U> {
    /// The monitor's `<json-value>` identifier.
    pub fn monitor_id(&self) -> &str {
        &self.monitor_id
    }

    /// The connection the monitor runs on.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The next change; `None` after the stream has ended.
    pub async fn next(&mut self) -> Option<Result<U, Error>> {
        std::future::poll_fn(|cx| self.poll_update(cx)).await
    }

    fn poll_update(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<U, Error>>> {
        if self.finished {
            return Poll::Ready(None);
        }
        let endpoint = self.client.endpoint().to_owned();
        if self.lagged.load(Ordering::Acquire) {
            // Updates were lost: the ones still queued are of no use, and their memory goes
            // back now.
            self.finish();
            self.receiver.close();
            while self.receiver.try_recv().is_ok() {}
            return Poll::Ready(Some(Err(Error::MonitorLagged {
                endpoint,
                monitor_id: self.monitor_id.clone(),
                limit: self.client.options().max_monitor_backlog,
            })));
        }
        let message = match self.receiver.poll_recv(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(message) => message,
        };
        Poll::Ready(match message {
            Some(MonitorMessage::Update(json, backlog)) => {
                drop(backlog);
                Some(U::parse(&json).map_err(|source| Error::BadReply {
                    endpoint,
                    method: U::NOTIFICATION.to_owned(),
                    source: Box::new(source),
                }))
            }
            Some(MonitorMessage::Lagged) => {
                self.finish();
                Some(Err(Error::MonitorLagged {
                    endpoint,
                    monitor_id: self.monitor_id.clone(),
                    limit: self.client.options().max_monitor_backlog,
                }))
            }
            Some(MonitorMessage::Canceled) => {
                self.finish();
                Some(Err(Error::MonitorCanceled {
                    endpoint,
                    monitor_id: self.monitor_id.clone(),
                }))
            }
            Some(MonitorMessage::Closed(source)) => {
                self.finish();
                Some(Err(Error::ConnectionLost {
                    endpoint,
                    method: self.method.to_owned(),
                    source,
                }))
            }
            None => {
                self.finish();
                None
            }
        })
    }

    fn finish(&mut self) {
        self.finished = true;
        self.cancel_on_drop = false;
    }

    /// Sends `monitor_cancel` and waits for the server to confirm.
    pub async fn cancel(mut self) -> Result<(), Error> {
        self.cancel_on_drop = false;
        self.client
            .shared()
            .lock()
            .monitors
            .remove(&self.monitor_id);
        self.client
            .call("monitor_cancel", json!([self.monitor_id]))
            .await
            .map(drop)
    }
}

impl<U> Drop for MonitorUpdates<U> {
    fn drop(&mut self) {
        let shared = self.client.shared();
        shared.lock().monitors.remove(&self.monitor_id);
        if self.cancel_on_drop {
            shared.send_fire_and_forget("monitor_cancel", json!([self.monitor_id]));
        }
    }
}

impl<U: UpdateFormat> futures_core::Stream for MonitorUpdates<U> {
    type Item = Result<U, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // MonitorUpdates is Unpin (all fields are), so this is a plain reborrow.
        self.get_mut().poll_update(cx)
    }
}

async fn run_connection<S>(
    stream: S,
    shared: Arc<Shared>,
    mut outgoing: mpsc::UnboundedReceiver<Outgoing>,
    shutdown: oneshot::Receiver<()>,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (reader, writer) = tokio::io::split(stream);
    let reason = tokio::select! {
        reason = read_messages(reader, &shared) => reason,
        reason = write_messages(writer, &mut outgoing) => reason,
        // Fires when the last handle is dropped (the sender is dropped, never used).
        _ = shutdown => ConnectionError::ClosedByClient,
    };
    let reason = Arc::new(reason);
    let mut state = shared.lock();
    state.closed = Some(Arc::clone(&reason));
    // Dropping the reply senders wakes every waiting call with "connection lost", and
    // closing the queue's room wakes calls still waiting to be queued.
    state.pending.clear();
    shared.outgoing_room.close();
    for (_, monitor) in state.monitors.drain() {
        let _ = monitor
            .sender
            .send(MonitorMessage::Closed(Arc::clone(&reason)));
    }
    drop(state);
    // What was queued and never written goes now, not when the last handle does.
    outgoing.close();
    while outgoing.try_recv().is_ok() {}
}

async fn write_messages<W: AsyncWrite>(
    writer: W,
    outgoing: &mut mpsc::UnboundedReceiver<Outgoing>,
) -> ConnectionError {
    let mut writer = std::pin::pin!(BufWriter::new(writer));
    loop {
        let Some(first) = outgoing.recv().await else {
            return ConnectionError::ClosedByClient;
        };
        let mut batch = Some(first);
        // Write everything already queued before flushing, one syscall for a burst. Each
        // message gives its room in the queue back once written.
        while let Some(message) = batch {
            if let Err(e) = writer.write_all(&message.bytes).await {
                return ConnectionError::Io(e);
            }
            drop(message);
            batch = outgoing.try_recv().ok();
        }
        if let Err(e) = writer.flush().await {
            return ConnectionError::Io(e);
        }
    }
}

async fn read_messages<R: AsyncRead>(reader: R, shared: &Shared) -> ConnectionError {
    let mut reader = std::pin::pin!(reader);
    let mut splitter = JsonStreamSplitter::new(shared.options.max_message_size)
        .with_max_decoded_size(shared.options.max_decoded_size);
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        loop {
            match splitter.next_message() {
                Ok(Some(bytes)) => {
                    let decoded = Message::decode(&bytes);
                    // The bytes are not needed once decoded.
                    drop(bytes);
                    let outcome = decoded
                        .map_err(ConnectionError::Decode)
                        .and_then(|message| {
                            dispatch(message, splitter.last_decoded_estimate(), shared)
                        });
                    if let Err(e) = outcome {
                        return e;
                    }
                }
                Ok(None) => break,
                Err(e) => return ConnectionError::Frame(e),
            }
        }
        match reader.read(&mut buffer).await {
            Ok(0) => {
                return match splitter.finish() {
                    Ok(()) => ConnectionError::Eof,
                    Err(e) => ConnectionError::Frame(e),
                }
            }
            Ok(n) => splitter.push(&buffer[..n]),
            Err(e) => return ConnectionError::Io(e),
        }
    }
}

/// Routes one message. `cost` is its estimated decoded size, charged to a monitor's backlog
/// while its update waits for the consumer.
fn dispatch(message: Message, cost: usize, shared: &Shared) -> Result<(), ConnectionError> {
    let stats = &shared.stats;
    stats.messages_received.fetch_add(1, Ordering::Relaxed);
    match message {
        Message::Response { id, result, error } => {
            let waiting = id.as_u64().and_then(|id| shared.lock().pending.remove(&id));
            let reply = if error.is_null() {
                Ok(result)
            } else {
                Err(error)
            };
            if waiting.is_none_or(|tx| tx.send(reply).is_err()) {
                stats.unclaimed_replies.fetch_add(1, Ordering::Relaxed);
            }
        }
        Message::Request { id, method, params } => {
            // ovsdb-server sends "echo" as its inactivity probe and drops clients that do
            // not answer. No other server-to-client request exists, but JSON-RPC requires
            // an answer to every request, so others get an error.
            let echo = method == "echo";
            let reply = if echo {
                Message::Response {
                    id,
                    result: params,
                    error: Value::Null,
                }
            } else {
                Message::Response {
                    id,
                    result: Value::Null,
                    error: json!({"error": "unknown method", "details": method}),
                }
            };
            // The reply is owed, and the reader cannot wait for room without stopping reading
            // everything else: no room means the server sends requests without reading.
            if shared.try_queue(reply.encode()).is_err() {
                return Err(ConnectionError::PeerNotReading {
                    limit: shared.options.max_outgoing_queue,
                });
            }
            if echo {
                stats.echo_requests_answered.fetch_add(1, Ordering::Relaxed);
            }
        }
        Message::Notification { method, params } => {
            let Value::Array(params) = params else {
                return Ok(());
            };
            let mut params = params.into_iter();
            let (monitor_id, updates) = match (method.as_str(), params.len()) {
                ("update" | "update2", 2) => (params.next(), params.next()),
                // update3 (monitor_cond_since) carries the last transaction id in between.
                ("update3", 3) => (params.next(), params.nth(1)),
                ("monitor_canceled", 1) => {
                    if let Some(Value::String(monitor_id)) = params.next() {
                        if let Some(monitor) = shared.lock().monitors.remove(&monitor_id) {
                            let _ = monitor.sender.send(MonitorMessage::Canceled);
                        }
                    }
                    return Ok(());
                }
                // Lock notifications ("locked", "stolen") and anything newer are not used.
                _ => return Ok(()),
            };
            let (Some(Value::String(monitor_id)), Some(updates)) = (monitor_id, updates) else {
                return Ok(());
            };
            deliver_update(shared, &monitor_id, updates, cost);
        }
    }
    Ok(())
}

/// Queues an update for its monitor, within the monitor's backlog. A monitor whose consumer
/// has fallen that far behind is failed (the consumer learns it next) and unregistered, and
/// the server is asked to cancel it.
fn deliver_update(shared: &Shared, monitor_id: &str, updates: Value, cost: usize) {
    let mut state = shared.lock();
    let Some(monitor) = state.monitors.get(monitor_id) else {
        // Unknown (never ours, or already dropped): nothing to keep.
        return;
    };
    let permits = charge(cost, shared.options.max_monitor_backlog);
    match Arc::clone(&monitor.backlog).try_acquire_many_owned(permits) {
        Ok(backlog) => {
            if monitor
                .sender
                .send(MonitorMessage::Update(updates, backlog))
                .is_err()
            {
                state.monitors.remove(monitor_id);
            }
        }
        Err(_) => {
            if let Some(monitor) = state.monitors.remove(monitor_id) {
                monitor.lagged.store(true, Ordering::Release);
                let _ = monitor.sender.send(MonitorMessage::Lagged);
            }
            drop(state);
            shared.send_fire_and_forget("monitor_cancel", json!([monitor_id]));
        }
    }
}

/// Reads the rows of a select result into typed values. Shared by the typed helpers.
pub(crate) fn rows_of(results: &[OperationResult], index: usize) -> &[Row] {
    results.get(index).map_or(&[], OperationResult::rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{Select, Wait, WaitUntil};

    fn ops(n: usize) -> Vec<Operation> {
        (0..n).map(|_| Select::new("Bridge").into()).collect()
    }

    #[test]
    fn transact_reply_failure_at_an_operation_index() {
        let operations: Vec<Operation> = vec![
            Wait::new("Bridge", ["name"], WaitUntil::Equal, vec![]).into(),
            Operation::comment("x"),
        ];
        let reply =
            json!([{"details": "\"where\" clause test failed", "error": "timed out"}, null]);
        let Err(TransactReplyError::Failed(f)) = interpret_transact_reply(&reply, &operations)
        else {
            panic!("expected a failure");
        };
        assert_eq!(f.index, 0);
        assert_eq!(f.operation.as_deref(), Some("wait"));
        assert_eq!(f.error, "timed out");
        assert!(f
            .to_string()
            .starts_with("operation 0 (wait) failed: timed out"));
    }

    #[test]
    fn transact_reply_failure_in_the_extra_commit_element() {
        let reply = json!([{"uuid": ["uuid", "4409079f-aba9-4718-9ad5-2d16f86de7e3"]},
                           {"error": "constraint violation", "details": "too many rows"}]);
        let Err(TransactReplyError::Failed(f)) = interpret_transact_reply(&reply, &ops(1)) else {
            panic!("expected a failure");
        };
        assert_eq!(f.index, 1);
        assert_eq!(f.operation, None);
        assert!(f
            .to_string()
            .starts_with("commit after 1 operations failed"));
    }

    #[test]
    fn transact_reply_shape_errors_are_malformed_not_panics() {
        for reply in [
            json!({}),
            json!([{}]),
            json!([1, 2]),
            json!([{"rows": 5}, {}]),
        ] {
            assert!(matches!(
                interpret_transact_reply(&reply, &ops(2)),
                Err(TransactReplyError::Malformed(_))
            ));
        }
    }
}
