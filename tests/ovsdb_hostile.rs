//! The nodedoc binary against a hostile OVSDB peer (issue 8, item 4): `check --ovsdb` and
//! `ovs ports --ovsdb` end with an error naming the limit (or, for a flood of monitor
//! updates nodedoc does not keep, with the dump), and the child's peak RSS — `ru_maxrss` from
//! `wait4(2)` — stays far below what the same attacks cost before (2 GB and more).

mod common;

use std::io::Read;
use std::process::{Command, Stdio};

use nodedoc_ovsdb::testing::{HostileMode, HostilePeer};

/// Well above what the limits allow a whole `check` to take, far below the old behaviour.
const PEAK_BOUND_KB: i64 = 200 * 1024;

struct Measured {
    code: i32,
    stdout: String,
    stderr: String,
    max_rss_kb: i64,
}

/// Runs the binary and reaps it with `wait4`, for its own peak RSS.
#[allow(clippy::zombie_processes)] // reaped by wait4, which std's Child does not know of
fn nodedoc_measured(args: &[&str]) -> Measured {
    let mut child = Command::new(common::NODEDOC)
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run nodedoc");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let stdout = std::thread::spawn(move || {
        let mut text = String::new();
        out.read_to_string(&mut text).map(|_| text)
    });
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        err.read_to_string(&mut text).map(|_| text)
    });
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value to be overwritten.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: reaps our own child (std's `Child` is not used to wait for it afterwards).
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as i32, "wait4");
    assert!(
        libc::WIFEXITED(status),
        "nodedoc did not exit normally (status {status:#x}): an abort or a signal"
    );
    Measured {
        code: libc::WEXITSTATUS(status),
        stdout: stdout.join().unwrap().unwrap(),
        stderr: stderr.join().unwrap().unwrap(),
        max_rss_kb: usage.ru_maxrss,
    }
}

/// `check --ovsdb ENDPOINT --format json`, measured, with its report's `ovsdb` source.
fn check_against(endpoint: &str) -> (Measured, serde_json::Value) {
    let check = nodedoc_measured(&[
        "check",
        "--ovsdb",
        endpoint,
        "--interval",
        "0",
        "--format",
        "json",
    ]);
    let report: serde_json::Value = serde_json::from_str(&check.stdout)
        .unwrap_or_else(|e| panic!("check printed no report ({e}): {}", check.stderr));
    let source = report["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["source"] == "ovsdb")
        .cloned()
        .expect("an ovsdb source");
    (check, source)
}

/// `check` and `ovs ports` against one peer: both end with `expected` in their error.
fn both_commands_fail_with(mode: HostileMode, expected: &str) {
    let peer = HostilePeer::start(mode).expect("python3 peer");
    let endpoint = peer.endpoint();

    let ports = nodedoc_measured(&["ovs", "ports", "--ovsdb", &endpoint]);
    assert_eq!(ports.code, 3, "{}{}", ports.stdout, ports.stderr);
    assert!(
        ports
            .stderr
            .contains(&format!("--ovsdb {endpoint} could not be read"))
            && ports.stderr.contains(expected),
        "{}",
        ports.stderr
    );
    assert!(
        ports.max_rss_kb < PEAK_BOUND_KB,
        "ovs ports: peak RSS {} kB",
        ports.max_rss_kb
    );

    // check prints what it read (the failed source in it), then fails: the OVSDB was named.
    let (check, source) = check_against(&endpoint);
    assert_eq!(check.code, 3, "{}", check.stderr);
    assert!(check.stderr.contains(expected), "{}", check.stderr);
    assert_eq!(source["state"], "failed", "{source}");
    let detail = source["detail"].as_str().unwrap();
    assert!(
        detail.contains(&endpoint) && detail.contains(expected),
        "{detail}"
    );
    assert!(
        check.max_rss_kb < PEAK_BOUND_KB,
        "check: peak RSS {} kB",
        check.max_rss_kb
    );
    eprintln!(
        "{mode:?}: peak RSS ovs ports {} kB, check {} kB",
        ports.max_rss_kb, check.max_rss_kb
    );
}

#[test]
fn an_echo_flood_from_a_peer_that_never_reads_is_cut_off_at_the_queue_limit() {
    both_commands_fail_with(
        HostileMode::EchoFlood,
        "the server sends requests without reading the replies: the 4 MiB outgoing queue is full (max_outgoing_queue)",
    );
}

#[test]
fn a_120_mb_reply_is_refused_at_the_message_size_limit() {
    both_commands_fail_with(
        HostileMode::HugeReply,
        "a message exceeds the size limit of 16 MiB (max_message_size)",
    );
}

#[test]
fn a_small_reply_that_would_be_huge_once_decoded_is_refused_before_decoding() {
    both_commands_fail_with(
        HostileMode::CostlyReply,
        "a message would take more than 96 MiB of memory once decoded (max_decoded_size)",
    );
}

#[test]
fn a_flood_of_monitor_updates_does_not_grow_nodedoc() {
    // nodedoc reads the initial state of a monitor and cancels it: the updates flooding in
    // before and after are dropped (the ones before within the monitor's backlog).
    let peer = HostilePeer::start(HostileMode::UpdateFlood).expect("python3 peer");
    let endpoint = peer.endpoint();
    let ports = nodedoc_measured(&["ovs", "ports", "--ovsdb", &endpoint, "--format", "json"]);
    assert_eq!(ports.code, 0, "{}{}", ports.stdout, ports.stderr);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&ports.stdout).unwrap();
    assert!(rows.is_empty(), "{rows:?}");
    assert!(
        ports.max_rss_kb < PEAK_BOUND_KB,
        "ovs ports: peak RSS {} kB",
        ports.max_rss_kb
    );

    let (check, source) = check_against(&endpoint);
    assert_eq!(source["state"], "collected", "{source}");
    assert!(
        check.max_rss_kb < PEAK_BOUND_KB,
        "check: peak RSS {} kB",
        check.max_rss_kb
    );
    eprintln!(
        "update flood: peak RSS ovs ports {} kB, check {} kB",
        ports.max_rss_kb, check.max_rss_kb
    );
}
