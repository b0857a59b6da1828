//! `check --journal DIR|FILE` on REAL journal files: written by systemd's own
//! `systemd-journal-remote` from journal export format (compact and keyed-hash off, so any
//! systemd reads them), holding a kernel hung-task report, ovs-vswitchd's flapping sequence
//! of seed 000, kubelet and another unit's entries. nodedoc must find the hung task and the
//! OVS chain from the journal alone.
//!
//! Needs Debian's systemd-journal-remote (writer) and systemd (journalctl, the reader);
//! scripts/test installs both (scripts/test-packages). A missing tool fails the test with
//! what to install: it is never skipped.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{check_json, empty_snapshot, finding, has_evidence, nodedoc};
use nodedoc_model::{Snapshot, SourceState};

const JOURNAL_REMOTE: &str = "/lib/systemd/systemd-journal-remote";
const BOOT: &str = "5f2c0d6a9b8e4e51a1d2c3b4a5968778";
const EARLIER_BOOT: &str = "0b1c2d3e4f5a69788796a5b4c3d2e1f0";

/// One entry of the journal export format: `FIELD=value` lines, or the binary form
/// (name, newline, little-endian length, bytes) for a value with a newline.
fn export_entry(out: &mut Vec<u8>, fields: &[(&str, String)]) {
    for (name, value) in fields {
        if value.contains('\n') {
            out.extend_from_slice(name.as_bytes());
            out.push(b'\n');
            out.extend_from_slice(&(value.len() as u64).to_le_bytes());
            out.extend_from_slice(value.as_bytes());
            out.push(b'\n');
        } else {
            out.extend_from_slice(format!("{name}={value}\n").as_bytes());
        }
    }
    out.push(b'\n');
}

/// Writes `export` into a real journal file at `path` with systemd-journal-remote. Fails,
/// saying what to install, when it or journalctl (which nodedoc runs) is missing.
fn write_journal(export: &[u8], path: &Path) {
    assert!(
        Path::new(JOURNAL_REMOTE).exists(),
        "{JOURNAL_REMOTE} is missing: install Debian's systemd-journal-remote (scripts/test \
         installs everything in scripts/test-packages)"
    );
    assert!(
        Command::new("journalctl")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success()),
        "journalctl is missing: install Debian's systemd (scripts/test installs everything in \
         scripts/test-packages)"
    );
    let mut child = Command::new(JOURNAL_REMOTE)
        .arg(format!("--output={}", path.display()))
        .arg("-")
        .env("SYSTEMD_JOURNAL_COMPACT", "0")
        .env("SYSTEMD_JOURNAL_KEYED_HASH", "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run systemd-journal-remote");
    child.stdin.take().unwrap().write_all(export).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "systemd-journal-remote failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(path.exists(), "no journal written at {}", path.display());
}

