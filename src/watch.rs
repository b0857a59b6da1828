//! `nodedoc watch`: the node agent. The same collector and detectors as `check`, in a loop;
//! findings become events (open, update, resolve) sent to sinks (terminal, JSON lines,
//! Prometheus metrics), and what is open survives a restart in a state file.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, Result};
use nodedoc_agent::lifecycle::{LifecycleOptions, Scope, Tracker};
use nodedoc_agent::metrics::{Metrics, MetricsState, ProcessFds, StreamStats};
use nodedoc_agent::{JsonLinesSink, Sink, TextSink};
use nodedoc_collect::Collector;
use nodedoc_model::Snapshot;

use crate::cli::{Format, WatchArgs};

/// Runs the agent until SIGINT/SIGTERM (or `--rounds`).
pub fn watch(args: &WatchArgs) -> Result<u8> {
    limit_allocator_arenas();
    let settings = args.thresholds.settings()?;
    let agent = &settings.agent;
    // Flags win over the file, the file over the defaults.
    let interval = args
        .interval
        .or(agent.interval)
        .unwrap_or(Duration::from_secs(10));
    let format = args.format.unwrap_or(match agent.format {
        Some(nodedoc_config::OutputFormat::Json) => Format::Json,
        _ => Format::Text,
    });
    let output = args.output.clone().or_else(|| agent.output.clone());
    let listen = args.listen.or(agent.listen);
    let state_file = args.state_file.clone().or_else(|| agent.state_file.clone());
    let resolve_after = args
        .resolve_after
        .or(agent.resolve_after_rounds)
        .unwrap_or(3);

    let mut options = args.sources.options();
    // A round reads every process twice, `--sample` apart, as `check` does: that is what
    // tells a task stuck in D from one passing through, within one round.
    options.interval = args.sample;
    options.log_rules = settings.log_rules.clone();
    options.cpu_hog.threshold = settings.detectors.cpu_hog_share;
    options.followed_logs = args.logs.clone();
    if let Some(age) = args.log_window.or(agent.log_window) {
        options.log_window.age = age;
    }
    let mut collector = Collector::new(options);
    // Pod names for the containers of each round, as `check` has them (asked again only for
    // a container not named yet).
    let mut namer = crate::cri::ContainerNamer::new(args.sources.cri_socket.as_deref());

    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        // Between rounds the agent waits on its streams; the waker ends that wait.
        let waker = collector.stream_waker();
        ctrlc::set_handler(move || {
            stop.store(true, Ordering::SeqCst);
            waker.wake();
        })
        .context("cannot install the signal handler that stops the agent cleanly")?;
    }

    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    let out: Box<dyn Write + Send> = match &output {
        Some(path) => Box::new(open_append(path)?),
        None => Box::new(anstream::stdout()),
    };
    match format {
        Format::Json => sinks.push(Box::new(JsonLinesSink::new(out))),
        Format::Text => sinks.push(Box::new(TextSink::new(out))),
    }
    let mut detector_ids: Vec<String> = nodedoc_detectors::detectors()
        .iter()
        .map(|d| d.id().to_string())
        .filter(|id| settings.enabled(id))
        .collect();
    // The user's rules are detectors too: each gets its zero series.
    for log in &settings.log_rules {
        detector_ids.extend(log.rules.rules().iter().map(|r| r.id().to_string()));
    }
    let metrics = Metrics::new(detector_ids);
    sinks.push(Box::new(metrics.sink()));
    let _server = match &listen {
        Some(addr) => {
            let server = nodedoc_agent::http::MetricsServer::start(*addr, metrics.clone())
                .with_context(|| format!("cannot listen on {addr}"))?;
            eprintln!(
                "nodedoc watch: metrics on http://{}/metrics",
                server.local_addr()
            );
            Some(server)
        }
        None => None,
    };

    let host = nodedoc_procfs::host_info();
    let mut kube = crate::kube::KubeWatch::new(
        &args.kube,
        &host.hostname,
        args.kube_every.unwrap_or(crate::kube::WATCH_EVERY),
    );
    let lifecycle = LifecycleOptions {
        resolve_after_rounds: resolve_after,
        ..LifecycleOptions::default()
    };
    let mut tracker = match &state_file {
        Some(path) if !args.reopen => match nodedoc_agent::state::load(path)? {
            Some(state) if state.applies_to(&host.hostname, host.boot_time_unix) => {
                if let Some(sequence) = state
                    .cursors
                    .get("kmsg")
                    .and_then(|c| c.get("sequence"))
                    .and_then(|s| s.as_u64())
                {
                    collector.resume_kernel_log_after(sequence);
                }
                Tracker::restore(lifecycle, state.open)
            }
            Some(_) => {
                eprintln!(
                    "nodedoc watch: {} was written before this boot or on another host; starting afresh",
                    nodedoc_model::text::terminal(&path.display().to_string())
                );
                Tracker::new(lifecycle)
            }
            None => Tracker::new(lifecycle),
        },
        _ => Tracker::new(lifecycle),
    };

    let mut log_health = FollowedLogHealth::default();
    let mut rounds: u64 = 0;
    // The first round waits a random part of the interval, so a fleet started together
    // (a DaemonSet rollout) does not read /proc in lockstep; later rounds keep a jitter.
    let mut wait = interval.mul_f64(fastrand::f64() * 0.1);
    if args.rounds.is_some() {
        wait = Duration::ZERO;
    }
    // The detectors an OVSDB update can change the answer of, run again over the last
    // round's snapshot (patched with the update) as soon as it arrives.
    let mut ovs_detectors = nodedoc_detectors::detectors_reading("ovsdb");
    ovs_detectors.retain(|id| settings.enabled(id));
    let mut last: Option<Snapshot> = None;
    loop {
        let due = Instant::now() + wait;
        while !stop.load(Ordering::SeqCst) {
            let left = due.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let news = collector.follow_streams(last.as_mut(), left);
            if let (true, Some(snapshot)) = (news.changed, &last) {
                let earlier: Vec<nodedoc_model::Finding> = tracker
                    .open_findings()
                    .into_iter()
                    .map(|o| o.finding.clone())
                    .collect();
                let findings = nodedoc_detectors::run_only(
                    snapshot,
                    &settings.detectors,
                    &ovs_detectors,
                    &earlier,
                );
                // Opens and updates only: a burst of updates is not a number of rounds, so
                // only rounds resolve (a port between del-port and its re-add is not gone).
                let events = tracker.observe(
                    &Scope::Detectors(Default::default()),
                    findings,
                    SystemTime::now(),
                );
                emit(&mut sinks, &tracker, &events)?;
            }
        }
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let round_started = Instant::now();
        if let Some(last) = last.take() {
            collector.recycle(last);
        }
        let mut snapshot = collector
            .round(&nodedoc_collect::Silent)
            .context("collection failed")?;
        if let Some(line) = namer.name(&mut snapshot, Instant::now()) {
            eprintln!("nodedoc watch: {}", nodedoc_model::text::Escaped(&line));
        }
        kube.round(&mut snapshot);
        for line in log_health.changes(&snapshot) {
            eprintln!("nodedoc watch: {}", nodedoc_model::text::Escaped(&line));
        }
        let findings =
            nodedoc_detectors::run_with(&snapshot, &settings.detectors, &|id| settings.enabled(id));
        let events = tracker.observe(&Scope::All, findings, SystemTime::now());
        emit(&mut sinks, &tracker, &events)?;
        rounds += 1;
        let own = own_usage();
        let round_seconds = round_started.elapsed().as_secs_f64();
        metrics.update(|m| {
            observe(m, &snapshot, &collector);
            m.agent.rounds = rounds;
            m.agent.round_seconds = round_seconds;
            m.agent.cpu_seconds = own.0;
            m.agent.resident_bytes = own.1;
        });
        if let Some(path) = &state_file {
            let mut state = nodedoc_agent::AgentState::new(&host.hostname, host.boot_time_unix);
            state.open = tracker.snapshot();
            if let Some(sequence) = collector.kernel_log_stream().last_sequence() {
                state
                    .cursors
                    .insert("kmsg".into(), serde_json::json!({ "sequence": sequence }));
            }
            nodedoc_agent::state::save(path, &state)?;
        }
        // Kept for the streams between rounds; handed back to the collector when the next
        // round starts.
        last = Some(snapshot);
        return_freed_memory();
        if args.rounds.is_some_and(|n| rounds >= n) {
            break;
        }
        let jitter = 1.0 + (fastrand::f64() - 0.5) * 0.1;
        wait = interval
            .mul_f64(jitter)
            .saturating_sub(round_started.elapsed());
    }
    Ok(crate::exit::OK)
}

