//! Which container and which Kubernetes pod a task belongs to, told from its cgroup path.
//!
//! Every runtime puts a container's tasks in a cgroup named after the container id, and the
//! kubelet puts every pod's containers under a cgroup named after the pod's uid. The one place
//! that reads these names is here: process findings, `pod-stuck-terminating` and the runtime
//! detectors all ask [`ContainerRef::of_cgroup_path`] or [`Process::container`].
//!
//! The layouts (cgroup v1 and v2 alike):
//!
//! | who | cgroup path |
//! |---|---|
//! | kubelet, cgroupfs driver | `/kubepods/burstable/pod<uid>/<id>`, `/kubepods/pod<uid>/<id>` (Guaranteed) |
//! | kubelet, systemd driver | `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod<uid with _>.slice/cri-containerd-<id>.scope` (`docker-<id>.scope`, `crio-<id>.scope`) |
//! | containerd outside Kubernetes | `/<namespace>/<id>` (`/default/<id>`, `/k8s.io/<id>`) |
//! | dockerd | `/docker/<id>`, `/system.slice/docker-<id>.scope` |
//!
//! A container id is 64 lowercase hex digits in all of them; a pod uid is an RFC 4122 uuid,
//! written with `_` for `-` in systemd unit names.

use serde::{Deserialize, Serialize};

use crate::Process;

/// The container and pod a cgroup path names, as far as it names them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ContainerRef {
    /// The container id (64 hex digits), when the path names one. A pod-level cgroup (the
    /// pod's slice itself) names none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    /// The Kubernetes pod uid (with dashes, as the API writes it), when the path is under a
    /// `kubepods` cgroup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_uid: Option<String>,
}

impl ContainerRef {
    /// What `path` (one line's path of `/proc/PID/cgroup`) says; `None` when it names neither
    /// a container nor a pod.
    pub fn of_cgroup_path(path: &str) -> Option<ContainerRef> {
        let mut found = ContainerRef::default();
        for component in path.split('/') {
            if let Some(uid) = pod_uid_of(component) {
                found.pod_uid = Some(uid);
            }
            if let Some(id) = container_id_of(component) {
                // The innermost id wins: a container nested in another's cgroup.
                found.container_id = Some(id.to_string());
            }
        }
        (found.container_id.is_some() || found.pod_uid.is_some()).then_some(found)
    }

    /// The first 12 digits of the container id, as `docker ps` and `crictl ps` print it.
    pub fn short_id(&self) -> Option<&str> {
        self.container_id
            .as_deref()
            .map(|id| &id[..id.len().min(12)])
    }
}

impl Process {
    /// The container and pod this process's cgroups name (the first membership that names
    /// one, the unified hierarchy first: on a hybrid host it is what the runtime manages).
    pub fn container(&self) -> Option<ContainerRef> {
        let unified = self.cgroups.iter().filter(|c| c.hierarchy == 0);
        let v1 = self.cgroups.iter().filter(|c| c.hierarchy != 0);
        let mut best: Option<ContainerRef> = None;
        for membership in unified.chain(v1) {
            if let Some(found) = ContainerRef::of_cgroup_path(&membership.path) {
                match &mut best {
                    None => best = Some(found),
                    Some(known) => {
                        // One membership may name the pod only; another the container too.
                        if known.container_id.is_none() {
                            known.container_id = found.container_id;
                        }
                        if known.pod_uid.is_none() {
                            known.pod_uid = found.pod_uid;
                        }
                    }
                }
                if best
                    .as_ref()
                    .is_some_and(|b| b.container_id.is_some() && b.pod_uid.is_some())
                {
                    break;
                }
            }
        }
        best
    }
}

