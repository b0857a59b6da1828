//! Hang diagnosis labs, run for real: each is found with its culprit and classification.

mod common;

use common::{check_json, finding, has_evidence, lab_context, nodedoc};
use nodedoc_model::Severity;

fn alive(pid: &str) -> bool {
    std::fs::metadata(format!("/proc/{pid}")).is_ok()
}

#[test]
fn d_state_lab_classifies_the_vfork_parent_and_the_frozen_task() {
    let lab = nodedoc_lab::start("d-state", &lab_context()).expect("start lab");
    let parent = lab.instance().fact("vfork_parent_pid").unwrap().to_string();
    let child = lab.instance().fact("vfork_child_pid").unwrap().to_string();
    let frozen = lab.instance().fact("frozen_pid").unwrap().to_string();
    let cgroup = lab.instance().fact("freezer_cgroup").unwrap().to_string();

    let (report, _) = check_json(&[]);
    let vfork = finding(&report, "hung-task", &format!("pid/{parent}"));
    assert_eq!(vfork.severity, Severity::Warning);
    assert!(
        vfork
            .summary
            .contains("a vfork parent waiting for its child"),
        "{}",
        vfork.summary
    );
    assert!(
        has_evidence(
            vfork,
            &format!("its vfork child vfork-parent (pid {child})")
        ),
        "{:#?}",
        vfork.evidence
    );
    assert!(
        vfork.fix.contains(&format!("kill -9 {child}")),
        "{}",
        vfork.fix
    );

    let ice = finding(&report, "hung-task", &format!("pid/{frozen}"));
    assert!(
        ice.summary.contains("frozen by the cgroup freezer"),
        "{}",
        ice.summary
    );
    assert!(
        has_evidence(ice, &format!("its cgroup {cgroup} is FROZEN")),
        "{:#?}",
        ice.evidence
    );
    assert!(
        ice.fix.contains(&format!(
            "echo THAWED > /sys/fs/cgroup/freezer{cgroup}/freezer.state"
        )),
        "{}",
        ice.fix
    );
    lab.stop().expect("clean teardown");
    for pid in [&parent, &child, &frozen] {
        assert!(!alive(pid), "pid {pid} survived the teardown");
    }
    assert!(!std::path::Path::new(&format!("/sys/fs/cgroup/freezer{cgroup}")).exists());
}

#[test]
fn fuse_hang_lab_names_the_daemon_behind_the_killed_reader() {
    let lab = nodedoc_lab::start("fuse-hang", &lab_context()).expect("start lab");
    let reader = lab.instance().fact("reader_pid").unwrap().to_string();
    let daemon = lab.instance().fact("daemon_pid").unwrap().to_string();
    let mountpoint = lab.instance().fact("mountpoint").unwrap().to_string();

    let (report, _) = check_json(&[]);
    let f = finding(&report, "hung-task", &format!("pid/{reader}"));
    assert_eq!(f.severity, Severity::Critical, "killed and still alive");
    assert!(
        f.summary
            .contains("waiting for a FUSE daemon that does not answer"),
        "{}",
        f.summary
    );
    assert!(has_evidence(f, "a SIGKILL is pending"), "{:#?}", f.evidence);
    assert!(
        has_evidence(f, &format!("served by fuse-daemon (pid {daemon})")),
        "{:#?}",
        f.evidence
    );
    assert!(
        has_evidence(
            f,
            &format!("blocked on FUSE mount {mountpoint} (fuse, from nodedoc-lab)")
        ),
        "{:#?}",
        f.evidence
    );
    assert!(has_evidence(f, "request_wait_answer"), "{:#?}", f.evidence);
    assert!(
        f.fix.contains(&format!("umount -l {mountpoint}")),
        "{}",
        f.fix
    );
    lab.stop().expect("clean teardown");
    assert!(!alive(&reader) && !alive(&daemon));
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&mountpoint), "the FUSE mount is gone");
}

