//! Prometheus metrics: what the agent sees, as series a fleet's monitoring already scrapes.
//!
//! The agent keeps one [`MetricsState`], replaced as a whole after each round (and after each
//! stream update), and the exposition is rendered from it at scrape time through
//! `prometheus-client`'s [`Collector`]. A series therefore exists exactly as long as what it
//! describes: a resolved finding's `nodedoc_finding_open` series disappears and its
//! detector's `nodedoc_findings_open` count goes back to 0 (node-problem-detector issue 474 is a
//! gauge stuck at 1 after the problem went away).
//!
//! Series:
//! - `nodedoc_findings_open{detector,severity}`: open findings, every known detector and
//!   severity present (0 when none);
//! - `nodedoc_finding_open{id,detector,severity}`: 1 per open finding;
//! - `nodedoc_process_open_fds{pid,comm,kind}` and `nodedoc_process_fd_limit{pid,comm}`: the
//!   processes with the most descriptors and the ones a detector watches;
//! - `nodedoc_kernel_log_records_total{signature}`: kernel log records matching known
//!   signatures since the agent started;
//! - `nodedoc_ovs_interfaces{state}`: Open vSwitch interfaces by state;
//! - `nodedoc_stream_records_total{stream}`, `nodedoc_stream_lost_total{stream}`,
//!   `nodedoc_stream_lag{stream}`: the agent's streams (kernel log, OVSDB, log files);
//! - `nodedoc_agent_cpu_seconds_total`, `nodedoc_agent_resident_memory_bytes`,
//!   `nodedoc_agent_round_duration_seconds`, `nodedoc_agent_rounds_total`: the agent itself.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use nodedoc_model::{Finding, Severity};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::sink::Sink;
use crate::Event;

/// One process's descriptors of one kind.
#[derive(Clone, Debug, PartialEq)]
pub struct ProcessFds {
    /// Its pid.
    pub pid: i32,
    /// Its comm.
    pub comm: String,
    /// `total`, or a kind (`netlink-socket/NETLINK_GENERIC`, `socket`, `file`, …).
    pub kind: String,
    /// How many.
    pub count: u64,
}

/// Counters of one stream.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StreamStats {
    /// Records (lines, updates) read since the agent started.
    pub records: u64,
    /// Records lost (overwritten in the kernel ring, dropped from a full queue).
    pub lost: u64,
    /// Records behind: waiting to be read or processed.
    pub lag: u64,
}

/// The agent's own costs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AgentSelf {
    /// CPU seconds (user + system) since the agent started.
    pub cpu_seconds: f64,
    /// Resident memory, bytes.
    pub resident_bytes: u64,
    /// How long the last round took, seconds.
    pub round_seconds: f64,
    /// Rounds completed.
    pub rounds: u64,
}

/// Everything the exposition shows, as of the last round.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricsState {
    /// Every detector id, so each has its zero series.
    pub detectors: Vec<String>,
    /// Open findings: id, detector, severity.
    pub open: Vec<(String, String, Severity)>,
    /// Descriptor counts of the top and watched processes.
    pub processes: Vec<ProcessFds>,
    /// Soft fd limits of those processes: pid, comm, limit.
    pub fd_limits: Vec<(i32, String, u64)>,
    /// Kernel log records by signature since the agent started.
    pub kernel_log_signatures: BTreeMap<String, u64>,
    /// OVS interfaces by state (`ok`, `error`, `no-device`, …).
    pub ovs_interfaces: BTreeMap<String, u64>,
    /// Streams by name.
    pub streams: BTreeMap<String, StreamStats>,
    /// The agent itself.
    pub agent: AgentSelf,
}

/// A shared handle on the metrics: the agent writes it, the HTTP endpoint renders it.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    state: Arc<Mutex<MetricsState>>,
}

impl Metrics {
    /// Empty metrics knowing these detectors.
    pub fn new(detectors: Vec<String>) -> Metrics {
        let metrics = Metrics::default();
        metrics.update(|s| s.detectors = detectors);
        metrics
    }

