//! # `ovs-orphan-port`
//!
//! **Signature.** An OVSDB Interface of a kernel-backed type (`""`, `system`, `internal`,
//! `tap`, `afxdp`: catalog `ovs.kernel_device_types`) whose device no longer exists:
//! - the anchors' case: `error` names "No such device" (`could not open network device X
//!   (No such device)`, usually with `ofport` -1) — what OVSDB shows after ovs-vswitchd
//!   restarts;
//! - the case the anchors miss, measured on OVS 3.1: the row still holds its `ofport`, `error`
//!   is empty, `ifindex` is 0 and no update is sent — but no network namespace holds a
//!   device of that name. `ifindex 0` alone is not enough (ovs-vswitchd reports 0 for a
//!   device moved into a live namespace, as neutron does with every router port), so the
//!   device is looked up in every namespace; when the namespaces could not be read, the
//!   log's `error receiving Ethernet packet on X` lines stand in as the proof.
//!
//! A device present in any namespace is never reported, and the second case needs a running
//! ovs-vswitchd (with it stopped, every row is stale and a userspace datapath's taps are gone).
//!
//! With only ovs-vswitchd's log (`--ovs-log` without an OVSDB: a copied log), the log's word
//! stands alone: an interface whose device it could not open or query (`could not open
//! network device X (No such device)`, `failed to query port X: No such device`) and that was
//! neither added again nor deleted after that line; the finding says the row was not read.
//!
//! **Sources.** The OVSDB dump (Interface rows with bridge and port), the devices of every
//! network namespace (`RTM_GETLINK` in each), the ovs-vswitchd.log tail.
//!
//! **Evidence.** The row (`ovs-vsctl --columns=name,ofport,error,ifindex list Interface X`),
//! the namespaces searched (`ip -all netns exec ip link show X`), the owner (`iface-id`,
//! `attached-mac`, `vm-uuid`, name prefix), and the log lines about it. Links itself to
//! `ovs-port-flapping` of the same interface as its cause.

use nodedoc_model::{
    shell_command, Evidence, Finding, OvsLog, OvsLogEvent, OvsLogEventKind, Severity, Subject,
};

use crate::{catalog, ovs, thousands, Context, Detector};

/// See the module documentation.
pub struct OvsOrphanPort;

