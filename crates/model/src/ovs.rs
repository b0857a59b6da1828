//! Open vSwitch as the collectors saw it: the OVSDB topology, the ovs-vswitchd process and
//! the events of its log that nodedoc's OVS detectors read.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// What the OVS collector read, when an OVSDB socket was found.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OvsState {
    /// The OVSDB endpoint that was read, e.g. `unix:/var/run/openvswitch/db.sock`.
    pub endpoint: String,
    /// `ovs_version` of the `Open_vSwitch` row (set by the init scripts), e.g. `3.1.0`.
    #[serde(default)]
    pub ovs_version: Option<String>,
    /// `db_version`: the schema version of the database.
    #[serde(default)]
    pub db_version: Option<String>,
    /// `datapath_types` of the `Open_vSwitch` row: the datapath types this build supports.
    #[serde(default)]
    pub datapath_types: Vec<String>,
    /// `other_config` of the `Open_vSwitch` row (`n-handler-threads`, …).
    #[serde(default)]
    pub other_config: BTreeMap<String, String>,
    /// `other_config:n-handler-threads`, when set and numeric.
    #[serde(default)]
    pub n_handler_threads: Option<u32>,
    /// `other_config:n-revalidator-threads`, when set and numeric.
    #[serde(default)]
    pub n_revalidator_threads: Option<u32>,
    /// The configuration generation clients asked for (`next_cfg`).
    #[serde(default)]
    pub next_cfg: i64,
    /// The generation ovs-vswitchd has applied (`cur_cfg`); lagging means it is not keeping up.
    #[serde(default)]
    pub cur_cfg: i64,
    /// Every bridge, by name, with its ports and interfaces.
    #[serde(default)]
    pub bridges: Vec<OvsBridge>,
    /// The ovs-vswitchd serving this database, when found.
    #[serde(default)]
    pub vswitchd: Option<VswitchdProcess>,
    /// Events from ovs-vswitchd.log, when the log was found and read.
    #[serde(default)]
    pub log: Option<OvsLog>,
    /// True when only ovs-vswitchd's log was read, not the OVSDB (a copied log, a host where
    /// OVS is not running): the bridges and interfaces are then unknown, not absent, and only
    /// what the log says can be judged.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub log_only: bool,
    /// Interface rows over time, as an OVSDB monitor saw them change (`nodedoc watch`; a
    /// one-shot read has no history).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_history: Option<OvsDbHistory>,
}

impl OvsState {
    /// Every interface with its bridge and port.
    pub fn interfaces(&self) -> impl Iterator<Item = (&OvsBridge, &OvsPort, &OvsInterface)> {
        self.bridges.iter().flat_map(|b| {
            b.ports
                .iter()
                .flat_map(move |p| p.interfaces.iter().map(move |i| (b, p, i)))
        })
    }

    /// The interface with this name, with its bridge and port.
    pub fn interface(&self, name: &str) -> Option<(&OvsBridge, &OvsPort, &OvsInterface)> {
        self.interfaces().find(|(_, _, i)| i.name == name)
    }
}

/// A bridge.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OvsBridge {
    /// The row's UUID.
    pub uuid: String,
    /// The bridge name.
    pub name: String,
    /// `""`/`system` (the kernel datapath, upcalls over generic netlink) or `netdev`
    /// (userspace).
    #[serde(default)]
    pub datapath_type: String,
    /// Its ports, by name.
    #[serde(default)]
    pub ports: Vec<OvsPort>,
}

impl OvsBridge {
    /// True when the bridge uses the kernel datapath, whose ports each cost ovs-vswitchd
    /// generic netlink sockets.
    pub fn is_kernel_datapath(&self) -> bool {
        self.datapath_type.is_empty() || self.datapath_type == "system"
    }
}

/// A port.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OvsPort {
    /// The row's UUID.
    pub uuid: String,
    /// The port name.
    pub name: String,
    /// Its interfaces (one, or several for a bond).
    #[serde(default)]
    pub interfaces: Vec<OvsInterface>,
}

