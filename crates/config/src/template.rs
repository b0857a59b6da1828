//! Summary, explanation and fix templates of user rules: text with `{name}` placeholders for
//! the pattern's named capture groups, `{0}` for the whole match, and `{{` / `}}` for literal
//! braces (the syntax of the detectors' catalog templates).
//!
//! A template is parsed once, when the rule set is compiled, so a placeholder that names no
//! group is a configuration error with its position instead of text left unfilled at 3 a.m.

use std::fmt;

/// One parsed template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    /// A placeholder (`"0"` is the whole match) and the offset of its `{`.
    Value {
        name: String,
        offset: usize,
    },
}

/// What is wrong with a template, and the byte offset in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TemplateError {
    pub offset: usize,
    pub message: String,
}

/// The longest summary a rule renders, in bytes: a capture can hold most of a 64 KiB line,
/// and a summary is one line of a report.
pub const MAX_RENDERED_LEN: usize = 1024;

impl Template {
    pub(crate) fn parse(source: &str) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut rest = source;
        let offset_of = |rest: &str| source.len() - rest.len();
        while let Some(i) = rest.find(['{', '}']) {
            text.push_str(&rest[..i]);
            let tail = &rest[i..];
            if tail.starts_with("{{") || tail.starts_with("}}") {
                text.push_str(&tail[..1]);
                rest = &tail[2..];
                continue;
            }
            if tail.starts_with('}') {
                return Err(TemplateError {
                    offset: offset_of(tail),
                    message: "a `}` with no `{` before it (write `}}` for a literal brace)"
                        .to_string(),
                });
            }
            let Some(end) = tail.find('}') else {
                return Err(TemplateError {
                    offset: offset_of(tail),
                    message: "a `{` that is never closed (write `{{` for a literal brace)"
                        .to_string(),
                });
            };
            let name = &tail[1..end];
            if !is_placeholder_name(name) {
                return Err(TemplateError {
                    offset: offset_of(tail),
                    message: format!(
                        "`{{{name}}}` is not a placeholder: write `{{group}}` with the name of a \
                         capture group `(?P<group>…)` of the pattern, `{{0}}` for the whole match, \
                         or `{{{{` for a literal brace"
                    ),
                });
            }
            if !text.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut text)));
            }
            parts.push(Part::Value {
                name: name.to_string(),
                offset: offset_of(tail),
            });
            rest = &tail[end + 1..];
        }
        text.push_str(rest);
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(Template {
            source: source.to_string(),
            parts,
        })
    }

    /// The template as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The placeholder names, each with the byte offset of its `{` in the source.
    pub(crate) fn placeholders(&self) -> impl Iterator<Item = (&str, usize)> {
        self.parts.iter().filter_map(|part| match part {
            Part::Value { name, offset } => Some((name.as_str(), *offset)),
            Part::Text(_) => None,
        })
    }

    /// Fills the placeholders with `value(name)` (lossy UTF-8, a trailing `\r` dropped); the
    /// result is cut at [`MAX_RENDERED_LEN`] bytes with `…`. The text is stored raw: whoever
    /// shows it escapes it for its medium.
    pub(crate) fn render<'a>(&self, mut value: impl FnMut(&str) -> Option<&'a [u8]>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Value { name, .. } => {
                    let bytes = value(name).unwrap_or_default();
                    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
                    out.push_str(&String::from_utf8_lossy(bytes));
                }
            }
            if out.len() > MAX_RENDERED_LEN {
                break;
            }
        }
        bounded(out)
    }
}

/// `bytes` as text (lossy UTF-8), at most [`MAX_RENDERED_LEN`] bytes of it.
pub(crate) fn lossy_bounded(bytes: &[u8]) -> String {
    let bytes = &bytes[..bytes.len().min(MAX_RENDERED_LEN + 4)];
    bounded(String::from_utf8_lossy(bytes).into_owned())
}

/// `out` cut at [`MAX_RENDERED_LEN`] bytes (on a character boundary), with `…` when cut.
fn bounded(mut out: String) -> String {
    if out.len() > MAX_RENDERED_LEN {
        let mut cut = MAX_RENDERED_LEN;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('…');
    }
    out
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// `0`, or a name the regex crate accepts for a group: letters, digits, `_`, `.`, `[`, `]`,
/// not starting with a digit.
fn is_placeholder_name(name: &str) -> bool {
    if name == "0" {
        return true;
    }
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_alphabetic())
        && chars.all(|c| c == '_' || c == '.' || c == '[' || c == ']' || c.is_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(t: &Template, values: &[(&str, &str)]) -> String {
        t.render(|name| {
            values
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_bytes())
        })
    }

    #[test]
    fn placeholders_escapes_and_offsets() {
        let t = Template::parse("{{literal}} {device} held {0}").unwrap();
        assert_eq!(
            t.placeholders().collect::<Vec<_>>(),
            vec![("device", 12), ("0", 26)]
        );
        assert_eq!(
            fill(&t, &[("device", "veth1"), ("0", "x")]),
            "{literal} veth1 held x"
        );
    }

    #[test]
    fn bad_templates_say_where() {
        assert_eq!(Template::parse("a {dev").unwrap_err().offset, 2);
        assert_eq!(Template::parse("a } b").unwrap_err().offset, 2);
        assert_eq!(Template::parse("x {a b}").unwrap_err().offset, 2);
    }

    #[test]
    fn rendering_is_bounded_and_lossy() {
        let t = Template::parse("{v}").unwrap();
        let long = "é".repeat(MAX_RENDERED_LEN);
        let out = fill(&t, &[("v", &long)]);
        assert!(out.len() <= MAX_RENDERED_LEN + '…'.len_utf8());
        assert!(out.ends_with('…'));
        let out = t.render(|_| Some(&b"a\xffb\r"[..]));
        assert_eq!(out, "a\u{fffd}b");
    }
}
