//! Renders a [`Report`]: a terminal report with chains shown as chains, or JSON.

use std::collections::{HashMap, HashSet};
use std::io::Write;

use anstyle::{AnsiColor, Style};
use nodedoc_model::text::{terminal, Escaped};
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
    nodedoc_model::text::write_json_pretty(&mut *out, report).map_err(std::io::Error::other)?;
    writeln!(out)
}

/// What the text report shows.
#[derive(Clone, Copy, Debug)]
pub struct TextOptions {
    /// Also show chains whose worst finding is informational.
    pub verbose: bool,
    /// Show at most this many chains in detail, and this many evidence lines per finding;
    /// `None` shows everything. A line says what was left out.
    pub limit: Option<usize>,
}

impl Default for TextOptions {
    fn default() -> Self {
        TextOptions {
            verbose: false,
            limit: Some(DEFAULT_LIMIT),
        }
    }
}

/// Chains shown in detail (and evidence lines per finding) unless `--limit` says otherwise:
/// a report an SRE reads on a sick node, not an inventory. JSON always has everything.
pub const DEFAULT_LIMIT: usize = 20;

/// The findings of a report, indexed, with each chain's worst severity computed once, so
/// rendering stays linear in the number of findings and links.
struct Graph<'a> {
    report: &'a Report,
    index: HashMap<&'a FindingId, usize>,
    /// Per finding, the worst severity of the finding and everything that causes it.
    worst: Vec<Severity>,
}

