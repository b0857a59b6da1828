//! Typed views of the Open_vSwitch database (the `ovs-vswitchd.conf.db(5)` schema) and a
//! one-call dump of its bridge → port → interface topology.
//!
//! The views read only what diagnosing port problems needs and tolerate schema drift:
//! a column missing from an older or newer schema reads as its default.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::client::{rows_of, Client, ClientOptions};
use crate::data::{Row, Uuid};
use crate::endpoint::IntoEndpoint;
use crate::error::{DataError, Error};
use crate::monitor::{MonitorRequest, TableReplica};
use crate::ops::{Operation, Select};

/// The name of the Open vSwitch configuration database.
pub const OPEN_VSWITCH_DB: &str = "Open_vSwitch";

fn row_uuid(uuid: Option<Uuid>, row: &Row, table: &str) -> Result<Uuid, DataError> {
    uuid.or_else(|| row.uuid()).ok_or_else(|| {
        DataError::malformed(format!("{table} row"), "no _uuid column and no UUID given")
    })
}

/// The single row of the `Open_vSwitch` table: switch-wide configuration and status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenVSwitch {
    /// The row's UUID.
    pub uuid: Uuid,
    /// The Open vSwitch version, as set by the init scripts (e.g. `3.1.0`).
    pub ovs_version: Option<String>,
    /// The schema version the database was created with.
    pub db_version: Option<String>,
    /// The bridges.
    pub bridges: Vec<Uuid>,
    /// The datapath types this ovs-vswitchd supports (`system`, `netdev`), as it reports.
    #[serde(default)]
    pub datapath_types: Vec<String>,
    /// The configuration generation clients asked for.
    pub next_cfg: i64,
    /// The configuration generation ovs-vswitchd has applied; lagging behind `next_cfg`
    /// means ovs-vswitchd is not keeping up (or not running).
    pub cur_cfg: i64,
    /// Free-form configuration.
    pub other_config: BTreeMap<String, String>,
    /// Integration keys (e.g. `system-id`, `hostname`).
    pub external_ids: BTreeMap<String, String>,
}

impl OpenVSwitch {
    /// The table name.
    pub const TABLE: &'static str = "Open_vSwitch";
    /// The columns [`from_row`](Self::from_row) reads.
    pub const COLUMNS: &'static [&'static str] = &[
        "_uuid",
        "ovs_version",
        "db_version",
        "bridges",
        "datapath_types",
        "next_cfg",
        "cur_cfg",
        "other_config",
        "external_ids",
    ];

    /// Reads a row. `uuid` may be `None` when the row has a `_uuid` column.
    pub fn from_row(uuid: Option<Uuid>, row: &Row) -> Result<Self, DataError> {
        let r = row.reader(Self::TABLE);
        Ok(OpenVSwitch {
            uuid: row_uuid(uuid, row, Self::TABLE)?,
            ovs_version: r.optional_string("ovs_version")?,
            db_version: r.optional_string("db_version")?,
            bridges: r.uuid_set("bridges")?,
            datapath_types: r.string_set("datapath_types")?,
            next_cfg: r.integer("next_cfg")?,
            cur_cfg: r.integer("cur_cfg")?,
            other_config: r.string_map("other_config")?,
            external_ids: r.string_map("external_ids")?,
        })
    }
}

/// A row of the `Bridge` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bridge {
    /// The row's UUID.
    pub uuid: Uuid,
    /// The bridge name (unique).
    pub name: String,
    /// Its ports.
    pub ports: Vec<Uuid>,
    /// `""`/`system` (kernel datapath) or `netdev` (userspace/DPDK).
    pub datapath_type: String,
    /// The datapath ID ovs-vswitchd reports, once running.
    pub datapath_id: Option<String>,
    /// `standalone` or `secure`, when set.
    pub fail_mode: Option<String>,
    /// Free-form configuration.
    pub other_config: BTreeMap<String, String>,
    /// Integration keys.
    pub external_ids: BTreeMap<String, String>,
}

