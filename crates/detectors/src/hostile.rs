//! Hostile names through every detector. Process names and command lines, kernel-log device
//! names, FUSE mount points, cgroup paths, OVS interface names and log paths are chosen by
//! whoever runs on the node. Every command a finding suggests — in its evidence or in
//! backticks in its explanation or fix — is run here by a real `sh`, with every program it
//! calls replaced by a stub that records its arguments: each name must arrive as (part of)
//! one literal argument, and nothing it holds may run. A name with control characters gets
//! no command, and the evidence says why.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use nodedoc_model::text::shell_word;
use nodedoc_model::{
    CgroupHierarchy, CgroupMembership, FdCensus, FdKind, FdKindCount, Finding, FreezerCgroup,
    FreezerState, KernelLog, KernelLogSource, KmsgRecord, Limit, MountEntry, NetNamespace,
    NetworkNamespaces, ResourceLimit, Snapshot, TaskState,
};
use nodedoc_procfs::parse::parse_stack;

use crate::ovs_orphan_port::tests::iface;
use crate::stacks::tests::{LAB_FROZEN_SLEEP, LAB_FUSE};
use crate::testing::{ovs_with_log, process, resampled, snapshot};

/// The file an injection would create, in the scratch directory the commands run in.
const MARK: &str = "PWNED";

/// A name that runs `touch PWNED` if pasted unquoted, or quoted naively: `$(…)`, a single
/// quote that ends a naive `'…'` early, and with `backquotes` a backquoted command too. No
/// whitespace: kernel device names and OVS log lines have none.
fn hostile(tag: &str, backquotes: bool) -> String {
    if backquotes {
        format!("{tag}'$(touch${{IFS}}{MARK})'\"`touch${{IFS}}{MARK}`\";{tag}")
    } else {
        format!("{tag}'$(touch${{IFS}}{MARK})'\";{tag}")
    }
}

/// A name with an escape sequence and a newline: no command can carry it.
const UNQUOTABLE: &str = "e\u{1b}[2J\nCRITICAL";

/// Programs the suggested commands call; each is a stub here.
const PROGRAMS: &[&str] = &[
    "awk",
    "cat",
    "dmesg",
    "grep",
    "ip",
    "ls",
    "lsof",
    "nsenter",
    "ovs-vsctl",
    "prlimit",
    "ps",
    "readlink",
    "tail",
    "timeout",
    "top",
    "tr",
    "umount",
    "uname",
    "wc",
];

fn kmsg(seconds: u64, message: String) -> KmsgRecord {
    KmsgRecord {
        level: 3,
        facility: 0,
        sequence: seconds,
        monotonic_us: seconds * 1_000_000,
        continuation: false,
        message,
        dictionary: vec![],
        caller: None,
        wall_clock_ms: None,
    }
}