impl<'a> Graph<'a> {
    fn new(report: &'a Report) -> Graph<'a> {
        let index: HashMap<&FindingId, usize> = report
            .findings
            .iter()
            .enumerate()
            .map(|(i, f)| (&f.id, i))
            .collect();
        let mut graph = Graph {
            report,
            index,
            worst: report.findings.iter().map(|f| f.severity).collect(),
        };
        graph.compute_worst();
        graph
    }

    fn get(&self, id: &FindingId) -> Option<(usize, &'a Finding)> {
        let i = *self.index.get(id)?;
        Some((i, &self.report.findings[i]))
    }

    fn causes(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        self.report.findings[i]
            .caused_by
            .iter()
            .filter_map(|id| self.index.get(id).copied())
    }

    /// Worst severity over each finding's causes, by one iterative depth-first pass
    /// (post-order); a cycle is cut where it closes.
    fn compute_worst(&mut self) {
        let n = self.report.findings.len();
        // 0 = unvisited, 1 = on the stack, 2 = done.
        let mut mark = vec![0u8; n];
        for start in 0..n {
            if mark[start] != 0 {
                continue;
            }
            let mut stack: Vec<(usize, bool)> = vec![(start, false)];
            while let Some((i, expanded)) = stack.pop() {
                if expanded {
                    let worst = self
                        .causes(i)
                        .filter(|&c| mark[c] == 2)
                        .map(|c| self.worst[c])
                        .fold(self.worst[i], Severity::max);
                    self.worst[i] = worst;
                    mark[i] = 2;
                    continue;
                }
                if mark[i] != 0 {
                    continue;
                }
                mark[i] = 1;
                stack.push((i, true));
                let causes: Vec<usize> = self.causes(i).filter(|&c| mark[c] == 0).collect();
                stack.extend(causes.into_iter().map(|c| (c, false)));
            }
        }
    }

    /// The findings each chain is printed from: the visible symptoms (findings that cause
    /// nothing else), then any finding caught in a cycle that no symptom reaches; worst
    /// chain first.
    fn roots(&self) -> Vec<usize> {
        let findings = &self.report.findings;
        let mut roots: Vec<usize> = (0..findings.len())
            .filter(|&i| findings[i].causes.iter().all(|id| self.get(id).is_none()))
            .collect();
        let mut reached = vec![false; findings.len()];
        let mut stack = roots.clone();
        while let Some(i) = stack.pop() {
            if !std::mem::replace(&mut reached[i], true) {
                stack.extend(self.causes(i));
            }
        }
        for i in 0..findings.len() {
            if !reached[i] {
                // Everything this one reaches is printed under it.
                roots.push(i);
                let mut stack = vec![i];
                while let Some(j) = stack.pop() {
                    if !std::mem::replace(&mut reached[j], true) {
                        stack.extend(self.causes(j));
                    }
                }
            }
        }
        // Stable: within a severity, the report's own order (worst first, then detector).
        roots.sort_by_key(|&i| std::cmp::Reverse(self.worst[i]));
        roots
    }

    /// The chain from a symptom down to one root cause, following the worst cause at each
    /// step; with how many other causes were passed over.
    fn main_path(&self, root: usize) -> (Vec<usize>, usize) {
        let mut path = vec![root];
        let mut others = 0;
        let mut seen: HashSet<usize> = HashSet::from([root]);
        let mut at = root;
        loop {
            let causes: Vec<usize> = self.causes(at).filter(|c| !seen.contains(c)).collect();
            let Some(&next) = causes
                .iter()
                .max_by_key(|&&c| (self.worst[c], std::cmp::Reverse(c)))
            else {
                break;
            };
            others += causes.len() - 1;
            seen.insert(next);
            path.push(next);
            at = next;
        }
        (path, others)
    }
}

/// Writes the terminal report. `out` strips colour when it is not a terminal.
///
/// Every string that came from the host (names, command lines, log lines, paths) is shown
/// with its control characters escaped ([`nodedoc_model::text::terminal`]): nothing in a
/// report can move the cursor, retitle the terminal or forge a line.
pub fn write_text(
    out: &mut dyn Write,
    report: &Report,
    options: TextOptions,
) -> std::io::Result<()> {
    let host = &report.host;
    writeln!(
        out,
        "{BOLD}nodedoc{BOLD:#} · {} · kernel {} · {} · {}",
        Escaped(&host.hostname),
        Escaped(&host.kernel_release),
        nodedoc_detectors::utc(host.collected_at_unix),
        Escaped(&report.origin)
    )?;

    let graph = Graph::new(report);
    let roots: Vec<usize> = graph
        .roots()
        .into_iter()
        .filter(|&i| options.verbose || graph.worst[i] > Severity::Info)
        .collect();
    let hidden_info = graph.roots().len() - roots.len();
    let limit = options.limit.unwrap_or(usize::MAX);

    // One line per chain first: the answer on one screen.
    if !roots.is_empty() {
        writeln!(out)?;
        for &root in roots.iter().take(limit) {
            write_chain_line(out, &graph, root)?;
        }
        if roots.len() > limit {
            writeln!(
                out,
                "  {DIM}… and {} more chains{DIM:#}",
                thousands_usize(roots.len() - limit)
            )?;
        }
    }

    let mut printed: HashSet<usize> = HashSet::new();
    let mut current: Option<Severity> = None;
    for &root in roots.iter().take(limit) {
        let worst = graph.worst[root];
        if current != Some(worst) {
            current = Some(worst);
            let style = severity_style(worst);
            writeln!(out)?;
            writeln!(out, "{style}━━ {} ━━{style:#}", title(worst))?;
        }
        writeln!(out)?;
        write_chain(out, &graph, root, 0, &mut printed, limit)?;
    }
    if roots.len() > limit {
        let left: Vec<usize> = roots[limit..].to_vec();
        let count = |s: Severity| left.iter().filter(|&&i| graph.worst[i] == s).count();
        writeln!(out)?;
        writeln!(
            out,
            "{BOLD}left out{BOLD:#}  {} more chains ({} critical, {} warning, {} info) are not shown; \
             `--limit 0` shows every one, `--format json` has them all",
            thousands_usize(left.len()),
            thousands_usize(count(Severity::Critical)),
            thousands_usize(count(Severity::Warning)),
            thousands_usize(count(Severity::Info)),
        )?;
    }

    writeln!(out)?;
    for source in &report.sources {
        writeln!(
            out,
            "{DIM}source{DIM:#}  {} ({}): {}",
            Escaped(&source.source),
            serde_plain(&source.state),
            Escaped(&source.detail)
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
        writeln!(out, "{DIM}unread{DIM:#}  {}", terminal(&parts.join("; ")))?;
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
            if hidden_info > 0 {
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

fn title(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "CRITICAL",
        Severity::Warning => "WARNING",
        Severity::Info => "INFO",
    }
}

/// `fd-exhaustion ovs-vswitchd (pid 812) ← ovs-netlink-socket-excess ← ovs-orphan-port …`
/// (a subject is named where it changes), then the root cause's fix in one sentence; both
/// wrapped under the severity column.
fn write_chain_line(out: &mut dyn Write, graph: &Graph<'_>, root: usize) -> std::io::Result<()> {
    const COLUMN: usize = 9;
    let (path, others) = graph.main_path(root);
    let findings = &graph.report.findings;
    let style = severity_style(graph.worst[root]);
    let mut line = String::new();
    let mut previous: Option<&nodedoc_model::Subject> = None;
    for (n, &i) in path.iter().enumerate() {
        if n > 0 {
            line.push_str(" ← ");
        }
        let f = &findings[i];
        line.push_str(&f.detector);
        if previous != Some(&f.subject) {
            line.push(' ');
            line.push_str(&terminal(&f.subject.to_string()));
        }
        previous = Some(&f.subject);
    }
    if others > 0 {
        line.push_str(&format!(
            " (+{others} other cause{})",
            if others == 1 { "" } else { "s" }
        ));
    }
    let indent = " ".repeat(COLUMN);
    for (n, text) in wrap(&line, WIDTH - COLUMN).iter().enumerate() {
        if n == 0 {
            writeln!(
                out,
                "{style}{:<8}{style:#} {text}",
                title(graph.worst[root])
            )?;
        } else {
            writeln!(out, "{indent}{text}")?;
        }
    }
    let last = &findings[*path.last().expect("a path holds its root")];
    if let Some(fix) = first_sentence(&last.fix) {
        let fix = terminal(&fix);
        for (n, text) in wrap(&fix, WIDTH - COLUMN - 5).iter().enumerate() {
            let label = if n == 0 { "fix: " } else { "     " };
            writeln!(out, "{indent}{DIM}{label}{DIM:#}{text}")?;
        }
    }
    Ok(())
}

/// The first sentence of catalog text, its hard line breaks joined.
fn first_sentence(text: &str) -> Option<String> {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if joined.is_empty() {
        return None;
    }
    // A sentence ends at ". " outside a code span (commands carry dots).
    let mut in_code = false;
    let bytes = joined.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'`' => in_code = !in_code,
            b'.' if !in_code && bytes.get(i + 1) == Some(&b' ') => {
                return Some(joined[..=i].to_string());
            }
            _ => {}
        }
    }
    Some(joined)
}

fn thousands_usize(n: usize) -> String {
    nodedoc_detectors::thousands(n as u64)
}

fn serde_plain<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn write_chain(
    out: &mut dyn Write,
    graph: &Graph<'_>,
    i: usize,
    depth: usize,
    printed: &mut HashSet<usize>,
    limit: usize,
) -> std::io::Result<()> {
    let finding = &graph.report.findings[i];
    // Deep chains keep a readable indent.
    let indent = "    ".repeat(depth.min(6));
    let style = severity_style(finding.severity);
    let arrow = if depth > 0 { "← caused by " } else { "" };
    if !printed.insert(i) {
        writeln!(
            out,
            "{indent}{arrow}{style}{}{style:#} {} (shown above)",
            finding.detector,
            terminal(&finding.summary)
        )?;
        return Ok(());
    }
    let root_cause = depth > 0 && graph.causes(i).next().is_none();
    writeln!(
        out,
        "{indent}{arrow}{style}{} {}{style:#}{}",
        finding.severity.to_string().to_uppercase(),
        finding.detector,
        if root_cause { "  ◆ root cause" } else { "" }
    )?;
    for line in wrap(&terminal(&finding.summary), WIDTH - indent.len() - 2) {
        writeln!(out, "{indent}  {BOLD}{line}{BOLD:#}")?;
    }
    if !finding.evidence.is_empty() {
        writeln!(out, "{indent}  {DIM}evidence{DIM:#}")?;
        for evidence in finding.evidence.iter().take(limit) {
            writeln!(out, "{indent}   • {}", terminal(&evidence.fact))?;
            if let Some(command) = &evidence.command {
                writeln!(out, "{indent}     {DIM}$ {}{DIM:#}", terminal(command))?;
            } else if let Some(why) = &evidence.command_withheld {
                writeln!(
                    out,
                    "{indent}     {DIM}(no command: {}){DIM:#}",
                    terminal(why)
                )?;
            }
        }
        if finding.evidence.len() > limit {
            writeln!(
                out,
                "{indent}   {DIM}… {} more evidence lines (`--limit 0` or `--format json` shows them){DIM:#}",
                thousands_usize(finding.evidence.len() - limit)
            )?;
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
                terminal(&reference.title),
                terminal(&reference.url)
            )?;
        }
    }
    let causes: Vec<usize> = graph.causes(i).collect();
    for cause in causes {
        writeln!(out)?;
        write_chain(out, graph, cause, depth + 1, printed, limit)?;
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
    // Catalog text is hard-wrapped: its line breaks are spacing, joined by `wrap`; what is
    // left of a control character inside a word is escaped.
    for line in wrap(text, WIDTH - indent.len() - 5) {
        writeln!(out, "{indent}     {}", terminal(&line))?;
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
        write_text(&mut out, &report, TextOptions::default()).unwrap();
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

    /// The report's own styles, so a test can tell them from escape sequences that came
    /// from the host.
    fn without_own_styles(raw: &str) -> String {
        let mut text = raw.to_string();
        let styles = [
            severity_style(Severity::Critical),
            severity_style(Severity::Warning),
            severity_style(Severity::Info),
            AnsiColor::Green.on_default().bold(),
            BOLD,
            DIM,
        ];
        for style in styles {
            text = text.replace(&style.render().to_string(), "");
            text = text.replace(&style.render_reset().to_string(), "");
        }
        text
    }

    #[test]
    fn host_text_cannot_forge_lines_or_send_escape_sequences() {
        let hostile =
            "x\u{1b}]0;pwned\u{7}\u{1b}[2J\nCRITICAL forged-detector\r\u{9b}31m".to_string();
        let mut f = finding("zombie-processes", Severity::Critical);
        f.subject = Subject::Process {
            pid: 42,
            comm: hostile.clone(),
        };
        f.summary = format!("parent {hostile} never reaps");
        f.evidence.push(nodedoc_model::Evidence::new(
            format!("cmdline {hostile}"),
            nodedoc_model::shell_command!("ps -o pid= -p {}", hostile.as_str()),
        ));
        f.fix = format!("restart {hostile}. Then check.");
        f.explanation = format!("because {hostile}");
        let host = HostInfo {
            hostname: hostile.clone(),
            ..HostInfo::default()
        };
        let mut report = Report::new(host, format!("file:{hostile}"), vec![], vec![], vec![f]);
        report.sources.push(nodedoc_model::SourceStatus {
            source: "procfs".into(),
            state: nodedoc_model::SourceState::Partial,
            detail: hostile.clone(),
        });
        let mut out = Vec::new();
        write_text(&mut out, &report, TextOptions::default()).unwrap();
        let text = without_own_styles(&String::from_utf8(out).unwrap());
        for c in text.chars() {
            assert!(
                c == '\n' || !nodedoc_model::text::is_unsafe_char(c),
                "raw {c:?} reached the terminal:\n{text}"
            );
        }
        assert!(
            !text
                .lines()
                .any(|l| l.trim_start().starts_with("CRITICAL forged")),
            "a forged line:\n{text}"
        );
        assert!(
            text.contains("\\e]0;pwned\\x07\\e[2J\\nCRITICAL forged-detector"),
            "{text}"
        );
    }

    #[test]
    fn twenty_thousand_findings_print_capped_with_what_was_left_out() {
        // 10,000 two-link chains: linear rendering, a bounded report.
        let mut findings = Vec::new();
        for n in 0..10_000 {
            let mut symptom = finding("fd-exhaustion", Severity::Critical);
            symptom.subject = Subject::Process {
                pid: n,
                comm: "hog".into(),
            };
            symptom.id = FindingId::new("fd-exhaustion", &symptom.subject);
            let mut cause = finding("ovs-orphan-port", Severity::Warning);
            cause.subject = Subject::OvsInterface {
                bridge: None,
                name: format!("tap{n}"),
            };
            cause.id = FindingId::new("ovs-orphan-port", &cause.subject);
            symptom.caused_by.push(cause.id.clone());
            cause.causes.push(symptom.id.clone());
            findings.push(symptom);
            findings.push(cause);
        }
        let report = Report::new(HostInfo::default(), "live".into(), vec![], vec![], findings);
        let mut out = Vec::new();
        write_text(&mut out, &report, TextOptions::default()).unwrap();
        let text = anstream::adapter::strip_str(&String::from_utf8(out).unwrap()).to_string();
        assert_eq!(
            text.matches("◆ root cause").count(),
            DEFAULT_LIMIT,
            "{text}"
        );
        assert!(
            text.contains(
                "left out  9,980 more chains (9,980 critical, 0 warning, 0 info) are not shown"
            ),
            "{text}"
        );
        assert!(text.contains("… and 9,980 more chains"), "{text}");
        assert!(text.lines().count() < 500, "{} lines", text.lines().count());
        let mut all = Vec::new();
        write_text(
            &mut all,
            &report,
            TextOptions {
                verbose: false,
                limit: None,
            },
        )
        .unwrap();
        let all = anstream::adapter::strip_str(&String::from_utf8(all).unwrap()).to_string();
        assert_eq!(all.matches("◆ root cause").count(), 10_000);
        assert!(!all.contains("left out"));
    }

    #[test]
    fn the_chain_line_follows_the_worst_cause_and_gives_the_root_fix() {
        let mut symptom = finding("fd-exhaustion", Severity::Critical);
        let mut middle = finding("ovs-netlink-socket-excess", Severity::Warning);
        let mut root = finding("ovs-orphan-port", Severity::Warning);
        root.fix = "Delete the port with `ovs-vsctl --if-exists del-port br-int ha-1`. Then find who re-adds it.".into();
        let mut other = finding("ovs-port-flapping", Severity::Info);
        symptom.caused_by.push(middle.id.clone());
        middle.caused_by.push(root.id.clone());
        middle.caused_by.push(other.id.clone());
        middle.causes.push(symptom.id.clone());
        root.causes.push(middle.id.clone());
        other.causes.push(middle.id.clone());
        let report = Report::new(
            HostInfo::default(),
            "live".into(),
            vec![],
            vec![],
            vec![other, root, middle, symptom],
        );
        let mut out = Vec::new();
        write_text(&mut out, &report, TextOptions::default()).unwrap();
        let text = anstream::adapter::strip_str(&String::from_utf8(out).unwrap()).to_string();
        let mut lines = text.lines().skip(2);
        assert_eq!(
            lines.next().unwrap(),
            "CRITICAL fd-exhaustion this host ← ovs-netlink-socket-excess ← ovs-orphan-port (+1 other cause)"
        );
        assert_eq!(
            lines.next().unwrap(),
            "         fix: Delete the port with `ovs-vsctl --if-exists del-port br-int ha-1`."
        );
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
