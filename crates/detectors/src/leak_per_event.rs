//! # `leak-per-event`
//!
//! **Signature.** A process's descriptor growth is explained by events on a stream: between
//! two rounds it grows by about k descriptors for every event of one kind, and the relation
//! holds round after round. Seed 000's SREs found it by hand — "every time `deleted interface
//! ha-d489f511-9f` is printed, ovs-vswitchd keeps one more fd" — after ovs-vswitchd had been
//! leaking for days.
//!
//! **Sources.** The agent's history of descriptor counts (see `fd-leak`) and the timestamped
//! events of the streams it reads: ovs-vswitchd.log's `added interface` / `deleted interface`
//! lines, per interface.
//!
//! **Method.** For each process whose count rose, and each event class (kind × interface),
//! the events are counted in every interval between two readings, and the growth of each
//! interval is fitted as `k × events + c` by least squares. The class whose fit is best wins
//! when R² ≥ 0.7, k ≥ 0.5, at least 3 events happened and the events explain most of the growth.
//! Events spread evenly (the same count every interval) leave no variation to fit: then the
//! growth must track the events interval by interval within 25 %.
//!
//! **Evidence.** k per event, the number of events and readings, R², the kind that grows.
//! Linked as the cause of the process's `fd-leak` finding, and caused by the
//! `ovs-port-flapping` / `ovs-orphan-port` findings of the interface.

use std::collections::BTreeMap;

use nodedoc_model::{
    shell_command, Evidence, FdSeries, Finding, OvsLogEventKind, Severity, Subject,
};

use crate::fd_exhaustion::plural;
use crate::fd_leak::{series_growing_kind, series_subject};
use crate::trend::fit_line;
use crate::{duration, thousands, Context, Detector};

/// See the module documentation.
pub struct LeakPerEvent;

/// One kind of event on one subject: `deleted interface ha-d489f511-9f`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct EventClass {
    /// What happened, as the log says it (`deleted interface`).
    what: &'static str,
    /// The interface.
    interface: String,
    /// The bridge, when known.
    bridge: String,
}

/// How well one class explains one series.
struct Explanation {
    per_event: f64,
    r_squared: Option<f64>,
    events: usize,
    intervals: usize,
}

/// Fits the growth of each interval against the events in it.
fn explain(series: &FdSeries, times: &[i64]) -> Option<Explanation> {
    let mut rows: Vec<(f64, f64)> = Vec::new();
    let mut events = 0usize;
    for pair in series.points.windows(2) {
        let (from, to) = (pair[0].at_unix_ms as i64, pair[1].at_unix_ms as i64);
        let in_interval = times.iter().filter(|&&t| t > from && t <= to).count();
        events += in_interval;
        rows.push((
            in_interval as f64,
            pair[1].total as f64 - pair[0].total as f64,
        ));
    }
    if events < 3 || rows.len() < 3 {
        return None;
    }
    let growth: f64 = rows.iter().map(|r| r.1).sum();
    if growth <= 0.0 {
        return None;
    }
    match fit_line(&rows) {
        Some(fit) => {
            // Most of the growth must come from the events, not from the constant.
            let explained = fit.slope * events as f64 / growth;
            (fit.r_squared >= 0.7 && fit.slope >= 0.5 && explained >= 0.7).then_some(Explanation {
                per_event: fit.slope,
                r_squared: Some(fit.r_squared),
                events,
                intervals: rows.len(),
            })
        }
        None => {
            // The same number of events every interval: nothing to regress on. The growth
            // must then follow the events interval by interval.
            let per_event = growth / events as f64;
            let steady = rows.iter().all(|(n, d)| {
                let expected = n * per_event;
                (d - expected).abs() <= 0.25 * expected.max(1.0)
            });
            (per_event >= 0.5 && steady).then_some(Explanation {
                per_event,
                r_squared: None,
                events,
                intervals: rows.len(),
            })
        }
    }
}