/// One snapshot in which every detector fires on hostile names.
fn hostile_snapshot(backquotes: bool) -> Snapshot {
    let hostile = |tag: &str| hostile(tag, backquotes);
    // zombie-processes: the parent's name and command line, the zombies' name.
    let mut parent = process(100, &hostile("zp"));
    parent.cmdline = vec![hostile("zp-arg"), "\u{1b}]0;x\u{7}\nCRITICAL forged".into()];
    let mut zombie = process(101, &hostile("zc"));
    zombie.ppid = 100;
    zombie.state = TaskState::Zombie;

    // fd-exhaustion: a hostile name and a hostile anon-inode kind.
    let mut hog = process(200, &hostile("fh"));
    hog.nofile = Some(ResourceLimit {
        soft: Limit::Finite(100),
        hard: Limit::Finite(100),
    });
    hog.fds = Some(FdCensus {
        total: 99,
        kinds: vec![FdKindCount {
            kind: FdKind::AnonInode {
                name: hostile("ai"),
            },
            count: 99,
        }],
        ..FdCensus::default()
    });

    // hung-task on a FUSE mount whose mount point is hostile (with a space, which
    // /proc/PID/mountinfo writes as \040), served by a hostile daemon.
    let mount_point = format!("/nonexistent/{} m", hostile("mnt"));
    let mut reader = process(300, &hostile("fr"));
    reader.state = TaskState::UninterruptibleSleep;
    reader.kernel_stack = Some(parse_stack(LAB_FUSE));
    reader.namespaces.mnt = Some(7);
    reader.syscall = Some(nodedoc_model::BlockedSyscall {
        number: 0,
        args: vec![3],
        fd_target: Some(format!("{mount_point}/file")),
    });
    let mut daemon = process(301, &hostile("fd"));
    daemon.cmdline = vec![hostile("fd"), mount_point.clone()];
    daemon.fds = Some(FdCensus {
        total: 4,
        fuse_device_fds: 1,
        ..FdCensus::default()
    });

    // hung-task in a frozen cgroup with a hostile path.
    let cgroup = format!("/nonexistent/{}", hostile("cg"));
    let mut frozen = process(400, &hostile("fz"));
    frozen.state = TaskState::UninterruptibleSleep;
    frozen.kernel_stack = Some(parse_stack(LAB_FROZEN_SLEEP));
    frozen.cgroups = vec![CgroupMembership {
        hierarchy: 4,
        controllers: "freezer".into(),
        path: cgroup.clone(),
    }];

    // An unquotable process name.
    let mut unquotable = process(500, UNQUOTABLE);
    unquotable.state = TaskState::UninterruptibleSleep;
    unquotable.kernel_stack = Some(parse_stack(LAB_FUSE));
    unquotable.namespaces.mnt = Some(7);

    let in_d = [&reader, &frozen, &unquotable];
    let mut snap = snapshot(vec![
        parent.clone(),
        zombie.clone(),
        hog,
        reader.clone(),
        daemon,
        frozen.clone(),
        unquotable.clone(),
    ]);
    let mut resample = resampled(&in_d, TaskState::UninterruptibleSleep);
    resample
        .tasks
        .push(crate::testing::sample(&zombie, TaskState::Zombie));
    resample.tasks.sort_by_key(|t| t.pid);
    snap.resample = Some(resample);
    snap.mounts = vec![MountEntry {
        mount_namespace: 7,
        seen_via_pid: 300,
        mount_id: 99,
        major: 0,
        minor: 999_999,
        root: "/".into(),
        mount_point,
        fs_type: "fuse.hostile".into(),
        source: hostile("src"),
    }];
    snap.freezers = vec![FreezerCgroup {
        hierarchy: CgroupHierarchy::V1Freezer,
        path: cgroup,
        state: FreezerState::Frozen,
    }];

    // netdev-unregister-stuck and hung-task from the kernel log.
    let now = snap.host.uptime_us / 1_000_000;
    let mut records = Vec::new();
    for device in [hostile("q"), UNQUOTABLE.replace('\n', "")] {
        for t in [now - 20, now - 10] {
            records.push(kmsg(
                t,
                format!(
                    "unregister_netdevice: waiting for {device} to become free. Usage count = 1"
                ),
            ));
        }
    }
    records.push(kmsg(
        now - 5,
        format!(
            "INFO: task {}:300 blocked for more than 120 seconds.",
            hostile("fr")
        ),
    ));
    snap.kernel_log = Some(KernelLog {
        source: KernelLogSource::DevKmsg,
        records,
        ..KernelLog::default()
    });

    // OVS: orphaned ports with hostile and unquotable names on a hostile bridge, flapping in
    // a log at a hostile path.
    let name = hostile("z");
    let mut log = String::new();
    for (i, verb) in [
        "added", "deleted", "added", "deleted", "added", "deleted", "added",
    ]
    .iter()
    .enumerate()
    {
        log.push_str(&format!(
            "2026-11-25T12:07:{:02}.015Z|{:05}|bridge|INFO|bridge br-int: {verb} interface {name} on port {}\n",
            10 + i,
            50 + i,
            7 + i / 2
        ));
    }
    log.push_str(&format!(
        "2026-11-25T12:07:20.015Z|00061|netdev_linux|WARN|error receiving Ethernet packet on {name}: File descriptor in bad state\n"
    ));
    let mut ovs = ovs_with_log(&log);
    ovs.log.as_mut().unwrap().path = format!("/nonexistent/{}.log", hostile("log"));
    ovs.bridges[0].name = hostile("br");
    ovs.bridges[0].ports = vec![iface(&name, 7, 0, None), iface(UNQUOTABLE, 7, 0, None)];
    snap.ovs = Some(ovs);
    snap.network = Some(NetworkNamespaces {
        namespaces: vec![NetNamespace {
            inode: 1,
            initial: true,
            entered_via: "/proc/1/ns/net".into(),
            ..NetNamespace::default()
        }],
        unreadable: vec![],
        unverified: vec![],
    });
    snap
}

