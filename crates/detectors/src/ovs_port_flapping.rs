//! # `ovs-port-flapping`
//!
//! **Signature.** The same interface added and deleted again and again: at least
//! `ovs_flap_min_cycles` (3) `added interface X on port N` lines and as many
//! `deleted interface X on port N` lines in ovs-vswitchd.log, usually with the OpenFlow port
//! number climbing (each re-add is a new OpenFlow port) — or, seen by the agent's OVSDB
//! monitor, as many Interface rows named X inserted and deleted (`add-port` / `del-port`).
//! Seed 000: neutron-l3-agent failed to set up an HA router, deleted it — deleting the
//! router's namespace before `del-port` — and retried, forever: `ha-d489f511-9f` on port
//! 17744, 17746, 17748, 17750…
//!
//! **Sources.** The ovs-vswitchd.log tail (its add/delete events and their counts); the
//! OVSDB monitor's history of Interface rows (`nodedoc watch`: inserted, deleted, ofport,
//! external_ids — which also names the owner of a row that is gone); the OVSDB row when the
//! interface still exists (its `external_ids`). The two streams see the same cycles: the one
//! that saw more is the summary's.
//!
//! **Evidence.** The counts with the `grep` that shows them (and, from OVSDB, the
//! `ovsdb-client monitor` that shows them live), the time span and average period, the ofport
//! numbers, and who owns the interface: neutron `iface-id`, libvirt `vm-uuid`, and the
//! `ha-`/`qr-`/`qg-`/`tap` prefix conventions of neutron and nova. Later detectors link the
//! orphaned port this loop leaves behind to it.

use std::collections::BTreeMap;

use nodedoc_model::{
    shell_command, Evidence, Finding, OvsDbEventKind, OvsInterface, OvsLogEventKind, Severity,
    Subject,
};

use crate::{duration, ovs, thousands, utc, Context, Detector};

/// See the module documentation.
pub struct OvsPortFlapping;

/// One interface's add/delete cycles, as one stream saw them.
struct Cycles {
    adds: u64,
    deletes: u64,
    /// First and last event, ms since the epoch.
    span_ms: Option<(i64, i64)>,
    /// OpenFlow ports of its re-adds, in order.
    ofports: Vec<i64>,
}

impl Cycles {
    fn cycles(&self) -> u64 {
        self.adds.min(self.deletes)
    }

    fn period_secs(&self) -> Option<f64> {
        let (a, b) = self.span_ms?;
        (self.adds > 1 && b >= a).then(|| (b - a) as f64 / 1000.0 / (self.adds - 1) as f64)
    }
}

