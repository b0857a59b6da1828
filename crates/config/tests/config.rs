//! The configuration file: good files load with every value, bad ones fail with the exact
//! line and column of the mistake and a message that says what would be right.

use std::path::Path;
use std::time::Duration;

use nodedoc_config::{Config, ConfigError, LogSource, OutputFormat, Position, RuleKind};
use nodedoc_model::Severity;

const KNOWN: &[&str] = &[
    "fd-exhaustion",
    "zombie-processes",
    "hung-task",
    "ovs-vswitchd-busy",
];

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("/etc/nodedoc/nodedoc.toml"), KNOWN)
}

/// The error, asserting its position.
fn error_at(text: &str, line: usize, column: usize) -> ConfigError {
    let err = parse(text).expect_err("the file must be refused");
    assert_eq!(
        err.position,
        Some(Position { line, column }),
        "wrong position for: {err}"
    );
    err
}

const RULE_HEAD: &str = "[[log]]\npath = \"/var/log/syslog\"\n\n[[log.rule]]\n";

#[test]
fn an_empty_file_keeps_every_default() {
    let config = parse("").unwrap();
    assert_eq!(config.thresholds, Default::default());
    assert_eq!(config.agent, Default::default());
    assert!(config.logs.is_empty());
    let detectors = config.detector_config();
    let defaults = nodedoc_detectors::Config::default();
    assert_eq!(detectors.fd_warning_ratio, defaults.fd_warning_ratio);
    assert!(config.detectors.is_enabled("hung-task"));
}

#[test]
fn a_full_file_gives_every_value() {
    let config = parse(
        r#"
[thresholds]
fd_warning_ratio = 0.7
zombie_critical_count = 100

[detectors]
disable = ["ovs-vswitchd-busy"]

[agent]
interval = "30s"
jitter = "1s"
resolve_after_rounds = 5
listen = "[::1]:9101"
state_file = "/var/lib/nodedoc/state.json"
format = "json"
log_window = "5m"

[[log]]
paths = ["/dev/kmsg", "/var/log/kern.log"]

[[log.rule]]
id = "ext4-error"
kind = "condition"
severity = "critical"
pattern = 'EXT4-fs error \(device (?P<device>[^)]+)\)'
summary = "ext4 error on {device}"
"#,
    )
    .unwrap();
    assert_eq!(config.thresholds.fd_warning_ratio, Some(0.7));
    assert_eq!(config.thresholds.fd_critical_ratio, None);
    let detectors = config.detector_config();
    assert_eq!(detectors.fd_warning_ratio, 0.7);
    assert_eq!(detectors.zombie_critical_count, 100);
    assert_eq!(detectors.fd_critical_ratio, 0.95, "untouched default");
    assert!(!config.detectors.is_enabled("ovs-vswitchd-busy"));
    assert!(config.detectors.is_enabled("fd-exhaustion"));
    assert_eq!(config.agent.interval, Some(Duration::from_secs(30)));
    assert_eq!(config.agent.jitter, Some(Duration::from_secs(1)));
    assert_eq!(config.agent.resolve_after_rounds, Some(5));
    assert_eq!(config.agent.log_window, Some(Duration::from_secs(300)));
    assert_eq!(config.agent.listen, Some("[::1]:9101".parse().unwrap()));
    assert_eq!(
        config.agent.state_file.as_deref(),
        Some(Path::new("/var/lib/nodedoc/state.json"))
    );
    assert_eq!(config.agent.format, Some(OutputFormat::Json));
    assert_eq!(config.logs.len(), 1);
    assert_eq!(
        config.logs[0].sources,
        vec![
            LogSource::KernelLog,
            LogSource::File("/var/log/kern.log".into())
        ]
    );
    assert_eq!(config.rules_for(&LogSource::KernelLog).count(), 1);
    let other = LogSource::File("/var/log/syslog".into());
    assert_eq!(config.rules_for(&other).count(), 0);
    let rule = &config.logs[0].rules.rules()[0];
    assert_eq!(rule.id(), "ext4-error");
    assert_eq!(rule.kind(), RuleKind::Condition);
    assert_eq!(rule.severity(), Severity::Critical);
    assert_eq!(rule.summary().source(), "ext4 error on {device}");
}

