//! Open vSwitch kept current from an OVSDB monitor, for the agent.
//!
//! `check` reads the database once and joins the four tables into an [`OvsState`]. The agent
//! keeps a monitor open ([`crate::monitor`]) and receives, per update, only the rows that
//! changed, already typed ([`RowChange`]). [`OvsTables`] holds the rows by UUID with the
//! reverse links (interface → port → bridge) and turns each update into:
//!
//! - the **events** of the Interface rows it touched ([`OvsDbEvent`]: inserted with the ids
//!   its creator set, ofport assigned, error, deleted — seed 002's tap lifecycle), with their
//!   bridge resolved while the rows still say it;
//! - what it **touched**, so that an [`OvsState`] built earlier is [patched](OvsTables::patch)
//!   in place — a few ports rebuilt, not 5,000 — and equals what [`to_state`](OvsTables::to_state)
//!   would build from scratch (a test checks exactly that over random updates).
//!
//! The history of those events ([`OvsDbHistory`]) is kept bounded by [`record_events`] and
//! [`forget_quiet`], applied the same way to every copy.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use nodedoc_model::{
    OvsBridge, OvsDbEvent, OvsDbEventKind, OvsDbHistory, OvsDbInterfaceCounts, OvsInterface,
    OvsPort, OvsState,
};
use nodedoc_ovsdb::{Bridge, OpenVSwitch, Port, Uuid};

/// One row of an update, typed: its new value, or `None` once deleted.
#[derive(Clone, Debug, PartialEq)]
pub enum RowChange {
    /// The `Open_vSwitch` row.
    Root(Uuid, Option<OpenVSwitch>),
    /// A `Bridge` row.
    Bridge(Uuid, Option<Bridge>),
    /// A `Port` row.
    Port(Uuid, Option<Port>),
    /// An `Interface` row, as the snapshot holds it.
    Interface(Uuid, Option<OvsInterface>),
}

/// What an update touched, for [`OvsTables::patch`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Touched {
    /// The `Open_vSwitch` row changed.
    pub root: bool,
    /// Bridges whose row changed, appeared or went.
    pub bridges: BTreeSet<Uuid>,
    /// Ports to rebuild: their row or one of their interfaces changed, or they joined a bridge.
    pub ports: BTreeSet<Uuid>,
    /// Per bridge, the ports that left it.
    pub left: BTreeMap<Uuid, Vec<Uuid>>,
    /// Interfaces inserted, or whose ofport, ifindex, error or name changed: their devices may
    /// have to be looked for again.
    pub interfaces: BTreeSet<String>,
}

impl Touched {
    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        *self == Touched::default()
    }
}

/// The result of applying an update.
#[derive(Clone, Debug, Default)]
pub struct Applied {
    /// Changes of Interface rows, in UUID order.
    pub events: Vec<OvsDbEvent>,
    /// What to patch.
    pub touched: Touched,
}

/// The monitored rows, by UUID, with the links between them. See the module documentation.
#[derive(Clone, Debug, Default)]
pub struct OvsTables {
    root: Option<(Uuid, OpenVSwitch)>,
    /// Each bridge's `ports` sorted.
    bridges: BTreeMap<Uuid, Bridge>,
    /// Each port's `interfaces` sorted.
    ports: BTreeMap<Uuid, Port>,
    interfaces: BTreeMap<Uuid, OvsInterface>,
    /// Interface → the port that lists it.
    port_of: HashMap<Uuid, Uuid>,
    /// Port → the bridge that lists it.
    bridge_of: HashMap<Uuid, Uuid>,
}

