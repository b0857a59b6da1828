//! Real container runtimes for labs: containerd (driven through its CRI, as kubelet drives it)
//! and dockerd, each started by hand, without systemd, in a private directory, supervised by a
//! helper process (`nodedoc lab-helper runtime-daemon --kind KIND --dir DIR`).
//!
//! What keeps them from touching the host's own runtime or leaving anything behind:
//! - Every path a daemon writes is in the lab's directory: containerd's root, state, sockets,
//!   `opt` and runc root; dockerd's data root, exec root, pidfile and socket.
//! - The helper runs the daemon in a private mount namespace (propagation private) with a
//!   tmpfs on `/run` (containerd's shims put their sockets in `/run/containerd/s` whatever
//!   the configuration says; dockerd writes `/run/docker/plugins`) and, for dockerd, on
//!   `/etc/docker` (it creates its `key.json` there). Container root filesystems, `/dev/shm`
//!   mounts and network-namespace bind mounts live and die with that namespace.
//! - dockerd runs in a network namespace of the lab's, entered with `nsenter --net` (not
//!   `ip netns exec`, which mounts a fresh /sys and so hides the cgroup hierarchies runc needs),
//!   and runs containers with `--network none`, `--bridge=none`, no iptables: no device, rule
//!   or bridge reaches the host's namespace.
//! - Container cgroups are under a parent named after the lab (`/nodedoc-lab-XXXXXX/…`),
//!   removed from every hierarchy at teardown ([`Resource::CgroupTree`]).
//! - The image is built here from Debian's `busybox-static` (no registry): one layer, written
//!   as an OCI layout that `ctr images import` reads and, in the same tarball, the
//!   `manifest.json` that `docker load` of docker 20.10 reads.
//!
//! On SIGTERM (teardown) the helper stops the daemon, then kills and reaps whatever is left
//! below it (shims and their containers, re-parented to it: it is a subreaper).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sha2::Digest;

use crate::helpers::{arg, helper_error, ready};
use crate::process::{children_of, wait_until};
use crate::{LabError, LabGuard, Resource};

/// The lab image's reference. `.invalid` can never resolve: nothing is ever pulled.
pub(crate) const IMAGE: &str = "nodedoc.invalid/busybox:lab";

/// The containerd namespace the CRI plugin uses.
pub(crate) const CRI_NAMESPACE: &str = "k8s.io";

/// Which daemon a helper runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Daemon {
    /// containerd with its CRI plugin.
    Containerd,
    /// dockerd (which starts its own containerd).
    Dockerd,
}

impl Daemon {
    fn name(self) -> &'static str {
        match self {
            Daemon::Containerd => "containerd",
            Daemon::Dockerd => "dockerd",
        }
    }

    /// The daemon's API socket in `dir`.
    pub(crate) fn socket(self, dir: &Path) -> PathBuf {
        match self {
            Daemon::Containerd => dir.join("containerd.sock"),
            Daemon::Dockerd => dir.join("docker.sock"),
        }
    }

    /// Where the daemon's log (its stderr) goes: the file `check --log` reads.
    pub(crate) fn log(self, dir: &Path) -> PathBuf {
        dir.join(format!("{}.log", self.name()))
    }
}

/// Fails with [`LabError::Unsupported`] naming the package when a program is missing.
pub(crate) fn require_programs(
    scenario: &str,
    programs: &[&str],
    package: &str,
) -> Result<(), LabError> {
    for program in programs {
        if find_program(program).is_none() {
            return Err(LabError::Unsupported {
                scenario: scenario.to_string(),
                reason: format!("{program} is not installed (apt-get install {package})"),
            });
        }
    }
    Ok(())
}

/// `program` on `PATH` or in the sbin directories (root's PATH may lack them).
pub(crate) fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

pub(crate) use crate::process::run;