/// An interface: the OVSDB row, as ovs-vswitchd last reported it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OvsInterface {
    /// The row's UUID.
    pub uuid: String,
    /// The interface name; for kernel-backed types, the network device's name.
    pub name: String,
    /// `""` (a kernel device), `internal`, `patch`, `vxlan`, `dpdk`, …
    #[serde(default, rename = "type")]
    pub interface_type: String,
    /// The OpenFlow port: `None` while unassigned, -1 when ovs-vswitchd could not add it.
    #[serde(default)]
    pub ofport: Option<i64>,
    /// Why ovs-vswitchd could not configure it.
    #[serde(default)]
    pub error: Option<String>,
    /// `up` or `down`.
    #[serde(default)]
    pub link_state: Option<String>,
    /// `up` or `down`.
    #[serde(default)]
    pub admin_state: Option<String>,
    /// The kernel ifindex ovs-vswitchd sees in its own network namespace (0 when the device
    /// is not there).
    #[serde(default)]
    pub ifindex: Option<i64>,
    /// The MAC address in use.
    #[serde(default)]
    pub mac_in_use: Option<String>,
    /// `external_ids`: `iface-id`, `attached-mac`, `vm-uuid`, `iface-status`, …
    #[serde(default)]
    pub external_ids: BTreeMap<String, String>,
}

impl OvsInterface {
    fn external_id(&self, key: &str) -> Option<&str> {
        self.external_ids.get(key).map(String::as_str)
    }

    /// `external_ids:iface-id`: the Neutron/OVN logical port.
    pub fn iface_id(&self) -> Option<&str> {
        self.external_id("iface-id")
    }

    /// `external_ids:attached-mac`.
    pub fn attached_mac(&self) -> Option<&str> {
        self.external_id("attached-mac")
    }

    /// `external_ids:vm-uuid`: the VM (set by libvirt/nova).
    pub fn vm_uuid(&self) -> Option<&str> {
        self.external_id("vm-uuid")
    }

    /// `external_ids:iface-status`: `active` or `inactive`.
    pub fn iface_status(&self) -> Option<&str> {
        self.external_id("iface-status")
    }
}

/// The ovs-vswitchd process serving the database.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VswitchdProcess {
    /// Its pid (its fd census and CPU are in the snapshot's process list).
    pub pid: i32,
    /// Its start time, to tell a reused pid apart.
    pub start_time_ticks: u64,
    /// How it was found: `pidfile PATH`, or `procfs` (by name and command line).
    pub found_by: String,
    /// Threads named `handlerN` (`/proc/PID/task/*/comm`): upcall handlers.
    pub handler_threads: u32,
    /// Threads named `revalidatorN`.
    pub revalidator_threads: u32,
    /// All threads.
    pub threads: u32,
}

/// The part of ovs-vswitchd.log that was read, reduced to the events detectors use.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OvsLog {
    /// The file.
    pub path: String,
    /// How it was found: `--ovs-log`, or `open by ovs-vswitchd (fd N)`.
    pub found_by: String,
    /// The file's size when read.
    pub size: u64,
    /// The byte offset where reading started (0 when the whole file was read; the log can
    /// grow by megabytes a minute in the failure it is read for, so only a tail is read).
    pub read_from: u64,
    /// The line number (1-based) of the first line read, when known: counted when the
    /// skipped part was small enough, `None` otherwise (event `line`s then count from the
    /// start of the tail).
    #[serde(default)]
    pub first_line: Option<u64>,
    /// Lines read.
    pub lines_read: u64,
    /// Timestamp of the first line read, as written.
    #[serde(default)]
    pub first_timestamp: Option<String>,
    /// Timestamp of the last line read, as written.
    #[serde(default)]
    pub last_timestamp: Option<String>,
    /// How many lines of each event kind were read (every one, kept or not).
    #[serde(default)]
    pub counts: BTreeMap<String, u64>,
    /// The same counts per interface: interface → kind → lines.
    #[serde(default)]
    pub interface_counts: BTreeMap<String, BTreeMap<String, u64>>,
    /// The events, in log order. Repetitive kinds keep their first and last lines per
    /// interface only (the counts carry the rest).
    #[serde(default)]
    pub events: Vec<OvsLogEvent>,
}

impl OvsLog {
    /// The count of one event kind (`interface-added`, …).
    pub fn count(&self, kind: &str) -> u64 {
        self.counts.get(kind).copied().unwrap_or(0)
    }