/// `old` and `new` (both sorted): what left and what came.
fn diff_sorted(old: &[Uuid], new: &[Uuid]) -> (Vec<Uuid>, Vec<Uuid>) {
    let (mut left, mut came) = (Vec::new(), Vec::new());
    let (mut i, mut j) = (0, 0);
    while i < old.len() || j < new.len() {
        match (old.get(i), new.get(j)) {
            (Some(a), Some(b)) if a == b => {
                i += 1;
                j += 1;
            }
            (Some(a), Some(b)) if a < b => {
                left.push(*a);
                i += 1;
            }
            (Some(a), None) => {
                left.push(*a);
                i += 1;
            }
            (_, Some(b)) => {
                came.push(*b);
                j += 1;
            }
            (None, None) => break,
        }
    }
    (left, came)
}

fn sorted(mut uuids: Vec<Uuid>) -> Vec<Uuid> {
    uuids.sort_unstable();
    uuids.dedup();
    uuids
}

/// The order of bridges, ports and interfaces in an [`OvsState`]: by name, then UUID.
fn order_key<'a>(name: &'a str, uuid: &'a str) -> (&'a str, &'a str) {
    (name, uuid)
}

impl OvsTables {
    /// Tables holding the rows of a fresh copy of the database (a monitor's initial state).
    pub fn from_rows(rows: Vec<RowChange>) -> OvsTables {
        let mut tables = OvsTables::default();
        tables.apply_rows(rows, &mut Touched::default());
        tables
    }

    /// Number of Interface rows.
    pub fn interface_count(&self) -> usize {
        self.interfaces.len()
    }

    /// Applies one update. `at_unix_ms` stamps its events.
    pub fn apply(&mut self, rows: Vec<RowChange>, at_unix_ms: u64) -> Applied {
        // The interfaces before, with their bridge while the rows still say it.
        let mut before: BTreeMap<Uuid, Option<(OvsInterface, Option<String>)>> = BTreeMap::new();
        for row in &rows {
            if let RowChange::Interface(uuid, _) = row {
                before.entry(*uuid).or_insert_with(|| {
                    self.interfaces
                        .get(uuid)
                        .map(|i| (i.clone(), self.bridge_name_of(*uuid)))
                });
            }
        }
        let mut touched = Touched::default();
        self.apply_rows(rows, &mut touched);
        let mut events = Vec::new();
        for (uuid, old) in before {
            let new = self.interfaces.get(&uuid);
            let bridge = || self.bridge_name_of(uuid);
            self.events_of(uuid, old, new, bridge, at_unix_ms, &mut events);
        }
        Applied { events, touched }
    }

    /// Replaces every row with a fresh copy of the database (after a reconnection, or after
    /// falling behind) and returns the differences as events: what happened meanwhile, as far
    /// as the two copies tell.
    pub fn replace(&mut self, rows: Vec<RowChange>, at_unix_ms: u64) -> Vec<OvsDbEvent> {
        let old = std::mem::replace(self, OvsTables::from_rows(rows));
        let uuids: BTreeSet<Uuid> = old
            .interfaces
            .keys()
            .chain(self.interfaces.keys())
            .copied()
            .collect();
        let mut events = Vec::new();
        for uuid in uuids {
            let before = old
                .interfaces
                .get(&uuid)
                .map(|i| (i.clone(), old.bridge_name_of(uuid)));
            let new = self.interfaces.get(&uuid);
            self.events_of(
                uuid,
                before,
                new,
                || self.bridge_name_of(uuid),
                at_unix_ms,
                &mut events,
            );
        }
        events
    }