    /// Changes the state under the lock: a scrape sees all of a change or none of it.
    pub fn update(&self, change: impl FnOnce(&mut MetricsState)) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        change(&mut state);
    }

    /// A copy of the state.
    pub fn state(&self) -> MetricsState {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// A registry exposing these metrics.
    pub fn registry(&self) -> Registry {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self.clone()));
        registry
    }

    /// The exposition text (OpenMetrics), as served on `/metrics`.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry());
        text
    }

    /// A sink that keeps the open findings of this metrics up to date.
    pub fn sink(&self) -> MetricsSink {
        MetricsSink {
            metrics: self.clone(),
        }
    }
}

fn gauge_family<'a>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (Vec<(&'a str, String)>, f64)>,
    metric_type: MetricType,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, metric_type)?;
    for (labels, value) in rows {
        let metric = family.encode_family(&labels)?;
        match metric_type {
            MetricType::Counter => ConstCounter::new(value).encode(metric)?,
            _ => ConstGauge::new(value).encode(metric)?,
        }
    }
    Ok(())
}

impl Collector for Metrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = self.state();
        let severities = [Severity::Critical, Severity::Warning, Severity::Info];
        let mut counts: BTreeMap<(&str, Severity), u64> = BTreeMap::new();
        for detector in &s.detectors {
            for severity in severities {
                counts.insert((detector.as_str(), severity), 0);
            }
        }
        for (_, detector, severity) in &s.open {
            *counts.entry((detector.as_str(), *severity)).or_default() += 1;
        }
        gauge_family(
            &mut encoder,
            "nodedoc_findings_open",
            "Open findings by detector and severity",
            counts.iter().map(|((detector, severity), n)| {
                (
                    vec![
                        ("detector", detector.to_string()),
                        ("severity", severity.to_string()),
                    ],
                    *n as f64,
                )
            }),
            MetricType::Gauge,
        )?;
        gauge_family(
            &mut encoder,
            "nodedoc_finding_open",
            "1 for each open finding; the series disappears when it resolves",
            s.open.iter().map(|(id, detector, severity)| {
                (
                    vec![
                        ("id", id.clone()),
                        ("detector", detector.clone()),
                        ("severity", severity.to_string()),
                    ],
                    1.0,
                )
            }),
            MetricType::Gauge,
        )?;
        gauge_family(
            &mut encoder,
            "nodedoc_process_open_fds",
            "Open file descriptors of the processes with the most and of watched ones, by kind",
            s.processes.iter().map(|p| {
                (
                    vec![
                        ("pid", p.pid.to_string()),
                        ("comm", p.comm.clone()),
                        ("kind", p.kind.clone()),
                    ],
                    p.count as f64,
                )
            }),
            MetricType::Gauge,
        )?;
        gauge_family(
            &mut encoder,
            "nodedoc_process_fd_limit",
            "Soft RLIMIT_NOFILE of the processes in nodedoc_process_open_fds",
            s.fd_limits.iter().map(|(pid, comm, limit)| {
                (
                    vec![("pid", pid.to_string()), ("comm", comm.clone())],
                    *limit as f64,
                )
            }),
            MetricType::Gauge,
        )?;
        gauge_family(
            &mut encoder,
            "nodedoc_kernel_log_records",
            "Kernel log records matching a known signature since the agent started",
            s.kernel_log_signatures
                .iter()
                .map(|(sig, n)| (vec![("signature", sig.clone())], *n as f64)),
            MetricType::Counter,
        )?;
        gauge_family(
            &mut encoder,
            "nodedoc_ovs_interfaces",
            "Open vSwitch interfaces by state",
            s.ovs_interfaces
                .iter()
                .map(|(state, n)| (vec![("state", state.clone())], *n as f64)),
            MetricType::Gauge,
        )?;
        let streams = |pick: fn(&StreamStats) -> u64| {
            s.streams
                .iter()
                .map(move |(name, st)| (vec![("stream", name.clone())], pick(st) as f64))
                .collect::<Vec<_>>()
        };
        gauge_family(
            &mut encoder,
            "nodedoc_stream_records",
            "Records read from each stream since the agent started",
            streams(|st| st.records),
            MetricType::Counter,
        )?;
        gauge_family(
            &mut encoder,
            "nodedoc_stream_lost",
            "Records of each stream lost (overwritten or dropped) since the agent started",
            streams(|st| st.lost),
            MetricType::Counter,
        )?;
        gauge_family(
            &mut encoder,
            "nodedoc_stream_lag",
            "Records of each stream waiting to be read or processed",
            streams(|st| st.lag),
            MetricType::Gauge,
        )?;
        let agent = &s.agent;
        let one = |value: f64| vec![(Vec::new(), value)];
        gauge_family(
            &mut encoder,
            "nodedoc_agent_cpu_seconds",
            "CPU time the agent used (user + system)",
            one(agent.cpu_seconds),
            MetricType::Counter,
        )?;
        gauge_family(
            &mut encoder,
            "nodedoc_agent_resident_memory_bytes",
            "Resident memory of the agent",
            one(agent.resident_bytes as f64),
            MetricType::Gauge,
        )?;
        gauge_family(
            &mut encoder,
            "nodedoc_agent_round_duration_seconds",
            "How long the agent's last round took",
            one(agent.round_seconds),
            MetricType::Gauge,
        )?;
        gauge_family(
            &mut encoder,
            "nodedoc_agent_rounds",
            "Rounds the agent completed",
            one(agent.rounds as f64),
            MetricType::Counter,
        )?;
        Ok(())
    }
}