impl Detector for OvsPortFlapping {
    fn id(&self) -> &'static str {
        "ovs-port-flapping"
    }

    fn detect(&self, cx: &mut Context<'_>) {
        let Some(ovs_state) = cx.snapshot.ovs.as_ref() else {
            return;
        };
        let log = ovs_state.log.as_ref();
        let history = ovs_state.db_history.as_ref();
        // Interfaces with add/delete events, with their bridge (the last one seen).
        let mut bridges: BTreeMap<&str, Option<&str>> = BTreeMap::new();
        if let Some(history) = history {
            for (name, counts) in &history.interfaces {
                if counts.inserted > 0 || counts.deleted > 0 {
                    bridges.insert(name, counts.bridge.as_deref());
                }
            }
        }
        for event in log.iter().flat_map(|l| &l.events) {
            if let OvsLogEventKind::InterfaceAdded {
                bridge, interface, ..
            }
            | OvsLogEventKind::InterfaceDeleted {
                bridge, interface, ..
            } = &event.kind
            {
                bridges.insert(interface, Some(bridge));
            }
        }
        let log_path = ovs::log_path(ovs_state);
        for (name, bridge) in bridges {
            let from_log = log.map(|log| {
                let events: Vec<_> = log
                    .events_of(name)
                    .filter(|e| {
                        matches!(
                            e.kind,
                            OvsLogEventKind::InterfaceAdded { .. }
                                | OvsLogEventKind::InterfaceDeleted { .. }
                        )
                    })
                    .collect();
                let span_ms = match (
                    events.first().and_then(|e| e.unix_ms),
                    events.last().and_then(|e| e.unix_ms),
                ) {
                    (Some(a), Some(b)) => Some((a, b)),
                    _ => None,
                };
                let cycles = Cycles {
                    adds: log.interface_count(name, "interface-added"),
                    deletes: log.interface_count(name, "interface-deleted"),
                    span_ms,
                    ofports: events
                        .iter()
                        .filter_map(|e| match e.kind {
                            OvsLogEventKind::InterfaceAdded { ofport, .. } => Some(ofport),
                            _ => None,
                        })
                        .collect(),
                };
                (cycles, events)
            });
            let from_db = history.and_then(|h| {
                let counts = h.interfaces.get(name)?;
                Some(Cycles {
                    adds: counts.inserted,
                    deletes: counts.deleted,
                    span_ms: Some((counts.first_unix_ms as i64, counts.last_unix_ms as i64)),
                    ofports: h
                        .events_of(name)
                        .filter_map(|e| match e.kind {
                            OvsDbEventKind::Ofport { to: Some(p), .. } if p >= 0 => Some(p),
                            _ => None,
                        })
                        .collect(),
                })
            });
            let log_cycles = from_log.as_ref().map_or(0, |(c, _)| c.cycles());
            let db_cycles = from_db.as_ref().map_or(0, Cycles::cycles);
            if log_cycles.max(db_cycles) < cx.config.ovs_flap_min_cycles {
                continue;
            }
            // The stream that saw more cycles speaks for the finding.
            let (main, stream) = match (&from_log, &from_db) {
                (Some((c, _)), _) if log_cycles >= db_cycles => (c, ""),
                (_, Some(c)) => (c, " (OVSDB)"),
                (Some((c, _)), None) => (c, ""),
                (None, None) => continue,
            };
            let period = main.period_secs();
            let ofports = if main.ofports.is_empty() {
                from_db.as_ref().map_or(&main.ofports, |c| &c.ofports)
            } else {
                &main.ofports
            };
            // Re-adding the same interface within one reconfiguration can reuse the number, so
            // "climbing" is never decreasing and ending higher than it started.
            let climbing =
                ofports.windows(2).all(|w| w[1] >= w[0]) && ofports.first() < ofports.last();
            // The owner: the row, or when it is gone, the ids it was inserted with.
            let inserted_with = history.and_then(|h| {
                h.events_of(name).rev().find_map(|e| match &e.kind {
                    OvsDbEventKind::Inserted { external_ids, .. } => Some(OvsInterface {
                        name: name.to_string(),
                        external_ids: external_ids.clone(),
                        ..OvsInterface::default()
                    }),
                    _ => None,
                })
            });
            let row = ovs_state
                .interface(name)
                .map(|(_, _, i)| i)
                .or(inserted_with.as_ref());
            let owner = ovs::owner(name, row);
            let bridge_name = bridge.unwrap_or("?");

            let subject = Subject::OvsInterface {
                bridge: bridge.map(str::to_string),
                name: name.to_string(),
            };
            let mut finding = Finding::new(
                self.id(),
                Severity::Warning,
                subject,
                format!(
                    "OVS interface {name} on {bridge_name} was added {} and deleted {} times{stream}{}",
                    thousands(main.adds),
                    thousands(main.deletes),
                    period.map_or(String::new(), |p| format!(", about every {}", seconds(p)))
                ),
            );
            if let Some((cycles, events)) = &from_log {
                if cycles.adds + cycles.deletes > 0 {
                    finding.evidence.push(Evidence::new(
                        format!(
                            "{} × `added interface {name}` and {} × `deleted interface {name}` in {log_path}",
                            thousands(cycles.adds),
                            thousands(cycles.deletes)
                        ),
                        shell_command!(
                            "grep -c -F -e {} -e {} -- {}",
                            format!("added interface {name} "),
                            format!("deleted interface {name} "),
                            log_path
                        ),
                    ));
                }
                if let (Some(first), Some(last)) = (events.first(), events.last()) {
                    finding.evidence.push(Evidence::fact(format!(
                        "from {} (line {}) to {} (line {}){}",
                        first.timestamp,
                        first.line,
                        last.timestamp,
                        last.line,
                        cycles.span_ms.map_or(String::new(), |(a, b)| format!(
                            ": {}",
                            seconds((b - a) as f64 / 1000.0)
                        ))
                    )));
                }
            }
            if let (Some(cycles), Some(history)) = (&from_db, history) {
                finding.evidence.push(Evidence::new(
                    format!(
                        "{} Interface rows named {name} inserted and {} deleted in OVSDB since {} (the agent's monitor)",
                        thousands(cycles.adds),
                        thousands(cycles.deletes),
                        utc(history.since_unix_ms / 1000),
                    ),
                    shell_command!(
                        "ovsdb-client monitor {} Open_vSwitch Interface name,ofport,external_ids --format=json",
                        ovs_state.endpoint.as_str()
                    ),
                ));
            }
            if let (Some(low), Some(high)) = (ofports.first(), ofports.last()) {
                let fact = if climbing {
                    format!(
                        "ofport climbing from {low} to {high}: every re-add is a new OpenFlow port"
                    )
                } else {
                    format!("ofports from {low} to {high}")
                };
                let command = if main.ofports.is_empty() || stream.is_empty() && log.is_some() {
                    shell_command!(
                        "grep -F -- {} {} | tail",
                        format!("added interface {name} "),
                        log_path
                    )
                } else {
                    shell_command!("ovs-vsctl --if-exists get Interface {} ofport", name)
                };
                finding.evidence.push(Evidence::new(fact, command));
            }
            finding.evidence.push(Evidence::new(
                format!("owner: {owner}"),
                shell_command!("ovs-vsctl --if-exists get Interface {} external_ids", name),
            ));
            let cycles_text = thousands(main.cycles());
            let period_text = period.map_or("unknown".to_string(), seconds);
            cx.emit(
                finding,
                &[
                    ("name", name),
                    ("bridge", bridge_name),
                    ("cycles", &cycles_text),
                    ("period", &period_text),
                    ("owner", &owner),
                ],
            );
        }
    }
}

