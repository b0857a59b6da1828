//! `containerd-stop-hang`: seed 003's container that never stops, on a real containerd 1.6
//! driven through its CRI exactly as kubelet drives it. A pod (host network, its container in a
//! pid namespace of its own, cgroups under `kubepods/besteffort/pod<uid>` as kubelet's cgroupfs
//! driver makes them) runs `sh -c 'sleep … & wait'`; the child is frozen alone with the cgroup
//! v1 freezer (state D); CRI `StopContainer` then sends SIGTERM, SIGKILL after the grace
//! period, and waits for the exit that cannot come: the init sits in `zap_pid_ns_processes`
//! behind its frozen child, and containerd logs
//! `StopContainer for "<id>" failed … context deadline exceeded`.
//!
//! Facts: `container_id`, `pod_uid`, `pod_name`, `pod_namespace`, `pod_sandbox_id`, `init_pid`,
//! `child_pid`, `freezer_cgroup`, `runtime_log` (containerd's log, for `check --log`),
//! `stop_error` (what the CRI call returned), `socket`.

use std::time::Duration;

use nodedoc_cri::v1::{
    ContainerConfig, ContainerMetadata, ImageSpec, LinuxContainerConfig,
    LinuxContainerSecurityContext, LinuxPodSandboxConfig, LinuxSandboxSecurityContext,
    NamespaceMode, NamespaceOption, PodSandboxConfig, PodSandboxMetadata,
};
use nodedoc_cri::CriClient;

use super::{private_dir, require_root, v1_freezer, Scenario};
use crate::process::{spawn_helper, stack_has, wait_until};
use crate::runtimes::{
    build_image, first_child, freeze_in_container, pod_uid, record_stuck_container,
    require_programs, run, wait_for_log_line, write_containerd_config, Daemon, CRI_NAMESPACE,
    IMAGE,
};
use crate::{LabContext, LabError, LabGuard, Resource};

pub(super) const SCENARIO: Scenario = Scenario {
    name: "containerd-stop-hang",
    summary: "containerd (CRI) cannot stop a container: its killed init waits for a frozen child",
    seed:
        "003 (containers that never stop: init in zap_pid_ns_processes, the runtime's stop fails)",
    settle_secs: 0,
    start,
};

/// The grace period of the stop (kubelet: the pod's terminationGracePeriodSeconds).
const GRACE_SECS: i64 = 1;

/// The deadline of the whole StopContainer call (kubelet: the grace period plus
/// `--runtime-request-timeout`, 2 minutes by default; short here).
const STOP_DEADLINE: Duration = Duration::from_secs(5);

