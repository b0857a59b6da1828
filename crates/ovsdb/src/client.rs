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
//! consumer: monitor notifications are queued without bound.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::{mpsc, oneshot};

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
    /// connection with [`FrameError::Oversized`](crate::FrameError::Oversized). Initial
    /// monitor replies of big OVN databases can exceed the default.
    pub max_message_size: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Some(Duration::from_secs(60)),
            max_message_size: 128 << 20,
        }
    }
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

enum MonitorMessage {
    Update(Value),
    Canceled,
    Closed(Arc<ConnectionError>),
}

#[derive(Default)]
struct ConnectionState {
    pending: HashMap<u64, oneshot::Sender<Reply>>,
    monitors: HashMap<String, mpsc::UnboundedSender<MonitorMessage>>,
    closed: Option<Arc<ConnectionError>>,
}

struct Shared {
    endpoint: String,
    options: ClientOptions,
    next_id: AtomicU64,
    state: Mutex<ConnectionState>,
    outgoing: mpsc::UnboundedSender<Vec<u8>>,
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

    fn send_fire_and_forget(&self, method: &str, params: Value) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let message = Message::Request {
            id: json!(id),
            method: method.to_owned(),
            params,
        };
        let _ = self.outgoing.send(message.encode());
    }
}

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
            let _ = self.shared.outgoing.send(cancel.encode());
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
            cancel_on_abandon,
            armed: true,
        };
        let message = Message::Request {
            id: json!(id),
            method: method.to_owned(),
            params,
        };
        if shared.outgoing.send(message.encode()).is_err() {
            return Err(shared.connection_lost(method));
        }
        let outcome = match timeout {
            None => reply_rx.await,
            Some(limit) => match tokio::time::timeout(limit, reply_rx).await {
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
            Ok(Ok(result)) => Ok(result),
            Ok(Err(error)) => Err(Error::Rpc {
                endpoint: shared.endpoint.clone(),
                method: method.to_owned(),
                error: Box::new(RpcError::from_json(error)),
            }),
            // The reader dropped the reply slot: the connection ended.
            Err(_) => Err(shared.connection_lost(method)),
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
        let (tx, rx) = mpsc::unbounded_channel();
        {
            let mut state = shared.lock();
            if state.closed.is_some() {
                drop(state);
                return Err(shared.connection_lost(method));
            }
            // Registered before the request goes out, so no notification can arrive for a
            // monitor the reader does not know yet.
            state.monitors.insert(monitor_id.clone(), tx);
        }
        // From here on, dropping `updates` (error or cancellation) unregisters the monitor
        // and, if the server may have created it, cancels it there too.
        let mut updates = MonitorUpdates {
            client: self.clone(),
            monitor_id: monitor_id.clone(),
            method,
            receiver: rx,
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
/// Ends with an error item when the connection is lost or the server cancels the monitor,
/// then yields `None`. Dropping it sends `monitor_cancel` without waiting; use
/// [`cancel`](Self::cancel) to wait for the server's confirmation. Also a
/// [`futures_core::Stream`].
pub struct MonitorUpdates<U> {
    client: Client,
    monitor_id: String,
    method: &'static str,
    receiver: mpsc::UnboundedReceiver<MonitorMessage>,
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
        let message = match self.receiver.poll_recv(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(message) => message,
        };
        let endpoint = self.client.endpoint().to_owned();
        Poll::Ready(match message {
            Some(MonitorMessage::Update(json)) => {
                Some(U::parse(&json).map_err(|source| Error::BadReply {
                    endpoint,
                    method: U::NOTIFICATION.to_owned(),
                    source: Box::new(source),
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
    mut outgoing: mpsc::UnboundedReceiver<Vec<u8>>,
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
    // Dropping the reply senders wakes every waiting call with "connection lost".
    state.pending.clear();
    for (_, monitor) in state.monitors.drain() {
        let _ = monitor.send(MonitorMessage::Closed(Arc::clone(&reason)));
    }
}

async fn write_messages<W: AsyncWrite>(
    writer: W,
    outgoing: &mut mpsc::UnboundedReceiver<Vec<u8>>,
) -> ConnectionError {
    let mut writer = std::pin::pin!(BufWriter::new(writer));
    loop {
        let Some(first) = outgoing.recv().await else {
            return ConnectionError::ClosedByClient;
        };
        let mut batch = Some(first);
        // Write everything already queued before flushing, one syscall for a burst.
        while let Some(bytes) = batch {
            if let Err(e) = writer.write_all(&bytes).await {
                return ConnectionError::Io(e);
            }
            batch = outgoing.try_recv().ok();
        }
        if let Err(e) = writer.flush().await {
            return ConnectionError::Io(e);
        }
    }
}

async fn read_messages<R: AsyncRead>(reader: R, shared: &Shared) -> ConnectionError {
    let mut reader = std::pin::pin!(reader);
    let mut splitter = JsonStreamSplitter::new(shared.options.max_message_size);
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        loop {
            match splitter.next_message() {
                Ok(Some(bytes)) => match Message::decode(&bytes) {
                    Ok(message) => dispatch(message, shared),
                    Err(e) => return ConnectionError::Decode(e),
                },
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

fn dispatch(message: Message, shared: &Shared) {
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
            let reply = if method == "echo" {
                stats.echo_requests_answered.fetch_add(1, Ordering::Relaxed);
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
            let _ = shared.outgoing.send(reply.encode());
        }
        Message::Notification { method, params } => {
            let params = params.as_array().map(Vec::as_slice).unwrap_or_default();
            match (method.as_str(), params) {
                ("update" | "update2", [Value::String(monitor_id), updates])
                // update3 (monitor_cond_since) carries the last transaction id in between.
                | ("update3", [Value::String(monitor_id), _, updates]) => {
                    let mut state = shared.lock();
                    if let Some(monitor) = state.monitors.get(monitor_id.as_str()) {
                        if monitor
                            .send(MonitorMessage::Update(updates.clone()))
                            .is_err()
                        {
                            state.monitors.remove(monitor_id.as_str());
                        }
                    }
                }
                ("monitor_canceled", [Value::String(monitor_id)]) => {
                    if let Some(monitor) = shared.lock().monitors.remove(monitor_id.as_str()) {
                        let _ = monitor.send(MonitorMessage::Canceled);
                    }
                }
                // Lock notifications ("locked", "stolen") and anything newer are not used.
                _ => {}
            }
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
