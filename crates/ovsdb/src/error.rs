//! Every way an OVSDB call can fail, as typed errors that carry enough context (endpoint,
//! method, database, operation index) to be reported without the caller adding more.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::endpoint::EndpointError;
use crate::framing::{human_bytes, FrameError};
use crate::jsonrpc::DecodeError;

/// The error type of [`Client`](crate::Client) calls and the helpers built on them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The endpoint string could not be parsed.
    #[error(transparent)]
    InvalidEndpoint(#[from] EndpointError),

    /// The socket could not be connected.
    #[error("cannot connect to OVSDB at {endpoint}: {source}")]
    Connect {
        /// The endpoint, as OVS would spell it.
        endpoint: String,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },

    /// Connecting took longer than the configured connect timeout.
    #[error("connecting to OVSDB at {endpoint} timed out after {timeout:?}")]
    ConnectTimeout {
        /// The endpoint, as OVS would spell it.
        endpoint: String,
        /// The timeout that expired.
        timeout: Duration,
    },

    /// The connection was lost before (or while) the call completed.
    #[error("{method} on {endpoint}: connection lost: {source}")]
    ConnectionLost {
        /// The endpoint, as OVS would spell it.
        endpoint: String,
        /// The JSON-RPC method that was being called.
        method: String,
        /// Why the connection ended; shared by every call that was waiting on it.
        #[source]
        source: Arc<ConnectionError>,
    },

    /// The server did not answer within the request timeout. The connection stays usable: a
    /// late reply is discarded.
    #[error("{method} on {endpoint}: no reply within {timeout:?}")]
    Timeout {
        /// The endpoint, as OVS would spell it.
        endpoint: String,
        /// The JSON-RPC method that was being called.
        method: String,
        /// The timeout that expired.
        timeout: Duration,
    },

    /// The server answered the call with a JSON-RPC error (for example "unknown database").
    #[error("{method} on {endpoint} failed: {error}")]
    Rpc {
        /// The endpoint, as OVS would spell it.
        endpoint: String,
        /// The JSON-RPC method that was called.
        method: String,
        /// The server's error (boxed to keep `Error` small).
        error: Box<RpcError>,
    },

    /// A `transact` was answered, but one of its operations (or the final commit) failed, so
    /// none of its changes were applied.
    #[error("transact on {endpoint} (database {database}): {failure}")]
    Transaction {
        /// The endpoint, as OVS would spell it.
        endpoint: String,
        /// The database the transaction ran against.
        database: String,
        /// Which operation failed and why (boxed to keep `Error` small).
        failure: Box<OperationFailure>,
    },

    /// The server's reply did not have the shape RFC 7047 prescribes for the method.
    #[error("{method} on {endpoint}: malformed reply: {source}")]
    BadReply {
        /// The endpoint, as OVS would spell it.
        endpoint: String,
        /// The JSON-RPC method that was called.
        method: String,
        /// What was wrong with it.
        #[source]
        source: Box<DataError>,
    },

    /// The server cancelled a monitor on its own (`monitor_canceled`, sent when the
    /// monitored database is removed).
    #[error("monitor {monitor_id} on {endpoint} was canceled by the server")]
    MonitorCanceled {
        /// The endpoint, as OVS would spell it.
        endpoint: String,
        /// The monitor's `<json-value>` identifier.
        monitor_id: String,
    },

    /// The monitor's consumer fell behind: more than `limit` bytes (estimated decoded size)
    /// of its updates were waiting to be taken, so later ones were dropped and the monitor
    /// was cancelled. Only a fresh initial state (a new monitor) is correct after this.
    #[error(
        "monitor {monitor_id} on {endpoint} fell behind: its updates waiting to be taken passed \
         the {} limit (max_monitor_backlog), so later ones were dropped; start over from a \
         fresh initial state",
        human_bytes(*limit)
    )]
    MonitorLagged {
        /// The endpoint, as OVS would spell it.
        endpoint: String,
        /// The monitor's `<json-value>` identifier.
        monitor_id: String,
        /// The configured backlog limit, in bytes.
        limit: usize,
    },

    /// Data returned by the server could not be turned into the requested typed view.
    #[error("{endpoint}: {source}")]
    Data {
        /// The endpoint, as OVS would spell it.
        endpoint: String,
        /// What did not fit.
        #[source]
        source: Box<DataError>,
    },
}

impl Error {
    /// True when the error means the connection is gone (and a reconnect may help), as
    /// opposed to an error in the request or its data.
    pub fn is_connection_error(&self) -> bool {
        matches!(
            self,
            Error::Connect { .. }
                | Error::ConnectTimeout { .. }
                | Error::ConnectionLost { .. }
                | Error::MonitorCanceled { .. }
                | Error::MonitorLagged { .. }
        )
    }
}

