use std::path::PathBuf;

/// Why a lab could not start or stop.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// No scenario by that name.
    #[error("no lab scenario {name:?}; scenarios: {known}")]
    UnknownScenario {
        /// What was asked for.
        name: String,
        /// What exists.
        known: String,
    },
    /// A setup step failed (everything created so far has been torn down).
    #[error("lab {scenario}: {step}: {detail}")]
    Setup {
        /// The scenario.
        scenario: String,
        /// What it was doing.
        step: String,
        /// What went wrong.
        detail: String,
    },
    /// The lab needs something this host lacks (root, a kernel feature, a package).
    #[error("lab {scenario} cannot run here: {reason}")]
    Unsupported {
        /// The scenario.
        scenario: String,
        /// What is missing, and how to get it.
        reason: String,
    },
    /// Some resources could not be released.
    #[error("lab {instance}: teardown incomplete: {}", failures.join("; "))]
    Teardown {
        /// The instance.
        instance: String,
        /// One line per resource.
        failures: Vec<String>,
    },
    /// The state file could not be written or read.
    #[error("lab state {path}: {source}")]
    State {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The state directory exists but others could write it (a planted symlink or directory,
    /// a loose mode): instances are neither written to it nor read from it, since a planted
    /// state file would make `lab stop` kill and delete what it names.
    #[error("lab state directory {path} is not safe to use: {reason}")]
    UnsafeStateDir {
        /// The directory.
        path: PathBuf,
        /// What is wrong, and what to do.
        reason: String,
    },
    /// A helper process failed.
    #[error("lab helper {helper}: {detail}")]
    Helper {
        /// Which helper.
        helper: String,
        /// What went wrong.
        detail: String,
    },
}

impl LabError {
    pub(crate) fn setup(scenario: &str, step: &str, detail: impl std::fmt::Display) -> LabError {
        LabError::Setup {
            scenario: scenario.to_string(),
            step: step.to_string(),
            detail: detail.to_string(),
        }
    }
}
