//! # `cpu-hog`
//!
//! **Signature.** A process above `cpu_hog_share` (half a core) of CPU:
//! - `check`: between the two readings, and still busy during the window its threads were
//!   sampled (at least half the threshold there: 200 ms is a short, noisy measure);
//! - `watch`: in `cpu_hog_min_rounds` consecutive rounds (the history's CPU series).
//!
//! What its threads do in the kernel decides the rest: the sampled call paths
//! (`snapshot.cpu_profiles`) are matched against the `cpu_signature` table of
//! `data/signatures.toml`; the signature holding the most samples classifies the process when
//! they are at least its `min_share` of all the samples. A classified hog is a warning (a known
//! way of wasting CPU, with its fix); an unclassified one is information, with its hottest
//! kernel path and its user/kernel split.
//!
//! **Sources.** `/proc/PID/stat` CPU ticks at both readings (or over rounds), and the profile:
//! perf samples, or the weak `/proc/PID/stack` fallback with the netlink dump hint.
//!
//! **Evidence.** The share and its system part, the samples (how many, in the kernel, in user
//! mode), the deciding frames with their share, the hottest path, and what was weak or
//! missing. Template values: `{pid}`, `{comm}`, `{cores}`, `{where}` (detector); `{share}`,
//! `{path}` (signatures).

use nodedoc_model::{
    shell_command, CpuProfile, Evidence, Finding, Process, ProfileMethod, Severity, Subject,
};

use crate::catalog::{catalog, render, CpuSignature};
use crate::{Context, Detector, Signature};

/// See the module documentation.
pub struct CpuHog;

/// Frames every system call goes through: left out of the paths shown.
const ENTRY_FRAMES: &[&str] = &[
    "entry_SYSCALL_64_after_hwframe",
    "entry_SYSCALL_64",
    "do_syscall_64",
    "x64_sys_call",
    "el0t_64_sync",
    "el0t_64_sync_handler",
    "el0_svc",
    "do_el0_svc",
    "el0_svc_common",
    "invoke_syscall",
];

/// How the process was seen busy.
enum Basis {
    /// Between `check`'s two readings, `ms` apart.
    Readings { ms: u64, kernel_cores: f64 },
    /// In `rounds` consecutive agent rounds since `since_unix_ms`.
    Rounds {
        rounds: u64,
        since_unix_ms: u64,
        kernel_cores: f64,
    },
}

/// The class of a profile.
#[derive(Debug)]
pub(crate) struct Class<'c> {
    pub signature: &'c CpuSignature,
    /// Samples on its paths.
    pub samples: u64,
    /// Of all samples.
    pub share: f64,
    /// The deciding frames, outermost first.
    pub path: Vec<String>,
}

impl Detector for CpuHog {
    fn id(&self) -> &'static str {
        "cpu-hog"
    }

    fn detect(&self, cx: &mut Context<'_>) {
        let snapshot = cx.snapshot;
        let threshold = cx.config.cpu_hog_share;
        let ticks = snapshot.host.clock_ticks_per_sec.max(1) as f64;
        for process in &snapshot.processes {
            let key = process.key();
            let series = snapshot.history.as_ref().and_then(|h| h.cpu_series_of(key));
            let profile = snapshot.cpu_profile(key);
            let (cores, basis) = if let Some(series) = series {
                if series.rounds_above < cx.config.cpu_hog_min_rounds {
                    continue;
                }
                let Some(last) = series.points.last() else {
                    continue;
                };
                (
                    last.cores,
                    Basis::Rounds {
                        rounds: series.rounds_above,
                        since_unix_ms: series.above_since_unix_ms,
                        kernel_cores: last.kernel_cores,
                    },
                )
            } else {
                let Some(later) = snapshot.resample.as_ref().and_then(|r| r.task(key)) else {
                    continue;
                };
                let elapsed_us = later.sampled_at_us.saturating_sub(process.sampled_at_us);
                if elapsed_us == 0 {
                    continue;
                }
                let secs = elapsed_us as f64 / 1e6;
                let kernel = later.stime_ticks.saturating_sub(process.stime_ticks) as f64;
                let user = later.utime_ticks.saturating_sub(process.utime_ticks) as f64;
                let cores = (kernel + user) / ticks / secs;
                if cores < threshold {
                    continue;
                }
                // Still busy while it was sampled: a burst that ended is not a hog.
                if profile
                    .and_then(|p| p.cpu_cores)
                    .is_some_and(|c| c < threshold / 2.0)
                {
                    continue;
                }
                (
                    cores,
                    Basis::Readings {
                        ms: elapsed_us / 1000,
                        kernel_cores: kernel / ticks / secs,
                    },
                )
            };
            let (finding, values, class) = finding(process, cores, &basis, profile);
            let values: Vec<(&str, &str)> = values.iter().map(|(k, v)| (*k, v.as_str())).collect();
            // Many busy processes of one kind (a build with dozens of compilers) are one group.
            let signature = match class {
                Some(signature) => Signature::new(
                    signature.id.as_str(),
                    format!("{{count}} processes burn CPU in {}", signature.title),
                    (cores * 1000.0) as u64,
                    "busiest first",
                ),
                None => Signature::new(
                    "unclassified",
                    "{count} processes above the CPU threshold",
                    (cores * 1000.0) as u64,
                    "busiest first",
                ),
            };
            cx.emit_as(signature, finding, &values);
        }
    }
}

