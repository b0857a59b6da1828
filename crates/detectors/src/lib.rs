//! nodedoc's detectors: each matches one known failure signature against a
//! [`Snapshot`](nodedoc_model::Snapshot) and explains what it found.
//!
//! Detectors never read the system: they see the snapshot and the findings of detectors that
//! ran before them, so they give the same answer on a live host and on a saved snapshot.
//! One detector is one file, readable top to bottom; its doc comment states the signature and
//! the sources it relies on. What a finding means, its fix and its references are data, in
//! `data/*.toml` ([`catalog`]).
//!
//! Findings link to each other (`causes` / `caused_by`): a detector that recognises the
//! cause of an earlier finding links itself to it, and [`run`] makes the links symmetric, so
//! a report can print chains such as "ovs-vswitchd at its fd limit ← leaked netlink sockets ←
//! orphaned port".
//!
//! A flood — thousands of findings of one detector with one signature, such as 5,000 devices
//! the kernel cannot free — is reported as one group finding with the count and the first
//! members ([`Signature`], `group.rs`): a detector declares what makes its findings the same
//! failure when it emits them.
#![deny(missing_docs)]

pub mod catalog;
mod cni_plugin_hang;
mod container_stop_failed;
mod cpu_hog;
mod fd_exhaustion;
mod fd_leak;
mod group;
#[cfg(test)]
mod hostile;
mod hung_task;
mod index;
pub mod kernel_release;
mod kubelet_pleg_unhealthy;
mod leak_per_event;
mod log_rules;
mod netdev_unregister_stuck;
mod netns_gone;
mod ovs;
mod ovs_netlink_socket_excess;
mod ovs_orphan_port;
mod ovs_port_flapping;
mod ovs_vswitchd_busy;
mod pidns_exit_hang;
pub mod pod_stuck_terminating;
pub mod replicaset_history_leak;
mod service_logs;
mod stacks;
#[cfg(test)]
mod testing;
pub mod trend;
mod zombie_processes;

use std::collections::HashMap;
use std::sync::LazyLock;

use nodedoc_model::{
    shell_command, Evidence, Finding, FindingId, KmsgRecord, Severity, Snapshot, Subject,
};

pub use catalog::{catalog, render, Catalog, DetectorEntry};
pub use group::Signature;
pub use stacks::{classify_trace, describe_trace, Description, StackClass};

