//! # `netdev-unregister-stuck`
//!
//! **Signature.** Kernel log lines
//! `unregister_netdevice: waiting for DEV to become free. Usage count = N`. The kernel is
//! deleting `DEV` (often a pod's veth when its network namespace goes away) and something
//! still holds a reference; `netdev_wait_allrefs` repeats the line every 10 s while it
//! waits, holding up namespace teardown: pods stay `Terminating`, and kubelet's PLEG turns
//! unhealthy. A device whose last line is recent is still stuck (critical); one whose lines
//! stopped was freed eventually (info).
//!
//! **Sources.** The kernel log (`/dev/kmsg`, or `dmesg` text) and the kernel release.
//!
//! **Evidence.** Per device: the line, how often it repeated, first and last time, the last
//! usage count; whether user space wrote the lines into `/dev/kmsg` (facility not `kern`: not
//! the kernel's own report, though the finding is still made); then the kernel release checked
//! against the table of known causes in
//! `data/signatures.toml` (linux ee60ad219f5c, the fnhe refcount leak of seed 001;
//! 4ee806d51176 for `lo`). When the release carries every known fix, or when it cannot be
//! told (distribution kernels backport), the finding says so instead of guessing.
//!
//! A usage count of 0 or below is not a leak but a reference dropped once too often (the
//! kernel never prints 0 while it waits for 0, and waits for 1 since 5.13): the leak bugs
//! are not offered as causes then. On kernels with `CONFIG_NET_DEV_REFCNT_TRACKER` (5.17+)
//! the kernel prints, under the line, the stack that took each reference still held; the
//! frame below the reference helpers names the holder (`netdev_ref_holder` in
//! `data/signatures.toml`).
//!
//! **Floods.** Devices in the same state with the same suspects, whose lines the same writer
//! (kernel or user space) wrote, share a signature: thousands of them are one group finding,
//! the most repeated first.

use std::collections::BTreeMap;

use nodedoc_model::{shell_command, Evidence, Finding, KernelLog, KmsgRecord, Severity, Subject};

use crate::kernel_release::{fix_verdict, FixVerdict, KernelRelease};
use crate::{catalog, duration, Context, Detector, Provenance, Signature};

/// See the module documentation.
pub struct NetdevUnregisterStuck;

const PREFIX: &str = "unregister_netdevice: waiting for ";
const MIDDLE: &str = " to become free. Usage count = ";

/// Parses one message: the device and its usage count.
pub(crate) fn parse_waiting_line(message: &str) -> Option<(&str, i64)> {
    let start = message.find(PREFIX)? + PREFIX.len();
    let rest = &message[start..];
    let middle = rest.find(MIDDLE)?;
    let device = &rest[..middle];
    if device.is_empty() || device.contains(char::is_whitespace) {
        return None;
    }
    let count_text = rest[middle + MIDDLE.len()..]
        .split(|c: char| !(c.is_ascii_digit() || c == '-'))
        .next()?;
    Some((device, count_text.parse().ok()?))
}

/// True when the usage count says a reference was dropped more often than it was taken: the
/// kernel waits for 0 before 5.13 and prints only nonzero counts, and waits for 1 (the
/// device's own reference) since linux 919067cc845f; so 0 and below are never a leak.
pub(crate) fn over_released(usage_count: i64) -> bool {
    usage_count <= 0
}

fn over_release_diagnosis(device: &str, count: i64) -> String {
    format!(
        "The usage count is {count}: a reference to {device} was dropped more times than it was taken (a dev_put without its dev_hold), so the leak bugs in nodedoc's table are not the cause, and waiting will not help: the count cannot come back. Kernels built with CONFIG_PCPU_DEV_REFCNT=n warn with a stack at the moment the count goes wrong (refcount_t underflow), which names the code that dropped it."
    )
}

/// One stack the reference tracker printed for a device: who took the references.
pub(crate) struct RefHolder<'a> {
    /// References taken at that stack.
    pub users: u32,
    /// The device's references in all, when printed.
    pub total: Option<u32>,
    /// The first frame below the reference helpers: the code that holds the reference.
    pub frame: &'a str,
    /// That frame and the next few, innermost first.
    pub chain: String,
    /// What nodedoc knows that frame to be part of.
    pub what: Option<&'static crate::catalog::NetdevRefHolder>,
}

