//! Findings over time: `open`, `update`, `resolve`.
//!
//! `check` sees one moment; the agent sees the same findings round after round. Repeating
//! them every round would bury the one line that matters, so the [`Tracker`] keeps what is
//! open and turns each round's findings into events:
//!
//! - `open`: a finding not open before;
//! - `update`: an open finding whose severity or chain (causes, consequences) changed — at
//!   once — or whose summary changed, at most once per [`LifecycleOptions::min_update_interval`]
//!   (an fd leak's count changes every round; its rate and ETA matter, not each count);
//! - `resolve`: an open finding absent for [`LifecycleOptions::resolve_after_rounds`]
//!   consecutive rounds that could have seen it. One round is not enough: a process between
//!   two states, a log line not yet repeated, a source that failed once.
//!
//! A round covers a [`Scope`]: a full round runs every detector; a stream (an OVSDB monitor
//! update) re-runs only some, and can only resolve their findings.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, SystemTime};

use nodedoc_model::{Finding, FindingId, Severity};
use serde::{Deserialize, Serialize};

/// What happened to a finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// First seen (or seen again after it was resolved).
    Open,
    /// Still open; its severity, chain or facts changed.
    Update,
    /// No longer seen.
    Resolve,
}

/// One line of `nodedoc watch --format json`:
/// `{"event": "open", "at": "2026-12-01T05:00:00Z", "finding": {…}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// What happened.
    pub event: EventKind,
    /// When, as RFC 3339 UTC.
    #[serde(with = "rfc3339")]
    pub at: SystemTime,
    /// The finding as `check --format json` prints it: the latest seen, for `resolve`.
    pub finding: Finding,
}

/// `SystemTime` as RFC 3339 (`2026-12-01T05:00:00.123Z`).
pub mod rfc3339 {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes as RFC 3339 with milliseconds.
    pub fn serialize<S: Serializer>(at: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_rfc3339_millis(*at))
    }

    /// Parses RFC 3339.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_rfc3339_weak(&text).map_err(serde::de::Error::custom)
    }
}

/// When events are raised.
#[derive(Clone, Debug)]
pub struct LifecycleOptions {
    /// Rounds a finding must be missing from before it resolves (at least 1).
    pub resolve_after_rounds: u32,
    /// Summary-only changes are announced at most this often per finding.
    pub min_update_interval: Duration,
}

impl Default for LifecycleOptions {
    fn default() -> Self {
        LifecycleOptions {
            resolve_after_rounds: 3,
            min_update_interval: Duration::from_secs(300),
        }
    }
}

/// Which detectors ran in a round: only their findings can be resolved by it.
#[derive(Clone, Debug)]
pub enum Scope {
    /// Every detector ran.
    All,
    /// Only these detectors ran (a stream update re-runs the ones that read it).
    Detectors(BTreeSet<String>),
}

impl Scope {
    fn covers(&self, detector: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Detectors(ids) => ids.contains(detector),
        }
    }
}

/// What an open finding is tracked by.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpenFinding {
    /// The finding as last seen.
    pub finding: Finding,
    /// When it was opened.
    #[serde(with = "rfc3339")]
    pub opened_at: SystemTime,
    /// When it was last announced (open or update).
    #[serde(with = "rfc3339")]
    pub announced_at: SystemTime,
    /// Consecutive rounds it was missing from.
    #[serde(default)]
    pub missed_rounds: u32,
}

/// The parts of a finding whose change is announced at once.
fn chain_key(f: &Finding) -> (Severity, BTreeSet<&FindingId>, BTreeSet<&FindingId>) {
    (
        f.severity,
        f.caused_by.iter().collect(),
        f.causes.iter().collect(),
    )
}

/// Open findings and the rules that turn rounds into events.
#[derive(Debug)]
pub struct Tracker {
    options: LifecycleOptions,
    open: HashMap<FindingId, OpenFinding>,
}

impl Tracker {
    /// A tracker with nothing open.
    pub fn new(mut options: LifecycleOptions) -> Tracker {
        options.resolve_after_rounds = options.resolve_after_rounds.max(1);
        Tracker {
            options,
            open: HashMap::new(),
        }
    }

    /// A tracker that continues from findings an earlier run reported open: seeing them
    /// again raises no `open`; not seeing them resolves them as usual.
    pub fn restore(options: LifecycleOptions, open: Vec<OpenFinding>) -> Tracker {
        let mut tracker = Tracker::new(options);
        for entry in open {
            tracker.open.insert(entry.finding.id.clone(), entry);
        }
        tracker
    }