fn percent(share: f64) -> String {
    format!("{:.0}%", share * 100.0)
}

/// The finding for one hog, and the template values.
fn finding(
    process: &Process,
    cores: f64,
    basis: &Basis,
    profile: Option<&CpuProfile>,
) -> (
    Finding,
    Vec<(&'static str, String)>,
    Option<&'static CpuSignature>,
) {
    let pid = process.pid;
    let label = process.label();
    let class = profile.and_then(classify);
    let severity = if class.is_some() {
        Severity::Warning
    } else {
        Severity::Info
    };
    let summary = match &class {
        Some(class) => format!(
            "{label} burns {} of a core, {} of it in {}",
            percent(cores),
            percent(class.share),
            class.signature.title
        ),
        None => format!("{label} used {} of a core", percent(cores)),
    };
    let mut finding = Finding::new("cpu-hog", severity, Subject::process(process), summary);
    let (fact, kernel_cores) = match basis {
        Basis::Readings { ms, kernel_cores } => (
            format!(
                "{} of a core between the two readings ({ms} ms apart)",
                percent(cores)
            ),
            *kernel_cores,
        ),
        Basis::Rounds {
            rounds,
            since_unix_ms,
            kernel_cores,
        } => (
            format!(
                "above the threshold in {rounds} consecutive rounds since {}, {} of a core in the last",
                crate::utc(since_unix_ms / 1000),
                percent(cores)
            ),
            *kernel_cores,
        ),
    };
    finding.evidence.push(Evidence::new(
        format!(
            "{fact}: {} in the kernel (system time)",
            percent(kernel_cores)
        ),
        shell_command!("top -H -p {}", pid),
    ));
    let mut where_ = String::new();
    match profile {
        None => {
            finding.evidence.push(Evidence::fact(
                "its kernel call paths were not sampled (see the cpu-profile source)",
            ));
            where_.push_str("What it does was not sampled.");
        }
        Some(profile) => {
            profile_evidence(&mut finding, profile, class.as_ref());
            where_ = where_it_goes(profile);
        }
    }
    let mut values = vec![
        ("pid", pid.to_string()),
        ("comm", process.comm.clone()),
        ("cores", percent(cores)),
        ("where", where_),
    ];
    let class_id = class.as_ref().map(|c| c.signature);
    if let Some(class) = class {
        values.push(("share", percent(class.share)));
        values.push(("path", class.path.join(" → ")));
        let rendered: Vec<(&str, &str)> = values.iter().map(|(k, v)| (*k, v.as_str())).collect();
        finding.explanation = render(&class.signature.explanation, &rendered);
        finding.fix = render(&class.signature.fix, &rendered);
        finding
            .references
            .extend(class.signature.references.iter().cloned());
    }
    (finding, values, class_id)
}

/// The samples, the class or the hottest path, and what was weak.
fn profile_evidence(finding: &mut Finding, profile: &CpuProfile, class: Option<&Class<'_>>) {
    let pid = profile.pid;
    let kernel = profile.kernel_samples();
    let how = match profile.method {
        ProfileMethod::PerfEvents => format!(
            "perf samples of {} of its {} threads over {} ms at {} Hz of CPU time",
            profile.threads_sampled, profile.threads, profile.window_ms, profile.frequency_hz
        ),
        ProfileMethod::ProcStack => format!(
            "/proc/PID/task/TID/stack of {} of its {} threads read {} times a second for {} ms (weak)",
            profile.threads_sampled, profile.threads, profile.frequency_hz, profile.window_ms
        ),
    };
    let mut fact = format!(
        "{how}: {} samples, {} in the kernel, {} in its own code",
        profile.samples, kernel, profile.user_samples
    );
    if let Some(cores) = profile.cpu_cores {
        fact.push_str(&format!("; {} of a core while sampled", percent(cores)));
    }
    if profile.lost_samples > 0 {
        fact.push_str(&format!("; {} samples lost", profile.lost_samples));
    }
    let command = match profile.method {
        ProfileMethod::PerfEvents => shell_command!("perf top -g -p {}", pid),
        ProfileMethod::ProcStack => shell_command!("cat /proc/{}/task/*/stack", pid),
    };
    finding.evidence.push(Evidence::new(fact, command));
    if let Some(class) = class {
        finding.evidence.push(Evidence::new(
            format!(
                "{} in {} of its samples ({} of {}): {}",
                class.path.join(" → "),
                percent(class.share),
                class.samples,
                profile.samples,
                class.signature.title
            ),
            shell_command!("perf record -g -p {} -- sleep 5", pid),
        ));
    }
    if let Some((path, samples)) = hottest_path(profile) {
        if class.is_none() || samples > 0 && path.len() > 1 {
            finding.evidence.push(Evidence::fact(format!(
                "hottest kernel path: {} ({} of its samples)",
                path.join(" → "),
                percent(samples as f64 / profile.samples.max(1) as f64)
            )));
        }
    }
    if let Some(dumps) = &profile.netlink_dumps {
        finding.evidence.push(Evidence::new(
            format!(
                "{} of its {} netlink sockets in the middle of a dump (Dump=1 in /proc/PID/net/netlink; {} netlink sockets in its namespace)",
                dumps.dumping.len(),
                dumps.sockets,
                dumps.namespace_sockets
            ),
            shell_command!("cat /proc/{}/net/netlink", pid),
        ));
    }
    if profile.samples == 0 && profile.cpu_cores.is_some_and(|c| c > 0.05) {
        finding.evidence.push(Evidence::fact(
            "its threads ran while sampled but the kernel delivered no sample (a virtual CPU thread, or sampling restricted)",
        ));
    }
    for note in &profile.notes {
        finding.evidence.push(Evidence::fact(note.clone()));
    }
}

/// One sentence on where the time goes, for the explanation.
fn where_it_goes(profile: &CpuProfile) -> String {
    if profile.samples == 0 {
        return "Its samples were empty.".into();
    }
    let kernel = profile.kernel_samples() as f64 / profile.samples as f64;
    if kernel < 0.5 {
        return format!(
            "Most of it ({}) is in its own code, not the kernel: a user-space profiler says where.",
            percent(1.0 - kernel)
        );
    }
    match hottest_path(profile) {
        Some((path, _)) => format!(
            "{} is in the kernel, most in {}; nodedoc knows no failure with this path.",
            percent(kernel),
            path.join(" → ")
        ),
        None => format!("{} is in the kernel.", percent(kernel)),
    }
}

/// The profile's class: the signature whose frames are on the most samples, if they are at
/// least its `min_share` of all samples.
pub(crate) fn classify(profile: &CpuProfile) -> Option<Class<'static>> {
    if profile.samples == 0 {
        return None;
    }
    let mut best: Option<(&CpuSignature, u64)> = None;
    for signature in &catalog().cpu_signature {
        let samples: u64 = profile
            .stacks
            .iter()
            .filter(|s| s.frames.iter().any(|f| signature.identifies(f)))
            .map(|s| s.samples)
            .sum();
        if samples > 0 && best.is_none_or(|(_, n)| samples > n) {
            best = Some((signature, samples));
        }
    }
    let (signature, samples) = best?;
    let share = samples as f64 / profile.samples as f64;
    if share < signature.min_share {
        return None;
    }
    // The deciding frames: those of the signature on at least half of its samples, in the
    // order of the heaviest of its paths.
    let matched: Vec<_> = profile
        .stacks
        .iter()
        .filter(|s| s.frames.iter().any(|f| signature.identifies(f)))
        .collect();
    let heaviest = matched.first()?;
    let mut path: Vec<String> = Vec::new();
    for frame in heaviest.frames.iter().filter(|f| signature.shows(f)) {
        if path.last() == Some(frame) {
            continue;
        }
        let on: u64 = matched
            .iter()
            .filter(|s| s.frames.contains(frame))
            .map(|s| s.samples)
            .sum();
        if on * 2 >= samples {
            path.push(frame.clone());
        }
    }
    Some(Class {
        signature,
        samples,
        share,
        path,
    })
}