/// Thresholds and windows detectors use. Defaults are what `nodedoc check` uses.
#[derive(Clone, Debug)]
pub struct Config {
    /// `fd-exhaustion` warns at this share of the soft `RLIMIT_NOFILE`.
    pub fd_warning_ratio: f64,
    /// `fd-exhaustion` is critical at this share.
    pub fd_critical_ratio: f64,
    /// `zombie-processes` is critical from this many zombies under one parent.
    pub zombie_critical_count: usize,
    /// `netdev-unregister-stuck` treats a device as still stuck when its last line is this
    /// recent (the kernel repeats the line every 10 s while it waits).
    pub netdev_still_waiting_secs: u64,
    /// `cni-plugin-hang` reports plugins running longer than this.
    pub cni_plugin_timeout_secs: u64,
    /// `ovs-vswitchd-busy` reports ovs-vswitchd above this share of one core between the
    /// two readings.
    pub ovs_busy_cpu_share: f64,
    /// `cpu-hog` reports processes above this share of one core (0.5 is half a core), and
    /// the collector samples the kernel call paths of those above it.
    pub cpu_hog_share: f64,
    /// `cpu-hog` in `watch` needs the process above the share in this many consecutive rounds.
    pub cpu_hog_min_rounds: u64,
    /// `ovs-port-flapping` needs at least this many add/delete cycles of one interface.
    pub ovs_flap_min_cycles: u64,
    /// `ovs-netlink-socket-excess` needs at least this many generic netlink sockets beyond
    /// what the ports need (and more than twice that need).
    pub ovs_netlink_excess_min: u64,
    /// `fd-leak` needs at least this many readings of a process.
    pub fd_leak_min_readings: usize,
    /// `fd-leak` needs the readings to span at least this long.
    pub fd_leak_min_span_secs: f64,
    /// `fd-leak` needs at least this net growth, in descriptors.
    pub fd_leak_min_growth: f64,
    /// `fd-leak` needs a straight line to fit the counts at least this well (R²).
    pub fd_leak_min_r_squared: f64,
    /// `fd-leak` needs at least this share of the changes to be increases.
    pub fd_leak_min_rising_share: f64,
    /// `fd-leak` is critical when the soft limit is at most this far away at the current
    /// rate.
    pub fd_leak_critical_eta_secs: u64,
    /// More findings than this of one detector with one severity and [`Signature`] are
    /// reported as one group finding.
    pub group_above: usize,
    /// A group finding lists at most this many members in its `group.members`.
    pub group_members_max: usize,
    /// A group finding names this many of its members in its evidence.
    pub group_members_shown: usize,
    /// `pod-stuck-terminating` reports a pod still there this long after its
    /// `deletionTimestamp` (the request time plus its grace period).
    pub pod_terminating_margin_secs: u64,
    /// `replicaset-history-leak` warns from this many old ReplicaSets beyond a Deployment's
    /// limit (beyond 10 when its limit keeps them all).
    pub replicaset_history_warning: u64,
    /// `replicaset-history-leak` is critical from this many.
    pub replicaset_history_critical: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            fd_warning_ratio: 0.80,
            fd_critical_ratio: 0.95,
            zombie_critical_count: 500,
            netdev_still_waiting_secs: 30,
            cni_plugin_timeout_secs: 10,
            ovs_busy_cpu_share: 0.5,
            cpu_hog_share: 0.5,
            cpu_hog_min_rounds: 3,
            ovs_flap_min_cycles: 3,
            ovs_netlink_excess_min: 512,
            fd_leak_min_readings: trend::LeakRule::default().min_points,
            fd_leak_min_span_secs: trend::LeakRule::default().min_span_secs,
            fd_leak_min_growth: trend::LeakRule::default().min_net,
            fd_leak_min_r_squared: trend::LeakRule::default().min_r_squared,
            fd_leak_min_rising_share: trend::LeakRule::default().min_rising_steps,
            fd_leak_critical_eta_secs: 3600,
            group_above: 20,
            group_members_max: 1_000,
            group_members_shown: 10,
            pod_terminating_margin_secs: 60,
            replicaset_history_warning: 100,
            replicaset_history_critical: 1_000,
        }
    }
}

impl Config {
    /// What `fd-leak` calls a leak.
    pub fn fd_leak_rule(&self) -> trend::LeakRule {
        trend::LeakRule {
            min_points: self.fd_leak_min_readings,
            min_span_secs: self.fd_leak_min_span_secs,
            min_net: self.fd_leak_min_growth,
            min_r_squared: self.fd_leak_min_r_squared,
            min_rising_steps: self.fd_leak_min_rising_share,
        }
    }
}

/// What a detector sees while it runs.
pub struct Context<'a> {
    /// The snapshot under analysis.
    pub snapshot: &'a Snapshot,
    /// Thresholds.
    pub config: &'a Config,
    findings: Vec<Finding>,
    /// The detector running now and the detectors whose findings it declared it reads.
    running: Option<(&'static str, &'static [String])>,
    /// The signature each finding was emitted with (same index as `findings`).
    signatures: Vec<Option<Signature>>,
    /// Finding ids to their index in `findings`: later detectors look findings up per subject.
    index: HashMap<FindingId, usize>,
    /// The snapshot's processes indexed, built when a detector first needs it.
    processes: std::cell::OnceCell<index::Processes<'a>>,
}