/// Every command a finding suggests: evidence commands, and backtick spans of its explanation
/// and fix that carry a hostile value. With backquotes in the names, the prose cannot be cut
/// into spans (a name in it may hold backquotes): evidence commands only.
fn suggested_commands(finding: &Finding, backquotes: bool) -> Vec<String> {
    let mut commands: Vec<String> = finding
        .evidence
        .iter()
        .filter_map(|e| e.command.clone())
        .collect();
    if backquotes {
        return commands;
    }
    for text in [&finding.explanation, &finding.fix] {
        for (n, span) in text.split('`').enumerate() {
            if n % 2 == 1 && span.contains(MARK) {
                commands.push(span.to_string());
            }
        }
    }
    commands
}

/// Runs `command` in `sh` inside `scratch`, every program a stub; returns the argument lists
/// the stubs received.
fn run_with_stubs(scratch: &Path, command: &str) -> Vec<Vec<String>> {
    let bin = scratch.join("bin");
    let log = scratch.join("calls");
    let _ = std::fs::remove_file(&log);
    // `echo` and `kill` are shell builtins: functions stand in for them.
    let stub = bin.join("stub");
    let script = format!(
        "echo() {{ '{0}' echo \"$@\"; }}; kill() {{ '{0}' kill \"$@\"; }}; {command}",
        stub.display()
    );
    let output = Command::new("/bin/sh")
        .arg("-c")
        .arg(&script)
        .current_dir(scratch)
        .env_clear()
        .env("PATH", &bin)
        .env("STUB_LOG", &log)
        .output()
        .expect("run sh");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("not found") && !stderr.contains("Syntax error"),
        "{command}\n{stderr}"
    );
    let calls = std::fs::read(&log).unwrap_or_default();
    String::from_utf8(calls)
        .expect("utf-8 arguments")
        .split_terminator('\n')
        .map(|record| record.split_terminator('\0').map(str::to_string).collect())
        .collect()
}

#[test]
fn every_suggested_command_passes_hostile_names_as_literal_words() {
    check_every_command(false);
}

#[test]
fn names_with_backquotes_give_no_command_in_prose_and_stay_literal_in_evidence() {
    check_every_command(true);
}