    /// The count of one event kind about one interface.
    pub fn interface_count(&self, interface: &str, kind: &str) -> u64 {
        self.interface_counts
            .get(interface)
            .and_then(|kinds| kinds.get(kind))
            .copied()
            .unwrap_or(0)
    }

    /// The events about one interface, in log order.
    pub fn events_of<'a>(
        &'a self,
        interface: &'a str,
    ) -> impl DoubleEndedIterator<Item = &'a OvsLogEvent> {
        self.events
            .iter()
            .filter(move |e| e.kind.interface() == Some(interface))
    }
}

/// One line of ovs-vswitchd.log that matters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OvsLogEvent {
    /// Line number (see [`OvsLog::first_line`]).
    pub line: u64,
    /// The timestamp as written (`2021-04-15T12:36:29.723Z`).
    pub timestamp: String,
    /// The same, in milliseconds since the Unix epoch, when it parses.
    #[serde(default)]
    pub unix_ms: Option<i64>,
    /// What happened.
    #[serde(flatten)]
    pub kind: OvsLogEventKind,
}

/// The events nodedoc reads from ovs-vswitchd.log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum OvsLogEventKind {
    /// `bridge|INFO|bridge BR: added interface X on port N`.
    InterfaceAdded {
        /// The bridge.
        bridge: String,
        /// The interface.
        interface: String,
        /// The OpenFlow port it got.
        ofport: i64,
    },
    /// `bridge|INFO|bridge BR: deleted interface X on port N`.
    InterfaceDeleted {
        /// The bridge.
        bridge: String,
        /// The interface.
        interface: String,
        /// The OpenFlow port it had.
        ofport: i64,
    },
    /// `netdev_linux|WARN|error receiving Ethernet packet on X: ERROR`: ovs-vswitchd polls a
    /// device that is gone (the busy loop of a port whose namespace was deleted).
    ReceiveError {
        /// The interface.
        interface: String,
        /// The error, e.g. `File descriptor in bad state`.
        error: String,
    },
    /// `Dropped N log messages in last S seconds …`: the rate limiter hid N lines.
    DroppedMessages {
        /// How many.
        count: u64,
    },
    /// `dpif|…|DP: failed to query port X: ERROR` (seed 000, kernel datapath).
    QueryPortFailed {
        /// The datapath, e.g. `system@ovs-system`.
        datapath: String,
        /// The port.
        interface: String,
        /// The error, e.g. `No such device`.
        error: String,
    },
    /// `could not open network device X (ERROR)`: seen at (re)start for a device that is gone.
    OpenFailed {
        /// The device.
        interface: String,
        /// The error, e.g. `No such device`.
        error: String,
    },
}

impl OvsLogEventKind {
    /// The kebab-case name of the kind, as used in [`OvsLog::counts`].
    pub fn name(&self) -> &'static str {
        match self {
            OvsLogEventKind::InterfaceAdded { .. } => "interface-added",
            OvsLogEventKind::InterfaceDeleted { .. } => "interface-deleted",
            OvsLogEventKind::ReceiveError { .. } => "receive-error",
            OvsLogEventKind::DroppedMessages { .. } => "dropped-messages",
            OvsLogEventKind::QueryPortFailed { .. } => "query-port-failed",
            OvsLogEventKind::OpenFailed { .. } => "open-failed",
        }
    }

    /// The interface the event is about, if any.
    pub fn interface(&self) -> Option<&str> {
        match self {
            OvsLogEventKind::InterfaceAdded { interface, .. }
            | OvsLogEventKind::InterfaceDeleted { interface, .. }
            | OvsLogEventKind::ReceiveError { interface, .. }
            | OvsLogEventKind::QueryPortFailed { interface, .. }
            | OvsLogEventKind::OpenFailed { interface, .. } => Some(interface),
            OvsLogEventKind::DroppedMessages { .. } => None,
        }
    }
}

