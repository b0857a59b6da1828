//! The configuration file: its TOML shape, and the checks that turn it into a [`Config`]
//! or a [`ConfigError`] naming file, line and column.
//!
//! The file is parsed into private `Raw*` types that keep the span of every value, then
//! checked; the public types hold plain values. Unknown keys are errors (a misspelt key that
//! is silently ignored is a threshold that silently does not apply).

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nodedoc_model::Severity;
use serde::{Deserialize, Deserializer};
use toml::Spanned;

use crate::rules::{is_kebab_case, RuleField, RuleSet, RuleSpec};
use crate::{span, ConfigError};
use nodedoc_model::RuleKind;

/// nodedoc's configuration, as read from a file. Every setting is optional: what the file
/// leaves out keeps nodedoc's default (and a command-line flag beats the file).
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// Detector thresholds.
    pub thresholds: Thresholds,
    /// Detectors switched off.
    pub detectors: DetectorSwitches,
    /// `nodedoc watch` settings.
    pub agent: AgentSettings,
    /// Extra logs to follow, each with its rules.
    pub logs: Vec<LogRules>,
}

impl Config {
    /// Reads and checks the file at `path`. `known_detectors` are the ids of the built-in
    /// detectors: `[detectors] disable` must name one of them, and user rule ids must not.
    pub fn load(path: &Path, known_detectors: &[&str]) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            let what = if e.kind() == std::io::ErrorKind::InvalidData {
                "is not UTF-8 text".to_string()
            } else {
                format!("cannot be read: {e}")
            };
            ConfigError::whole_file(path, format!("the configuration file {what}"))
        })?;
        Config::parse(&text, path, known_detectors)
    }

    /// Checks `text`, the contents of `file` (named in errors).
    pub fn parse(text: &str, file: &Path, known_detectors: &[&str]) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let message = with_suggestion(e.message());
            match e.span() {
                Some(span) => ConfigError::at(file, text, span.start, message),
                None => ConfigError::whole_file(file, message),
            }
        })?;
        Checker {
            file,
            text,
            known: known_detectors,
        }
        .config(raw)
    }

    /// The rule sets of the `[[log]]` tables that name `source`.
    pub fn rules_for<'a>(&'a self, source: &'a LogSource) -> impl Iterator<Item = &'a RuleSet> {
        self.logs
            .iter()
            .filter(move |log| log.sources.contains(source))
            .map(|log| &log.rules)
    }

    /// nodedoc's default detector thresholds with the file's overrides applied.
    pub fn detector_config(&self) -> nodedoc_detectors::Config {
        let mut config = nodedoc_detectors::Config::default();
        self.thresholds.apply(&mut config);
        config
    }
}

/// Declares the `[thresholds]` keys once: the raw field, the public field, the check, and the
/// override. Every field of `nodedoc_detectors::Config` must be listed: `apply` destructures
/// it without `..`, so a field added there does not build here until it is mirrored.
macro_rules! thresholds {
    ($($(#[$doc:meta])* $name:ident: $ty:ty, $check:expr;)*) => {
        #[derive(Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct RawThresholds {
            $($name: Option<Spanned<$ty>>,)*
        }

        /// Overrides of `nodedoc_detectors::Config`; `None` keeps the default. The keys of
        /// `[thresholds]` are the field names.
        #[derive(Clone, Debug, Default, PartialEq)]
        pub struct Thresholds {
            $($(#[$doc])* pub $name: Option<$ty>,)*
        }

        impl Thresholds {
            /// Writes the overrides into `config`.
            pub fn apply(&self, config: &mut nodedoc_detectors::Config) {
                let nodedoc_detectors::Config { $($name),* } = config;
                $(if let Some(value) = self.$name {
                    *$name = value;
                })*
            }
        }

        impl Checker<'_> {
            fn thresholds(&self, raw: RawThresholds) -> Result<Thresholds, ConfigError> {
                let mut out = Thresholds::default();
                $(if let Some(value) = &raw.$name {
                    let check: fn($ty) -> Result<(), &'static str> = $check;
                    check(*value.get_ref()).map_err(|why| {
                        self.error(value.span(), format!("`{}` {why}", stringify!($name)))
                    })?;
                    out.$name = Some(*value.get_ref());
                })*
                let mut effective = nodedoc_detectors::Config::default();
                out.apply(&mut effective);
                if effective.fd_warning_ratio >= effective.fd_critical_ratio {
                    let span = raw
                        .fd_warning_ratio
                        .as_ref()
                        .or(raw.fd_critical_ratio.as_ref())
                        .map(|v| v.span())
                        .unwrap_or_default();
                    return Err(self.error(
                        span,
                        format!(
                            "`fd_warning_ratio` ({}) must be below `fd_critical_ratio` ({})",
                            effective.fd_warning_ratio, effective.fd_critical_ratio
                        ),
                    ));
                }
                Ok(out)
            }
        }
    };
}

fn ratio(v: f64) -> Result<(), &'static str> {
    if v > 0.0 && v <= 1.0 {
        Ok(())
    } else {
        Err("is a share of the limit: above 0 and at most 1 (0.8 is 80 %)")
    }
}

fn positive_share(v: f64) -> Result<(), &'static str> {
    if v > 0.0 && v.is_finite() {
        Ok(())
    } else {
        Err("is a share of one core: above 0 (0.5 is half a core)")
    }
}