    /// The findings open now, worst first.
    pub fn open_findings(&self) -> Vec<&OpenFinding> {
        let mut open: Vec<&OpenFinding> = self.open.values().collect();
        open.sort_by(|a, b| {
            b.finding
                .severity
                .cmp(&a.finding.severity)
                .then_with(|| a.finding.id.cmp(&b.finding.id))
        });
        open
    }

    /// Takes one round's findings (all the findings of the detectors in `scope`) and returns
    /// the events it raises: opens and updates in the order of `findings`, then resolves.
    pub fn observe(&mut self, scope: &Scope, findings: Vec<Finding>, at: SystemTime) -> Vec<Event> {
        let mut events = Vec::new();
        let mut seen: BTreeSet<FindingId> = BTreeSet::new();
        for finding in findings {
            if !seen.insert(finding.id.clone()) {
                continue;
            }
            match self.open.get_mut(&finding.id) {
                None => {
                    events.push(Event {
                        event: EventKind::Open,
                        at,
                        finding: finding.clone(),
                    });
                    self.open.insert(
                        finding.id.clone(),
                        OpenFinding {
                            finding,
                            opened_at: at,
                            announced_at: at,
                            missed_rounds: 0,
                        },
                    );
                }
                Some(entry) => {
                    entry.missed_rounds = 0;
                    let chain_changed = chain_key(&entry.finding) != chain_key(&finding);
                    let facts_changed = entry.finding.summary != finding.summary;
                    let due = at
                        .duration_since(entry.announced_at)
                        .is_ok_and(|d| d >= self.options.min_update_interval);
                    let announce = chain_changed || (facts_changed && due);
                    entry.finding = finding;
                    if announce {
                        entry.announced_at = at;
                        events.push(Event {
                            event: EventKind::Update,
                            at,
                            finding: entry.finding.clone(),
                        });
                    }
                }
            }
        }
        let mut resolved: Vec<FindingId> = Vec::new();
        for (id, entry) in &mut self.open {
            if seen.contains(id) || !scope.covers(&entry.finding.detector) {
                continue;
            }
            entry.missed_rounds += 1;
            if entry.missed_rounds >= self.options.resolve_after_rounds {
                resolved.push(id.clone());
            }
        }
        resolved.sort();
        for id in resolved {
            if let Some(entry) = self.open.remove(&id) {
                events.push(Event {
                    event: EventKind::Resolve,
                    at,
                    finding: entry.finding,
                });
            }
        }
        events
    }

    /// Everything open, for the state file.
    pub fn snapshot(&self) -> Vec<OpenFinding> {
        self.open_findings().into_iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nodedoc_model::Subject;

    fn finding(detector: &str, pid: i32, severity: Severity, summary: &str) -> Finding {
        Finding::new(
            detector,
            severity,
            Subject::Process {
                pid,
                comm: "x".into(),
            },
            summary,
        )
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_780_000_000 + secs)
    }

    fn kinds(events: &[Event]) -> Vec<(EventKind, String)> {
        events
            .iter()
            .map(|e| (e.event, e.finding.id.to_string()))
            .collect()
    }

    #[test]
    fn a_finding_seen_every_round_is_one_open_and_resolves_after_the_grace_rounds() {
        let mut tracker = Tracker::new(LifecycleOptions::default());
        let f = finding("fd-leak", 7, Severity::Warning, "leaks");
        let first = tracker.observe(&Scope::All, vec![f.clone()], at(0));
        assert_eq!(
            kinds(&first),
            vec![(EventKind::Open, "fd-leak:pid/7".into())]
        );
        for round in 1..=10 {
            assert!(tracker
                .observe(&Scope::All, vec![f.clone()], at(round))
                .is_empty());
        }
        assert!(tracker.observe(&Scope::All, vec![], at(11)).is_empty());
        assert!(tracker.observe(&Scope::All, vec![], at(12)).is_empty());
        let gone = tracker.observe(&Scope::All, vec![], at(13));
        assert_eq!(
            kinds(&gone),
            vec![(EventKind::Resolve, "fd-leak:pid/7".into())]
        );
        assert_eq!(gone[0].finding, f);
        assert!(tracker.open_findings().is_empty());
    }

