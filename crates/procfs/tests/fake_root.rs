//! Scans a fake `/proc` laid out in a temporary directory: the offline path detectors' tests
//! rely on, including hostile contents.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use nodedoc_model::{FdKind, Limit, NetlinkProtocol, SocketResolution, TaskState};
use nodedoc_procfs::{scan, ProcRoot, ResolutionMode, ScanOptions};

struct FakeProcess<'a> {
    pid: i32,
    comm: &'a str,
    state: char,
    ppid: i32,
    nofile: &'a str,
    fds: &'a [&'a str],
}

fn write_process(root: &Path, p: &FakeProcess<'_>) {
    let dir = root.join(p.pid.to_string());
    fs::create_dir_all(dir.join("fd")).unwrap();
    fs::create_dir_all(dir.join("ns")).unwrap();
    fs::create_dir_all(dir.join("net")).unwrap();
    fs::write(
        dir.join("stat"),
        format!(
            "{} ({}) {} {} {} 0 0 -1 4194560 0 0 0 0 70 30 0 0 20 0 4 0 5000 0 0\n",
            p.pid, p.comm, p.state, p.ppid, p.pid
        ),
    )
    .unwrap();
    fs::write(dir.join("status"), "Name:\tx\nUid:\t0\t0\t0\t0\n").unwrap();
    fs::write(
        dir.join("limits"),
        format!(
            "Limit  Soft Limit  Hard Limit  Units\nMax open files            {}    files\n",
            p.nofile
        ),
    )
    .unwrap();
    fs::write(dir.join("cmdline"), format!("{}\0--flag\0", p.comm)).unwrap();
    fs::write(dir.join("cgroup"), "0::/\n").unwrap();
    fs::write(dir.join("wchan"), "do_select").unwrap();
    symlink("pid:[4026531836]", dir.join("ns/pid")).unwrap();
    symlink("net:[4026531840]", dir.join("ns/net")).unwrap();
    symlink("mnt:[4026531841]", dir.join("ns/mnt")).unwrap();
    for (n, target) in p.fds.iter().enumerate() {
        symlink(target, dir.join("fd").join(n.to_string())).unwrap();
    }
    fs::write(
        dir.join("net/netlink"),
        "sk               Eth Pid        Groups   Rmem     Wmem     Dump  Locks    Drops    Inode\n\
         ffff000000000001 16  812        00000000 0        0        0     2        0        1001\n\
         ffff000000000002 16  812        00000000 0        0        0     2        0        1002\n\
         ffff000000000003 0   812        00000000 0        0        0     2        0        1003\n",
    )
    .unwrap();
}

#[test]
fn a_fake_root_gives_processes_censuses_and_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let root_path = dir.path();
    write_process(
        root_path,
        &FakeProcess {
            pid: 812,
            comm: "ovs-vswitchd",
            state: 'S',
            ppid: 1,
            nofile: "4    4",
            fds: &[
                "socket:[1001]",
                "socket:[1002]",
                "socket:[1003]",
                "socket:[9999]",
                "/dev/null",
                "pipe:[77]",
                "anon_inode:[eventpoll]",
                "net:[4026532000]",
            ],
        },
    );
    write_process(
        root_path,
        &FakeProcess {
            pid: 900,
            comm: "a) R 1 (b",
            state: 'Z',
            ppid: 812,
            nofile: "1024 4096",
            fds: &[],
        },
    );
    // A pid directory without files: the process exited between listing and reading.
    fs::create_dir_all(root_path.join("901")).unwrap();
    // Not a pid: ignored.
    fs::create_dir_all(root_path.join("self")).unwrap();
    // A process whose limits file is garbage: read, with a gap.
    write_process(
        root_path,
        &FakeProcess {
            pid: 902,
            comm: "bad",
            state: 'S',
            ppid: 1,
            nofile: "lots",
            fds: &[],
        },
    );

    let root = ProcRoot::at(root_path).unwrap();
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
    assert_eq!(ovs.cmdline, vec!["ovs-vswitchd", "--flag"]);
    assert_eq!(ovs.nofile.unwrap().soft, Limit::Finite(4));
    assert_eq!(ovs.namespaces.net, Some(4026531840));
    let fds = ovs.fds.as_ref().unwrap();
    assert_eq!(fds.total, 8);
    assert_eq!(fds.socket_resolution, SocketResolution::ProcNetTables);
    assert_eq!(
        fds.count(&FdKind::NetlinkSocket {
            protocol: NetlinkProtocol::GENERIC
        }),
        2
    );
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
