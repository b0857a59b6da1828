//! A sosreport is untrusted input (it comes from a sick node, through a support ticket): its
//! files are mutated at random here — cut short, bytes overwritten, hostile lines added, huge
//! numbers — and reading the report must give a snapshot or a clear error, never a panic, and
//! every detector must run over what it gives.

use std::path::Path;

use proptest::prelude::*;

/// (path in the report, real content) — the formats of sos 4.0's files (see tests/layouts.rs
/// and tests/sos.rs, which run the real sos).
const FILES: &[(&str, &str)] = &[
    ("version.txt", "sosreport: 4.0\n"),
    (
        "sos_commands/process/ps_axo_flags_state_uid_pid_ppid_pgid_sid_cls_pri_addr_sz_wchan_20_lstart_tty_time_cmd",
        "\
F S   UID   PID  PPID  PGID   SID CLS PRI ADDR    SZ WCHAN                                 STARTED TT           TIME CMD
4 S     0     1     0     0     0  TS  29    - 13075 -                    Tue Dec  1 05:17:58 2026 ?        00:00:32 /sbin/init
5 S   993   812     1   812   812  TS  19    - 99999 do_poll              Tue Dec  1 05:20:00 2026 ?        01:02:03 ovs-vswitchd unix:/var/run/openvswitch/db.sock
0 D     0   900     1   900   900  TS  19    -  6518 wait_for_vfork_done  Tue Dec  1 06:00:00 2026 ?        00:00:00 /usr/bin/stuck
1 Z     0   901   900   900   900  TS  19    -     0 -                    Tue Dec  1 06:00:01 2026 ?        00:00:00 [calico] <defunct>
",
    ),
    (
        "sos_commands/process/ps_axo_pid_ppid_user_group_lwp_nlwp_start_time_comm_cgroup",
        "\
  PID  PPID USER     GROUP      LWP NLWP START COMMAND         CGROUP
    1     0 root     root         1    1 05:17 init            -
  812     1 openvsw+ openvsw+   812   22 05:20 ovs-vswitchd    0::/system.slice/ovs-vswitchd.service
  900     1 root     root       900    1 06:00 stuck           0::/kubepods/besteffort/poda548c954-93c6-4845-b26d-89d63b4e1fd7/b32a2fd9b0a141bdc9be897b80762009665ce408cde67b93e64dc2b1c1aa2c78
",
    ),
    (
        "sos_commands/process/lsof_-b_M_-n_-l_-c",
        "\
COMMAND     PID     USER   FD      TYPE             DEVICE  SIZE/OFF     NODE NAME
ovs-vswit   812      993    3u  netlink                          0t0 19980589 GENERIC
ovs-vswit   812      993    4u  netlink                          0t0 19980590 GENERIC
ovs-vswit   812      993    5u  netlink                          0t0 19980591 ROUTE
ovs-vswit   812      993    6u     unix 0x00000000c3474718       0t0 19871238 type=STREAM (CONNECTED)
ovs-vswit   812      993    7u     sock                0,8       0t0 19871239 protocol: NETLINK
",
    ),
    ("sos_commands/date/date", "Tue Dec  1 06:51:17 UTC 2026\n"),
    ("sos_commands/date/date_--utc", "Tue Dec  1 06:51:17 UTC 2026\n"),
    (
        "sos_commands/kernel/uname_-a",
        "Linux node-1 6.1.0-18-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01) x86_64 GNU/Linux\n",
    ),
    (
        "sos_commands/kernel/dmesg",
        "\
[ 3600.000001] unregister_netdevice: waiting for eth0 to become free. Usage count = 1
[ 3720.123456] INFO: task stuck:900 blocked for more than 120 seconds.
[ 3720.123460]       Not tainted 6.1.0-18-amd64 #1
[ 3720.123470] Call Trace:
[ 3720.123471]  <TASK>
[ 3720.123472]  __schedule+0x34d/0x9e0
[ 3720.123473]  schedule+0x5a/0xd0
[ 3720.123474]  io_schedule+0x42/0x70
[ 3720.123475]  </TASK>
",
    ),
    ("proc/stat", "cpu  1 2 3\ncpu0 1 2 3\ncpu1 1 2 3\nbtime 1796102278\n"),
    ("proc/net/netlink", "sk               Eth Pid        Groups   Rmem     Wmem     Dump  Locks    Drops    Inode\n0000000000000000 16  812        00000000 0        0        0     2        0        19871239\n"),
    ("proc/812/limits", "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 4096                 files\n"),
    ("proc/900/stack", "[<0>] wait_for_vfork_done+0x2d/0x50\n[<0>] kernel_clone+0x1b9/0x3d0\n"),
    (
        "sos_commands/openvswitch/ovs-vsctl_-t_5_list_interface",
        "_uuid               : 0f1c\nexternal_ids        : {iface-id=\"x\"}\nname                : tap1\nofport              : 5\ntype                : \"\"\n",
    ),
    (
        "sos_reports/manifest.json",
        r#"{"version": "4.0", "components": {"report": {"plugins": {"process": {"commands": [{"exec": "lsof -b +M -n -l -c ''", "filepath": "sos_commands/process/lsof_-b_M_-n_-l_-c", "return_code": 0, "run_time": 1.5}]}}}}}"#,
    ),
];