fn start(guard: &mut LabGuard, cx: &LabContext) -> Result<(), LabError> {
    let name = SCENARIO.name;
    require_root(name)?;
    v1_freezer(name)?;
    require_programs(name, &["containerd", "ctr"], "containerd")?;
    require_programs(name, &["runc"], "runc")?;
    require_programs(name, &["busybox"], "busybox-static")?;
    let setup = |step: &str, e: &dyn std::fmt::Display| LabError::setup(name, step, e);

    let dir = private_dir(guard, name, "nodedoc-lab-ctd-")?;
    // Container cgroups go under a top-level cgroup of this lab's, as under kubelet's
    // `--cgroup-root`: /nodedoc-lab-XXXXXX/kubepods/besteffort/pod<uid>/<container id>.
    let cgroup_root = format!("nodedoc-lab-{}", crate::unique_suffix());
    guard.instance_mut().resources.push(Resource::CgroupTree {
        name: cgroup_root.clone(),
    });
    write_containerd_config(&dir).map_err(|e| setup("write containerd.toml", &e))?;
    let image = build_image(&dir).map_err(|e| setup("build the busybox image", &e))?;
    let dir_arg = dir.display().to_string();
    spawn_helper(
        guard,
        cx,
        "containerd",
        &[],
        &["runtime-daemon", "--kind", "containerd", "--dir", &dir_arg],
        |_| {},
    )?;
    let socket = Daemon::Containerd.socket(&dir);
    let log = Daemon::Containerd.log(&dir);
    let mut import = std::process::Command::new("ctr");
    import
        .arg("--address")
        .arg(&socket)
        .args(["--namespace", CRI_NAMESPACE, "images", "import"])
        .args(["--snapshotter", "native"])
        .arg(&image);
    run(import, "ctr images import").map_err(|e| setup("import the image", &e))?;

    let cri = CriClient::connect(&socket).map_err(|e| setup("connect to the CRI socket", &e))?;
    let uid = pod_uid();
    let pod_name = format!("stuck-{}", crate::unique_suffix());
    let pod_namespace = "nodedoc-lab".to_string();
    // Host network (no CNI here), a pid namespace per container: kubelet's defaults for a
    // hostNetwork pod without shareProcessNamespace.
    let namespaces = NamespaceOption {
        network: NamespaceMode::Node as i32,
        pid: NamespaceMode::Container as i32,
        ipc: NamespaceMode::Pod as i32,
    };
    let sandbox = PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: pod_name.clone(),
            uid: uid.clone(),
            namespace: pod_namespace.clone(),
            attempt: 0,
        }),
        labels: [
            ("io.kubernetes.pod.name".to_string(), pod_name.clone()),
            (
                "io.kubernetes.pod.namespace".to_string(),
                pod_namespace.clone(),
            ),
            ("io.kubernetes.pod.uid".to_string(), uid.clone()),
        ]
        .into(),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: format!("/{cgroup_root}/kubepods/besteffort/pod{uid}"),
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(namespaces.clone()),
            }),
        }),
        ..Default::default()
    };
    let pod = cri
        .run_pod_sandbox(sandbox.clone())
        .map_err(|e| setup("RunPodSandbox", &e))?;
    guard.instance_mut().resources.push(Resource::CriPod {
        socket: socket.clone(),
        id: pod.clone(),
    });
    let container = ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: "app".into(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: IMAGE.into(),
        }),
        command: vec![
            "/bin/sh".into(),
            "-c".into(),
            "sleep 2147483647 & wait".into(),
        ],
        linux: Some(LinuxContainerConfig {
            security_context: Some(LinuxContainerSecurityContext {
                namespace_options: Some(namespaces),
            }),
        }),
        ..Default::default()
    };
    let id = cri
        .create_container(&pod, container, sandbox)
        .map_err(|e| setup("CreateContainer", &e))?;
    cri.start_container(&id)
        .map_err(|e| setup("StartContainer", &e))?;
    let init = cri
        .container_pid(&id)
        .map_err(|e| setup("ContainerStatus", &e))?
        .ok_or_else(|| setup("ContainerStatus", &"no pid in the verbose status"))?;
    let child = first_child(name, init)?;
    let frozen = freeze_in_container(guard, name, child)?;

    // As kubelet: StopContainer with the grace period, bounded by a deadline.
    let stopped = cri.stop_container(&id, GRACE_SECS, STOP_DEADLINE);
    let stop_error = match stopped {
        Ok(()) => {
            return Err(setup(
                "StopContainer",
                &"it succeeded: the container was not held by its frozen child",
            ))
        }
        Err(e) => e.to_string(),
    };
    let line = wait_for_log_line(
        &log,
        &[&format!(r#"StopContainer for \"{id}\" failed"#)],
        Duration::from_secs(20),
    )
    .ok_or_else(|| {
        setup(
            "StopContainer",
            &format!("containerd logged no failure ({stop_error})"),
        )
    })?;
    if !wait_until(Duration::from_secs(10), || {
        stack_has(init, "zap_pid_ns_processes")
    }) {
        return Err(setup(
            "StopContainer",
            &"the init did not reach zap_pid_ns_processes",
        ));
    }

    let facts = vec![
        ("container_id", id.clone()),
        ("pod_uid", uid.clone()),
        ("pod_name", pod_name),
        ("pod_namespace", pod_namespace),
        ("pod_sandbox_id", pod),
        ("runtime_log", log.display().to_string()),
        ("runtime_log_line", line),
        ("stop_error", stop_error),
        ("socket", socket.display().to_string()),
    ];
    record_stuck_container(guard, facts, init, child, &frozen);
    Ok(())
}