/// Sends `events` to every sink, then the findings open now.
fn emit(
    sinks: &mut [Box<dyn Sink>],
    tracker: &Tracker,
    events: &[nodedoc_agent::Event],
) -> Result<()> {
    let open = tracker.open_findings();
    let open: Vec<&nodedoc_model::Finding> = open.iter().map(|o| &o.finding).collect();
    for sink in sinks {
        for event in events {
            sink.event(event).context("cannot write an event")?;
        }
        sink.round_end(&open).context("cannot write an event")?;
    }
    Ok(())
}

/// Which `--log` files could not be followed, so that standard error says it once when one
/// fails and once when it can be read again, not every round (the failed source status and the
/// gap say it every round, in the events).
#[derive(Default)]
struct FollowedLogHealth {
    failing: std::collections::BTreeSet<String>,
}

impl FollowedLogHealth {
    /// The lines to print for this round's `service-log` statuses.
    fn changes(&mut self, snapshot: &Snapshot) -> Vec<String> {
        let mut lines = Vec::new();
        let mut now_failing = std::collections::BTreeSet::new();
        for status in snapshot
            .sources
            .iter()
            .filter(|s| s.source == "service-log")
        {
            // The detail starts with the path, then " (--log, followed…".
            let path = status
                .detail
                .split_once(" (--log")
                .map_or(status.detail.as_str(), |(p, _)| p);
            if status.state == nodedoc_model::SourceState::Failed {
                if !self.failing.contains(path) {
                    lines.push(format!("cannot follow {}", status.detail));
                }
                now_failing.insert(path.to_string());
            } else if self.failing.contains(path) {
                lines.push(format!("{path} can be read again: following it"));
            }
        }
        self.failing = now_failing;
        lines
    }
}

