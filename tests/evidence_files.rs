//! Evidence an SRE holds after the fact, given as files: `check --kernel-log` (and, with
//! `--from`, over a saved snapshot). Findings come from the files alone, judged on their own
//! clock; a named file that cannot be used is an error (exit 3), never silence.

mod common;

use common::{check_json, empty_snapshot, finding, nodedoc};
use nodedoc_model::{Severity, Snapshot, SourceState};

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

/// containerd's CRI error (logfmt) and kubelet's PLEG line (klog), as those daemons write
/// them (seed 003 and kubernetes#45419 wording).
const CONTAINERD_LOG: &str = "time=\"2026-12-01T07:02:28.566406368Z\" level=error msg=\"StopContainer for \\\"b32a2fd9b0a141bdc9be897b80762009665ce408cde67b93e64dc2b1c1aa2c78\\\" failed\" error=\"rpc error: code = DeadlineExceeded desc = context deadline exceeded\"\n";
const KUBELET_LOG: &str = "E1201 07:05:30.123456     812 kubelet.go:2394] \"Skipping pod synchronization\" err=\"PLEG is not healthy: pleg was last seen active 3m0.5s ago; threshold is 3m0s\"\n";

/// `--log FILE` (repeatable): each file's format and service recognised from its lines and
/// name, its entries in the snapshot's `service_logs` (live, through `collect`, and over a
/// saved snapshot); ovs-vswitchd's own log goes where the OVS detectors read it.
#[test]
fn service_logs_are_read_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let containerd = dir.path().join("copied.txt");
    // As `journalctl -u containerd` prints it: the prefix names the service.
    std::fs::write(
        &containerd,
        format!("Dec 01 07:02:28 node-1 containerd[641]: {CONTAINERD_LOG}"),
    )
    .unwrap();
    let kubelet = dir.path().join("kubelet.log");
    std::fs::write(&kubelet, KUBELET_LOG).unwrap();
    let (containerd, kubelet) = (
        containerd.display().to_string(),
        kubelet.display().to_string(),
    );

    let output = nodedoc(&[
        "collect",
        "-o",
        "-",
        "--interval",
        "0",
        "--no-fds",
        "--log",
        &containerd,
        "--log",
        &kubelet,
    ]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let snapshot: Snapshot = serde_json::from_slice(&output.stdout).unwrap();
    let logs: Vec<(&str, Option<&str>, nodedoc_model::LogFormat)> = snapshot
        .service_logs
        .iter()
        .map(|l| (l.source.as_str(), l.service.as_deref(), l.format))
        .collect();
    assert_eq!(
        logs,
        vec![
            (
                containerd.as_str(),
                Some("containerd"),
                nodedoc_model::LogFormat::Logfmt
            ),
            (
                kubelet.as_str(),
                Some("kubelet"),
                nodedoc_model::LogFormat::Klog
            ),
        ]
    );
    let entry = &snapshot.service_logs[0].entries[0];
    assert_eq!(
        entry.message,
        "StopContainer for \"b32a2fd9b0a141bdc9be897b80762009665ce408cde67b93e64dc2b1c1aa2c78\" failed"
    );
    assert_eq!(entry.level.as_deref(), Some("error"));
    assert_eq!(
        entry.fields["error"],
        "rpc error: code = DeadlineExceeded desc = context deadline exceeded"
    );
    let entry = &snapshot.service_logs[1].entries[0];
    assert_eq!(entry.level.as_deref(), Some("E"));
    assert_eq!(entry.fields["source"], "kubelet.go:2394");

    // Over a saved snapshot: the sources say what each file was read as; the OVS log gives
    // the OVS findings.
    let from = empty_snapshot(dir.path());
    let ovs_log = seed_000_ovs_log(dir.path());
    let (report, code) = check_json(&[
        "--from",
        &from,
        "--log",
        &kubelet,
        "--log",
        &ovs_log,
        "--log",
        &containerd,
    ]);
    assert_eq!(
        code, 1,
        "warnings: the lines have no year (klog) or are not recent"
    );
    // containerd's CRI error, read from the copied log by the runtime detector.
    let stop = finding(
        &report,
        "container-stop-failed",
        "container/b32a2fd9b0a141bdc9be897b80762009665ce408cde67b93e64dc2b1c1aa2c78",
    );
    assert!(
        stop.summary
            .starts_with("containerd could not stop container b32a2fd9b0a1"),
        "{}",
        stop.summary
    );
    finding(&report, "kubelet-pleg-unhealthy", "host");
    let service = report
        .sources
        .iter()
        .find(|s| s.source == "service-log")
        .unwrap();
    assert_eq!(service.state, SourceState::Collected);
    assert_eq!(
        service.detail,
        format!("{kubelet} (--log: kubelet, klog format): 1 entries")
    );
    let ovs = report
        .sources
        .iter()
        .find(|s| s.source == "ovs-log")
        .unwrap();
    assert!(
        ovs.detail
            .starts_with(&format!("{ovs_log} (--log, without the OVSDB")),
        "{}",
        ovs.detail
    );
    finding(&report, "ovs-orphan-port", "ovs-interface/ha-d489f511-9f");
}

/// A `--log` file that cannot be read is an error after the report, naming the file; the
/// others are still read.
#[test]
fn a_named_service_log_that_cannot_be_read_fails() {
    let dir = tempfile::tempdir().unwrap();
    let from = empty_snapshot(dir.path());
    let kubelet = dir.path().join("kubelet.log");
    std::fs::write(&kubelet, KUBELET_LOG).unwrap();
    let missing = dir.path().join("containerd.log");
    let output = nodedoc(&[
        "check",
        "--format",
        "json",
        "--from",
        &from,
        "--log",
        missing.to_str().unwrap(),
        "--log",
        kubelet.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(3));
    let report: nodedoc_model::Report = serde_json::from_slice(&output.stdout).unwrap();
    let states: Vec<SourceState> = report
        .sources
        .iter()
        .filter(|s| s.source == "service-log")
        .map(|s| s.state)
        .collect();
    assert_eq!(states, vec![SourceState::Failed, SourceState::Collected]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("--log {} could not be read: ", missing.display())),
        "{stderr}"
    );
    assert!(!stderr.contains("kubelet.log"), "{stderr}");
}