fn check_every_command(backquotes: bool) {
    let hostile = |tag: &str| hostile(tag, backquotes);
    let scratch = tempfile::tempdir().unwrap();
    let bin = scratch.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let stub = bin.join("stub");
    std::fs::write(
        &stub,
        "#!/bin/sh\n{ printf '%s\\0' \"${0##*/}\" \"$@\"; printf '\\n'; } >> \"$STUB_LOG\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).unwrap();
    for program in PROGRAMS {
        std::os::unix::fs::symlink(&stub, bin.join(program)).unwrap();
    }

    let snap = hostile_snapshot(backquotes);
    let findings = crate::run(&snap, &Default::default());
    let detectors: BTreeSet<&str> = findings.iter().map(|f| f.detector.as_str()).collect();
    for expected in [
        "zombie-processes",
        "fd-exhaustion",
        "hung-task",
        "netdev-unregister-stuck",
        "ovs-orphan-port",
        "ovs-port-flapping",
    ] {
        assert!(
            detectors.contains(expected),
            "{expected} missing: {detectors:?}"
        );
    }

    let mut ran = 0;
    let mut carried = BTreeSet::new();
    for finding in &findings {
        for command in suggested_commands(finding, backquotes) {
            assert!(
                !command.chars().any(nodedoc_model::text::is_unsafe_char),
                "{command:?}"
            );
            for call in run_with_stubs(scratch.path(), &command) {
                // A hostile value is never cut: an argument holding its payload holds all of
                // it, quotes and `$(…)` included, as the text it is.
                for arg in &call {
                    if arg.contains(MARK) {
                        let tag = arg
                            .split('\'')
                            .next()
                            .and_then(|head| head.rsplit(['/', ' ', '[', ':']).next())
                            .unwrap_or_default();
                        assert!(
                            arg.contains(&hostile(tag)),
                            "{command}: argument {arg:?} holds a piece of a name"
                        );
                        carried.insert(tag.to_string());
                    }
                }
            }
            ran += 1;
            assert!(
                !scratch.path().join(MARK).exists(),
                "{command} ran the name's payload"
            );
        }
    }
    assert!(ran >= 30, "only {ran} commands");
    // The names reached the programs: a device, an interface, a bridge, a log path, a
    // mount point, a cgroup, an anon-inode kind, a task name from the kernel log.
    // The bridge is only in the fix, which gives no command for names with backquotes.
    let tags: &[&str] = if backquotes {
        &["q", "z", "log", "mnt", "cg", "ai", "fr"]
    } else {
        &["q", "z", "br", "log", "mnt", "cg", "ai", "fr"]
    };
    for tag in tags {
        assert!(
            carried.contains(*tag),
            "{tag} never reached a program: {carried:?}"
        );
    }

    // The unquotable names: the facts stay, no command, and why (the name escaped).
    let withheld: Vec<&str> = findings
        .iter()
        .flat_map(|f| &f.evidence)
        .filter_map(|e| e.command_withheld.as_deref())
        .collect();
    let shown = nodedoc_model::text::terminal(UNQUOTABLE).into_owned();
    assert!(withheld.len() >= 4, "{withheld:#?}");
    assert!(withheld.iter().all(|w| w.contains("control characters")));
    assert!(withheld.iter().any(|w| w.contains(&shown)), "{withheld:#?}");
    let orphan = findings
        .iter()
        .find(|f| f.detector == "ovs-orphan-port" && f.subject.key().ends_with(UNQUOTABLE))
        .expect("orphan with an unquotable name");
    // The first value that cannot stand in the command is named: the bridge when it has a
    // backquote, else the interface.
    let refused = if backquotes {
        "(no command given: ".to_string()
    } else {
        format!("(no command given: \"{shown}\" contains control characters")
    };
    assert!(orphan.fix.contains(&refused), "{}", orphan.fix);
    assert!(
        orphan
            .evidence
            .iter()
            .all(|e| e.command.as_deref().is_none_or(|c| !c.contains("CRITICAL"))),
        "{:#?}",
        orphan.evidence
    );
    // The quotable orphan's fix names it as one word; with a backquote, it gives no command.
    let quoted = findings
        .iter()
        .find(|f| f.detector == "ovs-orphan-port" && f.subject.key().ends_with(&hostile("z")))
        .expect("orphan with a hostile name");
    let word = |v: &str| shell_word(v).unwrap().into_owned();
    let expected = if backquotes {
        "contains a backquote, which would end the command early in this text)".to_string()
    } else {
        format!(
            "`ovs-vsctl --if-exists del-port {} {}`",
            word(&hostile("br")),
            word(&hostile("z"))
        )
    };
    assert!(quoted.fix.contains(&expected), "{}", quoted.fix);
}