impl Bridge {
    /// The table name.
    pub const TABLE: &'static str = "Bridge";
    /// The columns [`from_row`](Self::from_row) reads.
    pub const COLUMNS: &'static [&'static str] = &[
        "_uuid",
        "name",
        "ports",
        "datapath_type",
        "datapath_id",
        "fail_mode",
        "other_config",
        "external_ids",
    ];

    /// Reads a row. `uuid` may be `None` when the row has a `_uuid` column.
    pub fn from_row(uuid: Option<Uuid>, row: &Row) -> Result<Self, DataError> {
        let r = row.reader(Self::TABLE);
        Ok(Bridge {
            uuid: row_uuid(uuid, row, Self::TABLE)?,
            name: r.string("name")?,
            ports: r.uuid_set("ports")?,
            datapath_type: r.string("datapath_type")?,
            datapath_id: r.optional_string("datapath_id")?,
            fail_mode: r.optional_string("fail_mode")?,
            other_config: r.string_map("other_config")?,
            external_ids: r.string_map("external_ids")?,
        })
    }
}

/// A row of the `Port` table: a switch port, made of one interface (or several, for a bond).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Port {
    /// The row's UUID.
    pub uuid: Uuid,
    /// The port name (unique).
    pub name: String,
    /// Its interfaces.
    pub interfaces: Vec<Uuid>,
    /// The access VLAN, if any.
    pub tag: Option<i64>,
    /// Free-form configuration.
    pub other_config: BTreeMap<String, String>,
    /// Integration keys.
    pub external_ids: BTreeMap<String, String>,
}

impl Port {
    /// The table name.
    pub const TABLE: &'static str = "Port";
    /// The columns [`from_row`](Self::from_row) reads.
    pub const COLUMNS: &'static [&'static str] = &[
        "_uuid",
        "name",
        "interfaces",
        "tag",
        "other_config",
        "external_ids",
    ];

    /// Reads a row. `uuid` may be `None` when the row has a `_uuid` column.
    pub fn from_row(uuid: Option<Uuid>, row: &Row) -> Result<Self, DataError> {
        let r = row.reader(Self::TABLE);
        Ok(Port {
            uuid: row_uuid(uuid, row, Self::TABLE)?,
            name: r.string("name")?,
            interfaces: r.uuid_set("interfaces")?,
            tag: r.optional_integer("tag")?,
            other_config: r.string_map("other_config")?,
            external_ids: r.string_map("external_ids")?,
        })
    }
}

/// A row of the `Interface` table: a network device attached to a port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    /// The row's UUID.
    pub uuid: Uuid,
    /// The interface name (unique); for `system` interfaces, the kernel netdev name.
    pub name: String,
    /// The interface type: `""` (a kernel netdev), `internal`, `patch`, `geneve`, `vxlan`,
    /// `dpdk`, …
    #[serde(rename = "type")]
    pub interface_type: String,
    /// The OpenFlow port number. `None` while unassigned (empty set); `Some(-1)` when
    /// ovs-vswitchd failed to add the interface — the signature of a port whose netdev is
    /// gone (a leaked port).
    pub ofport: Option<i64>,
    /// The OpenFlow port number requested, if any.
    pub ofport_request: Option<i64>,
    /// Why ovs-vswitchd could not configure the interface (e.g. "could not open network
    /// device tap1 (No such device)").
    pub error: Option<String>,
    /// `up` or `down`, as reported by ovs-vswitchd.
    pub link_state: Option<String>,
    /// `up` or `down`, as reported by ovs-vswitchd.
    pub admin_state: Option<String>,
    /// The kernel ifindex, once known.
    pub ifindex: Option<i64>,
    /// The MAC address in use.
    pub mac_in_use: Option<String>,
    /// The MTU, once known.
    pub mtu: Option<i64>,
    /// Integration keys: `iface-id`, `attached-mac`, `vm-uuid`, `iface-status`, …
    pub external_ids: BTreeMap<String, String>,
    /// Type-specific configuration (e.g. `peer` for patch ports, `remote_ip` for tunnels).
    pub options: BTreeMap<String, String>,
    /// Free-form configuration.
    pub other_config: BTreeMap<String, String>,
    /// Status reported by ovs-vswitchd (e.g. `driver_name`).
    pub status: BTreeMap<String, String>,
}

