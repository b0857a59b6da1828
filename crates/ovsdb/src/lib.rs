//! An async client for the OVSDB management protocol (RFC 7047), as spoken by
//! `ovsdb-server`, with typed views of the Open vSwitch database.
//!
//! nodedoc uses it to read the bridge → port → interface topology when looking for leaked
//! OVS ports (interfaces whose `ofport` is -1 or that carry an `error`), but nothing here is
//! specific to nodedoc: any OVSDB database (OVN northbound/southbound, VTEP) works through
//! [`Client::transact`] and [`Client::monitor_cond`].
//!
//! # Layers
//! - [`JsonStreamSplitter`] and [`Message`]: OVSDB sends JSON-RPC messages back to back
//!   with no framing; the splitter finds message boundaries, bounded by a maximum size.
//! - [`Client`]: one background task per connection answers the server's `echo` probes,
//!   matches replies to calls and routes `update`/`update2` notifications to monitors.
//!   Calls time out individually and can be dropped without disturbing the connection.
//!   Whatever the server sends, memory stays bounded: message size, decoded size, the
//!   outgoing queue and each monitor's backlog have limits in [`ClientOptions`].
//! - [`Datum`], [`Row`], [`Operation`], [`TableUpdates2`], [`TableReplica`]: OVSDB data and
//!   operations.
//! - [`ReconnectingMonitor`]: a monitor that reconnects with capped exponential backoff and
//!   announces each fresh initial state.
//! - [`OvsDump`], [`dump`]: the Open_vSwitch topology in one consistent read.
//! - `testing` (feature `test-server`): a private `ovsdb-server` for tests.
//!
//! # Example
//! ```no_run
//! use std::time::Duration;
//! use nodedoc_ovsdb::{Client, Select, OPEN_VSWITCH_DB};
//!
//! # async fn demo() -> Result<(), nodedoc_ovsdb::Error> {
//! // Everything at once: bridges, ports and interfaces, joined.
//! let dump = nodedoc_ovsdb::dump("unix:/run/openvswitch/db.sock", Duration::from_secs(5)).await?;
//! for (bridge, port, iface) in dump.interfaces() {
//!     if iface.has_failed() {
//!         println!("{}/{}/{}: {:?}", bridge.name, port.name, iface.name, iface.error);
//!     }
//! }
//!
//! // Or talk to the server directly.
//! let client = Client::connect("unix:/run/openvswitch/db.sock").await?;
//! let results = client
//!     .transact(OPEN_VSWITCH_DB, [Select::new("Bridge").columns(["name"]).into()])
//!     .await?;
//! println!("{} bridges", results[0].rows().len());
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod client;
mod data;
mod endpoint;
mod error;
mod framing;
mod jsonrpc;
mod monitor;
mod ops;
mod reconnect;
mod schema;
mod vswitch;

#[cfg(feature = "test-server")]
pub mod testing;

pub use client::{Client, ClientOptions, ClientStats, Monitor, MonitorUpdates, UpdateFormat};
pub use data::{Atom, Datum, Row, RowReader, Uuid};
pub use endpoint::{Endpoint, EndpointError, IntoEndpoint, DEFAULT_OVSDB_PORT};
pub use error::{ConnectionError, DataError, Error, OperationFailure, RpcError};
pub use framing::{FrameError, JsonStreamSplitter};
pub use jsonrpc::{DecodeError, Message};
pub use monitor::{
    MonitorRequest, MonitorSelect, RowUpdate, RowUpdate2, TableReplica, TableUpdates, TableUpdates2,
};
pub use ops::{
    Condition, Delete, Function, Insert, Mutate, Mutation, Mutator, Operation, OperationResult,
    Select, Update, Wait, WaitUntil,
};
pub use reconnect::{Backoff, MonitorEvent, ReconnectOptions, ReconnectingMonitor};
pub use schema::{
    AtomicType, BaseType, ColumnSchema, ColumnType, DatabaseSchema, RefType, TableSchema,
};
pub use vswitch::{
    dump, Bridge, BridgeTopology, DanglingReference, Interface, OpenVSwitch, OvsDump, Port,
    PortTopology, OPEN_VSWITCH_DB,
};
