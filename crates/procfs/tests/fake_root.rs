//! Scans a fake `/proc` laid out in a temporary directory: the offline path detectors' tests
//! rely on, including hostile contents.

use nodedoc_model::{FdKind, Limit, NetlinkProtocol, SocketResolution, TaskState};
use nodedoc_procfs::testing::{FakeProc, FakeProcess};
use nodedoc_procfs::{scan, ProcRoot, ResolutionMode, ScanOptions};

#[test]
fn a_fake_root_gives_processes_censuses_and_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let mut fake = FakeProc::new(dir.path());
    fake.netlink_socket(1001, 16, 812)
        .netlink_socket(1002, 16, 812)
        .netlink_socket(1003, 0, 812);
    let mut ovs = FakeProcess::new(812, "ovs-vswitchd");
    ovs.nofile = ("8".into(), "8".into());
    ovs.fds = [
        "socket:[1001]",
        "socket:[1002]",
        "socket:[1003]",
        "socket:[9999]",
        "/dev/null",
        "pipe:[77]",
        "anon_inode:[eventpoll]",
        "net:[4026532000]",
    ]
    .map(String::from)
    .to_vec();
    fake.process(&ovs).unwrap();
    let mut zombie = FakeProcess::new(900, "a) R 1 (b");
    zombie.state = 'Z';
    zombie.ppid = 812;
    fake.process(&zombie).unwrap();
    // A process whose limits file is garbage: read, with a gap.
    let mut bad = FakeProcess::new(902, "bad");
    bad.nofile = ("lots".into(), String::new());
    fake.process(&bad).unwrap();
    // A pid directory without files: the process exited between listing and reading.
    std::fs::create_dir_all(dir.path().join("901")).unwrap();
    // Not a pid: ignored.
    std::fs::create_dir_all(dir.path().join("self")).unwrap();

    let root = ProcRoot::at(fake.root()).unwrap();
    let options = ScanOptions {
        threads: 2,
        resolution: ResolutionMode::Auto,
        ..ScanOptions::default()
    };
    let result = scan(&root, &options).unwrap();
    let pids: Vec<i32> = result.processes.iter().map(|p| p.pid).collect();
    assert_eq!(pids, vec![812, 900, 902]);
    assert_eq!(result.vanished, 1);

    let ovs = &result.processes[0];
    assert_eq!(ovs.comm, "ovs-vswitchd");
    assert_eq!(ovs.cmdline, vec!["ovs-vswitchd"]);
    assert_eq!(ovs.nofile.unwrap().soft, Limit::Finite(8));
    assert_eq!(ovs.namespaces.net, Some(4026531840));
    let fds = ovs.fds.as_ref().unwrap();
    assert_eq!(fds.total, 8);
    assert_eq!(fds.socket_resolution, SocketResolution::ProcNetTables);
    let generic = FdKind::NetlinkSocket {
        protocol: NetlinkProtocol::GENERIC,
    };
    assert_eq!(fds.count(&generic), 2);
    assert_eq!(
        fds.count(&FdKind::NetlinkSocket {
            protocol: NetlinkProtocol::ROUTE
        }),
        1
    );
    assert_eq!(fds.count(&FdKind::UnresolvedSocket), 1);
    assert_eq!(fds.count(&FdKind::CharDevice), 1);
    assert_eq!(
        fds.count(&FdKind::AnonInode {
            name: "eventpoll".into()
        }),
        1
    );
    assert_eq!(fds.kinds[0].count, 2, "biggest kind first");
    assert_eq!(fds.namespace_fds.len(), 1);
    assert_eq!(fds.namespace_fds[0].inode, 4026532000);
    assert_eq!(
        fds.stdin,
        Some(FdKind::NetlinkSocket {
            protocol: NetlinkProtocol::GENERIC
        })
    );

    let zombie = &result.processes[1];
    assert_eq!(zombie.comm, "a) R 1 (b");
    assert_eq!(zombie.state, TaskState::Zombie);
    assert!(zombie.fds.is_none(), "zombies have no fds to count");

    let gaps = result.gaps.into_vec();
    assert!(
        gaps.iter()
            .any(|g| g.what == "/proc/PID/limits" && g.examples == vec!["902"]),
        "{gaps:?}"
    );
    assert!(
        gaps.iter().any(|g| g.what == "/proc/PID" && g.count == 1),
        "{gaps:?}"
    );
}

/// Regression (issue 8): a thread count far beyond what the system allows (`--threads
/// 50000`) panicked in `thread::scope` when a spawn failed. The scan uses no more threads
/// than there are processes, and goes on with fewer when the system refuses one.
#[test]
fn an_absurd_thread_count_scans_every_process_without_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let mut fake = FakeProc::new(dir.path());
    for pid in [10, 11, 12] {
        fake.process(&FakeProcess::new(pid, "worker")).unwrap();
    }
    let root = ProcRoot::at(fake.root()).unwrap();
    let options = ScanOptions {
        threads: usize::MAX,
        fd_census: false,
        ..ScanOptions::default()
    };
    let result = scan(&root, &options).unwrap();
    let pids: Vec<i32> = result.processes.iter().map(|p| p.pid).collect();
    assert_eq!(pids, vec![10, 11, 12]);
    assert!(result.gaps.is_empty());
}
