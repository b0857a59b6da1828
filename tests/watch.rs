//! `nodedoc watch` against real processes: a leak opens `fd-leak` with its rate and time to
//! the limit and resolves once the leaking process is gone; a process that opened thousands of
//! descriptors once and holds them is not a leak.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use nodedoc_agent::{Event, EventKind};

use common::KillOnDrop as Guard;

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

/// A free loopback port (bound and released: good enough for a test's own daemon).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET path` on 127.0.0.1:port, the body.
fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let (_, body) = text.split_once("\r\n\r\n")?;
    Some(body.to_string())
}

/// The series Prometheus returns for an instant query (empty when it cannot be asked yet).
fn query(port: u16, promql: &str) -> Vec<serde_json::Value> {
    let encoded: String = promql
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let Some(body) = http_get(port, &format!("/api/v1/query?query={encoded}")) else {
        return Vec::new();
    };
    let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    json["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Waits (bounded) until `check` holds for the query's result.
fn until(port: u16, promql: &str, limit: Duration, check: impl Fn(&[serde_json::Value]) -> bool) {
    let deadline = Instant::now() + limit;
    loop {
        let result = query(port, promql);
        if check(&result) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never agreed on {promql}; last result: {result:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn prometheus_scrapes_an_open_leak_and_sees_it_clear() {
    let prometheus = "/usr/bin/prometheus";
    assert!(
        std::path::Path::new(prometheus).exists(),
        "Debian's prometheus package is needed (the test script installs it)"
    );
    let mut leaker = helper(&["fd-leaker", "--per-second", "20", "--soft-limit", "19000"]);
    let leaker_pid = leaker.0.id();
    let metrics_port = free_port();
    let listen = format!("127.0.0.1:{metrics_port}");
    let (_watch, events) = watch(&[
        "--interval",
        "1s",
        "--sample",
        "0s",
        "--resolve-after",
        "2",
        "--listen",
        &listen,
    ]);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: nodedoc\n    static_configs:\n      - targets: ['{listen}']\n"
        ),
    )
    .unwrap();
    let prometheus_port = free_port();
    let _prometheus = Guard(
        Command::new(prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prometheus_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus"),
    );

    // The leak opens, and Prometheus has it: the finding's series and its detector's count.
    wait_for(&events, Duration::from_secs(120), |e| {
        e.event == EventKind::Open && e.finding.detector == "fd-leak"
    });
    let open =
        format!("nodedoc_finding_open{{detector=\"fd-leak\",id=\"fd-leak:pid/{leaker_pid}\"}}");
    until(prometheus_port, &open, Duration::from_secs(60), |r| {
        r.len() == 1 && r[0]["value"][1] == "1"
    });
    until(
        prometheus_port,
        "sum(nodedoc_findings_open{detector=\"fd-leak\"})",
        Duration::from_secs(60),
        |r| r.len() == 1 && r[0]["value"][1] != "0",
    );
    // Its descriptors are exported while it is followed.
    until(
        prometheus_port,
        &format!("nodedoc_process_open_fds{{pid=\"{leaker_pid}\",kind=\"total\"}}"),
        Duration::from_secs(60),
        |r| r.len() == 1,
    );

    // The fault goes: the finding resolves, its series disappears and the count is 0 again
    // (not a gauge stuck at 1, node-problem-detector issue 474).
    let _ = leaker.0.kill();
    let _ = leaker.0.wait();
    wait_for(&events, Duration::from_secs(60), |e| {
        e.event == EventKind::Resolve && e.finding.detector == "fd-leak"
    });
    until(
        prometheus_port,
        "sum(nodedoc_findings_open{detector=\"fd-leak\"})",
        Duration::from_secs(60),
        |r| r.len() == 1 && r[0]["value"][1] == "0",
    );
    until(prometheus_port, &open, Duration::from_secs(60), |r| {
        r.is_empty()
    });
    // The agent reports on itself.
    until(
        prometheus_port,
        "nodedoc_agent_rounds_total",
        Duration::from_secs(60),
        |r| r.len() == 1,
    );
}

/// The value of one sample line of the exposition (`name{labels} value`).
fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition
        .lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// CPU seconds (user + system) a process has used.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

#[test]
fn a_kernel_log_flood_is_survived_counted_and_cheap() {
    let metrics_port = free_port();
    let listen = format!("127.0.0.1:{metrics_port}");
    let (watch_guard, _events) =
        watch(&["--interval", "1s", "--sample", "0s", "--listen", &listen]);
    let agent = watch_guard.0.id();
    let rounds = |port| {
        http_get(port, "/metrics")
            .and_then(|m| sample(&m, "nodedoc_agent_rounds_total"))
            .unwrap_or(0.0)
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while rounds(metrics_port) < 1.0 {
        assert!(
            Instant::now() < deadline,
            "the agent never finished a round"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let before = http_get(metrics_port, "/metrics").unwrap();
    let read_before = sample(&before, "nodedoc_stream_records_total{stream=\"kmsg\"}").unwrap();
    let lost_before = sample(&before, "nodedoc_stream_lost_total{stream=\"kmsg\"}").unwrap();
    let cpu_before = cpu_seconds(agent);

    // 50,000 records in a burst: more than the ring holds (128 KiB here).
    let tag = format!("ndburst{}", std::process::id());
    for n in 0..50_000 {
        nodedoc_kmsg::write_kmsg(&format!("{tag}: record {n}")).expect("write /dev/kmsg");
    }
    let rounds_after_burst = rounds(metrics_port) + 3.0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while rounds(metrics_port) < rounds_after_burst {
        assert!(
            Instant::now() < deadline,
            "the agent stopped finishing rounds after the flood"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let after = http_get(metrics_port, "/metrics").expect("the agent still answers");
    let read =
        sample(&after, "nodedoc_stream_records_total{stream=\"kmsg\"}").unwrap() - read_before;
    let lost = sample(&after, "nodedoc_stream_lost_total{stream=\"kmsg\"}").unwrap() - lost_before;
    // Every record is either read or counted as lost (others may write too: at least ours).
    assert!(
        read + lost >= 50_000.0,
        "read {read} + lost {lost} < 50,000"
    );
    // Bounded work: a spinning reader would burn seconds of CPU here.
    let cpu = cpu_seconds(agent) - cpu_before;
    assert!(
        cpu < 5.0,
        "the agent used {cpu:.2} s of CPU for a 50,000-record flood"
    );
    drop(watch_guard);
}

#[test]
fn user_log_rules_open_findings_from_a_followed_file_and_events_resolve() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    std::fs::write(&log, "Remounting filesystem read-only (before the agent)\n").unwrap();
    let config = dir.path().join("nodedoc.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[[log]]
path = "{}"

[[log.rule]]
id = "app-disk-error"
severity = "warning"
pattern = 'I/O error, dev (?P<dev>\w+)'
summary = "I/O errors on {{dev}}"
explanation = "The disk reports errors."

[[log.rule]]
id = "app-read-only"
kind = "condition"
severity = "critical"
pattern = 'Remounting filesystem read-only'
"#,
            log.display()
        ),
    )
    .unwrap();
    let (_watch, events) = watch(&[
        "--interval",
        "1s",
        "--sample",
        "0s",
        "--resolve-after",
        "2",
        "--config",
        config.to_str().unwrap(),
    ]);
    // A condition written before the agent started is still a condition.
    let condition = wait_for(&events, Duration::from_secs(60), |e| {
        e.event == EventKind::Open && e.finding.detector == "app-read-only"
    });
    assert_eq!(
        condition.finding.severity,
        nodedoc_model::Severity::Critical
    );
    // A new matching line opens the event rule's finding...
    let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    std::io::Write::write_all(&mut file, b"kernel: I/O error, dev sdz, sector 42\n").unwrap();
    let opened = wait_for(&events, Duration::from_secs(60), |e| {
        e.event == EventKind::Open && e.finding.detector == "app-disk-error"
    });
    assert_eq!(opened.finding.summary, "I/O errors on sdz");
    assert_eq!(opened.finding.explanation, "The disk reports errors.");
    // ...which resolves once no line matches; the condition does not.
    let resolved = wait_for(&events, Duration::from_secs(60), |e| {
        e.event == EventKind::Resolve
            && matches!(
                e.finding.detector.as_str(),
                "app-disk-error" | "app-read-only"
            )
    });
    assert_eq!(resolved.finding.detector, "app-disk-error");
}

#[test]
fn a_restarted_agent_does_not_announce_again_what_it_reported_unless_asked() {
    // A fault that stays: a parent that never reaps its children.
    let lab = nodedoc_lab::start("zombies", &common::lab_context()).expect("start lab");
    let parent: i32 = lab.instance().fact("parent_pid").unwrap().parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let state_arg = state.to_str().unwrap();
    let is_zombies =
        move |e: &Event| e.finding.detector == "zombie-processes" && e.finding.pid == Some(parent);
    let rounds = |n: &'static str| -> Vec<&str> {
        vec!["--interval", "1s", "--state-file", state_arg, "--rounds", n]
    };

    // First run: one open.
    let args = rounds("3");
    let (first, events) = watch(&args);
    let opened = wait_for(&events, Duration::from_secs(60), |e| {
        e.event == EventKind::Open && is_zombies(e)
    });
    // Let it finish its rounds: it writes the state file at the end of each.
    let mut first = first;
    let _ = first.0.wait();
    assert!(state.exists());

    // Restarted with the same state file: still open, so not announced again.
    let (mut second, events) = watch(&args);
    let _ = second.0.wait();
    let seen: Vec<Event> = events.iter().collect();
    assert!(
        !seen
            .iter()
            .any(|e| e.event == EventKind::Open && is_zombies(e)),
        "announced again: {:?}",
        seen.iter()
            .map(|e| (&e.event, &e.finding.id))
            .collect::<Vec<_>>()
    );

    // --reopen asks for it again.
    let mut args = rounds("2");
    args.push("--reopen");
    let (third, events) = watch(&args);
    let again = wait_for(&events, Duration::from_secs(60), |e| {
        e.event == EventKind::Open && is_zombies(e)
    });
    assert_eq!(again.finding.id, opened.finding.id);
    let mut third = third;
    let _ = third.0.wait();
    lab.stop().unwrap();
}

/// containerd's CRI line for a stop that failed (as the containerd-stop-hang lab gets it),
/// stamped now.
fn stop_failed_line(id: &str) -> String {
    let now = humantime::format_rfc3339_nanos(std::time::SystemTime::now());
    format!(
        "time=\"{now}\" level=error msg=\"StopContainer for \\\"{id}\\\" failed\" error=\"rpc error: code = DeadlineExceeded desc = an error occurs during waiting for container \\\"{id}\\\" to be killed: wait container \\\"{id}\\\": context deadline exceeded\"\n"
    )
}

fn append(path: &std::path::Path, text: &str) {
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap();
    std::io::Write::write_all(&mut file, text.as_bytes()).unwrap();
}

/// `watch --log FILE` follows a runtime's log as `check --log` reads one: containerd's failed
/// StopContainer written while the agent runs opens `container-stop-failed` (the detector could
/// only fire in `check`); with a 3 s window it resolves once the line has aged out; after
/// logrotate moved the file away, the new file is followed.
#[test]
fn a_followed_runtime_log_opens_container_stop_failed_which_resolves_once_its_line_ages_out() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("containerd.log");
    std::fs::write(&log, "").unwrap();
    let (_watch, events) = watch(&[
        "--interval",
        "1s",
        "--sample",
        "0s",
        "--no-fds",
        "--resolve-after",
        "1",
        "--log-window",
        "3s",
        "--log",
        log.to_str().unwrap(),
    ]);
    // Ids of this test's own (there is no such container).
    let id = format!("{:064x}", 0xdead_0000_u64 + u64::from(std::process::id()));
    let again = format!("{:064x}", 0xbeef_0000_u64 + u64::from(std::process::id()));
    let about = |id: &str, kind: EventKind| {
        let key = format!("container/{id}");
        move |e: &Event| {
            e.event == kind
                && e.finding.detector == "container-stop-failed"
                && e.finding.subject.key() == key
        }
    };
    append(&log, &stop_failed_line(&id));
    let opened = wait_for(
        &events,
        Duration::from_secs(60),
        about(&id, EventKind::Open),
    );
    assert_eq!(
        opened.finding.subject,
        nodedoc_model::Subject::Container { id: id.clone() }
    );
    assert!(
        opened.finding.summary.starts_with(&format!(
            "containerd could not stop container {}",
            &id[..12]
        )),
        "{}",
        opened.finding.summary
    );
    assert!(opened.finding.evidence.iter().any(|e| e
        .fact
        .contains(&format!("StopContainer for \"{id}\" failed"))));
    let resolved = wait_for(
        &events,
        Duration::from_secs(60),
        about(&id, EventKind::Resolve),
    );
    assert_eq!(resolved.finding.id, opened.finding.id);

    // logrotate: the old file moves away, a new one takes its name.
    std::fs::rename(&log, dir.path().join("containerd.log.1")).unwrap();
    append(&log, &stop_failed_line(&again));
    wait_for(
        &events,
        Duration::from_secs(60),
        about(&again, EventKind::Open),
    );
}
