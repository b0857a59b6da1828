//! `check --sos` on a real sosreport: Debian 12's `sosreport` (sos 4.0) runs while five labs
//! hold their faults, and the report it writes gives the findings a live `check` gives, with
//! what sos did not collect stated as gaps.
//!
//! sos's openvswitch plugin asks the OVS at /run/openvswitch only, and the lab's OVS is private:
//! sos runs in a private mount namespace (`unshare -m`) where a tmpfs on /run/openvswitch holds
//! links to the lab's sockets and pidfiles, and `OVS_LOGDIR` points at the lab's log (the plugin
//! copies `$OVS_LOGDIR/*.log`). The host's /run/openvswitch is never written: when it does not
//! exist, an empty directory is made for the mount point and removed afterwards.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::{check_json, finding, has_evidence, lab_context, nodedoc};
use nodedoc_model::{Report, Severity};

/// The mount point sos reads OVS from; removed on drop if this test made it.
struct RunOpenvswitch {
    made: bool,
}

impl RunOpenvswitch {
    fn prepare() -> RunOpenvswitch {
        let path = Path::new("/run/openvswitch");
        if path.exists() {
            return RunOpenvswitch { made: false };
        }
        std::fs::create_dir(path).expect("mkdir /run/openvswitch");
        RunOpenvswitch { made: true }
    }
}

impl Drop for RunOpenvswitch {
    fn drop(&mut self) {
        if self.made {
            // Only the empty directory this test made: never anything another process put there.
            let _ = std::fs::remove_dir("/run/openvswitch");
        }
    }
}