/// A kernel hung-task report as the journal keeps it: one entry per printk line, with its
/// time since boot. Recorded real report (the kmsg corpus: scality/RestBlockDriver#32,
/// 3.13): jbd2/dewba1-8, pid 22455, waiting on block I/O.
fn kernel_entries(out: &mut Vec<u8>, realtime_us: u64) {
    let corpus = format!(
        "{}/crates/kmsg/tests/fixtures/hung_task/scality-32-jbd2-sleep_on_buffer-3.13.txt",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(corpus).unwrap();
    // A kernel line of an earlier boot, which must not be mixed into this boot's clock.
    export_entry(
        out,
        &[
            (
                "__REALTIME_TIMESTAMP",
                (realtime_us - 86_400_000_000).to_string(),
            ),
            ("__MONOTONIC_TIMESTAMP", "5000000".into()),
            ("_BOOT_ID", EARLIER_BOOT.into()),
            ("_TRANSPORT", "kernel".into()),
            ("PRIORITY", "3".into()),
            ("SYSLOG_FACILITY", "0".into()),
            ("SYSLOG_IDENTIFIER", "kernel".into()),
            ("_SOURCE_MONOTONIC_TIMESTAMP", "4000000".into()),
            (
                "MESSAGE",
                "INFO: task old-boot:4242 blocked for more than 120 seconds.".into(),
            ),
        ],
    );
    for (n, line) in text.lines().filter(|l| !l.starts_with('#')).enumerate() {
        let parsed = nodedoc_kmsg::parse_log_line(line);
        let monotonic = parsed
            .monotonic_us
            .expect("the corpus lines have [sec.usec]");
        export_entry(
            out,
            &[
                ("__REALTIME_TIMESTAMP", (realtime_us + n as u64).to_string()),
                ("__MONOTONIC_TIMESTAMP", monotonic.to_string()),
                ("_BOOT_ID", BOOT.into()),
                ("_TRANSPORT", "kernel".into()),
                ("PRIORITY", "3".into()),
                ("SYSLOG_FACILITY", "0".into()),
                ("SYSLOG_IDENTIFIER", "kernel".into()),
                ("_SOURCE_MONOTONIC_TIMESTAMP", monotonic.to_string()),
                ("MESSAGE", parsed.message.to_string()),
                ("_HOSTNAME", "node-7".into()),
            ],
        );
    }
}

/// Seed 000's ovs-vswitchd.log as ovs-vswitchd.service writes it to syslog
/// (`ovs|SEQ|MODULE|LEVEL|MESSAGE`: the time is the entry's).
fn ovs_entries(out: &mut Vec<u8>) {
    let log = format!(
        "{}/crates/ovs/tests/fixtures/seed-000-ovs-vswitchd.log",
        env!("CARGO_MANIFEST_DIR")
    );
    for line in std::fs::read_to_string(log).unwrap().lines() {
        let (stamp, rest) = line.split_once('|').unwrap();
        let ms = nodedoc_ovs::log::parse_timestamp(stamp).unwrap();
        export_entry(
            out,
            &[
                ("__REALTIME_TIMESTAMP", (ms as u64 * 1000).to_string()),
                ("__MONOTONIC_TIMESTAMP", "700000000".into()),
                ("_BOOT_ID", BOOT.into()),
                ("_TRANSPORT", "syslog".into()),
                ("PRIORITY", "6".into()),
                ("SYSLOG_IDENTIFIER", "ovs-vswitchd".into()),
                ("_SYSTEMD_UNIT", "ovs-vswitchd.service".into()),
                ("_PID", "1187".into()),
                ("MESSAGE", format!("ovs|{rest}")),
            ],
        );
    }
}

fn service_entries(out: &mut Vec<u8>, realtime_us: u64) {
    for (unit, ident, message) in [
        (
            "kubelet.service",
            "kubelet",
            "E1201 07:05:30.123456     812 kubelet.go:2394] \"Skipping pod synchronization\" err=\"PLEG is not healthy: pleg was last seen active 3m0.5s ago; threshold is 3m0s\"",
        ),
        ("ssh.service", "sshd", "Accepted publickey for root"),
    ] {
        export_entry(
            out,
            &[
                ("__REALTIME_TIMESTAMP", realtime_us.to_string()),
                ("__MONOTONIC_TIMESTAMP", "800000000".into()),
                ("_BOOT_ID", BOOT.into()),
                ("_TRANSPORT", "stdout".into()),
                ("PRIORITY", "3".into()),
                ("SYSLOG_IDENTIFIER", ident.into()),
                ("_SYSTEMD_UNIT", unit.into()),
                ("_PID", "812".into()),
                ("MESSAGE", message.into()),
            ],
        );
    }
}

/// A journal directory as /var/log/journal holds one: `DIR/MACHINE-ID/system.journal`.
fn journal_dir(dir: &Path) -> (PathBuf, PathBuf) {
    let mut export = Vec::new();
    let now_us = 1_796_108_548_000_000;
    kernel_entries(&mut export, now_us);
    ovs_entries(&mut export);
    service_entries(&mut export, now_us + 10_000_000);
    let root = dir.join("journal");
    let machine = root.join("8c3bd2f7a2e94a4d8a1c9e3f5b7d6e21");
    std::fs::create_dir_all(&machine).unwrap();
    let file = machine.join("system.journal");
    write_journal(&export, &file);
    (root, file)
}

/// The journal alone gives the hung kernel thread (with the class its trace shows), the OVS
/// chain and kubelet's PLEG failure; an earlier boot's kernel line and other units are left out; the sources say
/// what was read. A file and the directory holding it read the same.
#[test]
fn a_journal_gives_the_hung_task_and_the_ovs_chain() {
    let dir = tempfile::tempdir().unwrap();
    let (root, file) = journal_dir(dir.path());
    let from = empty_snapshot(dir.path());
    for path in [&file, &root] {
        let path = path.display().to_string();
        let (report, code) = check_json(&["--from", &from, "--journal", &path]);
        assert_eq!(code, 2, "kubelet's PLEG line is critical");

        // kubelet's entry, read by the runtime detectors like a kubelet log file.
        let pleg = finding(&report, "kubelet-pleg-unhealthy", "host");
        assert_eq!(pleg.severity, nodedoc_model::Severity::Critical);
        assert!(
            pleg.evidence.iter().any(|e| e
                .command
                .as_deref()
                .is_some_and(|c| c.starts_with("journalctl -u kubelet.service"))),
            "{:#?}",
            pleg.evidence
        );

        let hung = finding(&report, "hung-task", "pid/22455");
        assert!(hung.summary.contains("jbd2/dewba1-8"), "{}", hung.summary);
        assert!(has_evidence(hung, "io_schedule"), "{:#?}", hung.evidence);
        assert!(
            !report
                .findings
                .iter()
                .any(|f| f.subject.key() == "pid/4242"),
            "an earlier boot's report is not this boot's"
        );
        let flapping = finding(&report, "ovs-port-flapping", "ovs-interface/ha-d489f511-9f");
        let orphan = finding(&report, "ovs-orphan-port", "ovs-interface/ha-d489f511-9f");
        assert_eq!(orphan.caused_by, vec![flapping.id.clone()]);

        let journal = report
            .sources
            .iter()
            .find(|s| s.source == "journal")
            .unwrap();
        assert_eq!(journal.state, SourceState::Collected, "{}", journal.detail);
        assert!(
            journal
                .detail
                .starts_with(&format!("{path} (--journal, read by journalctl): ")),
            "{}",
            journal.detail
        );
        assert!(
            journal.detail.contains("kubelet 1, ovs-vswitchd 18, kernel 20 of the last boot, 1 of earlier boots left out"),
            "{}",
            journal.detail
        );
        let kernel = report
            .sources
            .iter()
            .find(|s| s.source == "kernel-log")
            .unwrap();
        assert_eq!(kernel.state, SourceState::Collected, "{}", kernel.detail);
    }

    // The services' entries are in the snapshot (`collect`), MESSAGE whole; sshd's is not.
    let output = nodedoc(&[
        "collect",
        "-o",
        "-",
        "--interval",
        "0",
        "--no-fds",
        "--journal",
        file.to_str().unwrap(),
    ]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let snapshot: Snapshot = serde_json::from_slice(&output.stdout).unwrap();
    let logs: Vec<(&str, Option<&str>, usize)> = snapshot
        .service_logs
        .iter()
        .map(|l| (l.source.as_str(), l.service.as_deref(), l.entries.len()))
        .collect();
    assert_eq!(logs, vec![("journal:kubelet.service", Some("kubelet"), 1)]);
    let entry = &snapshot.service_logs[0].entries[0];
    assert!(
        entry.message.contains("PLEG is not healthy"),
        "{}",
        entry.message
    );
    assert_eq!(entry.level.as_deref(), Some("err"));
    assert_eq!(entry.fields["_SYSTEMD_UNIT"], "kubelet.service");
    assert_eq!(entry.at_unix_ms, Some(1_796_108_558_000));
}

/// A path that is not a journal, or not there, is an error after the report (exit 3) with
/// journalctl's reason; `--kernel-log` and `--ovs-log` keep the logs they name.
#[test]
fn a_journal_that_cannot_be_read_fails_and_kernel_log_wins() {
    let dir = tempfile::tempdir().unwrap();
    let from = empty_snapshot(dir.path());
    let not_journal = dir.path().join("notes.journal");
    std::fs::write(&not_journal, "not a journal\n").unwrap();
    let missing = dir.path().join("missing");
    for (path, why) in [
        (&not_journal, "journalctl could not read"),
        (&missing, "No such file or directory"),
    ] {
        let output = nodedoc(&[
            "check",
            "--from",
            &from,
            "--journal",
            path.to_str().unwrap(),
        ]);
        assert_eq!(output.status.code(), Some(3), "{}", path.display());
        assert!(String::from_utf8_lossy(&output.stdout).contains("node-7"));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!("--journal {} could not be read: ", path.display())),
            "{stderr}"
        );
        assert!(stderr.contains(why), "{stderr}");
    }

    let (_, file) = journal_dir(dir.path());
    let ovs_log = dir.path().join("ovs-vswitchd.log");
    std::fs::write(
        &ovs_log,
        "2021-04-26T08:13:19.000Z|00942|bridge|WARN|could not open network device tap7 (No such device)\n",
    )
    .unwrap();
    let dmesg = dir.path().join("dmesg.txt");
    std::fs::write(&dmesg, "[    0.000000] Linux version 6.1.0-18-amd64\n").unwrap();
    let (report, _) = check_json(&[
        "--from",
        &from,
        "--journal",
        file.to_str().unwrap(),
        "--kernel-log",
        dmesg.to_str().unwrap(),
        "--ovs-log",
        ovs_log.to_str().unwrap(),
    ]);
    assert!(
        !report.findings.iter().any(|f| f.detector == "hung-task"),
        "the kernel log named is the one judged"
    );
    let orphans: Vec<String> = report
        .findings
        .iter()
        .filter(|f| f.detector == "ovs-orphan-port")
        .map(|f| f.subject.key())
        .collect();
    assert_eq!(
        orphans,
        vec!["ovs-interface/tap7"],
        "the OVS log named is the one judged"
    );
    let journal = report
        .sources
        .iter()
        .find(|s| s.source == "journal")
        .unwrap();
    assert!(
        journal
            .detail
            .contains("ovs-vswitchd 18 (not used: ovs-vswitchd.log was read), kernel 20 (not used: --kernel-log names the kernel log)"),
        "{}",
        journal.detail
    );
}

