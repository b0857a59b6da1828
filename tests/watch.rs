//! `nodedoc watch` against real processes: a leak opens `fd-leak` with its rate and time to
//! the limit and resolves once the leaking process is gone; a process that opened thousands of
//! descriptors once and holds them is not a leak.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use nodedoc_agent::{Event, EventKind};

/// A child process killed (and reaped) when the guard drops, on every exit path.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a lab helper and waits for its `ready` line.
fn helper(args: &[&str]) -> Guard {
    let mut child = Command::new(common::NODEDOC)
        .arg("lab-helper")
        .args(args)
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .expect("start helper");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready", "helper {args:?} said {line:?}");
    Guard(child)
}

/// `nodedoc watch --format json ARGS`, its events arriving on a channel.
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
            let event: Event = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("not an event line ({e}): {line}"));
            if tx.send(event).is_err() {
                break;
            }
        }
    });
    (Guard(child), rx)
}

/// The first event that `wanted` accepts, waiting at most `limit` (a bound on a hang, not a
/// timing assertion).
fn wait_for(rx: &Receiver<Event>, limit: Duration, wanted: impl Fn(&Event) -> bool) -> Event {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(event) if wanted(&event) => return event,
            Ok(_) => {}
            Err(RecvTimeoutError::Timeout) => panic!("no such event within {limit:?}"),
            Err(RecvTimeoutError::Disconnected) => panic!("watch exited"),
        }
    }
}

#[test]
fn a_leak_opens_with_its_rate_and_eta_and_resolves_when_the_process_is_gone() {
    // 20 sockets a second = 1,200 a minute, towards a soft limit of 19,000.
    let mut leaker = helper(&["fd-leaker", "--per-second", "20", "--soft-limit", "19000"]);
    let leaker_pid = leaker.0.id() as i32;
    // Opens 3,000 sockets at once and holds them: not a leak.
    let hog = helper(&["fd-hog", "--sockets", "3000", "--soft-limit", "19000"]);
    let hog_pid = hog.0.id() as i32;

    let (_watch, events) = watch(&["--interval", "1s", "--sample", "0s", "--resolve-after", "2"]);
    let is_leak_of =
        |pid: i32| move |e: &Event| e.finding.detector == "fd-leak" && e.finding.pid == Some(pid);
    let opened = wait_for(&events, Duration::from_secs(120), |e| {
        assert!(
            !(is_leak_of(hog_pid)(e)),
            "the holder of 3,000 sockets was called a leak: {}",
            e.finding.summary
        );
        e.event == EventKind::Open && is_leak_of(leaker_pid)(e)
    });
    let summary = &opened.finding.summary;
    // The rate, within 20 % of 1,200/min.
    let rate: f64 = summary
        .split("+")
        .nth(1)
        .and_then(|s| s.split("/min").next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no rate in {summary}"));
    assert!(
        (960.0..=1440.0).contains(&rate),
        "rate {rate}/min is not within 20 % of 1,200: {summary}"
    );
    assert!(summary.contains("NETLINK_GENERIC"), "{summary}");
    assert!(
        summary.contains("its limit of 19,000 is about"),
        "{summary}"
    );
    assert!(opened
        .finding
        .evidence
        .iter()
        .any(|e| e.fact.contains("soft limit 19,000: reached in about")));

    // The leaker stops and is killed: the finding resolves.
    let _ = leaker.0.kill();
    let _ = leaker.0.wait();
    let resolved = wait_for(&events, Duration::from_secs(60), |e| {
        e.event == EventKind::Resolve && is_leak_of(leaker_pid)(e)
    });
    assert_eq!(resolved.finding.id, opened.finding.id);
    drop(hog);
}
