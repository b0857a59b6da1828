use serde::{Deserialize, Serialize};

use crate::Severity;

/// What a rule's finding is, after node-problem-detector's rule types.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleKind {
    /// Something happened (NPD's `temporary`): each matching line is an event; the finding
    /// stays open while lines keep matching and resolves after the agent's
    /// `resolve_after_rounds` rounds without one.
    #[default]
    Event,
    /// The node is in a state that does not heal by itself (NPD's `permanent`, e.g. a
    /// filesystem remounted read-only): the finding stays open until the node reboots.
    Condition,
}

/// A match as owned data, for the agent's findings and JSON output. Texts are raw (lossy
/// UTF-8, control characters kept): escape them when showing them on a terminal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleMatch {
    /// The rule id (the finding's detector).
    pub rule: String,
    /// Event or condition.
    pub kind: RuleKind,
    /// The rule's severity.
    pub severity: Severity,
    /// The rendered summary.
    pub summary: String,
    /// The rendered explanation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
    /// The rendered fix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// The log the line came from.
    pub source: String,
    /// 1-based line number.
    pub line_number: u64,
    /// Byte offset of the line.
    pub offset: u64,
    /// The line (at most 1 KiB of it).
    pub line: String,
    /// True when the line was longer than the matching cap.
    pub truncated: bool,
}
