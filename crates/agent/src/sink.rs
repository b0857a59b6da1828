//! Where the agent's events go.
//!
//! A [`Sink`] takes events as the [`Tracker`](crate::Tracker) raises them and is told when a
//! round ends. The agent holds a list of sinks and knows nothing else about them: JSON lines
//! for log shippers, text for a terminal, Prometheus metrics, and Kubernetes node conditions
//! and events later, all behind this one trait.

use std::io::Write;

use anstyle::{AnsiColor, Style};
use nodedoc_model::text::terminal;
use nodedoc_model::{Finding, Severity};

use crate::lifecycle::{Event, EventKind};

/// Receives the agent's events.
pub trait Sink: Send {
    /// One event.
    fn event(&mut self, event: &Event) -> std::io::Result<()>;

    /// A round ended: `open` is every finding open now (worst first). Sinks that publish
    /// state rather than changes (metrics, node conditions) use this; the default does
    /// nothing.
    fn round_end(&mut self, open: &[&Finding]) -> std::io::Result<()> {
        let _ = open;
        Ok(())
    }
}

/// One JSON object per line: `{"event": …, "at": …, "finding": …}` — what `nodedoc watch
/// --format json` prints. Each line is flushed as it is written, so a reader following
/// the stream (or a crash) never sees half a line.
pub struct JsonLinesSink<W: Write + Send> {
    out: W,
}

impl<W: Write + Send> JsonLinesSink<W> {
    /// A sink writing to `out`.
    pub fn new(out: W) -> Self {
        JsonLinesSink { out }
    }

    /// The writer back.
    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write + Send> Sink for JsonLinesSink<W> {
    fn event(&mut self, event: &Event) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(event).map_err(std::io::Error::other)?;
        line.push(b'\n');
        self.out.write_all(&line)?;
        self.out.flush()
    }
}

/// A line per event for a person watching a terminal:
/// `2026-12-01T05:00:00Z  OPEN     critical fd-leak  ovs-vswitchd (pid 812): …`.
/// Host text is escaped; colour is the writer's business (the binary strips it off a
/// non-terminal).
pub struct TextSink<W: Write + Send> {
    out: W,
}

impl<W: Write + Send> TextSink<W> {
    /// A sink writing to `out`.
    pub fn new(out: W) -> Self {
        TextSink { out }
    }
}

fn severity_style(severity: Severity) -> Style {
    match severity {
        Severity::Critical => AnsiColor::Red.on_default().bold(),
        Severity::Warning => AnsiColor::Yellow.on_default().bold(),
        Severity::Info => AnsiColor::Blue.on_default().bold(),
    }
}

impl<W: Write + Send> Sink for TextSink<W> {
    fn event(&mut self, event: &Event) -> std::io::Result<()> {
        let f = &event.finding;
        let (word, style) = match event.event {
            EventKind::Open => ("OPEN", severity_style(f.severity)),
            EventKind::Update => ("UPDATE", severity_style(f.severity)),
            EventKind::Resolve => ("RESOLVED", AnsiColor::Green.on_default().bold()),
        };
        let chain = if f.caused_by.is_empty() {
            String::new()
        } else {
            let causes: Vec<&str> = f.caused_by.iter().map(|id| id.0.as_str()).collect();
            format!("  ← {}", terminal(&causes.join(", ")))
        };
        writeln!(
            self.out,
            "{}  {style}{word:<8}{style:#} {:<8} {}  {}{chain}",
            humantime::format_rfc3339_seconds(event.at),
            f.severity.to_string(),
            f.detector,
            terminal(&f.summary),
        )?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nodedoc_model::{FindingId, Subject};
    use std::time::{Duration, SystemTime};

    fn event(kind: EventKind, summary: &str) -> Event {
        let mut finding = Finding::new(
            "fd-leak",
            Severity::Warning,
            Subject::Process {
                pid: 7,
                comm: "x".into(),
            },
            summary,
        );
        finding
            .caused_by
            .push(FindingId("leak-per-event:host".into()));
        Event {
            event: kind,
            at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_780_000_000),
            finding,
        }
    }

    #[test]
    fn json_lines_are_one_event_each() {
        let mut sink = JsonLinesSink::new(Vec::new());
        sink.event(&event(EventKind::Open, "a")).unwrap();
        sink.event(&event(EventKind::Resolve, "b\nc")).unwrap();
        let out = String::from_utf8(sink.into_inner()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2);
        let second: Event = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(second.event, EventKind::Resolve);
        assert_eq!(second.finding.summary, "b\nc");
    }

    #[test]
    fn text_lines_escape_host_text() {
        let mut out = Vec::new();
        TextSink::new(&mut out)
            .event(&event(EventKind::Open, "leak \u{1b}[2J\nCRITICAL forged"))
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        let plain = text
            .replace(&severity_style(Severity::Warning).render().to_string(), "")
            .replace(
                &severity_style(Severity::Warning).render_reset().to_string(),
                "",
            );
        assert_eq!(
            plain,
            "2026-05-28T20:26:40Z  OPEN     warning  fd-leak  leak \\e[2J\\nCRITICAL forged  ← leak-per-event:host\n"
        );
    }
}