/// Processes whose descriptors are shown in the metrics, besides the ones followed.
const TOP_PROCESSES: usize = 10;

/// Updates the metrics that describe the host (not the findings) from a round.
fn observe(m: &mut MetricsState, snapshot: &Snapshot, collector: &Collector) {
    // Kernel log lines by signature, as they arrive.
    let signatures = &nodedoc_detectors::catalog().kernel_log_signature;
    for record in collector.kernel_log_stream().arrived() {
        if let Some(signature) = signatures.iter().find(|s| s.matches(&record.message)) {
            *m.kernel_log_signatures
                .entry(signature.id.clone())
                .or_default() += 1;
        }
    }
    for signature in signatures {
        m.kernel_log_signatures
            .entry(signature.id.clone())
            .or_default();
    }
    let ovs = collector.ovs_stream();
    let (updates, _, fell_behind, queued) = ovs.monitor_stats();
    m.streams.insert(
        "ovsdb".into(),
        StreamStats {
            records: updates,
            lost: fell_behind,
            lag: queued as u64,
        },
    );
    if let Some(log) = ovs.log_follower() {
        m.streams.insert(
            "ovs-log".into(),
            StreamStats {
                records: log.lines_read(),
                lost: 0,
                lag: 0,
            },
        );
    }
    if let Some(stats) = collector.kernel_log_stream().stats() {
        m.streams.insert(
            "kmsg".into(),
            StreamStats {
                records: stats.read,
                lost: stats.lost + stats.dropped,
                lag: stats.lag,
            },
        );
    }
    // Descriptors of the processes holding the most, and of the ones followed.
    let followed: std::collections::HashSet<i32> = snapshot
        .history
        .as_ref()
        .map(|h| h.fd_series.iter().map(|s| s.pid).collect())
        .unwrap_or_default();
    let mut by_count: Vec<&nodedoc_model::Process> = snapshot
        .processes
        .iter()
        .filter(|p| p.fds.is_some())
        .collect();
    by_count.sort_by_key(|p| std::cmp::Reverse(p.fds.as_ref().map_or(0, |f| f.total)));
    let shown: Vec<&nodedoc_model::Process> = by_count
        .iter()
        .take(TOP_PROCESSES)
        .copied()
        .chain(
            by_count
                .iter()
                .skip(TOP_PROCESSES)
                .copied()
                .filter(|p| followed.contains(&p.pid)),
        )
        .collect();
    m.processes.clear();
    m.fd_limits.clear();
    for process in shown {
        let Some(fds) = &process.fds else { continue };
        m.processes.push(ProcessFds {
            pid: process.pid,
            comm: process.comm.clone(),
            kind: "total".into(),
            count: fds.total,
        });
        for kind in fds.kinds.iter().take(3) {
            m.processes.push(ProcessFds {
                pid: process.pid,
                comm: process.comm.clone(),
                kind: kind.kind.to_string(),
                count: kind.count,
            });
        }
        if let Some(nodedoc_model::Limit::Finite(soft)) = process.nofile.map(|l| l.soft) {
            m.fd_limits.push((process.pid, process.comm.clone(), soft));
        }
    }
    // Open vSwitch interfaces by state.
    m.ovs_interfaces.clear();
    if let Some(ovs) = &snapshot.ovs {
        for (_, _, interface) in ovs.interfaces() {
            let state = if interface.error.is_some() {
                "error"
            } else if interface.ofport.is_some_and(|p| p < 0) {
                "no-ofport"
            } else if interface.link_state.as_deref() == Some("down") {
                "down"
            } else {
                "up"
            };
            *m.ovs_interfaces.entry(state.into()).or_default() += 1;
        }
    }
}

