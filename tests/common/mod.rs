//! Shared helpers of the integration tests: run the real `nodedoc` binary and read its JSON.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

use nodedoc_model::{Finding, Report};

/// A child process killed (and reaped) when the guard drops, on every exit path.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The binary under test.
pub const NODEDOC: &str = env!("CARGO_BIN_EXE_nodedoc");

/// Runs `nodedoc ARGS`, returning its output.
pub fn nodedoc(args: &[&str]) -> Output {
    Command::new(NODEDOC)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run nodedoc")
}

/// Runs `nodedoc check --format json ARGS` and parses the report; also returns the exit code.
pub fn check_json(args: &[&str]) -> (Report, i32) {
    let mut all = vec!["check", "--format", "json"];
    all.extend_from_slice(args);
    let output = nodedoc(&all);
    let code = output.status.code().expect("exit code");
    let report: Report = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "check printed no report ({e}); exit {code}; stderr:\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (report, code)
}

/// The lab context for in-process labs: helpers are this very binary.
pub fn lab_context() -> nodedoc_lab::LabContext {
    nodedoc_lab::LabContext::new(Path::new(NODEDOC))
}

/// The finding of `detector` about `subject_key` (`pid/123`, `netdev/x`), or a panic that
/// shows every finding.
pub fn finding<'a>(report: &'a Report, detector: &str, subject_key: &str) -> &'a Finding {
    report
        .findings
        .iter()
        .find(|f| f.detector == detector && f.subject.key() == subject_key)
        .unwrap_or_else(|| {
            let all: Vec<String> = report
                .findings
                .iter()
                .map(|f| format!("{} {} {}", f.detector, f.subject.key(), f.summary))
                .collect();
            panic!(
                "no {detector} finding for {subject_key}; findings:\n{}",
                all.join("\n")
            )
        })
}

/// True when some evidence fact of `finding` contains `needle`.
pub fn has_evidence(finding: &Finding, needle: &str) -> bool {
    finding.evidence.iter().any(|e| e.fact.contains(needle))
}

/// A snapshot of a host with nothing wrong (hostname `node-7`), written into `dir`, to
/// analyse named files against (`--from`): the findings are then the files' alone, whatever
/// runs on this machine.
pub fn empty_snapshot(dir: &Path) -> String {
    let snapshot = nodedoc_model::Snapshot::new(nodedoc_model::HostInfo {
        hostname: "node-7".into(),
        kernel_release: "6.1.0-18-amd64".into(),
        uptime_us: 90_000_000_000,
        clock_ticks_per_sec: 100,
        collector_version: "test".into(),
        ..nodedoc_model::HostInfo::default()
    });
    let path = dir.join("empty.json");
    nodedoc_model::write_snapshot(&path, &snapshot).unwrap();
    path.display().to_string()
}