/// The path shared by most kernel samples: from the outermost frame, the heaviest child
/// while it holds at least half of the kernel samples; entry frames left out. With its
/// sample count.
pub(crate) fn hottest_path(profile: &CpuProfile) -> Option<(Vec<String>, u64)> {
    let kernel = profile.kernel_samples();
    if kernel == 0 {
        return None;
    }
    let mut prefix: Vec<&String> = Vec::new();
    let mut on = kernel;
    loop {
        let depth = prefix.len();
        let mut children: std::collections::HashMap<&String, u64> = Default::default();
        for stack in &profile.stacks {
            if stack.frames.len() > depth
                && stack.frames.iter().take(depth).eq(prefix.iter().copied())
            {
                *children.entry(&stack.frames[depth]).or_default() += stack.samples;
            }
        }
        let Some((frame, samples)) = children
            .into_iter()
            .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(a.0)))
        else {
            break;
        };
        if samples * 2 < kernel {
            break;
        }
        prefix.push(frame);
        on = samples;
    }
    let path: Vec<String> = prefix
        .into_iter()
        .filter(|f| !ENTRY_FRAMES.contains(&f.as_str()))
        .cloned()
        .collect();
    (!path.is_empty()).then_some((path, on))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{process, snapshot};
    use nodedoc_model::{KernelStackCount, Resample, SamplingCost, TaskSample, TaskState};

    fn stack(samples: u64, frames: &[&str]) -> KernelStackCount {
        KernelStackCount {
            samples,
            frames: frames.iter().map(|f| f.to_string()).collect(),
        }
    }

    const DUMP: &[&str] = &[
        "entry_SYSCALL_64_after_hwframe",
        "do_syscall_64",
        "__x64_sys_recvfrom",
        "__sys_recvfrom",
        "sock_recvmsg",
        "netlink_recvmsg",
        "netlink_dump",
        "rtnl_dumpit",
        "rtnl_dump_all",
        "inet_dump_addr",
        "in_dev_dump_addr",
    ];

    /// What the lab's dumper gave here: 116 samples, 56 in the kernel, most dumping.
    pub(crate) fn dumper_profile(pid: i32) -> CpuProfile {
        let mut leaf = DUMP.to_vec();
        leaf.push("inet_fill_ifaddr");
        let mut copy = DUMP[..7].to_vec();
        copy.extend(["skb_copy_datagram_iter", "__skb_datagram_iter"]);
        CpuProfile {
            pid,
            start_time_ticks: 100,
            comm: "netlink-dumper".into(),
            method: ProfileMethod::PerfEvents,
            taken_at_unix_ms: 0,
            window_ms: 200,
            frequency_hz: 1000,
            threads: 2,
            threads_sampled: 2,
            cpu_cores: Some(0.9),
            samples: 116,
            user_samples: 60,
            stacks: vec![stack(20, DUMP), stack(24, &leaf), stack(9, &copy)],
            stacks_omitted_samples: 3,
            lost_samples: 0,
            cost: SamplingCost::default(),
            netlink_dumps: None,
            notes: vec![],
        }
    }

    #[test]
    fn netlink_address_dumps_are_classified_with_their_deciding_frames() {
        let class = classify(&dumper_profile(7)).expect("classified");
        assert_eq!(class.signature.id, "netlink-address-dumps");
        assert_eq!(class.samples, 44);
        assert!((class.share - 44.0 / 116.0).abs() < 1e-9);
        assert_eq!(
            class.path,
            vec![
                "netlink_recvmsg",
                "netlink_dump",
                "rtnl_dumpit",
                "rtnl_dump_all",
                "inet_dump_addr",
                "in_dev_dump_addr"
            ]
        );
        // netlink_dump alone (a generic netlink dump) is not an address dump.
        let mut generic = dumper_profile(7);
        generic.stacks = vec![stack(
            100,
            &[
                "netlink_recvmsg",
                "netlink_dump",
                "genl_dumpit",
                "ctrl_dumpfamily",
            ],
        )];
        assert!(classify(&generic).is_none());
        // Too small a share of the process's time.
        let mut little = dumper_profile(7);
        little.samples = 1000;
        little.user_samples = 944;
        assert!(classify(&little).is_none());
        // Compiler suffixes do not hide a frame.
        let mut conntrack = dumper_profile(7);
        conntrack.stacks = vec![stack(
            80,
            &[
                "netlink_recvmsg",
                "netlink_dump",
                "ctnetlink_dump_table",
                "ctnetlink_fill_info.constprop.0",
            ],
        )];
        let class = classify(&conntrack).unwrap();
        assert_eq!(class.signature.id, "conntrack-table-dumps");
        assert_eq!(
            class.path,
            vec![
                "netlink_recvmsg",
                "netlink_dump",
                "ctnetlink_dump_table",
                "ctnetlink_fill_info.constprop.0"
            ]
        );
    }

    #[test]
    fn the_hottest_path_follows_the_majority_without_entry_frames() {
        let (path, samples) = hottest_path(&dumper_profile(7)).unwrap();
        assert_eq!(path.first().map(String::as_str), Some("__x64_sys_recvfrom"));
        assert_eq!(path.last().map(String::as_str), Some("in_dev_dump_addr"));
        assert_eq!(samples, 44);
    }

    fn busy(pid: i32, user: u64, system: u64) -> nodedoc_model::Snapshot {
        let mut p = process(pid, "netlink-dumper");
        p.state = TaskState::Running;
        p.sampled_at_us = 1_000_000;
        let mut s = snapshot(vec![p]);
        s.resample = Some(Resample {
            interval_ms: 300,
            tasks: vec![TaskSample {
                pid,
                start_time_ticks: 100,
                state: TaskState::Running,
                utime_ticks: user,
                stime_ticks: system,
                sampled_at_us: 1_300_000,
                blocked: None,
            }],
        });
        s
    }

    #[test]
    fn a_dumping_hog_is_a_warning_with_its_class_and_an_idle_one_is_nothing() {
        let mut s = busy(7, 14, 15);
        s.cpu_profiles = vec![dumper_profile(7)];
        let findings = crate::run(&s, &Default::default());
        let f = findings
            .iter()
            .find(|f| f.detector == "cpu-hog")
            .expect("cpu-hog");
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(
            f.summary,
            "netlink-dumper (pid 7) burns 97% of a core, 38% of it in netlink address dumps (kube-proxy IPVS NodeIPs, seed 003: cache the result)"
        );
        assert!(
            f.evidence[0].fact.starts_with(
                "97% of a core between the two readings (300 ms apart): 50% in the kernel"
            ),
            "{:#?}",
            f.evidence
        );
        assert!(f.evidence.iter().any(|e| e.fact.contains("netlink_dump → rtnl_dumpit → rtnl_dump_all → inet_dump_addr → in_dev_dump_addr in 38% of its samples (44 of 116)")), "{:#?}", f.evidence);
        assert!(
            f.explanation.contains("listing the addresses"),
            "{}",
            f.explanation
        );
        assert!(f.fix.contains("cache the result"), "{}", f.fix);
        assert!(f.references.iter().any(|r| r.url.ends_with("/73382")));

        // No profile: still reported, as information, saying so.
        s.cpu_profiles.clear();
        let findings = crate::run(&s, &Default::default());
        let f = findings.iter().find(|f| f.detector == "cpu-hog").unwrap();
        assert_eq!(f.severity, Severity::Info);
        assert!(f.evidence.iter().any(|e| e.fact.contains("not sampled")));

        // Below the threshold between the readings: nothing.
        let s = busy(7, 5, 5);
        assert!(!crate::run(&s, &Default::default())
            .iter()
            .any(|f| f.detector == "cpu-hog"));

        // Busy between the readings but idle while sampled: a burst, not a hog.
        let mut s = busy(7, 14, 15);
        let mut idle = dumper_profile(7);
        idle.cpu_cores = Some(0.1);
        s.cpu_profiles = vec![idle];
        assert!(!crate::run(&s, &Default::default())
            .iter()
            .any(|f| f.detector == "cpu-hog"));
    }

    #[test]
    fn a_build_of_many_busy_compilers_is_one_group() {
        let mut processes = Vec::new();
        let mut tasks = Vec::new();
        for pid in 100..130 {
            let mut p = process(pid, "rustc");
            p.state = TaskState::Running;
            p.sampled_at_us = 1_000_000;
            tasks.push(TaskSample {
                pid,
                start_time_ticks: 100,
                state: TaskState::Running,
                utime_ticks: 30,
                stime_ticks: 0,
                sampled_at_us: 1_300_000,
                blocked: None,
            });
            processes.push(p);
        }
        let mut s = snapshot(processes);
        s.resample = Some(Resample {
            interval_ms: 300,
            tasks,
        });
        let findings: Vec<_> = crate::run(&s, &Default::default())
            .into_iter()
            .filter(|f| f.detector == "cpu-hog")
            .collect();
        assert_eq!(findings.len(), 1, "{findings:#?}");
        assert_eq!(findings[0].summary, "30 processes above the CPU threshold");
        assert_eq!(findings[0].severity, Severity::Info);
    }

    #[test]
    fn watch_needs_consecutive_rounds() {
        use nodedoc_model::{CpuPoint, CpuSeries, History};
        let mut p = process(7, "kube-proxy");
        p.state = TaskState::Running;
        let mut s = snapshot(vec![p]);
        let series = |rounds| CpuSeries {
            pid: 7,
            start_time_ticks: 100,
            comm: "kube-proxy".into(),
            rounds_above: rounds,
            above_since_unix_ms: 1_782_378_886_000,
            points: vec![CpuPoint {
                at_unix_ms: 1_782_378_906_000,
                cores: 1.9,
                kernel_cores: 1.2,
            }],
        };
        s.history = Some(History {
            cpu_series: vec![series(2)],
            ..Default::default()
        });
        s.cpu_profiles = vec![dumper_profile(7)];
        assert!(!crate::run(&s, &Default::default())
            .iter()
            .any(|f| f.detector == "cpu-hog"));
        s.history.as_mut().unwrap().cpu_series = vec![series(3)];
        let findings = crate::run(&s, &Default::default());
        let f = findings.iter().find(|f| f.detector == "cpu-hog").unwrap();
        assert_eq!(f.severity, Severity::Warning);
        assert!(f.evidence[0].fact.starts_with("above the threshold in 3 consecutive rounds since 2026-06-25 09:14:46 UTC, 190% of a core in the last: 120% in the kernel"), "{}", f.evidence[0].fact);
    }

    #[test]
    fn a_weak_profile_says_so_and_shows_the_dump_hint() {
        let mut s = busy(7, 14, 15);
        let mut weak = dumper_profile(7);
        weak.method = ProfileMethod::ProcStack;
        weak.cpu_cores = None;
        weak.stacks = vec![stack(
            10,
            &[
                "entry_SYSCALL_64_after_hwframe",
                "do_syscall_64",
                "exit_to_user_mode_loop",
            ],
        )];
        weak.samples = 10;
        weak.user_samples = 0;
        weak.stacks_omitted_samples = 0;
        weak.notes = vec!["weak: perf_event_open was refused".into()];
        weak.netlink_dumps = Some(nodedoc_model::NetlinkDumps {
            namespace_sockets: 12,
            sockets: 2,
            dumping: vec![nodedoc_model::NetlinkDumpSocket {
                protocol: 0,
                inode: 99,
            }],
        });
        s.cpu_profiles = vec![weak];
        let findings = crate::run(&s, &Default::default());
        let f = findings.iter().find(|f| f.detector == "cpu-hog").unwrap();
        assert_eq!(f.severity, Severity::Info);
        assert!(f.evidence.iter().any(|e| e.fact.starts_with("weak:")));
        assert!(
            f.evidence.iter().any(|e| e
                .fact
                .starts_with("1 of its 2 netlink sockets in the middle of a dump")),
            "{:#?}",
            f.evidence
        );
        assert!(f.evidence.iter().any(|e| e.fact.contains("(weak)")));
    }
}
