//! Classification of the kernel's own hung-task reports, on the recorded corpus of real
//! kernel logs in `crates/kmsg/tests/fixtures/` (each file names its public source): the
//! same signature table as live stacks, the right class and the frames that decided it.

#[path = "../../kmsg/tests/corpus/mod.rs"]
mod corpus;

use corpus::fixtures;
use nodedoc_detectors::catalog::base_function;
use nodedoc_detectors::{classify_trace, describe_trace};
use nodedoc_kmsg::blocked_task_reports_in_text;

#[test]
fn every_report_of_the_corpus_gets_its_class_and_deciding_frames() {
    let mut checked = 0;
    let mut classes = std::collections::BTreeSet::new();
    for fixture in fixtures("hung_task") {
        let name = &fixture.name;
        let reports = blocked_task_reports_in_text(&fixture.body).reports;
        for expect in &fixture.expects {
            let Some(class) = &expect.class else { continue };
            let pid = expect.pid.unwrap();
            let report = reports.iter().find(|r| r.pid == pid).unwrap();
            let found = classify_trace(report);
            if class == "none" {
                assert!(found.is_none(), "{name} pid {pid}: {found:?}");
                checked += 1;
                continue;
            }
            let found = found.unwrap_or_else(|| panic!("{name} pid {pid}: unclassified"));
            assert_eq!(&found.signature.id, class, "{name} pid {pid}: {found:#?}");
            assert_eq!(
                Some(base_function(&found.frame)),
                expect.frame.as_deref(),
                "{name} pid {pid}: deciding frame"
            );
            assert_eq!(
                found
                    .site
                    .as_ref()
                    .or(found.inner.as_ref().and_then(|i| i.site.as_ref())),
                expect.site.as_ref(),
                "{name} pid {pid}: site"
            );
            assert_eq!(
                found.inner.as_ref().map(|i| i.signature.id.as_str()),
                expect.inner.as_deref(),
                "{name} pid {pid}: inner"
            );
            assert_eq!(found.from_unreliable, expect.unreliable, "{name} pid {pid}");
            // The deciding frame is the report's own frame at that index.
            assert_eq!(report.frames[found.index].function, found.frame);
            classes.insert(class.clone());
            checked += 1;
        }
    }
    assert!(checked >= 30, "{checked} classified");
    for class in [
        "block-io",
        "fs-journal",
        "fuse-no-answer",
        "lock-wait",
        "network-filesystem",
        "nfs-server",
        "rcu-grace-period",
        "zfs",
    ] {
        assert!(
            classes.contains(class),
            "no real report of {class}: {classes:?}"
        );
    }
}

/// A wrong class sends the SRE to the wrong machine: no report of a task in the NFS
/// server's code, or of an nfsd thread, is ever an NFS client waiting for its server.
#[test]
fn nfs_server_threads_are_never_nfs_clients() {
    let mut server_reports = 0;
    for fixture in fixtures("hung_task") {
        for report in blocked_task_reports_in_text(&fixture.body).reports {
            let in_server = report.comm == "nfsd"
                || report
                    .frames
                    .iter()
                    .any(|f| f.module.as_deref() == Some("nfsd"));
            if !in_server {
                continue;
            }
            server_reports += 1;
            let class = classify_trace(&report);
            assert_ne!(
                class.as_ref().map(|c| c.signature.id.as_str()),
                Some("network-filesystem"),
                "{}: nfsd pid {} classed as a client",
                fixture.name,
                report.pid
            );
        }
    }
    assert!(server_reports >= 3, "{server_reports}");
}

