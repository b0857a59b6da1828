//! `docker-stop-hang`: seed 003's "情况2" on a real dockerd 20.10: `docker stop` cannot stop
//! a container whose killed init waits in `zap_pid_ns_processes` for a child frozen with the
//! cgroup v1 freezer. dockerd runs in a network namespace of the lab's (entered with
//! `nsenter --net`), containers with `--network none`, cgroups under the lab's own parent.
//! dockerd 20.10.24 logs `Container failed to exit within 10 seconds of kill - trying direct
//! SIGKILL` and `Error killing the container … tried to kill container, but did not receive an
//! exit event`, each with `container=<id>`, and the stop request fails.
//!
//! Facts: `container_id`, `container_name`, `init_pid`, `child_pid`, `freezer_cgroup`,
//! `runtime_log` (dockerd's log), `runtime_log_line`, `netns`, `socket`.

use std::process::Stdio;
use std::time::Duration;

use super::{private_dir, require_root, v1_freezer, Scenario};
use crate::process::{spawn_helper, stack_has};
use crate::runtimes::{
    build_image, docker_cli, first_child, freeze_in_container, record_stuck_container,
    require_programs, run, wait_for_log_line, Daemon, IMAGE,
};
use crate::{LabContext, LabError, LabGuard, Resource};

pub(super) const SCENARIO: Scenario = Scenario {
    name: "docker-stop-hang",
    summary: "dockerd cannot stop a container: its killed init waits for a frozen child",
    seed: "003 (docker stop fails: init in zap_pid_ns_processes, a child that cannot die)",
    settle_secs: 0,
    start,
};

fn start(guard: &mut LabGuard, cx: &LabContext) -> Result<(), LabError> {
    let name = SCENARIO.name;
    require_root(name)?;
    v1_freezer(name)?;
    require_programs(name, &["dockerd", "containerd", "runc"], "docker.io")?;
    require_programs(name, &["nsenter"], "util-linux")?;
    require_programs(name, &["busybox"], "busybox-static")?;
    let setup = |step: &str, e: &dyn std::fmt::Display| LabError::setup(name, step, e);

    let dir = private_dir(guard, name, "nodedoc-lab-dk-")?;
    let suffix = crate::unique_suffix();
    let netns = format!("ndlab-dk-{suffix}");
    let mut add = std::process::Command::new("ip");
    add.args(["netns", "add", &netns]);
    run(add, "ip netns add").map_err(|e| setup("create the network namespace", &e))?;
    guard.instance_mut().resources.push(Resource::NetNs {
        name: netns.clone(),
    });
    let cgroup_root = format!("nodedoc-lab-{suffix}");
    guard.instance_mut().resources.push(Resource::CgroupTree {
        name: cgroup_root.clone(),
    });
    let image = build_image(&dir).map_err(|e| setup("build the busybox image", &e))?;
    let dir_arg = dir.display().to_string();
    let netns_arg = format!("--net=/run/netns/{netns}");
    let cgroup_parent = format!("/{cgroup_root}/docker");
    spawn_helper(
        guard,
        cx,
        "dockerd",
        &["nsenter", &netns_arg],
        &[
            "runtime-daemon",
            "--kind",
            "dockerd",
            "--dir",
            &dir_arg,
            "--cgroup-parent",
            &cgroup_parent,
        ],
        |_| {},
    )?;
    let socket = Daemon::Dockerd.socket(&dir);
    let log = Daemon::Dockerd.log(&dir);
    let mut load = docker_cli(&socket);
    load.arg("load").arg("--input").arg(&image);
    run(load, "docker load").map_err(|e| setup("load the image", &e))?;

    let container_name = format!("nodedoc-lab-stuck-{suffix}");
    let mut create = docker_cli(&socket);
    create.args([
        "run",
        "--detach",
        "--network",
        "none",
        "--name",
        &container_name,
        IMAGE,
        "/bin/sh",
        "-c",
        "sleep 2147483647 & wait",
    ]);
    guard
        .instance_mut()
        .resources
        .push(Resource::DockerContainer {
            socket: socket.clone(),
            name: container_name.clone(),
        });
    let id = run(create, "docker run")
        .map_err(|e| setup("start the container", &e))?
        .trim()
        .to_string();
    let mut inspect = docker_cli(&socket);
    inspect.args(["inspect", "--format", "{{.State.Pid}}", &container_name]);
    let init: i32 = run(inspect, "docker inspect")
        .map_err(|e| setup("find the container's init", &e))?
        .trim()
        .parse()
        .map_err(|e| setup("find the container's init", &e))?;
    let child = first_child(name, init)?;
    let frozen = freeze_in_container(guard, name, child)?;

    // `docker stop`: SIGTERM, SIGKILL after 1 s, then dockerd waits 10 s for the exit, tries
    // a direct SIGKILL, waits 2 s more and fails the stop. The CLI is ended if it lingers.
    let mut stop = docker_cli(&socket);
    stop.args(["stop", "--time", "1", &container_name])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut stopping = stop.spawn().map_err(|e| setup("docker stop", &e))?;
    // 20.10.24 names the container in a field (older releases in the message, by short id).
    let line = wait_for_log_line(
        &log,
        &["failed to exit within 10 seconds of kill", &id],
        Duration::from_secs(40),
    );
    // The exit event that never comes: logged once the direct SIGKILL has been waited for.
    let exit_event = wait_for_log_line(
        &log,
        &["did not receive an exit event", &id],
        Duration::from_secs(10),
    );
    let _ = stopping.kill();
    let _ = stopping.wait();
    let line = line.ok_or_else(|| {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(12).collect();
        setup(
            "docker stop",
            &format!(
                "dockerd logged no failed kill; its log ends: {}",
                tail.join(" | ")
            ),
        )
    })?;
    if !stack_has(init, "zap_pid_ns_processes") {
        return Err(setup(
            "docker stop",
            &"the init did not reach zap_pid_ns_processes",
        ));
    }
    let facts = vec![
        ("container_id", id.clone()),
        ("container_name", container_name),
        ("runtime_log", log.display().to_string()),
        ("runtime_log_line", line),
        ("exit_event_line", exit_event.unwrap_or_default()),
        ("netns", netns),
        ("socket", socket.display().to_string()),
    ];
    record_stuck_container(guard, facts, init, child, &frozen);
    Ok(())
}
