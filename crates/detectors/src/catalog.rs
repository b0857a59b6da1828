//! The knowledge nodedoc's detectors cite, loaded from `data/*.toml`: what each detector
//! means, how it decides, the fix and the references, and the signature tables. Kept apart
//! from detection logic so it can be read, reviewed and corrected as text.

use std::sync::LazyLock;

use nodedoc_model::text::{shell_word, terminal};
use nodedoc_model::Reference;
use serde::Deserialize;

/// Everything in `data/`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    /// One entry per detector.
    pub detector: Vec<DetectorEntry>,
    /// Hints on what a dominant fd kind usually means.
    #[serde(default)]
    pub fd_kind_hint: Vec<FdKindHint>,
    /// Known kernel causes of `unregister_netdevice: waiting for …`.
    #[serde(default)]
    pub netdev_unregister_cause: Vec<KernelBug>,
    /// Kernel stacks of blocked tasks, most specific first.
    #[serde(default)]
    pub stack_signature: Vec<StackSignature>,
    /// How to read the reference-tracker stacks of a network device that cannot be freed.
    #[serde(default)]
    pub netdev_ref: NetdevRefCatalog,
    /// Who holds a network device's reference, by the frame that took it.
    #[serde(default)]
    pub netdev_ref_holder: Vec<NetdevRefHolder>,
    /// Open vSwitch constants.
    #[serde(default)]
    pub ovs: OvsSignatures,
    /// Interface-name prefixes and who creates such ports.
    #[serde(default)]
    pub ovs_port_prefix: Vec<OvsPortPrefix>,
    /// Kernel log lines worth counting (the agent's `nodedoc_kernel_log_records` metric).
    #[serde(default)]
    pub kernel_log_signature: Vec<KernelLogSignature>,
    /// Lines container runtimes and kubelet write when they cannot stop a container.
    #[serde(default)]
    pub container_stop_line: Vec<ContainerStopLine>,
    /// Kernel call paths of busy processes (`cpu-hog`), most specific first.
    #[serde(default)]
    pub cpu_signature: Vec<CpuSignature>,
    /// Kubernetes node knowledge.
    #[serde(default)]
    pub kube: KubeSignatures,
}

/// What nodedoc knows of Kubernetes nodes.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubeSignatures {
    /// Names (`comm`) of CNI plugin executables: a zombie of one is a CNI call its caller
    /// abandoned.
    #[serde(default)]
    pub cni_plugins: Vec<String>,
}

/// A line a runtime (or kubelet) writes about a container it could not stop.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerStopLine {
    /// A short id (`containerd-cri-stop-failed`, …).
    pub id: String,
    /// Who writes it (`containerd`, `dockerd`, `kubelet`).
    pub writer: String,
    /// The line (its message and its `error`/`err` field) contains all of these.
    pub contains: Vec<String>,
    /// Fields that hold the container id (`container`, `containerID`), tried first.
    #[serde(default)]
    pub id_fields: Vec<String>,
    /// The id follows this text in the message (after any quotes).
    #[serde(default)]
    pub id_after: Option<String>,
    /// `failed`: the stop failed; `escalated`: the stop signal was ignored and the runtime
    /// escalated to SIGKILL (common and harmless alone, evidence beside a failure).
    pub kind: String,
    /// What it means, in a few words.
    pub meaning: String,
}

/// A known way of burning CPU in the kernel, told by the functions on the sampled paths.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CpuSignature {
    /// A short id (`netlink-address-dumps`, …).
    pub id: String,
    /// The class, as the report names it.
    pub title: String,
    /// Functions that identify it: a sample whose path holds one of them belongs to it.
    pub frames: Vec<String>,
    /// Functions shown with them when they are on the same paths (the way in: `netlink_dump`
    /// for every netlink dump), which alone do not identify it.
    #[serde(default)]
    pub path_frames: Vec<String>,
    /// The share of all the process's samples (user mode included) that must be on its
    /// paths for the process to be classified.
    #[serde(default = "default_cpu_min_share")]
    pub min_share: f64,
    /// What it means (a template: `{pid}`, `{comm}`, `{share}`, `{path}`).
    pub explanation: String,
    /// What to do (a template).
    pub fix: String,
    /// Where to read more.
    pub references: Vec<Reference>,
}

