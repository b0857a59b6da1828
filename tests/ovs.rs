//! Open vSwitch, for real: the `ovs-netns-leak` lab (a private ovsdb-server and ovs-vswitchd)
//! found by `check` with its chain, `ovs ports`, the guarded fix; offline, seed 000's figures
//! from a snapshot file; and a host without OVS giving no OVS finding.
//!
//! The labs of this file run one at a time (each is a busy ovs-vswitchd; the busy detector
//! measures CPU shares, which other labs running beside it would disturb).

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;

use common::{check_json, finding, has_evidence, lab_context, nodedoc};
use nodedoc_model::{FindingId, Severity};

static ONE_OVS_LAB_AT_A_TIME: Mutex<()> = Mutex::new(());

fn vsctl(db: &str, args: &[&str]) -> String {
    let output = Command::new("ovs-vsctl")
        .arg(format!("--db={db}"))
        .arg("--timeout=20")
        .args(args)
        .output()
        .expect("run ovs-vsctl");
    assert!(
        output.status.success(),
        "ovs-vsctl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().expect("run ip");
    assert!(status.success(), "ip {args:?}");
}

fn ports_of(db: &str, bridge: &str) -> Vec<String> {
    vsctl(db, &["list-ports", bridge])
        .lines()
        .map(str::to_string)
        .collect()
}

/// Starts the ovs-netns-leak lab, one at a time in this file. Bind as `let (_one, lab)`: the
/// lab is dropped (torn down) before the lock is released.
fn start_ovs_lab() -> (std::sync::MutexGuard<'static, ()>, nodedoc_lab::LabGuard) {
    start_ovs_lab_named("ovs-netns-leak")
}

/// A snapshot of this host and the OVSDB at `db`, as `nodedoc collect` writes it.
fn collect_snapshot(db: &str) -> nodedoc_model::Snapshot {
    let snapshot_file = tempfile::NamedTempFile::new().unwrap();
    let path = snapshot_file.path().to_str().unwrap();
    let out = nodedoc(&["collect", "-o", path, "--ovsdb", db, "--interval", "0"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    nodedoc_model::read_snapshot(snapshot_file.path()).unwrap()
}

/// Adds an internal port, moves its device into a fresh namespace and deletes the namespace:
/// seed 000's script for one more port.
fn orphan_another(db: &str, bridge: &str, name: &str) {
    let namespace = format!("{name}-ns");
    ip(&["netns", "add", &namespace]);
    vsctl(
        db,
        &[
            "--",
            "add-port",
            bridge,
            name,
            "--",
            "set",
            "Interface",
            name,
            "type=internal",
        ],
    );
    ip(&["link", "set", "netns", &namespace, name]);
    ip(&["netns", "del", &namespace]);
}

/// Network device names on the host now (`ip -o link`).
fn link_names() -> Vec<String> {
    let out = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .expect("run ip");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let name = line.split(": ").nth(1)?;
            // `name@peer` for veth and the like.
            Some(name.split('@').next()?.to_string())
        })
        .collect()
}

/// CPU seconds (user + system) a process has used so far.
fn cpu_seconds(pid: i32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let Some(close) = stat.rfind(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks(11) + ticks(12)) / hz
}

/// True when a running ovs-vswitchd has the tun/tap device `name` open (its fdinfo says
/// `iff: NAME`): the device is then that Open vSwitch's, not a leftover.
fn held_by_an_ovs_vswitchd(name: &str) -> bool {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return false;
    };
    procs.flatten().any(|p| {
        let comm = std::fs::read_to_string(p.path().join("comm")).unwrap_or_default();
        comm.trim() == "ovs-vswitchd"
            && std::fs::read_dir(p.path().join("fdinfo"))
                .into_iter()
                .flatten()
                .flatten()
                .any(|fd| {
                    std::fs::read_to_string(fd.path())
                        .unwrap_or_default()
                        .lines()
                        .any(|l| l.strip_prefix("iff:").map(str::trim) == Some(name))
                })
    })
}

