//! # `fd-exhaustion`
//!
//! **Signature.** A process holds at least 80 % (warning) or 95 % (critical) of its soft
//! `RLIMIT_NOFILE` in open descriptors. At 100 % every `open`, `socket`, `accept` and `pipe`
//! fails with `EMFILE` and the process stops doing useful work while still looking alive.
//!
//! **Sources.** The fd census of `/proc/PID/fd` (sockets resolved to family and netlink
//! protocol) and `Max open files` of `/proc/PID/limits`.
//!
//! **Evidence.** The count and the limit, then the descriptors by kind, biggest first, each
//! with the command that shows it (seed 000: `lsof -p $(pidof ovs-vswitchd) | grep -c GENERIC`
//! → 102,409 against a limit of 102,400). The dominant kind picks a hint from the catalog
//! (`fd_kind_hint`), e.g. generic netlink sockets point at Open vSwitch's per-port upcall
//! sockets. Other detectors that find *why* descriptors leak link themselves as causes.
//!
//! **Limit unknown.** A bundle can hold the census without the limit (sos 4.0 saves `lsof`
//! but no `/proc/PID/limits`). Then a process is reported, as a warning that says the limit is
//! unknown, only when one kind of socket makes up most of its table by the thousands
//! ([`UNKNOWN_LIMIT_MIN_SOCKETS`]): seed 000's 102,380 generic netlink sockets are a finding
//! whatever the limit was.

use nodedoc_model::text::{ShellCommand, Unquotable};
use nodedoc_model::{
    shell_command, Evidence, FdCensus, FdKind, Finding, Limit, Process, Severity, Subject,
};

use crate::{catalog, thousands, Context, Detector, Signature};

/// See the module documentation.
pub struct FdExhaustion;

/// How many kinds the evidence lists before summing up the rest.
const KINDS_SHOWN: usize = 5;

/// With the limit unknown: the fewest descriptors of the dominant socket kind that make a
/// finding. Daemons hold tens or hundreds of sockets of a kind; thousands of one kind is the
/// leak shape of seed 000, and more than the 1,024 soft limit most processes start with.
const UNKNOWN_LIMIT_MIN_SOCKETS: u64 = 1_000;

/// With the limit unknown: the share of the table the dominant socket kind must hold.
const UNKNOWN_LIMIT_MIN_SHARE: f64 = 0.5;

impl Detector for FdExhaustion {
    fn id(&self) -> &'static str {
        "fd-exhaustion"
    }

    fn detect(&self, cx: &mut Context<'_>) {
        let snapshot = cx.snapshot;
        for process in &snapshot.processes {
            let Some(fds) = &process.fds else {
                continue;
            };
            let Some(limit) = process.nofile else {
                self.limit_unknown(cx, process, fds);
                continue;
            };
            let Limit::Finite(soft) = limit.soft else {
                continue;
            };
            if soft == 0 {
                continue;
            }
            let ratio = fds.total as f64 / soft as f64;
            let severity = if ratio >= cx.config.fd_critical_ratio {
                Severity::Critical
            } else if ratio >= cx.config.fd_warning_ratio {
                Severity::Warning
            } else {
                continue;
            };
            let pid = process.pid;
            let subject = Subject::process(process);
            let dominant = fds.kinds.first();
            let dominant_text = dominant.map_or_else(String::new, |k| {
                format!(", {} of them {}", thousands(k.count), plural(&k.kind))
            });
            let mut finding = Finding::new(
                self.id(),
                severity,
                subject,
                format!(
                    "{} holds {} open fds, {:.1}% of its limit {}{}",
                    process.label(),
                    thousands(fds.total),
                    ratio * 100.0,
                    thousands(soft),
                    dominant_text
                ),
            );
            finding.evidence.push(Evidence::new(
                format!("{} open file descriptors", thousands(fds.total)),
                shell_command!("ls /proc/{}/fd | wc -l", pid),
            ));
            finding.evidence.push(Evidence::new(
                format!("Max open files: soft {} / hard {}", limit.soft, limit.hard),
                shell_command!("grep 'Max open files' /proc/{}/limits", pid),
            ));
            finding.evidence.extend(kind_rows(fds, pid));
            let rest: u64 = fds.kinds.iter().skip(KINDS_SHOWN).map(|k| k.count).sum();
            if rest > 0 {
                finding.evidence.push(Evidence::fact(format!(
                    "{} more of {} other kinds",
                    thousands(rest),
                    fds.kinds.len() - KINDS_SHOWN
                )));
            }
            finding.evidence.push(Evidence::fact(format!(
                "sockets resolved by {}",
                fds.socket_resolution
            )));

            let hint = dominant.and_then(|k| catalog().fd_kind_hint(&kind_key(&k.kind)));
            if let Some(hint) = hint {
                finding.references.extend(hint.references.iter().cloned());
            }
            let dominant_kind = dominant.map_or("descriptor".to_string(), |k| k.kind.to_string());
            let total = thousands(fds.total);
            let soft_text = thousands(soft);
            let hard_text = limit.hard.to_string();
            let raised = match limit.hard {
                Limit::Finite(hard) if hard > soft => hard.min(soft.saturating_mul(2)),
                _ => soft.saturating_mul(2),
            }
            .to_string();
            let pid_text = pid.to_string();
            let signature = Signature::new(
                dominant.map_or("empty".to_string(), |k| kind_key(&k.kind)),
                format!("{{count}} processes are at or near their open-file limit, most of their descriptors {}", dominant.map_or("of no kind".to_string(), |k| plural(&k.kind))),
                fds.total,
                "most descriptors first",
            );
            cx.emit_as(
                signature,
                finding,
                &[
                    ("pid", &pid_text),
                    ("comm", &process.comm),
                    ("total", &total),
                    ("soft", &soft_text),
                    ("hard", &hard_text),
                    ("raised", &raised),
                    ("dominant_kind", &dominant_kind),
                    ("hint", hint.map_or("", |h| h.hint.as_str())),
                ],
            );
        }
    }
}