impl Interface {
    /// The table name.
    pub const TABLE: &'static str = "Interface";
    /// The columns [`from_row`](Self::from_row) reads.
    pub const COLUMNS: &'static [&'static str] = &[
        "_uuid",
        "name",
        "type",
        "ofport",
        "ofport_request",
        "error",
        "link_state",
        "admin_state",
        "ifindex",
        "mac_in_use",
        "mtu",
        "external_ids",
        "options",
        "other_config",
        "status",
    ];
    /// The columns [`OvsDump::fetch_lean`] reads.
    pub const LEAN_COLUMNS: &'static [&'static str] = &[
        "_uuid",
        "name",
        "type",
        "ofport",
        "error",
        "link_state",
        "admin_state",
        "ifindex",
        "mac_in_use",
        "external_ids",
    ];

    /// Reads a row. `uuid` may be `None` when the row has a `_uuid` column.
    pub fn from_row(uuid: Option<Uuid>, row: &Row) -> Result<Self, DataError> {
        let r = row.reader(Self::TABLE);
        Ok(Interface {
            uuid: row_uuid(uuid, row, Self::TABLE)?,
            name: r.string("name")?,
            interface_type: r.string("type")?,
            ofport: r.optional_integer("ofport")?,
            ofport_request: r.optional_integer("ofport_request")?,
            error: r.optional_string("error")?,
            link_state: r.optional_string("link_state")?,
            admin_state: r.optional_string("admin_state")?,
            ifindex: r.optional_integer("ifindex")?,
            mac_in_use: r.optional_string("mac_in_use")?,
            mtu: r.optional_integer("mtu")?,
            external_ids: r.string_map("external_ids")?,
            options: r.string_map("options")?,
            other_config: r.string_map("other_config")?,
            status: r.string_map("status")?,
        })
    }

    fn external_id(&self, key: &str) -> Option<&str> {
        self.external_ids.get(key).map(String::as_str)
    }

    /// `external_ids:iface-id`: the logical port (e.g. Neutron/OVN port) this is bound to.
    pub fn iface_id(&self) -> Option<&str> {
        self.external_id("iface-id")
    }

    /// `external_ids:attached-mac`: the VM or pod MAC behind the interface.
    pub fn attached_mac(&self) -> Option<&str> {
        self.external_id("attached-mac")
    }

    /// `external_ids:vm-uuid`: the VM the interface belongs to.
    pub fn vm_uuid(&self) -> Option<&str> {
        self.external_id("vm-uuid")
    }

    /// `external_ids:iface-status`: `active` or `inactive`, set by the hypervisor.
    pub fn iface_status(&self) -> Option<&str> {
        self.external_id("iface-status")
    }

    /// True when ovs-vswitchd reported a failure: `ofport` -1 or an `error`.
    pub fn has_failed(&self) -> bool {
        self.ofport == Some(-1) || self.error.is_some()
    }
}

/// A port with its interfaces resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortTopology {
    /// The port.
    pub port: Port,
    /// Its interfaces, by name.
    pub interfaces: Vec<Interface>,
}

/// A bridge with its ports (and their interfaces) resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BridgeTopology {
    /// The bridge.
    pub bridge: Bridge,
    /// Its ports, by name.
    pub ports: Vec<PortTopology>,
}