impl RefHolder<'_> {
    fn fact(&self) -> String {
        let count = match self.total {
            Some(total) => format!("{} of its {total} references", self.users),
            None if self.users == 1 => "a reference".to_string(),
            None => format!("{} references", self.users),
        };
        let what = self
            .what
            .map(|w| format!(" ({})", w.what))
            .unwrap_or_default();
        format!(
            "the kernel's reference tracker: {count} taken in {}{what}: {}",
            self.frame, self.chain
        )
    }

    fn references(&self) -> &[nodedoc_model::Reference] {
        self.what.map_or(&[], |w| w.references.as_slice())
    }
}

/// The holders of `device`'s references that the reference tracker printed, if it did.
pub(crate) fn ref_holders<'a>(log: &'a KernelLog, device: &str) -> Vec<RefHolder<'a>> {
    let helpers = &catalog().netdev_ref.helper_frames;
    let Some(tracker) = log.netdev_ref_trackers.iter().find(|t| t.device == device) else {
        return Vec::new();
    };
    tracker
        .holders
        .iter()
        .filter_map(|stack| {
            let mut frames = stack
                .frames
                .iter()
                .filter(|f| f.reliable)
                .map(|f| f.function.as_str())
                .skip_while(|f| {
                    helpers
                        .iter()
                        .any(|h| h == crate::catalog::base_function(f))
                })
                .peekable();
            let frame = *frames.peek()?;
            let chain: Vec<&str> = frames.take(4).collect();
            Some(RefHolder {
                users: stack.users,
                total: stack.total,
                frame,
                chain: chain.join(" ← "),
                what: catalog().netdev_ref_holder(frame),
            })
        })
        .collect()
}