#[test]
fn descriptions_name_the_server_side_wait_and_fill_every_placeholder() {
    for fixture in fixtures("hung_task") {
        for report in blocked_task_reports_in_text(&fixture.body).reports {
            let Some(class) = classify_trace(&report) else {
                continue;
            };
            let description = describe_trace(&report, &class);
            for text in [&description.explanation, &description.fix] {
                assert!(
                    !text.contains('{'),
                    "{} pid {}: unfilled placeholder in {text}",
                    fixture.name,
                    report.pid
                );
            }
            assert!(!description.references.is_empty());
            assert!(description
                .evidence
                .iter()
                .any(|e| e.fact.starts_with("its call trace: ")));
        }
    }
    let nfsd = fixtures("hung_task")
        .into_iter()
        .find(|f| f.name.starts_with("zfs-pr2828"))
        .unwrap();
    let report = &blocked_task_reports_in_text(&nfsd.body).reports[0];
    let class = classify_trace(report).unwrap();
    let description = describe_trace(report, &class);
    assert!(
        description.explanation.contains("not an NFS client")
            && description.explanation.contains(
                "waiting for a kernel lock (__mutex_lock_slowpath, taken in nfs4_lock_state)"
            ),
        "{}",
        description.explanation
    );
    assert!(
        description
            .evidence
            .iter()
            .any(|e| e.fact == "kernel 3.14.4, tainted PO"),
        "{:?}",
        description.evidence
    );
}

/// Kernels 5.17+ with the reference tracker print who holds a device that cannot be freed;
/// the finding names it, from real reports.
#[test]
fn netdev_unregister_stuck_names_the_holder_from_the_reference_tracker() {
    use nodedoc_model::{HostInfo, Snapshot};
    for fixture in fixtures("netdev_ref_tracker") {
        let name = &fixture.name;
        let expect = &fixture.expects[0];
        let mut snapshot = Snapshot::new(HostInfo {
            kernel_release: "6.18.0".into(),
            uptime_us: 1_000_000,
            ..HostInfo::default()
        });
        snapshot.kernel_log = Some(nodedoc_kmsg::parse_dmesg_text(&fixture.body, None));
        let findings = nodedoc_detectors::run(&snapshot, &Default::default());
        let finding = findings
            .iter()
            .find(|f| f.detector == "netdev-unregister-stuck")
            .unwrap_or_else(|| panic!("{name}: no finding"));
        let holder = expect.holder.as_deref().unwrap();
        assert!(
            finding
                .evidence
                .iter()
                .any(|e| e.fact.contains(&format!("taken in {holder}"))),
            "{name}: {:#?}",
            finding.evidence
        );
        assert!(
            finding
                .explanation
                .contains("reference tracker names who still holds it")
                && finding.explanation.contains(holder),
            "{name}: {}",
            finding.explanation
        );
    }
}

