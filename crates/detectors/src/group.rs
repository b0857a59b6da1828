//! Floods: one finding per signature instead of thousands.
//!
//! Anyone who can write to `/dev/kmsg`, start processes or create namespaces can make a
//! detector find the same failure thousands of times (50,000 forged kernel lines for 5,000
//! devices gave 5,000 critical findings). A detector declares, per finding, what makes it the
//! same failure as another ([`Signature`]); after every detector ran, [`collapse_floods`]
//! replaces more than [`Config::group_above`] findings of one detector with one severity and
//! one signature key by a single group finding:
//!
//! - subject `group` {`of`, `signature`, `count`}; its id `DETECTOR:group/OF/SEVERITY/KEY` is
//!   stable from run to run while the signature lasts;
//! - the summary from the signature, with the count;
//! - evidence: the count and order, the first [`Config::group_members_shown`] members by name,
//!   a line saying how many more, then the evidence every member shares;
//! - explanation and fix of the first member, said to be of the first member;
//! - `group.members`: at most [`Config::group_members_max`] members, each with its own id,
//!   subject, summary and the evidence it does not share; `group.omitted` counts the rest;
//! - every link to or from a member now points to or from the group.
//!
//! Findings of a detector that declares no signature (the OVS detectors, whose findings `fix`
//! acts on one by one) are never grouped. The work is linear in the number of findings.

use std::collections::{HashMap, HashSet};

use nodedoc_model::{Evidence, Finding, FindingGroup, FindingId, GroupMember, Severity, Subject};

use crate::{render, thousands, Config};

/// What makes findings of one detector the same failure, declared by the detector when it
/// emits a finding ([`Context::emit_as`](crate::Context::emit_as)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    /// Short and stable (it is part of the group's id): findings of one detector with the
    /// same severity and key are the same failure, e.g. `still-waiting/kernel`. It must
    /// separate what a reader must not confuse — in particular records the kernel wrote from
    /// records user space wrote into `/dev/kmsg`.
    pub key: String,
    /// The group finding's summary; `{count}` is replaced by the number of members, e.g.
    /// `the kernel cannot free {count} network devices: still waiting`.
    pub summary: String,
    /// Orders the members: a higher rank comes first (ties by subject).
    pub rank: u64,
    /// What the rank means, for the report: `most repeated first`, `longest running first`.
    pub order: &'static str,
}

impl Signature {
    /// A signature with `key` and group `summary`, members ranked by `rank` (`order` says
    /// what the rank means).
    pub fn new(
        key: impl Into<String>,
        summary: impl Into<String>,
        rank: u64,
        order: &'static str,
    ) -> Signature {
        Signature {
            key: key.into(),
            summary: summary.into(),
            rank,
            order,
        }
    }
}

/// Replaces every flood among `findings` by one group finding (see the module documentation).
/// `signatures[i]` is what `findings[i]` was emitted with. Below the threshold nothing changes.
pub(crate) fn collapse_floods(
    findings: Vec<Finding>,
    signatures: Vec<Option<Signature>>,
    config: &Config,
) -> Vec<Finding> {
    debug_assert_eq!(findings.len(), signatures.len());
    // Buckets by (detector, severity, key), in order of their first finding.
    let mut buckets: HashMap<(&str, Severity, &str), Vec<usize>> = HashMap::new();
    for (i, (finding, signature)) in findings.iter().zip(&signatures).enumerate() {
        if let Some(signature) = signature {
            buckets
                .entry((&finding.detector, finding.severity, &signature.key))
                .or_default()
                .push(i);
        }
    }
    let floods: Vec<Vec<usize>> = buckets
        .into_values()
        .filter(|members| members.len() > config.group_above)
        .collect();
    if floods.is_empty() {
        return findings;
    }

    // Where each group goes (the place of its first member), and what each member becomes.
    let mut group_at: HashMap<usize, Finding> = HashMap::new();
    let mut collapsed = vec![false; findings.len()];
    let mut redirect: HashMap<FindingId, FindingId> = HashMap::new();
    for members in floods {
        let group = build_group(&findings, &signatures, &members, config);
        for &i in &members {
            collapsed[i] = true;
            redirect.insert(findings[i].id.clone(), group.id.clone());
        }
        group_at.insert(members[0], group);
    }

    let mut out = Vec::with_capacity(findings.len());
    for (i, finding) in findings.into_iter().enumerate() {
        if let Some(group) = group_at.remove(&i) {
            out.push(group);
        }
        if !collapsed[i] {
            out.push(finding);
        }
    }
    for finding in &mut out {
        let own = finding.id.clone();
        for links in [&mut finding.causes, &mut finding.caused_by] {
            let mut seen = HashSet::new();
            let redirected: Vec<FindingId> = links
                .drain(..)
                .map(|id| redirect.get(&id).cloned().unwrap_or(id))
                .filter(|id| *id != own && seen.insert(id.clone()))
                .collect();
            *links = redirected;
        }
    }
    out
}

