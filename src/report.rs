//! Renders a [`Report`]: a terminal report with chains shown as chains, or JSON.

use std::collections::HashSet;
use std::io::Write;

use anstyle::{AnsiColor, Style};
use nodedoc_model::{Finding, FindingId, Report, Severity};

const WIDTH: usize = 100;

fn severity_style(severity: Severity) -> Style {
    match severity {
        Severity::Critical => AnsiColor::Red.on_default().bold(),
        Severity::Warning => AnsiColor::Yellow.on_default().bold(),
        Severity::Info => AnsiColor::Blue.on_default().bold(),
    }
}

const BOLD: Style = Style::new().bold();
const DIM: Style = Style::new().dimmed();

/// Writes the report as one pretty JSON object (schema: docs/json.md).
pub fn write_json(out: &mut dyn Write, report: &Report) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report).map_err(std::io::Error::other)?;
    writeln!(out)
}

/// Writes the terminal report. `out` strips colour when it is not a terminal.
pub fn write_text(out: &mut dyn Write, report: &Report, verbose: bool) -> std::io::Result<()> {
    let host = &report.host;
    writeln!(
        out,
        "{BOLD}nodedoc{BOLD:#} · {} · kernel {} · {} · {}",
        host.hostname,
        host.kernel_release,
        nodedoc_detectors::utc(host.collected_at_unix),
        report.origin
    )?;

    // A chain is printed from its visible symptom (a finding that causes nothing else) down
    // to its root cause; the worst severity in a chain orders it.
    let mut roots: Vec<&Finding> = report
        .findings
        .iter()
        .filter(|f| f.causes.is_empty())
        .collect();
    // Findings caught in a cycle have no symptom end: print them as roots too.
    let reachable = reachable_from(report, &roots);
    roots.extend(
        report
            .findings
            .iter()
            .filter(|f| !reachable.contains(&f.id)),
    );
    let chain_worst = |f: &Finding| worst_in_chain(report, f);
    roots.sort_by_key(|f| std::cmp::Reverse(chain_worst(f)));

    let mut printed: HashSet<FindingId> = HashSet::new();
    let mut hidden = 0;
    let mut current: Option<Severity> = None;
    for root in roots {
        let worst = chain_worst(root);
        if worst == Severity::Info && !verbose {
            hidden += 1;
            continue;
        }
        if current != Some(worst) {
            current = Some(worst);
            let style = severity_style(worst);
            let title = match worst {
                Severity::Critical => "CRITICAL",
                Severity::Warning => "WARNING",
                Severity::Info => "INFO",
            };
            writeln!(out)?;
            writeln!(out, "{style}━━ {title} ━━{style:#}")?;
        }
        writeln!(out)?;
        write_chain(out, report, root, 0, &mut printed)?;
    }

    writeln!(out)?;
    for source in &report.sources {
        writeln!(
            out,
            "{DIM}source{DIM:#}  {} ({}): {}",
            source.source,
            serde_plain(&source.state),
            source.detail
        )?;
    }
    if !report.gaps.is_empty() {
        let parts: Vec<String> = report
            .gaps
            .iter()
            .map(|g| {
                let examples: Vec<&str> = g
                    .examples
                    .iter()
                    .map(String::as_str)
                    .filter(|e| !e.is_empty())
                    .collect();
                if examples.is_empty() {
                    format!("{} ({}, {}×)", g.what, g.reason, g.count)
                } else {
                    format!(
                        "{} ({}, {}×, e.g. {})",
                        g.what,
                        g.reason,
                        g.count,
                        examples.join(" ")
                    )
                }
            })
            .collect();
        writeln!(out, "{DIM}unread{DIM:#}  {}", parts.join("; "))?;
    }
    let s = &report.summary;
    let verdict = match s.worst {
        None | Some(Severity::Info) => format!(
            "{}no problems found{:#}",
            AnsiColor::Green.on_default().bold(),
            AnsiColor::Green.on_default().bold()
        ),
        Some(worst) => {
            let style = severity_style(worst);
            format!(
                "{style}{} critical, {} warning{}{style:#}",
                s.critical,
                s.warning,
                if s.warning == 1 { "" } else { "s" }
            )
        }
    };
    let info = if s.info > 0 {
        format!(
            ", {} info{}",
            s.info,
            if hidden > 0 && !verbose {
                " (--verbose shows them)"
            } else {
                ""
            }
        )
    } else {
        String::new()
    };
    writeln!(out, "{BOLD}result{BOLD:#}  {verdict}{info}")?;
    Ok(())
}

fn serde_plain<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn reachable_from(report: &Report, roots: &[&Finding]) -> HashSet<FindingId> {
    let mut seen = HashSet::new();
    let mut stack: Vec<&FindingId> = roots.iter().map(|f| &f.id).collect();
    while let Some(id) = stack.pop() {
        if seen.insert(id.clone()) {
            if let Some(f) = report.finding(id) {
                stack.extend(f.caused_by.iter());
            }
        }
    }
    seen
}