#[test]
fn memory_map_lock_lab_does_not_hang_check_and_names_writer_and_holder() {
    let lab = nodedoc_lab::start("memory-map-lock", &lab_context()).expect("start lab");
    let victim = lab.instance().fact("victim_pid").unwrap().to_string();
    let reader = lab.instance().fact("reader_pid").unwrap().to_string();

    // `ps aux` would hang here for as long as the lab runs; check must come back on its own.
    // The generous deadline only turns a hang into a failure instead of a stuck test run.
    let mut child = std::process::Command::new(common::NODEDOC)
        .args(["check", "--format", "json", "--memory-map-deadline", "1s"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run nodedoc check");
    // The report is bigger than a pipe: read it while check runs.
    let mut out = child.stdout.take().unwrap();
    let reading = std::thread::spawn(move || {
        let mut stdout = Vec::new();
        std::io::Read::read_to_end(&mut out, &mut stdout).map(|_| stdout)
    });
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for check") {
            break Some(status);
        }
        if started.elapsed() > std::time::Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let status = status.expect("check hung on a process whose memory-map lock is held");
    let stdout = reading.join().unwrap().expect("read the report");
    let report: nodedoc_model::Report = serde_json::from_slice(&stdout).expect("a JSON report");
    assert!(status.code().is_some_and(|c| c >= 1));

    let writer = finding(&report, "hung-task", &format!("pid/{victim}"));
    assert!(
        has_evidence(writer, "stack classified as memory-map-lock-write"),
        "{:#?}",
        writer.evidence
    );
    assert!(
        has_evidence(writer, "`ps aux` hangs on this process"),
        "{:#?}",
        writer.evidence
    );
    assert!(
        has_evidence(
            writer,
            &format!("mem-reader (pid {reader}) is stuck reading this process's memory through /proc/{victim}/mem")
        ),
        "{:#?}",
        writer.evidence
    );
    let holder = finding(&report, "hung-task", &format!("pid/{reader}"));
    assert!(
        has_evidence(holder, "stack classified as remote-memory-access"),
        "{:#?}",
        holder.evidence
    );
    assert_eq!(writer.caused_by, vec![holder.id.clone()], "the chain");
    let gap = report.gaps.iter().find(|g| {
        g.what == "/proc/PID/cmdline"
            && g.reason.contains("memory-map lock")
            && g.examples.contains(&victim)
    });
    assert!(
        gap.is_some(),
        "the unread command line is said: {:#?}",
        report.gaps
    );

    lab.stop().expect("clean teardown");
    assert!(!alive(&victim) && !alive(&reader));
}

#[test]
fn pidns_exit_hang_lab_names_the_init_and_its_frozen_child() {
    let lab = nodedoc_lab::start("pidns-exit-hang", &lab_context()).expect("start lab");
    let init = lab.instance().fact("init_pid").unwrap().to_string();
    let child = lab.instance().fact("child_pid").unwrap().to_string();
    let cgroup = lab.instance().fact("freezer_cgroup").unwrap().to_string();

    let (report, code) = check_json(&[]);
    assert_eq!(code, 2);
    let hang = finding(&report, "pidns-exit-hang", &format!("pid/{init}"));
    assert_eq!(hang.severity, Severity::Critical);
    assert!(
        hang.summary.contains(&format!(
            "child {child} pidns-child is frozen by the cgroup freezer ({cgroup} FROZEN)"
        )),
        "{}",
        hang.summary
    );
    assert!(
        has_evidence(hang, "zap_pid_ns_processes"),
        "{:#?}",
        hang.evidence
    );
    assert!(
        has_evidence(
            hang,
            &format!("still in the namespace: pidns-child (pid {child})")
        ),
        "{:#?}",
        hang.evidence
    );
    assert!(
        hang.explanation.contains("frozen by the cgroup freezer"),
        "{}",
        hang.explanation
    );
    assert!(
        hang.fix.contains(&format!(
            "echo THAWED > /sys/fs/cgroup/freezer{cgroup}/freezer.state"
        )),
        "{}",
        hang.fix
    );
    // The chain: the init's hang is caused by the child's.
    let blocker = finding(&report, "hung-task", &format!("pid/{child}"));
    assert!(hang.caused_by.contains(&blocker.id), "{:?}", hang.caused_by);
    assert!(blocker.causes.contains(&hang.id));

    lab.stop().expect("thaw, and everything exits");
    assert!(!alive(&init) && !alive(&child));
}

#[test]
fn netns_gone_lab_warns_about_the_task_left_behind() {
    let lab = nodedoc_lab::start("netns-gone", &lab_context()).expect("start lab");
    let pid = lab.instance().fact("pid").unwrap().to_string();
    let (report, _) = check_json(&[]);
    let f = finding(&report, "netns-gone", &format!("pid/{pid}"));
    assert_eq!(f.severity, Severity::Warning);
    assert!(
        f.summary
            .contains("was torn down under it; it is blocked in __skb_wait_for_more_packets"),
        "{}",
        f.summary
    );
    assert!(has_evidence(f, "no other task is in that namespace"));
    assert!(has_evidence(f, "no bind mount names it"));
    lab.stop().expect("clean teardown");
    assert!(!alive(&pid));
}

#[test]
fn cni_stdin_hang_lab_is_the_old_skel_bug() {
    let lab = nodedoc_lab::start("cni-stdin-hang", &lab_context()).expect("start lab");
    let plugin = lab.instance().fact("plugin_pid").unwrap().to_string();
    let container = lab.instance().fact("container_id").unwrap().to_string();
    // Older than the threshold we ask for.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let (report, _) = check_json(&["--cni-timeout", "1s"]);
    let f = finding(&report, "cni-plugin-hang", &format!("pid/{plugin}"));
    assert_eq!(f.severity, Severity::Warning);
    assert!(f.summary.contains("CNI_COMMAND=VERSION"), "{}", f.summary);
    assert!(f.summary.contains("skel < 0.7.0 bug"), "{}", f.summary);
    assert!(
        has_evidence(f, &format!("CNI_CONTAINERID={container}")),
        "{:#?}",
        f.evidence
    );
    assert!(
        has_evidence(f, "blocked in read(fd 0)"),
        "{:#?}",
        f.evidence
    );
    assert!(has_evidence(f, "fd 0 is a pipe"), "{:#?}", f.evidence);
    assert!(
        f.fix.contains("Upgrade the plugin's cni library"),
        "{}",
        f.fix
    );
    // Only CNI_* variables were collected: nothing else of its environment is in the report.
    let json = serde_json::to_string(&report).unwrap();
    assert!(
        !json.contains("CNI_PATH=/opt/cni/bin:/usr/lib/cni PATH="),
        "no other variables"
    );
    lab.stop().expect("clean teardown");
    assert!(!alive(&plugin));
}

#[test]
fn probe_cni_reports_debian_plugins_and_kills_a_hanging_one() {
    let dir = tempfile::tempdir().unwrap();
    let standin = dir.path().join("old-skel-ipam");
    // A plugin that, like containernetworking/cni skel < 0.7.0, reads stdin for VERSION.
    std::fs::write(
        &standin,
        "#!/bin/sh\ncat >/dev/null\necho '{\"cniVersion\":\"0.3.1\",\"supportedVersions\":[\"0.3.1\"]}'\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&standin, std::fs::Permissions::from_mode(0o755)).unwrap();

    let out = nodedoc(&[
        "probe",
        "cni",
        "--dir",
        "/usr/lib/cni",
        "--dir",
        dir.path().to_str().unwrap(),
        "--timeout",
        "2s",
        "--format",
        "json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a hung plugin is a warning: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let plugins = result["plugins"].as_array().unwrap();
    let bridge = plugins
        .iter()
        .find(|p| p["plugin"] == "/usr/lib/cni/bridge")
        .expect("Debian's bridge plugin");
    assert_eq!(bridge["outcome"], "answered", "{bridge}");
    assert!(bridge["supportedVersions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v == "1.0.0"));
    let answered = plugins
        .iter()
        .filter(|p| p["outcome"] == "answered")
        .count();
    assert!(
        answered >= 10,
        "Debian's containernetworking-plugins answer: {answered}"
    );
    let hung = plugins
        .iter()
        .find(|p| p["plugin"] == standin.to_str().unwrap())
        .expect("the stand-in");
    assert_eq!(hung["outcome"], "hung", "{hung}");
    // Killed afterwards: no process still runs it.
    let pid = hung["pid"].as_u64().unwrap();
    assert!(!alive(&pid.to_string()), "the hung plugin was killed");
}
