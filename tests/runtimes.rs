//! Real container runtimes that cannot stop a container (seed 003), end to end: a containerd
//! 1.6 driven through its CRI by the lab (as kubelet drives it) and a dockerd 20.10, each with
//! a container whose killed init waits in `zap_pid_ns_processes` for a child frozen with the
//! cgroup v1 freezer. nodedoc, given the runtime's own log, must find the chain
//! `container-stop-failed ← pidns-exit-hang ← hung-task` with the container id, the init, the
//! frozen child and the runtime's line — and the lab must leave nothing behind.
//!
//! Needs root and Debian's containerd, runc, docker.io and busybox-static (.ci/run installs
//! them).

mod common;

use std::path::{Path, PathBuf};

use common::{finding, has_evidence, lab_context, nodedoc, NODEDOC};
use nodedoc_model::{LogEntry, LogFormat, Report, ServiceLog, Snapshot, Subject};

/// Reads a containerd/dockerd logfmt file into a service log.
///
/// A stand-in for `check --log FILE` (the offline-logs work), so that these tests give the
/// detectors what that option will: `msg` as the message, `time` as the time, `level`, the
/// other keys as fields.
fn read_logfmt(path: &Path, service: &str) -> ServiceLog {
    let text = std::fs::read_to_string(path).expect("runtime log");
    let mut entries = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let pairs = logfmt_pairs(line);
        let get = |k: &str| {
            pairs
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        let Some(message) = get("msg") else { continue };
        entries.push(LogEntry {
            line: n as u64 + 1,
            at_unix_ms: get("time").and_then(|t| rfc3339_ms(&t)),
            level: get("level"),
            message,
            fields: pairs
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "msg" | "time" | "level"))
                .cloned()
                .collect(),
        });
    }
    ServiceLog {
        source: path.display().to_string(),
        service: Some(service.into()),
        format: LogFormat::Logfmt,
        entries_read: entries.len() as u64,
        entries,
        entries_dropped: 0,
    }
}

/// `key=value` and `key="quoted \" value"` pairs.
fn logfmt_pairs(line: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut rest = line.trim();
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq].trim().to_string();
        rest = &rest[eq + 1..];
        let value;
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, next)) = chars.next() {
                            out.push(match next {
                                'n' => '\n',
                                't' => '\t',
                                other => other,
                            });
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => out.push(c),
                }
            }
            value = out;
            rest = &quoted[end.min(quoted.len())..];
        } else {
            let end = rest.find(' ').unwrap_or(rest.len());
            value = rest[..end].to_string();
            rest = &rest[end..];
        }
        pairs.push((key, value));
        rest = rest.trim_start();
    }
    pairs
}

/// `2026-12-01T07:02:28.566406368Z` in milliseconds since the epoch.
fn rfc3339_ms(t: &str) -> Option<i64> {
    let (date, time) = t.trim_end_matches('Z').split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut h = hms.split(':').map(|x| x.parse::<i64>().ok());
    let (hh, mm, ss) = (h.next()??, h.next()??, h.next()??);
    let ms: i64 = format!("{:0<3}", &frac[..frac.len().min(3)]).parse().ok()?;
    // Days from civil (Howard Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + hh * 3600 + mm * 60 + ss) * 1000) + ms)
}

/// Collects a live snapshot (with `extra` collect arguments), adds the runtime's log, and
/// checks it.
fn check_with_log(dir: &Path, log: ServiceLog, extra: &[&str]) -> Report {
    let file = dir.join("snapshot.json");
    let mut args = vec!["collect", "-o", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    let collected = nodedoc(&args);
    assert!(
        collected.status.success(),
        "collect: {}",
        String::from_utf8_lossy(&collected.stderr)
    );
    let mut snapshot: Snapshot =
        serde_json::from_slice(&std::fs::read(&file).unwrap()).expect("snapshot");
    snapshot.service_logs.push(log);
    std::fs::write(&file, serde_json::to_vec(&snapshot).unwrap()).unwrap();
    let (report, _) = common::check_json(&["--from", file.to_str().unwrap()]);
    report
}

/// What a lab left behind, if anything: its processes, directory and cgroups.
fn leftovers(pids: &[i32], dir: &Path, cgroup: &str) -> Vec<String> {
    let mut left = Vec::new();
    for pid in pids {
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            // A zombie another parent will reap is gone for our purposes.
            if !stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
            {
                left.push(format!("pid {pid}"));
            }
        }
    }
    if dir.exists() {
        left.push(dir.display().to_string());
    }
    for entry in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let path = entry.path().join(cgroup);
        if path.exists() {
            left.push(path.display().to_string());
        }
    }
    left
}

/// The lab's top-level cgroup, from the frozen child's freezer path.
fn lab_cgroup(freezer_cgroup: &str) -> String {
    freezer_cgroup
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap()
        .to_string()
}

/// A running runtime lab and the facts the tests use.
struct StuckLab {
    guard: nodedoc_lab::LabGuard,
    id: String,
    init: i32,
    child: i32,
    log_path: PathBuf,
    lab_dir: PathBuf,
    cgroup: String,
}