fn worst_in_chain(report: &Report, finding: &Finding) -> Severity {
    let mut worst = finding.severity;
    let mut seen = HashSet::new();
    let mut stack = vec![finding];
    while let Some(f) = stack.pop() {
        if !seen.insert(&f.id) {
            continue;
        }
        worst = worst.max(f.severity);
        stack.extend(f.caused_by.iter().filter_map(|id| report.finding(id)));
    }
    worst
}

fn write_chain(
    out: &mut dyn Write,
    report: &Report,
    finding: &Finding,
    depth: usize,
    printed: &mut HashSet<FindingId>,
) -> std::io::Result<()> {
    let indent = "    ".repeat(depth);
    let style = severity_style(finding.severity);
    let arrow = if depth > 0 { "← caused by " } else { "" };
    if !printed.insert(finding.id.clone()) {
        writeln!(
            out,
            "{indent}{arrow}{style}{}{style:#} {} (shown above)",
            finding.detector, finding.summary
        )?;
        return Ok(());
    }
    let root_cause = depth > 0 && finding.caused_by.is_empty();
    writeln!(
        out,
        "{indent}{arrow}{style}{} {}{style:#}{}",
        finding.severity.to_string().to_uppercase(),
        finding.detector,
        if root_cause { "  ◆ root cause" } else { "" }
    )?;
    for line in wrap(&finding.summary, WIDTH - indent.len() - 2) {
        writeln!(out, "{indent}  {BOLD}{line}{BOLD:#}")?;
    }
    if !finding.evidence.is_empty() {
        writeln!(out, "{indent}  {DIM}evidence{DIM:#}")?;
        for evidence in &finding.evidence {
            writeln!(out, "{indent}   • {}", evidence.fact)?;
            if let Some(command) = &evidence.command {
                writeln!(out, "{indent}     {DIM}$ {command}{DIM:#}")?;
            }
        }
    }
    write_paragraph(out, &indent, "why", &finding.explanation)?;
    write_paragraph(out, &indent, "fix", &finding.fix)?;
    if !finding.references.is_empty() {
        writeln!(out, "{indent}  {DIM}see{DIM:#}")?;
        for reference in &finding.references {
            writeln!(
                out,
                "{indent}   • {} {DIM}{}{DIM:#}",
                reference.title, reference.url
            )?;
        }
    }
    for cause in &finding.caused_by {
        if let Some(cause) = report.finding(cause) {
            writeln!(out)?;
            write_chain(out, report, cause, depth + 1, printed)?;
        }
    }
    Ok(())
}

fn write_paragraph(
    out: &mut dyn Write,
    indent: &str,
    label: &str,
    text: &str,
) -> std::io::Result<()> {
    if text.trim().is_empty() {
        return Ok(());
    }
    writeln!(out, "{indent}  {DIM}{label}{DIM:#}")?;
    for line in wrap(text, WIDTH - indent.len() - 5) {
        writeln!(out, "{indent}     {line}")?;
    }
    Ok(())
}

/// Joins the hard-wrapped lines of catalog text into paragraphs and wraps them at `width`.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(20);
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use nodedoc_model::{HostInfo, Subject};

    fn finding(detector: &str, severity: Severity) -> Finding {
        let mut f = Finding::new(
            detector,
            severity,
            Subject::Host,
            format!("{detector} summary"),
        );
        f.explanation = "because".into();
        f.fix = "do this".into();
        f
    }

    #[test]
    fn chains_print_from_symptom_to_root_cause_once_each() {
        let mut symptom = finding("fd-exhaustion", Severity::Critical);
        let mut middle = finding("ovs-netlink-socket-excess", Severity::Warning);
        let mut root = finding("ovs-orphan-port", Severity::Warning);
        symptom.caused_by.push(middle.id.clone());
        middle.causes.push(symptom.id.clone());
        middle.caused_by.push(root.id.clone());
        root.causes.push(middle.id.clone());
        let lone = finding("zombie-processes", Severity::Warning);
        let report = Report::new(
            HostInfo::default(),
            "live".into(),
            vec![],
            vec![],
            vec![lone, root, middle, symptom],
        );
        let mut out = Vec::new();
        write_text(&mut out, &report, false).unwrap();
        let text = anstream::adapter::strip_str(&String::from_utf8(out).unwrap()).to_string();
        let pos = |s: &str| {
            text.find(s)
                .unwrap_or_else(|| panic!("{s} missing in\n{text}"))
        };
        assert!(
            pos("CRITICAL fd-exhaustion") < pos("← caused by WARNING ovs-netlink-socket-excess")
        );
        assert!(
            pos("ovs-netlink-socket-excess")
                < pos("← caused by WARNING ovs-orphan-port  ◆ root cause")
        );
        assert!(
            pos("━━ CRITICAL") < pos("━━ WARNING")
                && pos("━━ WARNING") < pos("WARNING zombie-processes")
        );
        assert_eq!(text.matches("ovs-orphan-port summary").count(), 1);
        assert!(text.contains("1 critical, 3 warnings"));
    }

    #[test]
    fn wrapping_keeps_words_whole() {
        let lines = wrap("one two three four\nfive six   seven eight nine", 20);
        assert_eq!(
            lines,
            vec!["one two three four", "five six seven eight", "nine"]
        );
    }
}
