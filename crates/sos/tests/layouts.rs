//! Report layouts the test machine's sos 4.0 does not make: a newer sos that saves
//! `/proc/PID/{limits,stack}` and whose timeout killed lsof (empty file, return code 124 in the
//! manifest), and an older report without a manifest. Their rows are in the real formats of
//! tests/sos.rs's reports; the layout is sos's (`sos_commands/…`, `proc/PID/…`).

use std::path::Path;

use nodedoc_model::{FdKind, Limit, NetlinkProtocol, SourceState, TaskState};

const SCHED: &str = "\
F S   UID   PID  PPID  PGID   SID CLS PRI ADDR    SZ WCHAN                                 STARTED TT           TIME CMD
4 S     0     1     0     0     0  TS  29    - 13075 -                    Tue Dec  1 05:17:58 2026 ?        00:00:32 /sbin/init
5 S   993   812     1   812   812  TS  19    - 99999 do_poll              Tue Dec  1 05:20:00 2026 ?        01:02:03 ovs-vswitchd unix:/var/run/openvswitch/db.sock --pidfile --detach
0 D     0   900     1   900   900  TS  19    -  6518 wait_for_vfork_done  Tue Dec  1 06:00:00 2026 ?        00:00:00 /usr/bin/stuck
0 D     0  4100     1  4100  4100  TS  19    -  6518 io_schedule          Tue Dec  1 06:10:00 2026 ?        00:00:00 /usr/bin/late
";
const GROUP: &str = "\
  PID  PPID USER     GROUP      LWP NLWP START COMMAND         CGROUP
    1     0 root     root         1    1 05:17 init            -
  812     1 openvsw+ openvsw+   812   22 05:20 ovs-vswitchd    0::/system.slice/ovs-vswitchd.service
  900     1 root     root       900    1 06:00 stuck           -
";
const LIMITS: &str = "\
Limit                     Soft Limit           Hard Limit           Units
Max open files            102400               102400               files
";
const STACK: &str = "[<0>] wait_for_vfork_done+0x2d/0x50\n[<0>] kernel_clone+0x1b9/0x3d0\n[<0>] __do_sys_vfork+0x52/0x70\n";

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn report(lsof: &str, manifest: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "version.txt", "sosreport: 4.12.0\n");
    write(
        root,
        "sos_commands/process/ps_axo_flags_state_uid_pid_ppid_pgid_sid_cls_pri_addr_sz_wchan_20_lstart_tty_time_cmd",
        SCHED,
    );
    write(
        root,
        "sos_commands/process/ps_axo_pid_ppid_user_group_lwp_nlwp_start_time_comm_cgroup",
        GROUP,
    );
    write(root, "sos_commands/process/lsof_M_-n_-l_-c", lsof);
    write(
        root,
        "sos_commands/date/date",
        "Tue Dec  1 06:51:17 UTC 2026\n",
    );
    write(
        root,
        "sos_commands/date/date_--utc",
        "Tue Dec  1 06:51:17 UTC 2026\n",
    );
    write(root, "sos_commands/kernel/uname_-a", "Linux node-1 5.14.0-427.el9.x86_64 #1 SMP PREEMPT_DYNAMIC Fri May 3 2024 x86_64 x86_64 x86_64 GNU/Linux\n");
    write(
        root,
        "proc/stat",
        "cpu  1 2 3\ncpu0 1 2 3\ncpu1 1 2 3\nbtime 1796102278\n",
    );
    write(root, "proc/812/limits", LIMITS);
    write(root, "proc/900/stack", STACK);
    if let Some(manifest) = manifest {
        write(root, "sos_reports/manifest.json", manifest);
    }
    dir
}

const MANIFEST_TIMEOUT: &str = r#"{"version": "4.12.0", "components": {"report": {"plugins": {"process": {"commands": [
  {"exec": "lsof +M -n -l -c ''", "filepath": "sos_commands/process/lsof_M_-n_-l_-c", "return_code": 124, "run_time": 15.0}
]}}}}}"#;

#[test]
fn a_newer_report_gives_limits_and_stacks_and_says_lsof_was_killed() {
    let dir = report("", Some(MANIFEST_TIMEOUT));
    let snapshot = nodedoc_sos::read_sosreport(dir.path(), Default::default()).unwrap();
    assert_eq!(snapshot.host.hostname, "node-1");
    assert_eq!(snapshot.host.kernel_release, "5.14.0-427.el9.x86_64");
    assert_eq!(snapshot.host.machine, "x86_64");
    assert_eq!(snapshot.host.online_cpus, 2);
    let ovs = snapshot.process(812).unwrap();
    assert_eq!(ovs.comm, "ovs-vswitchd");
    assert_eq!(ovs.threads, 22);
    assert_eq!(ovs.uid, Some(993));
    assert_eq!(ovs.nofile.unwrap().soft, Limit::Finite(102_400));
    assert_eq!(ovs.fds, None, "lsof printed nothing");
    // Started 05:20:00, collected 06:51:17: 91 min 17 s.
    assert_eq!(
        snapshot.process_age_secs(ovs).map(|a| a.round()),
        Some(5477.0)
    );
    let stuck = snapshot.process(900).unwrap();
    assert_eq!(stuck.state, TaskState::UninterruptibleSleep);
    assert_eq!(
        stuck.kernel_stack.as_ref().unwrap()[0].function,
        "wait_for_vfork_done"
    );
    let census = snapshot.source("fd-census").unwrap();
    assert_eq!(census.state, SourceState::Failed);
    assert!(
        census.detail.contains("return code 124"),
        "{}",
        census.detail
    );
    assert!(snapshot.gaps.iter().any(|g| g
        .what
        .starts_with("sos_commands/process/lsof_M_-n_-l_-c (fd-exhaustion")
        && g.reason.contains("timeout")));
    // The stack was there for 900; 4100 is beyond the pids sos saved files for.
    let stacks = snapshot
        .gaps
        .iter()
        .find(|g| g.what.contains("/proc/PID/stack"))
        .unwrap();
    assert_eq!(stacks.examples, vec!["4100"]);
    assert!(
        stacks.reason.contains("first 2,048 pids only"),
        "{}",
        stacks.reason
    );
}

#[test]
fn lsof_rows_of_a_report_without_a_manifest_make_the_census() {
    let lsof = "\
COMMAND     PID     USER   FD      TYPE             DEVICE  SIZE/OFF     NODE NAME
ovs-vswit   812      993    3u  netlink                          0t0 19980589 GENERIC
ovs-vswit   812      993    4u  netlink                          0t0 19980590 GENERIC
ovs-vswit   812      993    5u  netlink                          0t0 19980591 ROUTE
ovs-vswit   812      993    6u     unix 0x00000000c3474718       0t0 19871238 type=STREAM (CONNECTED)
";
    let dir = report(lsof, None);
    let snapshot = nodedoc_sos::read_sosreport(dir.path(), Default::default()).unwrap();
    let fds = snapshot.process(812).unwrap().fds.clone().unwrap();
    assert_eq!(fds.total, 4);
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
    assert_eq!(
        snapshot.source("fd-census").unwrap().state,
        SourceState::Collected
    );
    // No manifest: the second reading is missing (no ps auxwww) and nothing is invented.
    assert!(snapshot.resample.is_none());
}
