//! Reading the entries of service logs (`Snapshot::service_logs`) the way the runtime and
//! kubelet detectors need: the text to match, fields, container ids, times. A journal entry
//! may hold a whole logfmt line in its message (containerd and dockerd write logfmt to stderr,
//! which the journal keeps as it is), so ids are also looked for as `key=value` pairs inside
//! the message.

use nodedoc_model::{LogEntry, ServiceLog};

/// One entry with the log it came from.
#[derive(Clone, Copy)]
pub(crate) struct Line<'a> {
    pub log: &'a ServiceLog,
    pub entry: &'a LogEntry,
}

impl<'a> Line<'a> {
    /// Every entry of every log, in order.
    pub fn all(logs: &'a [ServiceLog]) -> impl Iterator<Item = Line<'a>> + 'a {
        logs.iter()
            .flat_map(|log| log.entries.iter().map(move |entry| Line { log, entry }))
    }

    /// A field by name (`error`, `container`, `containerID`).
    pub fn field(&self, name: &str) -> Option<&'a str> {
        self.entry.fields.get(name).map(String::as_str)
    }

    /// The error the entry carries: its `error`/`err` field.
    pub fn error(&self) -> Option<&'a str> {
        self.field("error").or_else(|| self.field("err"))
    }

    /// True when the message, or the message and its error field together, contain every
    /// needle.
    pub fn contains_all<S: AsRef<str>>(&self, needles: &[S]) -> bool {
        let message = self.entry.message.as_str();
        let error = self.error().unwrap_or("");
        needles.iter().all(|n| {
            let n = n.as_ref();
            message.contains(n) || error.contains(n)
        })
    }

    /// Where it is: `SOURCE:LINE`.
    pub fn place(&self) -> String {
        format!("{}:{}", self.log.source, self.entry.line)
    }
}

/// A container id (12 to 64 lowercase hex digits) at the start of `text`, after any quotes,
/// backslashes (escaped quotes) and spaces.
pub(crate) fn leading_id(text: &str) -> Option<&str> {
    let text = text.trim_start_matches(['"', '\\', '\'', ' ', '{']);
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || ('a'..='f').contains(&c)))
        .unwrap_or(text.len());
    let id = &text[..end];
    let bounded = text[end..]
        .chars()
        .next()
        .is_none_or(|c| !c.is_ascii_alphanumeric());
    ((12..=64).contains(&id.len()) && bounded).then_some(id)
}

/// The container id after `marker` in `text`.
pub(crate) fn id_after<'t>(text: &'t str, marker: &str) -> Option<&'t str> {
    text.match_indices(marker)
        .find_map(|(at, _)| leading_id(&text[at + marker.len()..]))
}

/// The first container id in `text` (a kubelet `containerID={"Type":"containerd","ID":"…"}`
/// value, a bare id).
pub(crate) fn first_id(text: &str) -> Option<&str> {
    text.match_indices(|c: char| c.is_ascii_hexdigit())
        .filter(|(at, _)| {
            *at == 0
                || !text[..*at]
                    .chars()
                    .next_back()
                    .is_some_and(|c| c.is_ascii_alphanumeric())
        })
        .find_map(|(at, _)| leading_id(&text[at..]))
}

/// Formats a time in milliseconds since the epoch as UTC.
pub(crate) fn at(ms: Option<i64>) -> String {
    match ms {
        Some(ms) if ms >= 0 => crate::utc((ms / 1000) as u64),
        _ => "(no time)".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "b32a2fd9b0a141bdc9be897b80762009665ce408cde67b93e64dc2b1c1aa2c78";

    #[test]
    fn ids_are_found_after_quotes_escapes_and_in_kubelet_json() {
        assert_eq!(
            id_after(
                &format!(r#"StopContainer for \"{ID}\" failed"#),
                "StopContainer for "
            ),
            Some(ID)
        );
        assert_eq!(
            id_after("Container 10f0451e1345 failed to exit", "Container "),
            Some("10f0451e1345")
        );
        assert_eq!(id_after("Container failed to exit", "Container "), None);
        assert_eq!(
            first_id(&format!(r#"{{"Type":"containerd","ID":"{ID}"}}"#)),
            Some(ID)
        );
        // Hex inside a word is not an id; too short is not an id.
        assert_eq!(first_id("deadbeefcafe0123x and abc"), None);
        assert_eq!(leading_id("abc123"), None);
    }
}