impl Detector for OvsOrphanPort {
    fn id(&self) -> &'static str {
        "ovs-orphan-port"
    }

    fn detect(&self, cx: &mut Context<'_>) {
        let snapshot = cx.snapshot;
        let Some(ovs_state) = snapshot.ovs.as_ref() else {
            return;
        };
        let kernel_types = &catalog().ovs.kernel_device_types;
        let log = ovs_state.log.as_ref();
        let log_path = ovs::log_path(ovs_state);
        if ovs_state.log_only {
            if let Some(log) = log {
                self.judge_the_log_alone(cx, log, log_path);
            }
            return;
        }
        let network = snapshot.network.as_ref();
        for (bridge, port, iface) in ovs_state.interfaces() {
            if !kernel_types.iter().any(|t| t == &iface.interface_type) {
                continue;
            }
            let name = iface.name.as_str();
            let found = network.map(|n| n.find(name)).unwrap_or_default();
            if !found.is_empty() {
                continue;
            }
            let no_such_device = iface
                .error
                .as_deref()
                .is_some_and(|e| e.contains("No such device"));
            let holds_ofport = iface.ofport.is_some_and(|p| p >= 0);
            let receive_errors = log.map_or(0, |l| l.interface_count(name, "receive-error"));
            // A device named by an OVSDB update since the namespaces were read may exist in
            // one of them: only a new reading can say it is gone everywhere.
            let unverified = network.is_some_and(|n| n.is_unverified(name));
            let absent_everywhere = network.is_some_and(|n| n.complete()) && !unverified;
            // Without a running ovs-vswitchd the rows are stale, not orphaned: nobody holds
            // their devices (a userspace datapath's taps vanish with it) or their ofports.
            let vswitchd_running = ovs_state.vswitchd.is_some();
            let orphan = no_such_device
                || (vswitchd_running
                    && holds_ofport
                    && (absent_everywhere || (iface.ifindex == Some(0) && receive_errors > 0)));
            if !orphan {
                continue;
            }
            let subject = Subject::OvsInterface {
                bridge: Some(bridge.name.clone()),
                name: name.to_string(),
            };
            let why = if no_such_device {
                "ovs-vswitchd cannot open its device (No such device)".to_string()
            } else {
                format!(
                    "its device is gone but the row still holds ofport {}",
                    iface.ofport.unwrap_or_default()
                )
            };
            let mut finding = Finding::new(
                self.id(),
                Severity::Warning,
                subject.clone(),
                format!(
                    "OVS interface {name} on {} has no device: {why}{}",
                    bridge.name,
                    iface
                        .iface_id()
                        .map_or(String::new(), |id| format!(" (iface-id {id})"))
                ),
            );
            let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "[]".to_string());
            let show_number = |v: Option<i64>| v.map_or("[]".to_string(), |n| n.to_string());
            finding.evidence.push(Evidence::new(
                format!(
                    "Interface {name} (port {}, bridge {}, type {}): ofport {}, error {}, ifindex {}, link_state {}, admin_state {}",
                    port.name,
                    bridge.name,
                    if iface.interface_type.is_empty() { "system" } else { &iface.interface_type },
                    show_number(iface.ofport),
                    iface.error.as_deref().map_or("none".to_string(), |e| format!("{e:?}")),
                    show_number(iface.ifindex),
                    show(&iface.link_state),
                    show(&iface.admin_state),
                ),
                shell_command!("ovs-vsctl --columns=name,ofport,error,ifindex list Interface {}", name),
            ));
            match network {
                Some(n) => {
                    let named: Vec<&str> = n
                        .namespaces
                        .iter()
                        .flat_map(|ns| ns.names.iter().map(String::as_str))
                        .collect();
                    finding.evidence.push(Evidence::new(
                        format!(
                            "no device {name} in any of the {} network namespaces read (the host's{}){}",
                            n.namespaces.len(),
                            if named.is_empty() {
                                String::new()
                            } else {
                                format!(", {}", named.join(", "))
                            },
                            if n.complete() {
                                String::new()
                            } else {
                                format!("; {} could not be read", n.unreadable.len())
                            }
                        ) + if unverified {
                            "; read before OVSDB named this interface (since then only nodedoc's own namespace was searched)"
                        } else {
                            ""
                        },
                        shell_command!(
                            "ip link show dev {}; ip -all netns exec ip link show dev {}",
                            name,
                            name
                        ),
                    ));
                }
                None => finding.evidence.push(Evidence::fact(
                    "network namespaces were not read: the device's absence rests on the row and the log",
                )),
            }
            finding.evidence.push(Evidence::new(
                format!("owner: {}", ovs::owner(name, Some(iface))),
                shell_command!("ovs-vsctl get Interface {} external_ids", name),
            ));
            if let Some(log) = log {
                if receive_errors > 0 {
                    let error = log
                        .events_of(name)
                        .find_map(|e| match &e.kind {
                            OvsLogEventKind::ReceiveError { error, .. } => Some(error.as_str()),
                            _ => None,
                        })
                        .unwrap_or("?");
                    let dropped = log.count("dropped-messages");
                    finding.evidence.push(Evidence::new(
                        format!(
                            "{} × `error receiving Ethernet packet on {name}: {error}` in {log_path}{}: ovs-vswitchd keeps polling the vanished device",
                            thousands(receive_errors),
                            if dropped > 0 {
                                format!(" (and {} `Dropped N log messages` lines)", thousands(dropped))
                            } else {
                                String::new()
                            }
                        ),
                        shell_command!(
                            "grep -c -F -- {} {}",
                            format!("error receiving Ethernet packet on {name}"),
                            log_path
                        ),
                    ));
                }
                for (kind, words) in [
                    ("query-port-failed", "failed to query port"),
                    ("open-failed", "could not open network device"),
                ] {
                    let n = log.interface_count(name, kind);
                    if n > 0 {
                        finding.evidence.push(Evidence::new(
                            format!("{} × `{words} {name}` in {log_path}", thousands(n)),
                            shell_command!(
                                "grep -c -F -- {} {}",
                                format!("{words} {name}"),
                                log_path
                            ),
                        ));
                    }
                }
                let last_added = log.events_of(name).rev().find_map(|e| match e.kind {
                    OvsLogEventKind::InterfaceAdded { ofport, .. } => Some((e, ofport)),
                    _ => None,
                });
                if let Some((event, ofport)) = last_added {
                    finding.evidence.push(Evidence::new(
                        format!(
                            "last added on port {ofport} at {} (line {})",
                            event.timestamp, event.line
                        ),
                        shell_command!(
                            "grep -F -- {} {}",
                            format!("added interface {name} "),
                            log_path
                        ),
                    ));
                }
            }
            if let Some(flapping) = cx.finding("ovs-port-flapping", &subject) {
                finding.caused_by.push(flapping.id.clone());
            }
            let ofport_text = show_number(iface.ofport);
            cx.emit(
                finding,
                &[
                    ("name", name),
                    ("bridge", &bridge.name),
                    ("port", &port.name),
                    ("ofport", &ofport_text),
                ],
            );
        }
    }
}

