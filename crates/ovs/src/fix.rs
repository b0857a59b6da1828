//! Removing orphaned ports, guarded.
//!
//! The plan records the rows as they were read: each interface's `_uuid`, `name`, `ofport`,
//! `ifindex` and `error`, its port's `_uuid` and interface set, and the bridge's `_uuid`. The
//! transaction starts with `wait` operations (timeout 0: assertions) that require those rows
//! to be exactly as read, then removes each port from its bridge's `ports` (which is what
//! `ovs-vsctl del-port` does; OVSDB garbage-collects the unreferenced Port and Interface
//! rows). So a port that came back between reading and writing — re-created with another
//! uuid, or re-opened by ovs-vswitchd with a new ofport or ifindex — makes its `wait` fail,
//! and the whole transaction changes nothing.
//!
//! One transaction for all ports: either every planned port is removed or none is. When a
//! `wait` fails, [`OrphanRemoval::apply`] names the port that changed, spares it, and
//! retries once more with the rest (still guarded), until only unchanged ports remain.
//!
//! The `wait`s see only OVSDB. A device re-created with the port's name in some network
//! namespace while the operator read the plan (a VM restarted, an agent re-plugged the port)
//! leaves the OVSDB rows as they were, yet the port is no longer an orphan. So
//! [`OrphanRemoval::apply_after_recheck`] reads every network namespace again right before
//! the transaction and spares each port whose device now exists somewhere; when some
//! namespace cannot be read even on a second try, it spares every port, since the device
//! could be there.

use std::path::Path;

use nodedoc_model::text::{ShellCommand, Unquotable};
use nodedoc_model::{shell_command, NetworkNamespaces, OvsState};
use nodedoc_ovsdb::{
    Client, Condition, Datum, Error as OvsdbError, Mutate, Mutation, Operation, Row, Uuid, Wait,
    WaitUntil, OPEN_VSWITCH_DB,
};
use serde::Serialize;
use serde_json::Value;

use crate::OvsError;

/// An interface as it was read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SeenInterface {
    /// Its row.
    pub uuid: Uuid,
    /// Its name.
    pub name: String,
    /// `ofport` as read.
    pub ofport: Option<i64>,
    /// `ifindex` as read.
    pub ifindex: Option<i64>,
    /// `error` as read.
    pub error: Option<String>,
}

/// One port to remove.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlannedRemoval {
    /// The bridge's name.
    pub bridge: String,
    /// The bridge's row.
    pub bridge_uuid: Uuid,
    /// The port's name.
    pub port: String,
    /// The port's row.
    pub port_uuid: Uuid,
    /// Its interfaces as read.
    pub interfaces: Vec<SeenInterface>,
}

/// Operations each removal contributes: wait on each interface, wait on the port, mutate.
fn operations_of(removal: &PlannedRemoval) -> Vec<Operation> {
    let optional_integer = |v: Option<i64>| v.map_or_else(Datum::empty_set, Datum::from);
    let optional_string = |v: &Option<String>| {
        v.as_deref()
            .map_or_else(Datum::empty_set, |s| Datum::from(s.to_string()))
    };
    let mut ops: Vec<Operation> = Vec::new();
    for iface in &removal.interfaces {
        ops.push(
            Wait::new(
                "Interface",
                ["name", "ofport", "ifindex", "error"],
                WaitUntil::Equal,
                vec![Row::new()
                    .with("name", iface.name.clone())
                    .with("ofport", optional_integer(iface.ofport))
                    .with("ifindex", optional_integer(iface.ifindex))
                    .with("error", optional_string(&iface.error))],
            )
            .condition(Condition::uuid(iface.uuid))
            .timeout(std::time::Duration::ZERO)
            .into(),
        );
    }
    ops.push(
        Wait::new(
            "Port",
            ["name", "interfaces"],
            WaitUntil::Equal,
            vec![Row::new().with("name", removal.port.clone()).with(
                "interfaces",
                Datum::set(removal.interfaces.iter().map(|i| i.uuid)),
            )],
        )
        .condition(Condition::uuid(removal.port_uuid))
        .timeout(std::time::Duration::ZERO)
        .into(),
    );
    ops.push(
        Mutate::new("Bridge")
            .condition(Condition::uuid(removal.bridge_uuid))
            .mutation(Mutation::delete("ports", Datum::set([removal.port_uuid])))
            .into(),
    );
    ops
}