    #[test]
    fn a_missing_round_then_back_does_not_resolve() {
        let mut tracker = Tracker::new(LifecycleOptions::default());
        let f = finding("hung-task", 9, Severity::Critical, "stuck");
        tracker.observe(&Scope::All, vec![f.clone()], at(0));
        assert!(tracker.observe(&Scope::All, vec![], at(1)).is_empty());
        assert!(tracker.observe(&Scope::All, vec![], at(2)).is_empty());
        assert!(tracker
            .observe(&Scope::All, vec![f.clone()], at(3))
            .is_empty());
        assert!(tracker.observe(&Scope::All, vec![], at(4)).is_empty());
        assert!(tracker.observe(&Scope::All, vec![], at(5)).is_empty());
        assert_eq!(tracker.open_findings().len(), 1);
    }

    #[test]
    fn severity_and_chain_changes_update_at_once_summaries_at_most_every_interval() {
        let mut tracker = Tracker::new(LifecycleOptions::default());
        let f = finding("fd-leak", 7, Severity::Warning, "100 fds");
        tracker.observe(&Scope::All, vec![f.clone()], at(0));
        // The count moves every round: announced once the interval has passed.
        let g = finding("fd-leak", 7, Severity::Warning, "110 fds");
        assert!(tracker.observe(&Scope::All, vec![g], at(10)).is_empty());
        let h = finding("fd-leak", 7, Severity::Warning, "400 fds");
        let events = tracker.observe(&Scope::All, vec![h], at(301));
        assert_eq!(
            kinds(&events),
            vec![(EventKind::Update, "fd-leak:pid/7".into())]
        );
        assert_eq!(events[0].finding.summary, "400 fds");
        // Severity: at once.
        let worse = finding("fd-leak", 7, Severity::Critical, "400 fds");
        let events = tracker.observe(&Scope::All, vec![worse.clone()], at(302));
        assert_eq!(events[0].event, EventKind::Update);
        // A new cause: at once.
        let mut linked = worse;
        linked
            .caused_by
            .push(FindingId("leak-per-event:ovs-interface/ha-1".into()));
        let events = tracker.observe(&Scope::All, vec![linked], at(303));
        assert_eq!(events[0].event, EventKind::Update);
    }

    #[test]
    fn a_partial_round_resolves_only_its_detectors() {
        let mut tracker = Tracker::new(LifecycleOptions {
            resolve_after_rounds: 1,
            ..LifecycleOptions::default()
        });
        let ovs = finding("ovs-orphan-port", 1, Severity::Warning, "orphan");
        let fd = finding("fd-exhaustion", 2, Severity::Critical, "full");
        tracker.observe(&Scope::All, vec![ovs, fd], at(0));
        let scope = Scope::Detectors(["ovs-orphan-port".to_string()].into());
        let events = tracker.observe(&scope, vec![], at(1));
        assert_eq!(
            kinds(&events),
            vec![(EventKind::Resolve, "ovs-orphan-port:pid/1".into())]
        );
        assert_eq!(tracker.open_findings().len(), 1);
    }

    #[test]
    fn restored_findings_are_not_opened_again_and_resolve_when_gone() {
        let f = finding("zombie-processes", 3, Severity::Warning, "zombies");
        let g = finding("fd-exhaustion", 4, Severity::Critical, "full");
        let restored = vec![
            OpenFinding {
                finding: f.clone(),
                opened_at: at(0),
                announced_at: at(0),
                missed_rounds: 0,
            },
            OpenFinding {
                finding: g,
                opened_at: at(0),
                announced_at: at(0),
                missed_rounds: 0,
            },
        ];
        let mut tracker = Tracker::restore(
            LifecycleOptions {
                resolve_after_rounds: 1,
                ..LifecycleOptions::default()
            },
            restored,
        );
        let events = tracker.observe(&Scope::All, vec![f], at(100));
        assert_eq!(
            kinds(&events),
            vec![(EventKind::Resolve, "fd-exhaustion:pid/4".into())]
        );
    }

    #[test]
    fn events_print_as_the_documented_json_line() {
        let f = finding("fd-leak", 7, Severity::Warning, "leaks");
        let event = Event {
            event: EventKind::Open,
            at: SystemTime::UNIX_EPOCH + Duration::from_millis(1_780_000_000_123),
            finding: f,
        };
        let line = serde_json::to_string(&event).unwrap();
        assert!(
            line.starts_with(
                r#"{"event":"open","at":"2026-05-28T20:26:40.123Z","finding":{"id":"fd-leak:pid/7""#
            ),
            "{line}"
        );
        let back: Event = serde_json::from_str(&line).unwrap();
        assert_eq!(back, event);
    }
}
