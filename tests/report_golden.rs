//! The text report's wording, as golden files: seed 000's snapshot (ovs-vswitchd at its fd
//! limit, the orphaned, flapping port behind it) and seed 003's container that containerd
//! cannot stop (recorded from the containerd-stop-hang lab: the killed init and its frozen
//! child, containerd's log lines about the container, the pod named through the CRI socket),
//! rendered by `check --from`.
//!
//! When the wording changes on purpose, regenerate with `NODEDOC_BLESS=1 cargo test --test
//! report_golden` and review the diff.

mod common;

use std::process::Command;

#[test]
fn seed_000_report_reads_as_recorded() {
    reads_as_recorded("seed-000-ovs-snapshot.json", "seed-000-report.txt");
}

#[test]
fn seed_003_containerd_report_reads_as_recorded() {
    reads_as_recorded(
        "seed-003-containerd-snapshot.json",
        "seed-003-containerd-report.txt",
    );
}

/// Renders `tests/fixtures/SNAPSHOT` and compares it with `tests/fixtures/GOLDEN`.
fn reads_as_recorded(snapshot: &str, golden: &str) {
    let root = env!("CARGO_MANIFEST_DIR");
    let output = Command::new(common::NODEDOC)
        .current_dir(root)
        .args(["check", "--from", &format!("tests/fixtures/{snapshot}")])
        .env("NO_COLOR", "1")
        .output()
        .expect("run nodedoc");
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let text = String::from_utf8(output.stdout).expect("UTF-8 report");
    let golden = std::path::Path::new(root)
        .join("tests/fixtures")
        .join(golden);
    if std::env::var_os("NODEDOC_BLESS").is_some() {
        std::fs::write(&golden, &text).unwrap();
    }
    let expected =
        std::fs::read_to_string(&golden).expect("golden file (NODEDOC_BLESS=1 writes it)");
    if text != expected {
        let first = text
            .lines()
            .zip(expected.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(text.lines().count().min(expected.lines().count()));
        panic!(
            "the report changed from line {}:\n  now:      {:?}\n  recorded: {:?}\n(NODEDOC_BLESS=1 re-records it)",
            first + 1,
            text.lines().nth(first),
            expected.lines().nth(first)
        );
    }
}