impl<'a> Context<'a> {
    /// A context with no findings yet.
    pub fn new(snapshot: &'a Snapshot, config: &'a Config) -> Context<'a> {
        Context {
            snapshot,
            config,
            findings: Vec::new(),
            running: None,
            signatures: Vec::new(),
            index: HashMap::new(),
            processes: std::cell::OnceCell::new(),
        }
    }

    /// The snapshot's processes indexed (children, pid namespaces, FUSE holders, …).
    pub(crate) fn processes(&self) -> &index::Processes<'a> {
        self.processes
            .get_or_init(|| index::Processes::of(self.snapshot))
    }

    /// Findings made so far (by detectors that ran earlier).
    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    /// The earlier findings of `detector`, which the running detector must declare in its
    /// catalog entry's `links` (that declaration is what orders the detectors).
    pub fn findings_of<'s>(&'s self, detector: &'s str) -> impl Iterator<Item = &'s Finding> + 's {
        self.check_declared(detector);
        self.findings.iter().filter(move |f| f.detector == detector)
    }

    /// The earlier finding of `detector` about `subject`, if any (`detector` declared as
    /// for [`findings_of`](Self::findings_of)).
    pub fn finding(&self, detector: &str, subject: &Subject) -> Option<&Finding> {
        self.check_declared(detector);
        let id = FindingId::new(detector, subject);
        self.index.get(&id).map(|&i| &self.findings[i])
    }

    /// A detector reading findings it did not declare could run before their detector and
    /// silently see none: tests fail on it.
    fn check_declared(&self, detector: &str) {
        if let Some((running, links)) = self.running {
            debug_assert!(
                running == detector || links.iter().any(|l| l == detector),
                "{running} reads the findings of {detector} without declaring it in \
                 data/detectors.toml (links = [\"{detector}\"]): it may run first"
            );
        }
    }

    /// Adds a finding, filling explanation, fix and references from the catalog entry of
    /// its detector with `values` for the templates' placeholders, unless the detector set
    /// them already.
    pub fn emit(&mut self, finding: Finding, values: &[(&str, &str)]) {
        self.push(finding, values, None);
    }

    /// Like [`emit`](Context::emit), declaring the finding's signature: more than
    /// [`Config::group_above`] findings of this detector with the same severity and signature
    /// key are reported as one group finding.
    pub fn emit_as(&mut self, signature: Signature, finding: Finding, values: &[(&str, &str)]) {
        self.push(finding, values, Some(signature));
    }

    fn push(
        &mut self,
        mut finding: Finding,
        values: &[(&str, &str)],
        signature: Option<Signature>,
    ) {
        if let Some(entry) = catalog().detector(&finding.detector) {
            if finding.explanation.is_empty() {
                finding.explanation = render(&entry.explanation, values);
            }
            if finding.fix.is_empty() {
                finding.fix = render(&entry.fix, values);
            }
            finding.references.extend(entry.references.iter().cloned());
        }
        name_container(self.snapshot, &mut finding);
        // One line per document, whichever table cited it first.
        let mut seen = std::collections::HashSet::new();
        finding.references.retain(|r| seen.insert(r.url.clone()));
        self.index
            .entry(finding.id.clone())
            .or_insert(self.findings.len());
        self.findings.push(finding);
        self.signatures.push(signature);
    }
}

/// Names the container (and pod) of a finding about a task in a container, in one place for
/// every detector: the `container` field, and an evidence line the report shows.
/// A detector may have set the container already (a killed init whose own cgroups no longer
/// say, named by its namespace's members).
fn name_container(snapshot: &Snapshot, finding: &mut Finding) {
    let Some(process) = finding.subject.pid().and_then(|pid| snapshot.process(pid)) else {
        return;
    };
    let Some(container) = finding
        .container
        .clone()
        .or_else(|| snapshot.container_of(process))
    else {
        return;
    };
    finding.evidence.push(Evidence::new(
        format!("{} (pid {}) is in {container}", process.comm, process.pid),
        shell_command!("cat /proc/{}/cgroup", process.pid),
    ));
    finding.container = Some(container);
}