    /// The events that turn `old` into `new`.
    fn events_of(
        &self,
        uuid: Uuid,
        old: Option<(OvsInterface, Option<String>)>,
        new: Option<&OvsInterface>,
        bridge: impl Fn() -> Option<String>,
        at_unix_ms: u64,
        events: &mut Vec<OvsDbEvent>,
    ) {
        let event = |interface: &str, bridge: Option<String>, kind| OvsDbEvent {
            at_unix_ms,
            interface: interface.to_string(),
            uuid: uuid.to_string(),
            bridge,
            kind,
        };
        match (old, new) {
            (None, None) => {}
            (None, Some(new)) => events.push(event(
                &new.name,
                bridge(),
                OvsDbEventKind::Inserted {
                    interface_type: new.interface_type.clone(),
                    ofport: new.ofport,
                    external_ids: new.external_ids.clone(),
                },
            )),
            (Some((old, old_bridge)), None) => events.push(event(
                &old.name,
                old_bridge,
                OvsDbEventKind::Deleted { ofport: old.ofport },
            )),
            (Some((old, _)), Some(new)) => {
                let mut kinds = Vec::new();
                if old.ofport != new.ofport {
                    kinds.push(OvsDbEventKind::Ofport {
                        from: old.ofport,
                        to: new.ofport,
                    });
                }
                if old.external_ids != new.external_ids {
                    kinds.push(OvsDbEventKind::ExternalIds {
                        external_ids: new.external_ids.clone(),
                    });
                }
                if old.error != new.error {
                    kinds.push(OvsDbEventKind::Error {
                        error: new.error.clone(),
                    });
                }
                if old.link_state != new.link_state {
                    kinds.push(OvsDbEventKind::LinkState {
                        link_state: new.link_state.clone(),
                    });
                }
                if !kinds.is_empty() {
                    let bridge = bridge();
                    events.extend(
                        kinds
                            .into_iter()
                            .map(|kind| event(&new.name, bridge.clone(), kind)),
                    );
                }
            }
        }
    }

    fn bridge_name_of(&self, interface: Uuid) -> Option<String> {
        let port = self.port_of.get(&interface)?;
        let bridge = self.bridge_of.get(port)?;
        self.bridges.get(bridge).map(|b| b.name.clone())
    }

    fn apply_rows(&mut self, rows: Vec<RowChange>, touched: &mut Touched) {
        for row in rows {
            match row {
                RowChange::Root(uuid, value) => {
                    self.root = value.map(|v| (uuid, v));
                    touched.root = true;
                }
                RowChange::Bridge(uuid, value) => {
                    let old = self.bridges.remove(&uuid);
                    let value = value.map(|mut b| {
                        b.ports = sorted(std::mem::take(&mut b.ports));
                        b
                    });
                    let (left, came) = diff_sorted(
                        old.as_ref().map_or(&[][..], |b| &b.ports),
                        value.as_ref().map_or(&[][..], |b| &b.ports),
                    );
                    for port in &left {
                        if self.bridge_of.get(port) == Some(&uuid) {
                            self.bridge_of.remove(port);
                        }
                    }
                    if !left.is_empty() {
                        touched.left.entry(uuid).or_default().extend(left);
                    }
                    for port in came {
                        self.bridge_of.insert(port, uuid);
                        touched.ports.insert(port);
                    }
                    if let Some(bridge) = value {
                        self.bridges.insert(uuid, bridge);
                    }
                    touched.bridges.insert(uuid);
                }
                RowChange::Port(uuid, value) => {
                    let old = self.ports.remove(&uuid);
                    let value = value.map(|mut p| {
                        p.interfaces = sorted(std::mem::take(&mut p.interfaces));
                        p
                    });
                    let (left, came) = diff_sorted(
                        old.as_ref().map_or(&[][..], |p| &p.interfaces),
                        value.as_ref().map_or(&[][..], |p| &p.interfaces),
                    );
                    for interface in left {
                        if self.port_of.get(&interface) == Some(&uuid) {
                            self.port_of.remove(&interface);
                        }
                    }
                    for interface in came {
                        self.port_of.insert(interface, uuid);
                    }
                    if let Some(port) = value {
                        self.ports.insert(uuid, port);
                    }
                    touched.ports.insert(uuid);
                }
                RowChange::Interface(uuid, value) => {
                    let old = match value {
                        Some(new) => {
                            let changed = self.interfaces.get(&uuid).is_none_or(|old| {
                                old.ofport != new.ofport
                                    || old.ifindex != new.ifindex
                                    || old.error != new.error
                                    || old.name != new.name
                            });
                            if changed {
                                touched.interfaces.insert(new.name.clone());
                            }
                            self.interfaces.insert(uuid, new)
                        }
                        None => self.interfaces.remove(&uuid),
                    };
                    let _ = old;
                    if let Some(port) = self.port_of.get(&uuid) {
                        touched.ports.insert(*port);
                    }
                }
            }
        }
    }