impl Detector for LeakPerEvent {
    fn id(&self) -> &'static str {
        "leak-per-event"
    }

    fn detect(&self, cx: &mut Context<'_>) {
        let snapshot = cx.snapshot;
        let Some(history) = &snapshot.history else {
            return;
        };
        // The event classes of the streams read, with their times.
        let mut classes: BTreeMap<EventClass, Vec<i64>> = BTreeMap::new();
        if let Some(log) = snapshot.ovs.as_ref().and_then(|o| o.log.as_ref()) {
            for event in &log.events {
                let Some(at) = event.unix_ms else { continue };
                let class = match &event.kind {
                    OvsLogEventKind::InterfaceAdded {
                        bridge, interface, ..
                    } => EventClass {
                        what: "added interface",
                        interface: interface.clone(),
                        bridge: bridge.clone(),
                    },
                    OvsLogEventKind::InterfaceDeleted {
                        bridge, interface, ..
                    } => EventClass {
                        what: "deleted interface",
                        interface: interface.clone(),
                        bridge: bridge.clone(),
                    },
                    _ => continue,
                };
                classes.entry(class).or_default().push(at);
            }
        }
        if classes.is_empty() {
            return;
        }
        let log_path = snapshot
            .ovs
            .as_ref()
            .and_then(|o| o.log.as_ref())
            .map_or("ovs-vswitchd.log", |l| l.path.as_str());
        for series in &history.fd_series {
            let (Some(first), Some(last)) = (series.points.first(), series.points.last()) else {
                continue;
            };
            if last.total <= first.total {
                continue;
            }
            let explained: Vec<(&EventClass, Explanation)> = classes
                .iter()
                .filter_map(|(class, times)| Some((class, explain(series, times)?)))
                .collect();
            let fit = |e: &Explanation| e.r_squared.unwrap_or(0.99);
            let top = explained
                .iter()
                .map(|(_, e)| fit(e))
                .fold(f64::MIN, f64::max);
            // A port re-added right after each delete gives its adds and its deletes the same
            // rhythm, and either fits. Among fits this close, deletes are named: the seed's
            // leak is what a delete leaves behind ("每打印到 deleted interface … 就会残留一个fd").
            let best = explained
                .into_iter()
                .filter(|(_, e)| fit(e) >= top - 0.05)
                .max_by(|a, b| {
                    let score = |(class, e): &(&EventClass, Explanation)| {
                        (class.what == "deleted interface", e.events)
                    };
                    score(a).cmp(&score(b)).then_with(|| {
                        fit(&a.1)
                            .partial_cmp(&fit(&b.1))
                            .unwrap_or(std::cmp::Ordering::Equal)
                    })
                });
            let Some((class, found)) = best else {
                continue;
            };
            let (_, subject) = series_subject(snapshot, series);
            let kind = series_growing_kind(series).map(|(kind, _)| plural(&kind));
            let what_grows = kind.clone().unwrap_or_else(|| "descriptors".to_string());
            let line = format!("{} {}", class.what, class.interface);
            let mut finding = Finding::new(
                self.id(),
                Severity::Warning,
                subject,
                format!(
                    "each `{line}` in ovs-vswitchd.log leaves {:.1} more {what_grows} in {} (pid {})",
                    found.per_event, series.comm, series.pid
                ),
            );
            let span_secs = (last.at_unix_ms - first.at_unix_ms) as f64 / 1000.0;
            let fit = match found.r_squared {
                Some(r2) => format!("growth = {:.2} × events per interval, R² = {r2:.3}", found.per_event),
                None => format!(
                    "the same number of events every interval, and the growth followed it within 25 % ({:.2} per event)",
                    found.per_event
                ),
            };
            finding.evidence.push(Evidence::new(
                format!(
                    "{} `{line}` lines (bridge {}) while its descriptors went {} → {} over {} ({} intervals)",
                    thousands(found.events as u64),
                    class.bridge,
                    thousands(first.total),
                    thousands(last.total),
                    duration(span_secs),
                    found.intervals
                ),
                shell_command!("grep -c -F -- {} {}", line.as_str(), log_path),
            ));
            finding.evidence.push(Evidence::fact(fit));
            if let Some(leak) = cx.finding("fd-leak", &finding.subject) {
                finding.causes.push(leak.id.clone());
            }
            let interface = Subject::OvsInterface {
                bridge: Some(class.bridge.clone()),
                name: class.interface.clone(),
            };
            for cause in ["ovs-port-flapping", "ovs-orphan-port"] {
                let id = cx
                    .finding(cause, &interface)
                    .or_else(|| {
                        let unbridged = Subject::OvsInterface {
                            bridge: None,
                            name: class.interface.clone(),
                        };
                        cx.finding(cause, &unbridged)
                    })
                    .map(|f| f.id.clone());
                finding.caused_by.extend(id);
            }
            let per_event = format!("{:.1}", found.per_event);
            cx.emit(
                finding,
                &[
                    ("comm", &series.comm),
                    ("pid", &series.pid.to_string()),
                    ("event", &line),
                    ("per_event", &per_event),
                    ("kind", &what_grows),
                ],
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{process, snapshot};
    use crate::Config;
    use nodedoc_model::{FdPoint, History, OvsLog, OvsLogEvent, OvsState};

    const T0: u64 = 1_780_000_000_000;

    fn log(deletes_ms: &[u64], adds_ms: &[u64]) -> OvsLog {
        let mut events = Vec::new();
        for (ms, deleted) in deletes_ms
            .iter()
            .map(|m| (*m, true))
            .chain(adds_ms.iter().map(|m| (*m, false)))
        {
            let (bridge, interface) = ("br-int".to_string(), "ha-d489f511-9f".to_string());
            events.push(OvsLogEvent {
                line: 1,
                timestamp: String::new(),
                unix_ms: Some((T0 + ms) as i64),
                kind: if deleted {
                    OvsLogEventKind::InterfaceDeleted {
                        bridge,
                        interface,
                        ofport: 5,
                    }
                } else {
                    OvsLogEventKind::InterfaceAdded {
                        bridge,
                        interface,
                        ofport: 5,
                    }
                },
            });
        }
        events.sort_by_key(|e| e.unix_ms);
        let mut counts: std::collections::BTreeMap<String, u64> = Default::default();
        for event in &events {
            *counts.entry(event.kind.name().to_string()).or_default() += 1;
        }
        OvsLog {
            path: "/var/log/openvswitch/ovs-vswitchd.log".into(),
            found_by: "test".into(),
            size: 0,
            read_from: 0,
            first_line: None,
            lines_read: 0,
            first_timestamp: None,
            last_timestamp: None,
            interface_counts: [("ha-d489f511-9f".to_string(), counts.clone())].into(),
            counts,
            events,
        }
    }

    fn run_with(totals: &[u64], ovs_log: OvsLog) -> Vec<Finding> {
        crate::run(&snapshot_with(totals, ovs_log), &Config::default())
    }

    fn snapshot_with(totals: &[u64], ovs_log: OvsLog) -> nodedoc_model::Snapshot {
        let mut snap = snapshot(vec![process(812, "ovs-vswitchd")]);
        snap.history = Some(History {
            fd_series: vec![FdSeries {
                pid: 812,
                start_time_ticks: 100,
                comm: "ovs-vswitchd".into(),
                points: totals
                    .iter()
                    .enumerate()
                    .map(|(i, t)| FdPoint {
                        at_unix_ms: T0 + i as u64 * 10_000,
                        total: *t,
                        kinds: Vec::new(),
                    })
                    .collect(),
            }],
            untracked_movers: 0,
            ..Default::default()
        });
        snap.ovs = Some(OvsState {
            log: Some(ovs_log),
            ..OvsState::default()
        });
        snap
    }

    fn deletes_in_bursts() -> Vec<u64> {
        // Deletes: 2, 0, 5, 1, 3 in the five intervals; each leaves 4 sockets (one per handler).
        [(0, 2), (1, 0), (2, 5), (3, 1), (4, 3)]
            .iter()
            .flat_map(|&(interval, n)| (0..n).map(move |k| interval * 10_000 + 1_000 + k * 100))
            .collect()
    }

    #[test]
    fn growth_that_follows_the_deletes_is_tied_to_them() {
        let deletes = deletes_in_bursts();
        let adds: Vec<u64> = (0..50).map(|i| i * 1_000 + 500).collect();
        let findings = run_with(&[100, 108, 108, 128, 132, 144], log(&deletes, &adds));
        let f = findings
            .iter()
            .find(|f| f.detector == "leak-per-event")
            .expect("a leak-per-event finding");
        assert!(
            f.summary
                .starts_with("each `deleted interface ha-d489f511-9f` in ovs-vswitchd.log leaves 4.0 more descriptors in ovs-vswitchd (pid 812)"),
            "{}",
            f.summary
        );
        assert!(f.evidence.iter().any(|e| e.fact.contains("R² = 1.000")));
    }

    #[test]
    fn a_run_of_the_ovsdb_detectors_alone_keeps_the_chains_of_a_full_run() {
        let adds: Vec<u64> = (0..50).map(|i| i * 1_000 + 500).collect();
        let snap = snapshot_with(
            &[100, 108, 108, 128, 132, 144],
            log(&deletes_in_bursts(), &adds),
        );
        let config = Config::default();
        let full = crate::run(&snap, &config);
        let id = |detector: &str| {
            full.iter()
                .find(|f| f.detector == detector)
                .unwrap_or_else(|| panic!("no {detector} in {full:#?}"))
                .id
                .clone()
        };
        let (leak, per_event, flapping) =
            (id("fd-leak"), id("leak-per-event"), id("ovs-port-flapping"));
        let only = crate::detectors_reading("ovsdb");
        let earlier: Vec<Finding> = full
            .iter()
            .filter(|f| !only.contains(&f.detector))
            .cloned()
            .collect();
        let again = crate::run_only(&snap, &config, &only, &earlier);
        assert!(!again.is_empty());
        for finding in &again {
            assert!(only.contains(&finding.detector), "{}", finding.id);
            let same = full.iter().find(|f| f.id == finding.id).unwrap();
            assert_eq!(
                finding, same,
                "a stream run must not change a finding's chain"
            );
        }
        let flap = again.iter().find(|f| f.id == flapping).unwrap();
        assert_eq!(flap.causes, vec![per_event.clone()]);
        let per_event_finding = full.iter().find(|f| f.id == per_event).unwrap();
        assert_eq!(per_event_finding.causes, vec![leak]);
        assert_eq!(per_event_finding.caused_by, vec![flapping]);
    }

    #[test]
    fn a_port_re_added_after_each_delete_is_named_by_its_deletes() {
        // Every delete is followed by its re-add 50 ms later: both classes fit.
        let deletes = deletes_in_bursts();
        let adds: Vec<u64> = deletes.iter().map(|d| d + 50).collect();
        let findings = run_with(&[100, 108, 108, 128, 132, 144], log(&deletes, &adds));
        let f = findings
            .iter()
            .find(|f| f.detector == "leak-per-event")
            .expect("a leak-per-event finding");
        assert!(
            f.summary
                .starts_with("each `deleted interface ha-d489f511-9f`"),
            "{}",
            f.summary
        );
    }

    #[test]
    fn growth_unrelated_to_the_events_is_not() {
        let deletes: Vec<u64> = vec![1_000, 31_000, 32_000, 33_000, 41_000];
        let findings = run_with(&[100, 110, 120, 130, 140, 150], log(&deletes, &[]));
        assert!(findings.iter().all(|f| f.detector != "leak-per-event"));
    }
}
