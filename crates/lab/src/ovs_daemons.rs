//! A private Open vSwitch for labs: `ovsdb-server` and `ovs-vswitchd` in one directory,
//! supervised by a helper process (`nodedoc lab-helper ovs-daemons --dir DIR`).
//!
//! Why a supervising helper: the daemons run without `--detach`, as the helper's children,
//! so they never become orphans that PID 1 must reap (this machine's PID 1 reaps lazily and
//! `pgrep` would list the zombies). The helper is a child subreaper too, so anything the
//! daemons fork is reaped here. On SIGTERM (the lab's teardown) it stops both daemons,
//! reaps them and exits; the lab then removes the directory.
//!
//! What outlives the daemons: with the userspace datapath, ovs-vswitchd makes the datapath's
//! `ovs-netdev` and every internal port a persistent tap device, which it does not delete when
//! it exits. The scenario names them before the daemons start and records each as a
//! [`Resource::Link`](crate::Resource::Link), released after this helper.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::LabError;

/// Where Debian installs the Open_vSwitch schema.
pub(crate) const VSWITCH_SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";

fn helper_error(detail: impl std::fmt::Display) -> LabError {
    LabError::Helper {
        helper: "ovs-daemons".into(),
        detail: detail.to_string(),
    }
}

/// `ovs-vsctl`, `ovsdb-tool`, … with every OVS default path inside `dir`.
pub(crate) fn ovs_command(program: &str, dir: &Path) -> Command {
    let mut command = Command::new(program);
    command
        .env("OVS_RUNDIR", dir)
        .env("OVS_LOGDIR", dir)
        .env("OVS_DBDIR", dir)
        .stdin(Stdio::null());
    command
}

pub(crate) use crate::process::run;

