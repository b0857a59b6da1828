//! # `fd-leak`
//!
//! **Signature.** A process whose open-descriptor count keeps rising round after round of
//! `nodedoc watch`: a straight line fits the counts well, most steps go up, and the latest
//! ones still do ([`trend`](crate::trend)). A pool that grew once and stays flat, or a count
//! that goes up and down with connection churn, is not a leak. Seed 000's ovs-vswitchd grew for
//! days, one set of NETLINK_GENERIC sockets per re-added port, before it hit 102,400.
//!
//! **Sources.** The agent's history of descriptor counts ([`History`](nodedoc_model::History)),
//! with the breakdown by kind at the first and last reading; the process's soft
//! `RLIMIT_NOFILE`. A single `check` has no history and never reports this.
//!
//! **Evidence.** The rate per minute and how well the line fits (R²), the kind that grows and
//! its own rate, the time until the soft limit at that rate, and since when it has been rising.
//! Critical when the limit is less than [`Config::fd_leak_critical_eta_secs`](crate::Config)
//! away. Linked as the cause of `fd-exhaustion` for the same process when both hold.

use nodedoc_model::{
    shell_command, Evidence, FdKind, FdPoint, FdSeries, Finding, Limit, Severity, Subject,
};

use crate::fd_exhaustion::plural;
use crate::trend::growth;
use crate::{duration, thousands, utc, Context, Detector};

/// See the module documentation.
pub struct FdLeak;

/// The process a series is about, when it is still there, and the finding's subject.
pub(crate) fn series_subject<'s>(
    snapshot: &'s nodedoc_model::Snapshot,
    series: &FdSeries,
) -> (Option<&'s nodedoc_model::Process>, Subject) {
    let process = snapshot
        .process(series.pid)
        .filter(|p| p.start_time_ticks == series.start_time_ticks);
    let subject = match process {
        Some(p) => Subject::process(p),
        None => Subject::Process {
            pid: series.pid,
            comm: series.comm.clone(),
        },
    };
    (process, subject)
}

/// The kind of descriptor that grew the most over a series (between its first and last
/// breakdown by kind), with its growth per minute.
pub(crate) fn series_growing_kind(series: &FdSeries) -> Option<(FdKind, f64)> {
    let with_kinds: Vec<&FdPoint> = series
        .points
        .iter()
        .filter(|p| !p.kinds.is_empty())
        .collect();
    match (with_kinds.first(), with_kinds.last()) {
        (Some(a), Some(b)) if b.at_unix_ms > a.at_unix_ms => {
            growing_kind(a, b).map(|(kind, grew)| {
                let minutes = (b.at_unix_ms - a.at_unix_ms) as f64 / 60_000.0;
                (kind, grew as f64 / minutes)
            })
        }
        _ => None,
    }
}

/// The kind that grew the most between two breakdowns, and by how much.
fn growing_kind(first: &FdPoint, last: &FdPoint) -> Option<(FdKind, i64)> {
    last.kinds
        .iter()
        .map(|k| {
            let before = first
                .kinds
                .iter()
                .find(|f| f.kind == k.kind)
                .map_or(0, |f| f.count);
            (k.kind.clone(), k.count as i64 - before as i64)
        })
        .filter(|(_, grew)| *grew > 0)
        .max_by_key(|(_, grew)| *grew)
}

