//! Seed 003's kube-proxy, for real: a process dumping the 5,000 addresses of a kube-ipvs0
//! over netlink in a loop is found by `check` and by `watch` as a `cpu-hog`, classified as
//! netlink address dumps from perf samples of its threads' kernel call chains; without perf
//! the weak fallback says it is weak.
//!
//! Its own test binary, so that cargo runs it alone: the hog needs a share of the CPU that
//! the lab tests, running in parallel, would take.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{check_json, finding, has_evidence, lab_context};
use nodedoc_agent::{Event, EventKind};
use nodedoc_model::{ProfileMethod, Severity, Snapshot};

/// One lab at a time: two hogs would compete for the two cores.
static LAB: Mutex<()> = Mutex::new(());

/// A config file lowering the `cpu-hog` threshold to a quarter of a core, for the collector's
/// suspects and the detector alike. On an idle machine the dumper's two threads take about
/// two cores; on a shared 2-core machine (CI's other tests, other builds) it can get less
/// than the default half core, and the test is about the class, not the threshold (the
/// detector's unit tests cover that).
fn config() -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut file, b"[thresholds]\ncpu_hog_share = 0.25\n").unwrap();
    file
}

fn lab() -> (
    std::sync::MutexGuard<'static, ()>,
    nodedoc_lab::LabGuard,
    i32,
) {
    let serial = LAB.lock().unwrap_or_else(|e| e.into_inner());
    let lab = nodedoc_lab::start("netlink-dump-hog", &lab_context()).expect("start lab");
    let pid: i32 = lab.instance().fact("hog_pid").unwrap().parse().unwrap();
    (serial, lab, pid)
}

/// The share of the profile's samples whose path holds `frame`.
fn share_with(snapshot: &Snapshot, pid: i32, frame: &str) -> f64 {
    let profile = snapshot
        .cpu_profiles
        .iter()
        .find(|p| p.pid == pid)
        .unwrap_or_else(|| panic!("no profile of {pid}: {:?}", snapshot.sources));
    let on: u64 = profile
        .stacks
        .iter()
        .filter(|s| s.frames.iter().any(|f| f == frame))
        .map(|s| s.samples)
        .sum();
    on as f64 / profile.samples.max(1) as f64
}

#[test]
fn check_finds_the_dumper_and_classifies_it_as_netlink_address_dumps_from_kernel_samples() {
    let (_serial, lab, pid) = lab();

    let config = config();
    let (report, _) = check_json(&["--config", config.path().to_str().unwrap()]);
    let f = finding(&report, "cpu-hog", &format!("pid/{pid}"));
    assert_eq!(f.severity, Severity::Warning, "{:#?}", f);
    assert!(
        f.summary.contains(
            "in netlink address dumps (kube-proxy IPVS NodeIPs, seed 003: cache the result)"
        ),
        "{}",
        f.summary
    );
    // The deciding frames, with their share of the samples.
    let deciding = f
        .evidence
        .iter()
        .find(|e| e.fact.contains(" of its samples (") && e.fact.contains("netlink address dumps"))
        .unwrap_or_else(|| panic!("no deciding frames: {:#?}", f.evidence));
    for frame in [
        "netlink_dump",
        "rtnl_dump_all",
        "inet_dump_addr",
        "in_dev_dump_addr",
    ] {
        assert!(deciding.fact.contains(frame), "{frame}: {}", deciding.fact);
    }
    let share: f64 = deciding
        .fact
        .split(" in ")
        .find_map(|part| part.split("% of its samples").next()?.parse().ok())
        .unwrap_or_else(|| panic!("no share in {}", deciding.fact));
    assert!(share >= 25.0, "{}", deciding.fact);
    assert!(has_evidence(f, "perf samples of"), "{:#?}", f.evidence);
    assert!(f.fix.contains("cache the result"), "{}", f.fix);
    assert!(report
        .sources
        .iter()
        .any(|s| s.source == "cpu-profile" && s.detail.contains("with perf events")));

    // The snapshot holds the structured profile: perf samples whose kernel paths go through
    // netlink_dump → … → inet_dump_addr, and what sampling cost.
    // (The library, as `nodedoc collect` runs it, with the same threshold as above.)
    let mut options = nodedoc_collect::CollectOptions::default();
    options.cpu_hog.threshold = 0.25;
    let snapshot = nodedoc_collect::Collector::new(options)
        .snapshot(&nodedoc_collect::Silent)
        .expect("collect");
    // What `nodedoc collect -o FILE` writes and `check --from FILE` reads back.
    let snapshot: Snapshot =
        serde_json::from_str(&serde_json::to_string(&snapshot).unwrap()).unwrap();
    let profile = snapshot.cpu_profiles.iter().find(|p| p.pid == pid).unwrap();
    assert_eq!(profile.method, ProfileMethod::PerfEvents);
    assert_eq!(profile.threads, 2);
    assert!(
        profile.samples > 0 && profile.cost.wall_us > 0,
        "{profile:?}"
    );
    assert!(profile.cost.ring_bytes > 0);
    let dumping = share_with(&snapshot, pid, "inet_dump_addr");
    assert!(
        dumping >= 0.25,
        "inet_dump_addr in {dumping} of the samples"
    );
    assert!(share_with(&snapshot, pid, "netlink_dump") >= dumping);
    // The same snapshot, offline, gives the same class.
    let findings = nodedoc_detectors::run(
        &snapshot,
        &nodedoc_detectors::Config {
            cpu_hog_share: 0.25,
            ..Default::default()
        },
    );
    let offline = findings
        .iter()
        .find(|f| f.detector == "cpu-hog" && f.pid == Some(pid))
        .expect("cpu-hog from the saved snapshot");
    assert_eq!(offline.severity, Severity::Warning);

    lab.stop().expect("clean teardown");
    assert!(
        std::fs::metadata(format!("/proc/{pid}")).is_err(),
        "the dumper is gone"
    );
}