/// The group finding for `members` (indices into `findings`, at least one).
fn build_group(
    findings: &[Finding],
    signatures: &[Option<Signature>],
    members: &[usize],
    config: &Config,
) -> Finding {
    let signature = |i: usize| signatures[i].as_ref().expect("grouped findings have one");
    let mut ordered: Vec<usize> = members.to_vec();
    let keys: HashMap<usize, String> = members
        .iter()
        .map(|&i| (i, findings[i].subject.key()))
        .collect();
    ordered.sort_by(|&a, &b| {
        signature(b)
            .rank
            .cmp(&signature(a).rank)
            .then_with(|| keys[&a].cmp(&keys[&b]))
    });
    let first = &findings[ordered[0]];
    let first_signature = signature(ordered[0]);
    let count = ordered.len();
    let subject = Subject::Group {
        of: first.subject.type_name().to_string(),
        signature: format!("{}/{}", first.severity, first_signature.key),
        count,
    };
    let noun = subject.to_string();
    let count_text = thousands(count as u64);
    let mut group = Finding::new(
        &first.detector,
        first.severity,
        subject,
        render(&first_signature.summary, &[("count", &count_text)]),
    );

    // Evidence every member has, fact and command alike, is said once for the group.
    let mut holders: HashMap<(&str, Option<&str>), usize> = HashMap::new();
    for &i in &ordered {
        let mut own = HashSet::new();
        for e in &findings[i].evidence {
            let key = (e.fact.as_str(), e.command.as_deref());
            if own.insert(key) {
                *holders.entry(key).or_default() += 1;
            }
        }
    }
    let shared = |e: &Evidence| holders[&(e.fact.as_str(), e.command.as_deref())] == count;
    let own_evidence = |f: &Finding| -> Vec<Evidence> {
        f.evidence.iter().filter(|e| !shared(e)).cloned().collect()
    };

    let shown = config.group_members_shown.min(count);
    group.evidence.push(Evidence::fact(format!(
        "{} with this signature ({count_text} findings), {}; the first {shown}:",
        noun, first_signature.order
    )));
    for &i in ordered.iter().take(shown) {
        let member = &findings[i];
        let evidence = own_evidence(member)
            .into_iter()
            .find(|e| e.command.is_some());
        group.evidence.push(Evidence {
            fact: member.summary.clone(),
            command: evidence.as_ref().and_then(|e| e.command.clone()),
            command_withheld: None,
        });
    }
    let listed = config.group_members_max.min(count);
    if count > shown {
        group.evidence.push(Evidence::fact(format!(
            "… and {} more, not shown here; the JSON report lists {} in `group.members`{}",
            thousands((count - shown) as u64),
            if listed == count {
                "all of them".to_string()
            } else {
                format!("the first {}", thousands(listed as u64))
            },
            if listed == count {
                String::new()
            } else {
                format!(
                    " and counts the other {} in `group.omitted`",
                    thousands((count - listed) as u64)
                )
            }
        )));
    }
    group
        .evidence
        .extend(first.evidence.iter().filter(|e| shared(e)).cloned());

    group.explanation = format!(
        "Explained for the first of them, {}: {}",
        first.subject, first.explanation
    );
    group.fix = format!("For each of them; for {}: {}", first.subject, first.fix);
    group.references = first.references.clone();

    let mut causes = HashSet::new();
    let mut caused_by = HashSet::new();
    for &i in &ordered {
        for id in &findings[i].causes {
            if causes.insert(id) {
                group.causes.push(id.clone());
            }
        }
        for id in &findings[i].caused_by {
            if caused_by.insert(id) {
                group.caused_by.push(id.clone());
            }
        }
    }

    group.group = Some(FindingGroup {
        count,
        order: first_signature.order.to_string(),
        members: ordered
            .iter()
            .take(listed)
            .map(|&i| {
                let f = &findings[i];
                GroupMember {
                    id: f.id.clone(),
                    subject: f.subject.clone(),
                    pid: f.pid,
                    container: f.container.clone(),
                    summary: f.summary.clone(),
                    evidence: own_evidence(f),
                }
            })
            .collect(),
        omitted: count - listed,
    });
    group
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(name: &str, severity: Severity) -> Finding {
        let mut f = Finding::new(
            "netdev-unregister-stuck",
            severity,
            Subject::NetDevice { name: name.into() },
            format!("the kernel cannot free network device {name}"),
        );
        f.evidence.push(Evidence::new(
            format!("line about {name}"),
            nodedoc_model::shell_command!("dmesg | grep -F -- {}", name),
        ));
        f.evidence.push(Evidence::new(
            "linux ee60ad219f5c: possible cause",
            nodedoc_model::shell_command!("uname -r"),
        ));
        f.explanation = format!("{name} is held");
        f.fix = format!("reboot for {name}");
        f
    }

    fn signature(rank: u64) -> Option<Signature> {
        Some(Signature::new(
            "still-waiting/kernel",
            "the kernel cannot free {count} network devices",
            rank,
            "most repeated first",
        ))
    }

    #[test]
    fn at_the_threshold_nothing_changes() {
        let findings: Vec<Finding> = (0..20)
            .map(|n| device(&format!("d{n}"), Severity::Critical))
            .collect();
        let signatures = (0..20).map(signature).collect();
        let out = collapse_floods(findings.clone(), signatures, &Config::default());
        assert_eq!(out, findings);
    }

    #[test]
    fn a_flood_becomes_one_bounded_group_and_links_follow_it() {
        let config = Config {
            group_members_max: 100,
            ..Config::default()
        };
        let mut findings: Vec<Finding> = Vec::new();
        let mut signatures = Vec::new();
        for n in 0..5_000u64 {
            findings.push(device(&format!("d{n:04}"), Severity::Critical));
            signatures.push(signature(n % 7));
        }
        // One of another severity is not in the group; one without a signature neither.
        findings.push(device("info-one", Severity::Info));
        signatures.push(signature(0));
        let mut effect = Finding::new("hung-task", Severity::Warning, Subject::Host, "x");
        effect.caused_by.push(findings[42].id.clone());
        effect.caused_by.push(findings[43].id.clone());
        findings.push(effect);
        signatures.push(None);

        let out = collapse_floods(findings, signatures, &config);
        assert_eq!(
            out.len(),
            3,
            "{:#?}",
            out.iter().map(|f| &f.id).collect::<Vec<_>>()
        );
        let group = &out[0];
        assert_eq!(
            group.id.0,
            "netdev-unregister-stuck:group/net-device/critical/still-waiting/kernel"
        );
        assert_eq!(
            group.subject,
            Subject::Group {
                of: "net-device".into(),
                signature: "critical/still-waiting/kernel".into(),
                count: 5_000
            }
        );
        assert_eq!(
            group.summary,
            "the kernel cannot free 5,000 network devices"
        );
        let members = group.group.as_ref().unwrap();
        assert_eq!(
            (members.count, members.members.len(), members.omitted),
            (5_000, 100, 4_900)
        );
        // Rank 6 first, then by name: d0006, d0013, …
        assert_eq!(
            members.members[0].id.0,
            "netdev-unregister-stuck:netdev/d0006"
        );
        assert_eq!(
            members.members[1].id.0,
            "netdev-unregister-stuck:netdev/d0013"
        );
        // Shared evidence once, in the group; each member keeps its own.
        assert_eq!(members.members[0].evidence.len(), 1);
        assert!(members.members[0].evidence[0].fact.contains("d0006"));
        assert!(group
            .evidence
            .iter()
            .any(|e| e.fact == "linux ee60ad219f5c: possible cause"));
        assert!(group.evidence[0]
            .fact
            .starts_with("5,000 network devices with this signature (5,000 findings), most repeated first; the first 10:"));
        assert_eq!(
            group.evidence[1].fact,
            "the kernel cannot free network device d0006"
        );
        assert_eq!(
            group.evidence[1].command.as_deref(),
            Some("dmesg | grep -F -- d0006")
        );
        assert!(
            group.evidence[11].fact.starts_with("… and 4,990 more"),
            "{:?}",
            group.evidence[11]
        );
        assert!(group
            .explanation
            .contains("network device d0006: d0006 is held"));
        // The link to two members is now one link to the group.
        let effect = out.iter().find(|f| f.detector == "hung-task").unwrap();
        assert_eq!(effect.caused_by, vec![group.id.clone()]);
        assert!(out
            .iter()
            .any(|f| f.id.0 == "netdev-unregister-stuck:netdev/info-one"));
    }
}

