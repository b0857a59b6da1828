//! `ovs-netns-leak`: seed 000's orphaned OVS port, against a private Open vSwitch.
//!
//! A private `ovsdb-server` and `ovs-vswitchd` run in a temporary directory (OVS_RUNDIR,
//! OVS_LOGDIR and OVS_DBDIR point there), supervised by the `ovs-daemons` helper. The bridge
//! uses the userspace datapath (`datapath_type=netdev`): this kernel has no OVS module, and
//! an internal port is then a tap device. On it:
//! - a healthy VM tap, added the way libvirt does (seed 002's external_ids: iface-id,
//!   attached-mac, vm-uuid, iface-status), whose device stays in the host namespace;
//! - a router port moved into a live `qrouter-` namespace, as neutron does: ifindex 0 in
//!   OVSDB, but its device exists — it must not be reported;
//! - seed 000's script, in a loop as neutron-l3-agent ran it: add the HA port with the
//!   seed's external_ids, move it into a fresh namespace, delete the namespace, `del-port`,
//!   and again; the last round leaves the port behind with its device gone.
//!
//! What OVS 3.1 shows then: the row keeps its ofport, error is empty, ifindex 0, and
//! ovs-vswitchd busy-loops logging `error receiving Ethernet packet on X`.
//!
//! Links: the userspace datapath makes every internal port a *persistent* tap device, so the
//! bridge's own port, the healthy tap and the datapath's `ovs-netdev` stay on the host after
//! ovs-vswitchd stops. Each is recorded as a [`Resource::Link`] before the daemons start (so
//! it is deleted after they have stopped); `ovs-netdev`, one name for every userspace
//! datapath on the host, only when this lab creates it, and it is left to another Open
//! vSwitch that holds it open by then. Only one userspace datapath can hold `ovs-netdev`:
//! a second OVS lab started while one runs fails to add its bridge's ports.

use std::path::Path;
use std::time::{Duration, Instant};

use super::{private_dir, require_root, Scenario};
use crate::ovs_daemons::{ovs_command, run, VSWITCH_SCHEMA};
use crate::process::spawn_helper;
use crate::{unique_suffix, Expectation, LabContext, LabError, LabGuard, Resource};

pub(super) const SCENARIO: Scenario = Scenario {
    name: "ovs-netns-leak",
    summary: "an OVS port whose namespace was deleted before del-port, re-added in a loop, beside healthy ports",
    seed: "000 (ha-d489f511-9f added/deleted forever; ovs-vswitchd at its fd limit and busy)",
    settle_secs: 0,
    start,
};

/// Seed 000's external_ids for the HA port.
const SEED_IFACE_ID: &str = "d489f511-9f9f-49e9-b772-f43bf3bfa04b";
const SEED_MAC: &str = "fa:16:3e:4a:52:36";

/// The tap device of the userspace datapath itself (`ovs-netdev`), shared by every userspace
/// datapath on the host.
const DATAPATH_DEVICE: &str = "ovs-netdev";

/// Rounds of add → move into a namespace → delete the namespace; all but the last end with
/// `del-port`, as the agent's retry loop did.
const ROUNDS: usize = 4;

fn start(guard: &mut LabGuard, cx: &LabContext) -> Result<(), LabError> {
    let lab = setup(guard, cx, SCENARIO.name)?;
    lab.record_facts(guard);
    let (orphan, vswitchd_pid) = (&lab.orphan, &lab.vswitchd_pid);
    let instance = guard.instance_mut();
    instance.expect.push(Expectation {
        detector: "ovs-orphan-port".into(),
        subject: format!("ovs-interface/{orphan}"),
        evidence: vec![
            format!("iface-id) {SEED_IFACE_ID}"),
            format!("no device {orphan} in any"),
        ],
    });
    instance.expect.push(Expectation {
        detector: "ovs-port-flapping".into(),
        subject: format!("ovs-interface/{orphan}"),
        evidence: vec![format!("{ROUNDS} × `added interface {orphan}`")],
    });
    instance.expect.push(Expectation {
        detector: "ovs-vswitchd-busy".into(),
        subject: format!("pid/{vswitchd_pid}"),
        evidence: vec!["of a core".into()],
    });
    Ok(())
}

