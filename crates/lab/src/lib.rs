//! Labs: reproduce a failure from nodedoc's seed incidents in a sandbox, so a user can prove
//! a detector on their own kernel, and so the test suite exercises detectors on real
//! processes, namespaces, cgroups and kernel log records.
//!
//! A scenario's `start` creates everything with unique names and records each piece as a
//! [`Resource`] as soon as it exists; [`LabGuard`] tears them down in reverse order when it
//! is dropped, including after a failed setup or a panic. `nodedoc lab start` persists an
//! instance to a state file so that `nodedoc lab stop` (another process) can tear it down.
//!
//! Processes labs start are helpers: the nodedoc binary re-executed as
//! `nodedoc lab-helper …` ([`run_helper`]). They are killed only by pid *and* start time, so
//! a reused pid is never killed.
#![deny(missing_docs)]

mod error;
mod fuse;
mod helpers;
mod ovs_daemons;
mod process;
mod resource;
mod runtimes;
mod scenarios;
mod supervisor;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use error::LabError;
pub use helpers::run_helper;
pub use resource::Resource;
pub use scenarios::{scenario, scenarios, Scenario};

/// What the lab expects `nodedoc check` to find while it runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expectation {
    /// The detector id.
    pub detector: String,
    /// The finding's subject key, e.g. `pid/1234` or `netdev/ndlab12ab`.
    pub subject: String,
    /// Substrings that must appear in the finding's evidence facts.
    pub evidence: Vec<String>,
}

/// A running lab.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Instance {
    /// Unique id: `SCENARIO-XXXXXX`.
    pub id: String,
    /// The scenario name.
    pub scenario: String,
    /// What was created, in creation order.
    pub resources: Vec<Resource>,
    /// What `check` should find.
    pub expect: Vec<Expectation>,
    /// Facts about the instance for humans and tests (pids and names by role).
    pub facts: std::collections::BTreeMap<String, String>,
}

impl Instance {
    fn new(scenario: &str) -> Instance {
        Instance {
            id: format!("{scenario}-{}", unique_suffix()),
            scenario: scenario.to_string(),
            resources: Vec::new(),
            expect: Vec::new(),
            facts: Default::default(),
        }
    }

    /// A fact recorded by the scenario (`"hog_pid"`, `"device"`, …).
    pub fn fact(&self, key: &str) -> Option<&str> {
        self.facts.get(key).map(String::as_str)
    }

    /// Tears everything down, newest first. Every resource is attempted even when an earlier
    /// one fails; the errors are returned together.
    pub fn stop(&mut self) -> Result<(), LabError> {
        let mut failures = Vec::new();
        while let Some(resource) = self.resources.pop() {
            if let Err(e) = resource.release() {
                failures.push(e.to_string());
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(LabError::Teardown {
                instance: self.id.clone(),
                failures,
            })
        }
    }
}

/// Six hex digits unique enough for names on one host: pid and time mixed.
pub fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mixed = nanos
        ^ (u64::from(std::process::id()) << 20)
        ^ COUNTER
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    format!("{:06x}", (mixed ^ (mixed >> 24)) & 0xff_ffff)
}

/// What a scenario needs from its caller.
#[derive(Clone, Debug)]
pub struct LabContext {
    /// The nodedoc binary, re-executed for helper processes.
    pub helper: PathBuf,
}

impl LabContext {
    /// Uses `helper` as the nodedoc binary.
    pub fn new(helper: impl Into<PathBuf>) -> LabContext {
        LabContext {
            helper: helper.into(),
        }
    }
}

/// Owns a running lab and tears it down when dropped.
pub struct LabGuard {
    instance: Option<Instance>,
}

impl LabGuard {
    fn new(instance: Instance) -> LabGuard {
        LabGuard {
            instance: Some(instance),
        }
    }

    /// The running instance.
    pub fn instance(&self) -> &Instance {
        self.instance
            .as_ref()
            .expect("present until stop or persist")
    }

    pub(crate) fn instance_mut(&mut self) -> &mut Instance {
        self.instance
            .as_mut()
            .expect("present until stop or persist")
    }

    /// Tears down now, reporting errors (dropping the guard does the same, silently).
    pub fn stop(mut self) -> Result<(), LabError> {
        match self.instance.take() {
            Some(mut instance) => instance.stop(),
            None => Ok(()),
        }
    }

