//! The machinery of `nodedoc watch`, nodedoc's node agent, that is not collection or
//! detection: turning the findings of each round into events over time, and sending them on.
//!
//! - [`lifecycle`]: a finding seen round after round is one `open`, an `update` when its
//!   severity, chain or facts change, and one `resolve` once it has not been seen for a
//!   configurable number of rounds.
//! - [`state`]: what is open, kept in a file across restarts, so a restarted agent does not
//!   announce again what it already reported.
//! - [`sink`]: where events go, behind one small trait (JSON lines, a terminal, metrics,
//!   Kubernetes later).
//! - [`metrics`] and [`http`]: Prometheus series rendered from the last round's state, on
//!   `/metrics`.
#![deny(missing_docs)]

pub mod http;
pub mod lifecycle;
pub mod metrics;
pub mod sink;
pub mod state;

pub use lifecycle::{Event, EventKind, LifecycleOptions, Scope, Tracker};
pub use metrics::{Metrics, MetricsState};
pub use sink::{JsonLinesSink, Sink, TextSink};
pub use state::{AgentState, StateError};
