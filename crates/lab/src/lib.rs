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
mod scenarios;

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
        let path = state_dir().join(format!("{}.json", instance.id));
        let write = std::fs::create_dir_all(state_dir()).and_then(|()| {
            std::fs::write(
                &path,
                serde_json::to_vec_pretty(&instance).map_err(std::io::Error::other)?,
            )
        });
        if let Err(source) = write {
            // The instance cannot be found again later: do not leave it running.
            let mut instance = instance;
            let _ = instance.stop();
            return Err(LabError::State { path, source });
        }
        Ok(instance)
    }
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
        .unwrap_or_else(|| PathBuf::from("/run/nodedoc/labs"))
}

/// Instances saved by `lab start`.
pub fn saved_instances() -> Result<Vec<(PathBuf, Instance)>, LabError> {
    let dir = state_dir();
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
        let bytes = std::fs::read(&path).map_err(|source| LabError::State {
            path: path.clone(),
            source,
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