impl FdExhaustion {
    /// A process whose limit the snapshot lacks, reported when one socket kind dominates its
    /// table by the thousands (see the module documentation).
    fn limit_unknown(&self, cx: &mut Context<'_>, process: &Process, fds: &FdCensus) {
        let Some(dominant) = fds.kinds.first() else {
            return;
        };
        let share = dominant.count as f64 / fds.total.max(1) as f64;
        if !dominant.kind.is_socket()
            || dominant.count < UNKNOWN_LIMIT_MIN_SOCKETS
            || share < UNKNOWN_LIMIT_MIN_SHARE
        {
            return;
        }
        let pid = process.pid;
        let kinds = plural(&dominant.kind);
        let mut finding = Finding::new(
            self.id(),
            Severity::Warning,
            Subject::process(process),
            format!(
                "{} holds {} open fds, {} of them {}; its open-file limit is unknown",
                process.label(),
                thousands(fds.total),
                thousands(dominant.count),
                kinds
            ),
        );
        finding.evidence.push(Evidence::new(
            format!("{} open file descriptors", thousands(fds.total)),
            shell_command!("ls /proc/{}/fd | wc -l", pid),
        ));
        finding.evidence.push(Evidence::new(
            "Max open files: unknown (the snapshot has no /proc/PID/limits for this process; see its gaps)",
            shell_command!("grep 'Max open files' /proc/{}/limits", pid),
        ));
        finding.evidence.extend(kind_rows(fds, pid));
        finding.evidence.push(Evidence::fact(format!(
            "sockets resolved by {}",
            fds.socket_resolution
        )));
        let hint = catalog().fd_kind_hint(&kind_key(&dominant.kind));
        if let Some(hint) = hint {
            finding.references.extend(hint.references.iter().cloned());
        }
        finding.explanation = format!(
            "{} (pid {pid}) holds {} descriptors, {} of them {}. Its open-file limit was not collected, so how close it is to EMFILE (\"Too many open files\") cannot be told; but thousands of sockets of one kind in one process is rarely by design and usually something opened per event and never closed. {}",
            process.comm,
            thousands(fds.total),
            thousands(dominant.count),
            kinds,
            hint.map_or("", |h| h.hint.as_str())
        )
        .trim_end()
        .to_string();
        finding.fix = format!(
            "Read the limit where it runs (`grep 'Max open files' /proc/{pid}/limits`) or in its service definition (LimitNOFILE=), and find out why {} keeps opening {}: see the linked findings, if any.",
            process.comm, kinds
        );
        let signature = Signature::new(
            format!("limit-unknown/{}", kind_key(&dominant.kind)),
            format!("{{count}} processes hold thousands of {kinds}, their open-file limit unknown"),
            fds.total,
            "most descriptors first",
        );
        cx.emit_as(signature, finding, &[]);
    }
}

/// The biggest kinds of a census, one evidence line each, with the command that counts them.
fn kind_rows(fds: &FdCensus, pid: i32) -> impl Iterator<Item = Evidence> + '_ {
    fds.kinds.iter().take(KINDS_SHOWN).map(move |row| {
        Evidence::new(
            format!(
                "{} {} ({:.1}%)",
                thousands(row.count),
                if row.count == 1 {
                    singular(&row.kind)
                } else {
                    plural(&row.kind)
                },
                row.count as f64 * 100.0 / fds.total.max(1) as f64
            ),
            command_for(&row.kind, pid),
        )
    })
}