/// What [`setup`] made.
pub(super) struct OvsLab {
    pub dir: std::path::PathBuf,
    pub db: String,
    pub log: std::path::PathBuf,
    pub suffix: String,
    pub bridge: String,
    pub orphan: String,
    pub healthy: String,
    pub router_port: String,
    pub router_ns: String,
    pub vswitchd_pid: String,
    pub ovsdb_server_pid: String,
    pub links: Vec<String>,
}

impl OvsLab {
    /// The facts every OVS lab records (dir, ovsdb, ovs_log, names, pids, links).
    pub fn record_facts(&self, guard: &mut LabGuard) {
        let instance = guard.instance_mut();
        for (key, value) in [
            ("dir", self.dir.display().to_string()),
            ("ovsdb", self.db.clone()),
            ("ovs_log", self.log.display().to_string()),
            ("bridge", self.bridge.clone()),
            ("orphan", self.orphan.clone()),
            ("healthy", self.healthy.clone()),
            ("router_port", self.router_port.clone()),
            ("router_netns", self.router_ns.clone()),
            ("vswitchd_pid", self.vswitchd_pid.clone()),
            ("ovsdb_server_pid", self.ovsdb_server_pid.clone()),
            ("rounds", ROUNDS.to_string()),
            ("links", self.links.join(",")),
        ] {
            instance.facts.insert(key.into(), value);
        }
    }
}

/// Seed 000's external_ids for the HA port: `iface-id` and `attached-mac`.
pub(super) const SEED_IDS: (&str, &str) = (SEED_IFACE_ID, SEED_MAC);

