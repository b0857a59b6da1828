//! Evidence an SRE holds after the fact, given as files: `check --kernel-log` (and, with
//! `--from`, over a saved snapshot). Findings come from the files alone, judged on their own
//! clock; a named file that cannot be used is an error (exit 3), never silence.

mod common;

use common::{check_json, finding, nodedoc};
use nodedoc_model::{HostInfo, Severity, Snapshot, SourceState};

/// A snapshot of a host with nothing wrong, to analyse the files against (`--from`), so the
/// findings are the files' alone whatever runs on this machine.
fn empty_snapshot(dir: &std::path::Path) -> String {
    let snapshot = Snapshot::new(HostInfo {
        hostname: "node-7".into(),
        kernel_release: "6.1.0-18-amd64".into(),
        uptime_us: 90_000_000_000,
        clock_ticks_per_sec: 100,
        collector_version: "test".into(),
        ..HostInfo::default()
    });
    let path = dir.join("empty.json");
    nodedoc_model::write_snapshot(&path, &snapshot).unwrap();
    path.display().to_string()
}

/// A recorded real log of the corpus, without its header.
fn corpus_log(name: &str) -> String {
    let path = format!(
        "{}/crates/kmsg/tests/fixtures/hung_task/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// `journalctl -k` output of a node whose NFS server went away (linux-nfs, 5.11; recorded in
/// the corpus): the tasks are hung-task findings from the file alone, with their class.
#[test]
fn a_kernel_log_file_gives_hung_tasks_from_the_log_alone() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("dmesg-T.txt");
    std::fs::write(
        &log,
        corpus_log("linux-nfs-mount.nfs-dead-server-dmesg-T-5.11.txt"),
    )
    .unwrap();
    let from = empty_snapshot(dir.path());
    let log = log.display().to_string();
    let (report, code) = check_json(&["--from", &from, "--kernel-log", &log]);
    assert_eq!(code, 1, "the worst finding is a warning");
    let source = report
        .sources
        .iter()
        .find(|s| s.source == "kernel-log")
        .unwrap();
    assert_eq!(source.state, SourceState::Collected);
    assert!(
        source.detail.starts_with(&format!("{log} (dmesg -T")),
        "{}",
        source.detail
    );
    for pid in [13903, 13910] {
        let f = finding(&report, "hung-task", &format!("pid/{pid}"));
        assert_eq!(f.severity, Severity::Warning);
        assert!(
            f.summary
                .ends_with("a network-filesystem client waiting for its server"),
            "{}",
            f.summary
        );
        assert!(f
            .evidence
            .iter()
            .any(|e| e.command.as_deref().is_some_and(|c| c.ends_with(&log))));
    }
}

/// The log of seed 001's node, saved while the veth was still stuck, analysed days later
/// on a host with another kernel: still waiting at the end of the log (critical), and the
/// causes weighed for the log's kernel.
#[test]
fn a_kernel_log_file_is_judged_on_its_own_clock() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("kern.log");
    let mut text = String::from(
        "Jan 10 09:00:00 node-1 kernel: [    0.000000] Linux version 3.10.0-693.el7.x86_64 (mockbuild@x86-038.build.eng.bos.redhat.com)\n\
         Jan 10 09:00:01 node-1 systemd[1]: Started Journal Service.\n",
    );
    for i in 0..6 {
        text.push_str(&format!(
            "Jan 10 10:00:{:02} node-1 kernel: [ {}.000000] unregister_netdevice: waiting for cli-veth to become free. Usage count = 1\n",
            i * 10,
            3600 + i * 10
        ));
    }
    std::fs::write(&log, text).unwrap();
    let from = empty_snapshot(dir.path());
    let (report, code) = check_json(&["--from", &from, "--kernel-log", log.to_str().unwrap()]);
    assert_eq!(code, 2);
    let f = finding(&report, "netdev-unregister-stuck", "netdev/cli-veth");
    assert_eq!(f.severity, Severity::Critical);
    assert!(
        f.summary.contains("still waiting at the end of the log"),
        "{}",
        f.summary
    );
    assert!(
        f.evidence.iter().any(|e| e.fact.contains("ee60ad219f5c")),
        "{:#?}",
        f.evidence
    );
}

/// Naming a kernel log that cannot be used is an error after the report: a missing file, a
/// directory, a FIFO (never opened: it would block).
#[test]
fn a_named_kernel_log_that_cannot_be_read_fails() {
    let dir = tempfile::tempdir().unwrap();
    let from = empty_snapshot(dir.path());
    let fifo = dir.path().join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let missing = dir.path().join("missing.log");
    for path in [&missing, &dir.path().to_path_buf(), &fifo] {
        let path = path.to_str().unwrap();
        let output = nodedoc(&["check", "--from", &from, "--kernel-log", path]);
        assert_eq!(output.status.code(), Some(3), "{path}");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            stdout.contains("node-7"),
            "the report comes first: {stdout}"
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!("--kernel-log {path} could not be read: ")),
            "{stderr}"
        );
    }
    // A live check too.
    let output = nodedoc(&[
        "check",
        "--interval",
        "0",
        "--no-fds",
        "--kernel-log",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(3));
}

