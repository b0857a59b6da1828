//! `ovs-leak-per-event`: seed 000's port that flaps forever, with a process that leaks a
//! descriptor per delete — for `nodedoc watch`, which ties the leak to the event.
//!
//! The private Open vSwitch of `ovs-netns-leak` (same setup), then two helpers:
//! - `ovs-flapper` replays seed 000's script in a loop against it, as neutron-l3-agent's
//!   retry loop ran it: `del-port`, add the HA port, move it into a fresh namespace, delete
//!   the namespace — in bursts of varying size, so that each round of the agent sees a
//!   different number of `deleted interface` lines (real ovs-vswitchd, real OVSDB, real
//!   namespaces);
//! - `netlink-per-delete` follows ovs-vswitchd.log and opens one NETLINK_GENERIC socket for
//!   every `deleted interface` line of that port, and keeps it.
//!
//! **This machine has no kernel datapath**: with the userspace datapath ovs-vswitchd opens
//! no per-port upcall sockets, so the real ovs-vswitchd leaks nothing here. The
//! `netlink-per-delete` helper stands in for seed 000's leak (each port deleted after its
//! device vanished keeps its sockets); everything it reacts to is the real ovs-vswitchd's log.
//!
//! `nodedoc watch` then finds the chain `fd-leak` (the helper's descriptors keep rising) ←
//! `leak-per-event` ("each `deleted interface ha-…` leaves 1.0 more NETLINK_GENERIC socket")
//! ← `ovs-port-flapping` (from the log and from the OVSDB monitor). A single `check` sees only
//! the flapping: the other two need the agent's rounds.

use super::ovs_netns_leak::{setup, SEED_IDS};
use super::Scenario;
use crate::process::spawn_helper;
use crate::{Expectation, LabContext, LabError, LabGuard, Resource};

pub(super) const SCENARIO: Scenario = Scenario {
    name: "ovs-leak-per-event",
    summary: "seed 000's OVS port re-added forever, and a helper leaking a NETLINK_GENERIC socket per `deleted interface` (no kernel datapath here: it stands in for ovs-vswitchd's leak); run `nodedoc watch` against it",
    seed: "000 (every `deleted interface ha-…` leaves ovs-vswitchd one more netlink socket)",
    settle_secs: 0,
    start,
};

/// The leaking helper's soft open-file limit: far enough to watch, close enough for an ETA.
const LEAKER_SOFT_LIMIT: &str = "19000";

fn start(guard: &mut LabGuard, cx: &LabContext) -> Result<(), LabError> {
    let lab = setup(guard, cx, SCENARIO.name)?;
    lab.record_facts(guard);
    let log = lab.log.display().to_string();
    let dir = lab.dir.display().to_string();
    // The leaker first, so that it sees every delete the flapper causes.
    let leaker = spawn_helper(
        guard,
        cx,
        "netlink-per-delete",
        &[],
        &[
            "netlink-per-delete",
            "--log",
            &log,
            "--interface",
            &lab.orphan,
            "--soft-limit",
            LEAKER_SOFT_LIMIT,
        ],
        |_| {},
    )?;
    // The namespace each round creates and deletes: recorded before the flapper, so that
    // teardown stops the flapper first and then removes a namespace it may have left.
    let namespace = format!("ovsflap-{}", lab.suffix);
    guard.instance_mut().resources.push(Resource::NetNs {
        name: namespace.clone(),
    });
    let (iface_id, mac) = SEED_IDS;
    let flapper = spawn_helper(
        guard,
        cx,
        "ovs-flapper",
        &[],
        &[
            "ovs-flapper",
            "--dir",
            &dir,
            "--bridge",
            &lab.bridge,
            "--interface",
            &lab.orphan,
            "--namespace",
            &namespace,
            "--iface-id",
            iface_id,
            "--attached-mac",
            mac,
        ],
        |_| {},
    )?;
    let instance = guard.instance_mut();
    instance
        .facts
        .insert("leaker_pid".into(), leaker.to_string());
    instance
        .facts
        .insert("flapper_pid".into(), flapper.to_string());
    instance.facts.insert("flap_netns".into(), namespace);
    instance.expect.push(Expectation {
        detector: "ovs-port-flapping".into(),
        subject: format!("ovs-interface/{}", lab.orphan),
        evidence: vec![format!("`added interface {}`", lab.orphan)],
    });
    Ok(())
}