/// Interface rows inserted, deleted and changed over time, as the agent's OVSDB monitor saw
/// them: what `ovsdb-client monitor Interface name,ofport,external_ids` prints (seed 002's
/// neutron agent watches exactly that), kept bounded. An interface quiet for
/// [`window_secs`](Self::window_secs) is forgotten with its events, so a loop that stopped
/// stops being reported.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OvsDbHistory {
    /// When the monitor first delivered the database (ms since the Unix epoch).
    pub since_unix_ms: u64,
    /// An interface with no event for this long is forgotten.
    pub window_secs: u64,
    /// Per interface name, what happened to its rows while followed.
    #[serde(default)]
    pub interfaces: BTreeMap<String, OvsDbInterfaceCounts>,
    /// The most recent events, oldest first (bounded per interface and in all).
    #[serde(default)]
    pub events: Vec<OvsDbEvent>,
    /// Events that the bounds pushed out (the counts still include them).
    #[serde(default)]
    pub events_dropped: u64,
    /// Interfaces forgotten to make room for others (not for being quiet).
    #[serde(default)]
    pub interfaces_evicted: u64,
    /// Times the monitor had to start over from a fresh copy of the database (the
    /// connection was lost, or the agent fell behind the updates): changes in between are
    /// known only as the difference of the two copies.
    #[serde(default)]
    pub resyncs: u64,
}

impl OvsDbHistory {
    /// The events about one interface, oldest first.
    pub fn events_of<'a>(
        &'a self,
        interface: &'a str,
    ) -> impl DoubleEndedIterator<Item = &'a OvsDbEvent> {
        self.events.iter().filter(move |e| e.interface == interface)
    }
}

/// What happened to one interface's rows while the monitor followed it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OvsDbInterfaceCounts {
    /// Rows of this name inserted (`add-port`).
    pub inserted: u64,
    /// Rows of this name deleted (`del-port`).
    pub deleted: u64,
    /// Changes of `ofport` (ovs-vswitchd assigning one, or giving up with -1).
    #[serde(default)]
    pub ofport_changes: u64,
    /// The bridge it was last seen on.
    #[serde(default)]
    pub bridge: Option<String>,
    /// The first event (ms since the Unix epoch).
    pub first_unix_ms: u64,
    /// The last event.
    pub last_unix_ms: u64,
}

/// One change of an Interface row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OvsDbEvent {
    /// When the update arrived (ms since the Unix epoch).
    pub at_unix_ms: u64,
    /// The interface name.
    pub interface: String,
    /// The row's UUID (a re-added interface is a new row).
    pub uuid: String,
    /// Its bridge, when its port was on one.
    #[serde(default)]
    pub bridge: Option<String>,
    /// What changed.
    #[serde(flatten)]
    pub kind: OvsDbEventKind,
}

/// The changes of an Interface row the agent reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum OvsDbEventKind {
    /// The row appeared (`ovs-vsctl add-port`), with the ids its creator set (libvirt:
    /// `iface-id`, `attached-mac`, `vm-uuid`, `iface-status`).
    Inserted {
        /// `type`.
        #[serde(rename = "type")]
        interface_type: String,
        /// `ofport` at insertion (normally unassigned).
        ofport: Option<i64>,
        /// `external_ids`.
        external_ids: BTreeMap<String, String>,
    },
    /// `ofport` changed: ovs-vswitchd assigned one, or gave up (-1).
    Ofport {
        /// Before.
        from: Option<i64>,
        /// After.
        to: Option<i64>,
    },
    /// `external_ids` changed.
    ExternalIds {
        /// The new map.
        external_ids: BTreeMap<String, String>,
    },
    /// `error` changed (set by ovs-vswitchd when it cannot open the device).
    Error {
        /// The new error, `None` once cleared.
        error: Option<String>,
    },
    /// `link_state` changed.
    LinkState {
        /// The new state.
        link_state: Option<String>,
    },
    /// The row is gone (`ovs-vsctl del-port`).
    Deleted {
        /// Its last `ofport`.
        ofport: Option<i64>,
    },
}

impl OvsDbEventKind {
    /// The kebab-case name (`inserted`, `ofport`, …), as serialized.
    pub fn name(&self) -> &'static str {
        match self {
            OvsDbEventKind::Inserted { .. } => "inserted",
            OvsDbEventKind::Ofport { .. } => "ofport",
            OvsDbEventKind::ExternalIds { .. } => "external-ids",
            OvsDbEventKind::Error { .. } => "error",
            OvsDbEventKind::LinkState { .. } => "link-state",
            OvsDbEventKind::Deleted { .. } => "deleted",
        }
    }
}