    /// Writes the instance to the state directory and gives up ownership, so that it keeps
    /// running after this process exits; [`stop_saved`] tears it down later.
    pub fn persist(mut self) -> Result<Instance, LabError> {
        let instance = self.instance.take().expect("present until stop or persist");
        let written = private_state_dir(true).and_then(|dir| {
            let dir = dir.expect("created when missing");
            let path = dir.join(format!("{}.json", instance.id));
            write_state(&dir, &path, &instance).map_err(|source| LabError::State { path, source })
        });
        if let Err(e) = written {
            // The instance cannot be found again later: do not leave it running.
            let mut instance = instance;
            let _ = instance.stop();
            return Err(e);
        }
        Ok(instance)
    }
}

/// Writes `instance` to `path` in `dir`: to a new temporary file, renamed into place.
fn write_state(dir: &Path, path: &Path, instance: &Instance) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    file.write_all(&serde_json::to_vec_pretty(instance).map_err(std::io::Error::other)?)?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

impl Drop for LabGuard {
    fn drop(&mut self) {
        if let Some(mut instance) = self.instance.take() {
            if let Err(e) = instance.stop() {
                // Teardown errors name processes, devices and paths.
                eprintln!(
                    "nodedoc lab: {}",
                    nodedoc_model::text::Escaped(&e.to_string())
                );
            }
        }
    }
}

/// Starts a scenario by name.
///
/// This makes the calling process a child subreaper (`PR_SET_CHILD_SUBREAPER`): a helper whose
/// parent dies during teardown (a vfork child, a plugin of a runtime stand-in) is then
/// re-parented here and reaped by the teardown, instead of being left to an init that may reap
/// it late (as on machines whose pid 1 is not a real init).
pub fn start(name: &str, cx: &LabContext) -> Result<LabGuard, LabError> {
    // SAFETY: sets a flag on this process; no memory is involved.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let scenario = scenario(name).ok_or_else(|| LabError::UnknownScenario {
        name: name.to_string(),
        known: scenarios()
            .iter()
            .map(|s| s.name)
            .collect::<Vec<_>>()
            .join(", "),
    })?;
    let mut guard = LabGuard::new(Instance::new(scenario.name));
    (scenario.start)(&mut guard, cx)?;
    Ok(guard)
}

/// Where `lab start` keeps instances: `/run/nodedoc/labs` (cleared at boot, like what it
/// describes), or `$NODEDOC_LAB_STATE_DIR`.
pub fn state_dir() -> PathBuf {
    std::env::var_os("NODEDOC_LAB_STATE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR))
}

/// The default [`state_dir`]; its parent, `/run/nodedoc`, is nodedoc's too.
const DEFAULT_STATE_DIR: &str = "/run/nodedoc/labs";

/// A state file is a few kilobytes; anything near this is not one.
const STATE_FILE_MAX_BYTES: u64 = 16 << 20;

/// The state directory, checked before use; with `create`, made when missing.
///
/// A state file names processes to kill and directories to delete, as root: whoever can write
/// one makes `lab stop` do that. So the directory (and `/run/nodedoc` above the default one)
/// is created mode 0700, and used only when it is a real directory (not a symlink) owned by
/// this user, that neither group nor others can write, in a parent that others cannot
/// rearrange (not writable by them, or sticky like `/tmp`). `Ok(None)`: missing, not created.
fn private_state_dir(create: bool) -> Result<Option<PathBuf>, LabError> {
    let dir = state_dir();
    let mut chain = Vec::new();
    if dir == Path::new(DEFAULT_STATE_DIR) {
        chain.extend(dir.parent().map(Path::to_path_buf));
    }
    chain.push(dir.clone());
    for path in &chain {
        if !ensure_private_dir(path, create)? {
            return Ok(None);
        }
    }
    Ok(Some(dir))
}

/// Creates `path` (mode 0700) when missing and `create`, then checks it as
/// [`private_state_dir`] says. False when missing and not created.
fn ensure_private_dir(path: &Path, create: bool) -> Result<bool, LabError> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let unsafe_dir = |reason: String| LabError::UnsafeStateDir {
        path: path.to_path_buf(),
        reason,
    };
    let state_error = |source| LabError::State {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        if let Ok(meta) = std::fs::metadata(parent) {
            let sticky = meta.mode() & 0o1000 != 0;
            if meta.mode() & 0o022 != 0 && !sticky {
                return Err(unsafe_dir(format!(
                    "its parent {} can be written by others (mode {:o}) and is not sticky",
                    parent.display(),
                    meta.mode() & 0o7777
                )));
            }
        }
    }
    if create {
        match std::fs::DirBuilder::new().mode(0o700).create(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(state_error(e)),
        }
    }
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !create => return Ok(false),
        Err(e) => return Err(state_error(e)),
    };
    let me = rustix::process::geteuid().as_raw();
    if meta.file_type().is_symlink() {
        return Err(unsafe_dir(
            "it is a symbolic link (remove it; nodedoc creates the directory itself)".into(),
        ));
    }
    if !meta.is_dir() {
        return Err(unsafe_dir("it is not a directory".into()));
    }
    if meta.uid() != me {
        return Err(unsafe_dir(format!(
            "it is owned by uid {}, not by uid {me} (remove it; nodedoc creates the directory itself)",
            meta.uid()
        )));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(unsafe_dir(format!(
            "group or others can write it (mode {:o}; chmod go-w it)",
            meta.mode() & 0o7777
        )));
    }
    Ok(true)
}