    fn interface_models(&self, port: &Port) -> Vec<OvsInterface> {
        let mut interfaces: Vec<OvsInterface> = port
            .interfaces
            .iter()
            .filter_map(|u| self.interfaces.get(u).cloned())
            .collect();
        interfaces.sort_by(|a, b| order_key(&a.name, &a.uuid).cmp(&order_key(&b.name, &b.uuid)));
        interfaces
    }

    fn port_model(&self, uuid: Uuid) -> Option<OvsPort> {
        let port = self.ports.get(&uuid)?;
        Some(OvsPort {
            uuid: uuid.to_string(),
            name: port.name.clone(),
            interfaces: self.interface_models(port),
        })
    }

    fn bridge_model(&self, uuid: Uuid, bridge: &Bridge) -> OvsBridge {
        let mut ports: Vec<OvsPort> = bridge
            .ports
            .iter()
            .filter_map(|p| self.port_model(*p))
            .collect();
        ports.sort_by(|a, b| order_key(&a.name, &a.uuid).cmp(&order_key(&b.name, &b.uuid)));
        OvsBridge {
            uuid: uuid.to_string(),
            name: bridge.name.clone(),
            datapath_type: bridge.datapath_type.clone(),
            ports,
        }
    }

    fn set_root(&self, state: &mut OvsState) {
        let root = self.root.as_ref().map(|(_, r)| r);
        let other_config = root.map(|r| r.other_config.clone()).unwrap_or_default();
        let number = |key: &str| other_config.get(key).and_then(|v| v.parse::<u32>().ok());
        state.ovs_version = root.and_then(|r| r.ovs_version.clone());
        state.db_version = root.and_then(|r| r.db_version.clone());
        state.datapath_types = root.map(|r| r.datapath_types.clone()).unwrap_or_default();
        state.n_handler_threads = number("n-handler-threads");
        state.n_revalidator_threads = number("n-revalidator-threads");
        state.next_cfg = root.map_or(0, |r| r.next_cfg);
        state.cur_cfg = root.map_or(0, |r| r.cur_cfg);
        state.other_config = other_config;
    }

    /// The OVS state these rows make, as [`crate::state_from_dump`] builds it from a dump
    /// (bridges, ports and interfaces by name; no daemon, log or history).
    pub fn to_state(&self, endpoint: &str) -> OvsState {
        let mut state = OvsState {
            endpoint: endpoint.to_string(),
            ..OvsState::default()
        };
        self.set_root(&mut state);
        let mut bridges: Vec<OvsBridge> = self
            .bridges
            .iter()
            .map(|(uuid, bridge)| self.bridge_model(*uuid, bridge))
            .collect();
        bridges.sort_by(|a, b| order_key(&a.name, &a.uuid).cmp(&order_key(&b.name, &b.uuid)));
        state.bridges = bridges;
        state
    }