/// A container id in one cgroup path component: the component itself, or the `<id>` of a
/// systemd scope `<runtime>-<id>.scope` (`cri-containerd-`, `docker-`, `crio-`, `libpod-`).
/// A conmon scope (`crio-conmon-<id>.scope`) is CRI-O's monitor, not the container.
fn container_id_of(component: &str) -> Option<&str> {
    let id = match component.strip_suffix(".scope") {
        Some(scope) => {
            if scope.contains("-conmon-") {
                return None;
            }
            scope.rsplit('-').next()?
        }
        None => component,
    };
    (id.len() == 64
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    .then_some(id)
}

/// A pod uid in one cgroup path component: `pod<uid>` (cgroupfs) or
/// `kubepods[-<qos>]-pod<uid with _>.slice` (systemd), returned with dashes.
fn pod_uid_of(component: &str) -> Option<String> {
    let rest = match component.strip_suffix(".slice") {
        Some(slice) => slice.rsplit_once("-pod")?.1,
        None => component.strip_prefix("pod")?,
    };
    let uid = rest.replace('_', "-");
    is_uuid(&uid).then_some(uid)
}

/// `8-4-4-4-12` hex digits.
fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "10f0451e1345f5028f636e2b09c9f8204e55a01f5f09f2e57de3c17d3f93f492";
    const UID: &str = "3c1f8a7e-2b4d-4e6f-9a1b-0c2d3e4f5a6b";

    #[test]
    fn kubepods_cgroupfs_paths_name_the_pod_and_the_container() {
        for path in [
            format!("/kubepods/burstable/pod{UID}/{ID}"),
            format!("/kubepods/pod{UID}/{ID}"),
            format!("/kubepods/besteffort/pod{UID}/{ID}"),
        ] {
            let found = ContainerRef::of_cgroup_path(&path).unwrap();
            assert_eq!(found.pod_uid.as_deref(), Some(UID), "{path}");
            assert_eq!(found.container_id.as_deref(), Some(ID), "{path}");
        }
    }

    #[test]
    fn systemd_driver_slices_and_scopes() {
        let uid = UID.replace('-', "_");
        for runtime in ["cri-containerd", "docker", "crio"] {
            let path = format!(
                "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid}.slice/{runtime}-{ID}.scope"
            );
            let found = ContainerRef::of_cgroup_path(&path).unwrap();
            assert_eq!(found.pod_uid.as_deref(), Some(UID));
            assert_eq!(found.container_id.as_deref(), Some(ID));
        }
        // Guaranteed pods sit directly under kubepods.slice.
        let path = format!("/kubepods.slice/kubepods-pod{uid}.slice");
        let found = ContainerRef::of_cgroup_path(&path).unwrap();
        assert_eq!(found.pod_uid.as_deref(), Some(UID));
        assert_eq!(found.container_id, None);
    }

    #[test]
    fn runtimes_outside_kubernetes_name_the_container_only() {
        for path in [
            format!("/docker/{ID}"),
            format!("/default/{ID}"),
            format!("/k8s.io/{ID}"),
            format!("/system.slice/docker-{ID}.scope"),
        ] {
            let found = ContainerRef::of_cgroup_path(&path).unwrap();
            assert_eq!(found.container_id.as_deref(), Some(ID), "{path}");
            assert_eq!(found.pod_uid, None);
            assert_eq!(found.short_id(), Some("10f0451e1345"));
        }
    }

    #[test]
    fn ordinary_paths_and_lookalikes_name_nothing() {
        for path in [
            "/",
            "/user.slice/user-0.slice/session-1.scope",
            "/system.slice/containerd.service",
            "/podman",
            "/kubepods/burstable/podnot-a-uid/abc",
            &format!("/kubepods.slice/crio-conmon-{ID}.scope"),
            &format!("/docker/{}", &ID[..63]),
            &format!("/docker/{}", ID.to_uppercase()),
        ] {
            assert_eq!(ContainerRef::of_cgroup_path(path), None, "{path}");
        }
    }

    #[test]
    fn a_process_takes_the_pod_and_container_from_its_memberships() {
        let mut p: Process = serde_json::from_value(serde_json::json!({
            "pid": 5, "ppid": 1, "comm": "envoy", "state": "S", "start_time_ticks": 1,
            "threads": 1, "utime_ticks": 0, "stime_ticks": 0
        }))
        .unwrap();
        p.cgroups = vec![
            crate::CgroupMembership {
                hierarchy: 4,
                controllers: "freezer".into(),
                path: format!("/kubepods/burstable/pod{UID}/{ID}"),
            },
            crate::CgroupMembership {
                hierarchy: 0,
                controllers: String::new(),
                path: "/".into(),
            },
        ];
        let found = p.container().unwrap();
        assert_eq!(found.pod_uid.as_deref(), Some(UID));
        assert_eq!(found.container_id.as_deref(), Some(ID));
    }
}