/// One known failure signature.
pub trait Detector: Sync {
    /// The stable id (`fd-exhaustion`, …): part of nodedoc's interface.
    fn id(&self) -> &'static str;
    /// Looks for the signature in `cx.snapshot` and emits findings.
    fn detect(&self, cx: &mut Context<'_>);
}

/// Every detector, registered once. The order they run in is not this list's: it is
/// derived from the `links` each declares in `data/detectors.toml` ([`detectors`]).
fn registered() -> &'static [&'static dyn Detector] {
    &[
        &fd_exhaustion::FdExhaustion,
        &fd_leak::FdLeak,
        &zombie_processes::ZombieProcesses,
        &netdev_unregister_stuck::NetdevUnregisterStuck,
        &netns_gone::NetnsGone,
        &hung_task::HungTask,
        &pidns_exit_hang::PidnsExitHang,
        &cni_plugin_hang::CniPluginHang,
        &ovs_port_flapping::OvsPortFlapping,
        &ovs_orphan_port::OvsOrphanPort,
        &ovs_netlink_socket_excess::OvsNetlinkSocketExcess,
        &ovs_vswitchd_busy::OvsVswitchdBusy,
        &leak_per_event::LeakPerEvent,
        &log_rules::LogRules,
        &container_stop_failed::ContainerStopFailed,
        &kubelet_pleg_unhealthy::KubeletPlegUnhealthy,
        &pod_stuck_terminating::PodStuckTerminating,
        &replicaset_history_leak::ReplicasetHistoryLeak,
        &cpu_hog::CpuHog,
    ]
}

/// Every detector in the order they run: each after the detectors whose findings it links
/// to (its catalog entry's `links`), otherwise in registration order.
pub fn detectors() -> &'static [&'static dyn Detector] {
    static ORDER: LazyLock<Vec<&'static dyn Detector>> = LazyLock::new(|| {
        order(registered(), |id| {
            catalog()
                .detector(id)
                .map_or_else(Vec::new, |e| e.links.clone())
        })
        .unwrap_or_else(|e| panic!("nodedoc's built-in detector links are invalid: {e}"))
    });
    &ORDER
}

/// Orders `detectors` so that each runs after the ones `links` names (Kahn's algorithm,
/// stable: ties keep registration order). An error names an unknown link or a cycle.
fn order<'d>(
    detectors: &[&'d dyn Detector],
    links: impl Fn(&str) -> Vec<String>,
) -> Result<Vec<&'d dyn Detector>, String> {
    let index: HashMap<&str, usize> = detectors
        .iter()
        .enumerate()
        .map(|(i, d)| (d.id(), i))
        .collect();
    let mut waiting_on: Vec<usize> = vec![0; detectors.len()];
    let mut unblocks: Vec<Vec<usize>> = vec![Vec::new(); detectors.len()];
    for (i, detector) in detectors.iter().enumerate() {
        for link in &links(detector.id()) {
            let &j = index.get(link.as_str()).ok_or_else(|| {
                format!("{} links to {link}, which is not a detector", detector.id())
            })?;
            waiting_on[i] += 1;
            unblocks[j].push(i);
        }
    }
    let mut ordered = Vec::with_capacity(detectors.len());
    let mut done = vec![false; detectors.len()];
    while ordered.len() < detectors.len() {
        let next = (0..detectors.len()).find(|&i| !done[i] && waiting_on[i] == 0);
        let Some(i) = next else {
            let stuck: Vec<&str> = (0..detectors.len())
                .filter(|&i| !done[i])
                .map(|i| detectors[i].id())
                .collect();
            return Err(format!("the links of {} form a cycle", stuck.join(", ")));
        };
        done[i] = true;
        ordered.push(detectors[i]);
        for &k in &unblocks[i] {
            waiting_on[k] -= 1;
        }
    }
    Ok(ordered)
}

/// Runs every detector over `snapshot` and returns the findings with floods grouped and
/// symmetric links.
pub fn run(snapshot: &Snapshot, config: &Config) -> Vec<Finding> {
    run_with(snapshot, config, &|_| true)
}

/// Runs the detectors `enabled` accepts (by id), in order, over `snapshot`; findings as for
/// [`run`]. A detector switched off makes no findings, and the ones that would have linked to
/// them simply find none.
pub fn run_with(
    snapshot: &Snapshot,
    config: &Config,
    enabled: &dyn Fn(&str) -> bool,
) -> Vec<Finding> {
    let mut cx = Context::new(snapshot, config);
    for detector in detectors().iter().filter(|d| enabled(d.id())) {
        let links = catalog()
            .detector(detector.id())
            .map_or(&[][..], |e| &e.links[..]);
        cx.running = Some((detector.id(), links));
        detector.detect(&mut cx);
    }
    let findings = group::collapse_floods(cx.findings, cx.signatures, config);
    link_both_ways(findings)
}

