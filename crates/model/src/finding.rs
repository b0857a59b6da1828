use std::fmt;

use serde::{Deserialize, Serialize};

use crate::text::{ShellCommand, Unquotable};
use crate::{Gap, HostInfo, SourceStatus};

/// How bad a finding is. Ordered: `Info < Warning < Critical`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; nothing is broken now.
    Info,
    /// Something is degrading or will break.
    Warning,
    /// Something is broken now.
    Critical,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        })
    }
}

/// A stable identifier of a finding within one report, e.g. `fd-exhaustion:pid/812`.
/// Links between findings use it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FindingId(pub String);

impl FindingId {
    /// The id of the finding `detector` makes about `subject`.
    pub fn new(detector: &str, subject: &Subject) -> FindingId {
        FindingId(format!("{detector}:{}", subject.key()))
    }
}

impl fmt::Display for FindingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a finding is about.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Subject {
    /// One process.
    Process {
        /// Its pid.
        pid: i32,
        /// Its comm.
        comm: String,
    },
    /// A kernel network device.
    NetDevice {
        /// The device name.
        name: String,
    },
    /// An Open vSwitch interface.
    OvsInterface {
        /// The bridge its port is on, when known.
        bridge: Option<String>,
        /// The interface name.
        name: String,
    },
    /// A container, by its full id.
    Container {
        /// The full container id.
        id: String,
    },
    /// The host as a whole.
    Host,
    /// A Kubernetes object (a pod, a Deployment).
    KubeObject {
        /// Its kind as the API spells it: `Pod`, `Deployment`.
        kind: String,
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// Many subjects one detector found with the same signature, reported as one finding (a
    /// flood: 5,000 devices, 10,000 blocked tasks). The members are in the finding's `group`.
    Group {
        /// The type of the members' subjects, as in their `type` (`net-device`, `process`, …).
        of: String,
        /// The severity and the signature the members share, as the detector names it
        /// (`critical/still-waiting/kernel`): stable from run to run, so the group's id is.
        signature: String,
        /// How many subjects.
        count: usize,
    },
}

impl Subject {
    /// The subject for one process.
    pub fn process(process: &crate::Process) -> Subject {
        Subject::Process {
            pid: process.pid,
            comm: process.comm.clone(),
        }
    }

    /// The part of a [`FindingId`] that names the subject.
    pub fn key(&self) -> String {
        match self {
            Subject::Process { pid, .. } => format!("pid/{pid}"),
            Subject::NetDevice { name } => format!("netdev/{name}"),
            Subject::OvsInterface { name, .. } => format!("ovs-interface/{name}"),
            Subject::Container { id } => format!("container/{id}"),
            Subject::Host => "host".to_string(),
            Subject::KubeObject {
                kind,
                namespace,
                name,
            } => format!("{}/{namespace}/{name}", kind.to_ascii_lowercase()),
            Subject::Group { of, signature, .. } => format!("group/{of}/{signature}"),
        }
    }

    /// The `type` tag of this subject in JSON (`process`, `net-device`, …).
    pub fn type_name(&self) -> &'static str {
        match self {
            Subject::Process { .. } => "process",
            Subject::NetDevice { .. } => "net-device",
            Subject::OvsInterface { .. } => "ovs-interface",
            Subject::Container { .. } => "container",
            Subject::Host => "host",
            Subject::KubeObject { .. } => "kube-object",
            Subject::Group { .. } => "group",
        }
    }