fn default_cpu_min_share() -> f64 {
    0.25
}

impl CpuSignature {
    /// True when a frame as profiles write it (`name` or `name [module]`) is one of `frames`.
    pub fn identifies(&self, frame: &str) -> bool {
        let function = base_function(frame.split(' ').next().unwrap_or(frame));
        self.frames.iter().any(|f| f == function)
    }

    /// True when a frame is one of `frames` or `path_frames`.
    pub fn shows(&self, frame: &str) -> bool {
        let function = base_function(frame.split(' ').next().unwrap_or(frame));
        self.identifies(frame) || self.path_frames.iter().any(|f| f == function)
    }
}

/// A kind of kernel log line, told by a fixed piece of its text.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelLogSignature {
    /// A short id, the metric's `signature` label (`hung-task`, `oom-kill`, …).
    pub id: String,
    /// The line contains one of these.
    pub contains: Vec<String>,
}

impl KernelLogSignature {
    /// True when `message` is such a line.
    pub fn matches(&self, message: &str) -> bool {
        self.contains.iter().any(|c| message.contains(c.as_str()))
    }
}

/// A known shape of a blocked task's kernel stack.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StackSignature {
    /// A short id (`frozen-cgroup`, `fuse-no-answer`, …).
    pub id: String,
    /// What it means, in a few words.
    pub title: String,
    /// Function names that identify it.
    #[serde(default)]
    pub frames: Vec<String>,
    /// Function name prefixes that identify it (`ceph_`).
    #[serde(default)]
    pub frame_prefixes: Vec<String>,
    /// Modules whose every frame identifies it (`nfsd`): built-in code prints no module,
    /// so this only adds to `frames` and `frame_prefixes`.
    #[serde(default)]
    pub modules: Vec<String>,
    /// Modules whose frames never identify it, whatever their names: `nfs4_lock_state
    /// [nfsd]` is the NFS server's, though it looks like the client's `nfs4_` functions.
    #[serde(default)]
    pub exclude_modules: Vec<String>,
    /// The frame below the matching one (lock functions and scheduling skipped) names where
    /// the wait was entered: the lock's call site, shown as `{lock_site}`.
    #[serde(default)]
    pub names_site: bool,
    /// What the task in turn waits for is worth naming (`{inner}`): the stack is classified
    /// again without this signature and those listed here.
    #[serde(default)]
    pub inner_without: Option<Vec<String>>,
    /// Why the task is stuck (a template).
    pub explanation: String,
    /// What to do (a template).
    pub fix: String,
    /// Where to read more.
    #[serde(default)]
    pub references: Vec<Reference>,
}

impl StackSignature {
    /// True when `function` is one of this signature's frames. Compiler suffixes are
    /// ignored: `__mutex_lock.constprop.0` is `__mutex_lock`.
    pub fn matches(&self, function: &str) -> bool {
        self.matches_frame(function, None)
    }

    /// True when a frame of `function` in `module` (the `[nfsd]` after it, if printed) is
    /// one of this signature's frames.
    pub fn matches_frame(&self, function: &str, module: Option<&str>) -> bool {
        if module.is_some_and(|m| self.exclude_modules.iter().any(|x| x == m)) {
            return false;
        }
        let function = base_function(function);
        self.frames.iter().any(|f| f == function)
            || self
                .frame_prefixes
                .iter()
                .any(|p| function.starts_with(p.as_str()))
            || module.is_some_and(|m| self.modules.iter().any(|x| x == m))
    }
}

/// A function name without the suffixes compilers add to clones (`.isra.0`,
/// `.constprop.0`, `.part.1`, `.cold`): kernel symbols have no other dots.
pub fn base_function(function: &str) -> &str {
    function.split('.').next().unwrap_or(function)
}