fn holders_diagnosis(holders: &[RefHolder<'_>]) -> String {
    let named: Vec<String> = holders
        .iter()
        .map(|h| match h.what {
            Some(what) => format!("{} ({})", h.frame, what.what),
            None => h.frame.to_string(),
        })
        .collect();
    format!(
        "The kernel's reference tracker names who still holds it: {}. Free that (delete the routes, addresses, qdiscs or sockets that use the device, or stop the program behind them) and the device is released; if nothing can, it is a kernel bug in that code: search for its fix by that function's name.",
        named.join("; ")
    )
}

struct DeviceHistory<'a> {
    lines: Vec<(&'a KmsgRecord, i64)>,
}

impl Detector for NetdevUnregisterStuck {
    fn id(&self) -> &'static str {
        "netdev-unregister-stuck"
    }

    fn detect(&self, cx: &mut Context<'_>) {
        let snapshot = cx.snapshot;
        let Some(log) = &snapshot.kernel_log else {
            return;
        };
        let mut devices: BTreeMap<&str, DeviceHistory<'_>> = BTreeMap::new();
        for record in &log.records {
            if let Some((device, count)) = parse_waiting_line(&record.message) {
                devices
                    .entry(device)
                    .or_insert_with(|| DeviceHistory { lines: Vec::new() })
                    .lines
                    .push((record, count));
            }
        }
        // A log from a file was written by its own kernel, not necessarily this host's.
        let log_release = log.file.as_ref().and_then(|f| f.kernel_release.as_deref());
        let release_text = log_release.unwrap_or(&snapshot.host.kernel_release);
        let release = KernelRelease::parse(release_text);
        for (device, history) in devices {
            let (first, _) = history.lines[0];
            let (last, last_count) = *history.lines.last().expect("non-empty by construction");
            // How long before the log's "now" (this host's clock for a live log, the log's
            // last line for a file) the last line was printed.
            let since_last_secs =
                log.age_secs(&snapshot.host, last.monotonic_us, last.wall_clock_ms);
            let waited_secs = match (
                log.age_secs(&snapshot.host, first.monotonic_us, first.wall_clock_ms),
                since_last_secs,
            ) {
                (Some(first_age), Some(last_age)) => Some((first_age - last_age).max(0.0)),
                _ => None,
            };
            let still_waiting =
                since_last_secs.is_some_and(|s| s <= cx.config.netdev_still_waiting_secs as f64);
            let repeats = history.lines.len();
            let (severity, state) = match since_last_secs {
                Some(since) if still_waiting => (
                    Severity::Critical,
                    if log.is_from_file() {
                        format!(
                            "still waiting at the end of the log (its last line about it {} before the log's last line)",
                            duration(since)
                        )
                    } else {
                        format!("still waiting (last line {} ago)", duration(since))
                    },
                ),
                Some(since) => (
                    Severity::Info,
                    format!(
                        "was stuck for at least {}; the lines stopped {} {}",
                        duration(waited_secs.unwrap_or(0.0)),
                        duration(since),
                        if log.is_from_file() {
                            "before the log's last line"
                        } else {
                            "ago"
                        }
                    ),
                ),
                None => (
                    Severity::Warning,
                    "whether it is still waiting cannot be told: the lines carry no time"
                        .to_string(),
                ),
            };
            let mut finding = Finding::new(
                self.id(),
                severity,
                Subject::NetDevice {
                    name: device.to_string(),
                },
                format!(
                    "the kernel cannot free network device {device} (usage count {last_count}): {state}"
                ),
            );
            finding.evidence.push(Evidence::new(
                format!(
                    "\"{}\" logged {repeats} time{}",
                    last.message.trim(),
                    if repeats == 1 { "" } else { "s" }
                ),
                crate::kernel_log_grep(log, &format!("waiting for {device} to become free"), None),
            ));
            finding.evidence.push(Evidence::fact(format!(
                "first at {}, last at {}",
                crate::logged_when(snapshot, log, first.monotonic_us, first.wall_clock_ms),
                crate::logged_when(snapshot, log, last.monotonic_us, last.wall_clock_ms)
            )));
            let provenance = Provenance::of(history.lines.iter().map(|(r, _)| *r));
            finding.evidence.extend(provenance.evidence());

            // The release against the table of known causes.
            let mut cause_lines = Vec::new();
            let mut likely = Vec::new();
            let mut unknown = 0;
            let over_release = over_released(last_count);
            let causes = catalog()
                .netdev_unregister_cause
                .iter()
                .filter(|_| !over_release)
                .filter(|bug| bug.devices.is_empty() || bug.devices.iter().any(|d| d == device));
            for bug in causes {
                let short = &bug.commit[..12];
                let verdict = match &release {
                    Some(release) => fix_verdict(release, bug),
                    None => FixVerdict::Unknown {
                        because: format!("kernel release {release_text:?} is unreadable"),
                    },
                };
                let text = match &verdict {
                    FixVerdict::Fixed { because } => {
                        format!(
                            "linux {short} ({}): not the cause here, {because}",
                            bug.subject
                        )
                    }
                    FixVerdict::NotAffected => format!(
                        "linux {short} ({}): not the cause here, this kernel predates the bug",
                        bug.subject
                    ),
                    FixVerdict::Affected { because } => {
                        likely.push(bug);
                        format!("linux {short} ({}): LIKELY CAUSE, {because}", bug.subject)
                    }
                    FixVerdict::Unknown { because } => {
                        unknown += 1;
                        likely.push(bug);
                        format!("linux {short} ({}): possible cause, {because}", bug.subject)
                    }
                };
                // The release of a log from a file is the one it printed.
                let release_shown_by = match log_release {
                    Some(release) => crate::kernel_log_grep(log, release, None),
                    None => shell_command!("uname -r"),
                };
                finding
                    .evidence
                    .push(Evidence::new(text.clone(), release_shown_by));
                cause_lines.push(text);
                finding.references.push(nodedoc_model::Reference {
                    title: format!("linux {short}: {}", bug.subject),
                    url: format!("https://github.com/torvalds/linux/commit/{}", bug.commit),
                });
                finding.references.extend(bug.references.iter().cloned());
            }
            if over_release {
                finding.evidence.push(Evidence::fact(format!(
                    "usage count {last_count}: more references were dropped than taken; not a leak"
                )));
                finding
                    .references
                    .extend(catalog().netdev_ref.over_release_references.iter().cloned());
            }
            let holders = ref_holders(log, device);
            for holder in &holders {
                finding.evidence.push(Evidence::new(
                    holder.fact(),
                    crate::kernel_log_grep(
                        log,
                        &format!("waiting for {device} to become free"),
                        Some(12),
                    ),
                ));
                finding
                    .references
                    .extend(holder.references().iter().cloned());
            }
            let diagnosis = if over_release {
                over_release_diagnosis(device, last_count)
            } else if !holders.is_empty() {
                holders_diagnosis(&holders)
            } else if likely.is_empty() {
                format!(
                    "Kernel {release_text} carries the fixes for every known cause in nodedoc's table, so the holder of the reference is unknown: do not assume one of those bugs."
                )
            } else if unknown == likely.len() {
                format!(
                    "Whether kernel {release_text} carries the fix cannot be told from its release string: {}",
                    likely
                        .iter()
                        .map(|b| b.explanation.trim())
                        .collect::<Vec<_>>()
                        .join(" ")
                )
            } else {
                likely
                    .iter()
                    .map(|b| b.explanation.trim())
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let repeats_text = repeats.to_string();
            // One failure: the same state, the same suspects, the same writer of the lines.
            let suspects = match (likely.is_empty(), unknown == likely.len()) {
                (true, _) => "cause-unknown".to_string(),
                (false, unverifiable) => format!(
                    "{}-{}",
                    if unverifiable { "possible" } else { "likely" },
                    likely
                        .iter()
                        .map(|b| &b.commit[..12])
                        .collect::<Vec<_>>()
                        .join("+")
                ),
            };
            let by_user_space = if provenance.user_space > 0 {
                " (lines written to /dev/kmsg by user space, not the kernel's own)"
            } else {
                ""
            };
            let signature = Signature::new(
                format!(
                    "{}/{suspects}/{}",
                    match since_last_secs {
                        Some(_) if still_waiting => "still-waiting",
                        Some(_) => "stopped",
                        None => "untimed",
                    },
                    provenance.key()
                ),
                if still_waiting {
                    format!("the kernel cannot free {{count}} network devices: still waiting{by_user_space}")
                } else {
                    format!("{{count}} network devices were stuck in unregister_netdevice; the lines stopped{by_user_space}")
                },
                repeats as u64,
                "most repeated first",
            );
            cx.emit_as(
                signature,
                finding,
                &[
                    ("device", device),
                    ("release", release_text),
                    ("diagnosis", &diagnosis),
                    ("repeats", &repeats_text),
                ],
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::snapshot;
    use nodedoc_model::{KernelLog, KernelLogSource};

    fn record(seconds: u64, message: &str) -> KmsgRecord {
        KmsgRecord {
            level: 0,
            facility: 0,
            sequence: seconds,
            monotonic_us: seconds * 1_000_000,
            continuation: false,
            message: message.to_string(),
            dictionary: vec![],
            caller: None,
            wall_clock_ms: None,
        }
    }

    fn seed_log(release: &str, uptime_secs: u64) -> nodedoc_model::Snapshot {
        let mut snap = snapshot(vec![]);
        snap.host.kernel_release = release.to_string();
        snap.host.uptime_us = uptime_secs * 1_000_000;
        let mut records = vec![record(100, "eth0: link up")];
        for t in [1000, 1010, 1020, 1030, 1040] {
            records.push(record(
                t,
                "unregister_netdevice: waiting for cli-veth to become free. Usage count = 1",
            ));
        }
        snap.kernel_log = Some(KernelLog {
            source: KernelLogSource::DevKmsg,
            records,
            ..KernelLog::default()
        });
        snap
    }

    #[test]
    fn parses_the_kernel_line_and_rejects_lookalikes() {
        assert_eq!(
            parse_waiting_line(
                "unregister_netdevice: waiting for cli-veth to become free. Usage count = 1"
            ),
            Some(("cli-veth", 1))
        );
        assert_eq!(
            parse_waiting_line(
                "unregister_netdevice: waiting for lo to become free. Usage count = -3 extra"
            ),
            Some(("lo", -3))
        );
        assert_eq!(
            parse_waiting_line(
                "unregister_netdevice: waiting for  to become free. Usage count = 1"
            ),
            None
        );
        assert_eq!(
            parse_waiting_line(
                "unregister_netdevice: waiting for x to become free. Usage count = "
            ),
            None
        );
        assert_eq!(
            parse_waiting_line("unregister_netdevice: waiting for x"),
            None
        );
    }

    #[test]
    fn seed_001_on_the_seeds_rhel_kernel_is_critical_and_cannot_rule_out_the_fnhe_leak() {
        let snap = seed_log("3.10.0-693.el7.x86_64", 1045);
        let findings = crate::run(&snap, &Default::default());
        assert_eq!(findings.len(), 1);
        let f = &findings[0];
        assert_eq!(f.detector, "netdev-unregister-stuck");
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(
            f.subject,
            Subject::NetDevice {
                name: "cli-veth".into()
            }
        );
        assert!(
            f.evidence[0].fact.contains("logged 5 times"),
            "{:?}",
            f.evidence
        );
        assert!(f
            .evidence
            .iter()
            .any(|e| e.fact.contains("ee60ad219f5c") && e.fact.contains("possible cause")));
        // 4ee806d51176 is about `lo` only.
        assert!(!f.evidence.iter().any(|e| e.fact.contains("4ee806d51176")));
        assert!(f
            .references
            .iter()
            .any(|r| r.url.ends_with("ee60ad219f5c7c4fb2f047f88037770063ef785f")));
        assert!(
            f.explanation.contains("cannot be told"),
            "{}",
            f.explanation
        );
    }

    #[test]
    fn lines_user_space_wrote_are_said_to_be_so_and_grouped_apart_from_the_kernels() {
        let mut snap = seed_log("3.10.0-693.el7.x86_64", 1045);
        let log = snap.kernel_log.as_mut().unwrap();
        // Two of the five lines came from `echo … > /dev/kmsg` (facility user).
        log.records[4].facility = 1;
        log.records[5].facility = 1;
        let f = &crate::run(&snap, &Default::default())[0];
        assert_eq!(f.severity, Severity::Critical, "the finding is still made");
        assert!(
            f.evidence.iter().any(|e| e.fact
                == "2 of the 5 lines were written to /dev/kmsg by user space (facility user) — not the kernel's own report"),
            "{:#?}",
            f.evidence
        );
        for record in &mut snap.kernel_log.as_mut().unwrap().records {
            record.facility = 1;
        }
        let f = &crate::run(&snap, &Default::default())[0];
        assert!(f.evidence.iter().any(|e| e
            .fact
            .starts_with("all 5 lines were written to /dev/kmsg by user space (facility user)")));
        // The kernel's own lines carry no such note.
        let f = &crate::run(
            &seed_log("3.10.0-693.el7.x86_64", 1045),
            &Default::default(),
        )[0];
        assert!(!f.evidence.iter().any(|e| e.fact.contains("user space")));
    }

    #[test]
    fn on_a_fixed_kernel_the_cause_is_unknown_and_old_lines_are_only_info() {
        let snap = seed_log("6.18.44-fc-v782", 5000);
        let f = &crate::run(&snap, &Default::default())[0];
        assert_eq!(f.severity, Severity::Info);
        assert!(
            f.summary.contains("was stuck for at least 40s"),
            "{}",
            f.summary
        );
        assert!(f.explanation.contains("unknown"), "{}", f.explanation);
    }

    #[test]
    fn a_negative_count_is_a_double_drop_and_offers_no_leak_bug() {
        let mut snap = seed_log("3.10.0-693.el7.x86_64", 1045);
        let records = &mut snap.kernel_log.as_mut().unwrap().records;
        records.push(record(
            1044,
            "unregister_netdevice: waiting for cli-veth to become free. Usage count = -1",
        ));
        let f = &crate::run(&snap, &Default::default())[0];
        assert!(f.summary.contains("usage count -1"), "{}", f.summary);
        assert!(
            f.evidence.iter().any(|e| e.fact.contains("not a leak")),
            "{:?}",
            f.evidence
        );
        assert!(
            !f.evidence.iter().any(|e| e.fact.contains("ee60ad219f5c")),
            "{:?}",
            f.evidence
        );
        assert!(!f.references.iter().any(|r| r.url.contains("ee60ad219f5c")));
        assert!(f.references.iter().any(|r| r.url.contains("919067cc845f")));
        assert!(
            f.explanation
                .contains("dropped more times than it was taken"),
            "{}",
            f.explanation
        );
        assert!(!f.explanation.contains("fnhe"), "{}", f.explanation);
        assert!(over_released(0) && over_released(-3) && !over_released(1));
    }

    /// `check --kernel-log`: a saved log is judged on its own clock. Its lines still
    /// repeating at its end are "still waiting" however long ago (on this host's clock) the
    /// file was written, and the kernel that wrote it is the one the causes are weighed for.
    #[test]
    fn a_saved_log_is_judged_on_its_own_clock_and_kernel() {
        let dmesg = "[    0.000000] Linux version 3.10.0-693.el7.x86_64 (mockbuild@x86-038.build.eng.bos.redhat.com)\n\
                     [ 1000.000001] unregister_netdevice: waiting for cli-veth to become free. Usage count = 1\n\
                     [ 1010.000001] unregister_netdevice: waiting for cli-veth to become free. Usage count = 1\n\
                     [ 1020.000001] unregister_netdevice: waiting for cli-veth to become free. Usage count = 1\n";
        let file_snapshot = |text: &str| {
            let mut snap = snapshot(vec![]);
            // This host: another kernel, up for days, long after the log was written.
            snap.host.kernel_release = "6.18.44-fc-v782".into();
            snap.host.uptime_us = 400_000 * 1_000_000;
            snap.kernel_log = Some(nodedoc_kmsg::parse_kernel_log_file(text, None));
            snap
        };
        let f = &crate::run(&file_snapshot(dmesg), &Default::default())[0];
        assert_eq!(f.severity, Severity::Critical, "{}", f.summary);
        assert!(
            f.summary.contains("still waiting at the end of the log"),
            "{}",
            f.summary
        );
        assert!(
            f.evidence.iter().any(|e| e.fact.contains("ee60ad219f5c")),
            "the log's kernel (3.10) is weighed, not this host's: {:#?}",
            f.evidence
        );
        assert!(
            f.evidence
                .iter()
                .any(|e| e.fact.contains("1000.0s after boot")
                    && e.fact.contains("20s before the log's last line")),
            "{:#?}",
            f.evidence
        );

        // The log went on for an hour after the last line: the device was freed.
        let later = format!("{dmesg}[ 4620.5] eth0: link up\n");
        let f = &crate::run(&file_snapshot(&later), &Default::default())[0];
        assert_eq!(f.severity, Severity::Info);
        assert!(
            f.summary.contains(
                "was stuck for at least 20s; the lines stopped 1h 0m before the log's last line"
            ),
            "{}",
            f.summary
        );

        // syslog: the wall clock, across a reboot (the time since boot restarts).
        let syslog = "Mar  3 10:00:00 node-1 kernel: [ 9000.000000] unregister_netdevice: waiting for cli-veth to become free. Usage count = 1\n\
                      Mar  3 10:00:10 node-1 kernel: [ 9010.000000] unregister_netdevice: waiting for cli-veth to become free. Usage count = 1\n\
                      Mar  3 10:30:00 node-1 kernel: [    1.000000] Linux version 5.15.0-91-generic (buildd@lcy02)\n";
        let f = &crate::run(&file_snapshot(syslog), &Default::default())[0];
        assert_eq!(f.severity, Severity::Info, "{}", f.summary);
        assert!(
            f.summary
                .contains("the lines stopped 29m 50s before the log's last line"),
            "{}",
            f.summary
        );

        // Lines without any time: whether it still waits cannot be told.
        let untimed =
            "unregister_netdevice: waiting for cli-veth to become free. Usage count = 1\n";
        let f = &crate::run(&file_snapshot(untimed), &Default::default())[0];
        assert_eq!(f.severity, Severity::Warning);
        assert!(f.summary.contains("cannot be told"), "{}", f.summary);
    }

    #[test]
    fn a_vanilla_kernel_below_the_backport_names_the_likely_cause() {
        let snap = seed_log("3.16.60", 1045);
        let f = &crate::run(&snap, &Default::default())[0];
        assert!(
            f.evidence.iter().any(|e| e.fact.contains("LIKELY CAUSE")),
            "{:?}",
            f.evidence
        );
        assert!(f.explanation.contains("fnhe"), "{}", f.explanation);
    }
}