/// Why a connection ended. One value is shared (behind an [`Arc`]) by every pending call and
/// monitor of that connection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectionError {
    /// Reading from or writing to the socket failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The server closed the connection cleanly between two messages.
    #[error("the server closed the connection")]
    Eof,
    /// The byte stream could not be split into messages.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// A complete message was not valid JSON-RPC.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// Every [`Client`](crate::Client) handle and monitor was dropped.
    #[error("the client closed the connection")]
    ClosedByClient,
    /// The server kept sending requests (such as `echo`) without reading the replies, until
    /// the replies owed to it filled the outgoing queue.
    #[error(
        "the server sends requests without reading the replies: the {} outgoing queue is \
         full (max_outgoing_queue)",
        human_bytes(*limit)
    )]
    PeerNotReading {
        /// The configured limit of the outgoing queue, in bytes.
        limit: usize,
    },
}

/// A JSON-RPC `error` member, as ovsdb-server sends it: either an object with `error` and
/// `details` strings (RFC 7047 section 3.1) or, for some methods in ovsdb-server 3.1, a bare
/// string such as `"unknown monitor"`.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    /// The short error tag, e.g. `"unknown database"`.
    pub error: String,
    /// The human-readable explanation, when the server sent one.
    pub details: Option<String>,
    /// The `error` member exactly as received.
    pub raw: Value,
}

impl RpcError {
    /// Interprets the `error` member of a JSON-RPC response.
    pub fn from_json(raw: Value) -> Self {
        let (error, details) = match &raw {
            Value::String(s) => (s.clone(), None),
            Value::Object(map) => (
                map.get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown error")
                    .to_owned(),
                map.get("details")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            ),
            other => (other.to_string(), None),
        };
        RpcError {
            error,
            details,
            raw,
        }
    }
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.error)?;
        if let Some(details) = &self.details {
            write!(f, " ({details})")?;
        }
        Ok(())
    }
}

/// Which operation of a `transact` failed, and the server's reason.
///
/// RFC 7047 section 4.1.3: the reply array holds an `{"error": …, "details": …}` object at
/// the index of the failing operation (later operations are `null`); when every operation
/// succeeded but the commit itself failed (a constraint or referential-integrity check), the
/// array has one extra element holding that error. `index` is then the number of
/// operations and `operation` is `None`.
#[derive(Debug, Clone, PartialEq)]
pub struct OperationFailure {
    /// Zero-based index into the operations that were sent.
    pub index: usize,
    /// The `op` of the failing operation, or `None` when the commit failed.
    pub operation: Option<String>,
    /// The short error tag, e.g. `"timed out"` or `"constraint violation"`.
    pub error: String,
    /// The server's explanation, when present.
    pub details: Option<String>,
    /// The JSON fragment ovsdb-server could not parse, for `"syntax error"`s.
    pub syntax: Option<String>,
}

impl fmt::Display for OperationFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.operation {
            Some(op) => write!(f, "operation {} ({op}) failed: {}", self.index, self.error)?,
            None => write!(
                f,
                "commit after {} operations failed: {}",
                self.index, self.error
            )?,
        }
        if let Some(details) = &self.details {
            write!(f, ": {details}")?;
        }
        if let Some(syntax) = &self.syntax {
            write!(f, " (in {syntax})")?;
        }
        Ok(())
    }
}

/// OVSDB data (an atom, datum, row, schema or reply) did not have the expected shape.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// A JSON value is not a valid OVSDB atom.
    #[error("invalid OVSDB atom {json}: {reason}")]
    InvalidAtom {
        /// The offending JSON, abbreviated.
        json: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A JSON value is not a valid OVSDB datum (atom, set or map).
    #[error("invalid OVSDB value {json}: {reason}")]
    InvalidDatum {
        /// The offending JSON, abbreviated.
        json: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A string is not a UUID in the 8-4-4-4-12 hexadecimal form.
    #[error("invalid UUID {0:?}")]
    InvalidUuid(String),
    /// A column holds a value of a different type than the typed view expects.
    #[error("{table} row {row} column {column}: expected {expected}, found {found}")]
    WrongType {
        /// The table the row belongs to.
        table: String,
        /// The row's UUID (or `?` when unknown).
        row: String,
        /// The column.
        column: String,
        /// What the typed view wanted.
        expected: &'static str,
        /// What was there, abbreviated.
        found: String,
    },
    /// A monitor update names a column the schema does not have, so it cannot be applied.
    #[error("table {table} has no column {column} in the schema")]
    UnknownColumn {
        /// The table.
        table: String,
        /// The column.
        column: String,
    },
    /// A structure (reply, schema, update) is missing a member or has one of the wrong type.
    #[error("{what}: {reason}")]
    Malformed {
        /// Where in the structure, e.g. `transact reply element 2`.
        what: String,
        /// What is wrong.
        reason: String,
    },
}

impl DataError {
    pub(crate) fn malformed(what: impl Into<String>, reason: impl Into<String>) -> Self {
        DataError::Malformed {
            what: what.into(),
            reason: reason.into(),
        }
    }
}

/// Renders JSON for an error message, cut short so one bad multi-megabyte reply does not
/// become a multi-megabyte error string.
pub(crate) fn abbreviate_json(value: &Value) -> String {
    const LIMIT: usize = 120;
    let mut text = value.to_string();
    if text.len() > LIMIT {
        let mut cut = LIMIT;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}
