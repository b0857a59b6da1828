//! Issue 8, items 5 and 6, tried as a hostile user would: a flood of kernel-log lines for
//! thousands of devices, kernel lines forged into `/dev/kmsg`, processes forking tens of
//! thousands of times while `check` reads them, and tasks alone in fresh network namespaces.
//!
//! The tests that read the whole host run one at a time (their kmsg records and processes would
//! otherwise meet in each other's reports).

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};

use common::{check_json, lab_context, nodedoc, NODEDOC};
use nodedoc_model::{
    BlockedCheck, Evidence, Finding, KmsgRecord, Report, Severity, Snapshot, Subject, TaskState,
};

static HOST: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    HOST.lock().unwrap_or_else(|e| e.into_inner())
}

fn random_tag() -> String {
    let mut bytes = [0u8; 4];
    std::io::Read::read_exact(
        &mut std::fs::File::open("/dev/urandom").unwrap(),
        &mut bytes,
    )
    .unwrap();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `nodedoc collect -o FILE` then `nodedoc check --from FILE --format json`: the report and
/// exactly the snapshot it was made from.
fn collect_and_check(dir: &Path, name: &str) -> (Snapshot, Report, usize) {
    let file = dir.join(name);
    let out = nodedoc(&["collect", "-o", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "collect failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let snapshot = nodedoc_model::read_snapshot(&file).expect("a snapshot");
    let out = nodedoc(&[
        "check",
        "--from",
        file.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let report: Report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "check --from printed no report ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (snapshot, report, out.stdout.len())
}

/// The finding of `detector` about `subject_key`, alone or as a member of a group finding:
/// its severity, summary and evidence (a member's own, then the group's).
fn finding_or_member(
    report: &Report,
    detector: &str,
    subject_key: &str,
) -> Option<(Severity, String, Vec<Evidence>)> {
    for f in report.findings.iter().filter(|f| f.detector == detector) {
        if f.subject.key() == subject_key {
            return Some((f.severity, f.summary.clone(), f.evidence.clone()));
        }
        let member = f
            .group
            .iter()
            .flat_map(|g| &g.members)
            .find(|m| m.subject.key() == subject_key);
        if let Some(m) = member {
            let mut evidence = m.evidence.clone();
            evidence.extend(f.evidence.iter().cloned());
            return Some((f.severity, m.summary.clone(), evidence));
        }
    }
    None
}

/// Every subject a finding stands for: itself, or each listed member of a group.
fn subjects(finding: &Finding) -> Vec<&Subject> {
    match &finding.group {
        Some(group) => group.members.iter().map(|m| &m.subject).collect(),
        None => vec![&finding.subject],
    }
}

/// The `netdev-unregister-stuck` findings that name a device starting with `prefix`.
fn naming_devices<'r>(report: &'r Report, prefix: &str) -> Vec<&'r Finding> {
    let key = format!("netdev/{prefix}");
    report
        .findings
        .iter()
        .filter(|f| f.detector == "netdev-unregister-stuck")
        .filter(|f| subjects(f).iter().any(|s| s.key().starts_with(&key)))
        .collect()
}

/// The kernel log's `waiting for DEV to become free` lines: (DEV, record).
fn waiting_lines(snapshot: &Snapshot) -> impl Iterator<Item = (&str, &KmsgRecord)> {
    snapshot
        .kernel_log
        .iter()
        .flat_map(|log| &log.records)
        .filter_map(|record| {
            let rest = record
                .message
                .strip_prefix("unregister_netdevice: waiting for ")?;
            Some((rest.split(' ').next()?, record))
        })
}

const DEVICES: usize = 5_000;
const ROUNDS: usize = 10;

/// Item 5: 50,000 records for 5,000 devices gave 5,000 critical findings and a 135,000-line
/// report. Now they are one group finding with the count and the first devices, the JSON is
/// bounded, and every line is said to come from user space, not the kernel.
#[test]
fn a_kmsg_flood_of_5000_devices_is_one_bounded_finding() {
    let _host = one_at_a_time();
    let prefix = format!("ndflood{}-", random_tag());
    // Round by round, as the kernel repeats its line for every waiting device.
    for _ in 0..ROUNDS {
        for n in 0..DEVICES {
            nodedoc_kmsg::write_kmsg_with_level(
                4,
                &format!(
                    "unregister_netdevice: waiting for {prefix}{n} to become free. Usage count = 1"
                ),
            )
            .expect("write /dev/kmsg");
        }
    }
    let written = std::time::Instant::now();

    // The live check: one finding for them, bounded.
    let out = nodedoc(&["check", "--format", "json"]);
    let report: Report = serde_json::from_slice(&out.stdout).expect("a JSON report");
    let ours = naming_devices(&report, &prefix);
    assert_eq!(
        ours.len(),
        1,
        "one finding for the flood: {:#?}",
        ours.iter().map(|f| &f.id).collect::<Vec<_>>()
    );
    assert!(ours[0].group.is_some(), "{:#?}", ours[0].subject);
    assert!(
        out.stdout.len() < 3_000_000,
        "the JSON report is bounded: {} bytes",
        out.stdout.len()
    );

    // Exactly what the ring held, through a snapshot: the kernel keeps only the newest
    // records of its ring buffer, so the count is that of the devices that survived.
    let dir = tempfile::tempdir().unwrap();
    let (snapshot, report, json_bytes) = collect_and_check(dir.path(), "flood.json");
    assert!(snapshot.kernel_log.is_some(), "the kernel log was read");
    let mut held = std::collections::BTreeMap::<&str, usize>::new();
    let mut others = std::collections::BTreeSet::new();
    for (device, record) in waiting_lines(&snapshot) {
        if device.starts_with(&prefix) {
            assert_eq!(record.facility, 1, "user space writes facility user");
            *held.entry(device).or_default() += 1;
        } else {
            others.insert(device);
        }
    }
    assert!(
        held.len() > 20,
        "enough of the flood survived in the ring to group it: {}",
        held.len()
    );
    let groups = naming_devices(&report, &prefix);
    assert_eq!(groups.len(), 1);
    let group = groups[0];
    let members = group.group.as_ref().unwrap();
    assert_eq!(
        group.severity,
        Severity::Critical,
        "still waiting, as written"
    );
    assert_eq!(
        group.id.0,
        "netdev-unregister-stuck:group/net-device/critical/still-waiting/cause-unknown/user-space"
    );
    // The group stands for every device of the ring (others' forged devices in the same
    // state may join it: they share the signature).
    assert!(
        members.count >= held.len() && members.count <= held.len() + others.len(),
        "count {} for {} devices of ours and {} others in the ring",
        members.count,
        held.len(),
        others.len()
    );
    assert_eq!(
        group.summary,
        format!(
            "the kernel cannot free {} network devices: still waiting (lines written to /dev/kmsg by user space, not the kernel's own)",
            thousands(members.count)
        )
    );
    assert_eq!(members.members.len(), members.count.min(1_000));
    assert_eq!(members.omitted, members.count - members.members.len());
    assert_eq!(members.order, "most repeated first");
    // The first devices by name, most repeated first, then a line for the rest.
    let most = held.values().max().copied().unwrap();
    let first = &members.members[0];
    assert_eq!(
        held.get(first.subject.key().trim_start_matches("netdev/")),
        Some(&most),
        "the first member is one of the most repeated: {first:#?}"
    );
    assert!(group.evidence[0]
        .fact
        .contains("most repeated first; the first 10:"));
    assert_eq!(group.evidence[1].fact, first.summary);
    assert!(
        group.evidence[11]
            .fact
            .starts_with(&format!("… and {} more", thousands(members.count - 10))),
        "{:#?}",
        group.evidence[11]
    );
    // The user-space note is on every member, alone or said once for the group.
    let note = "written to /dev/kmsg by user space (facility user) — not the kernel's own report";
    for member in &members.members {
        assert!(
            member.evidence.iter().any(|e| e.fact.contains(note))
                || group.evidence.iter().any(|e| e.fact.contains(note)),
            "{member:#?}"
        );
    }
    assert!(json_bytes < 3_000_000, "bounded: {json_bytes} bytes");
    eprintln!(
        "flood: {} of our {DEVICES} devices survived in the ring ({} records), one group of {}, JSON report {json_bytes} bytes",
        held.len(),
        held.values().sum::<usize>(),
        members.count
    );

    // Leave no still-waiting lines behind: once the kernel would have repeated its line (30 s)
    // they are old, and the tests that run next see their own devices alone. It also shows the
    // group's state follows its members'.
    let settle = std::time::Duration::from_secs(32);
    if let Some(left) = settle.checked_sub(written.elapsed()) {
        std::thread::sleep(left);
    }
    let (snapshot, report, _) = collect_and_check(dir.path(), "later.json");
    // Others' floods may have pushed ours out of the ring meanwhile.
    let still_held: std::collections::BTreeSet<&str> = waiting_lines(&snapshot)
        .map(|(device, _)| device)
        .filter(|device| device.starts_with(&prefix))
        .collect();
    let later = naming_devices(&report, &prefix);
    assert!(
        later.iter().all(|f| f.severity == Severity::Info),
        "{:#?}",
        later.iter().map(|f| &f.id).collect::<Vec<_>>()
    );
    if still_held.len() > 20 {
        assert_eq!(later.len(), 1);
        assert!(
            later[0]
                .id
                .0
                .starts_with("netdev-unregister-stuck:group/net-device/info/stopped/"),
            "{}",
            later[0].id
        );
    }
}

fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Item 5: the lab writes the kernel's line into /dev/kmsg itself; the finding is still made,
/// critical, and says the line came from user space.
#[test]
fn a_line_the_lab_wrote_into_kmsg_is_said_to_be_user_spaces() {
    let _host = one_at_a_time();
    let lab = nodedoc_lab::start("netdev-unregister", &lab_context()).expect("start lab");
    let device = lab.instance().fact("device").unwrap().to_string();
    let (report, code) = check_json(&[]);
    let (severity, summary, evidence) = finding_or_member(
        &report,
        "netdev-unregister-stuck",
        &format!("netdev/{device}"),
    )
    .expect("the lab's device is found");
    assert_eq!(severity, Severity::Critical, "{summary}");
    assert_eq!(code, 2);
    assert!(
        evidence.iter().any(|e| e.fact.ends_with(
            "written to /dev/kmsg by user space (facility user) — not the kernel's own report"
        )),
        "{evidence:#?}"
    );
    lab.stop().expect("clean teardown");
}

/// Processes started for a test, killed and reaped on every path.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Children {
    fn pids(&self) -> Vec<i32> {
        self.0.iter().map(|c| c.id() as i32).collect()
    }
}

/// Starts `command`, waits for its `ready` line.
fn start_ready(children: &mut Children, command: &mut Command) -> i32 {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start helper");
    let stdout = child.stdout.take().unwrap();
    let pid = child.id() as i32;
    children.0.push(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready", "helper {pid}");
    pid
}

const FORKERS: usize = 3;

/// Item 6: during tens of thousands of forks, a task passing through `kernel_clone` must not
/// be reported as a stuck hung task. Every hung-task finding must be of a task in D at both
/// readings that did not run in between, with its stack read then.
#[test]
fn busy_forkers_are_never_reported_as_hung_tasks() {
    let _host = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let mut children = Children(Vec::new());
    let counts: Vec<_> = (0..FORKERS)
        .map(|n| dir.path().join(format!("forks-{n}")))
        .collect();
    for count in &counts {
        start_ready(
            &mut children,
            Command::new(NODEDOC).args([
                "lab-helper",
                "forker",
                "--count-file",
                count.to_str().unwrap(),
            ]),
        );
    }
    let forkers = children.pids();
    let forks = || -> u64 {
        counts
            .iter()
            .filter_map(|c| std::fs::read_to_string(c).ok())
            .filter_map(|t| t.trim().parse::<u64>().ok())
            .sum()
    };

    let (mut checks, mut seen_in_d, mut d_at_both) = (0, 0, 0);
    while checks < 40 && (checks < 3 || forks() < 40_000) {
        checks += 1;
        let (snapshot, report, _) = collect_and_check(dir.path(), &format!("churn-{checks}.json"));
        let resample = snapshot.resample.as_ref().expect("a second reading");
        for &pid in &forkers {
            let Some(p) = snapshot.process(pid) else {
                continue;
            };
            if p.state == TaskState::UninterruptibleSleep {
                seen_in_d += 1;
                if resample
                    .task(p.key())
                    .is_some_and(|t| t.state == TaskState::UninterruptibleSleep)
                {
                    d_at_both += 1;
                }
            }
        }
        for finding in report.findings.iter().filter(|f| f.detector == "hung-task") {
            for subject in subjects(finding) {
                let Subject::Process { pid, .. } = subject else {
                    continue;
                };
                assert!(
                    !forkers.contains(pid),
                    "a forker was reported hung: {finding:#?}"
                );
                // Kernel reports of tasks no longer blocked claim nothing about now.
                if !finding.summary.contains("stuck in uninterruptible sleep") {
                    continue;
                }
                let p = snapshot.process(*pid).expect("the reported task was read");
                assert!(
                    !forkers.contains(&p.ppid),
                    "a forker's child was reported hung: {finding:#?}"
                );
                assert_eq!(p.state, TaskState::UninterruptibleSleep, "{finding:#?}");
                let sample = resample.task(p.key()).expect("read twice");
                assert_eq!(
                    sample.state,
                    TaskState::UninterruptibleSleep,
                    "{finding:#?}"
                );
                assert!(
                    sample.blocked.as_ref().is_some_and(BlockedCheck::confirmed),
                    "reported without a confirmed wait: {sample:#?}"
                );
            }
        }
    }
    let total = forks();
    eprintln!(
        "churn: {total} forks by {FORKERS} forkers over {checks} checks; a forker was in D at the first reading {seen_in_d} times, at both readings {d_at_both} times, and never reported"
    );
    assert!(total >= 20_000, "tens of thousands of forks: {total}");
    assert!(
        seen_in_d > 0,
        "the forkers passed through D while they were read"
    );
}

/// Item 6, offline: the real scan and second reading on a fake /proc, then the detectors. A
/// task whose pid was reused, one that ran between the readings and one that left D while its
/// stack was read are not reported; the one that stayed blocked is, with its stack.
#[test]
fn only_a_task_in_one_wait_at_both_readings_is_reported_hung() {
    use nodedoc_procfs::testing::{resample_between, FakeProc, FakeProcess};
    use nodedoc_procfs::{scan, Gaps, ProcRoot, ReadStep, ScanOptions};

    let dir = tempfile::tempdir().unwrap();
    let mut fake = FakeProc::new(dir.path());
    let in_d = |pid: i32, wchan: &str, stack: &str| {
        let mut p = FakeProcess::new(pid, "task");
        p.state = 'D';
        p.wchan = wchan.into();
        p.stack = stack.into();
        p
    };
    let vfork = "[<0>] kernel_clone+0x1d3/0x400\n[<0>] __do_sys_vfork+0x66/0x90\n";
    fake.process(&FakeProcess::new(1, "init")).unwrap();
    for pid in [20, 21, 22, 23] {
        fake.process(&in_d(pid, "kernel_clone", vfork)).unwrap();
    }
    let root = ProcRoot::at(fake.root()).unwrap();
    let options = ScanOptions {
        wants_kernel_detail: &|p: &nodedoc_model::Process| {
            p.state != TaskState::UninterruptibleSleep
        },
        ..ScanOptions::default()
    };
    let mut processes = scan(&root, &options).unwrap().processes;
    // 21: another process got the pid. 22: it ran, and is in D again in another vfork.
    let mut reused = in_d(21, "kernel_clone", vfork);
    reused.start_time_ticks += 7;
    fake.update(&reused).unwrap();
    let mut ran = in_d(22, "kernel_clone", vfork);
    ran.context_switches += 3;
    fake.update(&ran).unwrap();
    let mut gaps = Gaps::new();
    let tasks = resample_between(&root, &mut processes, &mut gaps, &mut |pid, step| {
        // 23: leaves D for do_wait right after its stack was read.
        if pid == 23 && step == ReadStep::AfterStack {
            let mut waiting = in_d(23, "do_wait", "[<0>] do_wait+0x53/0x120\n");
            waiting.state = 'S';
            waiting.context_switches += 1;
            fake.update(&waiting).unwrap();
        }
    });
    let mut snapshot = Snapshot::new(nodedoc_model::HostInfo {
        hostname: "node-1".into(),
        kernel_release: "6.18.44".into(),
        machine: "x86_64".into(),
        uptime_us: 100_000_000,
        clock_ticks_per_sec: 100,
        collector_version: "test".into(),
        ..Default::default()
    });
    snapshot.processes = processes;
    snapshot.resample = Some(nodedoc_model::Resample {
        interval_ms: 300,
        tasks,
    });
    let findings = nodedoc_detectors::run(&snapshot, &Default::default());
    let hung: Vec<(Option<i32>, &str)> = findings
        .iter()
        .filter(|f| f.detector == "hung-task")
        .map(|f| (f.pid, f.summary.as_str()))
        .collect();
    assert_eq!(hung.len(), 1, "{hung:#?}");
    assert_eq!(hung[0].0, Some(20));
    let f = &findings.iter().find(|f| f.pid == Some(20)).unwrap();
    assert!(f.evidence.iter().any(|e| e.fact
        == "in state D at both readings, 300 ms apart, without running in between (context switches 10 at both, and after its stack was read)"));
    assert!(f.evidence.iter().any(|e| e
        .fact
        .starts_with("kernel stack: kernel_clone ← __do_sys_vfork")));
    assert!(f.summary.contains("a vfork parent"), "{}", f.summary);
}

/// Item 6: a task alone in a namespace it made with `unshare -n` is not in a namespace that
/// was torn down, whether it sleeps or blocks receiving on a socket of its own namespace.
#[test]
fn tasks_in_fresh_unshared_network_namespaces_are_not_netns_gone() {
    let _host = one_at_a_time();
    let mut children = Children(Vec::new());
    let mut sleeper = Command::new("unshare")
        .args(["-n", "sleep", "1000"])
        .stdout(Stdio::null())
        .spawn()
        .expect("unshare -n sleep");
    let sleeper_pid = sleeper.id() as i32;
    // Reaped by the guard from here on.
    let own = std::fs::read_link("/proc/self/ns/net").unwrap();
    let fresh = || {
        std::fs::read_link(format!("/proc/{sleeper_pid}/ns/net")).is_ok_and(|ns| ns != own)
            && std::fs::read_to_string(format!("/proc/{sleeper_pid}/comm"))
                .is_ok_and(|c| c.trim() == "sleep")
    };
    let started = std::time::Instant::now();
    while !fresh() && started.elapsed() < std::time::Duration::from_secs(10) {
        if sleeper.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    children.0.push(sleeper);
    assert!(fresh(), "unshare -n sleep 1000 runs in its own namespace");
    let receiver = start_ready(
        &mut children,
        Command::new("unshare").args(["-n", NODEDOC, "lab-helper", "udp-wait"]),
    );
    // The receiver blocks in recvfrom on its own socket.
    let blocked = || {
        std::fs::read_to_string(format!("/proc/{receiver}/stack"))
            .is_ok_and(|s| s.contains("__skb_wait_for_more_packets"))
    };
    let started = std::time::Instant::now();
    while !blocked() && started.elapsed() < std::time::Duration::from_secs(10) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(blocked(), "the receiver blocks in recvfrom");

    let (report, _) = check_json(&[]);
    let named: Vec<&Finding> = report
        .findings
        .iter()
        .filter(|f| f.detector == "netns-gone")
        .filter(|f| {
            subjects(f)
                .iter()
                .any(|s| matches!(s.pid(), Some(p) if p == sleeper_pid || p == receiver))
        })
        .collect();
    assert!(named.is_empty(), "{named:#?}");
}