impl StuckLab {
    fn start(scenario: &str) -> StuckLab {
        let guard = nodedoc_lab::start(scenario, &lab_context()).expect("lab");
        let lab = guard.instance().clone();
        let fact = |k: &str| {
            lab.fact(k)
                .unwrap_or_else(|| panic!("fact {k}"))
                .to_string()
        };
        let log_path = PathBuf::from(fact("runtime_log"));
        StuckLab {
            id: fact("container_id"),
            init: fact("init_pid").parse().unwrap(),
            child: fact("child_pid").parse().unwrap(),
            lab_dir: log_path.parent().unwrap().to_path_buf(),
            log_path,
            cgroup: lab_cgroup(&fact("freezer_cgroup")),
            guard,
        }
    }

    fn fact(&self, key: &str) -> String {
        self.guard
            .instance()
            .fact(key)
            .unwrap_or_else(|| panic!("fact {key}"))
            .to_string()
    }

    /// Tears the lab down and returns what it left behind.
    fn stop(self) -> Vec<String> {
        let StuckLab {
            guard,
            init,
            child,
            lab_dir,
            cgroup,
            ..
        } = self;
        guard.stop().expect("teardown");
        leftovers(&[init, child], &lab_dir, &cgroup)
    }
}

#[test]
fn containerd_cri_stop_failure_is_chained_to_the_killed_init_and_its_frozen_child() {
    let started = std::time::Instant::now();
    let lab = StuckLab::start("containerd-stop-hang");
    let fact = |k: &str| lab.fact(k);
    let (id, init, child) = (lab.id.clone(), lab.init, lab.child);
    // The CRI call failed as kubelet's would, and containerd logged it.
    assert!(fact("runtime_log_line").contains(&format!(
        r#"error="rpc error: code = DeadlineExceeded desc = an error occurs during waiting for container \"{id}\" to be killed: wait container \"{id}\": context deadline exceeded""#
    )));

    let work = tempfile::tempdir().unwrap();
    // The lab's CRI socket names the pod, as the node's containerd socket would.
    let socket = fact("socket");
    let report = check_with_log(
        work.path(),
        read_logfmt(&lab.log_path, "containerd"),
        &["--cri-socket", &socket],
    );
    let cri = report
        .sources
        .iter()
        .find(|s| s.source == "cri")
        .expect("cri source");
    assert_eq!(
        cri.state,
        nodedoc_model::SourceState::Collected,
        "{}",
        cri.detail
    );

    let stop = finding(&report, "container-stop-failed", &format!("container/{id}"));
    assert_eq!(stop.subject, Subject::Container { id: id.clone() });
    assert!(
        stop.summary.starts_with(&format!(
            "containerd could not stop container {}",
            &id[..12]
        )),
        "{}",
        stop.summary
    );
    assert!(
        has_evidence(stop, "containerd's CRI StopContainer failed"),
        "{:#?}",
        stop.evidence
    );
    assert!(has_evidence(
        stop,
        &format!("StopContainer for \"{id}\" failed")
    ));
    assert!(has_evidence(stop, "context deadline exceeded"));
    let pod = |f: &nodedoc_model::Finding| {
        f.container
            .as_ref()
            .expect("container")
            .pod
            .clone()
            .expect("pod")
    };
    let expected = nodedoc_model::PodRef {
        uid: fact("pod_uid"),
        namespace: Some(fact("pod_namespace")),
        name: Some(fact("pod_name")),
    };
    assert_eq!(pod(stop), expected);
    assert_eq!(
        stop.container.as_ref().unwrap().name.as_deref(),
        Some("app")
    );

    let hang = finding(&report, "pidns-exit-hang", &format!("pid/{init}"));
    let hung = finding(&report, "hung-task", &format!("pid/{child}"));
    assert_eq!(stop.caused_by, vec![hang.id.clone()]);
    assert_eq!(hang.caused_by, vec![hung.id.clone()]);
    assert!(hang
        .summary
        .contains(&format!("child {child} sleep is frozen")));
    assert!(has_evidence(hang, "zap_pid_ns_processes"));
    for f in [hang, hung] {
        let c = f
            .container
            .as_ref()
            .expect("process findings name the container");
        assert_eq!(c.id, id);
        assert_eq!(c.pod.as_ref().unwrap().uid, fact("pod_uid"));
        assert!(has_evidence(f, &format!("is in container {}", &id[..12])));
    }
    // The report a person reads shows the chain and the container.
    let text = nodedoc(&[
        "check",
        "--from",
        work.path().join("snapshot.json").to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("container-stop-failed"), "{text}");
    assert!(
        text.contains(&format!("is in container {}", &id[..12])),
        "{text}"
    );

    let left = lab.stop();
    assert!(left.is_empty(), "left behind: {left:?}");
    eprintln!("containerd lab and check: {:?}", started.elapsed());
}

/// `watch --cri-socket` names the pods of its rounds' findings as `check` does (the flag used to
/// be accepted and ignored: the agent's findings carried pod uids only).
#[test]
fn watch_names_the_pod_of_a_stuck_containers_tasks_from_the_cri_socket() {
    let lab = StuckLab::start("containerd-stop-hang");
    let fact = |k: &str| lab.fact(k);
    let socket = fact("socket");
    let output = nodedoc(&[
        "watch",
        "--format",
        "json",
        "--rounds",
        "2",
        "--interval",
        "1s",
        "--cri-socket",
        &socket,
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains("--cri-socket"), "{stderr}");
    let events: Vec<nodedoc_agent::Event> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let hang = events
        .iter()
        .find(|e| {
            e.event == nodedoc_agent::EventKind::Open
                && e.finding.detector == "pidns-exit-hang"
                && e.finding.pid == Some(lab.init)
        })
        .unwrap_or_else(|| panic!("no pidns-exit-hang open for {}: {stdout}", lab.init));
    let container = hang.finding.container.as_ref().expect("container");
    assert_eq!(container.id, lab.id);
    assert_eq!(container.name.as_deref(), Some("app"));
    assert_eq!(
        container.pod,
        Some(nodedoc_model::PodRef {
            uid: fact("pod_uid"),
            namespace: Some(fact("pod_namespace")),
            name: Some(fact("pod_name")),
        })
    );
    let left = lab.stop();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn dockerd_stop_failure_is_chained_to_the_killed_init_and_its_frozen_child() {
    let started = std::time::Instant::now();
    let lab = StuckLab::start("docker-stop-hang");
    let fact = |k: &str| lab.fact(k);
    let (id, init, child) = (lab.id.clone(), lab.init, lab.child);
    let netns = fact("netns");

    let work = tempfile::tempdir().unwrap();
    let report = check_with_log(work.path(), read_logfmt(&lab.log_path, "dockerd"), &[]);
    let stop = finding(&report, "container-stop-failed", &format!("container/{id}"));
    assert!(
        stop.summary.starts_with(&format!(
            "dockerd could not stop container {} (docker)",
            &id[..12]
        )),
        "{}",
        stop.summary
    );
    assert!(has_evidence(
        stop,
        "dockerd's SIGKILL did not make the container exit within 10 s"
    ));
    assert!(has_evidence(
        stop,
        "dockerd killed the container but never received its exit event"
    ));
    assert!(has_evidence(stop, "the container ignored SIGTERM"));
    let hang = finding(&report, "pidns-exit-hang", &format!("pid/{init}"));
    let hung = finding(&report, "hung-task", &format!("pid/{child}"));
    assert_eq!(stop.caused_by, vec![hang.id.clone()]);
    assert_eq!(hang.caused_by, vec![hung.id.clone()]);
    for f in [stop, hang, hung] {
        let c = f.container.as_ref().expect("container");
        assert_eq!(c.id, id);
        assert_eq!(c.runtime, Some(nodedoc_model::ContainerRuntime::Docker));
    }

    let mut left = lab.stop();
    if Path::new("/run/netns").join(&netns).exists() {
        left.push(format!("netns {netns}"));
    }
    assert!(left.is_empty(), "left behind: {left:?}");
    eprintln!("dockerd lab and check: {:?}", started.elapsed());
}

#[test]
fn a_named_cri_socket_that_cannot_be_read_is_an_error_after_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("absent.sock");
    let output = nodedoc(&[
        "check",
        "--format",
        "json",
        "--interval",
        "0",
        "--cri-socket",
        socket.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    let report: Report = serde_json::from_slice(&output.stdout).expect("the report first");
    let cri = report.sources.iter().find(|s| s.source == "cri").unwrap();
    assert_eq!(cri.state, nodedoc_model::SourceState::Failed);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "--cri-socket {} could not be read: cannot reach the CRI socket",
            socket.display()
        )) && stderr.contains("No such file or directory"),
        "{stderr}"
    );
}

/// `watch --cri-socket` with a socket that cannot be read: said on standard error once, not
/// every round, and in every round's `cri` source (it used to be ignored without a word).
#[test]
fn watch_says_once_that_a_named_cri_socket_cannot_be_read() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("absent.sock");
    let output = nodedoc(&[
        "watch",
        "--format",
        "json",
        "--rounds",
        "3",
        "--interval",
        "1s",
        "--sample",
        "0s",
        "--no-fds",
        "--cri-socket",
        socket.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let said: Vec<&str> = stderr
        .lines()
        .filter(|l| {
            l.contains(&format!(
                "--cri-socket {} could not be read",
                socket.display()
            ))
        })
        .collect();
    assert_eq!(said.len(), 1, "{stderr}");
    assert!(said[0].contains("No such file or directory"), "{stderr}");
}

#[test]
fn logfmt_stand_in_reads_quotes_and_times() {
    let pairs = logfmt_pairs(
        r#"time="2026-12-01T07:02:28.566406368Z" level=error msg="StopContainer for \"ab\" failed" error="x""#,
    );
    assert_eq!(
        pairs[2],
        ("msg".into(), r#"StopContainer for "ab" failed"#.into())
    );
    assert_eq!(rfc3339_ms("1970-01-02T00:00:01.5Z"), Some(86_401_500));
    let _ = NODEDOC;
}