/// The detectors that read `source` (their catalog entry's `reads`, see
/// [`catalog::SOURCES`]): what an agent runs again when that source changes between rounds.
pub fn detectors_reading(source: &str) -> std::collections::BTreeSet<String> {
    detectors()
        .iter()
        .filter(|d| {
            catalog()
                .detector(d.id())
                .is_some_and(|e| e.reads.iter().any(|r| r == source))
        })
        .map(|d| d.id().to_string())
        .collect()
}

/// Runs only the detectors in `only` over `snapshot`, in their usual order, and returns their
/// findings (floods grouped, links made symmetric) — what an agent does when one source
/// changed between rounds. `earlier` holds the findings open before (the agent's open
/// findings): those of the other detectors are seen by the detectors that run as they would
/// have seen the findings of a full run, so links to them (`leak-per-event` → `fd-leak`) are
/// the same as in a full run and the findings come out with the same chains. Those of `only`
/// that this run does not find again keep their links too: an agent resolves a finding only
/// after rounds without it, and a chain should not change back and forth in between (an
/// orphaned port between its `del-port` and its re-add).
pub fn run_only(
    snapshot: &Snapshot,
    config: &Config,
    only: &std::collections::BTreeSet<String>,
    earlier: &[Finding],
) -> Vec<Finding> {
    let mut cx = Context::new(snapshot, config);
    for finding in earlier.iter().filter(|f| !only.contains(&f.detector)) {
        cx.index
            .entry(finding.id.clone())
            .or_insert(cx.findings.len());
        cx.findings.push(finding.clone());
        cx.signatures.push(None);
    }
    let seeded = cx.findings.len();
    for detector in detectors().iter().filter(|d| only.contains(d.id())) {
        let links = catalog()
            .detector(detector.id())
            .map_or(&[][..], |e| &e.links[..]);
        cx.running = Some((detector.id(), links));
        detector.detect(&mut cx);
    }
    let mut findings = cx.findings;
    let ran = findings.split_off(seeded);
    let signatures = cx.signatures.split_off(seeded);
    let ran = group::collapse_floods(ran, signatures, config);
    let found_again: std::collections::HashSet<&FindingId> = ran.iter().map(|f| &f.id).collect();
    findings.extend(
        earlier
            .iter()
            .filter(|f| only.contains(&f.detector) && !found_again.contains(&f.id))
            .cloned(),
    );
    let ran_count = ran.len();
    findings.extend(ran);
    let mut linked = link_both_ways(findings);
    linked.split_off(linked.len() - ran_count)
}

/// Makes every `causes` link have its `caused_by` twin and the other way round; drops links
/// to findings that are not in the list.
fn link_both_ways(mut findings: Vec<Finding>) -> Vec<Finding> {
    let index: HashMap<FindingId, usize> = findings
        .iter()
        .enumerate()
        .map(|(i, f)| (f.id.clone(), i))
        .collect();
    let mut edges = Vec::new();
    for finding in &findings {
        for effect in &finding.causes {
            edges.push((finding.id.clone(), effect.clone()));
        }
        for cause in &finding.caused_by {
            edges.push((cause.clone(), finding.id.clone()));
        }
    }
    for finding in &mut findings {
        finding.causes.clear();
        finding.caused_by.clear();
    }
    // A set, not `contains` on the lists: a group finding can have thousands of links.
    let mut seen = std::collections::HashSet::new();
    for (cause, effect) in edges {
        let (Some(&c), Some(&e)) = (index.get(&cause), index.get(&effect)) else {
            continue;
        };
        if c == e || !seen.insert((c, e)) {
            continue;
        }
        findings[c].causes.push(effect);
        findings[e].caused_by.push(cause);
    }
    findings
}