/// The ports to remove, as read, and the transaction that removes them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OrphanRemoval {
    /// One entry per port.
    pub removals: Vec<PlannedRemoval>,
}

/// What [`OrphanRemoval::recheck`] decided.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Recheck {
    /// The ports still to remove.
    pub remaining: OrphanRemoval,
    /// Ports spared (`BRIDGE/PORT`), with why.
    pub spared: Vec<(String, String)>,
}

/// What [`OrphanRemoval::apply`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RemovalOutcome {
    /// Ports removed (`BRIDGE/PORT`).
    pub removed: Vec<String>,
    /// Ports left alone because they changed since they were read, with what changed.
    pub spared: Vec<(String, String)>,
}

impl OrphanRemoval {
    /// Plans the removal of the ports holding the named interfaces, from the rows as they
    /// were read into `state` (the same read the detector judged).
    pub fn plan(state: &OvsState, interfaces: &[String]) -> Result<OrphanRemoval, OvsError> {
        let uuid = |text: &str, what: &str| {
            text.parse::<Uuid>()
                .map_err(|_| OvsError::Plan(format!("{what} has no valid uuid ({text:?})")))
        };
        let mut removals: Vec<PlannedRemoval> = Vec::new();
        for name in interfaces {
            let (bridge, port, _) = state
                .interface(name)
                .ok_or_else(|| OvsError::Plan(format!("interface {name} is not on any bridge")))?;
            let port_uuid = uuid(&port.uuid, &format!("port {}", port.name))?;
            if removals.iter().any(|r| r.port_uuid == port_uuid) {
                continue;
            }
            removals.push(PlannedRemoval {
                bridge: bridge.name.clone(),
                bridge_uuid: uuid(&bridge.uuid, &format!("bridge {}", bridge.name))?,
                port: port.name.clone(),
                port_uuid,
                interfaces: port
                    .interfaces
                    .iter()
                    .map(|i| {
                        Ok(SeenInterface {
                            uuid: uuid(&i.uuid, &format!("interface {}", i.name))?,
                            name: i.name.clone(),
                            ofport: i.ofport,
                            ifindex: i.ifindex,
                            error: i.error.clone(),
                        })
                    })
                    .collect::<Result<_, OvsError>>()?,
            });
        }
        Ok(OrphanRemoval { removals })
    }

    /// True when there is nothing to remove.
    pub fn is_empty(&self) -> bool {
        self.removals.is_empty()
    }

    /// The transaction's operations, guards first.
    pub fn operations(&self) -> Vec<Operation> {
        let mut ops: Vec<Operation> = self.removals.iter().flat_map(operations_of).collect();
        ops.push(Operation::comment(format!(
            "nodedoc fix ovs-orphan-port: del-port {}",
            self.removals
                .iter()
                .map(|r| format!("{} {}", r.bridge, r.port))
                .collect::<Vec<_>>()
                .join(", ")
        )));
        ops
    }

    /// The transaction as the JSON sent to ovsdb-server (`["Open_vSwitch", op, …]`).
    pub fn transaction_json(&self) -> Value {
        let mut params = vec![Value::String(OPEN_VSWITCH_DB.to_string())];
        params.extend(self.operations().iter().map(Operation::to_json));
        Value::Array(params)
    }

    /// The equivalent `ovs-vsctl` commands (without the guards), for humans: one per port,
    /// each name one shell word; an error for a port whose names have control characters
    /// (no pasteable command exists for it; the transaction removes it all the same).
    pub fn vsctl_commands(&self) -> Vec<Result<ShellCommand, Unquotable>> {
        self.removals
            .iter()
            .map(|r| shell_command!("ovs-vsctl --if-exists del-port {} {}", r.bridge, r.port))
            .collect()
    }