    /// Brings `state` — built by [`to_state`](Self::to_state) before the updates that
    /// produced `touched`, and patched with every update since — up to date, rebuilding only
    /// what was touched.
    pub fn patch(&self, state: &mut OvsState, touched: &Touched) {
        if touched.root {
            self.set_root(state);
        }
        let mut affected: BTreeSet<Uuid> = touched.bridges.clone();
        affected.extend(touched.left.keys());
        affected.extend(
            touched
                .ports
                .iter()
                .filter_map(|p| self.bridge_of.get(p).copied()),
        );
        for uuid in affected {
            let text = uuid.to_string();
            let Some(bridge) = self.bridges.get(&uuid) else {
                state.bridges.retain(|b| b.uuid != text);
                continue;
            };
            let Some(at) = state.bridges.iter().position(|b| b.uuid == text) else {
                let model = self.bridge_model(uuid, bridge);
                let at = state.bridges.partition_point(|b| {
                    order_key(&b.name, &b.uuid) < order_key(&model.name, &model.uuid)
                });
                state.bridges.insert(at, model);
                continue;
            };
            let renamed = state.bridges[at].name != bridge.name;
            let target = &mut state.bridges[at];
            target.name.clone_from(&bridge.name);
            target.datapath_type.clone_from(&bridge.datapath_type);
            if let Some(left) = touched.left.get(&uuid) {
                let left: HashSet<String> = left.iter().map(Uuid::to_string).collect();
                target.ports.retain(|p| !left.contains(&p.uuid));
            }
            for port in touched
                .ports
                .iter()
                .filter(|p| self.bridge_of.get(p) == Some(&uuid))
            {
                let port_text = port.to_string();
                if let Some(i) = target.ports.iter().position(|p| p.uuid == port_text) {
                    target.ports.remove(i);
                }
                if let Some(model) = self.port_model(*port) {
                    let at = target.ports.partition_point(|p| {
                        order_key(&p.name, &p.uuid) < order_key(&model.name, &model.uuid)
                    });
                    target.ports.insert(at, model);
                }
            }
            if renamed {
                state
                    .bridges
                    .sort_by(|a, b| order_key(&a.name, &a.uuid).cmp(&order_key(&b.name, &b.uuid)));
            }
        }
    }
}

/// An interface with no event for this long is forgotten by [`forget_quiet`].
pub const HISTORY_WINDOW_SECS: u64 = 3600;

/// Events kept per interface.
pub const HISTORY_EVENTS_PER_INTERFACE: usize = 32;

/// Events kept in all.
pub const HISTORY_EVENTS: usize = 2_000;

/// Interfaces whose counts are kept.
pub const HISTORY_INTERFACES: usize = 4_096;

/// An empty history starting now.
pub fn new_history(now_ms: u64) -> OvsDbHistory {
    OvsDbHistory {
        since_unix_ms: now_ms,
        window_secs: HISTORY_WINDOW_SECS,
        ..OvsDbHistory::default()
    }
}

/// Adds `events` to `history` within its bounds: per interface the counts, and the most
/// recent events (at most [`HISTORY_EVENTS_PER_INTERFACE`] each, [`HISTORY_EVENTS`] in all);
/// at most [`HISTORY_INTERFACES`] interfaces (the one quiet the longest makes room).
/// Deterministic: applied to two equal histories, it leaves them equal.
pub fn record_events(history: &mut OvsDbHistory, events: &[OvsDbEvent]) {
    for event in events {
        if !history.interfaces.contains_key(&event.interface)
            && history.interfaces.len() >= HISTORY_INTERFACES
        {
            let quietest = history
                .interfaces
                .iter()
                .min_by_key(|(name, c)| (c.last_unix_ms, (*name).clone()))
                .map(|(name, _)| name.clone());
            if let Some(name) = quietest {
                forget(history, &name);
                history.interfaces_evicted += 1;
            }
        }
        let counts = history
            .interfaces
            .entry(event.interface.clone())
            .or_insert_with(|| OvsDbInterfaceCounts {
                first_unix_ms: event.at_unix_ms,
                ..OvsDbInterfaceCounts::default()
            });
        counts.last_unix_ms = event.at_unix_ms;
        if event.bridge.is_some() {
            counts.bridge.clone_from(&event.bridge);
        }
        match event.kind {
            OvsDbEventKind::Inserted { .. } => counts.inserted += 1,
            OvsDbEventKind::Deleted { .. } => counts.deleted += 1,
            OvsDbEventKind::Ofport { .. } => counts.ofport_changes += 1,
            _ => {}
        }
        let of_this = history
            .events
            .iter()
            .filter(|e| e.interface == event.interface)
            .count();
        if of_this >= HISTORY_EVENTS_PER_INTERFACE {
            if let Some(i) = history
                .events
                .iter()
                .position(|e| e.interface == event.interface)
            {
                history.events.remove(i);
                history.events_dropped += 1;
            }
        }
        history.events.push(event.clone());
        if history.events.len() > HISTORY_EVENTS {
            history.events.remove(0);
            history.events_dropped += 1;
        }
    }
}