/// Who wrote some kernel-log records. The kernel never lets user space log with facility 0
/// (`kern`): whatever root writes into `/dev/kmsg` gets facility `user` (1) or the nonzero
/// one it asks for. A record with another facility is therefore not the kernel's word, however
/// much it looks like it — anyone with write access to `/dev/kmsg` (root, or a container
/// given it) can forge kernel lines. Records from `dmesg` text without a `<prio>` prefix have
/// facility 0 because it is unknown: they count as the kernel's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Provenance {
    /// Records with facility `kern`.
    pub kernel: usize,
    /// Records user space wrote.
    pub user_space: usize,
    /// The facility of the first record user space wrote.
    facility: u8,
}

impl Provenance {
    /// Counts `records` by writer.
    pub fn of<'r>(records: impl IntoIterator<Item = &'r KmsgRecord>) -> Provenance {
        let mut provenance = Provenance::default();
        for record in records {
            provenance.add(record);
        }
        provenance
    }

    /// Counts one more record.
    pub fn add(&mut self, record: &KmsgRecord) {
        self.add_facility(record.facility);
    }

    /// Counts one more line of this facility (0: the kernel's, or unknown).
    pub fn add_facility(&mut self, facility: u8) {
        if facility == 0 {
            self.kernel += 1;
        } else {
            if self.user_space == 0 {
                self.facility = facility;
            }
            self.user_space += 1;
        }
    }

    /// True when at least one record came from the kernel.
    pub fn kernel_wrote_any(&self) -> bool {
        self.kernel > 0
    }

    /// `kernel`, `user-space` or `mixed`: part of a signature key, so that lines user space
    /// forged are never grouped with the kernel's.
    pub fn key(&self) -> &'static str {
        match (self.kernel, self.user_space) {
            (_, 0) => "kernel",
            (0, _) => "user-space",
            _ => "mixed",
        }
    }

    /// The evidence that says user space wrote (some of) the records, if it did.
    pub fn evidence(&self) -> Option<Evidence> {
        if self.user_space == 0 {
            return None;
        }
        let facility = facility_name(self.facility);
        let which = match (self.kernel, self.user_space) {
            (0, 1) => "the line was".to_string(),
            (0, n) => format!("all {n} lines were"),
            (k, n) => format!("{n} of the {} lines were", k + n),
        };
        Some(Evidence::new(
            format!(
                "{which} written to /dev/kmsg by user space (facility {facility}) — not the kernel's own report"
            ),
            shell_command!("dmesg -x | grep -v '^kern '"),
        ))
    }
}

/// The syslog name of a facility number (`user`, `daemon`, `local7`, …).
fn facility_name(facility: u8) -> String {
    const NAMES: &[&str] = &[
        "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
        "authpriv", "ftp",
    ];
    match facility {
        0..=11 => NAMES[facility as usize].to_string(),
        16..=23 => format!("local{}", facility - 16),
        n => n.to_string(),
    }
}

/// The worst severity among `findings`.
pub fn worst(findings: &[Finding]) -> Option<Severity> {
    findings.iter().map(|f| f.severity).max()
}

/// Formats a count with thousands separators: `102409` → `102,409`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A Unix time as `2026-11-25 10:54:46 UTC`.
pub fn utc(unix_secs: u64) -> String {
    // Howard Hinnant's days-to-civil algorithm: exact for the proleptic Gregorian calendar.
    let days = (unix_secs / 86_400) as i64;
    let secs = unix_secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        (secs % 3600) / 60,
        secs % 60
    )
}

/// When a kernel log line was printed, in words. For this host's log: the UTC time and the
/// time since boot (`2026-11-25 10:54:46 UTC (12.3s after boot)`). For a log from a file:
/// the stamp the log printed (its zone unknown) and the time since that log's boot, as far
/// as the line says, and how long before the log's last line.
pub(crate) fn logged_when(
    snapshot: &Snapshot,
    log: &nodedoc_model::KernelLog,
    monotonic_us: u64,
    wall_clock_ms: Option<i64>,
) -> String {
    let after_boot = format!("{:.1}s after boot", monotonic_us as f64 / 1e6);
    if !log.is_from_file() {
        let boot = snapshot.host.boot_time_unix;
        if boot == 0 {
            return after_boot;
        }
        return format!("{} ({after_boot})", utc(boot + monotonic_us / 1_000_000));
    }
    let mut parts = Vec::new();
    if let Some(ms) = wall_clock_ms {
        parts.push(format!("{} as logged", nodedoc_model::clock::format_ms(ms)));
    }
    if monotonic_us > 0 {
        parts.push(after_boot);
    }
    let mut text = if parts.is_empty() {
        "a time the line does not give".to_string()
    } else {
        parts.join(", ")
    };
    match log.age_secs(&snapshot.host, monotonic_us, wall_clock_ms) {
        Some(age) if age >= 1.0 => {
            text.push_str(&format!(" ({} before the log's last line)", duration(age)))
        }
        Some(_) => text.push_str(" (the log's last lines)"),
        None => {}
    }
    text
}