    /// Looks for every planned port's devices in `network` (every namespace, read again):
    /// a port one of whose interfaces has a device somewhere is spared, saying where. When
    /// `network` is incomplete, every port is spared: the device could be in a namespace
    /// that was not read.
    pub fn recheck(&self, network: &NetworkNamespaces) -> Recheck {
        let mut recheck = Recheck::default();
        for removal in &self.removals {
            let port = format!("{}/{}", removal.bridge, removal.port);
            if !network.complete() {
                recheck.spared.push((
                    port,
                    format!(
                        "not every network namespace could be read again right before the \
                         transaction ({}), so its device could exist in one of them",
                        network.unreadable.join("; ")
                    ),
                ));
                continue;
            }
            let found: Vec<String> = removal
                .interfaces
                .iter()
                .flat_map(|iface| {
                    network.find(&iface.name).into_iter().map(|(ns, device)| {
                        format!("{} in {ns} (ifindex {})", device.name, device.ifindex)
                    })
                })
                .collect();
            if found.is_empty() {
                recheck.remaining.removals.push(removal.clone());
            } else {
                recheck.spared.push((
                    port,
                    format!(
                        "its device exists again, re-created since it was read: {}",
                        found.join(", ")
                    ),
                ));
            }
        }
        recheck
    }

    /// [`recheck`](Self::recheck)s against every network namespace as it is now — those of
    /// every process and those named under `run_netns` (normally
    /// [`NETNS_RUN_DIR`](crate::netns::NETNS_RUN_DIR)), read a second time if a namespace
    /// could not be read (its last process may have exited meanwhile) — then
    /// [`apply`](Self::apply)s what remains. Call it with the client already connected, so
    /// that nothing but the transaction happens after the re-check.
    pub async fn apply_after_recheck(
        &self,
        client: &Client,
        run_netns: &Path,
    ) -> Result<RemovalOutcome, OvsError> {
        let mut network = crate::netns::collect(&crate::netns::process_namespaces(), run_netns);
        if !network.complete() {
            network = crate::netns::collect(&crate::netns::process_namespaces(), run_netns);
        }
        let Recheck { remaining, spared } = self.recheck(&network);
        let mut outcome = remaining.apply(client).await?;
        outcome.spared.splice(0..0, spared);
        Ok(outcome)
    }

