//! Which container (and Kubernetes pod) a task belongs to, as its cgroup paths name it.
//!
//! Every runtime puts a container's tasks in cgroups whose path ends in the container's id,
//! and kubelet puts a pod's containers under a cgroup named after the pod's uid:
//!
//! | runtime / driver | path |
//! | --- | --- |
//! | containerd (CRI, no parent) | `/k8s.io/<id>` |
//! | containerd (`ctr run`) | `/default/<id>` (the containerd namespace) |
//! | docker, cgroupfs | `/docker/<id>` |
//! | kubelet, cgroupfs | `/kubepods/besteffort/pod<uid>/<id>` |
//! | kubelet, systemd | `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod<uid_with_underscores>.slice/cri-containerd-<id>.scope` |
//! | docker, systemd | `/system.slice/docker-<id>.scope` |
//! | CRI-O, podman | `crio-<id>.scope`, `libpod-<id>.scope` |
//!
//! The container id is the deepest path segment that is a 64-hex-digit id (bare, or inside a
//! runtime's `.scope` name); a pod uid is a `pod<uid>` segment, or the `…-pod<uid>.slice` of
//! the systemd driver. A runtime's own supervisor (CRI-O's `crio-conmon-<id>.scope`) is not
//! the container. Pod namespace and name are not in cgroup paths: they come from a source that
//! knows them ([`Snapshot::containers`](crate::Snapshot::containers)).

use serde::{Deserialize, Serialize};

use crate::Process;

/// A container, as far as it is known.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ContainerRef {
    /// The full container id (64 hex digits).
    pub id: String,
    /// The runtime, when the path says (`/docker/…`, `cri-containerd-…`, `/k8s.io/…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<ContainerRuntime>,
    /// The container's name, when a source knows it (CRI metadata, the API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The Kubernetes pod, when the container is in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<PodRef>,
}

/// The runtime that made a container.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ContainerRuntime {
    /// containerd (CRI or `ctr`).
    Containerd,
    /// Docker (dockerd).
    Docker,
    /// CRI-O.
    CriO,
    /// Podman.
    Podman,
}

impl std::fmt::Display for ContainerRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ContainerRuntime::Containerd => "containerd",
            ContainerRuntime::Docker => "docker",
            ContainerRuntime::CriO => "cri-o",
            ContainerRuntime::Podman => "podman",
        })
    }
}

/// A Kubernetes pod, as far as it is known.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PodRef {
    /// The pod's uid (`metadata.uid`), from the cgroup path.
    pub uid: String,
    /// Its namespace, when a source knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Its name, when a source knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A container a source other than cgroups told about (the CRI socket's `ListContainers`,
/// the API): what names its id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownContainer {
    /// The full id.
    pub id: String,
    /// The container's name (`metadata.name`).
    #[serde(default)]
    pub name: Option<String>,
    /// Its pod's uid.
    #[serde(default)]
    pub pod_uid: Option<String>,
    /// Its pod's namespace.
    #[serde(default)]
    pub pod_namespace: Option<String>,
    /// Its pod's name.
    #[serde(default)]
    pub pod_name: Option<String>,
}

impl ContainerRef {
    /// The container named by one cgroup path, if any.
    pub fn from_cgroup_path(path: &str) -> Option<ContainerRef> {
        let mut found: Option<ContainerRef> = None;
        let mut pod_uid: Option<String> = None;
        let mut previous = "";
        for segment in path.split('/').filter(|s| !s.is_empty()) {
            if let Some(uid) = pod_uid_of(segment) {
                pod_uid = Some(uid);
            }
            if let Some((id, runtime)) = container_id_of(segment, previous) {
                found = Some(ContainerRef {
                    id,
                    runtime,
                    name: None,
                    pod: None,
                });
            }
            previous = segment;
        }
        let mut container = found?;
        container.pod = pod_uid.map(|uid| PodRef {
            uid,
            namespace: None,
            name: None,
        });
        Some(container)
    }

    /// The first 12 digits of the id, as `docker ps` and `crictl ps` show it.
    pub fn short_id(&self) -> &str {
        &self.id[..self.id.len().min(12)]
    }