/// The catalog key of a kind: `netlink-socket/NETLINK_GENERIC`, `anon-inode/eventfd`, `pipe`.
pub(crate) fn kind_key(kind: &FdKind) -> String {
    match kind {
        FdKind::NetlinkSocket { protocol } => format!("netlink-socket/{protocol}"),
        FdKind::AnonInode { name } => format!("anon-inode/{name}"),
        other => {
            // The serde tag is the stable kebab-case name of the kind.
            serde_tag(other)
        }
    }
}

fn serde_tag(kind: &FdKind) -> String {
    match kind {
        FdKind::File => "file",
        FdKind::Directory => "directory",
        FdKind::CharDevice => "char-device",
        FdKind::BlockDevice => "block-device",
        FdKind::NamedPipe => "named-pipe",
        FdKind::Pipe => "pipe",
        FdKind::Memfd => "memfd",
        FdKind::UnixSocket => "unix-socket",
        FdKind::TcpSocket => "tcp-socket",
        FdKind::UdpSocket => "udp-socket",
        FdKind::PacketSocket => "packet-socket",
        FdKind::NetlinkSocket { .. } => "netlink-socket",
        FdKind::OtherSocket { .. } => "other-socket",
        FdKind::UnresolvedSocket => "unresolved-socket",
        FdKind::AnonInode { .. } => "anon-inode",
        FdKind::Namespace => "namespace",
        FdKind::Other => "other",
    }
    .to_string()
}

fn singular(kind: &FdKind) -> String {
    match kind {
        FdKind::NetlinkSocket { protocol } => format!("{protocol} netlink socket"),
        FdKind::AnonInode { name } => format!("anon_inode [{name}] fd"),
        FdKind::File => "regular file".to_string(),
        FdKind::OtherSocket { .. }
        | FdKind::UnresolvedSocket
        | FdKind::Namespace
        | FdKind::Other => {
            format!("{kind} fd")
        }
        other => other.to_string(),
    }
}

pub(crate) fn plural(kind: &FdKind) -> String {
    match kind {
        FdKind::NetlinkSocket { protocol } => format!("{protocol} netlink sockets"),
        FdKind::AnonInode { name } => format!("anon_inode [{name}] fds"),
        FdKind::Other => "other fds".to_string(),
        FdKind::File => "regular files".to_string(),
        FdKind::Directory => "directories".to_string(),
        FdKind::Memfd => "memfds".to_string(),
        FdKind::OtherSocket { .. } | FdKind::UnresolvedSocket | FdKind::Namespace => {
            format!("{kind} fds")
        }
        other => format!("{other}s"),
    }
}

