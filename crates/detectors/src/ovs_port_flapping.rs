//! # `ovs-port-flapping`
//!
//! **Signature.** The same interface added and deleted again and again: at least
//! `ovs_flap_min_cycles` (3) `added interface X on port N` lines and as many
//! `deleted interface X on port N` lines in ovs-vswitchd.log, usually with the OpenFlow port
//! number climbing (each re-add is a new OpenFlow port). Seed 000: neutron-l3-agent failed to
//! set up an HA router, deleted it — deleting the router's namespace before `del-port` — and
//! retried, forever: `ha-d489f511-9f` on port 17744, 17746, 17748, 17750…
//!
//! **Sources.** The ovs-vswitchd.log tail (its add/delete events and their counts), and the
//! OVSDB row when the interface still exists (its `external_ids`).
//!
//! **Evidence.** The counts with the `grep` that shows them, the time span and average
//! period, the ofport numbers, and who owns the interface: neutron `iface-id`, libvirt
//! `vm-uuid`, and the `ha-`/`qr-`/`qg-`/`tap` prefix conventions of neutron and nova. Later
//! detectors link the orphaned port this loop leaves behind to it.

use std::collections::BTreeMap;

use nodedoc_model::{shell_command, Evidence, Finding, OvsLogEventKind, Severity, Subject};

use crate::{duration, ovs, thousands, Context, Detector};

/// See the module documentation.
pub struct OvsPortFlapping;

impl Detector for OvsPortFlapping {
    fn id(&self) -> &'static str {
        "ovs-port-flapping"
    }

    fn detect(&self, cx: &mut Context<'_>) {
        let Some(ovs_state) = cx.snapshot.ovs.as_ref() else {
            return;
        };
        let Some(log) = ovs_state.log.as_ref() else {
            return;
        };
        // Interfaces with add/delete events, with their bridge (the last one logged).
        let mut bridges: BTreeMap<&str, &str> = BTreeMap::new();
        for event in &log.events {
            if let OvsLogEventKind::InterfaceAdded {
                bridge, interface, ..
            }
            | OvsLogEventKind::InterfaceDeleted {
                bridge, interface, ..
            } = &event.kind
            {
                bridges.insert(interface, bridge);
            }
        }
        let log_path = ovs::log_path(ovs_state);
        for (name, bridge) in bridges {
            let adds = log.interface_count(name, "interface-added");
            let deletes = log.interface_count(name, "interface-deleted");
            let cycles = adds.min(deletes);
            if cycles < cx.config.ovs_flap_min_cycles {
                continue;
            }
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
            let ofports: Vec<i64> = events
                .iter()
                .filter_map(|e| match e.kind {
                    OvsLogEventKind::InterfaceAdded { ofport, .. } => Some(ofport),
                    _ => None,
                })
                .collect();
            // Re-adding the same interface within one reconfiguration can reuse the number, so
            // "climbing" is never decreasing and ending higher than it started.
            let climbing =
                ofports.windows(2).all(|w| w[1] >= w[0]) && ofports.first() < ofports.last();
            let (first, last) = (events.first(), events.last());
            let span_ms = match (first.and_then(|e| e.unix_ms), last.and_then(|e| e.unix_ms)) {
                (Some(a), Some(b)) if b >= a => Some(b - a),
                _ => None,
            };
            let period = span_ms
                .filter(|_| adds > 1)
                .map(|ms| ms as f64 / 1000.0 / (adds - 1) as f64);
            let row = ovs_state.interface(name).map(|(_, _, i)| i);
            let owner = ovs::owner(name, row);

            let subject = Subject::OvsInterface {
                bridge: Some(bridge.to_string()),
                name: name.to_string(),
            };
            let mut finding = Finding::new(
                self.id(),
                Severity::Warning,
                subject,
                format!(
                    "OVS interface {name} on {bridge} was added {} and deleted {} times{}",
                    thousands(adds),
                    thousands(deletes),
                    period.map_or(String::new(), |p| format!(", about every {}", seconds(p)))
                ),
            );
            finding.evidence.push(Evidence::new(
                format!(
                    "{} × `added interface {name}` and {} × `deleted interface {name}` in {log_path}",
                    thousands(adds),
                    thousands(deletes)
                ),
                shell_command!(
                    "grep -c -F -e {} -e {} -- {}",
                    format!("added interface {name} "),
                    format!("deleted interface {name} "),
                    log_path
                ),
            ));
            if let (Some(first), Some(last)) = (first, last) {
                finding.evidence.push(Evidence::fact(format!(
                    "from {} (line {}) to {} (line {}){}",
                    first.timestamp,
                    first.line,
                    last.timestamp,
                    last.line,
                    span_ms.map_or(String::new(), |ms| format!(
                        ": {}",
                        seconds(ms as f64 / 1000.0)
                    ))
                )));
            }
            if let (Some(low), Some(high)) = (ofports.first(), ofports.last()) {
                finding.evidence.push(Evidence::new(
                    if climbing {
                        format!(
                            "ofport climbing from {low} to {high}: every re-add is a new OpenFlow port"
                        )
                    } else {
                        format!("ofports from {low} to {high}")
                    },
                    shell_command!(
                    "grep -F -- {} {} | tail",
                    format!("added interface {name} "),
                    log_path
                ),
                ));
            }
            finding.evidence.push(Evidence::new(
                format!("owner: {owner}"),
                shell_command!("ovs-vsctl --if-exists get Interface {} external_ids", name),
            ));
            let cycles_text = thousands(cycles);
            let period_text = period.map_or("unknown".to_string(), seconds);
            cx.emit(
                finding,
                &[
                    ("name", name),
                    ("bridge", bridge),
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