/// Reading the reference-tracker stacks of `netdev-unregister-stuck`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetdevRefCatalog {
    /// Frames that only take a reference on behalf of their caller (`netdev_hold`,
    /// `netdev_get_by_index`): the first frame below them is the holder.
    #[serde(default)]
    pub helper_frames: Vec<String>,
    /// Where to read about a usage count of 0 or below: a reference dropped twice.
    #[serde(default)]
    pub over_release_references: Vec<Reference>,
}

/// What holds a network device's reference, known by the frame that took it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetdevRefHolder {
    /// Frames that took the reference.
    #[serde(default)]
    pub frames: Vec<String>,
    /// What those frames are part of, in a few words.
    pub what: String,
    /// Where to read more.
    #[serde(default)]
    pub references: Vec<Reference>,
}

/// Open vSwitch constants the OVS detectors use.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OvsSignatures {
    /// Interface types backed by a kernel network device of the same name.
    #[serde(default)]
    pub kernel_device_types: Vec<String>,
    /// NETLINK_GENERIC sockets ovs-vswitchd holds independently of its ports.
    #[serde(default)]
    pub generic_netlink_baseline: u64,
}

/// Who creates OVS ports whose names start with a prefix.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OvsPortPrefix {
    /// The prefix, e.g. `ha-`.
    pub prefix: String,
    /// Who adds and deletes such ports.
    pub owner: String,
}

/// What one detector means.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorEntry {
    /// The detector id (`fd-exhaustion`, …).
    pub id: String,
    /// A short title.
    pub title: String,
    /// What it detects.
    pub detects: String,
    /// How it decides: sources, thresholds.
    pub how: String,
    /// Why it happens (a template: `{name}` is replaced by the detector).
    pub explanation: String,
    /// What to do (a template).
    pub fix: String,
    /// Bugs, commits and documents.
    #[serde(default)]
    pub references: Vec<Reference>,
    /// The detectors whose findings this one links to (the ones it explains, or is explained
    /// by): it runs after them. This is the only thing that orders detectors.
    #[serde(default)]
    pub links: Vec<String>,
    /// The sources it reads ([`SOURCES`]): when one changes between rounds, the agent runs
    /// again only the detectors that read it.
    pub reads: Vec<String>,
}

/// The sources a detector can read (`reads` in `data/detectors.toml`): the names of the
/// snapshot's source statuses, `history` (the agent's earlier rounds) and `log-rules` (the
/// user's log files and rules).
pub const SOURCES: &[&str] = &[
    "procfs",
    "kernel-log",
    "ovsdb",
    "ovs-log",
    "netns",
    "history",
    "log-rules",
    "cpu-profile",
    "service-logs",
    "cri",
    "kubernetes",
    "kube-objects",
];

/// What it usually means when one kind of descriptor dominates a process's table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FdKindHint {
    /// The kind, as `kind` or `kind/detail` (e.g. `netlink-socket/NETLINK_GENERIC`).
    pub kind: String,
    /// One or two sentences.
    pub hint: String,
    /// Where to read more.
    #[serde(default)]
    pub references: Vec<Reference>,
}

/// A kernel bug with the releases that carry its fix.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelBug {
    /// A short id, e.g. `fnhe-refcount-leak`.
    pub id: String,
    /// The fixing commit (full hash).
    pub commit: String,
    /// Its subject line.
    pub subject: String,
    /// Device names it applies to; empty means any device.
    #[serde(default)]
    pub devices: Vec<String>,
    /// The mainline release that introduced the bug, if known.
    #[serde(default)]
    pub introduced_in: Option<String>,
    /// The first mainline release with the fix.
    pub fixed_in: String,
    /// Stable releases known to carry a backport, e.g. `3.16.70`.
    #[serde(default)]
    pub fixed_in_stable: Vec<String>,
    /// What the bug does.
    pub explanation: String,
    /// Where to read more.
    #[serde(default)]
    pub references: Vec<Reference>,
}