/// A reference to a row that is not in the dump. Impossible in a consistent snapshot (one
/// transaction), so its presence points at a server bug or a replica that missed updates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DanglingReference {
    /// The referring table.
    pub from_table: String,
    /// The referring row.
    pub from_uuid: Uuid,
    /// The referring column.
    pub column: String,
    /// The referenced UUID that is missing.
    pub missing: Uuid,
}

/// A snapshot of the Open vSwitch topology: bridges → ports → interfaces.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OvsDump {
    /// The `Open_vSwitch` row, if the database has been initialised.
    pub open_vswitch: Option<OpenVSwitch>,
    /// Every bridge, by name.
    pub bridges: Vec<BridgeTopology>,
    /// Ports no bridge refers to. OVS garbage-collects unreferenced ports at commit, so this
    /// is normally empty.
    pub unattached_ports: Vec<PortTopology>,
    /// Interfaces no port refers to (normally empty, likewise).
    pub unattached_interfaces: Vec<Interface>,
    /// References to rows that are not present.
    pub dangling_references: Vec<DanglingReference>,
}

impl OvsDump {
    /// Reads the four tables in one `transact` of selects on an open connection, so the
    /// tables are mutually consistent.
    ///
    /// Only the columns the typed views read are selected: a whole Interface row also carries
    /// `statistics` and more, which at 5,000 interfaces makes the reply four times larger and
    /// the server three times slower. The columns are first checked against the server's
    /// schema (one `get_schema`), because selecting a column the schema lacks is an error,
    /// while the views read a missing column as its default.
    pub async fn fetch(client: &Client) -> Result<OvsDump, Error> {
        OvsDump::fetch_columns(client, Interface::COLUMNS).await
    }

    /// Like [`fetch`](Self::fetch), but Interface rows carry only what diagnosing port
    /// problems needs ([`Interface::LEAN_COLUMNS`]: identity, OpenFlow port, state, error,
    /// ifindex, MAC, external ids); `options`, `other_config`, `status`, `mtu` and
    /// `ofport_request` read as their defaults. A third less server time at 5,000
    /// interfaces.
    pub async fn fetch_lean(client: &Client) -> Result<OvsDump, Error> {
        OvsDump::fetch_columns(client, Interface::LEAN_COLUMNS).await
    }

    /// The monitor requests of the four tables for [`from_replica`](Self::from_replica):
    /// the columns the typed views read (Interface: [`Interface::LEAN_COLUMNS`]) that this
    /// server's schema has — asking for a column the schema lacks is an error.
    pub fn monitor_requests(schema: &crate::schema::DatabaseSchema) -> Vec<MonitorRequest> {
        let request = |table: &str, columns: &[&str]| {
            MonitorRequest::new(table).columns(
                columns
                    .iter()
                    .copied()
                    .filter(|c| !c.starts_with('_') && schema.column_type(table, c).is_some()),
            )
        };
        vec![
            request(OpenVSwitch::TABLE, OpenVSwitch::COLUMNS),
            request(Bridge::TABLE, Bridge::COLUMNS),
            request(Port::TABLE, Port::COLUMNS),
            request(Interface::TABLE, Interface::LEAN_COLUMNS),
        ]
    }

    /// Like [`fetch_lean`](Self::fetch_lean), read as the initial state of a `monitor_cond`
    /// that is cancelled at once, instead of a `transact` of selects. Equally consistent
    /// (the initial state is one database state), and much cheaper for ovsdb-server, which
    /// serves monitors from its own replica while a select goes through a transaction:
    /// at 5,000 interfaces it answers in well under half the time.
    pub async fn fetch_monitored(client: &Client) -> Result<OvsDump, Error> {
        let schema = client.get_schema(OPEN_VSWITCH_DB).await?;
        let requests = OvsDump::monitor_requests(&schema);
        let monitor = client.monitor_cond(OPEN_VSWITCH_DB, &requests).await?;
        let mut replica = TableReplica::new(schema);
        let endpoint = client.endpoint().to_owned();
        let data_error = |source| Error::Data {
            endpoint: endpoint.clone(),
            source: Box::new(source),
        };
        replica.reset(&monitor.initial).map_err(data_error)?;
        // Dropping the updates stream sends monitor_cancel without waiting for it.
        drop(monitor.updates);
        OvsDump::from_replica(&replica).map_err(data_error)
    }