    /// Adds what `known` says about this container (name, pod namespace and name).
    pub fn enrich(&mut self, known: &[KnownContainer]) {
        let Some(k) = known.iter().find(|k| k.id == self.id) else {
            return;
        };
        if self.name.is_none() {
            self.name.clone_from(&k.name);
        }
        if let Some(uid) = k
            .pod_uid
            .clone()
            .or_else(|| self.pod.as_ref().map(|p| p.uid.clone()))
        {
            let pod = self.pod.get_or_insert(PodRef {
                uid,
                namespace: None,
                name: None,
            });
            if pod.namespace.is_none() {
                pod.namespace.clone_from(&k.pod_namespace);
            }
            if pod.name.is_none() {
                pod.name.clone_from(&k.pod_name);
            }
        }
    }
}

impl std::fmt::Display for ContainerRef {
    /// `container 3f2a9c1b7d4e (containerd) of pod ns/name (uid …)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "container {}", self.short_id())?;
        if let Some(name) = &self.name {
            write!(f, " \"{name}\"")?;
        }
        if let Some(runtime) = self.runtime {
            write!(f, " ({runtime})")?;
        }
        if let Some(pod) = &self.pod {
            match (&pod.namespace, &pod.name) {
                (Some(ns), Some(name)) => write!(f, " of pod {ns}/{name} (uid {})", pod.uid)?,
                (None, Some(name)) => write!(f, " of pod {name} (uid {})", pod.uid)?,
                _ => write!(f, " of pod uid {}", pod.uid)?,
            }
        }
        Ok(())
    }
}

fn is_container_id(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// The container id a path segment names, with the runtime when it says; `parent` is the
/// segment above it.
fn container_id_of(segment: &str, parent: &str) -> Option<(String, Option<ContainerRuntime>)> {
    if is_container_id(segment) {
        let runtime = match parent {
            "docker" => Some(ContainerRuntime::Docker),
            "k8s.io" | "default" | "moby" => Some(ContainerRuntime::Containerd),
            _ => None,
        };
        return Some((segment.to_string(), runtime));
    }
    let scope = segment.strip_suffix(".scope")?;
    const SCOPES: &[(&str, ContainerRuntime)] = &[
        ("cri-containerd-", ContainerRuntime::Containerd),
        ("docker-", ContainerRuntime::Docker),
        ("crio-", ContainerRuntime::CriO),
        ("libpod-", ContainerRuntime::Podman),
    ];
    SCOPES.iter().find_map(|(prefix, runtime)| {
        let id = scope.strip_prefix(prefix)?;
        is_container_id(id).then(|| (id.to_string(), Some(*runtime)))
    })
}

/// The pod uid a path segment names: `pod<uid>` (cgroupfs driver) or
/// `kubepods[-qos]-pod<uid_with_underscores>.slice` (systemd driver).
fn pod_uid_of(segment: &str) -> Option<String> {
    let candidate = if let Some(slice) = segment.strip_suffix(".slice") {
        if !slice.starts_with("kubepods") {
            return None;
        }
        slice.rsplit_once("-pod")?.1.replace('_', "-")
    } else {
        segment.strip_prefix("pod")?.to_string()
    };
    let uuid = candidate.len() == 36
        && candidate.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        });
    uuid.then_some(candidate)
}

impl Process {
    /// The container this process is in, from its cgroup paths: the cgroup2 path first (it
    /// stays set while a task exits, when its v1 paths already read `/`), then any v1 path.
    pub fn container(&self) -> Option<ContainerRef> {
        let unified = self.cgroups.iter().filter(|c| c.hierarchy == 0);
        let v1 = self.cgroups.iter().filter(|c| c.hierarchy != 0);
        unified
            .chain(v1)
            .find_map(|c| ContainerRef::from_cgroup_path(&c.path))
    }

    /// The Kubernetes pod uid its cgroup paths name, with or without a container below it (a
    /// task left in the pod's own cgroup, such as a runtime's shim moved there, names the pod
    /// only).
    pub fn pod_uid(&self) -> Option<String> {
        let unified = self.cgroups.iter().filter(|c| c.hierarchy == 0);
        let v1 = self.cgroups.iter().filter(|c| c.hierarchy != 0);
        unified.chain(v1).find_map(|c| pod_uid_in_path(&c.path))
    }
}