/// Keeps [`MetricsState::open`] equal to the findings open at the end of each round.
pub struct MetricsSink {
    metrics: Metrics,
}

impl Sink for MetricsSink {
    fn event(&mut self, _event: &Event) -> std::io::Result<()> {
        Ok(())
    }

    fn round_end(&mut self, open: &[&Finding]) -> std::io::Result<()> {
        let rows: Vec<(String, String, Severity)> = open
            .iter()
            .map(|f| (f.id.to_string(), f.detector.clone(), f.severity))
            .collect();
        self.metrics.update(|s| s.open = rows);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nodedoc_model::Subject;

    fn line<'a>(text: &'a str, start: &str) -> Option<&'a str> {
        text.lines().find(|l| l.starts_with(start))
    }

    #[test]
    fn a_resolved_finding_goes_back_to_zero_and_its_series_disappears() {
        let metrics = Metrics::new(vec!["fd-leak".into(), "hung-task".into()]);
        let mut sink = metrics.sink();
        let f = Finding::new(
            "fd-leak",
            Severity::Warning,
            Subject::Process {
                pid: 7,
                comm: "x".into(),
            },
            "leaks",
        );
        sink.round_end(&[&f]).unwrap();
        let text = metrics.render();
        assert!(
            line(
                &text,
                r#"nodedoc_findings_open{detector="fd-leak",severity="warning"} 1"#
            )
            .is_some(),
            "{text}"
        );
        assert!(line(
            &text,
            r#"nodedoc_finding_open{id="fd-leak:pid/7",detector="fd-leak",severity="warning"} 1"#
        )
        .is_some());
        assert!(line(
            &text,
            r#"nodedoc_findings_open{detector="hung-task",severity="critical"} 0"#
        )
        .is_some());

        sink.round_end(&[]).unwrap();
        let text = metrics.render();
        assert!(line(
            &text,
            r#"nodedoc_findings_open{detector="fd-leak",severity="warning"} 0"#
        )
        .is_some());
        assert!(!text.contains("nodedoc_finding_open{"), "{text}");
    }

    #[test]
    fn hostile_label_values_stay_inside_their_quotes() {
        let metrics = Metrics::new(vec![]);
        metrics.update(|s| {
            s.processes.push(ProcessFds {
                pid: 1,
                comm: "a\"b\\c\nnodedoc_fake 1".into(),
                kind: "total".into(),
                count: 3,
            });
            s.agent.rounds = 2;
        });
        let text = metrics.render();
        assert!(line(&text, "nodedoc_fake").is_none(), "{text}");
        assert!(
            line(&text, "nodedoc_agent_rounds_total 2").is_some(),
            "{text}"
        );
    }
}