    /// Runs the guarded transaction. A port whose rows changed since they were read is
    /// spared and the rest is tried again, still guarded.
    pub async fn apply(&self, client: &Client) -> Result<RemovalOutcome, OvsError> {
        let mut outcome = RemovalOutcome::default();
        let mut remaining = self.clone();
        while !remaining.is_empty() {
            match client
                .transact(OPEN_VSWITCH_DB, remaining.operations())
                .await
            {
                Ok(_) => {
                    outcome.removed.extend(
                        remaining
                            .removals
                            .iter()
                            .map(|r| format!("{}/{}", r.bridge, r.port)),
                    );
                    return Ok(outcome);
                }
                Err(OvsdbError::Transaction { failure, .. })
                    if failure.operation.as_deref() == Some("wait") =>
                {
                    // Find which removal's guard the failing index belongs to.
                    let mut index = failure.index;
                    let mut culprit = None;
                    for (i, removal) in remaining.removals.iter().enumerate() {
                        let n = removal.interfaces.len() + 2;
                        if index < n {
                            culprit = Some((i, index));
                            break;
                        }
                        index -= n;
                    }
                    let Some((i, within)) = culprit else {
                        return Err(OvsError::Plan(format!(
                            "a guard failed at operation {} that belongs to no port",
                            failure.index
                        )));
                    };
                    let removal = remaining.removals.remove(i);
                    let what = match removal.interfaces.get(within) {
                        Some(iface) => format!(
                            "interface {} is no longer as read (re-created, or its ofport, ifindex or error changed)",
                            iface.name
                        ),
                        None => format!("port {} is no longer as read", removal.port),
                    };
                    outcome
                        .spared
                        .push((format!("{}/{}", removal.bridge, removal.port), what));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn removal() -> OrphanRemoval {
        OrphanRemoval {
            removals: vec![PlannedRemoval {
                bridge: "br-int".into(),
                bridge_uuid: Uuid::from_u128(1),
                port: "ha-d489f511-9f".into(),
                port_uuid: Uuid::from_u128(2),
                interfaces: vec![SeenInterface {
                    uuid: Uuid::from_u128(3),
                    name: "ha-d489f511-9f".into(),
                    ofport: Some(17750),
                    ifindex: Some(0),
                    error: None,
                }],
            }],
        }
    }

    fn network(devices: &[(&str, &str)]) -> NetworkNamespaces {
        use nodedoc_model::{NetDevice, NetNamespace};
        let mut network = NetworkNamespaces::default();
        for (i, (namespace, device)) in devices.iter().enumerate() {
            network.namespaces.push(NetNamespace {
                inode: 4026531840 + i as u64,
                names: vec![namespace.to_string()],
                initial: false,
                entered_via: format!("/run/netns/{namespace}"),
                devices: vec![NetDevice {
                    name: device.to_string(),
                    ifindex: 7,
                    ..NetDevice::default()
                }],
            });
        }
        network
    }

    #[test]
    fn recheck_spares_a_port_whose_device_exists_again_and_keeps_the_rest() {
        let mut plan = removal();
        let mut other = plan.removals[0].clone();
        other.port = "tap-gone".into();
        other.port_uuid = Uuid::from_u128(4);
        other.interfaces[0].name = "tap-gone".into();
        plan.removals.push(other);

        let recheck = plan.recheck(&network(&[("qrouter-1", "ha-d489f511-9f")]));
        assert_eq!(recheck.remaining.removals.len(), 1);
        assert_eq!(recheck.remaining.removals[0].port, "tap-gone");
        assert_eq!(recheck.spared.len(), 1);
        assert_eq!(recheck.spared[0].0, "br-int/ha-d489f511-9f");
        assert_eq!(
            recheck.spared[0].1,
            "its device exists again, re-created since it was read: ha-d489f511-9f in netns qrouter-1 (ifindex 7)"
        );

        // Nothing found anywhere: everything stays planned.
        let recheck = plan.recheck(&network(&[("qrouter-1", "qr-1")]));
        assert_eq!(recheck.remaining, plan);
        assert!(recheck.spared.is_empty());

        // A namespace that could not be read could hold the device: nothing is removed.
        let mut partial = network(&[]);
        partial
            .unreadable
            .push("net:[4026532000]: setns: Operation not permitted".into());
        let recheck = plan.recheck(&partial);
        assert!(recheck.remaining.is_empty());
        assert_eq!(recheck.spared.len(), 2);
        assert!(recheck.spared[0]
            .1
            .contains("setns: Operation not permitted"));
    }

    #[test]
    fn guards_come_first_and_pin_every_column_read() {
        let ops = removal().operations();
        let names: Vec<&str> = ops.iter().map(Operation::name).collect();
        assert_eq!(names, ["wait", "wait", "mutate", "comment"]);
        let wait = ops[0].to_json();
        assert_eq!(wait["timeout"], 0);
        assert_eq!(wait["until"], "==");
        assert_eq!(
            wait["rows"],
            json!([{"name": "ha-d489f511-9f", "ofport": 17750, "ifindex": 0, "error": ["set", []]}])
        );
        assert_eq!(
            wait["where"],
            json!([["_uuid", "==", ["uuid", Uuid::from_u128(3).to_string()]]])
        );
        let mutate = ops[2].to_json();
        assert_eq!(mutate["mutations"][0][1], "delete");
        assert_eq!(
            removal().vsctl_commands()[0].as_ref().unwrap().as_str(),
            "ovs-vsctl --if-exists del-port br-int ha-d489f511-9f"
        );
        assert_eq!(removal().transaction_json()[0], "Open_vSwitch");
    }

    #[test]
    fn equivalent_commands_quote_names_and_refuse_control_characters() {
        let mut plan = removal();
        plan.removals[0].port = "z$(touch${IFS}pwned)".into();
        let mut escaped = plan.removals[0].clone();
        escaped.port = "e\u{1b}]0;x\u{7}".into();
        plan.removals.push(escaped);
        let commands = plan.vsctl_commands();
        assert_eq!(
            commands[0].as_ref().unwrap().as_str(),
            "ovs-vsctl --if-exists del-port br-int 'z$(touch${IFS}pwned)'"
        );
        assert_eq!(commands[1].as_ref().unwrap_err().shown, "e\\e]0;x\\x07");
    }
}