/// The innermost pod uid of a cgroup path.
fn pod_uid_in_path(path: &str) -> Option<String> {
    path.rsplit('/').find_map(pod_uid_of)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "b32a2fd9b0a141bdc9be897b80762009665ce408cde67b93e64dc2b1c1aa2c78";
    const UID: &str = "a548c954-93c6-4845-b26d-89d63b4e1fd7";

    fn parse(path: &str) -> Option<ContainerRef> {
        ContainerRef::from_cgroup_path(path)
    }

    #[test]
    fn a_task_in_the_pods_own_cgroup_names_the_pod_only() {
        let path = format!("/kubepods/besteffort/pod{UID}");
        assert_eq!(parse(&path), None);
        assert_eq!(pod_uid_in_path(&path).as_deref(), Some(UID));
        let systemd = format!(
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{}.slice",
            UID.replace('-', "_")
        );
        assert_eq!(pod_uid_in_path(&systemd).as_deref(), Some(UID));
    }

    #[test]
    fn every_runtime_and_driver_layout_names_the_container() {
        let cases: &[(String, Option<ContainerRuntime>, Option<&str>)] = &[
            (format!("/k8s.io/{ID}"), Some(ContainerRuntime::Containerd), None),
            (format!("/default/{ID}"), Some(ContainerRuntime::Containerd), None),
            (format!("/docker/{ID}"), Some(ContainerRuntime::Docker), None),
            (format!("/nodedoc-lab-1/docker/{ID}"), Some(ContainerRuntime::Docker), None),
            (format!("/kubepods/besteffort/pod{UID}/{ID}"), None, Some(UID)),
            (format!("/kubepods/pod{UID}/{ID}"), None, Some(UID)),
            (
                format!(
                    "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{}.slice/cri-containerd-{ID}.scope",
                    UID.replace('-', "_")
                ),
                Some(ContainerRuntime::Containerd),
                Some(UID),
            ),
            (
                format!("/kubepods.slice/kubepods-pod{}.slice/docker-{ID}.scope", UID.replace('-', "_")),
                Some(ContainerRuntime::Docker),
                Some(UID),
            ),
            (format!("/system.slice/docker-{ID}.scope"), Some(ContainerRuntime::Docker), None),
            (format!("/machine.slice/libpod-{ID}.scope"), Some(ContainerRuntime::Podman), None),
            (format!("/kubepods.slice/crio-{ID}.scope"), Some(ContainerRuntime::CriO), None),
            // A child cgroup of the container's (a lab's frozen child, a nested cgroup).
            (format!("/kubepods/burstable/pod{UID}/{ID}/nodedoc-frozen"), None, Some(UID)),
        ];
        for (path, runtime, uid) in cases {
            let c = parse(path).unwrap_or_else(|| panic!("{path}: no container"));
            assert_eq!(c.id, ID, "{path}");
            assert_eq!(c.runtime, *runtime, "{path}");
            assert_eq!(c.pod.as_ref().map(|p| p.uid.as_str()), *uid, "{path}");
        }
    }

    #[test]
    fn hosts_services_and_supervisors_are_not_containers() {
        for path in [
            "/",
            "/system.slice/containerd.service",
            "/user.slice/user-0.slice/session-1.scope",
            &format!("/kubepods.slice/crio-conmon-{ID}.scope"),
            &format!("/docker/{}", &ID[..63]),
            &format!("/docker/{}", ID.to_uppercase()),
            // A pod cgroup alone (the pod's own processes, none in a container).
            &format!("/kubepods/besteffort/pod{UID}"),
        ] {
            assert_eq!(parse(path), None, "{path}");
        }
    }

    #[test]
    fn the_unified_path_is_preferred_and_known_containers_name_the_pod() {
        use crate::CgroupMembership;
        let mut p: Process = serde_json::from_value(serde_json::json!({
            "pid": 1, "ppid": 0, "comm": "sh", "state": "S", "start_time_ticks": 1,
            "threads": 1, "utime_ticks": 0, "stime_ticks": 0
        }))
        .unwrap();
        // An exiting init: its v1 paths read "/", its cgroup2 path still names the container.
        p.cgroups = vec![
            CgroupMembership {
                hierarchy: 6,
                controllers: "freezer".into(),
                path: "/".into(),
            },
            CgroupMembership {
                hierarchy: 0,
                controllers: String::new(),
                path: format!("/x/kubepods/besteffort/pod{UID}/{ID}"),
            },
        ];
        let mut c = p.container().expect("container");
        assert_eq!(c.id, ID);
        c.enrich(&[KnownContainer {
            id: ID.into(),
            name: Some("app".into()),
            pod_uid: Some(UID.into()),
            pod_namespace: Some("shop".into()),
            pod_name: Some("cart-7d4".into()),
        }]);
        assert_eq!(
            c.to_string(),
            format!("container b32a2fd9b0a1 \"app\" of pod shop/cart-7d4 (uid {UID})")
        );
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["pod"]["namespace"], "shop");
        assert!(json.get("runtime").is_none());
    }
}