fn at_least_one<T: PartialOrd + From<u8>>(v: T) -> Result<(), &'static str> {
    if v >= T::from(1) {
        Ok(())
    } else {
        Err("must be at least 1")
    }
}

thresholds! {
    /// `fd-exhaustion` warns at this share of the soft `RLIMIT_NOFILE`.
    fd_warning_ratio: f64, ratio;
    /// `fd-exhaustion` is critical at this share.
    fd_critical_ratio: f64, ratio;
    /// `zombie-processes` is critical from this many zombies under one parent.
    zombie_critical_count: usize, |v| at_least_one(v as u64);
    /// `netdev-unregister-stuck`: a device whose last line is this recent is still stuck.
    netdev_still_waiting_secs: u64, at_least_one;
    /// `cni-plugin-hang` reports plugins running longer than this.
    cni_plugin_timeout_secs: u64, at_least_one;
    /// `ovs-vswitchd-busy` reports ovs-vswitchd above this share of one core.
    ovs_busy_cpu_share: f64, positive_share;
    /// `cpu-hog` reports (and samples) processes above this share of one core.
    cpu_hog_share: f64, positive_share;
    /// `cpu-hog` in `watch` needs this many consecutive rounds above the share.
    cpu_hog_min_rounds: u64, at_least_one;
    /// `ovs-port-flapping` needs at least this many add/delete cycles of one interface.
    ovs_flap_min_cycles: u64, at_least_one;
    /// `ovs-netlink-socket-excess` needs at least this many surplus generic netlink sockets.
    ovs_netlink_excess_min: u64, at_least_one;
    /// `fd-leak` needs at least this many readings of a process.
    fd_leak_min_readings: usize, |v| at_least_one(v as u64);
    /// `fd-leak` needs the readings to span at least this many seconds.
    fd_leak_min_span_secs: f64, non_negative;
    /// `fd-leak` needs at least this net growth, in descriptors.
    fd_leak_min_growth: f64, non_negative;
    /// `fd-leak` needs a straight line to fit at least this well (R², 0 to 1).
    fd_leak_min_r_squared: f64, ratio;
    /// `fd-leak` needs at least this share of the changes to be increases (0 to 1).
    fd_leak_min_rising_share: f64, ratio;
    /// `fd-leak` is critical when the limit is at most this many seconds away.
    fd_leak_critical_eta_secs: u64, at_least_one;
    /// More findings than this of one detector, severity and signature become one group.
    group_above: usize, |v| at_least_one(v as u64);
    /// A group finding lists at most this many members in its JSON.
    group_members_max: usize, |v| at_least_one(v as u64);
    /// A group finding names this many members in its evidence.
    group_members_shown: usize, |v| at_least_one(v as u64);
    /// `pod-stuck-terminating`: seconds a pod may remain past its deletionTimestamp.
    pod_terminating_margin_secs: u64, at_least_one;
    /// `replicaset-history-leak` warns from this many old ReplicaSets beyond the limit.
    replicaset_history_warning: u64, at_least_one;
    /// `replicaset-history-leak` is critical from this many.
    replicaset_history_critical: u64, at_least_one;
}