    async fn fetch_columns(client: &Client, interface_columns: &[&str]) -> Result<OvsDump, Error> {
        let schema = client.get_schema(OPEN_VSWITCH_DB).await?;
        let select = |table: &str, columns: &[&str]| -> Operation {
            let present: Vec<&str> = columns
                .iter()
                .copied()
                .filter(|c| c.starts_with('_') || schema.column_type(table, c).is_some())
                .collect();
            Select::new(table).columns(present).into()
        };
        let results = client
            .transact(
                OPEN_VSWITCH_DB,
                [
                    select(OpenVSwitch::TABLE, OpenVSwitch::COLUMNS),
                    select(Bridge::TABLE, Bridge::COLUMNS),
                    select(Port::TABLE, Port::COLUMNS),
                    select(Interface::TABLE, interface_columns),
                ],
            )
            .await?;
        let with_uuids = |index| rows_of(&results, index).iter().map(|row| (None, row));
        OvsDump::from_rows(with_uuids(0), with_uuids(1), with_uuids(2), with_uuids(3)).map_err(
            |source| Error::Data {
                endpoint: client.endpoint().to_owned(),
                source: Box::new(source),
            },
        )
    }

    /// Builds a dump from a monitor replica that includes the four tables.
    pub fn from_replica(replica: &TableReplica) -> Result<OvsDump, DataError> {
        let rows = |table| replica.rows(table).map(|(uuid, row)| (Some(uuid), row));
        OvsDump::from_rows(
            rows(OpenVSwitch::TABLE),
            rows(Bridge::TABLE),
            rows(Port::TABLE),
            rows(Interface::TABLE),
        )
    }

