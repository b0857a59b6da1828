//! Each lab, run for real, is found by `nodedoc check` with its culprit and evidence.

mod common;

use common::{check_json, finding, has_evidence, lab_context, nodedoc};
use nodedoc_model::{FdKind, NetlinkProtocol, Severity};

#[test]
fn fd_exhaustion_lab_is_critical_with_the_exact_netlink_generic_count() {
    let lab = nodedoc_lab::start("fd-exhaustion", &lab_context()).expect("start lab");
    let pid = lab.instance().fact("hog_pid").unwrap().to_string();

    let (report, code) = check_json(&[]);
    let f = finding(&report, "fd-exhaustion", &format!("pid/{pid}"));
    assert_eq!(f.severity, Severity::Critical);
    assert_eq!(f.pid, Some(pid.parse().unwrap()));
    // What `ls /proc/PID/fd | wc -l` says: the sockets and the helper's stdio, nothing of ours.
    let open = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    assert_eq!(open, 3_953, "3,950 sockets + stdin, stdout, stderr");
    assert!(
        has_evidence(f, "3,953 open file descriptors"),
        "{:#?}",
        f.evidence
    );
    assert!(
        has_evidence(f, "3,950 NETLINK_GENERIC netlink sockets"),
        "{:#?}",
        f.evidence
    );
    assert!(has_evidence(f, "soft 4000 / hard"), "{:#?}", f.evidence);
    assert!(has_evidence(f, "pidfd_getfd"), "{:#?}", f.evidence);
    assert_eq!(code, 2, "a critical finding exits 2");

    // The per-process census agrees, exactly, on both resolution paths.
    for resolution in ["pidfd", "proc-net"] {
        let out = nodedoc(&[
            "fds",
            &pid,
            "--format",
            "json",
            "--socket-resolution",
            resolution,
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let census: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let fds: nodedoc_model::FdCensus = serde_json::from_value(census["fds"].clone()).unwrap();
        let generic = FdKind::NetlinkSocket {
            protocol: NetlinkProtocol::GENERIC,
        };
        assert_eq!(fds.count(&generic), 3_950, "{resolution}: {fds:?}");
    }
    lab.stop().expect("clean teardown");
    assert!(
        std::fs::metadata(format!("/proc/{pid}")).is_err(),
        "the hog is gone"
    );
}

#[test]
fn zombies_lab_blames_the_parent() {
    let lab = nodedoc_lab::start("zombies", &lab_context()).expect("start lab");
    let parent = lab.instance().fact("parent_pid").unwrap().to_string();
    let (report, _) = check_json(&[]);
    let f = finding(&report, "zombie-processes", &format!("pid/{parent}"));
    assert_eq!(f.severity, Severity::Warning);
    assert!(
        f.summary
            .contains("never reaps its children: 3 zombies (calico)"),
        "{}",
        f.summary
    );
    assert!(has_evidence(f, "3 zombie children"), "{:#?}", f.evidence);
    assert!(has_evidence(f, "zombie calico (pid"), "{:#?}", f.evidence);
    assert!(
        has_evidence(f, "still zombies when read again"),
        "{:#?}",
        f.evidence
    );
    lab.stop().expect("clean teardown");
    // The helper reaped its zombies before exiting: none is left behind for init.
    let leftover = std::process::Command::new("sh")
        .args([
            "-c",
            "ps -eo ppid=,stat=,comm= | awk '$2 ~ /^Z/ && $3 == \"calico\"' | wc -l",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&leftover.stdout).trim(), "0");
}

#[test]
fn netdev_unregister_lab_is_critical_while_the_line_repeats() {
    let lab = nodedoc_lab::start("netdev-unregister", &lab_context()).expect("start lab");
    let device = lab.instance().fact("device").unwrap().to_string();
    let (report, _) = check_json(&[]);
    let f = finding(
        &report,
        "netdev-unregister-stuck",
        &format!("netdev/{device}"),
    );
    assert_eq!(f.severity, Severity::Critical);
    assert!(f.summary.contains("still waiting"), "{}", f.summary);
    assert!(
        has_evidence(
            f,
            &format!("waiting for {device} to become free. Usage count = 1")
        ),
        "{:#?}",
        f.evidence
    );
    // This kernel (>= 5.1) carries the fnhe fix: the finding must not blame it.
    if report.host.kernel_release.starts_with('6') {
        assert!(has_evidence(f, "ee60ad219f5c"), "{:#?}", f.evidence);
        assert!(has_evidence(f, "not the cause here"), "{:#?}", f.evidence);
    }
    lab.stop().expect("clean teardown");
}

#[test]
fn lab_run_reproduces_detects_and_cleans_up() {
    let out = nodedoc(&["lab", "run", "zombies", "--format", "json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("found zombie-processes"), "{stderr}");
    assert!(stderr.contains("cleaned up"), "{stderr}");
}

#[test]
fn lab_start_and_stop_work_across_processes() {
    let state = tempfile::tempdir().unwrap();
    // `lab start` exits and leaves its helper behind: make this test the helper's new parent
    // so it can reap it after `lab stop` (this machine's init reaps orphans only lazily).
    // SAFETY: PR_SET_CHILD_SUBREAPER on ourselves.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let run = |args: &[&str]| {
        std::process::Command::new(common::NODEDOC)
            .args(args)
            .env("NODEDOC_LAB_STATE_DIR", state.path())
            .output()
            .unwrap()
    };
    let started = run(&["lab", "start", "fd-exhaustion", "--format", "json"]);
    assert!(
        started.status.success(),
        "{}",
        String::from_utf8_lossy(&started.stderr)
    );
    let instance: nodedoc_lab::Instance = serde_json::from_slice(&started.stdout).unwrap();
    let pid: i32 = instance.fact("hog_pid").unwrap().parse().unwrap();
    assert!(
        std::fs::metadata(format!("/proc/{pid}")).is_ok(),
        "running after lab start exited"
    );

    let stopped = run(&["lab", "stop", "fd-exhaustion"]);
    assert!(
        stopped.status.success(),
        "{}",
        String::from_utf8_lossy(&stopped.stderr)
    );
    assert!(String::from_utf8_lossy(&stopped.stdout).contains(&instance.id));
    // Reap it (we are its subreaper now), then it must be gone.
    // SAFETY: waiting for a child of ours.
    unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
    assert!(std::fs::metadata(format!("/proc/{pid}")).is_err());
    assert_eq!(
        std::fs::read_dir(state.path()).unwrap().count(),
        0,
        "state file removed"
    );
}