#[test]
fn the_example_file_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/nodedoc.example.toml");
    let known: Vec<&str> = nodedoc_detectors::detectors()
        .iter()
        .map(|d| d.id())
        .collect();
    let config = Config::load(&path, &known).unwrap_or_else(|e| panic!("{e}"));
    // Every threshold in the example is the default, as its comment says.
    let example = config.detector_config();
    let defaults = nodedoc_detectors::Config::default();
    assert_eq!(format!("{example:?}"), format!("{defaults:?}"));
    assert_eq!(config.agent.interval, Some(Duration::from_secs(10)));
    let ids: Vec<&str> = config
        .logs
        .iter()
        .flat_map(|l| l.rules.rules().iter().map(|r| r.id()))
        .collect();
    assert_eq!(
        ids,
        [
            "ext4-error",
            "filesystem-read-only",
            "oom-kill",
            "conntrack-table-full",
            "kubelet-pleg-syslog"
        ]
    );
    // Its rules match the lines they were written for.
    let kernel = &config.logs[0].rules;
    let log = b"[ 12.5] EXT4-fs error (device vda1): ext4_find_entry:1455: inode #2\n\
        [ 13.0] Memory cgroup out of memory: Killed process 4242 (java) total-vm:1kB\n";
    let mut summaries = Vec::new();
    kernel
        .scan_reader(&log[..], |m| summaries.push(m.summary()))
        .unwrap();
    assert_eq!(
        summaries,
        [
            "ext4 error on vda1 in ext4_find_entry",
            "the OOM killer killed java (pid 4242)"
        ]
    );
}

#[test]
fn toml_syntax_error() {
    let err = error_at("[agent]\ninterval = \"10s\n", 2, 16);
    assert!(err.message.contains("string"), "{err}");
}

#[test]
fn unknown_key_lists_the_valid_ones_and_suggests() {
    let err = error_at(
        &format!("{RULE_HEAD}id = \"x\"\nseverty = \"warning\"\n"),
        6,
        1,
    );
    assert!(
        err.message.contains(
            "expected one of `id`, `kind`, `severity`, `pattern`, `patterns`, `summary`, \
             `explanation`, `fix`"
        ),
        "{err}"
    );
    assert!(err.message.ends_with("did you mean `severity`?"), "{err}");
    let err = error_at("[agent]\n\nintervall = \"10s\"\n", 3, 1);
    assert!(err.message.ends_with("did you mean `interval`?"), "{err}");
    error_at("[tresholds]\n", 1, 2);
}

#[test]
fn the_display_names_file_line_column_and_shows_the_line() {
    let err = error_at("[agent]\nlisten = \"localhost\"\n", 2, 10);
    assert_eq!(
        err.to_string(),
        "/etc/nodedoc/nodedoc.toml:2:10: `localhost` is not an address and port: write e.g. \
         \"127.0.0.1:9101\" or \"[::1]:9101\" (an IP address: no host names)\n\
         2 | listen = \"localhost\"\n  |          ^"
    );
}

#[test]
fn bad_regex_points_into_the_pattern_as_written() {
    // A literal string: the offset maps one to one.
    let text =
        format!("{RULE_HEAD}id = \"x\"\nseverity = \"info\"\npattern = 'task (\\w+ blocked'\n");
    let err = error_at(&text, 7, 17);
    assert!(
        err.message.starts_with("rule `x`, pattern: unclosed group"),
        "{err}"
    );
    // A basic string: `\\` is two characters in the file and one in the pattern.
    let text = format!("{RULE_HEAD}id = \"x\"\nseverity = \"info\"\npattern = \"a\\\\d+[z-a]\"\n");
    let err = error_at(&text, 7, 18);
    assert!(
        err.message.contains("invalid character class range"),
        "{err}"
    );
    // A multi-line literal string, error on its second line; in a `patterns` list.
    let text = format!(
        "{RULE_HEAD}id = \"x\"\nseverity = \"info\"\npatterns = [\n  'ok',\n  '''\nab\\q'''\n]\n"
    );
    let err = error_at(&text, 10, 3);
    assert!(err.message.starts_with("rule `x`, patterns[1]:"), "{err}");
    assert!(err.message.contains("unrecognized escape"), "{err}");
}