    /// Builds a dump from rows of the four tables. Each row comes with its UUID, or `None`
    /// when the row has a `_uuid` column (as `select` results do).
    pub fn from_rows<'a>(
        open_vswitch: impl IntoIterator<Item = (Option<Uuid>, &'a Row)>,
        bridges: impl IntoIterator<Item = (Option<Uuid>, &'a Row)>,
        ports: impl IntoIterator<Item = (Option<Uuid>, &'a Row)>,
        interfaces: impl IntoIterator<Item = (Option<Uuid>, &'a Row)>,
    ) -> Result<OvsDump, DataError> {
        let open_vswitch = open_vswitch
            .into_iter()
            .next()
            .map(|(u, r)| OpenVSwitch::from_row(u, r))
            .transpose()?;
        let bridges = bridges
            .into_iter()
            .map(|(u, r)| Bridge::from_row(u, r))
            .collect::<Result<Vec<_>, _>>()?;
        let mut ports: BTreeMap<Uuid, Port> = ports
            .into_iter()
            .map(|(u, r)| Port::from_row(u, r).map(|p| (p.uuid, p)))
            .collect::<Result<_, _>>()?;
        let mut interfaces: BTreeMap<Uuid, Interface> = interfaces
            .into_iter()
            .map(|(u, r)| Interface::from_row(u, r).map(|i| (i.uuid, i)))
            .collect::<Result<_, _>>()?;

        let mut dangling = Vec::new();
        // Interfaces may in principle be shared, so resolve them by clone and only then
        // remove the referenced ones from the "unattached" candidates.
        let mut attached_interfaces = BTreeSet::new();
        let mut resolve_port = |port: Port, dangling: &mut Vec<DanglingReference>| {
            let mut resolved: Vec<Interface> = Vec::with_capacity(port.interfaces.len());
            for uuid in &port.interfaces {
                match interfaces.get(uuid) {
                    Some(iface) => {
                        attached_interfaces.insert(*uuid);
                        resolved.push(iface.clone());
                    }
                    None => dangling.push(DanglingReference {
                        from_table: Port::TABLE.into(),
                        from_uuid: port.uuid,
                        column: "interfaces".into(),
                        missing: *uuid,
                    }),
                }
            }
            resolved.sort_by(|a, b| a.name.cmp(&b.name));
            PortTopology {
                port,
                interfaces: resolved,
            }
        };

        let mut topology = Vec::with_capacity(bridges.len());
        for bridge in bridges {
            let mut bridge_ports = Vec::with_capacity(bridge.ports.len());
            for uuid in &bridge.ports {
                match ports.remove(uuid) {
                    Some(port) => bridge_ports.push(resolve_port(port, &mut dangling)),
                    None => dangling.push(DanglingReference {
                        from_table: Bridge::TABLE.into(),
                        from_uuid: bridge.uuid,
                        column: "ports".into(),
                        missing: *uuid,
                    }),
                }
            }
            bridge_ports.sort_by(|a, b| a.port.name.cmp(&b.port.name));
            topology.push(BridgeTopology {
                bridge,
                ports: bridge_ports,
            });
        }
        topology.sort_by(|a, b| a.bridge.name.cmp(&b.bridge.name));

        let mut unattached_ports: Vec<PortTopology> = std::mem::take(&mut ports)
            .into_values()
            .map(|port| resolve_port(port, &mut dangling))
            .collect();
        unattached_ports.sort_by(|a, b| a.port.name.cmp(&b.port.name));
        interfaces.retain(|uuid, _| !attached_interfaces.contains(uuid));
        let mut unattached_interfaces: Vec<Interface> = interfaces.into_values().collect();
        unattached_interfaces.sort_by(|a, b| a.name.cmp(&b.name));

        if let Some(ovs) = &open_vswitch {
            let present: BTreeSet<Uuid> = topology.iter().map(|b| b.bridge.uuid).collect();
            for missing in ovs.bridges.iter().filter(|u| !present.contains(u)) {
                dangling.push(DanglingReference {
                    from_table: OpenVSwitch::TABLE.into(),
                    from_uuid: ovs.uuid,
                    column: "bridges".into(),
                    missing: *missing,
                });
            }
        }

        Ok(OvsDump {
            open_vswitch,
            bridges: topology,
            unattached_ports,
            unattached_interfaces,
            dangling_references: dangling,
        })
    }

    /// The bridge with this name.
    pub fn bridge(&self, name: &str) -> Option<&BridgeTopology> {
        self.bridges.iter().find(|b| b.bridge.name == name)
    }

    /// Every interface attached to a bridge, with its bridge and port.
    pub fn interfaces(&self) -> impl Iterator<Item = (&Bridge, &Port, &Interface)> {
        self.bridges.iter().flat_map(|b| {
            b.ports
                .iter()
                .flat_map(move |p| p.interfaces.iter().map(move |i| (&b.bridge, &p.port, i)))
        })
    }

    /// The attached interface with this name, with its bridge and port.
    pub fn find_interface(&self, name: &str) -> Option<(&Bridge, &Port, &Interface)> {
        self.interfaces().find(|(_, _, i)| i.name == name)
    }
}

/// Connects to `endpoint`, reads the Open vSwitch topology in one transaction and
/// disconnects. `timeout` bounds the whole operation, connecting included.
pub async fn dump(endpoint: impl IntoEndpoint, timeout: Duration) -> Result<OvsDump, Error> {
    let endpoint = endpoint.into_endpoint()?;
    let options = ClientOptions {
        connect_timeout: timeout,
        request_timeout: Some(timeout),
        ..ClientOptions::default()
    };
    let work = async {
        let client = Client::connect_with(&endpoint, options).await?;
        OvsDump::fetch(&client).await
    };
    tokio::time::timeout(timeout, work)
        .await
        .unwrap_or_else(|_| {
            Err(Error::Timeout {
                endpoint: endpoint.to_string(),
                method: "dump".into(),
                timeout,
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(v: serde_json::Value) -> Row {
        Row::from_json(&v).unwrap()
    }

    #[test]
    fn joins_bridges_ports_and_interfaces_and_reports_leftovers() {
        let u = |n: u128| Uuid::from_u128(n);
        let uj = |n: u128| json!(["uuid", u(n).to_string()]);
        let ovs = row(
            json!({"_uuid": uj(1), "bridges": uj(10), "ovs_version": "3.1.0",
                             "db_version": ["set", []]}),
        );
        let br = row(json!({"_uuid": uj(10), "name": "br0",
                            "ports": ["set", [uj(20), uj(21), uj(29)]]}));
        let p_a = row(json!({"_uuid": uj(20), "name": "a", "interfaces": uj(30)}));
        let p_b = row(json!({"_uuid": uj(21), "name": "b", "interfaces": ["set", [uj(31)]]}));
        let p_orphan = row(json!({"_uuid": uj(22), "name": "z", "interfaces": ["set", []]}));
        let i_a = row(json!({"_uuid": uj(30), "name": "a", "ofport": -1,
                             "error": "could not open network device a (No such device)",
                             "external_ids": ["map", [["iface-id", "lp1"], ["attached-mac", "00:00:00:00:00:01"]]]}));
        let i_b =
            row(json!({"_uuid": uj(31), "name": "b", "ofport": ["set", []], "type": "internal"}));
        let i_orphan = row(json!({"_uuid": uj(32), "name": "q"}));

        let dump = OvsDump::from_rows(
            [(None, &ovs)],
            [(None, &br)],
            [(None, &p_b), (None, &p_a), (None, &p_orphan)],
            [(None, &i_a), (None, &i_b), (None, &i_orphan)],
        )
        .unwrap();
        let ovs = dump.open_vswitch.as_ref().unwrap();
        assert_eq!(ovs.ovs_version.as_deref(), Some("3.1.0"));
        assert_eq!(ovs.db_version, None);
        let br0 = dump.bridge("br0").unwrap();
        let names: Vec<_> = br0.ports.iter().map(|p| p.port.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        let (_, _, a) = dump.find_interface("a").unwrap();
        assert!(a.has_failed());
        assert_eq!(a.ofport, Some(-1));
        assert_eq!(a.iface_id(), Some("lp1"));
        assert_eq!(a.attached_mac(), Some("00:00:00:00:00:01"));
        let (_, _, b) = dump.find_interface("b").unwrap();
        assert_eq!(b.ofport, None);
        assert_eq!(b.interface_type, "internal");
        assert!(!b.has_failed());
        assert_eq!(dump.unattached_ports.len(), 1);
        assert_eq!(dump.unattached_interfaces[0].name, "q");
        assert_eq!(
            dump.dangling_references,
            vec![DanglingReference {
                from_table: "Bridge".into(),
                from_uuid: u(10),
                column: "ports".into(),
                missing: u(29)
            }]
        );
        // Serializes for nodedoc snapshots, with the schema's column name for the type.
        let json = serde_json::to_value(&dump).unwrap();
        assert_eq!(
            json["bridges"][0]["ports"][1]["interfaces"][0]["type"],
            "internal"
        );
        let back: OvsDump = serde_json::from_value(json).unwrap();
        assert_eq!(back, dump);
    }

    #[test]
    fn wrong_column_types_are_errors_not_panics() {
        let bad = row(json!({"_uuid": ["uuid", Uuid::from_u128(5).to_string()], "ofport": "x"}));
        let err = Interface::from_row(None, &bad).unwrap_err();
        assert!(err.to_string().contains("column ofport"), "{err}");
        assert!(Interface::from_row(None, &row(json!({}))).is_err());
    }
}