/// Stops the lab and checks that no link it caused is left on the host (the userspace
/// datapath's persistent taps used to outlive it): every name the lab recorded is gone,
/// except `ovs-netdev` while another Open vSwitch holds it open.
fn stop_and_check_links(lab: nodedoc_lab::LabGuard) {
    let links: Vec<String> = lab
        .instance()
        .fact("links")
        .expect("the lab lists its links")
        .split(',')
        .map(str::to_string)
        .collect();
    for expected in ["br-int-", "tap", "qr-", "ha-"] {
        assert!(
            links.iter().any(|l| l.starts_with(expected)),
            "{expected}* in {links:?}"
        );
    }
    lab.stop().expect("clean teardown");
    let after = link_names();
    let left: Vec<&String> = links
        .iter()
        .filter(|name| after.contains(name))
        .filter(|name| !(name.as_str() == "ovs-netdev" && held_by_an_ovs_vswitchd(name)))
        .collect();
    assert!(left.is_empty(), "links left behind: {left:?}");
}

#[test]
fn lab_orphan_is_found_with_its_chain_and_healthy_ports_are_not() {
    let (_one, lab) = start_ovs_lab();
    let fact = |key: &str| lab.instance().fact(key).unwrap().to_string();
    let (db, bridge, orphan) = (fact("ovsdb"), fact("bridge"), fact("orphan"));
    let (healthy, router_port, router_ns) =
        (fact("healthy"), fact("router_port"), fact("router_netns"));
    let vswitchd: i32 = fact("vswitchd_pid").parse().unwrap();
    let server: i32 = fact("ovsdb_server_pid").parse().unwrap();
    let dir = fact("dir");

    // No --ovs-log: the log is found among ovs-vswitchd's open files. ovs-vswitchd's own CPU
    // share over the check says whether `ovs-vswitchd-busy` must be there: on a loaded
    // machine it may not get the half core it would take on an idle one.
    let cpu_before = cpu_seconds(vswitchd);
    let started = std::time::Instant::now();
    let (report, _) = check_json(&["--ovsdb", &db, "--interval", "1s"]);
    let vswitchd_share = (cpu_seconds(vswitchd) - cpu_before) / started.elapsed().as_secs_f64();
    let log_source = report
        .sources
        .iter()
        .find(|s| s.source == "ovs-log")
        .unwrap();
    assert!(
        log_source.detail.contains("open by ovs-vswitchd (fd"),
        "{log_source:?}"
    );

    let key = format!("ovs-interface/{orphan}");
    let orphaned = finding(&report, "ovs-orphan-port", &key);
    assert_eq!(orphaned.severity, Severity::Warning);
    match &orphaned.subject {
        nodedoc_model::Subject::OvsInterface { bridge: b, name } => {
            assert_eq!(b.as_deref(), Some(bridge.as_str()));
            assert_eq!(name, &orphan);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        orphaned
            .summary
            .contains("(iface-id d489f511-9f9f-49e9-b772-f43bf3bfa04b)"),
        "{}",
        orphaned.summary
    );
    assert!(
        has_evidence(orphaned, "ifindex 0"),
        "{:#?}",
        orphaned.evidence
    );
    assert!(
        has_evidence(orphaned, &format!("no device {orphan} in any")),
        "{:#?}",
        orphaned.evidence
    );
    assert!(
        has_evidence(
            orphaned,
            &format!("error receiving Ethernet packet on {orphan}")
        ),
        "{:#?}",
        orphaned.evidence
    );
    assert!(orphaned
        .fix
        .contains(&format!("ovs-vsctl --if-exists del-port {bridge} {orphan}")));

    // The healthy tap and the port living in its router namespace are not orphans.
    for other in [&healthy, &router_port] {
        assert!(
            !report
                .findings
                .iter()
                .any(|f| f.subject.key() == format!("ovs-interface/{other}")),
            "{other} flagged"
        );
    }

    // The retry loop, from the log the lab produced.
    let flapping = finding(&report, "ovs-port-flapping", &key);
    assert!(
        flapping.summary.contains("added 4 and deleted 3 times"),
        "{}",
        flapping.summary
    );
    assert!(
        has_evidence(flapping, "ofport climbing"),
        "{:#?}",
        flapping.evidence
    );
    assert!(
        has_evidence(flapping, "neutron-l3-agent (HA router"),
        "{:#?}",
        flapping.evidence
    );
    assert_eq!(orphaned.caused_by, vec![flapping.id.clone()]);

    // ovs-vswitchd polls the dead device: busy, because of the orphan — when it got the CPU to
    // be (the detector's threshold is half a core between the readings).
    let busy = report
        .findings
        .iter()
        .find(|f| f.detector == "ovs-vswitchd-busy" && f.pid == Some(vswitchd));
    if vswitchd_share >= 0.65 {
        let busy = busy.unwrap_or_else(|| {
            panic!("ovs-vswitchd used {vswitchd_share:.2} of a core, but no ovs-vswitchd-busy")
        });
        assert_eq!(busy.caused_by, vec![orphaned.id.clone()]);
        assert!(orphaned.causes.contains(&busy.id));
    } else if let Some(busy) = busy {
        assert_eq!(busy.caused_by, vec![orphaned.id.clone()]);
    } else {
        eprintln!(
            "note: ovs-vswitchd got only {vswitchd_share:.2} of a core on this loaded machine; \
             ovs-vswitchd-busy not asserted"
        );
    }

    // `ovs ports` shows each device and where it lives.
    let out = nodedoc(&["ovs", "ports", "--ovsdb", &db, "--format", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let row = |name: &str| {
        rows.iter()
            .find(|r| r["interface"] == name)
            .unwrap_or_else(|| panic!("{name} in {rows:#?}"))
            .clone()
    };
    assert_eq!(row(&orphan)["device_missing"], true);
    assert_eq!(
        row(&orphan)["iface_id"],
        "d489f511-9f9f-49e9-b772-f43bf3bfa04b"
    );
    assert_eq!(row(&healthy)["device"][0]["namespace"], "host");
    assert!(row(&healthy)["vm_uuid"].is_string());
    assert_eq!(
        row(&router_port)["device"][0]["namespace"],
        router_ns.as_str()
    );
    assert_eq!(row(&router_port)["ifindex"], 0);
    assert_eq!(row(&router_port)["device_missing"], false);
    let text = nodedoc(&["ovs", "ports", "--ovsdb", &db]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("MISSING"));

    stop_and_check_links(lab);
    for pid in [vswitchd, server] {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "pid {pid} left behind (zombie or running)"
        );
    }
    assert!(!Path::new(&dir).exists(), "{dir} removed");
    assert!(!Path::new("/run/netns").join(&router_ns).exists());
}

#[test]
fn fix_removes_exactly_the_orphans_and_spares_a_port_that_came_back() {
    let (_one, lab) = start_ovs_lab();
    let fact = |key: &str| lab.instance().fact(key).unwrap().to_string();
    let (db, bridge, orphan) = (fact("ovsdb"), fact("bridge"), fact("orphan"));
    let (healthy, router_port) = (fact("healthy"), fact("router_port"));
    let comeback = orphan.replace("-9f", "-b2");
    orphan_another(&db, &bridge, &comeback);

    // Without a terminal and without --yes: shows the transaction, changes nothing.
    let dry = nodedoc(&["fix", "ovs-orphan-port", "--ovsdb", &db]);
    let stdout = String::from_utf8_lossy(&dry.stdout);
    assert_eq!(
        dry.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    assert!(stdout.contains("2 orphaned OVS port(s)"), "{stdout}");
    assert!(stdout.contains("\"op\": \"wait\""), "{stdout}");
    assert!(stdout.contains("dry run: nothing changed"), "{stdout}");
    assert!(ports_of(&db, &bridge).contains(&orphan));
    assert!(ports_of(&db, &bridge).contains(&comeback));

    // Plan from what was read, then the second port comes back (the agent re-adds it with a
    // live device: another uuid, another ofport) before the plan is applied.
    let snapshot = collect_snapshot(&db);
    let findings = nodedoc_detectors::run(&snapshot, &Default::default());
    let mut names: Vec<String> = findings
        .iter()
        .filter(|f| f.detector == "ovs-orphan-port")
        .map(|f| match &f.subject {
            nodedoc_model::Subject::OvsInterface { name, .. } => name.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    names.sort();
    assert_eq!(names, [orphan.clone(), comeback.clone()]);
    let plan =
        nodedoc_ovs::fix::OrphanRemoval::plan(snapshot.ovs.as_ref().unwrap(), &names).unwrap();
    vsctl(&db, &["--if-exists", "del-port", &comeback]);
    vsctl(
        &db,
        &[
            "--",
            "add-port",
            &bridge,
            &comeback,
            "--",
            "set",
            "Interface",
            &comeback,
            "type=internal",
        ],
    );
    let outcome = nodedoc_ovs::block_on(async {
        let client = nodedoc_ovsdb::Client::connect(db.as_str()).await?;
        plan.apply(&client).await
    })
    .unwrap()
    .unwrap();
    assert_eq!(outcome.removed, [format!("{bridge}/{orphan}")]);
    assert_eq!(outcome.spared.len(), 1, "{outcome:?}");
    assert_eq!(outcome.spared[0].0, format!("{bridge}/{comeback}"));
    let mut left = ports_of(&db, &bridge);
    left.sort();
    let mut expected = vec![comeback.clone(), healthy.clone(), router_port.clone()];
    expected.sort();
    assert_eq!(left, expected, "exactly the orphan went");

    // The CLI with --yes on a fresh orphan: removed, the rest untouched.
    vsctl(&db, &["--if-exists", "del-port", &comeback]);
    orphan_another(&db, &bridge, &comeback);
    let applied = nodedoc(&["fix", "ovs-orphan-port", "--ovsdb", &db, "--yes"]);
    let stdout = String::from_utf8_lossy(&applied.stdout);
    assert_eq!(
        applied.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    assert!(
        stdout.contains(&format!("removed {bridge}/{comeback}")),
        "{stdout}"
    );
    let mut left = ports_of(&db, &bridge);
    left.sort();
    let mut expected = vec![healthy, router_port];
    expected.sort();
    assert_eq!(left, expected);
    // Nothing left to fix.
    let again = nodedoc(&["fix", "ovs-orphan-port", "--ovsdb", &db, "--yes"]);
    assert!(String::from_utf8_lossy(&again.stdout).contains("no orphaned OVS ports"));
    stop_and_check_links(lab);
}

#[test]
fn seed_000_snapshot_chains_fd_exhaustion_to_the_flapping_port() {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/seed-000-ovs-snapshot.json"
    );
    let (report, code) = check_json(&["--from", fixture]);
    assert_eq!(code, 2);
    let exhaustion = finding(&report, "fd-exhaustion", "pid/812");
    let excess = finding(&report, "ovs-netlink-socket-excess", "pid/812");
    let orphan = finding(&report, "ovs-orphan-port", "ovs-interface/ha-d489f511-9f");
    let flapping = finding(&report, "ovs-port-flapping", "ovs-interface/ha-d489f511-9f");
    assert!(
        excess.summary.contains("102,409 NETLINK_GENERIC"),
        "{}",
        excess.summary
    );
    assert!(
        has_evidence(excess, "40 ports × 47 handler threads + 64"),
        "{:#?}",
        excess.evidence
    );
    assert_eq!(exhaustion.caused_by, vec![excess.id.clone()]);
    assert_eq!(excess.caused_by, vec![orphan.id.clone()]);
    assert_eq!(orphan.caused_by, vec![flapping.id.clone()]);
    assert_eq!(
        flapping.causes,
        vec![FindingId(
            "ovs-orphan-port:ovs-interface/ha-d489f511-9f".into()
        )]
    );
}

#[test]
fn a_host_without_open_vswitch_gives_no_ovs_finding() {
    // Named explicitly, the missing socket is a failure (exit 3) after the report.
    let (report, code) = check_json(&["--interval", "0", "--ovsdb", "unix:/nonexistent/db.sock"]);
    assert_eq!(code, 3);
    let source = report.sources.iter().find(|s| s.source == "ovsdb").unwrap();
    assert_eq!(source.state, nodedoc_model::SourceState::Failed);
    assert!(source.detail.contains("/nonexistent/db.sock"), "{source:?}");
    assert!(!report
        .findings
        .iter()
        .any(|f| f.detector.starts_with("ovs-")));

    // The default socket: absent on a host without OVS (and then not an error).
    let (report, _) = check_json(&["--interval", "0"]);
    let source = report.sources.iter().find(|s| s.source == "ovsdb").unwrap();
    if source.state == nodedoc_model::SourceState::Absent {
        assert!(!report
            .findings
            .iter()
            .any(|f| f.detector.starts_with("ovs-")));
        let ports = nodedoc(&["ovs", "ports"]);
        assert_eq!(ports.status.code(), Some(0));
        assert!(String::from_utf8_lossy(&ports.stdout).contains("no Open vSwitch here"));
        let fix = nodedoc(&["fix", "ovs-orphan-port"]);
        assert_eq!(fix.status.code(), Some(0));
        assert!(String::from_utf8_lossy(&fix.stdout).contains("nothing to fix"));
    }
}

/// A network namespace this test created, deleted on drop (also when the test panics).
struct TestNetns(String);

impl TestNetns {
    fn add(name: String) -> TestNetns {
        ip(&["netns", "add", &name]);
        TestNetns(name)
    }
}

impl Drop for TestNetns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.0])
            .status();
    }
}

#[test]
fn fix_spares_a_port_whose_device_reappeared_in_another_namespace_before_the_transaction() {
    let (_one, lab) = start_ovs_lab();
    let fact = |key: &str| lab.instance().fact(key).unwrap().to_string();
    let (db, bridge, orphan) = (fact("ovsdb"), fact("bridge"), fact("orphan"));

    // The plan, from what was read while the device was gone everywhere.
    let snapshot = collect_snapshot(&db);
    let plan = nodedoc_ovs::fix::OrphanRemoval::plan(
        snapshot.ovs.as_ref().unwrap(),
        std::slice::from_ref(&orphan),
    )
    .unwrap();
    assert_eq!(plan.removals.len(), 1);

    // While the operator reads the plan, something re-creates a device of that name in a
    // namespace of its own (a bridge stands in for the tap: no dummy module here). OVSDB does
    // not change, so the transaction's `wait`s would pass.
    let namespace = TestNetns::add(format!("fixrc-{}", nodedoc_lab::unique_suffix()));
    ip(&["-n", &namespace.0, "link", "add", &orphan, "type", "bridge"]);
    let apply = || {
        nodedoc_ovs::block_on(async {
            let client = nodedoc_ovsdb::Client::connect(db.as_str()).await?;
            plan.apply_after_recheck(&client, Path::new("/run/netns"))
                .await
        })
        .unwrap()
        .unwrap()
    };
    let outcome = apply();
    assert!(outcome.removed.is_empty(), "{outcome:?}");
    assert_eq!(outcome.spared.len(), 1, "{outcome:?}");
    assert_eq!(outcome.spared[0].0, format!("{bridge}/{orphan}"));
    assert!(
        outcome.spared[0].1.starts_with(&format!(
            "its device exists again, re-created since it was read: {orphan} in netns {}",
            namespace.0
        )),
        "{}",
        outcome.spared[0].1
    );
    assert!(ports_of(&db, &bridge).contains(&orphan), "the port stays");

    // Gone again (its namespace deleted): the same plan now removes the port.
    drop(namespace);
    let outcome = apply();
    assert_eq!(outcome.removed, [format!("{bridge}/{orphan}")]);
    assert!(outcome.spared.is_empty(), "{outcome:?}");
    assert!(!ports_of(&db, &bridge).contains(&orphan));
    stop_and_check_links(lab);
}

/// This host's first global IPv4 address, if it has one: a non-loopback address that a test
/// can listen on without any traffic leaving the host.
fn a_non_loopback_address_of_this_host() -> Option<String> {
    let out = Command::new("ip")
        .args(["-o", "-4", "addr", "show", "scope", "global"])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|line| {
            let mut words = line.split_whitespace();
            words.find(|w| *w == "inet")?;
            Some(words.next()?.split('/').next()?.to_string())
        })
}

