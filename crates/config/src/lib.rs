//! nodedoc's configuration file and user log rules.
//!
//! - [`Config`]: the TOML file `nodedoc watch --config FILE` (and `check`) read: detector
//!   thresholds ([`Thresholds`], applied onto `nodedoc_detectors::Config`), detectors switched
//!   off ([`DetectorSwitches`]), the agent's settings ([`AgentSettings`]), and extra logs with
//!   user rules ([`LogRules`]), as node-problem-detector's rule files allow. A file that cannot
//!   be used is a [`ConfigError`] naming file, line and column, with a caret under the spot;
//!   never a panic, and never a key silently ignored.
//! - [`RuleSet`]: compiled user rules; a [`Scanner`] matches them against a stream of log
//!   bytes fed in pieces (a tailed file, kernel records) or a whole reader, and reports each
//!   [`Match`] (rule, line number, offset, captures, rendered summary). See [`rules`] for the
//!   matching semantics and how it keeps up with `grep`.
//!
//! `docs/nodedoc.example.toml` in the repository is a commented example of every key.
#![deny(missing_docs)]

mod config;
mod error;
pub mod rules;
mod span;
mod template;

pub use config::{
    AgentSettings, Config, DetectorSwitches, LogRules, LogSource, OutputFormat, Thresholds,
};
pub use error::{ConfigError, Position};
pub use nodedoc_model::{RuleKind, RuleMatch};
pub use rules::{
    LogEvent, Match, Rule, RuleError, RuleField, RuleSet, RuleSpec, ScanStats, Scanner,
};
pub use template::{Template, MAX_RENDERED_LEN};
