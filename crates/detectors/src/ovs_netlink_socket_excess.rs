//! # `ovs-netlink-socket-excess`
//!
//! **Signature.** ovs-vswitchd holds far more `NETLINK_GENERIC` sockets than its ports can
//! need. With the kernel datapath, ovs-vswitchd opens one upcall socket per port per handler
//! thread (rhbz 1526306), so it needs at most
//! `ports on kernel-datapath bridges × handler threads + baseline`, the baseline
//! (catalog `ovs.generic_netlink_baseline`, 64) covering sockets not tied to ports. (In the
//! per-CPU upcall mode of OVS ≥ 2.16 on kernels ≥ 5.12 sockets are per handler only, so the
//! bound holds with room to spare.) Beyond twice that bound and by at least
//! `ovs_netlink_excess_min` (512), the excess is leaked: seed 000's port whose namespace was
//! deleted before `del-port` never reaches `dpif_netlink_port_del`, which closes them, and
//! every re-add leaks one more set. Not reproducible with the userspace (`netdev`) datapath.
//!
//! Handler threads: the `handlerN` threads counted in `/proc/PID/task`, else
//! `other_config:n-handler-threads`, else OVS's default (`ofproto_set_threads` in
//! ofproto/ofproto.c: `max(cpus,2) - (max(cpus,2)/4 + 1)`, at least 1 — seed 000's
//! "online_cpu × 3/4 − 1").
//!
//! **Sources.** ovs-vswitchd's fd census (exact NETLINK_GENERIC count), the OVSDB topology,
//! its threads, the host's online CPUs.
//!
//! **Evidence.** The count (`lsof -p PID | grep -c GENERIC`), the expected figure and how it
//! is made, the handler threads (`top -H -p PID`), the excess in port-sets. Links: caused by
//! the `ovs-orphan-port` findings, causes `fd-exhaustion` of ovs-vswitchd.

use nodedoc_model::{shell_command, Evidence, FdKind, Finding, NetlinkProtocol, Severity, Subject};

use crate::{catalog, ovs, thousands, Context, Detector};

/// See the module documentation.
pub struct OvsNetlinkSocketExcess;