/// A journal entry is untrusted text: a kubelet line with a terminal escape in it (stored
/// by journald in binary form) reaches the text report escaped, never raw.
#[test]
fn a_hostile_journal_entry_is_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let mut export = Vec::new();
    export_entry(
        &mut export,
        &[
            ("__REALTIME_TIMESTAMP", "1796108548000000".into()),
            ("__MONOTONIC_TIMESTAMP", "800000000".into()),
            ("_BOOT_ID", BOOT.into()),
            ("_TRANSPORT", "stdout".into()),
            ("PRIORITY", "3".into()),
            ("SYSLOG_IDENTIFIER", "kubelet".into()),
            ("_SYSTEMD_UNIT", "kubelet.service".into()),
            (
                "MESSAGE",
                "E1201 07:05:30.123456 812 kubelet.go:2394] PLEG is not healthy: \x1b[2J\x1b]0;owned\x07 pleg was last seen active 3m0.5s ago; threshold is 3m0s\nsecond line".into(),
            ),
        ],
    );
    let file = dir.path().join("system.journal");
    write_journal(&export, &file);
    let from = empty_snapshot(dir.path());
    let output = nodedoc(&[
        "check",
        "--from",
        &from,
        "--journal",
        file.to_str().unwrap(),
        "--verbose",
        "--limit",
        "0",
    ]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("kubelet-pleg-unhealthy"), "{stdout}");
    assert!(stdout.contains("\\e[2J"), "shown escaped: {stdout}");
    assert!(
        !output.stdout.iter().any(|&b| b == 0x1b || b == 0x07),
        "raw control characters reached the terminal"
    );
}