/// The command that shows the lines of a kernel log holding `pattern` (and `after` lines
/// after each): `dmesg | grep` for this host's log, `grep` on the file for a log read from one,
/// `journalctl -k --file` for the kernel entries of journal files.
pub(crate) fn kernel_log_grep(
    log: &nodedoc_model::KernelLog,
    pattern: &str,
    after: Option<u32>,
) -> Result<nodedoc_model::text::ShellCommand, nodedoc_model::text::Unquotable> {
    use nodedoc_model::shell_command;
    let file = log.file.as_ref().map(|f| f.path.as_str()).unwrap_or("");
    match (file.strip_prefix("journal:"), file, after) {
        (_, "", None) => shell_command!("dmesg | grep -F -- {}", pattern),
        (_, "", Some(n)) => shell_command!("dmesg | grep -F -A {} -- {}", n, pattern),
        (Some(journal), _, None) => {
            shell_command!("journalctl -k --file {} | grep -F -- {}", journal, pattern)
        }
        (Some(journal), _, Some(n)) => shell_command!(
            "journalctl -k --file {} | grep -F -A {} -- {}",
            journal,
            n,
            pattern
        ),
        (None, path, None) => shell_command!("grep -F -- {} {}", pattern, path),
        (None, path, Some(n)) => shell_command!("grep -F -A {} -- {} {}", n, pattern, path),
    }
}