impl Detector for OvsNetlinkSocketExcess {
    fn id(&self) -> &'static str {
        "ovs-netlink-socket-excess"
    }

    fn detect(&self, cx: &mut Context<'_>) {
        let snapshot = cx.snapshot;
        // The ports come from the OVSDB: with only the log read, they are unknown.
        let Some(ovs_state) = snapshot.ovs.as_ref().filter(|o| !o.log_only) else {
            return;
        };
        let Some(process) = ovs::vswitchd(snapshot) else {
            return;
        };
        let Some(fds) = process.fds.as_ref() else {
            return;
        };
        let generic = fds.count(&FdKind::NetlinkSocket {
            protocol: NetlinkProtocol::GENERIC,
        });
        let ports: u64 = ovs_state
            .bridges
            .iter()
            .filter(|b| b.is_kernel_datapath())
            .flat_map(|b| &b.ports)
            .map(|p| p.interfaces.len() as u64)
            .sum();
        let counted = ovs_state.vswitchd.as_ref().map_or(0, |v| v.handler_threads);
        let (handlers, handlers_from) = if counted > 0 {
            (counted, format!("{counted} handler threads running"))
        } else if let Some(configured) = ovs_state.n_handler_threads {
            (
                configured,
                format!("other_config:n-handler-threads={configured}"),
            )
        } else {
            let default = ovs::default_handler_threads(snapshot.host.online_cpus);
            (
                default,
                format!(
                    "n-handler-threads not set: the default for {} CPUs is {default}",
                    snapshot.host.online_cpus
                ),
            )
        };
        let baseline = catalog().ovs.generic_netlink_baseline;
        let expected = ports * u64::from(handlers) + baseline;
        let excess = generic.saturating_sub(expected);
        if excess < cx.config.ovs_netlink_excess_min || generic < 2 * expected {
            return;
        }
        let pid = process.pid;
        let subject = Subject::Process {
            pid,
            comm: process.comm.clone(),
        };
        let exhaustion = cx
            .finding("fd-exhaustion", &subject)
            .map(|f| (f.id.clone(), f.severity));
        let severity = match exhaustion {
            Some((_, Severity::Critical)) => Severity::Critical,
            _ => Severity::Warning,
        };
        let port_sets = excess / u64::from(handlers.max(1));
        let mut finding = Finding::new(
            self.id(),
            severity,
            subject,
            format!(
                "{} holds {} NETLINK_GENERIC sockets where its {} kernel-datapath ports need at most {}: {} leaked",
                process.label(),
                thousands(generic),
                thousands(ports),
                thousands(expected),
                thousands(excess)
            ),
        );
        finding.evidence.push(Evidence::new(
            format!("{} NETLINK_GENERIC sockets", thousands(generic)),
            shell_command!("lsof -p {} | grep -c GENERIC", pid),
        ));
        finding.evidence.push(Evidence::new(
            format!(
                "expected at most {} = {} ports × {handlers} handler threads + {baseline} (rhbz 1526306: one upcall socket per port per handler)",
                thousands(expected),
                thousands(ports)
            ),
            shell_command!("ovs-vsctl --columns=name,type list Interface; ovs-vsctl get Open_vSwitch . other_config"),
        ));
        finding.evidence.push(Evidence::new(
            handlers_from,
            shell_command!("top -H -p {}", pid),
        ));
        finding.evidence.push(Evidence::fact(format!(
            "{} more than expected: about {} port-sets of {handlers} sockets, one per re-add of a port whose device was gone",
            thousands(excess),
            thousands(port_sets)
        )));
        let orphans: Vec<_> = cx
            .findings_of("ovs-orphan-port")
            .map(|f| f.id.clone())
            .collect();
        finding.caused_by.extend(orphans);
        if let Some((id, _)) = exhaustion {
            finding.causes.push(id);
        }
        let pid_text = pid.to_string();
        let excess_text = thousands(excess);
        cx.emit(finding, &[("pid", &pid_text), ("excess", &excess_text)]);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::testing::{ovs_with_log, process, snapshot};
    use nodedoc_model::{
        FdCensus, FdKindCount, Limit, NetNamespace, NetworkNamespaces, OvsInterface, OvsPort,
        ResourceLimit, SocketResolution, VswitchdProcess,
    };

    /// Seed 000: ovs-vswitchd at 102,409 NETLINK_GENERIC sockets, limit 102,400, on a
    /// 64-CPU node (47 handlers by default) with 40 ports on br-int, one of them
    /// `ha-d489f511-9f` whose namespace is gone and which neutron keeps re-adding.
    pub(crate) fn seed_000_snapshot() -> nodedoc_model::Snapshot {
        let generic = FdKind::NetlinkSocket {
            protocol: NetlinkProtocol::GENERIC,
        };
        let mut vswitchd = process(812, "ovs-vswitchd");
        vswitchd.threads = 60;
        vswitchd.nofile = Some(ResourceLimit {
            soft: Limit::Finite(102_400),
            hard: Limit::Finite(102_400),
        });
        vswitchd.fds = Some(FdCensus {
            total: 102_409,
            kinds: vec![FdKindCount {
                kind: generic,
                count: 102_409,
            }],
            socket_resolution: SocketResolution::PidfdGetfd,
            ..Default::default()
        });
        let mut s = snapshot(vec![vswitchd]);
        s.host.online_cpus = 64;
        let mut ovs_state = ovs_with_log(crate::ovs_port_flapping::tests::SEED_000_LOG);
        ovs_state.vswitchd = Some(VswitchdProcess {
            pid: 812,
            start_time_ticks: 100,
            found_by: "pidfile /var/run/openvswitch/ovs-vswitchd.pid".into(),
            handler_threads: 47,
            revalidator_threads: 13,
            threads: 60,
        });
        let mut ports: Vec<OvsPort> = (0..39)
            .map(|i| OvsPort {
                uuid: format!("p{i}"),
                name: format!("tap{i:02}"),
                interfaces: vec![OvsInterface {
                    uuid: format!("i{i}"),
                    name: format!("tap{i:02}"),
                    ofport: Some(i + 1),
                    ifindex: Some(100 + i),
                    ..OvsInterface::default()
                }],
            })
            .collect();
        ports.push(OvsPort {
            uuid: "p-ha".into(),
            name: "ha-d489f511-9f".into(),
            interfaces: vec![OvsInterface {
                uuid: "i-ha".into(),
                name: "ha-d489f511-9f".into(),
                interface_type: "internal".into(),
                ofport: Some(17750),
                ifindex: Some(0),
                external_ids: [(
                    "iface-id".to_string(),
                    "d489f511-9f9f-49e9-b772-f43bf3bfa04b".to_string(),
                )]
                .into(),
                ..OvsInterface::default()
            }],
        });
        ovs_state.bridges[0].ports = ports;
        s.ovs = Some(ovs_state);
        s.network = Some(NetworkNamespaces {
            namespaces: vec![NetNamespace {
                inode: 1,
                initial: true,
                entered_via: "/proc/1/ns/net".into(),
                devices: (0..39)
                    .map(|i| nodedoc_model::NetDevice {
                        name: format!("tap{i:02}"),
                        ifindex: 100 + i,
                        ..Default::default()
                    })
                    .collect(),
                ..NetNamespace::default()
            }],
            unreadable: vec![],
            unverified: vec![],
        });
        s
    }

    #[test]
    fn seed_000_figures_chain_from_flapping_to_fd_exhaustion() {
        let findings = crate::run(&seed_000_snapshot(), &Default::default());
        let by = |detector: &str| {
            findings
                .iter()
                .find(|f| f.detector == detector)
                .unwrap_or_else(|| panic!("no {detector} in {findings:#?}"))
        };
        let excess = by("ovs-netlink-socket-excess");
        assert_eq!(excess.severity, Severity::Critical);
        assert!(
            excess.summary.contains("holds 102,409 NETLINK_GENERIC sockets where its 40 kernel-datapath ports need at most 1,944: 100,465 leaked"),
            "{}",
            excess.summary
        );
        assert!(excess
            .evidence
            .iter()
            .any(|e| e.command.as_deref() == Some("lsof -p 812 | grep -c GENERIC")));
        assert!(excess.references.iter().any(|r| r.url.contains("1526306")));
        let exhaustion = by("fd-exhaustion");
        let orphan = by("ovs-orphan-port");
        let flapping = by("ovs-port-flapping");
        // fd-exhaustion ← excess ← orphan ← flapping
        assert_eq!(exhaustion.caused_by, vec![excess.id.clone()]);
        assert_eq!(excess.caused_by, vec![orphan.id.clone()]);
        assert_eq!(orphan.caused_by, vec![flapping.id.clone()]);
        assert!(flapping.caused_by.is_empty());
        assert_eq!(orphan.subject.key(), "ovs-interface/ha-d489f511-9f");
    }

    /// The same snapshot as a file, for `nodedoc check --from` in the integration tests.
    /// Regenerate with `NODEDOC_BLESS=1 cargo test -p nodedoc-detectors`.
    #[test]
    fn the_committed_snapshot_fixture_is_this_snapshot() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/seed-000-ovs-snapshot.json"
        );
        let json = serde_json::to_string_pretty(&seed_000_snapshot()).unwrap() + "\n";
        if std::env::var_os("NODEDOC_BLESS").is_some() {
            std::fs::write(path, &json).unwrap();
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == json,
            "{path} is stale: rerun with NODEDOC_BLESS=1"
        );
    }

    #[test]
    fn a_healthy_count_is_not_an_excess() {
        let mut s = seed_000_snapshot();
        let fds = s.processes[0].fds.as_mut().unwrap();
        fds.kinds[0].count = 1_900;
        fds.total = 1_900;
        let findings = crate::run(&s, &Default::default());
        assert!(!findings
            .iter()
            .any(|f| f.detector == "ovs-netlink-socket-excess"));
    }
}