fn forget(history: &mut OvsDbHistory, name: &str) {
    history.interfaces.remove(name);
    history.events.retain(|e| e.interface != name);
}

/// Forgets the interfaces with no event in the last [`OvsDbHistory::window_secs`]: a loop
/// that stopped that long ago is no longer news.
pub fn forget_quiet(history: &mut OvsDbHistory, now_ms: u64) {
    let horizon = now_ms.saturating_sub(history.window_secs.saturating_mul(1000));
    let quiet: Vec<String> = history
        .interfaces
        .iter()
        .filter(|(_, c)| c.last_unix_ms < horizon)
        .map(|(name, _)| name.clone())
        .collect();
    for name in quiet {
        forget(history, &name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn bridge(name: &str, ports: &[u128]) -> Bridge {
        Bridge {
            uuid: Uuid::NIL,
            name: name.into(),
            ports: ports.iter().map(|p| u(*p)).collect(),
            datapath_type: "netdev".into(),
            datapath_id: None,
            fail_mode: None,
            other_config: Default::default(),
            external_ids: Default::default(),
        }
    }

    fn port(name: &str, interfaces: &[u128]) -> Port {
        Port {
            uuid: Uuid::NIL,
            name: name.into(),
            interfaces: interfaces.iter().map(|i| u(*i)).collect(),
            tag: None,
            other_config: Default::default(),
            external_ids: Default::default(),
        }
    }

    fn interface(uuid: u128, name: &str, ofport: Option<i64>) -> OvsInterface {
        OvsInterface {
            uuid: u(uuid).to_string(),
            name: name.into(),
            interface_type: "internal".into(),
            ofport,
            ..OvsInterface::default()
        }
    }

    /// `add-port BR NAME` as one transaction: interface, port, and the bridge's new list.
    fn add_port(tables: &OvsTables, bridge_uuid: u128, id: u128, name: &str) -> Vec<RowChange> {
        let mut ports: Vec<u128> = tables.bridges[&u(bridge_uuid)]
            .ports
            .iter()
            .map(|p| p.as_u128())
            .collect();
        ports.push(id + 1000);
        let mut interface = interface(id, name, None);
        interface
            .external_ids
            .insert("vm-uuid".into(), format!("vm-{id}"));
        vec![
            RowChange::Interface(u(id), Some(interface)),
            RowChange::Port(u(id + 1000), Some(port(name, &[id]))),
            RowChange::Bridge(
                u(bridge_uuid),
                Some(bridge(&tables.bridges[&u(bridge_uuid)].name, &ports)),
            ),
        ]
    }

    fn del_port(tables: &OvsTables, bridge_uuid: u128, id: u128) -> Vec<RowChange> {
        let ports: Vec<u128> = tables.bridges[&u(bridge_uuid)]
            .ports
            .iter()
            .map(|p| p.as_u128())
            .filter(|p| *p != id + 1000)
            .collect();
        vec![
            RowChange::Interface(u(id), None),
            RowChange::Port(u(id + 1000), None),
            RowChange::Bridge(
                u(bridge_uuid),
                Some(bridge(&tables.bridges[&u(bridge_uuid)].name, &ports)),
            ),
        ]
    }

    fn start() -> OvsTables {
        OvsTables::from_rows(vec![
            RowChange::Bridge(u(1), Some(bridge("br-int", &[]))),
            RowChange::Bridge(u(2), Some(bridge("br-ex", &[]))),
        ])
    }

    #[test]
    fn a_taps_lifecycle_becomes_events_with_its_bridge() {
        let mut tables = start();
        let mut state = tables.to_state("unix:x");
        let add = add_port(&tables, 1, 10, "tap10");
        let applied = tables.apply(add, 1_000);
        assert_eq!(applied.events.len(), 1);
        let inserted = &applied.events[0];
        assert_eq!(inserted.interface, "tap10");
        assert_eq!(inserted.bridge.as_deref(), Some("br-int"));
        match &inserted.kind {
            OvsDbEventKind::Inserted {
                ofport,
                external_ids,
                ..
            } => {
                assert_eq!(*ofport, None);
                assert_eq!(external_ids["vm-uuid"], "vm-10");
            }
            other => panic!("{other:?}"),
        }
        assert!(applied.touched.interfaces.contains("tap10"));
        tables.patch(&mut state, &applied.touched);
        assert_eq!(state, tables.to_state("unix:x"));

        // ovs-vswitchd assigns the OpenFlow port.
        let applied = tables.apply(
            vec![RowChange::Interface(
                u(10),
                Some({
                    let mut i = tables.interfaces[&u(10)].clone();
                    i.ofport = Some(5);
                    i
                }),
            )],
            2_000,
        );
        assert_eq!(
            applied.events[0].kind,
            OvsDbEventKind::Ofport {
                from: None,
                to: Some(5)
            }
        );
        tables.patch(&mut state, &applied.touched);
        assert_eq!(state, tables.to_state("unix:x"));

        // libvirt deletes it at shutdown.
        let del = del_port(&tables, 1, 10);
        let applied = tables.apply(del, 3_000);
        assert_eq!(applied.events.len(), 1);
        assert_eq!(
            applied.events[0].kind,
            OvsDbEventKind::Deleted { ofport: Some(5) }
        );
        assert_eq!(applied.events[0].bridge.as_deref(), Some("br-int"));
        tables.patch(&mut state, &applied.touched);
        assert_eq!(state, tables.to_state("unix:x"));
        assert!(state.interfaces().next().is_none());
    }

    #[test]
    fn patching_equals_rebuilding_over_random_updates() {
        let mut rng = fastrand::Rng::with_seed(9);
        let mut tables = start();
        let mut state = tables.to_state("unix:x");
        let mut present: Vec<u128> = Vec::new();
        for step in 0..400u128 {
            let rows = match rng.u8(0..6) {
                0 | 1 => {
                    let id = 100 + step;
                    present.push(id);
                    let bridge = if rng.bool() { 1 } else { 2 };
                    // Names may collide: the order must still be the same.
                    add_port(&tables, bridge, id, &format!("p{}", rng.u8(0..50)))
                }
                2 if !present.is_empty() => {
                    let id = present.swap_remove(rng.usize(0..present.len()));
                    let bridge = tables.bridge_of[&u(id + 1000)].as_u128();
                    del_port(&tables, bridge, id)
                }
                3 if !present.is_empty() => {
                    let id = present[rng.usize(0..present.len())];
                    let mut i = tables.interfaces[&u(id)].clone();
                    i.ofport = Some(rng.i64(-1..100));
                    i.name = format!("p{}", rng.u8(0..50));
                    vec![RowChange::Interface(u(id), Some(i))]
                }
                4 => vec![RowChange::Bridge(
                    u(2),
                    Some(bridge(
                        &format!("br-{}", rng.u8(0..3)),
                        &tables.bridges[&u(2)]
                            .ports
                            .iter()
                            .map(|p| p.as_u128())
                            .collect::<Vec<_>>(),
                    )),
                )],
                _ => vec![RowChange::Root(
                    u(0),
                    Some(OpenVSwitch {
                        uuid: u(0),
                        ovs_version: Some(format!("3.{step}")),
                        db_version: None,
                        bridges: vec![u(1), u(2)],
                        datapath_types: vec![],
                        next_cfg: step as i64,
                        cur_cfg: step as i64,
                        other_config: Default::default(),
                        external_ids: Default::default(),
                    }),
                )],
            };
            let applied = tables.apply(rows, step as u64);
            tables.patch(&mut state, &applied.touched);
            assert_eq!(state, tables.to_state("unix:x"), "step {step}");
        }
    }

    #[test]
    fn a_fresh_copy_tells_what_happened_meanwhile() {
        let mut tables = start();
        let add = add_port(&tables, 1, 10, "tap10");
        tables.apply(add, 0);
        let add = add_port(&tables, 1, 11, "tap11");
        tables.apply(add, 0);
        // Reconnected: tap10 is gone, tap12 came.
        let mut fresh = tables.clone();
        let del = del_port(&fresh, 1, 10);
        fresh.apply(del, 0);
        let add = add_port(&fresh, 1, 12, "tap12");
        fresh.apply(add, 0);
        let rows: Vec<RowChange> = fresh
            .bridges
            .iter()
            .map(|(u, b)| RowChange::Bridge(*u, Some(b.clone())))
            .chain(
                fresh
                    .ports
                    .iter()
                    .map(|(u, p)| RowChange::Port(*u, Some(p.clone()))),
            )
            .chain(
                fresh
                    .interfaces
                    .iter()
                    .map(|(u, i)| RowChange::Interface(*u, Some(i.clone()))),
            )
            .collect();
        let events = tables.replace(rows, 5);
        let kinds: Vec<(&str, &str)> = events
            .iter()
            .map(|e| (e.interface.as_str(), e.kind.name()))
            .collect();
        assert_eq!(kinds, vec![("tap10", "deleted"), ("tap12", "inserted")]);
    }

    fn event(name: &str, at: u64, kind: OvsDbEventKind) -> OvsDbEvent {
        OvsDbEvent {
            at_unix_ms: at,
            interface: name.into(),
            uuid: String::new(),
            bridge: Some("br-int".into()),
            kind,
        }
    }

    #[test]
    fn the_history_counts_everything_and_keeps_the_latest_events_within_its_bounds() {
        let mut history = new_history(0);
        for i in 0..100u64 {
            let kind = if i % 2 == 0 {
                OvsDbEventKind::Inserted {
                    interface_type: "internal".into(),
                    ofport: None,
                    external_ids: Default::default(),
                }
            } else {
                OvsDbEventKind::Deleted { ofport: Some(1) }
            };
            record_events(&mut history, &[event("ha-1", i, kind)]);
        }
        let counts = &history.interfaces["ha-1"];
        assert_eq!((counts.inserted, counts.deleted), (50, 50));
        assert_eq!((counts.first_unix_ms, counts.last_unix_ms), (0, 99));
        assert_eq!(history.events.len(), HISTORY_EVENTS_PER_INTERFACE);
        assert_eq!(
            history.events[0].at_unix_ms,
            100 - HISTORY_EVENTS_PER_INTERFACE as u64
        );
        assert_eq!(
            history.events_dropped,
            100 - HISTORY_EVENTS_PER_INTERFACE as u64
        );
        // Many interfaces: bounded in events and in interfaces.
        for i in 0..(HISTORY_INTERFACES as u64 + 10) {
            record_events(
                &mut history,
                &[event(
                    &format!("tap{i}"),
                    1_000 + i,
                    OvsDbEventKind::Deleted { ofport: None },
                )],
            );
        }
        assert_eq!(history.interfaces.len(), HISTORY_INTERFACES);
        // ha-1 and 4,106 taps: 11 too many.
        assert_eq!(history.interfaces_evicted, 11);
        assert!(history.events.len() <= HISTORY_EVENTS);
        assert!(
            !history.interfaces.contains_key("ha-1"),
            "the quietest went first"
        );
        // An hour of quiet forgets everything.
        forget_quiet(&mut history, 1_000 + HISTORY_WINDOW_SECS * 1000 + 10_000);
        assert!(history.interfaces.is_empty() && history.events.is_empty());
    }
}
