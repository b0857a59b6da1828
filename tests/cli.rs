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

/// Issue 8 item 7: an input named on the command line that cannot be read is a failure of
/// nodedoc (exit 3) with the flag named on stderr — never a silent "no problems" (exit 0).
/// `check` still prints the whole report first, with the failed source in it.
#[test]
fn a_named_ovsdb_that_cannot_be_read_fails_after_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let missing = format!("unix:{}", dir.path().join("no-such.sock").display());
    // A socket that is there but is no OVSDB: it accepts and hangs up.
    let hangup_path = dir.path().join("hangup.sock");
    let listener = std::os::unix::net::UnixListener::bind(&hangup_path).unwrap();
    // Detached: it ends with the test process (a thread blocked in accept holds nothing else).
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            drop(stream);
        }
    });
    let not_ovsdb = format!("unix:{}", hangup_path.display());
    for endpoint in [&missing, &not_ovsdb] {
        let out = nodedoc(&[
            "check",
            "--format",
            "json",
            "--interval",
            "0",
            "--no-fds",
            "--ovsdb",
            endpoint,
        ]);
        assert_eq!(out.status.code(), Some(3), "{endpoint}");
        let report: nodedoc_model::Report = serde_json::from_slice(&out.stdout).unwrap();
        let source = report.sources.iter().find(|s| s.source == "ovsdb").unwrap();
        assert_eq!(source.state, nodedoc_model::SourceState::Failed);
        assert!(report.sources.iter().any(|s| s.source == "procfs"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("error: --ovsdb {endpoint} could not be read: ")),
            "{stderr}"
        );
    }
    // Not for a hang-up: `ovs ports` fails before printing anything.
    let ports = nodedoc(&["ovs", "ports", "--ovsdb", &not_ovsdb]);
    assert_eq!(ports.status.code(), Some(3));
    assert!(ports.stdout.is_empty());
    assert!(String::from_utf8_lossy(&ports.stderr).contains(&format!("--ovsdb {not_ovsdb}")));

    // `fix` changes nothing and says why; `ovs ports` prints no table.
    let fix = nodedoc(&["fix", "ovs-orphan-port", "--yes", "--ovsdb", &missing]);
    assert_eq!(fix.status.code(), Some(3));
    assert!(fix.stdout.is_empty());
    assert!(String::from_utf8_lossy(&fix.stderr).contains(&format!("--ovsdb {missing}")));
    let ports = nodedoc(&["ovs", "ports", "--format", "json", "--ovsdb", &missing]);
    assert_eq!(ports.status.code(), Some(3));
    assert!(ports.stdout.is_empty());

    // `collect` saves what it read (nothing is lost), then fails.
    let file = dir.path().join("snap.json");
    let out = nodedoc(&[
        "collect",
        "-o",
        file.to_str().unwrap(),
        "--interval",
        "0",
        "--no-fds",
        "--ovsdb",
        &missing,
    ]);
    assert_eq!(out.status.code(), Some(3));
    let saved = nodedoc_model::read_snapshot(&file).unwrap();
    assert_eq!(
        saved.source("ovsdb").map(|s| s.state),
        Some(nodedoc_model::SourceState::Failed)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--ovsdb"));

    // A malformed endpoint is a usage error, before any scanning.
    let bad = nodedoc(&["check", "--ovsdb", "bogus"]);
    assert_eq!(bad.status.code(), Some(3));
    assert!(bad.stdout.is_empty());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("expected unix:PATH or tcp:HOST"));
}

/// `--ovs-log FILE` that is not read is an error too, wherever the flag is accepted; and a
/// snapshot file cannot be combined with a live OVSDB (it would be ignored).
#[test]
fn a_named_ovs_log_that_is_not_read_fails() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("ovs-vswitchd.log");
    let missing = format!("unix:{}", dir.path().join("no-such.sock").display());
    let ports = nodedoc(&[
        "ovs",
        "ports",
        "--ovsdb",
        &missing,
        "--ovs-log",
        log.to_str().unwrap(),
    ]);
    assert_eq!(ports.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&ports.stderr);
    assert!(
        stderr.contains(&format!("--ovs-log {} could not be read", log.display())),
        "{stderr}"
    );
    let from = nodedoc(&["check", "--from", "x.json", "--ovsdb", &missing]);
    assert_eq!(from.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&from.stderr).contains("cannot be used with"));
}

/// Regression (issue 8 item 7): `--threads 50000` panicked (the system refused a thread).
/// It is clamped to 4 per CPU with a note, and the check runs; 0 is a usage error.
#[test]
fn an_absurd_thread_count_is_clamped_with_a_note() {
    let out = nodedoc(&[
        "check",
        "--format",
        "json",
        "--interval",
        "0",
        "--no-fds",
        "--threads",
        "50000",
    ]);
    let code = out.status.code();
    assert!(
        matches!(code, Some(0..=2)),
        "exit {code:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: nodedoc_model::Report = serde_json::from_slice(&out.stdout).unwrap();
    let procfs = report
        .sources
        .iter()
        .find(|s| s.source == "procfs")
        .unwrap();
    assert!(procfs.detail.contains("processes"), "{procfs:?}");
    let cpus = std::thread::available_parallelism().unwrap().get();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "note: --threads 50000 is more than the scan can use; using {} (4 per CPU",
            4 * cpus
        )),
        "{stderr}"
    );
    let zero = nodedoc(&["check", "--threads", "0"]);
    assert_eq!(zero.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&zero.stderr).contains("at least one thread"));
}
