//! The command line's contract: exit codes, errors for bad input, snapshots that travel.

mod common;

use common::{check_json, lab_context, nodedoc};

#[test]
fn help_teaches_and_exits_zero_while_usage_errors_exit_three() {
    let help = nodedoc(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("Exit status"), "{text}");
    assert!(text.contains("nodedoc check --from"), "{text}");
    let bad = nodedoc(&["check", "--bogus"]);
    assert_eq!(bad.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--bogus"));
}

#[test]
fn explain_lists_and_explains_detectors() {
    let list = nodedoc(&["explain"]);
    let text = String::from_utf8_lossy(&list.stdout);
    for id in [
        "fd-exhaustion",
        "zombie-processes",
        "netdev-unregister-stuck",
    ] {
        assert!(text.contains(id), "{text}");
    }
    let one = nodedoc(&["explain", "netdev-unregister-stuck"]);
    assert_eq!(one.status.code(), Some(0));
    let text = String::from_utf8_lossy(&one.stdout);
    assert!(text.contains("How"), "{text}");
    assert!(
        text.contains("access.redhat.com/solutions/3659011"),
        "{text}"
    );
    let unknown = nodedoc(&["explain", "no-such-detector"]);
    assert_eq!(unknown.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("known detectors: fd-exhaustion"));
}

#[test]
fn a_saved_snapshot_gives_the_same_findings_elsewhere() {
    let lab = nodedoc_lab::start("fd-exhaustion", &lab_context()).expect("start lab");
    let pid = lab.instance().fact("hog_pid").unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("node.json");
    let collected = nodedoc(&["collect", "-o", file.to_str().unwrap()]);
    assert!(
        collected.status.success(),
        "{}",
        String::from_utf8_lossy(&collected.stderr)
    );
    lab.stop().unwrap();

    // The hog is gone; the snapshot still holds it.
    let (report, code) = check_json(&["--from", file.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(report.origin.starts_with("file:"));
    let f = common::finding(&report, "fd-exhaustion", &format!("pid/{pid}"));
    assert!(common::has_evidence(
        f,
        "3,950 NETLINK_GENERIC netlink sockets"
    ));
}

#[test]
fn corrupt_truncated_and_foreign_snapshots_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.json");
    assert!(
        nodedoc(&["collect", "--interval", "0", "-o", good.to_str().unwrap()])
            .status
            .success()
    );
    let bytes = std::fs::read(&good).unwrap();

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "truncated.json",
            bytes[..bytes.len() / 2].to_vec(),
            "truncated",
        ),
        (
            "foreign.json",
            br#"{"apiVersion":"v1","kind":"Pod"}"#.to_vec(),
            "not a nodedoc snapshot",
        ),
        (
            "binary.png",
            b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec(),
            "not a nodedoc snapshot",
        ),
        ("empty.json", Vec::new(), "truncated"),
        (
            "newer.json",
            br#"{"format":"nodedoc-snapshot","version":999}"#.to_vec(),
            "newer than this nodedoc reads",
        ),
    ];
    for (name, content, expected) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        let out = nodedoc(&["check", "--from", path.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{name}: {stderr}");
        assert!(stderr.contains(expected), "{name}: {stderr}");
        assert!(
            stderr.contains(name),
            "{name}: the error names the file: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
    }
    let missing = nodedoc(&["check", "--from", "/nonexistent/snap.json"]);
    assert_eq!(missing.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/snap.json"));
}

#[test]
fn text_output_has_no_colour_when_piped() {
    let out = nodedoc(&["check", "--interval", "0"]);
    assert!(!out.stdout.contains(&0x1b), "escape codes in piped output");
    let forced = std::process::Command::new(common::NODEDOC)
        .args(["--color", "always", "explain"])
        .output()
        .unwrap();
    assert!(forced.stdout.contains(&0x1b), "--color always colours");
}

#[test]
fn a_bad_config_file_is_an_error_naming_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("nodedoc.toml");
    std::fs::write(
        &config,
        "[thresholds]\nfd_warning_ratio = 0.8\nfd_warn_ratio = 0.9\n",
    )
    .unwrap();
    let out = nodedoc(&[
        "check",
        "--config",
        config.to_str().unwrap(),
        "--interval",
        "0",
    ]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nodedoc.toml:3:1"), "{err}");
    assert!(err.contains("fd_warn_ratio"), "{err}");
}

#[test]
fn a_config_file_switches_detectors_off() {
    let lab = nodedoc_lab::start("zombies", &lab_context()).expect("start lab");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("nodedoc.toml");
    std::fs::write(&config, "[detectors]\ndisable = [\"zombie-processes\"]\n").unwrap();
    let (with, _) = check_json(&[]);
    let (without, _) = check_json(&["--config", config.to_str().unwrap()]);
    lab.stop().unwrap();
    assert!(with
        .findings
        .iter()
        .any(|f| f.detector == "zombie-processes"));
    assert!(without
        .findings
        .iter()
        .all(|f| f.detector != "zombie-processes"));
}

#[test]
fn the_systemd_unit_verifies() {
    // The unit runs /usr/local/bin/nodedoc; verify a copy that points at this build.
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/contrib/systemd/nodedoc-watch.service"
    ))
    .unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/nodedoc watch "));
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("nodedoc-watch.service");
    std::fs::write(
        &copy,
        unit.replace("/usr/local/bin/nodedoc", common::NODEDOC),
    )
    .unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .expect("systemd-analyze (Debian's systemd package) runs");
    let said =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && said.trim().is_empty(), "{said}");
    // The flags it passes are the agent's.
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart=/usr/local/bin/nodedoc "))
        .unwrap();
    let mut args: Vec<&str> = exec.split_whitespace().collect();
    args.extend(["--rounds", "0", "--help"]);
    let help = nodedoc(&args);
    assert_eq!(
        help.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&help.stderr)
    );
}