/// Formats seconds as `3d 4h`, `5m 2s`, `42s`.
pub(crate) fn duration(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {}s", s / 60, s % 60),
        3600..=86399 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d {}h", s / 86400, (s % 86400) / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without a CRI answer (dockerd, an unreachable socket), the pods the API listed name a
    /// task's container: by the container ids of their statuses, else by the cgroup's pod uid.
    #[test]
    fn the_apis_pods_name_a_container_no_runtime_named() {
        use nodedoc_model::{
            CgroupMembership, ContainerId, KubeContainerStatus, KubeMeta, KubePod, KubeState,
        };
        const ID: &str = "b32a2fd9b0a141bdc9be897b80762009665ce408cde67b93e64dc2b1c1aa2c78";
        const UID: &str = "a548c954-93c6-4845-b26d-89d63b4e1fd7";
        let in_pod = |pid: i32, path: String| {
            let mut p = testing::process(pid, "app");
            p.cgroups = vec![CgroupMembership {
                hierarchy: 0,
                controllers: String::new(),
                path,
            }];
            p
        };
        let other = "c".repeat(64);
        let mut snap = testing::snapshot(vec![
            in_pod(10, format!("/kubepods/besteffort/pod{UID}/{ID}")),
            in_pod(11, format!("/kubepods/besteffort/pod{UID}/{other}")),
        ]);
        snap.kube = Some(KubeState {
            pods: vec![KubePod {
                meta: KubeMeta {
                    namespace: "prod".into(),
                    name: "web-0".into(),
                    uid: UID.into(),
                    ..Default::default()
                },
                containers: vec![KubeContainerStatus {
                    name: "app".into(),
                    container_id: ContainerId::parse(&format!("containerd://{ID}")),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        });
        let by_id = snap.container_of(snap.process(10).unwrap()).unwrap();
        assert_eq!(by_id.name.as_deref(), Some("app"));
        let pod = by_id.pod.unwrap();
        assert_eq!(
            (
                pod.uid.as_str(),
                pod.namespace.as_deref(),
                pod.name.as_deref()
            ),
            (UID, Some("prod"), Some("web-0"))
        );
        // A container the statuses do not list (a sandbox, an exited one): the pod by its uid.
        let by_uid = snap.container_of(snap.process(11).unwrap()).unwrap();
        assert_eq!(by_uid.name, None);
        assert_eq!(by_uid.pod.unwrap().name.as_deref(), Some("web-0"));
    }

    #[test]
    fn links_become_symmetric_and_dangling_ones_drop() {
        let mut a = Finding::new("a", Severity::Critical, Subject::Host, "a");
        let b = Finding::new("b", Severity::Warning, Subject::Host, "b");
        let mut c = Finding::new("c", Severity::Info, Subject::Host, "c");
        a.caused_by.push(b.id.clone());
        c.causes.push(b.id.clone());
        c.causes.push(FindingId("missing:host".into()));
        let linked = link_both_ways(vec![a, b, c]);
        assert_eq!(linked[1].causes, vec![FindingId("a:host".into())]);
        assert_eq!(linked[1].caused_by, vec![FindingId("c:host".into())]);
        assert_eq!(linked[2].causes, vec![FindingId("b:host".into())]);
    }

    #[test]
    fn detectors_run_after_the_detectors_they_link_to() {
        let order: Vec<&str> = detectors().iter().map(|d| d.id()).collect();
        assert_eq!(order.len(), registered().len());
        for detector in registered() {
            let entry = catalog()
                .detector(detector.id())
                .unwrap_or_else(|| panic!("{} has no catalog entry", detector.id()));
            let at = order.iter().position(|id| *id == detector.id()).unwrap();
            for link in &entry.links {
                let before = order.iter().position(|id| id == link).unwrap();
                assert!(before < at, "{} runs before {link}", detector.id());
            }
        }
    }

    struct Named(&'static str);
    impl Detector for Named {
        fn id(&self) -> &'static str {
            self.0
        }
        fn detect(&self, _: &mut Context<'_>) {}
    }

    #[test]
    fn unknown_links_and_cycles_are_named() {
        static A: Named = Named("a");
        static B: Named = Named("b");
        static C: Named = Named("c");
        let list: [&'static dyn Detector; 3] = [&A, &B, &C];
        let links_of = |pairs: &'static [(&'static str, &'static str)]| {
            move |id: &str| -> Vec<String> {
                pairs
                    .iter()
                    .filter(|(from, _)| *from == id)
                    .map(|(_, to)| to.to_string())
                    .collect()
            }
        };
        let ids = |o: Vec<&dyn Detector>| o.iter().map(|d| d.id()).collect::<Vec<_>>();
        assert_eq!(
            ids(order(&list, links_of(&[("a", "b")])).unwrap()),
            vec!["b", "a", "c"]
        );
        assert_eq!(
            order(&list, links_of(&[("a", "b"), ("b", "a")]))
                .err()
                .unwrap(),
            "the links of a, b form a cycle"
        );
        assert_eq!(
            order(&list, links_of(&[("c", "zz")])).err().unwrap(),
            "c links to zz, which is not a detector"
        );
    }

    #[test]
    fn every_detector_says_what_it_reads() {
        for detector in registered() {
            let entry = catalog().detector(detector.id()).unwrap();
            assert!(!entry.reads.is_empty(), "{} reads nothing", detector.id());
            for source in &entry.reads {
                assert!(
                    catalog::SOURCES.contains(&source.as_str()),
                    "{} reads {source}, which is not a source",
                    detector.id()
                );
            }
        }
        let ovs: Vec<String> = detectors_reading("ovsdb").into_iter().collect();
        assert_eq!(
            ovs,
            [
                "ovs-netlink-socket-excess",
                "ovs-orphan-port",
                "ovs-port-flapping",
                "ovs-vswitchd-busy"
            ]
        );
    }

    #[test]
    fn number_formats() {
        assert_eq!(thousands(102409), "102,409");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(duration(42.0), "42s");
        assert_eq!(duration(3700.0), "1h 1m");
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_782_378_886), "2026-06-25 09:14:46 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
    }
}
