//! A healthy machine gives no warning or critical finding.
//!
//! This file's name makes cargo run it before the lab tests of this package, whose faults
//! (kernel log lines among them) outlive the tests that wrote them.

mod common;

use common::check_json;
use nodedoc_model::{Severity, Subject};

/// Faults the lab tests create on purpose: kernel log lines for `ndlab*` devices and the
/// `ndflood*` devices of the flood test (they stay in the ring buffer) and the lab helpers,
/// should a previous run on this machine have left any. Everything else counts.
fn is_lab_artifact(subject: &Subject) -> bool {
    match subject {
        Subject::NetDevice { name } => name.starts_with("ndlab") || name.starts_with("ndflood"),
        Subject::Process { comm, .. } => {
            matches!(comm.as_str(), "fd-hog" | "zombie-parent" | "kmsg-repeat")
        }
        _ => false,
    }
}

#[test]
fn this_host_has_no_warning_or_critical_finding() {
    let (report, code) = check_json(&[]);
    // A group finding is an artifact when every member it lists is.
    let artifact = |f: &nodedoc_model::Finding| match &f.group {
        Some(group) => group.members.iter().all(|m| is_lab_artifact(&m.subject)),
        None => is_lab_artifact(&f.subject),
    };
    let problems: Vec<String> = report
        .findings
        .iter()
        .filter(|f| f.severity >= Severity::Warning && !artifact(f))
        .map(|f| format!("{} {}: {}", f.severity, f.detector, f.summary))
        .collect();
    assert!(
        problems.is_empty(),
        "a healthy host gave findings:\n{}",
        problems.join("\n")
    );
    assert!(
        code == 0 || report.findings.iter().any(artifact),
        "exit {code}"
    );
    // The procfs and kernel-log sources were read.
    assert!(report.sources.iter().any(|s| s.source == "procfs"));
    assert!(report.sources.iter().any(|s| s.source == "kernel-log"));
}