/// The command a human would run to count descriptors of one kind.
pub(crate) fn command_for(kind: &FdKind, pid: i32) -> Result<ShellCommand, Unquotable> {
    match kind {
        FdKind::NetlinkSocket { protocol } => {
            shell_command!("lsof -p {} | grep -c {}", pid, protocol.lsof_word())
        }
        FdKind::TcpSocket => shell_command!("lsof -nP -a -p {} -i TCP | tail -n +2 | wc -l", pid),
        FdKind::UdpSocket => shell_command!("lsof -nP -a -p {} -i UDP | tail -n +2 | wc -l", pid),
        FdKind::UnixSocket => shell_command!("lsof -a -p {} -U | tail -n +2 | wc -l", pid),
        FdKind::PacketSocket | FdKind::OtherSocket { .. } | FdKind::UnresolvedSocket => {
            shell_command!("ls -l /proc/{}/fd | grep -c socket:", pid)
        }
        FdKind::Pipe => shell_command!("ls -l /proc/{}/fd | grep -c pipe:", pid),
        // `ls -l` shows both `anon_inode:[eventfd]` and `anon_inode:inotify`; the name is
        // the kernel's, but a snapshot file can say anything: a fixed-string pattern.
        FdKind::AnonInode { name } => shell_command!(
            "ls -l /proc/{}/fd | grep -c -F -e {} -e {}",
            pid,
            format!("anon_inode:[{name}]"),
            format!("anon_inode:{name}")
        ),
        FdKind::Memfd => shell_command!("ls -l /proc/{}/fd | grep -c /memfd:", pid),
        FdKind::CharDevice | FdKind::BlockDevice => {
            shell_command!("ls -l /proc/{}/fd | grep -c ' -> /dev/'", pid)
        }
        FdKind::File | FdKind::Directory | FdKind::NamedPipe => {
            shell_command!("ls -l /proc/{}/fd | grep -c ' -> /'", pid)
        }
        FdKind::Namespace => shell_command!("ls -l /proc/{}/fd | grep -c ':\\['", pid),
        FdKind::Other => shell_command!("ls -l /proc/{}/fd", pid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{process, snapshot};
    use nodedoc_model::{FdCensus, FdKindCount, NetlinkProtocol, ResourceLimit, SocketResolution};

    fn census(kinds: &[(FdKind, u64)]) -> FdCensus {
        FdCensus {
            total: kinds.iter().map(|k| k.1).sum(),
            kinds: kinds
                .iter()
                .map(|(kind, count)| FdKindCount {
                    kind: kind.clone(),
                    count: *count,
                })
                .collect(),
            socket_resolution: SocketResolution::PidfdGetfd,
            ..Default::default()
        }
    }

    fn limit(soft: u64, hard: u64) -> Option<ResourceLimit> {
        Some(ResourceLimit {
            soft: Limit::Finite(soft),
            hard: Limit::Finite(hard),
        })
    }

    #[test]
    fn seed_000_ovs_vswitchd_at_its_limit_is_critical_with_the_generic_netlink_breakdown() {
        let generic = FdKind::NetlinkSocket {
            protocol: NetlinkProtocol::GENERIC,
        };
        let mut ovs = process(812, "ovs-vswitchd");
        ovs.nofile = limit(102_400, 102_400);
        ovs.fds = Some(census(&[
            (generic.clone(), 102_380),
            (FdKind::UnixSocket, 20),
            (FdKind::File, 9),
        ]));
        let mut calm = process(900, "sshd");
        calm.nofile = limit(1024, 4096);
        calm.fds = Some(census(&[(FdKind::File, 10)]));
        let findings = crate::run(&snapshot(vec![ovs, calm]), &Default::default());
        assert_eq!(findings.len(), 1);
        let f = &findings[0];
        assert_eq!(f.detector, "fd-exhaustion");
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(f.pid, Some(812));
        assert!(f.summary.contains("102,409 open fds"), "{}", f.summary);
        assert!(f.summary.contains("NETLINK_GENERIC"), "{}", f.summary);
        let generic_row = f
            .evidence
            .iter()
            .find(|e| e.fact.starts_with("102,380 NETLINK_GENERIC"))
            .expect("breakdown row");
        assert_eq!(
            generic_row.command.as_deref(),
            Some("lsof -p 812 | grep -c GENERIC")
        );
        assert!(f.explanation.contains("Open vSwitch"), "{}", f.explanation);
        assert!(f.fix.contains("prlimit --pid 812"), "{}", f.fix);
        assert!(!f.fix.contains('{'), "unfilled placeholder: {}", f.fix);
    }

    #[test]
    fn a_bundle_without_limits_still_reports_thousands_of_one_socket_kind() {
        let generic = FdKind::NetlinkSocket {
            protocol: NetlinkProtocol::GENERIC,
        };
        let mut hog = process(4242, "fd-hog");
        hog.nofile = None;
        hog.fds = Some(census(&[(generic.clone(), 3_950), (FdKind::File, 3)]));
        // Below the threshold, or not sockets: nothing without a limit to compare against.
        let mut few = process(4243, "daemon");
        few.fds = Some(census(&[(generic, 999)]));
        let mut files = process(4244, "db");
        files.fds = Some(census(&[(FdKind::File, 50_000)]));
        let findings = crate::run(&snapshot(vec![hog, few, files]), &Default::default());
        assert_eq!(findings.len(), 1, "{findings:#?}");
        let f = &findings[0];
        assert_eq!(f.detector, "fd-exhaustion");
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.pid, Some(4242));
        assert_eq!(
            f.summary,
            "fd-hog (pid 4242) holds 3,953 open fds, 3,950 of them NETLINK_GENERIC netlink sockets; its open-file limit is unknown"
        );
        assert!(f
            .evidence
            .iter()
            .any(|e| e.fact.starts_with("Max open files: unknown")));
        let row = f
            .evidence
            .iter()
            .find(|e| e.fact.starts_with("3,950 NETLINK_GENERIC"))
            .expect("breakdown row");
        assert_eq!(
            row.command.as_deref(),
            Some("lsof -p 4242 | grep -c GENERIC")
        );
        assert!(
            f.explanation.contains("limit was not collected"),
            "{}",
            f.explanation
        );
        assert!(f.fix.contains("/proc/4242/limits"), "{}", f.fix);
    }

    #[test]
    fn thresholds() {
        let mut p = process(10, "app");
        p.nofile = limit(1000, 1000);
        p.fds = Some(census(&[(FdKind::Pipe, 800)]));
        let findings = crate::run(&snapshot(vec![p.clone()]), &Default::default());
        assert_eq!(findings[0].severity, Severity::Warning);
        p.fds = Some(census(&[(FdKind::Pipe, 799)]));
        assert!(crate::run(&snapshot(vec![p.clone()]), &Default::default()).is_empty());
        p.nofile = Some(ResourceLimit {
            soft: Limit::Unlimited,
            hard: Limit::Unlimited,
        });
        assert!(crate::run(&snapshot(vec![p]), &Default::default()).is_empty());
    }
}