/// Runs sosreport as a user would, with the lab's OVS visible to it; returns the tarball.
fn sosreport(out: &Path, ovs_dir: &str, netns: &str) -> PathBuf {
    assert!(
        Path::new("/usr/bin/sosreport").exists(),
        "this test needs Debian's sosreport package (apt-get install sosreport; .ci/run installs it)"
    );
    let _mount_point = RunOpenvswitch::prepare();
    let script = r#"
set -e
mount -t tmpfs -o mode=0755,size=1m nodedoc-sos-test /run/openvswitch
for f in "$OVS_DIR"/*.sock "$OVS_DIR"/*.pid "$OVS_DIR"/*.ctl; do
    [ -e "$f" ] && ln -s "$f" /run/openvswitch/
done
# ovs-appctl finds the daemon through PIDFILE's pid: the lab names its control socket plainly.
ln -s "$OVS_DIR/ovs-vswitchd.ctl" "/run/openvswitch/ovs-vswitchd.$(cat "$OVS_DIR/ovs-vswitchd.pid").ctl"
OVS_LOGDIR="$OVS_DIR" sosreport --batch --tmp-dir "$OUT" \
    --only-plugins process,kernel,openvswitch,networking,host,date,filesys,cgroups \
    -k networking.ethtool_namespaces=off -k "networking.namespace_pattern=$NETNS"
"#;
    let started = Instant::now();
    let status = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", script])
        .env("OVS_DIR", ovs_dir)
        .env("OUT", out)
        .env("NETNS", netns)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run unshare sosreport");
    assert!(status.success(), "sosreport failed: {status}");
    eprintln!("sosreport took {:.1} s", started.elapsed().as_secs_f64());
    std::fs::read_dir(out)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.to_string_lossy().ends_with(".tar.xz"))
        .expect("sosreport wrote no .tar.xz")
}

/// One file of the tarball, as `tar` sees it.
fn tar_file(tarball: &Path, pattern: &str) -> String {
    let out = Command::new("tar")
        .args(["-xJOf"])
        .arg(tarball)
        .args(["--wildcards", pattern])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn severity_of(report: &Report, detector: &str, subject: &str) -> Severity {
    finding(report, detector, subject).severity
}

#[test]
fn a_sosreport_made_while_labs_run_gives_the_live_findings_and_states_its_gaps() {
    let cx = lab_context();
    let fd = nodedoc_lab::start("fd-exhaustion", &cx).expect("fd-exhaustion lab");
    let zombies = nodedoc_lab::start("zombies", &cx).expect("zombies lab");
    let netdev = nodedoc_lab::start("netdev-unregister", &cx).expect("netdev lab");
    let dstate = nodedoc_lab::start("d-state", &cx).expect("d-state lab");
    let ovs = nodedoc_lab::start("ovs-netns-leak", &cx).expect("ovs lab");
    let fact =
        |lab: &nodedoc_lab::LabGuard, key: &str| lab.instance().fact(key).unwrap().to_string();
    let hog = fact(&fd, "hog_pid");
    let parent = fact(&zombies, "parent_pid");
    let device = fact(&netdev, "device");
    let vfork = fact(&dstate, "vfork_parent_pid");
    let frozen = fact(&dstate, "frozen_pid");
    let ovs_dir = fact(&ovs, "dir");
    let orphan = fact(&ovs, "orphan");

    let expected = [
        ("fd-exhaustion", format!("pid/{hog}")),
        ("zombie-processes", format!("pid/{parent}")),
        ("netdev-unregister-stuck", format!("netdev/{device}")),
        ("hung-task", format!("pid/{vfork}")),
        ("hung-task", format!("pid/{frozen}")),
        ("ovs-orphan-port", format!("ovs-interface/{orphan}")),
        ("ovs-port-flapping", format!("ovs-interface/{orphan}")),
    ];

    let (live, _) = check_json(&[
        "--ovsdb",
        &fact(&ovs, "ovsdb"),
        "--ovs-log",
        &fact(&ovs, "ovs_log"),
    ]);
    let out = tempfile::tempdir().expect("temp dir for the report");
    let tarball = sosreport(out.path(), &ovs_dir, &fact(&ovs, "router_netns"));
    let started = Instant::now();
    let (sos, code) = check_json(&["--sos", tarball.to_str().unwrap()]);
    eprintln!("check --sos took {:.2} s", started.elapsed().as_secs_f64());
    assert_eq!(sos.origin, format!("sos:{}", tarball.display()));

    for (detector, subject) in &expected {
        finding(&live, detector, subject);
        finding(&sos, detector, subject);
    }
    for (detector, subject) in &expected[1..] {
        if *detector == "netdev-unregister-stuck" {
            continue; // its severity depends on how long ago the last line was: see below
        }
        assert_eq!(
            severity_of(&sos, detector, subject),
            severity_of(&live, detector, subject),
            "{detector} {subject}"
        );
    }
    assert!(code >= 1, "warnings at least: exit {code}");

    // fd-exhaustion: lsof's census, the limit unknown.
    let f = finding(&sos, "fd-exhaustion", &format!("pid/{hog}"));
    assert_eq!(
        f.severity,
        Severity::Warning,
        "the limit is unknown: {f:#?}"
    );
    assert!(
        f.summary.contains("its open-file limit is unknown"),
        "{}",
        f.summary
    );
    assert!(
        has_evidence(f, "3,953 open file descriptors"),
        "{:#?}",
        f.evidence
    );
    assert!(
        has_evidence(f, "Max open files: unknown"),
        "{:#?}",
        f.evidence
    );
    assert!(
        has_evidence(f, "sockets resolved by lsof"),
        "{:#?}",
        f.evidence
    );
    // The count is lsof's: its GENERIC rows, plus the `sock … protocol: NETLINK` rows it could
    // not match (a /proc/net/netlink read while others churn sockets misses some), which the
    // report's own copy of that table places.
    let lsof = tar_file(&tarball, "*/sos_commands/process/lsof_*");
    let rows: Vec<&str> = lsof
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some(hog.as_str()))
        .collect();
    let generic_rows = rows
        .iter()
        .filter(|l| l.contains(" netlink ") && l.ends_with(" GENERIC"))
        .count() as u64;
    let sock_rows = rows
        .iter()
        .filter(|l| l.ends_with("protocol: NETLINK"))
        .count() as u64;
    assert_eq!(generic_rows + sock_rows, 3_950, "lsof saw every socket");
    let generic_fact = f
        .evidence
        .iter()
        .find(|e| e.fact.contains("NETLINK_GENERIC netlink sockets"))
        .map(|e| e.fact.clone())
        .expect("a NETLINK_GENERIC row");
    let generic: u64 = generic_fact
        .split_whitespace()
        .next()
        .unwrap()
        .replace(',', "")
        .parse()
        .unwrap();
    assert!(
        (generic_rows..=generic_rows + sock_rows).contains(&generic),
        "{generic} NETLINK_GENERIC, lsof printed {generic_rows} GENERIC and {sock_rows} unmatched"
    );
    if sock_rows == 0 {
        assert_eq!(generic, 3_950, "a quiet host: lsof's exact count");
    }
    let live_fd = finding(&live, "fd-exhaustion", &format!("pid/{hog}"));
    assert_eq!(live_fd.severity, Severity::Critical);
    assert!(
        has_evidence(live_fd, "3,950 NETLINK_GENERIC"),
        "{:#?}",
        live_fd.evidence
    );

    // Zombies: both ps readings saw them.
    let z = finding(&sos, "zombie-processes", &format!("pid/{parent}"));
    assert!(z.summary.contains("3 zombies (calico)"), "{}", z.summary);
    assert!(
        has_evidence(z, "still zombies when read again"),
        "{:#?}",
        z.evidence
    );

    // The netdev line, from sos's dmesg.
    let n = finding(&sos, "netdev-unregister-stuck", &format!("netdev/{device}"));
    assert!(
        has_evidence(
            n,
            &format!("waiting for {device} to become free. Usage count = 1")
        ),
        "{:#?}",
        n.evidence
    );

    // D state: the frozen task is classified from the cgroups plugin's freezer.state, as live;
    // the vfork parent's stack is not in a sos 4.0 report: its wchan is shown.
    let frozen_finding = finding(&sos, "hung-task", &format!("pid/{frozen}"));
    assert!(
        has_evidence(frozen_finding, "stack classified as frozen-cgroup"),
        "{:#?}",
        frozen_finding.evidence
    );
    let v = finding(&sos, "hung-task", &format!("pid/{vfork}"));
    assert!(has_evidence(v, "sleeping in "), "{:#?}", v.evidence);

    // OVS: the orphan from the dump and the log, the flapping from the log sos copied.
    let o = finding(&sos, "ovs-orphan-port", &format!("ovs-interface/{orphan}"));
    assert!(
        has_evidence(o, "d489f511-9f9f-49e9-b772-f43bf3bfa04b"),
        "{:#?}",
        o.evidence
    );
    let flap = finding(
        &sos,
        "ovs-port-flapping",
        &format!("ovs-interface/{orphan}"),
    );
    assert!(
        has_evidence(flap, &format!("× `added interface {orphan}")),
        "{:#?}",
        flap.evidence
    );
    assert!(o.caused_by.contains(&flap.id), "{:#?}", o.caused_by);

    // The gaps, per detector.
    let gap = |what: &str| {
        sos.gaps
            .iter()
            .find(|g| g.what.contains(what))
            .unwrap_or_else(|| panic!("no gap {what:?}: {:#?}", sos.gaps))
    };
    assert!(gap("/proc/PID/limits (fd-exhaustion").count >= 1);
    assert!(gap("/proc/PID/stack (hung-task").examples.contains(&vfork));
    gap("CPU time between two readings (ovs-vswitchd-busy)");
    gap("kernel log facility (netdev-unregister-stuck");
    let source = |name: &str| sos.sources.iter().find(|s| s.source == name).unwrap();
    assert!(
        source("sosreport").detail.contains("sos 4.0"),
        "{:?}",
        source("sosreport")
    );
    assert!(source("proc-files").detail.contains("does not save them"));

    // The same report unpacked by tar gives the same findings and gaps as its tarball.
    let unpacked = out.path().join("unpacked");
    std::fs::create_dir(&unpacked).unwrap();
    let status = Command::new("tar")
        .arg("-xJf")
        .arg(&tarball)
        .arg("-C")
        .arg(&unpacked)
        .arg("--strip-components=1")
        .status()
        .unwrap();
    assert!(status.success());
    let (from_dir, _) = check_json(&["--sos", unpacked.to_str().unwrap()]);
    let summaries = |r: &Report| {
        let mut all: Vec<(String, String)> = r
            .findings
            .iter()
            .map(|f| (f.detector.clone(), f.summary.clone()))
            .collect();
        all.sort();
        all
    };
    assert_eq!(summaries(&from_dir), summaries(&sos));
    assert_eq!(from_dir.gaps, sos.gaps);

    for lab in [fd, zombies, netdev, dstate, ovs] {
        lab.stop().expect("clean teardown");
    }
    drop(out);
}

#[test]
fn paths_that_are_not_sosreports_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = nodedoc(&["check", "--sos", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is not a sosreport: it has no sos_commands/"),
        "{stderr}"
    );

    let file = dir.path().join("notes.txt");
    std::fs::write(&file, "hello").unwrap();
    let out = nodedoc(&["check", "--sos", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("neither a directory nor a tar archive"));

    let out = nodedoc(&["check", "--sos", "/dev/zero"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("character device"));

    let out = nodedoc(&["check", "--sos", "/nonexistent/sosreport.tar.xz"]);
    assert_eq!(out.status.code(), Some(3));

    let out = nodedoc(&["check", "--sos", "x", "--from", "y"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "--sos and --from exclude each other"
    );
}