#[test]
fn fix_refuses_cleartext_tcp_to_another_host_before_connecting() {
    let refused = nodedoc(&[
        "fix",
        "ovs-orphan-port",
        "--ovsdb",
        "tcp:192.0.2.1:6640",
        "--yes",
    ]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("refusing to fix through tcp:192.0.2.1:6640")
            && stderr.contains("clear text")
            && stderr.contains("--allow-cleartext-tcp"),
        "{stderr}"
    );
    assert!(refused.stdout.is_empty(), "nothing read, nothing planned");

    // On an address of this host that is not loopback, a listener proves that nothing
    // connected; with --allow-cleartext-tcp, nodedoc does connect.
    let Some(address) = a_non_loopback_address_of_this_host() else {
        eprintln!("no global IPv4 address here: the listener part is skipped");
        return;
    };
    let listener = std::net::TcpListener::bind((address.as_str(), 0)).unwrap();
    listener.set_nonblocking(true).unwrap();
    let endpoint = format!("tcp:{address}:{}", listener.local_addr().unwrap().port());
    let refused = nodedoc(&["fix", "ovs-orphan-port", "--ovsdb", &endpoint, "--yes"]);
    assert_eq!(refused.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("refusing to fix"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert_eq!(
        listener.accept().map(drop).unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock,
        "nodedoc connected although it refused"
    );

    let allowed = Command::new(common::NODEDOC)
        .args([
            "fix",
            "ovs-orphan-port",
            "--ovsdb",
            &endpoint,
            "--allow-cleartext-tcp",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    listener.set_nonblocking(false).unwrap();
    // Not an OVSDB server: the connection is closed at once and nodedoc says it could not
    // read Open vSwitch.
    drop(listener.accept().expect("nodedoc connected"));
    let out = allowed.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("refusing"), "{stderr}");
    assert!(stderr.contains(&endpoint), "{stderr}");
}

/// Starts an OVS lab, waiting (bounded) while another Open vSwitch on this host holds the
/// userspace datapath's `ovs-netdev`: only one userspace datapath can exist per host, and a
/// second lab's internal ports are then never created (other test binaries, other users of
/// this machine). Bind as `let (_one, lab)`.
fn start_ovs_lab_named(
    scenario: &str,
) -> (std::sync::MutexGuard<'static, ()>, nodedoc_lab::LabGuard) {
    let one = ONE_OVS_LAB_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    loop {
        match nodedoc_lab::start(scenario, &lab_context()) {
            Ok(lab) => return (one, lab),
            Err(e)
                if std::time::Instant::now() < deadline
                    && held_by_an_ovs_vswitchd("ovs-netdev") =>
            {
                eprintln!("another Open vSwitch holds the userspace datapath ({e}); waiting");
                std::thread::sleep(std::time::Duration::from_secs(5));
            }
            Err(e) => panic!("start {scenario}: {e}"),
        }
    }
}

/// `nodedoc watch --format json ARGS`, killed when dropped; its events arrive on a channel.
struct Watch {
    child: std::process::Child,
    events: std::sync::mpsc::Receiver<nodedoc_agent::Event>,
}

impl Watch {
    fn start(args: &[&str]) -> Watch {
        use std::io::BufRead;
        let mut child = Command::new(common::NODEDOC)
            .args(["watch", "--format", "json"])
            .args(args)
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::piped())
            .stdin(std::process::Stdio::null())
            .spawn()
            .expect("start watch");
        let stdout = child.stdout.take().unwrap();
        let (tx, events) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let event: nodedoc_agent::Event = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not an event line ({e}): {line}"));
                if tx.send(event).is_err() {
                    break;
                }
            }
        });
        Watch { child, events }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_agent_ties_a_leak_to_the_deletes_of_the_flapping_port() {
    let (_one, lab) = start_ovs_lab_named("ovs-leak-per-event");
    let fact = |key: &str| lab.instance().fact(key).unwrap().to_string();
    let (db, orphan) = (fact("ovsdb"), fact("orphan"));
    let leaker: i32 = fact("leaker_pid").parse().unwrap();

    // No --ovs-log: the agent finds the log among ovs-vswitchd's open files and follows it.
    let watch = Watch::start(&["--ovsdb", &db, "--interval", "1s", "--sample", "0s"]);
    let leak = FindingId(format!("fd-leak:pid/{leaker}"));
    let per_event = FindingId(format!("leak-per-event:pid/{leaker}"));
    let flapping = FindingId(format!("ovs-port-flapping:ovs-interface/{orphan}"));
    // The latest open or updated version of every finding.
    let mut latest: std::collections::HashMap<FindingId, nodedoc_model::Finding> =
        Default::default();
    let chained = |latest: &std::collections::HashMap<FindingId, nodedoc_model::Finding>| {
        latest
            .get(&per_event)
            .is_some_and(|f| f.causes.contains(&leak) && f.caused_by.contains(&flapping))
            && latest.contains_key(&leak)
            && latest.contains_key(&flapping)
    };
    // A bound on a hang, not a timing assertion: fd-leak needs six readings and 20 sockets.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(240);
    while !chained(&latest) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let event = watch
            .events
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no chain within 240 s; open: {:#?}", latest.keys()));
        match event.event {
            nodedoc_agent::EventKind::Resolve => {
                latest.remove(&event.finding.id);
            }
            _ => {
                latest.insert(event.finding.id.clone(), event.finding);
            }
        }
    }
    let tied = &latest[&per_event];
    assert_eq!(tied.pid, Some(leaker));
    assert!(
        tied.summary
            .contains(&format!("interface {orphan}` in ovs-vswitchd.log leaves")),
        "{}",
        tied.summary
    );
    // One socket per delete.
    let per: f64 = tied
        .summary
        .split(" leaves ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no count in {}", tied.summary));
    assert!((0.7..=1.3).contains(&per), "{}", tied.summary);
    assert!(
        has_evidence(tied, &format!("`deleted interface {orphan}` lines"))
            || has_evidence(tied, &format!("`added interface {orphan}` lines"))
    );
    let leaking = &latest[&leak];
    assert!(
        leaking.summary.contains("NETLINK_GENERIC"),
        "{}",
        leaking.summary
    );
    assert!(leaking.caused_by.contains(&per_event));
    let flap = &latest[&flapping];
    assert!(flap.causes.contains(&per_event), "{:?}", flap.causes);
    drop(watch);
    stop_and_check_links(lab);
}