/// The private Open vSwitch with its healthy tap, its router port, and seed 000's script run
/// [`ROUNDS`] times (see the module documentation).
pub(super) fn setup(
    guard: &mut LabGuard,
    cx: &LabContext,
    scenario: &str,
) -> Result<OvsLab, LabError> {
    require_root(scenario)?;
    if !Path::new(VSWITCH_SCHEMA).exists() {
        return Err(LabError::Unsupported {
            scenario: scenario.into(),
            reason: format!(
                "Open vSwitch is not installed ({VSWITCH_SCHEMA} is missing): apt-get install openvswitch-switch"
            ),
        });
    }
    let suffix = unique_suffix();
    // Short (unix socket paths are limited to 107 bytes), random and private.
    let dir = private_dir(guard, scenario, "nodedoc-ovs-")?;
    let dir_text = dir.display().to_string();

    // IFNAMSIZ is 16: every name fits in 15 bytes and is unique to this instance.
    let bridge = format!("br-int-{suffix}");
    let healthy = format!("tap{suffix}-aa");
    let router_port = format!("qr-{suffix}-01");
    let router_ns = format!("qrouter-{suffix}");
    let orphan = format!("ha-{suffix}-9f");

    // Every link the daemons will create, recorded before they start so that teardown
    // deletes them after the daemons have stopped. The router port and the orphan live and
    // die in namespaces, but are recorded too in case one comes back to the host.
    let mut links: Vec<(String, bool)> = [&bridge, &healthy, &router_port, &orphan]
        .into_iter()
        .map(|name| (name.clone(), false))
        .collect();
    if !Path::new("/sys/class/net").join(DATAPATH_DEVICE).exists() {
        links.push((DATAPATH_DEVICE.to_string(), true));
    }
    for (name, shared) in &links {
        guard.instance_mut().resources.push(Resource::Link {
            name: name.clone(),
            shared: *shared,
        });
    }
    spawn_helper(
        guard,
        cx,
        "ovs-daemons",
        &[],
        &["ovs-daemons", "--dir", &dir_text],
        |_| {},
    )?;

    let db = format!("unix:{}", dir.join("db.sock").display());
    let vsctl = |args: &[&str]| -> Result<String, LabError> {
        let mut command = ovs_command("ovs-vsctl", &dir);
        command
            .arg(format!("--db={db}"))
            .arg("--timeout=20")
            .args(args);
        run(command, &format!("ovs-vsctl {}", args.join(" ")))
            .map_err(|e| LabError::setup(scenario, "configuring OVS", e))
    };
    let ip = |args: &[&str]| -> Result<(), LabError> {
        let mut command = std::process::Command::new("ip");
        command.args(args);
        run(command, &format!("ip {}", args.join(" ")))
            .map(drop)
            .map_err(|e| LabError::setup(scenario, "network namespaces", e))
    };

    // What the init scripts (ovs-ctl) record; a hand-started OVS leaves it unset.
    let mut version = std::process::Command::new("ovs-vswitchd");
    version.arg("--version");
    if let Some(v) = run(version, "ovs-vswitchd --version")
        .ok()
        .and_then(|out| out.lines().next()?.rsplit(' ').next().map(str::to_string))
    {
        vsctl(&["set", "Open_vSwitch", ".", &format!("ovs_version={v}")])?;
    }
    vsctl(&[
        "add-br",
        &bridge,
        "--",
        "set",
        "Bridge",
        &bridge,
        "datapath_type=netdev",
    ])?;
    // A VM's tap as libvirt plugs it (seed 002).
    vsctl(&[
        "--",
        "add-port",
        &bridge,
        &healthy,
        "--",
        "set",
        "Interface",
        &healthy,
        "type=internal",
        "external_ids:iface-id=5bd1f9a8-2c1b-4f0e-9c1f-3c8e0b4a7d21",
        "external_ids:iface-status=active",
        "external_ids:attached-mac=fa:16:3e:11:22:33",
        "external_ids:vm-uuid=8f6b0c3e-5d2a-4e71-b9a4-0c6e2f1d3b57",
    ])?;
    // A router port living in its router's namespace, as neutron keeps them.
    guard.instance_mut().resources.push(Resource::NetNs {
        name: router_ns.clone(),
    });
    ip(&["netns", "add", &router_ns])?;
    vsctl(&[
        "--",
        "add-port",
        &bridge,
        &router_port,
        "--",
        "set",
        "Interface",
        &router_port,
        "type=internal",
    ])?;
    ip(&["link", "set", "netns", &router_ns, &router_port])?;

    // Seed 000's script, as the agent's retry loop ran it.
    for round in 0..ROUNDS {
        let namespace = format!("ovslab-{suffix}-{round}");
        guard.instance_mut().resources.push(Resource::NetNs {
            name: namespace.clone(),
        });
        ip(&["netns", "add", &namespace])?;
        vsctl(&[
            "--oneline",
            "--format=json",
            "--",
            "add-port",
            &bridge,
            &orphan,
            "--",
            "set",
            "Interface",
            &orphan,
            "type=internal",
            &format!("external_ids:iface-id={SEED_IFACE_ID}"),
            "external_ids:iface-status=active",
            &format!("external_ids:attached-mac={SEED_MAC}"),
        ])?;
        ip(&["link", "set", "netns", &namespace, &orphan])?;
        ip(&["netns", "del", &namespace])?;
        if round + 1 < ROUNDS {
            vsctl(&[
                "--oneline",
                "--format=json",
                "--",
                "--if-exists",
                "del-port",
                &orphan,
            ])?;
        }
    }

    // The fault is in place once ovs-vswitchd polls the dead device.
    let log = dir.join("ovs-vswitchd.log");
    let needle = format!("error receiving Ethernet packet on {orphan}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains(&needle) {
            break;
        }
        if Instant::now() > deadline {
            return Err(LabError::setup(
                scenario,
                "waiting for ovs-vswitchd to poll the vanished device",
                format!("no `{needle}` in {}", log.display()),
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid_of = |name: &str| {
        std::fs::read_to_string(dir.join(name))
            .map(|t| t.trim().to_string())
            .unwrap_or_default()
    };
    Ok(OvsLab {
        vswitchd_pid: pid_of("ovs-vswitchd.pid"),
        ovsdb_server_pid: pid_of("ovsdb-server.pid"),
        dir,
        db,
        log,
        suffix,
        bridge,
        orphan,
        healthy,
        router_port,
        router_ns,
        links: links.into_iter().map(|(name, _)| name).collect(),
    })
}
