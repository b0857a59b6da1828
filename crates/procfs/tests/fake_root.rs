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

/// Seed of issue 8: during 57,000 forks a task passing through `kernel_clone` was reported as a
/// stuck hung task with a `do_wait` stack. A task in D at the first reading gets its stack read
/// only when the second reading finds the same process in D without having run, and keeps it
/// only if it is still so once the stack is read.
#[test]
fn a_stack_is_read_only_for_the_same_wait_at_both_readings() {
    use nodedoc_model::BlockedCheck;
    use nodedoc_procfs::testing::resample_between;
    use nodedoc_procfs::{Gaps, ReadStep};

    let dir = tempfile::tempdir().unwrap();
    let mut fake = FakeProc::new(dir.path());
    let vfork = |pid: i32| {
        let mut p = FakeProcess::new(pid, "forker");
        p.state = 'D';
        p.wchan = "kernel_clone".into();
        p.stack = "[<0>] kernel_clone+0x1d3/0x400\n[<0>] __do_sys_vfork+0x66/0x90\n".into();
        p.context_switches = 500;
        p
    };
    // 10: stuck. 11: its pid reused by a new process in D. 12: ran between the readings (a
    // busy forker, in a new vfork each time). 13: leaves D while its stack is read. 14: its
    // wchan moves while its stack is read. 15: a stack that does not hold its wchan.
    for pid in 10..=15 {
        fake.process(&vfork(pid)).unwrap();
    }
    let root = ProcRoot::at(fake.root()).unwrap();
    let options = ScanOptions {
        // As `nodedoc check` does: no stack for a task in D during the scan.
        wants_kernel_detail: &|p: &nodedoc_model::Process| {
            p.state != TaskState::UninterruptibleSleep
        },
        ..ScanOptions::default()
    };
    let mut processes = scan(&root, &options).unwrap().processes;
    assert!(processes.iter().all(|p| p.kernel_stack.is_none()));
    assert_eq!(processes[0].context_switches, Some(500));

    let mut reused = vfork(11);
    reused.start_time_ticks += 1;
    fake.update(&reused).unwrap();
    let mut ran = vfork(12);
    ran.context_switches = 650;
    fake.update(&ran).unwrap();
    let mut odd = vfork(15);
    odd.stack = "[<0>] do_wait+0x1d7/0x250\n[<0>] kernel_wait4+0x89/0x140\n".into();
    fake.update(&odd).unwrap();

    let mut gaps = Gaps::new();
    let samples = resample_between(&root, &mut processes, &mut gaps, &mut |pid, step| {
        if step != ReadStep::AfterStack {
            return;
        }
        match pid {
            13 => {
                let mut left = vfork(13);
                left.state = 'S';
                left.wchan = "do_wait".into();
                left.context_switches = 501;
                fake.update(&left).unwrap();
            }
            14 => {
                let mut moved = vfork(14);
                moved.wchan = "do_wait".into();
                fake.update(&moved).unwrap();
            }
            _ => {}
        }
    });
    let sample = |pid: i32| samples.iter().find(|s| s.pid == pid);
    let process = |pid: i32| processes.iter().find(|p| p.pid == pid).unwrap();

    assert_eq!(
        sample(10).unwrap().blocked,
        Some(BlockedCheck::Confirmed {
            context_switches: Some(500)
        })
    );
    let stack = process(10)
        .kernel_stack
        .as_ref()
        .expect("the stuck task's stack");
    assert_eq!(stack[0].function, "kernel_clone");
    assert_eq!(process(10).wchan.as_deref(), Some("kernel_clone"));

    assert!(
        sample(11).is_none(),
        "another process now: no second reading"
    );
    assert!(process(11).kernel_stack.is_none());

    assert_eq!(
        sample(12).unwrap().blocked,
        Some(BlockedCheck::RanBetween {
            first: 500,
            second: 650
        })
    );
    assert!(process(12).kernel_stack.is_none(), "not even read");

    for (pid, why) in [
        (13, "it left D while its stack was read (now S)"),
        (
            14,
            "its wchan changed while its stack was read (kernel_clone → do_wait)",
        ),
        (
            15,
            "its stack (from do_wait) does not hold its wchan kernel_clone",
        ),
    ] {
        assert_eq!(
            sample(pid).unwrap().blocked,
            Some(BlockedCheck::StackDiscarded { why: why.into() }),
            "pid {pid}"
        );
        assert!(process(pid).kernel_stack.is_none(), "pid {pid}: discarded");
    }
    let discarded = gaps
        .into_vec()
        .into_iter()
        .find(|g| g.what == "/proc/PID/stack")
        .expect("the discarded stacks are said");
    assert_eq!(discarded.count, 3);
}

/// Regression (issue 10): kernel threads in D were never read a second time, so a stuck
/// `jbd2` or `kworker` was not a hung task. They are confirmed and their stack read like any
/// task's.
#[test]
fn a_kernel_thread_in_d_is_confirmed_and_its_stack_read() {
    use nodedoc_model::BlockedCheck;
    let dir = tempfile::tempdir().unwrap();
    let mut fake = FakeProc::new(dir.path());
    let mut jbd2 = FakeProcess::new(245, "jbd2/sda1-8");
    jbd2.ppid = 2;
    jbd2.kernel_thread = true;
    jbd2.state = 'D';
    jbd2.wchan = "jbd2_journal_commit_transaction".into();
    jbd2.stack = "[<0>] jbd2_journal_commit_transaction+0x1d8a/0x1fc0\n[<0>] kjournald2+0xbd/0x250\n[<0>] kthread+0xd2/0xf0\n".into();
    fake.process(&jbd2).unwrap();
    let root = ProcRoot::at(fake.root()).unwrap();
    let mut processes = scan(&root, &ScanOptions::default()).unwrap().processes;
    assert!(processes[0].kernel_thread);
    let mut gaps = nodedoc_procfs::Gaps::new();
    let samples = nodedoc_procfs::resample(&root, &mut processes, &mut gaps);
    assert_eq!(
        samples[0].blocked,
        Some(BlockedCheck::Confirmed {
            context_switches: Some(10)
        })
    );
    let stack = processes[0].kernel_stack.as_ref().expect("its stack");
    assert_eq!(stack[0].function, "jbd2_journal_commit_transaction");
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
