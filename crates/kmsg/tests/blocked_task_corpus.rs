//! The blocked-task and reference-tracker parsers on the recorded corpus of real kernel
//! logs (`tests/fixtures/`, sources in each file's header).

mod corpus;

use corpus::fixtures;
use nodedoc_kmsg::{
    blocked_task_reports_in_text, netdev_ref_trackers_in_text, parse_dmesg_text, parse_kmsg_dump,
    BlockedTaskReport,
};

/// What two ways of reading the same log must agree on.
fn essentials(reports: &[BlockedTaskReport]) -> Vec<(String, i32, Option<u64>, Vec<String>)> {
    reports
        .iter()
        .map(|r| {
            let frames = r.frames.iter().map(ToString::to_string).collect();
            (r.comm.clone(), r.pid, r.blocked_secs, frames)
        })
        .collect()
}

#[test]
fn the_corpus_is_large_and_varied_enough() {
    let hung = fixtures("hung_task");
    let reports: usize = hung.iter().map(|f| f.reports.unwrap_or(0)).sum();
    assert!(hung.len() >= 20, "{} fixtures", hung.len());
    assert!(reports >= 30, "{reports} reports");
    let expects: usize = hung.iter().map(|f| f.expects.len()).sum();
    assert!(expects >= 30, "{expects} expectations");
}

#[test]
fn every_report_of_the_corpus_is_found_with_its_task_pid_and_time() {
    for fixture in fixtures("hung_task") {
        let name = &fixture.name;
        let parsed = blocked_task_reports_in_text(&fixture.body);
        assert_eq!(parsed.dropped, 0, "{name}");
        assert_eq!(
            Some(parsed.reports.len()),
            fixture.reports,
            "{name}: {:#?}",
            essentials(&parsed.reports)
        );
        assert!(!fixture.expects.is_empty(), "{name} expects nothing");
        for expect in &fixture.expects {
            let pid = expect
                .pid
                .unwrap_or_else(|| panic!("{name}: an expectation without pid"));
            let report = parsed
                .reports
                .iter()
                .find(|r| r.pid == pid)
                .unwrap_or_else(|| panic!("{name}: no report of pid {pid}"));
            if let Some(comm) = &expect.comm {
                assert_eq!(&report.comm, comm, "{name}");
            }
            if let Some(secs) = expect.secs {
                assert_eq!(report.blocked_secs, secs, "{name} pid {pid}");
            }
            assert!(!report.frames.is_empty(), "{name} pid {pid}: no frames");
            let blocker = report.blocker.as_ref().map(|b| {
                assert!(!b.owner_frames.is_empty(), "{name}: the owner's trace");
                (b.owner_comm.clone().unwrap(), b.owner_pid.unwrap())
            });
            assert_eq!(blocker, expect.blocker, "{name} pid {pid}: blocker");
            assert_eq!(
                report.task.as_ref().and_then(|t| t.pid),
                Some(pid),
                "{name}: the task line names the reported pid"
            );
        }
        for report in &parsed.reports {
            if let Some(release) = &report.kernel_release {
                assert!(
                    fixture.kernel.contains(release.as_str()),
                    "{name}: release {release} is not the kernel of the header ({})",
                    fixture.kernel
                );
            }
        }
    }
}

/// `dmesg` text through the record parser, and the records as `/dev/kmsg` would hand them
/// out (escaped, with `caller=` when the text had caller ids), give the same reports as the
/// text parser.
#[test]
fn records_and_kmsg_dumps_give_the_same_reports_as_text() {
    for fixture in fixtures("hung_task")
        .into_iter()
        .chain(fixtures("not_hung_task"))
    {
        let name = &fixture.name;
        let from_text = blocked_task_reports_in_text(&fixture.body);
        let log = parse_dmesg_text(&fixture.body, None);
        assert_eq!(
            essentials(&log.blocked_task_reports),
            essentials(&from_text.reports),
            "{name}: dmesg records"
        );

        let mut dump = String::new();
        for (i, record) in log.records.iter().enumerate() {
            let caller = record
                .caller
                .map(|c| format!(",caller={c}"))
                .unwrap_or_default();
            let mut escaped = String::new();
            for c in record.message.chars() {
                if c == '\\' || (c as u32) < 0x20 || c as u32 == 0x7f {
                    escaped.push_str(&format!("\\x{:02x}", c as u32));
                } else {
                    escaped.push(c);
                }
            }
            let prio = record.facility as u32 * 8 + record.level as u32;
            dump.push_str(&format!(
                "{prio},{},{},-{caller};{escaped}\n",
                i + 1,
                record.monotonic_us
            ));
        }
        let kmsg = parse_kmsg_dump(dump.as_bytes(), None);
        assert_eq!(kmsg.malformed, 0, "{name}");
        assert_eq!(
            essentials(&kmsg.blocked_task_reports),
            essentials(&from_text.reports),
            "{name}: /dev/kmsg records"
        );
    }
}

#[test]
fn soft_lockups_rcu_stalls_warnings_and_oopses_are_not_blocked_tasks() {
    let negatives = fixtures("not_hung_task");
    assert!(negatives.len() >= 5);
    for fixture in negatives {
        let parsed = blocked_task_reports_in_text(&fixture.body);
        assert!(
            parsed.reports.is_empty(),
            "{}: {:#?}",
            fixture.name,
            essentials(&parsed.reports)
        );
    }
}

/// Every prefix of every excerpt (a log cut short anywhere) parses without a panic, into no
/// more reports than the whole excerpt has.
#[test]
fn every_truncation_of_the_corpus() {
    for fixture in fixtures("hung_task") {
        let lines: Vec<&str> = fixture.body.lines().collect();
        let whole = blocked_task_reports_in_text(&fixture.body).reports.len();
        for n in 0..lines.len() {
            let mut text = lines[..n].join("\n");
            let parsed = blocked_task_reports_in_text(&text);
            assert!(parsed.reports.len() <= whole, "{} cut at {n}", fixture.name);
            // And cut in the middle of the next line.
            let next = lines[n];
            let mut mid = next.len() / 2;
            while !next.is_char_boundary(mid) {
                mid -= 1;
            }
            text.push('\n');
            text.push_str(&next[..mid]);
            let _ = blocked_task_reports_in_text(&text);
        }
    }
}

#[test]
fn reference_tracker_stacks_of_real_reports() {
    let corpus = fixtures("netdev_ref_tracker");
    assert!(corpus.len() >= 3);
    for fixture in corpus {
        let name = &fixture.name;
        let reports = netdev_ref_trackers_in_text(&fixture.body);
        let expect = &fixture.expects[0];
        assert_eq!(reports.len(), 1, "{name}");
        let report = &reports[0];
        assert_eq!(Some(&report.device), expect.device.as_ref(), "{name}");
        assert_eq!(Some(report.usage_count), expect.count, "{name}");
        let holder = report
            .holders
            .first()
            .unwrap_or_else(|| panic!("{name}: no holder"));
        assert_eq!(Some((holder.users, holder.total)), expect.users, "{name}");
        assert!(holder.frames.len() >= 10, "{name}: {:?}", holder.frames);
        assert!(holder.frames.iter().all(|f| f.reliable), "{name}");
        // The same from dmesg records.
        let log = parse_dmesg_text(&fixture.body, None);
        assert_eq!(log.netdev_ref_trackers, reports, "{name}");
    }
}