fn seconds(secs: f64) -> String {
    if secs < 10.0 {
        format!("{secs:.1}s")
    } else {
        duration(secs)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::testing::{ovs_with_log, snapshot};

    /// Seed 000's ovs-vswitchd.log lines, verbatim (the add/delete loop, then the two
    /// `failed to query port` lines of its dpif debug log).
    pub(crate) const SEED_000_LOG: &str =
        include_str!("../../ovs/tests/fixtures/seed-000-ovs-vswitchd.log");

    #[test]
    fn rows_that_come_and_go_in_ovsdb_are_flapping_without_a_log() {
        use nodedoc_model::{OvsDbEvent, OvsDbEventKind, OvsState};
        let mut history = nodedoc_model::OvsDbHistory {
            since_unix_ms: 1_780_000_000_000,
            window_secs: 3600,
            ..Default::default()
        };
        let mut events = Vec::new();
        for cycle in 0..4u64 {
            let at = 1_780_000_000_000 + cycle * 2_000;
            let event = |at: u64, kind| OvsDbEvent {
                at_unix_ms: at,
                interface: "tap7f-x".into(),
                uuid: format!("u{cycle}"),
                bridge: Some("br-int".into()),
                kind,
            };
            events.push(event(
                at,
                OvsDbEventKind::Inserted {
                    interface_type: String::new(),
                    ofport: None,
                    external_ids: [("vm-uuid".to_string(), "8f6b0c3e".to_string())].into(),
                },
            ));
            events.push(event(
                at + 100,
                OvsDbEventKind::Ofport {
                    from: None,
                    to: Some(10 + cycle as i64),
                },
            ));
            events.push(event(
                at + 900,
                OvsDbEventKind::Deleted { ofport: Some(10) },
            ));
        }
        for event in &events {
            let counts = history
                .interfaces
                .entry(event.interface.clone())
                .or_default();
            counts.bridge.clone_from(&event.bridge);
            if counts.first_unix_ms == 0 {
                counts.first_unix_ms = event.at_unix_ms;
            }
            counts.last_unix_ms = event.at_unix_ms;
            match event.kind {
                OvsDbEventKind::Inserted { .. } => counts.inserted += 1,
                OvsDbEventKind::Deleted { .. } => counts.deleted += 1,
                _ => {}
            }
        }
        history.events = events;
        let mut s = snapshot(vec![]);
        s.ovs = Some(OvsState {
            endpoint: "unix:/run/openvswitch/db.sock".into(),
            db_history: Some(history),
            ..OvsState::default()
        });
        let findings = crate::run(&s, &Default::default());
        let f = findings
            .iter()
            .find(|f| f.detector == "ovs-port-flapping")
            .expect("flapping from OVSDB");
        assert_eq!(f.subject.key(), "ovs-interface/tap7f-x");
        assert_eq!(
            f.summary,
            "OVS interface tap7f-x on br-int was added 4 and deleted 4 times (OVSDB), about every 2.3s"
        );
        let facts: Vec<&str> = f.evidence.iter().map(|e| e.fact.as_str()).collect();
        assert!(
            facts.iter().any(|e| e.starts_with(
                "4 Interface rows named tap7f-x inserted and 4 deleted in OVSDB since"
            )),
            "{facts:?}"
        );
        assert!(
            facts
                .iter()
                .any(|e| e.contains("ofport climbing from 10 to 13")),
            "{facts:?}"
        );
        // The row is gone: the owner comes from the ids it was inserted with.
        assert!(
            facts.iter().any(|e| e.contains("VM (vm-uuid) 8f6b0c3e")),
            "{facts:?}"
        );
        assert!(f.evidence.iter().any(|e| e
            .command
            .as_ref()
            .is_some_and(|c| c.starts_with("ovsdb-client monitor"))));
    }

    #[test]
    fn seed_000_log_flags_the_ha_port_that_keeps_coming_back() {
        let mut s = snapshot(vec![]);
        s.ovs = Some(ovs_with_log(SEED_000_LOG));
        let findings = crate::run(&s, &Default::default());
        let f = findings
            .iter()
            .find(|f| f.subject.key() == "ovs-interface/ha-d489f511-9f")
            .expect("flapping finding");
        assert_eq!(f.detector, "ovs-port-flapping");
        assert!(
            f.summary
                .contains("added 6 and deleted 5 times, about every 5.5s"),
            "{}",
            f.summary
        );
        let facts: Vec<&str> = f.evidence.iter().map(|e| e.fact.as_str()).collect();
        assert!(
            facts.iter().any(|e| e.contains("from 17744 to 17750")),
            "{facts:?}"
        );
        assert!(
            facts
                .iter()
                .any(|e| e.contains("neutron-l3-agent (HA router")),
            "{facts:?}"
        );
        assert!(
            f.explanation.contains("1508091")
                || f.references.iter().any(|r| r.url.contains("1508091"))
        );
        // ha-24939610-b4 was added 3 and deleted 2 times: below three cycles.
        assert!(!findings
            .iter()
            .any(|f| f.subject.key() == "ovs-interface/ha-24939610-b4"));
    }
}