/// Opens `path` for appending events, never through a symbolic link.
fn open_append(path: &Path) -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
        .with_context(|| format!("cannot open {} for appending", path.display()))
}

/// glibc gives every thread that allocates an arena of its own (up to 8 per core), and keeps
/// what was freed in each: an agent whose scan, kernel-log follower and file readers run on
/// threads would hold several idle arenas. Two are enough for its few threads.
fn limit_allocator_arenas() {
    // SAFETY: mallopt only sets an allocator parameter; called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Hands the memory a round freed back to the kernel: a round builds and drops a whole
/// snapshot, and without this the agent's resident size would stay at its largest round.
fn return_freed_memory() {
    // SAFETY: malloc_trim only releases free memory of the allocator's heaps.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// This process's CPU seconds (user + system) and resident bytes.
fn own_usage() -> (f64, u64) {
    // SAFETY: getrusage fills the struct it is given; an all-zero rusage is a valid value.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let cpu = usage.ru_utime.tv_sec as f64
        + usage.ru_utime.tv_usec as f64 / 1e6
        + usage.ru_stime.tv_sec as f64
        + usage.ru_stime.tv_usec as f64 / 1e6;
    let rss = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * rustix::param::page_size() as u64);
    (cpu, rss)
}

#[cfg(test)]
mod tests {
    use nodedoc_model::{SourceState, SourceStatus};

    use super::*;

    fn round(statuses: &[(&str, SourceState)]) -> Snapshot {
        let mut snapshot = Snapshot::new(Default::default());
        for (path, state) in statuses {
            snapshot.sources.push(SourceStatus {
                source: "service-log".into(),
                state: *state,
                detail: format!("{path} (--log, followed): No such file or directory (os error 2)"),
            });
        }
        snapshot
    }

    /// Regression: an unreadable `--log` file was said in every round's events but never on
    /// standard error; now once when it fails and once when it is back, not every round.
    #[test]
    fn an_unreadable_followed_log_is_said_once_and_its_return_once() {
        let mut health = FollowedLogHealth::default();
        let failed = [
            ("/var/log/a.log", SourceState::Failed),
            ("/var/log/b.log", SourceState::Collected),
        ];
        let first = health.changes(&round(&failed));
        assert_eq!(first.len(), 1);
        assert!(
            first[0].starts_with("cannot follow /var/log/a.log (--log, followed): No such file"),
            "{first:?}"
        );
        assert!(health.changes(&round(&failed)).is_empty());
        let back = health.changes(&round(&[("/var/log/a.log", SourceState::Collected)]));
        assert_eq!(
            back,
            vec!["/var/log/a.log can be read again: following it".to_string()]
        );
        assert!(health
            .changes(&round(&[("/var/log/a.log", SourceState::Collected)]))
            .is_empty());
    }
}