#[test]
fn a_pattern_that_spans_lines_is_refused() {
    let text = format!("{RULE_HEAD}id = \"x\"\nseverity = \"info\"\npattern = 'a\\nb'\n");
    let err = error_at(&text, 7, 11);
    assert!(err.message.contains("one line at a time"), "{err}");
}

#[test]
fn bad_severity_and_kind() {
    let text = format!("{RULE_HEAD}id = \"x\"\nseverity = \"warn\"\npattern = 'a'\n");
    let err = error_at(&text, 6, 12);
    assert!(
        err.message
            .contains("expected one of `info`, `warning`, `critical`; did you mean `warning`?"),
        "{err}"
    );
    let text = format!(
        "{RULE_HEAD}id = \"x\"\nkind = \"permanent\"\nseverity = \"info\"\npattern = 'a'\n"
    );
    let err = error_at(&text, 6, 8);
    assert!(
        err.message.contains("expected `event` or `condition`"),
        "{err}"
    );
    let err = error_at(&format!("{RULE_HEAD}id = \"x\"\npattern = 'a'\n"), 4, 1);
    assert_eq!(err.message, "missing field `severity`");
}

#[test]
fn rule_ids_are_kebab_case_unique_and_not_built_in() {
    let rule =
        |id: &str| format!("[[log.rule]]\nid = \"{id}\"\nseverity = \"info\"\npattern = 'a'\n");
    let err = error_at(
        &format!("{RULE_HEAD}id = \"Ext4_Error\"\nseverity = \"info\"\npattern = 'a'\n"),
        5,
        6,
    );
    assert!(err.message.contains("kebab-case"), "{err}");
    let err = error_at(
        &format!("{RULE_HEAD}id = \"hung-task\"\nseverity = \"info\"\npattern = 'a'\n"),
        5,
        6,
    );
    assert!(err.message.contains("built-in detector"), "{err}");
    // Duplicates, also across two [[log]] tables: the second names the first's line.
    let text = format!(
        "{RULE_HEAD}id = \"dup\"\nseverity = \"info\"\npattern = 'a'\n\n[[log]]\npath = \"/var/log/messages\"\n{}",
        rule("dup")
    );
    let err = error_at(&text, 12, 6);
    assert!(err.message.contains("already used on line 5"), "{err}");
}

#[test]
fn summary_placeholders_must_name_a_group() {
    let text = format!(
        "{RULE_HEAD}id = \"x\"\nseverity = \"info\"\npattern = '(?P<dev>\\w+) down'\nsummary = \"link {{dev}} on {{host}}\"\n"
    );
    let err = error_at(&text, 8, 26);
    assert!(
        err.message
            .contains("`{host}` is not a named group of the pattern (its named groups: dev)"),
        "{err}"
    );
    // With several patterns, each must have the group.
    let text = format!(
        "{RULE_HEAD}id = \"x\"\nseverity = \"info\"\npatterns = ['(?P<dev>\\w+) down', 'down']\nfix = \"{{dev}}\"\n"
    );
    let err = error_at(&text, 8, 8);
    assert!(err.message.contains("pattern 2 of this rule"), "{err}");
    let text = format!(
        "{RULE_HEAD}id = \"x\"\nseverity = \"info\"\npattern = 'a'\nsummary = \"a {{ b\"\n"
    );
    error_at(&text, 8, 14);
}

