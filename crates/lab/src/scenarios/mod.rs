//! The scenarios, one file each.

mod cni_stdin_hang;
mod containerd_stop_hang;
mod d_state;
mod docker_stop_hang;
mod fd_exhaustion;
mod fuse_hang;
mod memory_map_lock;
mod netdev_unregister;
mod netlink_dump_hog;
mod netns_gone;
mod ovs_leak_per_event;
mod ovs_netns_leak;
mod pidns_exit_hang;
mod zombies;

use crate::{LabContext, LabError, LabGuard};

/// One reproducible failure.
pub struct Scenario {
    /// The name users type (`nodedoc lab run NAME`).
    pub name: &'static str,
    /// One line: what it reproduces.
    pub summary: &'static str,
    /// The seed incident it comes from.
    pub seed: &'static str,
    /// How long the fault must last before `check` reports it with default settings
    /// (`cni-plugin-hang` waits 10 s); `lab run` waits this long before checking.
    pub settle_secs: u64,
    /// Creates the fault, recording resources and expectations in the guard.
    pub start: fn(&mut LabGuard, &LabContext) -> Result<(), LabError>,
}

/// Every scenario.
pub fn scenarios() -> &'static [Scenario] {
    &[
        fd_exhaustion::SCENARIO,
        zombies::SCENARIO,
        netdev_unregister::SCENARIO,
        d_state::SCENARIO,
        fuse_hang::SCENARIO,
        memory_map_lock::SCENARIO,
        pidns_exit_hang::SCENARIO,
        netns_gone::SCENARIO,
        cni_stdin_hang::SCENARIO,
        ovs_netns_leak::SCENARIO,
        containerd_stop_hang::SCENARIO,
        docker_stop_hang::SCENARIO,
        netlink_dump_hog::SCENARIO,
        ovs_leak_per_event::SCENARIO,
    ]
}

/// The scenario with this name.
pub fn scenario(name: &str) -> Option<&'static Scenario> {
    scenarios().iter().find(|s| s.name == name)
}

/// Fails with [`LabError::Unsupported`] unless running as root.
pub(crate) fn require_root(scenario: &str) -> Result<(), LabError> {
    if rustix::process::geteuid().is_root() {
        Ok(())
    } else {
        Err(LabError::Unsupported {
            scenario: scenario.to_string(),
            reason: "labs create namespaces, cgroups and kernel log records: run as root".into(),
        })
    }
}

/// Creates a private directory for the lab under the temporary directory (`/tmp`, which
/// anyone can write) and records it for removal. The name is random and the directory is
/// created exclusively, mode 0700 (`tempfile`, i.e. `mkdtemp`): a name guessed and planted
/// in advance — a symlink to `/etc`, say — makes creation pick another name rather than
/// reuse the planted path, and nothing of the lab is ever created through it.
pub(crate) fn private_dir(
    guard: &mut LabGuard,
    scenario: &str,
    prefix: &str,
) -> Result<std::path::PathBuf, LabError> {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir_in(std::env::temp_dir())
        .map_err(|e| LabError::setup(scenario, "creating the lab's directory", e))?
        .keep();
    guard
        .instance_mut()
        .resources
        .push(crate::Resource::Dir { path: dir.clone() });
    Ok(dir)
}

/// The cgroup v1 freezer hierarchy, or why a lab cannot use it.
pub(crate) fn v1_freezer(scenario: &str) -> Result<std::path::PathBuf, LabError> {
    let root = std::path::PathBuf::from("/sys/fs/cgroup/freezer");
    if root.join("cgroup.procs").exists() {
        Ok(root)
    } else {
        Err(LabError::Unsupported {
            scenario: scenario.to_string(),
            reason: "needs the cgroup v1 freezer at /sys/fs/cgroup/freezer (cgroup2 freezing does not reproduce the hang: frozen cgroup2 tasks die on SIGKILL)".into(),
        })
    }
}

/// Creates a v1 freezer cgroup, moves `pid` into it and freezes it; records the cgroup and
/// the freeze so teardown thaws, then removes it. Returns the cgroup path in the hierarchy.
pub(crate) fn freeze(guard: &mut LabGuard, scenario: &str, pid: i32) -> Result<String, LabError> {
    use crate::Resource;
    let root = v1_freezer(scenario)?;
    let name = format!("nodedoc-lab-{}", crate::unique_suffix());
    let dir = root.join(&name);
    std::fs::create_dir(&dir)
        .map_err(|e| LabError::setup(scenario, &format!("mkdir {}", dir.display()), e))?;
    // The cgroup can only be removed once the task has left it: record it before the task,
    // so teardown kills the task first, then removes the cgroup.
    let resources = &mut guard.instance_mut().resources;
    let task = resources
        .iter()
        .position(|r| matches!(r, Resource::Process { pid: p, .. } if *p == pid))
        .unwrap_or(resources.len());
    resources.insert(task, Resource::Cgroup { path: dir.clone() });
    freeze_task(guard, scenario, &dir, pid)?;
    Ok(format!("/{name}"))
}

/// Moves `pid` into the existing v1 freezer cgroup `dir` and freezes it; records the freeze so
/// teardown thaws first.
pub(crate) fn freeze_task(
    guard: &mut LabGuard,
    scenario: &str,
    dir: &std::path::Path,
    pid: i32,
) -> Result<(), LabError> {
    std::fs::write(dir.join("cgroup.procs"), pid.to_string()).map_err(|e| {
        LabError::setup(
            scenario,
            &format!("move pid {pid} into {}", dir.display()),
            e,
        )
    })?;
    guard
        .instance_mut()
        .resources
        .push(crate::Resource::Frozen {
            path: dir.to_path_buf(),
        });
    std::fs::write(dir.join("freezer.state"), "FROZEN")
        .map_err(|e| LabError::setup(scenario, "freeze", e))?;
    let frozen = crate::process::wait_until(std::time::Duration::from_secs(10), || {
        std::fs::read_to_string(dir.join("freezer.state")).is_ok_and(|s| s.trim() == "FROZEN")
    });
    if !frozen {
        return Err(LabError::setup(
            scenario,
            "freeze",
            "the cgroup did not reach FROZEN",
        ));
    }
    Ok(())
}

/// Moves the resource recorded for `pid` to the end, so teardown releases it first.
pub(crate) fn release_first(guard: &mut LabGuard, pid: i32) {
    let resources = &mut guard.instance_mut().resources;
    if let Some(i) = resources
        .iter()
        .position(|r| matches!(r, crate::Resource::Process { pid: p, .. } if *p == pid))
    {
        let resource = resources.remove(i);
        resources.push(resource);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn private_dirs_are_fresh_random_0700_and_removed_with_the_lab() {
        let mut guard = LabGuard::new(crate::Instance::new("test"));
        let a = private_dir(&mut guard, "test", "nodedoc-lab-test-").unwrap();
        let b = private_dir(&mut guard, "test", "nodedoc-lab-test-").unwrap();
        assert_ne!(a, b);
        for dir in [&a, &b] {
            let meta = std::fs::symlink_metadata(dir).unwrap();
            assert!(meta.is_dir());
            assert_eq!(meta.mode() & 0o777, 0o700);
            assert!(dir.starts_with(std::env::temp_dir()));
        }
        guard.stop().unwrap();
        assert!(!a.exists() && !b.exists());
    }
}