static CATALOG: LazyLock<Catalog> = LazyLock::new(|| {
    let text = concat!(
        include_str!("../data/detectors.toml"),
        "\n",
        include_str!("../data/signatures.toml"),
    );
    // The data is compiled in and checked by the test below; failing here is a build defect.
    let mut value: toml::Value = toml::from_str(text)
        .unwrap_or_else(|e| panic!("nodedoc's built-in catalog is invalid: {e}"));
    unwrap_lines(&mut value);
    Catalog::deserialize(value)
        .unwrap_or_else(|e| panic!("nodedoc's built-in catalog is invalid: {e}"))
});

/// The catalog's prose is hard-wrapped in the files for reading; its line breaks are spaces.
/// Joining them once here means a line break in a finding's text can only come from a value
/// filled in from the host — which [`render`] shows escaped — never from the catalog.
fn unwrap_lines(value: &mut toml::Value) {
    match value {
        toml::Value::String(text) if text.contains('\n') => {
            let joined: Vec<&str> = text.split('\n').map(str::trim).collect();
            *text = joined.join(" ").trim().to_string();
        }
        toml::Value::Array(items) => items.iter_mut().for_each(unwrap_lines),
        toml::Value::Table(table) => table.iter_mut().for_each(|(_, v)| unwrap_lines(v)),
        _ => {}
    }
}

/// The built-in catalog.
pub fn catalog() -> &'static Catalog {
    &CATALOG
}

impl Catalog {
    /// The entry of one detector.
    pub fn detector(&self, id: &str) -> Option<&DetectorEntry> {
        self.detector.iter().find(|d| d.id == id)
    }

    /// The stack signature with this id.
    pub fn stack_signature(&self, id: &str) -> Option<&StackSignature> {
        self.stack_signature.iter().find(|s| s.id == id)
    }

    /// What a reference taken in `function` belongs to, if nodedoc knows.
    pub fn netdev_ref_holder(&self, function: &str) -> Option<&NetdevRefHolder> {
        let function = base_function(function);
        self.netdev_ref_holder
            .iter()
            .find(|h| h.frames.iter().any(|f| f == function))
    }

    /// Who creates a port named `name`, by the neutron/nova prefix conventions.
    pub fn ovs_port_owner(&self, name: &str) -> Option<&OvsPortPrefix> {
        self.ovs_port_prefix
            .iter()
            .find(|p| name.starts_with(p.prefix.as_str()))
    }

    /// The hint for a dominant fd kind key.
    pub fn fd_kind_hint(&self, key: &str) -> Option<&FdKindHint> {
        self.fd_kind_hint.iter().find(|h| h.kind == key)
    }
}