/// `check --kernel-log` on each recorded log: every task the kernel reported is a `hung-task`
/// finding from the log alone — the right task and pid, the class its trace shows, the frame
/// that decided it, and when it was reported — a warning, since whether it is still blocked
/// cannot be told from a saved log (and never "no longer blocked").
#[test]
fn every_report_of_the_corpus_is_a_finding_from_the_log_alone() {
    use nodedoc_detectors::catalog::catalog;
    use nodedoc_model::{HostInfo, Severity, Snapshot, Subject};
    let mut checked = 0;
    for fixture in fixtures("hung_task") {
        let name = &fixture.name;
        let log = nodedoc_kmsg::parse_kernel_log_file(&fixture.body, None);
        let reports = log.blocked_task_reports.clone();
        let mut snapshot = Snapshot::new(HostInfo {
            kernel_release: "6.18.0".into(),
            // This host has been up far longer than the log's kernel: its clock is not used.
            uptime_us: 9_000_000_000_000,
            clock_ticks_per_sec: 100,
            ..HostInfo::default()
        });
        snapshot.kernel_log = Some(log);
        let findings = nodedoc_detectors::run(&snapshot, &Default::default());
        for expect in &fixture.expects {
            let (Some(class), Some(pid)) = (&expect.class, expect.pid) else {
                continue;
            };
            let finding = findings
                .iter()
                .find(|f| f.detector == "hung-task" && f.pid == Some(pid))
                .unwrap_or_else(|| panic!("{name}: no hung-task finding for pid {pid}"));
            if let Some(comm) = &expect.comm {
                let Subject::Process { comm: found, .. } = &finding.subject else {
                    panic!("{name}: {:?}", finding.subject)
                };
                assert!(
                    found.starts_with(comm.as_str()) || comm.starts_with(found.as_str()),
                    "{name}: {found} for {comm}"
                );
            }
            assert_eq!(finding.severity, Severity::Warning, "{name} pid {pid}");
            assert!(
                !finding.summary.contains("no longer blocked")
                    && !finding.explanation.contains("not blocked any more"),
                "{name}: {}",
                finding.summary
            );
            assert!(
                finding.explanation.contains("cannot be told from it"),
                "{name}: {}",
                finding.explanation
            );
            let decided = finding
                .evidence
                .iter()
                .find_map(|e| e.fact.strip_prefix("decided by "));
            if class == "none" {
                assert!(
                    finding.summary.contains("matches no known signature"),
                    "{name} pid {pid}: {}",
                    finding.summary
                );
                assert!(decided.is_none(), "{name} pid {pid}: {decided:?}");
            } else {
                let title = &catalog().stack_signature(class).unwrap().title;
                assert!(
                    finding.summary.ends_with(title.as_str()),
                    "{name} pid {pid}: {} (expected {class})",
                    finding.summary
                );
                let frame = decided
                    .and_then(|d| d.split(':').next())
                    .unwrap_or_else(|| panic!("{name} pid {pid}: {:#?}", finding.evidence));
                assert_eq!(
                    Some(base_function(frame)),
                    expect.frame.as_deref(),
                    "{name} pid {pid}: deciding frame"
                );
            }
            // When: the time of the kernel's report, as the log printed it.
            let report = reports.iter().rfind(|r| r.pid == pid).unwrap();
            let when = match (
                report.logged_at.monotonic_us,
                report.logged_at.wall_clock_ms,
            ) {
                (_, Some(ms)) => nodedoc_model::clock::format_ms(ms),
                (Some(us), None) => format!("{:.1}s after boot", us as f64 / 1e6),
                (None, None) => "a time the line does not give".into(),
            };
            assert!(
                finding.evidence.iter().any(|e| e.fact.contains(&when)),
                "{name} pid {pid}: no {when:?} in {:#?}",
                finding.evidence
            );
            checked += 1;
        }
        // Nothing else claims to be a hung task.
        for finding in findings.iter().filter(|f| f.detector == "hung-task") {
            assert!(
                reports.iter().any(|r| Some(r.pid) == finding.pid),
                "{name}: {}",
                finding.summary
            );
        }
    }
    assert!(checked >= 40, "{checked}");
}

/// Logs that hold call traces of other kinds (soft lockups, RCU stalls, warnings, a client
/// warning with nfs frames) give no hung-task finding.
#[test]
fn other_traces_are_not_hung_tasks() {
    use nodedoc_model::{HostInfo, Snapshot};
    for fixture in fixtures("not_hung_task") {
        let mut snapshot = Snapshot::new(HostInfo::default());
        snapshot.kernel_log = Some(nodedoc_kmsg::parse_kernel_log_file(&fixture.body, None));
        let findings = nodedoc_detectors::run(&snapshot, &Default::default());
        assert!(
            !findings.iter().any(|f| f.detector == "hung-task"),
            "{}: {findings:#?}",
            fixture.name
        );
    }
}

/// Many tasks reported for one cause are one group finding (a flood of kernel reports, as a
/// dead NFS server gives), the user-space note kept apart.
#[test]
fn a_flood_of_reports_of_one_cause_is_one_group() {
    use nodedoc_model::{HostInfo, Snapshot};
    let fixture = fixtures("hung_task")
        .into_iter()
        .find(|f| f.name.starts_with("azure-fuse-79"))
        .unwrap();
    let report: Vec<&str> = fixture
        .body
        .lines()
        .skip_while(|l| !l.contains("INFO: task cp:48332"))
        .collect();
    let mut text = String::new();
    for pid in 1000..1030 {
        for line in &report {
            text.push_str(&line.replace("48332", &pid.to_string()));
            text.push('\n');
        }
    }
    let mut snapshot = Snapshot::new(HostInfo::default());
    snapshot.kernel_log = Some(nodedoc_kmsg::parse_kernel_log_file(&text, None));
    let findings = nodedoc_detectors::run(&snapshot, &Default::default());
    let hung: Vec<_> = findings
        .iter()
        .filter(|f| f.detector == "hung-task")
        .collect();
    assert_eq!(hung.len(), 1, "{hung:#?}");
    assert!(
        hung[0]
            .summary
            .starts_with("30 tasks the kernel reported blocked: "),
        "{}",
        hung[0].summary
    );
}