/// Instances saved by `lab start`.
pub fn saved_instances() -> Result<Vec<(PathBuf, Instance)>, LabError> {
    let Some(dir) = private_state_dir(false)? else {
        return Ok(Vec::new());
    };
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(LabError::State { path: dir, source }),
    };
    let mut instances = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let bytes = nodedoc_model::hostfile::read_regular(
            &path,
            STATE_FILE_MAX_BYTES,
            nodedoc_model::hostfile::DEFAULT_STALL_DEADLINE,
        )
        .map_err(|e| LabError::State {
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        let instance: Instance = serde_json::from_slice(&bytes).map_err(|e| LabError::State {
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        instances.push((path, instance));
    }
    instances.sort_by(|a, b| a.1.id.cmp(&b.1.id));
    Ok(instances)
}

/// Stops saved instances whose id or scenario is `name`; returns the ids stopped.
pub fn stop_saved(name: &str) -> Result<Vec<String>, LabError> {
    let mut stopped = Vec::new();
    let mut failures = Vec::new();
    for (path, mut instance) in saved_instances()? {
        if instance.id != name && instance.scenario != name {
            continue;
        }
        match instance.stop() {
            Ok(()) => {}
            Err(e) => failures.push(e.to_string()),
        }
        remove_state(&path);
        stopped.push(instance.id);
    }
    if !failures.is_empty() {
        return Err(LabError::Teardown {
            instance: name.to_string(),
            failures,
        });
    }
    Ok(stopped)
}

fn remove_state(path: &Path) {
    let _ = std::fs::remove_file(path);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn the_state_dir_is_created_private_and_planted_ones_are_refused() {
        let root = tempfile::tempdir().unwrap();
        // World-writable and sticky, like /tmp.
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();

        let fresh = root.path().join("fresh");
        assert!(
            !ensure_private_dir(&fresh, false).unwrap(),
            "missing, not created"
        );
        assert!(ensure_private_dir(&fresh, true).unwrap());
        assert_eq!(std::fs::metadata(&fresh).unwrap().mode() & 0o777, 0o700);
        assert!(
            ensure_private_dir(&fresh, true).unwrap(),
            "again: checked, kept"
        );

        let target = root.path().join("target");
        std::fs::create_dir(&target).unwrap();
        let link = root.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = ensure_private_dir(&link, true).unwrap_err();
        assert!(err.to_string().contains("is a symbolic link"), "{err}");

        let loose = root.path().join("loose");
        std::fs::create_dir(&loose).unwrap();
        std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = ensure_private_dir(&loose, false).unwrap_err();
        assert!(
            err.to_string()
                .contains("group or others can write it (mode 777"),
            "{err}"
        );

        if rustix::process::geteuid().is_root() {
            let theirs = root.path().join("theirs");
            std::fs::create_dir(&theirs).unwrap();
            std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
            let err = ensure_private_dir(&theirs, true).unwrap_err();
            assert!(
                err.to_string().contains("owned by uid 65534, not by uid 0"),
                "{err}"
            );
        }

        // A parent others can rearrange: not sticky.
        let open_parent = root.path().join("open");
        std::fs::create_dir(&open_parent).unwrap();
        std::fs::set_permissions(&open_parent, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = ensure_private_dir(&open_parent.join("labs"), true).unwrap_err();
        assert!(err.to_string().contains("and is not sticky"), "{err}");
        assert!(!open_parent.join("labs").exists());
    }
}