#[test]
fn ovs_ports_watch_prints_a_taps_lifecycle_as_it_happens() {
    use std::io::BufRead;
    let server = nodedoc_ovsdb::testing::TestServer::start().expect("ovsdb-server");
    server.vsctl(&["add-br", "br-int"]).unwrap();
    server.vsctl(&["add-port", "br-int", "tap-old"]).unwrap();
    let endpoint = server.endpoint();
    let mut child = Command::new(common::NODEDOC)
        .args([
            "ovs", "ports", "--watch", "--format", "json", "--ovsdb", &endpoint,
        ])
        .stdout(std::process::Stdio::piped())
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("start ovs ports --watch");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stdout = child.stdout.take().unwrap();
    let _child = Kill(child);
    let (tx, lines) = std::sync::mpsc::channel::<serde_json::Value>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
            if tx.send(value).is_err() {
                break;
            }
        }
    });
    let next = || {
        lines
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("a line from ovs ports --watch")
    };
    // What is there when it starts: one `present` line per interface (the bridge's own too).
    let mut present = vec![next()["interface"].as_str().unwrap().to_string()];
    present.push(next()["interface"].as_str().unwrap().to_string());
    present.sort();
    assert_eq!(present, ["br-int", "tap-old"]);

    // Seed 002: libvirt plugs the VM's tap with its ids, ovs-vswitchd assigns the OpenFlow
    // port (no ovs-vswitchd here: set as it would), libvirt unplugs it at shutdown.
    server
        .vsctl(&[
            "--",
            "add-port",
            "br-int",
            "tap5bd1f9a8-2c",
            "--",
            "set",
            "Interface",
            "tap5bd1f9a8-2c",
            "external_ids:iface-id=5bd1f9a8-2c1b-4f0e-9c1f-3c8e0b4a7d21",
            "external_ids:iface-status=active",
            "external_ids:attached-mac=fa:16:3e:11:22:33",
            "external_ids:vm-uuid=8f6b0c3e-5d2a-4e71-b9a4-0c6e2f1d3b57",
        ])
        .unwrap();
    let inserted = next();
    assert_eq!(inserted["event"], "inserted");
    assert_eq!(inserted["interface"], "tap5bd1f9a8-2c");
    assert_eq!(inserted["bridge"], "br-int");
    assert_eq!(
        inserted["external_ids"]["vm-uuid"],
        "8f6b0c3e-5d2a-4e71-b9a4-0c6e2f1d3b57"
    );
    assert!(inserted["at"].as_str().unwrap().ends_with('Z'));
    server
        .vsctl(&["set", "Interface", "tap5bd1f9a8-2c", "ofport=7"])
        .unwrap();
    let ofport = next();
    assert_eq!(ofport["event"], "ofport");
    assert_eq!(ofport["from"], serde_json::Value::Null);
    assert_eq!(ofport["to"], 7);
    server
        .vsctl(&["del-port", "br-int", "tap5bd1f9a8-2c"])
        .unwrap();
    let deleted = next();
    assert_eq!(deleted["event"], "deleted");
    assert_eq!(deleted["interface"], "tap5bd1f9a8-2c");
    assert_eq!(deleted["ofport"], 7);
}