impl OvsOrphanPort {
    /// Without the OVSDB (only `--ovs-log` was read), the log's own word: interfaces whose
    /// device ovs-vswitchd could not open or query (`No such device`) and that were neither
    /// added again (the device came back) nor deleted since.
    fn judge_the_log_alone(&self, cx: &mut Context<'_>, log: &OvsLog, log_path: &str) {
        let mut names: Vec<&str> = Vec::new();
        for event in &log.events {
            if missing_device(&event.kind) {
                let name = event.kind.interface().unwrap_or_default();
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        for name in names {
            let events: Vec<&OvsLogEvent> = log.events_of(name).collect();
            let last_missing = events.iter().rposition(|e| missing_device(&e.kind));
            let last_change = events.iter().rposition(|e| {
                matches!(
                    e.kind,
                    OvsLogEventKind::InterfaceAdded { .. }
                        | OvsLogEventKind::InterfaceDeleted { .. }
                )
            });
            let Some(last_missing) = last_missing else {
                continue;
            };
            if last_change.is_some_and(|changed| changed > last_missing) {
                continue;
            }
            let bridge = events.iter().rev().find_map(|e| match &e.kind {
                OvsLogEventKind::InterfaceAdded { bridge, .. }
                | OvsLogEventKind::InterfaceDeleted { bridge, .. } => Some(bridge.as_str()),
                _ => None,
            });
            let ofport = events.iter().rev().find_map(|e| match e.kind {
                OvsLogEventKind::InterfaceAdded { ofport, .. } => Some(ofport),
                _ => None,
            });
            let last = events[last_missing];
            let subject = Subject::OvsInterface {
                bridge: bridge.map(str::to_string),
                name: name.to_string(),
            };
            let mut finding = Finding::new(
                self.id(),
                Severity::Warning,
                subject.clone(),
                format!(
                    "ovs-vswitchd.log says OVS interface {name}{} has no device (No such device); the OVSDB was not read",
                    bridge.map_or(String::new(), |b| format!(" on {b}"))
                ),
            );
            for (kind, words) in [
                ("open-failed", "could not open network device"),
                ("query-port-failed", "failed to query port"),
            ] {
                let n = log.interface_count(name, kind);
                if n > 0 {
                    finding.evidence.push(Evidence::new(
                        format!("{} × `{words} {name}` in {log_path}", thousands(n)),
                        shell_command!("grep -c -F -- {} {}", format!("{words} {name}"), log_path),
                    ));
                }
            }
            finding.evidence.push(Evidence::new(
                format!(
                    "the last at {} (line {}), and no `added interface {name}` or `deleted interface {name}` after it",
                    last.timestamp, last.line
                ),
                shell_command!("grep -n -F -- {} {} | tail -3", name, log_path),
            ));
            if let Some(ofport) = ofport {
                finding.evidence.push(Evidence::fact(format!(
                    "last added on OpenFlow port {ofport}"
                )));
            }
            finding
                .evidence
                .push(Evidence::fact(format!("owner: {}", ovs::owner(name, None))));
            finding.evidence.push(Evidence::new(
                "the OVSDB was not read (only the log): whether the row is still there, and since when its device is gone, is for the node to say",
                shell_command!(
                    "ovs-vsctl --columns=name,ofport,error,ifindex list Interface {}",
                    name
                ),
            ));
            if let Some(flapping) = cx.finding("ovs-port-flapping", &subject) {
                finding.caused_by.push(flapping.id.clone());
            }
            let ofport_text = ofport.map_or("unknown".to_string(), |p| p.to_string());
            if bridge.is_none() {
                // Rendered like the catalog's fix, so a name that cannot be pasted into a
                // shell gives no command rather than a raw one.
                finding.fix = crate::catalog::render(
                    "On the node, check the row (`ovs-vsctl --columns=name,ofport,error list Interface {name}`) and remove the port if it is still there: `ovs-vsctl --if-exists del-port {name}` — or `nodedoc fix ovs-orphan-port`, which asks first and spares a port that came back. Then make whoever deletes namespaces (neutron-l3-agent, a CNI plugin) delete the port first.",
                    &[("name", name)],
                );
            }
            cx.emit(
                finding,
                &[
                    ("name", name),
                    ("bridge", bridge.unwrap_or("its bridge")),
                    ("port", name),
                    ("ofport", &ofport_text),
                ],
            );
        }
    }
}

/// A log line saying an interface's device does not exist.
fn missing_device(kind: &OvsLogEventKind) -> bool {
    match kind {
        OvsLogEventKind::OpenFailed { error, .. }
        | OvsLogEventKind::QueryPortFailed { error, .. } => error.contains("No such device"),
        _ => false,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::testing::{ovs_with_log, process, snapshot};
    use nodedoc_model::{NetDevice, NetNamespace, NetworkNamespaces, OvsInterface, OvsPort};

    /// A port of one internal interface with seed 000's external_ids, as read.
    pub(crate) fn iface(name: &str, ofport: i64, ifindex: i64, error: Option<&str>) -> OvsPort {
        OvsPort {
            uuid: format!("p-{name}"),
            name: name.into(),
            interfaces: vec![OvsInterface {
                uuid: format!("i-{name}"),
                name: name.into(),
                interface_type: "internal".into(),
                ofport: Some(ofport),
                ifindex: Some(ifindex),
                error: error.map(str::to_string),
                link_state: Some("down".into()),
                admin_state: Some("down".into()),
                external_ids: [
                    (
                        "iface-id".to_string(),
                        "d489f511-9f9f-49e9-b772-f43bf3bfa04b".to_string(),
                    ),
                    ("attached-mac".to_string(), "fa:16:3e:4a:52:36".to_string()),
                ]
                .into(),
                ..OvsInterface::default()
            }],
        }
    }

    fn network(devices: &[(&str, &str)]) -> NetworkNamespaces {
        let mut host = NetNamespace {
            inode: 1,
            initial: true,
            entered_via: "/proc/1/ns/net".into(),
            ..NetNamespace::default()
        };
        let mut router = NetNamespace {
            inode: 2,
            names: vec!["qrouter-c863cb21".into()],
            entered_via: "/run/netns/qrouter-c863cb21".into(),
            ..NetNamespace::default()
        };
        for (ns, name) in devices {
            let device = NetDevice {
                name: name.to_string(),
                ifindex: 5,
                ..NetDevice::default()
            };
            if *ns == "host" {
                host.devices.push(device);
            } else {
                router.devices.push(device);
            }
        }
        NetworkNamespaces {
            namespaces: vec![host, router],
            unreadable: vec![],
            unverified: vec![],
        }
    }

    #[test]
    fn a_device_named_since_the_namespaces_were_read_is_not_called_gone_unless_ovs_says_so() {
        let mut s = snapshot(vec![process(812, "ovs-vswitchd")]);
        let mut ovs_state = ovs_with_log("");
        ovs_state.vswitchd = Some(nodedoc_model::VswitchdProcess {
            pid: 812,
            ..Default::default()
        });
        ovs_state.bridges[0].ports = vec![
            // Just plugged, ofport assigned: its device may be in a namespace read before.
            iface("tap-new", 9, 0, None),
            iface(
                "tap-gone",
                -1,
                0,
                Some("could not open network device tap-gone (No such device)"),
            ),
        ];
        s.ovs = Some(ovs_state);
        let mut read = network(&[]);
        read.unverified = vec!["tap-new".into(), "tap-gone".into()];
        s.network = Some(read);
        let findings = crate::run(&s, &Default::default());
        let keys: Vec<String> = findings.iter().map(|f| f.id.to_string()).collect();
        assert_eq!(keys, ["ovs-orphan-port:ovs-interface/tap-gone"]);
        assert!(
            findings[0]
                .evidence
                .iter()
                .any(|e| e.fact.contains("read before OVSDB named this interface")),
            "{:#?}",
            findings[0].evidence
        );
    }

    #[test]
    fn the_case_the_anchors_miss_and_the_anchors_case_but_not_moved_devices() {
        let mut s = snapshot(vec![]);
        let mut ovs_state = ovs_with_log(
            "2026-11-25T12:07:20.015Z|00051|netdev_linux|WARN|error receiving Ethernet packet on ha-d489f511-9f: File descriptor in bad state\n",
        );
        ovs_state.bridges[0].ports = vec![
            iface("ha-d489f511-9f", 2, 0, None),
            iface("qr-moved", 3, 0, None),
            iface("healthy0", 1, 7, None),
            iface(
                "tap-gone",
                -1,
                0,
                Some("could not open network device tap-gone (No such device)"),
            ),
        ];
        s.ovs = Some(ovs_state);
        s.network = Some(network(&[("host", "healthy0"), ("router", "qr-moved")]));
        let findings = crate::run(&s, &Default::default());
        let keys: Vec<String> = findings.iter().map(|f| f.id.to_string()).collect();
        assert_eq!(
            keys,
            [
                "ovs-orphan-port:ovs-interface/ha-d489f511-9f",
                "ovs-orphan-port:ovs-interface/tap-gone"
            ]
        );
        let f = &findings[0];
        assert!(f.summary.contains("still holds ofport 2"), "{}", f.summary);
        assert!(
            f.summary.contains("iface-id d489f511-9f9f"),
            "{}",
            f.summary
        );
        let commands: Vec<&str> = f
            .evidence
            .iter()
            .filter_map(|e| e.command.as_deref())
            .collect();
        assert!(
            commands.contains(
                &"ovs-vsctl --columns=name,ofport,error,ifindex list Interface ha-d489f511-9f"
            ),
            "{commands:?}"
        );
        assert!(commands
            .iter()
            .any(|c| c.contains("ip -all netns exec ip link show dev ha-d489f511-9f")));
        assert!(f
            .evidence
            .iter()
            .any(|e| e.fact.contains("1 × `error receiving Ethernet packet")));
        assert!(
            f.fix
                .contains("ovs-vsctl --if-exists del-port br-int ha-d489f511-9f"),
            "{}",
            f.fix
        );
        assert!(
            f.explanation
                .contains("network namespace was deleted before"),
            "{}",
            f.explanation
        );
    }

    #[test]
    fn rows_of_a_stopped_ovs_vswitchd_are_stale_not_orphaned() {
        let mut s = snapshot(vec![]);
        let mut ovs_state = ovs_with_log("");
        ovs_state.vswitchd = None;
        ovs_state.bridges[0].ports = vec![iface("tap-stale", 3, 0, None)];
        s.ovs = Some(ovs_state);
        s.network = Some(network(&[]));
        assert!(crate::run(&s, &Default::default()).is_empty());
    }

    #[test]
    fn without_namespaces_only_the_log_can_confirm_an_ifindex_0() {
        let mut s = snapshot(vec![]);
        let mut ovs_state = ovs_with_log("");
        ovs_state.bridges[0].ports = vec![iface("qr-moved", 3, 0, None)];
        s.ovs = Some(ovs_state);
        assert!(crate::run(&s, &Default::default()).is_empty());
    }

    /// Regression (issue 10): a copied ovs-vswitchd.log on a host without OVS gave "no
    /// problems". The log alone gives seed 000's loop and the port it left without a device,
    /// linked; the socket excess, which needs the OVSDB's ports, is not guessed.
    #[test]
    fn the_log_alone_names_the_interface_without_a_device() {
        use nodedoc_model::{OvsState, Severity};
        let mut s = snapshot(vec![]);
        let mut log =
            nodedoc_ovs::log::reduce(crate::ovs_port_flapping::tests::SEED_000_LOG, Some(1));
        log.path = "/tmp/copied/ovs-vswitchd.log".into();
        s.ovs = Some(OvsState {
            log: Some(log),
            log_only: true,
            ..OvsState::default()
        });
        let findings = crate::run(&s, &Default::default());
        let detectors: Vec<&str> = findings.iter().map(|f| f.detector.as_str()).collect();
        assert_eq!(
            detectors,
            vec!["ovs-port-flapping", "ovs-orphan-port"],
            "{findings:#?}"
        );
        let orphan = &findings[1];
        assert_eq!(orphan.severity, Severity::Warning);
        assert_eq!(orphan.subject.key(), "ovs-interface/ha-d489f511-9f");
        assert!(
            orphan.summary.starts_with(
                "ovs-vswitchd.log says OVS interface ha-d489f511-9f on br-int has no device"
            ),
            "{}",
            orphan.summary
        );
        assert_eq!(orphan.caused_by, vec![findings[0].id.clone()]);
        let facts: Vec<&str> = orphan.evidence.iter().map(|e| e.fact.as_str()).collect();
        assert!(
            facts.contains(
                &"2 × `failed to query port ha-d489f511-9f` in /tmp/copied/ovs-vswitchd.log"
            ),
            "{facts:#?}"
        );
        assert!(
            facts.contains(&"last added on OpenFlow port 17750"),
            "{facts:#?}"
        );
        assert!(
            orphan
                .fix
                .contains("ovs-vsctl --if-exists del-port br-int ha-d489f511-9f"),
            "{}",
            orphan.fix
        );

        // The device came back (added again after the error): nothing to say.
        let text = format!(
            "{}2021-04-26T08:13:17.000Z|00940|netdev_linux|WARN|could not open network device tap9 (No such device)\n2021-04-26T08:13:18.000Z|00941|bridge|INFO|bridge br-int: added interface tap9 on port 3\n2021-04-26T08:13:19.000Z|00942|bridge|WARN|could not open network device tap10 (No such device)\n",
            crate::ovs_port_flapping::tests::SEED_000_LOG
        );
        let mut log = nodedoc_ovs::log::reduce(&text, Some(1));
        log.path = "ovs-vswitchd.log".into();
        s.ovs = Some(OvsState {
            log: Some(log),
            log_only: true,
            ..OvsState::default()
        });
        let findings = crate::run(&s, &Default::default());
        let orphans: Vec<String> = findings
            .iter()
            .filter(|f| f.detector == "ovs-orphan-port")
            .map(|f| f.subject.key())
            .collect();
        assert_eq!(
            orphans,
            vec!["ovs-interface/ha-d489f511-9f", "ovs-interface/tap10"]
        );
        let tap10 = findings
            .iter()
            .find(|f| f.subject.key() == "ovs-interface/tap10")
            .unwrap();
        assert!(
            tap10.fix.contains("`ovs-vsctl --if-exists del-port tap10`"),
            "no bridge known: {}",
            tap10.fix
        );
    }
}