    /// The pid, when the subject is a process.
    pub fn pid(&self) -> Option<i32> {
        match self {
            Subject::Process { pid, .. } => Some(*pid),
            _ => None,
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Process { pid, comm } => write!(f, "{comm} (pid {pid})"),
            Subject::NetDevice { name } => write!(f, "network device {name}"),
            Subject::OvsInterface {
                bridge: Some(bridge),
                name,
            } => write!(f, "OVS interface {name} on {bridge}"),
            Subject::OvsInterface { bridge: None, name } => write!(f, "OVS interface {name}"),
            Subject::Container { id } => write!(f, "container {}", &id[..id.len().min(12)]),
            Subject::Host => f.write_str("this host"),
            Subject::KubeObject {
                kind,
                namespace,
                name,
            } => write!(f, "{} {namespace}/{name}", kind.to_ascii_lowercase()),
            Subject::Group { of, count, .. } => {
                let noun = match (of.as_str(), *count == 1) {
                    ("process", true) => "process",
                    ("process", false) => "processes",
                    ("net-device", true) => "network device",
                    ("net-device", false) => "network devices",
                    ("ovs-interface", true) => "OVS interface",
                    ("ovs-interface", false) => "OVS interfaces",
                    ("container", true) => "container",
                    ("container", false) => "containers",
                    ("kube-object", true) => "Kubernetes object",
                    ("kube-object", false) => "Kubernetes objects",
                    (_, true) => "subject",
                    (_, false) => "subjects",
                };
                // 5,000, as the rest of the report writes counts.
                let digits = count.to_string();
                for (i, c) in digits.chars().enumerate() {
                    if i > 0 && (digits.len() - i) % 3 == 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{c}")?;
                }
                write!(f, " {noun}")
            }
        }
    }
}

/// One fact a finding rests on, with the command a human would run to see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// The fact, e.g. `19990 NETLINK_GENERIC sockets`.
    pub fact: String,
    /// A shell command that shows it, e.g. `lsof -p 812 | grep -c GENERIC`; every value in it
    /// is one shell word.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Why no command is given where one would show the fact: a value it needs has control
    /// characters and cannot be pasted safely into a shell (the value appears escaped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_withheld: Option<String>,
}

impl Evidence {
    /// Evidence with the command that shows it, built by
    /// [`shell_command!`](crate::shell_command); when a value could not be quoted, the
    /// evidence keeps the fact and says why there is no command.
    pub fn new(fact: impl Into<String>, command: Result<ShellCommand, Unquotable>) -> Evidence {
        let (command, command_withheld) = match command {
            Ok(command) => (Some(command.into_string()), None),
            Err(unquotable) => (None, Some(unquotable.to_string())),
        };
        Evidence {
            fact: fact.into(),
            command,
            command_withheld,
        }
    }

    /// Evidence without a command (derived, or from a saved snapshot only).
    pub fn fact(fact: impl Into<String>) -> Evidence {
        Evidence {
            fact: fact.into(),
            command: None,
            command_withheld: None,
        }
    }
}

/// A bug, commit or document behind a finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reference {
    /// What it is, e.g. `linux ee60ad219f5c: route: set the deleted fnhe fnhe_daddr to 0`.
    pub title: String,
    /// Where to read it.
    pub url: String,
}

/// What a detector concluded: what is wrong, the evidence, why, and the fix.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable id within the report; links use it.
    pub id: FindingId,
    /// The detector that made it (`fd-exhaustion`, …); stable, part of the interface.
    pub detector: String,
    /// How bad it is.
    pub severity: Severity,
    /// What it is about.
    pub subject: Subject,
    /// The pid, when the subject is a process (a convenience copy for `jq`).
    #[serde(default)]
    pub pid: Option<i32>,
    /// The container (and pod) the subject is in or is: set for every finding about a task in
    /// a container, and for findings about a container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<crate::ContainerRef>,
    /// One line: what is wrong.
    pub summary: String,
    /// The facts it rests on.
    pub evidence: Vec<Evidence>,
    /// Why it happens.
    pub explanation: String,
    /// What to do.
    pub fix: String,
    /// Bugs, commits and documents.
    pub references: Vec<Reference>,
    /// Findings this one is a consequence of.
    #[serde(default)]
    pub caused_by: Vec<FindingId>,
    /// Findings this one leads to.
    #[serde(default)]
    pub causes: Vec<FindingId>,
    /// For a group finding (subject `group`): its members, bounded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<FindingGroup>,
}