/// Fills `{name}` placeholders of a catalog template. `{{` and `}}` are literal braces.
/// A placeholder with no value is left as it is, so a missing value shows instead of hiding.
///
/// Text in backticks is a command the reader may paste: a value filled in there becomes one
/// shell word ([`shell_word`]), so `ovs-vsctl --if-exists del-port {bridge} {name}` stays
/// two arguments whatever the names hold. A value that cannot be quoted (it has control
/// characters), or that holds a backquote (which would end the span early on the page and
/// show part of the value as a command of its own), gives no command: the whole span is
/// replaced by a sentence that says so, naming the value escaped. Values outside backticks
/// are prose and go in as they are.
pub fn render(template: &str, values: &[(&str, &str)]) -> String {
    /// A code span being filled: its text so far, and why it cannot be a command (the first
    /// value that cannot stand in it).
    struct Span {
        text: String,
        refused: Option<String>,
    }
    fn close(out: &mut String, span: Span) {
        match span.refused {
            Some(why) => out.push_str(&format!("(no command given: {why})")),
            None => out.push_str(&span.text),
        }
    }
    /// Why `value` cannot stand in a code span, if it cannot.
    fn refusal(value: &str) -> Option<String> {
        // Escaped, and with its backquotes as `\x60`, so that the sentence forges no span.
        let shown = || terminal(value).replace('`', "\\x60");
        if shell_word(value).is_err() {
            Some(format!(
                "\"{}\" contains control characters and cannot be pasted safely into a shell",
                shown()
            ))
        } else if value.contains('`') {
            Some(format!(
                "\"{}\" contains a backquote, which would end the command early in this text",
                shown()
            ))
        } else {
            None
        }
    }
    let mut out = String::with_capacity(template.len() + 32);
    let mut span: Option<Span> = None;
    let mut rest = template;
    while let Some(i) = rest.find(['{', '}', '`']) {
        let tail = &rest[i..];
        let target = match &mut span {
            Some(span) => &mut span.text,
            None => &mut out,
        };
        target.push_str(&rest[..i]);
        if let Some(after) = tail.strip_prefix('`') {
            match span.take() {
                None => {
                    span = Some(Span {
                        text: "`".to_string(),
                        refused: None,
                    })
                }
                Some(mut open) => {
                    open.text.push('`');
                    close(&mut out, open);
                }
            }
            rest = after;
            continue;
        }
        if tail.starts_with("{{") || tail.starts_with("}}") {
            target.push_str(&tail[..1]);
            rest = &tail[2..];
            continue;
        }
        if tail.starts_with('{') {
            if let Some(end) = tail.find('}') {
                let name = &tail[1..end];
                if let Some((_, value)) = values.iter().find(|(n, _)| *n == name) {
                    match &mut span {
                        // Prose: a value from the host shows its control characters escaped,
                        // so a name cannot break a finding's text into forged lines.
                        None => out.push_str(&terminal(value)),
                        Some(span) => match (refusal(value), shell_word(value)) {
                            (None, Ok(word)) => span.text.push_str(&word),
                            (why, _) => {
                                span.refused.get_or_insert(why.unwrap_or_default());
                            }
                        },
                    }
                    rest = &tail[end + 1..];
                    continue;
                }
            }
        }
        target.push_str(&tail[..1]);
        rest = &tail[1..];
    }
    match span {
        Some(mut open) => {
            open.text.push_str(rest);
            close(&mut out, open);
        }
        None => out.push_str(rest),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_catalog_parses_and_covers_every_detector() {
        let catalog = catalog();
        for detector in crate::detectors() {
            let entry = catalog
                .detector(detector.id())
                .unwrap_or_else(|| panic!("no catalog entry for {}", detector.id()));
            assert!(!entry.explanation.is_empty() && !entry.fix.is_empty());
        }
        for entry in &catalog.detector {
            assert!(
                crate::detectors().iter().any(|d| d.id() == entry.id),
                "catalog entry {} has no detector",
                entry.id
            );
            for reference in &entry.references {
                assert!(reference.url.starts_with("https://"), "{}", reference.url);
            }
        }
        for signature in &catalog.stack_signature {
            assert!(
                !signature.frames.is_empty() || !signature.frame_prefixes.is_empty(),
                "{} matches nothing",
                signature.id
            );
            assert!(
                !signature.references.is_empty(),
                "{} cites no reference",
                signature.id
            );
        }
        for id in [
            "frozen-cgroup",
            "fuse-no-answer",
            "vfork-parent",
            "sync-all-filesystems",
            "nfs-server",
            "network-filesystem",
            "zfs",
            "block-io",
            "fs-journal",
            "writeback-wait",
            "lock-wait",
            "rcu-grace-period",
        ] {
            assert!(
                catalog.stack_signature(id).is_some(),
                "stack signature {id} missing"
            );
        }
        for signature in &catalog.cpu_signature {
            assert!(
                !signature.frames.is_empty() && !signature.references.is_empty(),
                "{}",
                signature.id
            );
            assert!(signature.min_share > 0.0 && signature.min_share <= 1.0);
        }
        assert!(catalog
            .cpu_signature
            .iter()
            .any(|s| s.id == "netlink-address-dumps"));
        for holder in &catalog.netdev_ref_holder {
            assert!(
                !holder.frames.is_empty() && !holder.references.is_empty(),
                "{}",
                holder.what
            );
        }
        for bug in &catalog.netdev_unregister_cause {
            assert_eq!(bug.commit.len(), 40, "{}: use the full hash", bug.id);
            assert!(crate::kernel_release::KernelRelease::parse(&bug.fixed_in).is_some());
        }
    }

    #[test]
    fn templates_fill_known_names_and_keep_the_rest() {
        assert_eq!(
            render(
                "kill {pid} ({comm}) {{literal}} {unknown}",
                &[("pid", "7"), ("comm", "x")]
            ),
            "kill 7 (x) {literal} {unknown}"
        );
        assert_eq!(render("{", &[]), "{");
        assert_eq!(render("}{a", &[("a", "b")]), "}{a");
    }

    #[test]
    fn values_in_code_spans_are_shell_words_and_unquotable_ones_give_no_command() {
        let values = [
            ("bridge", "br-int"),
            ("name", "z$(touch${IFS}pwned)"),
            ("pid", "812"),
        ];
        assert_eq!(
            render(
                "Remove {name}: `ovs-vsctl --if-exists del-port {bridge} {name}`, then `kill {pid}`.",
                &values
            ),
            "Remove z$(touch${IFS}pwned): `ovs-vsctl --if-exists del-port br-int 'z$(touch${IFS}pwned)'`, then `kill 812`."
        );
        // A span across lines, braces and unknown names inside it.
        assert_eq!(
            render("`a {{b}} {unknown}\n{pid}`", &values),
            "`a {b} {unknown}\n812`"
        );
        let hostile = [("bridge", "br-int"), ("name", "e\u{1b}]0;x\u{7}\nCRITICAL")];
        assert_eq!(
            render(
                "Remove {name}: `ovs-vsctl --if-exists del-port {bridge} {name}` — or `nodedoc fix ovs-orphan-port`.",
                &hostile
            ),
            "Remove e\\e]0;x\\x07\\nCRITICAL: (no command given: \"e\\e]0;x\\x07\\nCRITICAL\" contains control characters and cannot be pasted safely into a shell) — or `nodedoc fix ovs-orphan-port`."
        );
        // A backquote would end the span on the page and show the rest as a command.
        assert_eq!(
            render(
                "`ovs-vsctl --if-exists del-port {bridge} {name}`",
                &[("bridge", "br"), ("name", "x`rm -rf ~`y")]
            ),
            "(no command given: \"x\\x60rm -rf ~\\x60y\" contains a backquote, which would end the command early in this text)"
        );
        // An unterminated span is still a span.
        assert_eq!(render("run `kill {pid}", &values), "run `kill 812");
    }

    #[test]
    fn no_template_puts_a_placeholder_inside_quotes_in_a_command() {
        // render quotes a value itself; `'{name}'` in a template would undo that.
        let catalog = catalog();
        let mut templates: Vec<(&str, &str)> = Vec::new();
        for d in &catalog.detector {
            templates.push((&d.id, &d.explanation));
            templates.push((&d.id, &d.fix));
        }
        for s in &catalog.stack_signature {
            templates.push((&s.id, &s.explanation));
            templates.push((&s.id, &s.fix));
        }
        for s in &catalog.cpu_signature {
            templates.push((&s.id, &s.explanation));
            templates.push((&s.id, &s.fix));
        }
        for (id, template) in templates {
            for (n, span) in template.split('`').enumerate() {
                if n % 2 == 0 || !span.contains('{') {
                    continue;
                }
                let mut quote = None;
                let mut chars = span.chars().peekable();
                while let Some(c) = chars.next() {
                    match (quote, c) {
                        (None, '\'' | '"') => quote = Some(c),
                        (Some(q), c) if c == q => quote = None,
                        (Some(_), '{') if chars.peek() != Some(&'{') => {
                            panic!("{id}: a placeholder inside quotes in `{span}`")
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}
