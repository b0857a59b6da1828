//! The scenarios, one file each.

mod fd_exhaustion;
mod netdev_unregister;
mod ovs_netns_leak;
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
    /// Creates the fault, recording resources and expectations in the guard.
    pub start: fn(&mut LabGuard, &LabContext) -> Result<(), LabError>,
}

/// Every scenario.
pub fn scenarios() -> &'static [Scenario] {
    &[
        fd_exhaustion::SCENARIO,
        zombies::SCENARIO,
        netdev_unregister::SCENARIO,
        ovs_netns_leak::SCENARIO,
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