/// The members of a group finding: the findings a detector made, one per subject, that share
/// one signature. The list is bounded (`omitted` says how many were left out) so a flood
/// cannot make the report unbounded; the count is always complete.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FindingGroup {
    /// How many findings the group stands for.
    pub count: usize,
    /// How `members` are ordered, e.g. `most repeated first`.
    pub order: String,
    /// The first members in that order, each as the finding it would have been alone, without
    /// the evidence every member shares (that is in the group finding's evidence) and
    /// without explanation, fix and references (the group's apply to all).
    pub members: Vec<GroupMember>,
    /// Members left out of `members` (`count - members.len()`).
    pub omitted: usize,
}

/// One member of a group finding.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupMember {
    /// The id the finding would have had alone (`netdev-unregister-stuck:netdev/veth1`).
    pub id: FindingId,
    /// What it is about.
    pub subject: Subject,
    /// The pid, when the subject is a process.
    #[serde(default)]
    pub pid: Option<i32>,
    /// The container the member is in, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<crate::ContainerRef>,
    /// Its one line.
    pub summary: String,
    /// Its own evidence: what is not shared by every member listed.
    #[serde(default)]
    pub evidence: Vec<Evidence>,
}

impl Finding {
    /// A finding with no evidence, explanation or links yet.
    pub fn new(
        detector: &str,
        severity: Severity,
        subject: Subject,
        summary: impl Into<String>,
    ) -> Finding {
        Finding {
            id: FindingId::new(detector, &subject),
            detector: detector.to_string(),
            severity,
            pid: subject.pid(),
            container: None,
            subject,
            summary: summary.into(),
            evidence: Vec::new(),
            explanation: String::new(),
            fix: String::new(),
            references: Vec::new(),
            caused_by: Vec::new(),
            causes: Vec::new(),
            group: None,
        }
    }
}

/// The value of [`Report::format`].
pub const REPORT_FORMAT: &str = "nodedoc-report";

/// What `nodedoc check --format json` prints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Always `nodedoc-report`.
    pub format: String,
    /// Report format version.
    pub version: u32,
    /// The machine the snapshot came from.
    pub host: HostInfo,
    /// `live` or `file:PATH`.
    pub origin: String,
    /// Which sources were read, and how.
    pub sources: Vec<SourceStatus>,
    /// What could not be read.
    pub gaps: Vec<Gap>,
    /// Counts by severity.
    pub summary: ReportSummary,
    /// The findings, worst first.
    pub findings: Vec<Finding>,
}

impl Report {
    /// A report over `findings`, with its summary computed.
    pub fn new(
        host: HostInfo,
        origin: String,
        sources: Vec<SourceStatus>,
        gaps: Vec<Gap>,
        mut findings: Vec<Finding>,
    ) -> Report {
        findings.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then_with(|| a.detector.cmp(&b.detector))
                .then_with(|| a.id.cmp(&b.id))
        });
        let count = |s| findings.iter().filter(|f| f.severity == s).count();
        let summary = ReportSummary {
            critical: count(Severity::Critical),
            warning: count(Severity::Warning),
            info: count(Severity::Info),
            worst: findings.iter().map(|f| f.severity).max(),
        };
        Report {
            format: REPORT_FORMAT.to_string(),
            version: 1,
            host,
            origin,
            sources,
            gaps,
            summary,
            findings,
        }
    }

    /// The finding with this id.
    pub fn finding(&self, id: &FindingId) -> Option<&Finding> {
        self.findings.iter().find(|f| &f.id == id)
    }
}

/// Counts of findings by severity.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportSummary {
    /// Critical findings.
    pub critical: usize,
    /// Warnings.
    pub warning: usize,
    /// Informational findings.
    pub info: usize,
    /// The worst severity present, if any.
    pub worst: Option<Severity>,
}