fn non_negative(v: f64) -> Result<(), &'static str> {
    if v >= 0.0 && v.is_finite() {
        Ok(())
    } else {
        Err("must be 0 or more")
    }
}

/// Detectors switched on or off.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DetectorSwitches {
    disabled: BTreeSet<String>,
}

impl DetectorSwitches {
    /// False for a detector the file disables.
    pub fn is_enabled(&self, detector: &str) -> bool {
        !self.disabled.contains(detector)
    }

    /// The disabled detectors' ids, sorted.
    pub fn disabled(&self) -> impl Iterator<Item = &str> {
        self.disabled.iter().map(String::as_str)
    }
}

/// How `nodedoc watch` writes findings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// Lines for a human.
    Text,
    /// One JSON event per line.
    Json,
}

/// `[agent]`: settings of `nodedoc watch`. `None` keeps the command's default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AgentSettings {
    /// Time between two rounds (`--interval`).
    pub interval: Option<Duration>,
    /// Up to this much random delay added to each round, so a fleet does not poll at once.
    pub jitter: Option<Duration>,
    /// A finding resolves after this many rounds without it.
    pub resolve_after_rounds: Option<u32>,
    /// Address of the Prometheus `/metrics` endpoint (`--listen`).
    pub listen: Option<SocketAddr>,
    /// Where the agent keeps what it reported, across restarts.
    pub state_file: Option<PathBuf>,
    /// `--format`.
    pub format: Option<OutputFormat>,
    /// `--output`: a file to append events to, instead of standard output.
    pub output: Option<PathBuf>,
    /// `--log-window`: how long a followed log's entries count.
    pub log_window: Option<Duration>,
}

/// A log nodedoc follows.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum LogSource {
    /// The kernel log (`path = "/dev/kmsg"`): the records' messages are matched, one per line.
    KernelLog,
    /// A text file, followed across rotation.
    File(PathBuf),
}

impl LogSource {
    /// The path as written in the configuration.
    pub fn path(&self) -> &Path {
        match self {
            LogSource::KernelLog => Path::new(KMSG),
            LogSource::File(path) => path,
        }
    }
}

impl std::fmt::Display for LogSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.path().display())
    }
}

const KMSG: &str = "/dev/kmsg";

/// One `[[log]]` table: logs and the rules matched against their lines.
#[derive(Clone, Debug)]
pub struct LogRules {
    /// The logs (`path`, or each of `paths`).
    pub sources: Vec<LogSource>,
    /// Their rules.
    pub rules: RuleSet,
}

// ---- the file as written ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    thresholds: RawThresholds,
    #[serde(default)]
    detectors: RawDetectors,
    #[serde(default)]
    agent: RawAgent,
    #[serde(default)]
    log: Vec<Spanned<RawLog>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDetectors {
    #[serde(default)]
    disable: Vec<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgent {
    interval: Option<Spanned<HumanDuration>>,
    jitter: Option<Spanned<HumanDuration>>,
    resolve_after_rounds: Option<Spanned<u32>>,
    listen: Option<Spanned<String>>,
    state_file: Option<Spanned<String>>,
    format: Option<OutputFormat>,
    output: Option<Spanned<String>>,
    log_window: Option<Spanned<HumanDuration>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    path: Option<Spanned<String>>,
    paths: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    rule: Vec<RawRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: Spanned<String>,
    #[serde(default)]
    kind: RuleKind,
    severity: Severity,
    pattern: Option<Spanned<String>>,
    patterns: Option<Vec<Spanned<String>>>,
    summary: Option<Spanned<String>>,
    explanation: Option<Spanned<String>>,
    fix: Option<Spanned<String>>,
}

/// A duration written as humans do (`"10s"`, `"1m 30s"`, `"500ms"`).
#[derive(Debug)]
struct HumanDuration(Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = HumanDuration;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a duration with its unit, in quotes: \"10s\", \"1m 30s\", \"500ms\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<HumanDuration, E> {
                humantime::parse_duration(v)
                    .map(HumanDuration)
                    .map_err(|e| {
                        E::custom(format!(
                        "`{v}` is not a duration ({e}); write e.g. \"10s\", \"1m 30s\", \"500ms\""
                    ))
                    })
            }
        }
        d.deserialize_str(Visitor)
    }
}