/// The kernel's network devices in every network namespace that could be entered.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkNamespaces {
    /// One entry per namespace (by inode), the initial one first.
    pub namespaces: Vec<NetNamespace>,
    /// Namespaces that were known but could not be read (their inode and why).
    #[serde(default)]
    pub unreadable: Vec<String>,
    /// Interfaces an OVSDB update named after the namespaces were read, whose device was not
    /// in nodedoc's own namespace either: where (or whether) it exists is not known until the
    /// next reading. Only the agent has these (between rounds).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unverified: Vec<String>,
}

impl NetworkNamespaces {
    /// Every namespace holding a device with this name, with the device.
    pub fn find(&self, name: &str) -> Vec<(&NetNamespace, &NetDevice)> {
        self.namespaces
            .iter()
            .flat_map(|ns| {
                ns.devices
                    .iter()
                    .filter(move |d| d.name == name)
                    .map(move |d| (ns, d))
            })
            .collect()
    }

    /// True when every known namespace was read.
    pub fn complete(&self) -> bool {
        self.unreadable.is_empty()
    }

    /// True when the device of interface `name` was not looked for everywhere since OVSDB
    /// last named it (see [`unverified`](Self::unverified)).
    pub fn is_unverified(&self, name: &str) -> bool {
        self.unverified.iter().any(|u| u == name)
    }
}

/// One network namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetNamespace {
    /// Its inode (`net:[INODE]`).
    pub inode: u64,
    /// Its names under /run/netns (`ip netns`), if any.
    #[serde(default)]
    pub names: Vec<String>,
    /// True for the host's namespace (pid 1's; nodedoc's own when pid 1's cannot be read).
    #[serde(default)]
    pub initial: bool,
    /// How it was entered: `/run/netns/NAME` or `/proc/PID/ns/net`.
    pub entered_via: String,
    /// Its devices, by ifindex.
    pub devices: Vec<NetDevice>,
}

impl fmt::Display for NetNamespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.initial {
            write!(f, "the host namespace")
        } else if let Some(name) = self.names.first() {
            write!(f, "netns {name}")
        } else {
            write!(f, "netns net:[{}]", self.inode)
        }
    }
}

/// One network device.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetDevice {
    /// The name.
    pub name: String,
    /// The ifindex (unique within its namespace only).
    pub ifindex: u32,
    /// `IFLA_INFO_KIND`: `veth`, `tun`, `openvswitch`, `bridge`, …; none for physical ones.
    #[serde(default)]
    pub kind: Option<String>,
    /// True when administratively up (`IFF_UP`).
    #[serde(default)]
    pub up: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_events_serialize_flat_with_their_kind() {
        let event = OvsLogEvent {
            line: 7,
            timestamp: "2021-04-15T12:36:29.723Z".into(),
            unix_ms: Some(1_618_490_189_723),
            kind: OvsLogEventKind::InterfaceAdded {
                bridge: "br-int".into(),
                interface: "ha-d489f511-9f".into(),
                ofport: 17744,
            },
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["event"], "interface-added");
        assert_eq!(json["ofport"], 17744);
        assert_eq!(serde_json::from_value::<OvsLogEvent>(json).unwrap(), event);
        assert_eq!(event.kind.interface(), Some("ha-d489f511-9f"));
    }

    #[test]
    fn devices_are_found_in_any_namespace() {
        let nets = NetworkNamespaces {
            namespaces: vec![
                NetNamespace {
                    inode: 1,
                    initial: true,
                    entered_via: "/proc/1/ns/net".into(),
                    devices: vec![NetDevice {
                        name: "lo".into(),
                        ifindex: 1,
                        ..NetDevice::default()
                    }],
                    ..NetNamespace::default()
                },
                NetNamespace {
                    inode: 2,
                    names: vec!["qrouter-x".into()],
                    entered_via: "/run/netns/qrouter-x".into(),
                    devices: vec![NetDevice {
                        name: "qr-1".into(),
                        ifindex: 9,
                        ..NetDevice::default()
                    }],
                    ..NetNamespace::default()
                },
            ],
            unreadable: vec![],
            unverified: vec![],
        };
        let found = nets.find("qr-1");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0.to_string(), "netns qrouter-x");
        assert!(nets.find("ha-1").is_empty());
        assert!(nets.complete());
    }
}