fn wait_for(path: &Path, what: &str) -> Result<(), LabError> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !path.exists() {
        if Instant::now() > deadline {
            return Err(helper_error(format!(
                "{what}: {} did not appear",
                path.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// The helper: starts the daemons in `--dir`, says `ready`, stops them on SIGTERM.
pub(crate) fn ovs_daemons(args: &[String]) -> Result<(), LabError> {
    let dir = args
        .windows(2)
        .find(|pair| pair[0] == "--dir")
        .map(|pair| PathBuf::from(&pair[1]))
        .ok_or_else(|| helper_error("--dir is required"))?;
    let supervisor = crate::supervisor::Supervisor::start();
    let spawn = |program: &str, args: Vec<String>| -> Result<std::process::Child, LabError> {
        let mut command = ovs_command(program, &dir);
        command
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        crate::supervisor::Supervisor::unblock_in(&mut command);
        command
            .spawn()
            .map_err(|e| helper_error(format!("cannot start {program}: {e}")))
    };
    let path = |name: &str| dir.join(name).display().to_string();

    let mut create = ovs_command("ovsdb-tool", &dir);
    create.args(["create", &path("conf.db"), VSWITCH_SCHEMA]);
    run(create, "ovsdb-tool create").map_err(helper_error)?;
    let mut children = Vec::new();
    children.push(spawn(
        "ovsdb-server",
        vec![
            path("conf.db"),
            format!("--remote=punix:{}", path("db.sock")),
            format!("--pidfile={}", path("ovsdb-server.pid")),
            format!("--unixctl={}", path("ovsdb-server.ctl")),
            format!("--log-file={}", path("ovsdb-server.log")),
        ],
    )?);
    let started = (|| {
        wait_for(&dir.join("db.sock"), "ovsdb-server")?;
        let mut init = ovs_command("ovs-vsctl", &dir);
        init.args([
            &format!("--db=unix:{}", path("db.sock")),
            "--no-wait",
            "init",
        ]);
        run(init, "ovs-vsctl init").map_err(helper_error)?;
        Ok::<_, LabError>(())
    })();
    if let Err(e) = started {
        stop(&mut children);
        return Err(e);
    }
    match spawn(
        "ovs-vswitchd",
        vec![
            format!("unix:{}", path("db.sock")),
            format!("--pidfile={}", path("ovs-vswitchd.pid")),
            format!("--unixctl={}", path("ovs-vswitchd.ctl")),
            format!("--log-file={}", path("ovs-vswitchd.log")),
        ],
    ) {
        Ok(child) => children.push(child),
        Err(e) => {
            stop(&mut children);
            return Err(e);
        }
    }
    if let Err(e) = wait_for(&dir.join("ovs-vswitchd.ctl"), "ovs-vswitchd") {
        stop(&mut children);
        return Err(e);
    }
    crate::helpers::ready();
    supervisor.wait();
    stop(&mut children);
    std::process::exit(0)
}

/// Stops the daemons newest first (ovs-vswitchd before the database it reads), SIGKILL
/// after 5 s, and reaps them and anything else re-parented to us.
fn stop(children: &mut Vec<std::process::Child>) {
    while let Some(mut child) = children.pop() {
        crate::supervisor::stop_child(&mut child, Duration::from_secs(5));
    }
    crate::supervisor::reap_exited();
}

/// Set by SIGTERM in [`ovs_flapper`]: finish the command under way, then exit.
static FLAPPER_STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn flapper_stop(_: libc::c_int) {
    FLAPPER_STOP.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Seed 000's reproduction script, replayed in a loop against the lab's Open vSwitch, as
/// neutron-l3-agent's retry loop ran it: `--if-exists del-port` (the port the last round
/// left behind), `ip netns add NS`, `add-port BRIDGE NAME` with the seed's external_ids, `ip
/// link set netns NS NAME`, `ip netns del NS` — each round leaves the port orphaned, its
/// device destroyed with the namespace. Rounds come in bursts (`--bursts 1,3,0,2`: so many
/// rounds, then a pause of `--pause-ms`, then the next burst), so that the number of deletes
/// varies from one agent round to the next. Runs until SIGTERM, which it takes between two
/// commands.
pub(crate) fn ovs_flapper(args: &[String]) -> Result<(), LabError> {
    const NAME: &str = "ovs-flapper";
    let value = |name: &str| {
        args.windows(2)
            .find(|pair| pair[0] == name)
            .map(|pair| pair[1].clone())
            .ok_or_else(|| LabError::Helper {
                helper: NAME.into(),
                detail: format!("{name} is required"),
            })
    };
    let dir = PathBuf::from(value("--dir")?);
    let bridge = value("--bridge")?;
    let interface = value("--interface")?;
    let namespace = value("--namespace")?;
    let iface_id = value("--iface-id")?;
    let mac = value("--attached-mac")?;
    let bursts: Vec<u32> = value("--bursts")
        .unwrap_or_else(|_| "1,3,0,2,4,1,0,3,2".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    let pause = Duration::from_millis(
        value("--pause-ms")
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(1500),
    );
    let db = format!("unix:{}", dir.join("db.sock").display());
    // SAFETY: installs an async-signal-safe handler (an atomic store).
    unsafe {
        libc::signal(
            libc::SIGTERM,
            flapper_stop as *const () as libc::sighandler_t,
        )
    };
    let stopping = || FLAPPER_STOP.load(std::sync::atomic::Ordering::SeqCst);
    let vsctl = |args: &[&str]| {
        let mut command = ovs_command("ovs-vsctl", &dir);
        command
            .arg(format!("--db={db}"))
            .arg("--timeout=20")
            .args(args);
        run(command, &format!("ovs-vsctl {}", args.join(" ")))
    };
    let ip = |args: &[&str]| {
        let mut command = Command::new("ip");
        command.args(args).stdin(Stdio::null());
        run(command, &format!("ip {}", args.join(" ")))
    };
    let iface_id_arg = format!("external_ids:iface-id={iface_id}");
    let mac_arg = format!("external_ids:attached-mac={mac}");
    let round = || -> Result<(), String> {
        vsctl(&["--", "--if-exists", "del-port", &bridge, &interface])?;
        ip(&["netns", "add", &namespace])?;
        vsctl(&[
            "--",
            "add-port",
            &bridge,
            &interface,
            "--",
            "set",
            "Interface",
            &interface,
            "type=internal",
            &iface_id_arg,
            "external_ids:iface-status=active",
            &mac_arg,
        ])?;
        let moved = ip(&["link", "set", "netns", &namespace, &interface]);
        ip(&["netns", "del", &namespace])?;
        moved.map(drop)
    };
    crate::helpers::ready();
    let mut failures = 0u32;
    for burst in bursts.iter().cycle() {
        for _ in 0..*burst {
            if stopping() {
                std::process::exit(0);
            }
            if round().is_err() {
                // Another command of the lab's OVS may race it; a few failures in a row
                // mean the lab is being torn down.
                failures += 1;
                if failures > 20 {
                    std::process::exit(1);
                }
            } else {
                failures = 0;
            }
        }
        let until = Instant::now() + pause;
        while Instant::now() < until {
            if stopping() {
                std::process::exit(0);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Ok(())
}