#[test]
fn without_perf_the_fallback_reads_stacks_says_it_is_weak_and_shows_the_dumping_sockets() {
    let (_serial, lab, pid) = lab();
    let start = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let close = start.rfind(')').unwrap();
    let start_time_ticks: u64 = start[close + 2..]
        .split(' ')
        .nth(19)
        .unwrap()
        .parse()
        .unwrap();
    let mut profiler = nodedoc_perf::Profiler::new();
    let out = profiler.profile(
        &[nodedoc_perf::Target {
            pid,
            start_time_ticks,
            comm: "netlink-dumper".into(),
        }],
        &nodedoc_perf::ProfileOptions {
            perf: false,
            ..Default::default()
        },
    );
    let profile = &out.profiles[0];
    assert_eq!(profile.method, ProfileMethod::ProcStack);
    assert!(profile.cpu_cores.is_none());
    assert!(
        profile.notes.iter().any(|n| n.starts_with("weak: ")),
        "{:?}",
        profile.notes
    );
    // Its namespace holds a handful of netlink sockets: the table was read, and both of the
    // dumper's sockets are in it.
    let dumps = profile.netlink_dumps.as_ref().expect("the dump hint");
    assert!(dumps.namespace_sockets < 100, "{dumps:?}");
    assert_eq!(dumps.sockets, 2, "{dumps:?}");
    assert!(dumps.dumping.iter().all(|d| d.protocol == 0), "{dumps:?}");
    lab.stop().expect("clean teardown");
}

/// A child process killed (and reaped) when the guard drops, on every exit path.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn watch(args: &[&str]) -> (Guard, Receiver<Event>) {
    let mut child = Command::new(common::NODEDOC)
        .args(["watch", "--format", "json"])
        .args(args)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .expect("start watch");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let Ok(event) = serde_json::from_str::<Event>(&line) else {
                continue;
            };
            if tx.send(event).is_err() {
                break;
            }
        }
    });
    (Guard(child), rx)
}

#[test]
fn watch_opens_the_hog_after_consecutive_rounds_with_its_class() {
    let (_serial, lab, pid) = lab();
    let config = config();
    let (_watch, events) = watch(&[
        "--interval",
        "1s",
        "--sample",
        "0s",
        "--config",
        config.path().to_str().unwrap(),
    ]);
    // A bound on a hang, not a timing assertion.
    let deadline = Instant::now() + Duration::from_secs(180);
    let opened = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(e)
                if e.event == EventKind::Open
                    && e.finding.detector == "cpu-hog"
                    && e.finding.pid == Some(pid) =>
            {
                break e
            }
            Ok(_) => {}
            Err(RecvTimeoutError::Timeout) => panic!("no cpu-hog opened for {pid}"),
            Err(RecvTimeoutError::Disconnected) => panic!("watch exited"),
        }
    };
    let f = &opened.finding;
    assert_eq!(f.severity, Severity::Warning, "{f:#?}");
    assert!(f.summary.contains("netlink address dumps"), "{}", f.summary);
    assert!(
        has_evidence(f, "consecutive rounds since"),
        "{:#?}",
        f.evidence
    );
    assert!(has_evidence(f, "inet_dump_addr"), "{:#?}", f.evidence);
    lab.stop().expect("clean teardown");
}