/// Writes containerd's configuration for a daemon whose every path is in `dir`, with
/// container cgroups and the CRI plugin as kubelet's node would have them.
pub(crate) fn write_containerd_config(dir: &Path) -> std::io::Result<()> {
    let d = dir.display();
    let config = format!(
        r#"# Written by nodedoc's lab: a containerd whose every path is in this directory.
version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "{d}/containerd.sock"
[ttrpc]
  address = "{d}/containerd.sock.ttrpc"
[debug]
  address = ""
  level = "info"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{IMAGE}"
  # No CAP_SYS_RESOURCE here: do not try to lower containers' oom_score_adj below ours.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{d}/cni"
    conf_dir = "{d}/cni"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    # Plain directories: no overlay mount to leak.
    snapshotter = "native"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
    Root = "{d}/runc"
"#
    );
    std::fs::create_dir_all(dir.join("cni"))?;
    std::fs::write(dir.join("containerd.toml"), config)
}

/// The helper: runs one daemon in `--dir` in a private mount namespace, says `ready` once its
/// socket answers, and on SIGTERM stops it and everything left below it.
pub(crate) fn runtime_daemon(args: &[String]) -> Result<(), LabError> {
    const NAME: &str = "runtime-daemon";
    let kind = match arg(args, "--kind") {
        Some("containerd") => Daemon::Containerd,
        Some("dockerd") => Daemon::Dockerd,
        other => return Err(helper_error(NAME, format!("unknown --kind {other:?}"))),
    };
    let dir =
        PathBuf::from(arg(args, "--dir").ok_or_else(|| helper_error(NAME, "--dir is required"))?);
    let supervisor = crate::supervisor::Supervisor::start();
    private_mounts(kind).map_err(|e| helper_error(NAME, e))?;

    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(kind.log(&dir))
        .map_err(|e| helper_error(NAME, format!("{}: {e}", kind.log(&dir).display())))?;
    let mut command = match kind {
        Daemon::Containerd => {
            let mut command = Command::new("containerd");
            command.arg("--config").arg(dir.join("containerd.toml"));
            command
        }
        Daemon::Dockerd => {
            let cgroup_parent = arg(args, "--cgroup-parent")
                .ok_or_else(|| helper_error(NAME, "--cgroup-parent is required"))?;
            let path = |name: &str| dir.join(name).display().to_string();
            std::fs::write(dir.join("daemon.json"), "{}\n").map_err(|e| helper_error(NAME, e))?;
            let mut command = Command::new("dockerd");
            command.args([
                "--config-file",
                &path("daemon.json"),
                "--data-root",
                &path("docker"),
                "--exec-root",
                &path("exec"),
                "--pidfile",
                &path("docker.pid"),
                "--host",
                &format!("unix://{}", path("docker.sock")),
                "--cgroup-parent",
                cgroup_parent,
                // Plain directories, no overlay mounts; no bridge, no iptables rules.
                "--storage-driver=vfs",
                "--bridge=none",
                "--iptables=false",
                "--ip6tables=false",
                "--ip-masq=false",
            ]);
            command
        }
    };
    let stderr = log.try_clone().map_err(|e| helper_error(NAME, e))?;
    command.stdin(Stdio::null()).stdout(log).stderr(stderr);
    crate::supervisor::Supervisor::unblock_in(&mut command);
    let mut daemon = command
        .spawn()
        .map_err(|e| helper_error(NAME, format!("cannot start {}: {e}", kind.name())))?;
    let socket = kind.socket(&dir);
    let answering = wait_until(Duration::from_secs(60), || {
        std::os::unix::net::UnixStream::connect(&socket).is_ok()
            || daemon.try_wait().ok().flatten().is_some()
    }) && daemon.try_wait().ok().flatten().is_none();
    if !answering {
        stop_all(&mut daemon);
        return Err(helper_error(
            NAME,
            format!(
                "{} did not open {} (see {})",
                kind.name(),
                socket.display(),
                kind.log(&dir).display()
            ),
        ));
    }
    ready();
    supervisor.wait();
    stop_all(&mut daemon);
    std::process::exit(0)
}