/// Floods through the real detectors.
#[cfg(test)]
mod flood_tests {
    use crate::testing::{process, resampled, snapshot};
    use nodedoc_model::{KernelLog, KmsgRecord, Process, Severity, Subject, TaskState};
    use nodedoc_procfs::parse::parse_stack;

    fn kmsg(seq: u64, facility: u8, message: String) -> KmsgRecord {
        KmsgRecord {
            level: 0,
            facility,
            sequence: seq,
            monotonic_us: 9_990_000_000 + seq,
            continuation: false,
            message,
            dictionary: vec![],
            caller: None,
            wall_clock_ms: None,
        }
    }

    /// 20,000 findings' worth: 10,000 devices in the kernel log (kernel and user space), and
    /// 10,000 tasks in D (vfork parents with their children, and unclassified stacks).
    #[test]
    fn twenty_thousand_findings_become_a_few_bounded_groups_in_linear_time() {
        let mut processes: Vec<Process> = vec![process(1, "init")];
        let mut blocked: Vec<Process> = Vec::new();
        for n in 0..5_000 {
            let pid = 10_000 + 2 * n;
            let mut parent = process(pid, "forker");
            parent.state = TaskState::UninterruptibleSleep;
            parent.start_time_ticks = 1_000 + n as u64;
            parent.kernel_stack = Some(parse_stack(crate::stacks::tests::LAB_VFORK));
            let mut child = process(pid + 1, "forker");
            child.ppid = pid;
            blocked.push(parent);
            processes.push(child);
        }
        for n in 0..5_000 {
            let mut task = process(30_000 + n, "mystery");
            task.state = TaskState::UninterruptibleSleep;
            task.kernel_stack = Some(parse_stack("[<0>] some_driver_wait+0x1/0x2\n"));
            blocked.push(task);
        }
        processes.extend(blocked.iter().cloned());
        let mut snap = snapshot(processes);
        let refs: Vec<&Process> = blocked.iter().collect();
        snap.resample = Some(resampled(&refs, TaskState::UninterruptibleSleep));
        let mut records = Vec::new();
        for n in 0..10_000u64 {
            // Even devices: the kernel's lines; odd: user space's (facility 1), one line more.
            let facility = (n % 2) as u8;
            for _ in 0..(1 + facility) {
                records.push(kmsg(
                    records.len() as u64,
                    facility,
                    format!(
                        "unregister_netdevice: waiting for fl{n} to become free. Usage count = 1"
                    ),
                ));
            }
        }
        snap.kernel_log = Some(KernelLog {
            records,
            ..KernelLog::default()
        });

        let findings = crate::run(&snap, &Default::default());
        let summary: Vec<(&str, Severity, String, usize)> = findings
            .iter()
            .map(|f| {
                (
                    f.detector.as_str(),
                    f.severity,
                    f.subject.key(),
                    f.group.as_ref().map_or(1, |g| g.count),
                )
            })
            .collect();
        assert_eq!(findings.len(), 4, "{summary:#?}");
        let group = |key: &str| {
            findings
                .iter()
                .find(|f| f.subject.key() == key)
                .unwrap_or_else(|| panic!("no {key} in {summary:#?}"))
        };
        // Forged lines are never grouped with the kernel's.
        let kernel = group("group/net-device/critical/still-waiting/cause-unknown/kernel");
        let forged = group("group/net-device/critical/still-waiting/cause-unknown/user-space");
        assert_eq!(kernel.group.as_ref().unwrap().count, 5_000);
        assert_eq!(forged.group.as_ref().unwrap().count, 5_000);
        assert!(
            forged.summary.contains("by user space"),
            "{}",
            forged.summary
        );
        assert!(!kernel.summary.contains("user space"), "{}", kernel.summary);
        assert!(forged.evidence.iter().any(|e| e
            .fact
            .contains("written to /dev/kmsg by user space (facility user)")));
        assert!(!kernel
            .evidence
            .iter()
            .any(|e| e.fact.contains("user space")));
        let vfork = group("group/process/warning/vfork-parent");
        let members = vfork.group.as_ref().unwrap();
        assert_eq!(
            (members.count, members.members.len(), members.omitted),
            (5_000, 1_000, 4_000)
        );
        // Longest running first: the lowest start time.
        assert_eq!(members.members[0].pid, Some(10_000));
        assert_eq!(
            members.members[0].subject,
            Subject::Process {
                pid: 10_000,
                comm: "forker".into()
            }
        );
        assert!(members.members[0]
            .evidence
            .iter()
            .any(|e| e.fact.contains("its vfork child forker (pid 10001)")));
        assert_eq!(
            group("group/process/warning/unclassified")
                .group
                .as_ref()
                .unwrap()
                .count,
            5_000
        );
        // Bounded: the whole report of 20,000 findings stays small.
        let json = serde_json::to_string(&findings).unwrap();
        assert!(json.len() < 4_000_000, "{} bytes", json.len());
    }
}
