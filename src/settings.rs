//! What a run is configured with: the config file (`--config`), under the flags.

use std::collections::BTreeSet;

use anyhow::Result;
use nodedoc_config::{AgentSettings, LogRules};

use crate::cli::ThresholdArgs;

/// Thresholds, switches and rules for one run.
#[derive(Debug, Default)]
pub struct Settings {
    /// The detectors' thresholds: defaults, then the file's, then the flags'.
    pub detectors: nodedoc_detectors::Config,
    /// Detectors the file switches off.
    pub disabled: BTreeSet<String>,
    /// The file's log rules.
    pub log_rules: Vec<LogRules>,
    /// The file's `[agent]` table.
    pub agent: AgentSettings,
}

impl Settings {
    /// True when `detector` runs.
    pub fn enabled(&self, detector: &str) -> bool {
        !self.disabled.contains(detector)
    }
}

impl ThresholdArgs {
    /// Loads the config file, if any, and lays the flags over it.
    pub fn settings(&self) -> Result<Settings> {
        let mut settings = Settings::default();
        if let Some(path) = &self.config {
            let known: Vec<&str> = nodedoc_detectors::detectors()
                .iter()
                .map(|d| d.id())
                .collect();
            // The error names the file, line and column, with the line and a caret.
            let config =
                nodedoc_config::Config::load(path, &known).map_err(|e| anyhow::anyhow!("{e}"))?;
            settings.detectors = config.detector_config();
            settings.disabled = config.detectors.disabled().map(str::to_string).collect();
            settings.log_rules = config.logs;
            settings.agent = config.agent;
        }
        if let Some(timeout) = self.cni_timeout {
            settings.detectors.cni_plugin_timeout_secs = timeout.as_secs();
        }
        if let Some(margin) = self.pod_terminating_margin {
            settings.detectors.pod_terminating_margin_secs = margin.as_secs().max(1);
        }
        Ok(settings)
    }
}