impl Detector for FdLeak {
    fn id(&self) -> &'static str {
        "fd-leak"
    }

    fn detect(&self, cx: &mut Context<'_>) {
        let snapshot = cx.snapshot;
        let Some(history) = &snapshot.history else {
            return;
        };
        for series in &history.fd_series {
            let Some(first) = series.points.first() else {
                continue;
            };
            let t0 = first.at_unix_ms;
            let points: Vec<(f64, f64)> = series
                .points
                .iter()
                .map(|p| {
                    (
                        (p.at_unix_ms.saturating_sub(t0)) as f64 / 1000.0,
                        p.total as f64,
                    )
                })
                .collect();
            let Some(growth) = growth(&points) else {
                continue;
            };
            if !growth.is_leak(points.len(), &cx.config.fd_leak_rule()) {
                continue;
            }
            let last = series.points.last().expect("a series has points");
            let (process, subject) = series_subject(snapshot, series);
            let label = format!("{} (pid {})", series.comm, series.pid);
            let per_minute = growth.fit.slope * 60.0;
            let soft = process.and_then(|p| p.nofile).and_then(|l| match l.soft {
                Limit::Finite(n) => Some(n),
                Limit::Unlimited => None,
            });
            let eta_secs = soft
                .filter(|&s| s > last.total)
                .map(|s| (s - last.total) as f64 / growth.fit.slope);
            let severity = match (soft, eta_secs) {
                (Some(s), _) if last.total >= s => Severity::Critical,
                (_, Some(eta)) if eta <= cx.config.fd_leak_critical_eta_secs as f64 => {
                    Severity::Critical
                }
                _ => Severity::Warning,
            };
            let kind = series_growing_kind(series);
            let kind_text = kind.as_ref().map_or_else(String::new, |(kind, rate)| {
                format!(", mostly {} (+{rate:.1}/min)", plural(kind))
            });
            let eta_text = match (soft, eta_secs) {
                (Some(s), Some(eta)) => format!(
                    "; its limit of {} is about {} away at this rate",
                    thousands(s),
                    duration(eta)
                ),
                (Some(s), None) => format!("; already at its limit of {}", thousands(s)),
                (None, _) => String::new(),
            };
            let mut finding = Finding::new(
                self.id(),
                severity,
                subject,
                format!(
                    "{label} leaks file descriptors: +{per_minute:.1}/min{kind_text}, {} open now{eta_text}",
                    thousands(last.total),
                ),
            );
            let since = series.points[growth.rising_since].at_unix_ms / 1000;
            finding.evidence.push(Evidence::new(
                format!(
                    "{} → {} open descriptors over {} ({} readings), rising since {}",
                    thousands(first.total),
                    thousands(last.total),
                    duration(growth.span_secs),
                    series.points.len(),
                    utc(since)
                ),
                shell_command!("ls /proc/{}/fd | wc -l", series.pid),
            ));
            finding.evidence.push(Evidence::fact(format!(
                "a straight line fits with R² = {:.3}; {:.0}% of the changes were increases",
                growth.fit.r_squared,
                growth.rising_steps * 100.0
            )));
            if let Some((kind, rate)) = &kind {
                finding.evidence.push(Evidence::new(
                    format!("{} grow by {rate:.1} a minute", plural(kind)),
                    shell_command!("ls -l /proc/{}/fd", series.pid),
                ));
            }
            if let (Some(s), Some(eta)) = (soft, eta_secs) {
                finding.evidence.push(Evidence::new(
                    format!(
                        "soft limit {}: reached in about {} at {per_minute:.1}/min",
                        thousands(s),
                        duration(eta)
                    ),
                    shell_command!("grep 'Max open files' /proc/{}/limits", series.pid),
                ));
            }
            if let Some(exhaustion) = cx.finding("fd-exhaustion", &finding.subject) {
                finding.causes.push(exhaustion.id.clone());
            }
            let pid_text = series.pid.to_string();
            let rate_text = format!("{per_minute:.1}");
            let kind_name = kind
                .as_ref()
                .map_or("descriptor".to_string(), |(k, _)| k.to_string());
            cx.emit(
                finding,
                &[
                    ("pid", &pid_text),
                    ("comm", &series.comm),
                    ("rate", &rate_text),
                    ("kind", &kind_name),
                ],
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{process, snapshot};
    use crate::Config;
    use nodedoc_model::{FdKindCount, FdSeries, History, NetlinkProtocol, ResourceLimit};

    fn point(at_s: u64, total: u64, generic: Option<u64>) -> FdPoint {
        FdPoint {
            at_unix_ms: 1_780_000_000_000 + at_s * 1000,
            total,
            kinds: generic.map_or_else(Vec::new, |g| {
                vec![FdKindCount {
                    kind: FdKind::NetlinkSocket {
                        protocol: NetlinkProtocol::GENERIC,
                    },
                    count: g,
                }]
            }),
        }
    }

    fn run_on(points: Vec<FdPoint>, soft: u64) -> Vec<Finding> {
        let mut p = process(812, "ovs-vswitchd");
        p.fds = Some(nodedoc_model::FdCensus {
            total: points.last().unwrap().total,
            kinds: Vec::new(),
            socket_resolution: nodedoc_model::SocketResolution::PidfdGetfd,
            namespace_fds: Vec::new(),
            stdin: None,
            fuse_device_fds: 0,
        });
        p.nofile = Some(ResourceLimit {
            soft: Limit::Finite(soft),
            hard: Limit::Finite(soft),
        });
        let mut snap = snapshot(vec![p]);
        snap.history = Some(History {
            fd_series: vec![FdSeries {
                pid: 812,
                start_time_ticks: 100,
                comm: "ovs-vswitchd".into(),
                points,
            }],
            untracked_movers: 0,
            ..Default::default()
        });
        crate::run(&snap, &Config::default())
    }

    #[test]
    fn a_steady_netlink_leak_gives_its_rate_kind_and_time_to_the_limit() {
        // +30 fds every 10 s = 180/min, all NETLINK_GENERIC.
        let mut points: Vec<FdPoint> = (0..12)
            .map(|i| point(i * 10, 1000 + 30 * i, None))
            .collect();
        points[0].kinds = point(0, 1000, Some(900)).kinds;
        points[11].kinds = point(110, 1330, Some(1230)).kinds;
        let findings = run_on(points, 102_400);
        let leak = findings.iter().find(|f| f.detector == "fd-leak").unwrap();
        assert_eq!(leak.severity, Severity::Warning);
        assert!(leak.summary.contains("+180.0/min"), "{}", leak.summary);
        assert!(
            leak.summary
                .contains("NETLINK_GENERIC netlink sockets (+180.0/min)"),
            "{}",
            leak.summary
        );
        // (102,400 - 1,330) / 3 per second = 33,690 s = 9h 21m.
        assert!(
            leak.summary.contains("about 9h 21m away"),
            "{}",
            leak.summary
        );
        assert_eq!(leak.pid, Some(812));
    }

    #[test]
    fn close_to_the_limit_it_is_critical_and_explains_fd_exhaustion() {
        let points: Vec<FdPoint> = (0..12)
            .map(|i| point(i * 10, 9_600 + 30 * i, None))
            .collect();
        let findings = run_on(points, 10_000);
        let leak = findings.iter().find(|f| f.detector == "fd-leak").unwrap();
        let exhaustion = findings
            .iter()
            .find(|f| f.detector == "fd-exhaustion")
            .unwrap();
        assert_eq!(leak.severity, Severity::Critical);
        assert_eq!(leak.causes, vec![exhaustion.id.clone()]);
        assert_eq!(exhaustion.caused_by, vec![leak.id.clone()]);
    }

    #[test]
    fn growing_once_then_flat_is_not_a_leak() {
        let points: Vec<FdPoint> = (0..12)
            .map(|i| point(i * 10, if i < 2 { 100 } else { 4000 }, None))
            .collect();
        assert!(run_on(points, 102_400)
            .iter()
            .all(|f| f.detector != "fd-leak"));
    }
}