/// A live check with `--kernel-log`: the file replaces this host's kernel log.
#[test]
fn a_live_check_reads_the_named_kernel_log_instead_of_this_hosts() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("dmesg.txt");
    std::fs::write(&log, corpus_log("zfs-pr2828-nfsd-nfs4_lock_state-3.14.txt")).unwrap();
    let (report, _) = check_json(&[
        "--interval",
        "0",
        "--no-fds",
        "--kernel-log",
        log.to_str().unwrap(),
    ]);
    let source = report
        .sources
        .iter()
        .find(|s| s.source == "kernel-log")
        .unwrap();
    assert!(
        source.detail.starts_with(log.to_str().unwrap()),
        "{}",
        source.detail
    );
    let hung: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.detector == "hung-task" && f.summary.contains("the kernel reported"))
        .collect();
    assert!(!hung.is_empty());
    for f in hung {
        assert!(
            f.explanation.contains("read from a file"),
            "{}",
            f.explanation
        );
        assert!(
            f.explanation.contains("not an NFS client"),
            "{}",
            f.explanation
        );
    }
}

/// Seed 000's ovs-vswitchd.log, copied off the node.
fn seed_000_ovs_log(dir: &std::path::Path) -> String {
    let path = dir.join("ovs-vswitchd.log");
    std::fs::copy(
        format!(
            "{}/crates/ovs/tests/fixtures/seed-000-ovs-vswitchd.log",
            env!("CARGO_MANIFEST_DIR")
        ),
        &path,
    )
    .unwrap();
    path.display().to_string()
}

/// Regression (issue 10): on a host without Open vSwitch, `check --ovs-log FILE` dropped the
/// file without a word — "no problems found". The log alone now gives the flapping port and
/// the port it left without a device, over a saved snapshot and live.
#[test]
fn an_ovs_log_is_read_without_an_ovsdb() {
    let dir = tempfile::tempdir().unwrap();
    let log = seed_000_ovs_log(dir.path());
    let from = empty_snapshot(dir.path());
    let (report, code) = check_json(&["--from", &from, "--ovs-log", &log]);
    assert_eq!(code, 1);
    let source = report
        .sources
        .iter()
        .find(|s| s.source == "ovs-log")
        .unwrap();
    assert_eq!(source.state, SourceState::Collected, "{}", source.detail);
    let flapping = finding(&report, "ovs-port-flapping", "ovs-interface/ha-d489f511-9f");
    let orphan = finding(&report, "ovs-orphan-port", "ovs-interface/ha-d489f511-9f");
    assert_eq!(orphan.caused_by, vec![flapping.id.clone()]);
    assert!(
        orphan.summary.contains("the OVSDB was not read"),
        "{}",
        orphan.summary
    );

    // Live, with an OVSDB named that is not there: the OVSDB is an error (exit 3), and the
    // log is still read and judged.
    let missing = format!("unix:{}", dir.path().join("db.sock").display());
    let output = nodedoc(&[
        "check",
        "--format",
        "json",
        "--interval",
        "0",
        "--no-fds",
        "--ovsdb",
        &missing,
        "--ovs-log",
        &log,
    ]);
    assert_eq!(output.status.code(), Some(3));
    let report: nodedoc_model::Report = serde_json::from_slice(&output.stdout).unwrap();
    finding(&report, "ovs-orphan-port", "ovs-interface/ha-d489f511-9f");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--ovsdb"), "{stderr}");
    assert!(!stderr.contains("--ovs-log"), "the log was read: {stderr}");
}

/// `--ovs-log` over a snapshot that cannot be read (missing, a directory) is an error after
/// the report, like any named input.
#[test]
fn a_named_ovs_log_over_a_snapshot_that_cannot_be_read_fails() {
    let dir = tempfile::tempdir().unwrap();
    let from = empty_snapshot(dir.path());
    let missing = dir.path().join("missing.log");
    for path in [&missing, &dir.path().to_path_buf()] {
        let path = path.to_str().unwrap();
        let output = nodedoc(&["check", "--from", &from, "--ovs-log", path]);
        assert_eq!(output.status.code(), Some(3), "{path}");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            stdout.contains("node-7"),
            "the report comes first: {stdout}"
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!("--ovs-log {path} could not be read: ")),
            "{stderr}"
        );
    }
}

/// An interface name in a copied log is untrusted text: the text report shows it escaped,
/// never as raw control characters, and JSON keeps it as it was.
#[test]
fn a_hostile_interface_name_in_an_ovs_log_is_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let from = empty_snapshot(dir.path());
    let log = dir.path().join("ovs-vswitchd.log");
    std::fs::write(
        &log,
        "2021-04-26T08:13:19.000Z|00942|bridge|WARN|could not open network device tap\x1b[2Jx (No such device)\n",
    )
    .unwrap();
    let log = log.to_str().unwrap();
    let (report, code) = check_json(&["--from", &from, "--ovs-log", log]);
    assert_eq!(code, 1);
    let orphan = finding(&report, "ovs-orphan-port", "ovs-interface/tap\x1b[2Jx");
    assert!(
        orphan.fix.contains("(no command given: "),
        "a name that cannot be pasted gives no command: {}",
        orphan.fix
    );
    let output = nodedoc(&["check", "--from", &from, "--ovs-log", log, "--verbose"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        !output.stdout.contains(&0x1b),
        "raw ESC reached the terminal"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("OVS interface tap\\e[2Jx"), "{stdout}");
}
