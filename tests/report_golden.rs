//! The text report's wording, as a golden file: seed 000's snapshot (ovs-vswitchd at its fd
//! limit, the orphaned, flapping port behind it) rendered by `check --from`.
//!
//! When the wording changes on purpose, regenerate with `NODEDOC_BLESS=1 cargo test --test
//! report_golden` and review the diff.

mod common;

use std::process::Command;

#[test]
fn seed_000_report_reads_as_recorded() {
    let root = env!("CARGO_MANIFEST_DIR");
    let output = Command::new(common::NODEDOC)
        .current_dir(root)
        .args([
            "check",
            "--from",
            "tests/fixtures/seed-000-ovs-snapshot.json",
        ])
        .env("NO_COLOR", "1")
        .output()
        .expect("run nodedoc");
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let text = String::from_utf8(output.stdout).expect("UTF-8 report");
    let golden = std::path::Path::new(root).join("tests/fixtures/seed-000-report.txt");
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