/// What is done to one file.
#[derive(Clone, Debug)]
enum Mutation {
    Keep,
    Remove,
    /// Cut at this fraction of its length (on a byte, not a character).
    Cut(f64),
    /// Overwrite bytes at these fractions of its length.
    Overwrite(Vec<(f64, u8)>),
    /// Add a line.
    Append(String),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => Just(Mutation::Keep),
        1 => Just(Mutation::Remove),
        2 => (0.0..1.0f64).prop_map(Mutation::Cut),
        2 => proptest::collection::vec((0.0..1.0f64, any::<u8>()), 1..8).prop_map(Mutation::Overwrite),
        2 => prop_oneof![
            Just("x 99999999999999999999 -1 18446744073709551616 \u{1b}]0;pwned\u{7}".to_string()),
            Just("ovs-vswit 4294967296 993 9999999999u netlink 0t0 1 GENERIC".to_string()),
            Just("5 D 0 -7 -1 0 0 TS 19 - 1 x Tue Dec 99 99:99:99 99999 ? 99999999999999999:00:00 x".to_string()),
            Just("[99999999999999.999999] INFO: task λ:-1 blocked for more than 18446744073709551615 seconds.".to_string()),
            "[ -~\u{80}-\u{10ffff}]{0,120}",
        ]
        .prop_map(Mutation::Append),
    ]
}

fn apply(content: &str, mutation: &Mutation) -> Option<Vec<u8>> {
    let mut bytes = content.as_bytes().to_vec();
    let at = |f: f64, len: usize| ((len as f64 * f) as usize).min(len.saturating_sub(1));
    match mutation {
        Mutation::Keep => {}
        Mutation::Remove => return None,
        Mutation::Cut(f) => bytes.truncate(at(*f, bytes.len())),
        Mutation::Overwrite(spots) => {
            for (f, b) in spots {
                if !bytes.is_empty() {
                    let i = at(*f, bytes.len());
                    bytes[i] = *b;
                }
            }
        }
        Mutation::Append(line) => {
            bytes.extend_from_slice(line.as_bytes());
            bytes.push(b'\n');
        }
    }
    Some(bytes)
}

fn write(root: &Path, rel: &str, bytes: &[u8]) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn a_mutated_report_reads_or_fails_clearly_and_every_detector_runs(
        mutations in proptest::collection::vec(mutation(), FILES.len())
    ) {
        let dir = tempfile::tempdir().unwrap();
        for ((rel, content), m) in FILES.iter().zip(&mutations) {
            if let Some(bytes) = apply(content, m) {
                write(dir.path(), rel, &bytes);
            }
        }
        match nodedoc_sos::read_sosreport(dir.path(), Default::default()) {
            Ok(snapshot) => {
                let findings = nodedoc_detectors::run(&snapshot, &Default::default());
                for finding in &findings {
                    prop_assert!(!finding.summary.is_empty());
                }
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }
}

/// The unmutated report reads, with the census and the stuck task, so the property above
/// starts from a report that works.
#[test]
fn the_unmutated_report_reads() {
    let dir = tempfile::tempdir().unwrap();
    for (rel, content) in FILES {
        write(dir.path(), rel, content.as_bytes());
    }
    let snapshot = nodedoc_sos::read_sosreport(dir.path(), Default::default()).unwrap();
    assert_eq!(
        snapshot.process(812).unwrap().fds.as_ref().unwrap().total,
        5
    );
    let findings = nodedoc_detectors::run(&snapshot, &Default::default());
    assert!(
        findings
            .iter()
            .any(|f| f.detector == "netdev-unregister-stuck"),
        "{findings:#?}"
    );
}
