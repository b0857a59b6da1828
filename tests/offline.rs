//! The whole pipeline without a live host: a fake `/proc` scanned by the real collector, then
//! the real detectors. Seed 000's shape at a small scale: ovs-vswitchd at its fd limit with
//! nearly all of it NETLINK_GENERIC, and seed 001's zombie left behind by its parent.

use nodedoc_model::{HostInfo, Severity, Snapshot};
use nodedoc_procfs::testing::{FakeProc, FakeProcess};
use nodedoc_procfs::{scan, ProcRoot, ScanOptions};

#[test]
fn a_fake_root_snapshot_gives_seed_findings_offline() {
    let dir = tempfile::tempdir().unwrap();
    let mut fake = FakeProc::new(dir.path());
    let mut ovs = FakeProcess::new(812, "ovs-vswitchd");
    ovs.nofile = ("100".into(), "100".into());
    ovs.fds = vec!["/dev/null".into(), "/dev/null".into(), "/dev/null".into()];
    for inode in 5000..5097u64 {
        fake.netlink_socket(inode, 16, 812);
        ovs.fds.push(format!("socket:[{inode}]"));
    }
    fake.process(&FakeProcess::new(1, "init")).unwrap();
    fake.process(&ovs).unwrap();
    let mut calico = FakeProcess::new(4300, "calico");
    calico.state = 'Z';
    calico.ppid = 4200;
    fake.process(&FakeProcess::new(4200, "containerd-shim"))
        .unwrap();
    fake.process(&calico).unwrap();

    let root = ProcRoot::at(fake.root()).unwrap();
    let scanned = scan(&root, &ScanOptions::default()).unwrap();
    let mut snapshot = Snapshot::new(HostInfo {
        hostname: "node-1".into(),
        kernel_release: "3.10.0-693.el7.x86_64".into(),
        machine: "x86_64".into(),
        uptime_us: 100_000_000,
        clock_ticks_per_sec: 100,
        collector_version: "test".into(),
        ..HostInfo::default()
    });
    snapshot.processes = scanned.processes;

    let findings = nodedoc_detectors::run(&snapshot, &Default::default());
    let fd = findings
        .iter()
        .find(|f| f.detector == "fd-exhaustion")
        .expect("fd-exhaustion");
    assert_eq!(fd.pid, Some(812));
    assert_eq!(fd.severity, Severity::Critical);
    assert!(
        fd.evidence
            .iter()
            .any(|e| e.fact.starts_with("97 NETLINK_GENERIC netlink sockets")),
        "{:#?}",
        fd.evidence
    );
    assert!(
        fd.evidence
            .iter()
            .any(|e| e.fact.contains("/proc/PID/net tables")),
        "the fallback path is named"
    );
    let zombies = findings
        .iter()
        .find(|f| f.detector == "zombie-processes")
        .expect("zombies");
    assert_eq!(zombies.pid, Some(4200));
    assert!(
        zombies.summary.contains("1 zombie (calico)"),
        "{}",
        zombies.summary
    );
}
