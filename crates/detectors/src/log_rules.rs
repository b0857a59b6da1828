//! # `log-rules`: the user's own log rules
//!
//! **Signature.** Whatever the operator declared in the config file's `[[log.rule]]` tables,
//! as node-problem-detector's rule files allow: a pattern over the lines of a log file or of
//! the kernel log → a finding id, severity and summary. Each rule is a detector of its own:
//! its findings carry the rule id as their `detector`.
//!
//! **Sources.** The matches the collector made while it read the configured logs
//! (`Snapshot.rule_matches`): for an `event` rule the lines that matched in this reading; for
//! a `condition` rule every match since the agent started (a condition heals only with a
//! reboot).
//!
//! **Evidence.** How many lines matched, the latest ones with where they are (file and line
//! number, with the command that shows them). The explanation and fix are the rule's.

use std::collections::BTreeMap;

use nodedoc_model::{shell_command, Evidence, Finding, RuleKind, RuleMatch, Subject};

use crate::{thousands, Context, Detector};

/// See the module documentation.
pub struct LogRules;

/// Matching lines a finding quotes.
const LINES_SHOWN: usize = 5;

impl Detector for LogRules {
    fn id(&self) -> &'static str {
        "log-rules"
    }

    fn detect(&self, cx: &mut Context<'_>) {
        let mut by_rule: BTreeMap<&str, Vec<&RuleMatch>> = BTreeMap::new();
        for m in &cx.snapshot.rule_matches {
            by_rule.entry(m.rule.as_str()).or_default().push(m);
        }
        for (rule, matches) in by_rule {
            let last = matches[matches.len() - 1];
            let count = matches.len();
            let summary = if count == 1 {
                last.summary.clone()
            } else {
                format!(
                    "{} ({} matching lines)",
                    last.summary,
                    thousands(count as u64)
                )
            };
            let mut finding = Finding::new(rule, last.severity, Subject::Host, summary);
            let kind = match last.kind {
                RuleKind::Event => "event rule: open while lines keep matching",
                RuleKind::Condition => "condition rule: open until the node reboots",
            };
            finding.evidence.push(Evidence::fact(format!(
                "{} line{} matched the user rule {rule} ({kind})",
                thousands(count as u64),
                if count == 1 { "" } else { "s" }
            )));
            for m in matches.iter().rev().take(LINES_SHOWN) {
                let fact = format!("{}:{}: {}", m.source, m.line_number, m.line);
                let evidence = if m.source == "kernel-log" || m.line_number == 0 {
                    Evidence::fact(fact)
                } else {
                    Evidence::new(
                        fact,
                        shell_command!(
                            "sed -n {}p -- {}",
                            format!("{}", m.line_number).as_str(),
                            m.source.as_str()
                        ),
                    )
                };
                finding.evidence.push(evidence);
            }
            finding.explanation = last.explanation.clone().unwrap_or_else(|| {
                format!(
                    "A line matched the pattern of the rule {rule} in nodedoc's configuration; what it means is the rule author's to say (no explanation given)."
                )
            });
            finding.fix = last
                .fix
                .clone()
                .unwrap_or_else(|| "See the rule's author (no fix given).".to_string());
            cx.emit(finding, &[]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::snapshot;
    use crate::Config;
    use nodedoc_model::Severity;

    fn matched(rule: &str, line: u64, summary: &str) -> RuleMatch {
        RuleMatch {
            rule: rule.into(),
            kind: RuleKind::Event,
            severity: Severity::Warning,
            summary: summary.into(),
            explanation: Some("The disk said so.".into()),
            fix: None,
            source: "/var/log/syslog".into(),
            line_number: line,
            offset: 0,
            line: format!("line {line}"),
            truncated: false,
        }
    }

    #[test]
    fn one_finding_per_rule_with_its_latest_lines() {
        let mut snap = snapshot(vec![]);
        snap.rule_matches = vec![
            matched("disk-error", 10, "I/O error on sda"),
            matched("disk-error", 20, "I/O error on sdb"),
            matched("carrier-lost", 30, "eth0 lost carrier"),
        ];
        let findings = crate::run(&snap, &Config::default());
        let disk = findings
            .iter()
            .find(|f| f.detector == "disk-error")
            .unwrap();
        assert_eq!(disk.summary, "I/O error on sdb (2 matching lines)");
        assert_eq!(disk.severity, Severity::Warning);
        assert_eq!(disk.id.0, "disk-error:host");
        assert_eq!(disk.explanation, "The disk said so.");
        assert_eq!(
            disk.evidence[1].command.as_deref(),
            Some("sed -n 20p -- /var/log/syslog")
        );
        assert!(findings.iter().any(|f| f.detector == "carrier-lost"));
    }
}