#[test]
fn pattern_and_path_presence() {
    let err = error_at(
        &format!("{RULE_HEAD}id = \"x\"\nseverity = \"info\"\n"),
        5,
        6,
    );
    assert!(err.message.contains("has no pattern"), "{err}");
    let err = error_at(
        &format!("{RULE_HEAD}id = \"x\"\nseverity = \"info\"\npattern = 'a'\npatterns = ['b']\n"),
        5,
        6,
    );
    assert!(err.message.contains("keep one"), "{err}");
    let err = error_at("[[log]]\npath = \"var/log/syslog\"\n", 2, 8);
    assert!(err.message.contains("absolute path"), "{err}");
    let err = error_at("\n[[log]]\npath = \"/var/log/syslog\"\n", 2, 1);
    assert!(err.message.contains("no rules"), "{err}");
}

#[test]
fn thresholds_are_checked() {
    let err = error_at("[thresholds]\nfd_warning_ratio = 80\n", 2, 20);
    assert!(err.message.contains("at most 1"), "{err}");
    let err = error_at("[thresholds]\nfd_critical_ratio = 0.5\n", 2, 21);
    assert!(
        err.message
            .contains("`fd_warning_ratio` (0.8) must be below `fd_critical_ratio` (0.5)"),
        "{err}"
    );
    let err = error_at("[thresholds]\nzombie_critical_count = -1\n", 2, 25);
    assert!(err.message.contains("invalid value"), "{err}");
    let err = error_at("[thresholds]\novs_flap_min_cycles = 0\n", 2, 23);
    assert!(err.message.contains("at least 1"), "{err}");
}

#[test]
fn disabled_detectors_must_exist() {
    let err = error_at(
        "[detectors]\ndisable = [\"hung-task\", \"ovs-vswitchd-bussy\"]\n",
        2,
        25,
    );
    assert!(
        err.message
            .ends_with("`ovs-vswitchd-bussy` is not a detector; did you mean `ovs-vswitchd-busy`?"),
        "{err}"
    );
    let err = error_at("[detectors]\ndisable = [\"xyz\"]\n", 2, 12);
    assert!(
        err.message.contains("(detectors: `fd-exhaustion`, "),
        "{err}"
    );
}

#[test]
fn agent_settings_are_checked() {
    let err = error_at("[agent]\ninterval = 10\n", 2, 12);
    assert!(err.message.contains("a duration with its unit"), "{err}");
    error_at("[agent]\ninterval = \"500ms\"\n", 2, 12);
    error_at("[agent]\ninterval = \"10s\"\njitter = \"10s\"\n", 3, 10);
    error_at("[agent]\nresolve_after_rounds = 0\n", 2, 24);
    error_at("[agent]\nlog_window = \"0s\"\n", 2, 14);
    error_at("[agent]\nstate_file = \"state.json\"\n", 2, 14);
    let err = error_at("[agent]\nformat = \"yaml\"\n", 2, 10);
    assert!(err.message.contains("expected `text` or `json`"), "{err}");
}

#[test]
fn unreadable_files_say_so_without_a_position() {
    let err = Config::load(Path::new("/nonexistent/nodedoc.toml"), KNOWN).unwrap_err();
    assert_eq!(err.position, None);
    assert!(
        err.to_string()
            .starts_with("/nonexistent/nodedoc.toml: the configuration file cannot be read"),
        "{err}"
    );
    let dir = std::env::temp_dir().join(format!("nodedoc-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("binary.toml");
    std::fs::write(&file, b"[agent]\n\xff\xfe\n").unwrap();
    let err = Config::load(&file, KNOWN).unwrap_err();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(err.message.contains("not UTF-8"), "{err}");
}

#[test]
fn control_characters_in_the_shown_line_are_escaped() {
    // `\e` is ESC in TOML: the value, quoted in the message, holds a raw ESC.
    let err = error_at("[agent]\nlisten = \"\\e[2J\"\n", 2, 10);
    assert!(err.message.contains('\u{1b}'));
    let shown = err.to_string();
    assert!(!shown.contains('\u{1b}'), "{shown:?}");
    assert!(shown.contains("\\e[2J"), "{shown:?}");
}