// ---- checks ----

struct Checker<'a> {
    file: &'a Path,
    text: &'a str,
    known: &'a [&'a str],
}

impl Checker<'_> {
    fn error(&self, span: Range<usize>, message: impl Into<String>) -> ConfigError {
        ConfigError::at(self.file, self.text, span.start, message)
    }

    fn config(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        let thresholds = self.thresholds(raw.thresholds)?;
        let detectors = self.detectors(raw.detectors)?;
        let agent = self.agent(raw.agent)?;
        let mut ids = HashMap::new();
        let logs = raw
            .log
            .into_iter()
            .map(|log| self.log(log, &mut ids))
            .collect::<Result<_, _>>()?;
        Ok(Config {
            thresholds,
            detectors,
            agent,
            logs,
        })
    }

    fn detectors(&self, raw: RawDetectors) -> Result<DetectorSwitches, ConfigError> {
        let mut disabled = BTreeSet::new();
        for id in raw.disable {
            if !self.known.contains(&id.get_ref().as_str()) {
                let mut message = format!("`{}` is not a detector", id.get_ref());
                match suggest(id.get_ref(), self.known.iter().copied()) {
                    Some(near) => message.push_str(&format!("; did you mean `{near}`?")),
                    None => message.push_str(&format!(
                        " (detectors: {})",
                        self.known
                            .iter()
                            .map(|k| format!("`{k}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                }
                return Err(self.error(id.span(), message));
            }
            disabled.insert(id.into_inner());
        }
        Ok(DetectorSwitches { disabled })
    }

    fn agent(&self, raw: RawAgent) -> Result<AgentSettings, ConfigError> {
        if let Some(interval) = &raw.interval {
            if interval.get_ref().0 < Duration::from_secs(1) {
                return Err(self.error(
                    interval.span(),
                    "`interval` must be at least 1s: each round reads every process",
                ));
            }
        }
        if let (Some(jitter), Some(interval)) = (&raw.jitter, &raw.interval) {
            if jitter.get_ref().0 >= interval.get_ref().0 {
                return Err(self.error(jitter.span(), "`jitter` must be below `interval`"));
            }
        }
        if let Some(window) = &raw.log_window {
            if window.get_ref().0.is_zero() {
                return Err(self.error(window.span(), "`log_window` must be longer than zero"));
            }
        }
        if let Some(rounds) = &raw.resolve_after_rounds {
            if *rounds.get_ref() == 0 {
                return Err(self.error(rounds.span(), "`resolve_after_rounds` must be at least 1"));
            }
        }
        let listen = raw
            .listen
            .map(|listen| {
                listen.get_ref().parse::<SocketAddr>().map_err(|_| {
                    self.error(
                        listen.span(),
                        format!(
                            "`{}` is not an address and port: write e.g. \"127.0.0.1:9101\" or \
                             \"[::1]:9101\" (an IP address: no host names)",
                            listen.get_ref()
                        ),
                    )
                })
            })
            .transpose()?;
        Ok(AgentSettings {
            interval: raw.interval.map(|d| d.into_inner().0),
            jitter: raw.jitter.map(|d| d.into_inner().0),
            resolve_after_rounds: raw.resolve_after_rounds.map(Spanned::into_inner),
            listen,
            state_file: raw
                .state_file
                .map(|p| self.absolute(p, "state_file"))
                .transpose()?,
            format: raw.format,
            output: raw.output.map(|p| self.absolute(p, "output")).transpose()?,
            log_window: raw.log_window.map(|d| d.into_inner().0),
        })
    }

    fn absolute(&self, path: Spanned<String>, key: &str) -> Result<PathBuf, ConfigError> {
        let p = PathBuf::from(path.get_ref());
        if p.is_absolute() {
            Ok(p)
        } else {
            Err(self.error(
                path.span(),
                format!(
                    "`{key}` must be an absolute path (the agent's working directory is not \
                     this file's)"
                ),
            ))
        }
    }

    fn log(
        &self,
        raw: Spanned<RawLog>,
        ids: &mut HashMap<String, usize>,
    ) -> Result<LogRules, ConfigError> {
        let table = raw.span();
        let raw = raw.into_inner();
        let paths = match (raw.path, raw.paths) {
            (Some(path), None) => vec![path],
            (None, Some(paths)) if !paths.is_empty() => paths,
            (Some(_), Some(_)) => {
                return Err(self.error(table, "a `[[log]]` has `path` or `paths`, not both"))
            }
            _ => {
                return Err(self.error(
                    table,
                    "a `[[log]]` needs `path = \"/var/log/…\"` (or `paths = [\"…\", \"…\"]`)",
                ))
            }
        };
        let sources = paths
            .into_iter()
            .map(|path| {
                if path.get_ref() == KMSG {
                    Ok(LogSource::KernelLog)
                } else {
                    self.absolute(path, "path").map(LogSource::File)
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        if raw.rule.is_empty() {
            return Err(self.error(
                table,
                "this `[[log]]` has no rules: add a `[[log.rule]]` with `id`, `severity` and \
                 `pattern`",
            ));
        }
        let mut specs = Vec::with_capacity(raw.rule.len());
        for rule in &raw.rule {
            specs.push(self.rule_spec(rule, ids)?);
        }
        let rules = RuleSet::new(specs).map_err(|e| {
            let rule = &raw.rule[e.rule];
            let value = match e.field {
                RuleField::Id => Some(&rule.id),
                RuleField::Pattern(i) => match (&rule.pattern, &rule.patterns) {
                    (Some(p), _) => Some(p),
                    (None, Some(ps)) => ps.get(i),
                    (None, None) => None,
                },
                RuleField::Summary => rule.summary.as_ref(),
                RuleField::Explanation => rule.explanation.as_ref(),
                RuleField::Fix => rule.fix.as_ref(),
            };
            let value = value.unwrap_or(&rule.id);
            let mut at = value.span().start;
            if let Some(offset) = e.offset {
                let raw_text = &self.text[value.span()];
                at += span::raw_offset(raw_text, offset).unwrap_or(0);
            }
            let field = match e.field {
                RuleField::Id => "id".to_string(),
                RuleField::Pattern(i) if rule.patterns.is_some() => format!("patterns[{i}]"),
                RuleField::Pattern(_) => "pattern".to_string(),
                RuleField::Summary => "summary".to_string(),
                RuleField::Explanation => "explanation".to_string(),
                RuleField::Fix => "fix".to_string(),
            };
            ConfigError::at(
                self.file,
                self.text,
                at,
                format!("rule `{}`, {field}: {}", rule.id.get_ref(), e.message),
            )
        })?;
        Ok(LogRules { sources, rules })
    }

    fn rule_spec(
        &self,
        rule: &RawRule,
        ids: &mut HashMap<String, usize>,
    ) -> Result<RuleSpec, ConfigError> {
        let id = rule.id.get_ref();
        if !is_kebab_case(id) {
            return Err(self.error(
                rule.id.span(),
                format!(
                    "rule id `{id}` is not lowercase kebab-case: lowercase letters and digits, \
                     words joined by `-` (like `ext4-error`)"
                ),
            ));
        }
        if self.known.contains(&id.as_str()) {
            return Err(self.error(
                rule.id.span(),
                format!(
                    "rule id `{id}` is the id of a built-in detector; a rule's id names its \
                     findings, so choose another (e.g. `{id}-log`)"
                ),
            ));
        }
        if let Some(&first) = ids.get(id) {
            let (line, _) = span::line_column(self.text, first);
            return Err(self.error(
                rule.id.span(),
                format!(
                    "rule id `{id}` is already used on line {line}; give each rule its own id \
                     (one rule can have several `patterns`)"
                ),
            ));
        }
        ids.insert(id.clone(), rule.id.span().start);
        let patterns = match (&rule.pattern, &rule.patterns) {
            (Some(p), None) => vec![p.get_ref().clone()],
            (None, Some(ps)) if !ps.is_empty() => ps.iter().map(|p| p.get_ref().clone()).collect(),
            (Some(_), Some(_)) => {
                return Err(self.error(
                    rule.id.span(),
                    format!("rule `{id}` has `pattern` and `patterns`: keep one"),
                ))
            }
            _ => {
                return Err(self.error(
                    rule.id.span(),
                    format!(
                        "rule `{id}` has no pattern: add `pattern = '…'` (a regex matched \
                         against each line)"
                    ),
                ))
            }
        };
        let text = |v: &Option<Spanned<String>>| v.as_ref().map(|s| s.get_ref().clone());
        Ok(RuleSpec {
            id: id.clone(),
            kind: rule.kind,
            severity: rule.severity,
            patterns,
            summary: text(&rule.summary),
            explanation: text(&rule.explanation),
            fix: text(&rule.fix),
        })
    }
}

/// The candidate closest to `word`, if one is close enough to be a typo of it.
fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// serde's "unknown field `x`, expected one of `a`, `b`" (or "unknown variant") with
/// "; did you mean `a`?" when one of the valid names is close.
fn with_suggestion(message: &str) -> String {
    let message = message.trim_end();
    let Some(rest) = message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("unknown variant `"))
    else {
        return message.to_string();
    };
    let Some((word, rest)) = rest.split_once('`') else {
        return message.to_string();
    };
    let valid = rest.split('`').skip(1).step_by(2);
    match suggest(word, valid) {
        Some(near) => format!("{message}; did you mean `{near}`?"),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_for_typos_only() {
        assert_eq!(
            with_suggestion("unknown field `severty`, expected one of `id`, `severity`"),
            "unknown field `severty`, expected one of `id`, `severity`; did you mean `severity`?"
        );
        assert_eq!(
            with_suggestion("unknown field `zzz`, expected `id`"),
            "unknown field `zzz`, expected `id`"
        );
        assert_eq!(
            suggest("ovs-vswitchd-bussy", ["fd-exhaustion", "ovs-vswitchd-busy"]),
            Some("ovs-vswitchd-busy")
        );
    }

    #[test]
    fn every_threshold_is_applied() {
        let t = Thresholds {
            fd_warning_ratio: Some(0.5),
            fd_critical_ratio: Some(0.6),
            zombie_critical_count: Some(7),
            netdev_still_waiting_secs: Some(8),
            cni_plugin_timeout_secs: Some(9),
            ovs_busy_cpu_share: Some(0.25),
            cpu_hog_share: Some(0.75),
            cpu_hog_min_rounds: Some(19),
            ovs_flap_min_cycles: Some(10),
            ovs_netlink_excess_min: Some(11),
            fd_leak_min_readings: Some(12),
            fd_leak_min_span_secs: Some(13.0),
            fd_leak_min_growth: Some(14.0),
            fd_leak_min_r_squared: Some(0.5),
            fd_leak_min_rising_share: Some(0.6),
            fd_leak_critical_eta_secs: Some(15),
            group_above: Some(16),
            group_members_max: Some(17),
            group_members_shown: Some(18),
            pod_terminating_margin_secs: Some(19),
            replicaset_history_warning: Some(20),
            replicaset_history_critical: Some(21),
        };
        let mut c = nodedoc_detectors::Config::default();
        t.apply(&mut c);
        assert_eq!(
            (
                c.pod_terminating_margin_secs,
                c.replicaset_history_warning,
                c.replicaset_history_critical
            ),
            (19, 20, 21)
        );
        assert_eq!(
            (c.fd_leak_min_readings, c.fd_leak_critical_eta_secs),
            (12, 15)
        );
        assert_eq!(
            (
                c.fd_warning_ratio,
                c.fd_critical_ratio,
                c.zombie_critical_count
            ),
            (0.5, 0.6, 7)
        );
        assert_eq!(
            (
                c.netdev_still_waiting_secs,
                c.cni_plugin_timeout_secs,
                c.ovs_flap_min_cycles,
                c.ovs_netlink_excess_min
            ),
            (8, 9, 10, 11)
        );
        assert_eq!(c.ovs_busy_cpu_share, 0.25);
        assert_eq!((c.cpu_hog_share, c.cpu_hog_min_rounds), (0.75, 19));
    }
}