/// Moves this process into a mount namespace of its own whose mounts do not propagate to the
/// host, with a tmpfs on `/run` (and on `/etc/docker` for dockerd).
fn private_mounts(kind: Daemon) -> Result<(), String> {
    use rustix::mount::{mount, mount_change, MountFlags, MountPropagationFlags};
    // SAFETY: the helper is single-threaded here, and a new mount namespace changes nothing
    // any other thread relies on (the daemon inherits it).
    unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNS) }
        .map_err(|e| format!("unshare(CLONE_NEWNS): {e}"))?;
    mount_change(
        "/",
        MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
    )
    .map_err(|e| format!("make / private: {e}"))?;
    let mut private = vec!["/run"];
    if kind == Daemon::Dockerd {
        private.push("/etc/docker");
    }
    for target in private {
        mount(
            "tmpfs",
            target,
            "tmpfs",
            MountFlags::NOSUID | MountFlags::NODEV,
            c"mode=755",
        )
        .map_err(|e| format!("mount a tmpfs on {target}: {e}"))?;
    }
    Ok(())
}

/// Stops the daemon (SIGTERM, SIGKILL after 15 s), then SIGKILLs and reaps whatever is left
/// below this subreaper (shims, containers) until nothing is.
fn stop_all(daemon: &mut std::process::Child) {
    crate::supervisor::stop_child(daemon, Duration::from_secs(15));
    let me = std::process::id() as i32;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        crate::supervisor::reap_exited();
        let left = children_of(me);
        if left.is_empty() || Instant::now() > deadline {
            break;
        }
        for pid in left {
            // SAFETY: our own children (re-parented to this subreaper).
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Builds the lab image in `dir` and returns the tarball: one layer holding Debian's static
/// busybox and the applet links the labs use, as an OCI image layout plus docker 20.10's
/// `manifest.json`, both naming [`IMAGE`]. Its default command sleeps (it serves as the pod
/// sandbox image too).
pub(crate) fn build_image(dir: &Path) -> Result<PathBuf, String> {
    let busybox = Path::new("/bin/busybox");
    let static_busybox =
        std::fs::read(busybox).map_err(|e| format!("{}: {e}", busybox.display()))?;
    // The layer: bin/busybox and applet links, deterministic (mtime 0, root-owned).
    let mut layer = tar::Builder::new(Vec::new());
    let mut dir_header = tar::Header::new_gnu();
    dir_header.set_entry_type(tar::EntryType::Directory);
    dir_header.set_mode(0o755);
    dir_header.set_size(0);
    dir_header.set_mtime(0);
    append(&mut layer, &mut dir_header, "bin/", &[][..])?;
    let mut file = tar::Header::new_gnu();
    file.set_mode(0o755);
    file.set_size(static_busybox.len() as u64);
    file.set_mtime(0);
    append(&mut layer, &mut file, "bin/busybox", &static_busybox[..])?;
    for applet in ["sh", "sleep", "cat", "sync", "true"] {
        let mut link = tar::Header::new_gnu();
        link.set_entry_type(tar::EntryType::Symlink);
        link.set_mode(0o777);
        link.set_size(0);
        link.set_mtime(0);
        layer
            .append_link(&mut link, format!("bin/{applet}"), "busybox")
            .map_err(|e| format!("image layer: {e}"))?;
    }
    let layer = layer
        .into_inner()
        .map_err(|e| format!("image layer: {e}"))?;
    let layer_digest = sha256(&layer);
    let config = format!(
        r#"{{"architecture":"{arch}","os":"linux","config":{{"Env":["PATH=/bin"],"Cmd":["/bin/sleep","2147483647"]}},"rootfs":{{"type":"layers","diff_ids":["sha256:{layer_digest}"]}},"history":[{{"created_by":"nodedoc lab: Debian busybox-static"}}]}}"#,
        arch = oci_arch(),
    );
    let config_digest = sha256(config.as_bytes());
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:{config_digest}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:{layer_digest}","size":{}}}]}}"#,
        config.len(),
        layer.len()
    );
    let manifest_digest = sha256(manifest.as_bytes());
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:{manifest_digest}","size":{},"annotations":{{"io.containerd.image.name":"{IMAGE}","org.opencontainers.image.ref.name":"lab"}}}}]}}"#,
        manifest.len()
    );
    let docker_manifest = format!(
        r#"[{{"Config":"blobs/sha256/{config_digest}","RepoTags":["{IMAGE}"],"Layers":["blobs/sha256/{layer_digest}"]}}]"#
    );
    let mut archive = tar::Builder::new(Vec::new());
    let entries: [(String, &[u8]); 6] = [
        ("oci-layout".into(), br#"{"imageLayoutVersion":"1.0.0"}"#),
        ("index.json".into(), index.as_bytes()),
        ("manifest.json".into(), docker_manifest.as_bytes()),
        (format!("blobs/sha256/{layer_digest}"), &layer),
        (format!("blobs/sha256/{config_digest}"), config.as_bytes()),
        (
            format!("blobs/sha256/{manifest_digest}"),
            manifest.as_bytes(),
        ),
    ];
    for (path, data) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        header.set_mtime(0);
        append(&mut archive, &mut header, &path, data)?;
    }
    let archive = archive
        .into_inner()
        .map_err(|e| format!("image archive: {e}"))?;
    let path = dir.join("image.tar");
    let mut out =
        std::fs::File::create_new(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    out.write_all(&archive)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

fn append(
    builder: &mut tar::Builder<Vec<u8>>,
    header: &mut tar::Header,
    path: &str,
    data: &[u8],
) -> Result<(), String> {
    builder
        .append_data(header, path, data)
        .map_err(|e| format!("image: {path}: {e}"))
}

fn sha256(data: &[u8]) -> String {
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The OCI name of this machine's architecture.
fn oci_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

/// A random pod uid in the form Kubernetes gives them (UUID v4).
pub(crate) fn pod_uid() -> String {
    let mut bytes = [0u8; 16];
    // SAFETY: getrandom writes at most `bytes.len()` bytes into the buffer we own.
    let got = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    assert_eq!(got, bytes.len() as isize, "getrandom");
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The init's first child in the container, once it has one.
pub(crate) fn first_child(scenario: &str, init: i32) -> Result<i32, LabError> {
    let mut child = None;
    wait_until(Duration::from_secs(20), || {
        child = children_of(init).first().copied();
        child.is_some()
    });
    child.ok_or_else(|| {
        LabError::setup(
            scenario,
            "find the container init's child",
            format!("pid {init} has no child"),
        )
    })
}

/// Freezes `pid` alone with the cgroup v1 freezer, in a child cgroup of its container's freezer
/// cgroup (so its cgroup paths keep naming the container, and the runtime removes it with the
/// container's). Records the freeze so teardown thaws first. Returns the frozen cgroup's path
/// in the freezer hierarchy.
pub(crate) fn freeze_in_container(
    guard: &mut LabGuard,
    scenario: &str,
    pid: i32,
) -> Result<String, LabError> {
    let root = crate::scenarios::v1_freezer(scenario)?;
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .map_err(|e| LabError::setup(scenario, "read the child's cgroups", e))?;
    let container = cgroups
        .lines()
        .filter_map(|line| {
            let mut fields = line.splitn(3, ':');
            let controllers = fields.nth(1)?;
            Some((controllers, fields.next()?))
        })
        .find(|(controllers, _)| controllers.split(',').any(|c| c == "freezer"))
        .map(|(_, path)| path.to_string())
        .ok_or_else(|| LabError::setup(scenario, "find the child's freezer cgroup", "none"))?;
    let path = format!("{}/nodedoc-frozen", container.trim_end_matches('/'));
    let dir = root.join(path.trim_start_matches('/'));
    std::fs::create_dir(&dir)
        .map_err(|e| LabError::setup(scenario, &format!("mkdir {}", dir.display()), e))?;
    // Removed with the container's cgroup by runc; if not, with the lab's cgroup tree.
    crate::scenarios::freeze_task(guard, scenario, &dir, pid)?;
    Ok(path)
}

/// Records a runtime lab's facts and what `check` must find: the killed init held in
/// `zap_pid_ns_processes` by its frozen child (`freezer_cgroup`), and the child's hung task.
pub(crate) fn record_stuck_container(
    guard: &mut LabGuard,
    facts: Vec<(&str, String)>,
    init: i32,
    child: i32,
    frozen: &str,
) {
    let instance = guard.instance_mut();
    for (key, value) in facts {
        instance.facts.insert(key.into(), value);
    }
    instance.facts.insert("init_pid".into(), init.to_string());
    instance.facts.insert("child_pid".into(), child.to_string());
    instance
        .facts
        .insert("freezer_cgroup".into(), frozen.to_string());
    instance.expect.push(crate::Expectation {
        detector: "pidns-exit-hang".into(),
        subject: format!("pid/{init}"),
        evidence: vec![
            "zap_pid_ns_processes".into(),
            format!("its cgroup {frozen} is FROZEN"),
        ],
    });
    instance.expect.push(crate::Expectation {
        detector: "hung-task".into(),
        subject: format!("pid/{child}"),
        evidence: vec!["stack classified as frozen-cgroup".into()],
    });
}

/// Waits until `log` has a line containing every one of `needles`; returns that line.
pub(crate) fn wait_for_log_line(log: &Path, needles: &[&str], timeout: Duration) -> Option<String> {
    let mut found = None;
    wait_until(timeout, || {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        found = text
            .lines()
            .find(|line| needles.iter().all(|n| line.contains(n)))
            .map(str::to_string);
        found.is_some()
    });
    found
}

/// Removes `/sys/fs/cgroup/*/NAME` and everything below it, deepest first, in every
/// hierarchy (v1 controllers, the named systemd one, cgroup2). `NAME` is a lab's own
/// top-level cgroup; anything else is refused.
pub(crate) fn remove_cgroup_tree(name: &str) -> Result<(), String> {
    if !name.starts_with("nodedoc-lab-") || name.contains('/') || name.contains("..") {
        return Err(format!("{name:?} is not a lab cgroup"));
    }
    let mut failures = Vec::new();
    let mut roots = vec![PathBuf::from("/sys/fs/cgroup")];
    if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
        roots.extend(entries.flatten().map(|e| e.path()));
    }
    for root in roots {
        let top = root.join(name);
        if !top.is_dir() {
            continue;
        }
        let mut dirs = Vec::new();
        collect_dirs(&top, &mut dirs);
        // Deepest first.
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for dir in dirs {
            // Retried while exiting tasks are still being removed from it.
            if let Err(e) = (Resource::Cgroup { path: dir }).release() {
                failures.push(e);
            }
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}

fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    out.push(dir.to_path_buf());
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                collect_dirs(&entry.path(), out);
            }
        }
    }
}

/// The docker CLI of Debian's docker.io (`/usr/bin/docker`), else the first on `PATH`.
pub(crate) fn docker_cli(socket: &Path) -> Command {
    let program = if Path::new("/usr/bin/docker").is_file() {
        PathBuf::from("/usr/bin/docker")
    } else {
        PathBuf::from("docker")
    };
    let mut command = Command::new(program);
    command
        .arg("--host")
        .arg(format!("unix://{}", socket.display()))
        // No client configuration or credentials of the user's.
        .env(
            "DOCKER_CONFIG",
            socket.parent().unwrap_or(Path::new("/")).join("client"),
        );
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_is_an_oci_layout_and_a_docker_archive_with_sound_digests() {
        if !Path::new("/bin/busybox").is_file() {
            eprintln!("busybox-static is not installed: skipped");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = build_image(dir.path()).unwrap();
        let mut archive = tar::Archive::new(std::fs::File::open(&path).unwrap());
        let mut files = std::collections::BTreeMap::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().display().to_string();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
            files.insert(name, data);
        }
        for (name, data) in &files {
            if let Some(digest) = name.strip_prefix("blobs/sha256/") {
                assert_eq!(sha256(data), digest, "{name}");
            }
        }
        let index = String::from_utf8(files["index.json"].clone()).unwrap();
        assert!(index.contains(IMAGE), "{index}");
        let docker = String::from_utf8(files["manifest.json"].clone()).unwrap();
        assert!(
            docker.contains(&format!(r#""RepoTags":["{IMAGE}"]"#)),
            "{docker}"
        );
    }

    #[test]
    fn pod_uids_look_like_kubernetes_ones() {
        let uid = pod_uid();
        assert_eq!(uid.len(), 36);
        assert_eq!(uid.matches('-').count(), 4);
        assert_eq!(&uid[14..15], "4");
        assert_ne!(uid, pod_uid());
    }

    #[test]
    fn only_lab_cgroup_trees_are_removed() {
        assert!(remove_cgroup_tree("docker").is_err());
        assert!(remove_cgroup_tree("nodedoc-lab-x/../../x").is_err());
        assert_eq!(remove_cgroup_tree("nodedoc-lab-absent-000000"), Ok(()));
    }
}
