//! Positions in a configuration file: byte offsets to line and column, and offsets inside a
//! decoded TOML string back to offsets in the file.
//!
//! The second is what lets a regex error point at the character of the pattern as the user
//! typed it: the regex parser sees the decoded value (`\\d` in a basic string is `\d`), so its
//! offsets must be walked back through the string's quoting and escapes.

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = floor_char_boundary(text, offset.min(text.len()));
    let before = &text[..offset];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = text[line_start..offset].chars().count() + 1;
    (line, column)
}

/// The text of line `line` (1-based) of `text`, without its terminator.
pub(crate) fn line_text(text: &str, line: usize) -> Option<&str> {
    text.split('\n')
        .nth(line.checked_sub(1)?)
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// Where byte `decoded` of a TOML string's value lies in `raw`, the string as written in the
/// file (quotes included). `None` when `raw` is not a string token this walker knows, or the
/// offset lies past the value; callers then point at the start of the token.
pub(crate) fn raw_offset(raw: &str, decoded: usize) -> Option<usize> {
    let bytes = raw.as_bytes();
    if let Some(body) = raw.strip_prefix("'''") {
        // Multi-line literal: verbatim, except a newline right after the opening quotes.
        let skip = newline_len(body.as_bytes());
        let start = 3 + skip;
        return (start + decoded <= raw.len().saturating_sub(3)).then_some(start + decoded);
    }
    if raw.starts_with('\'') {
        return (1 + decoded < raw.len()).then_some(1 + decoded);
    }
    let (mut i, end, multi) = if raw.starts_with("\"\"\"") {
        (
            3 + newline_len(&bytes[3..]),
            raw.len().saturating_sub(3),
            true,
        )
    } else if raw.starts_with('"') {
        (1, raw.len().saturating_sub(1), false)
    } else {
        return None;
    };
    let mut out = 0usize; // decoded bytes produced so far
    while i < end {
        if multi
            && bytes[i] == b'\\'
            && matches!(bytes.get(i + 1), Some(b' ' | b'\t' | b'\r' | b'\n'))
        {
            // Line-ending backslash: it and all whitespace and newlines after it vanish.
            i += 1;
            while i < end && matches!(bytes[i], b' ' | b'\t' | b'\r' | b'\n') {
                i += 1;
            }
            continue;
        }
        if out == decoded {
            return Some(i);
        }
        if bytes[i] != b'\\' {
            let len = utf8_len(bytes[i]);
            // A multi-byte character: its decoded bytes all map to its first raw byte.
            if decoded < out + len {
                return Some(i);
            }
            out += len;
            i += len;
            continue;
        }
        let next = *bytes.get(i + 1)?;
        let (raw_len, produced) = match next {
            b'b' | b't' | b'n' | b'f' | b'r' | b'"' | b'\\' | b'e' => (2, 1),
            b'x' => (4, utf8_len_of_hex(raw.get(i + 2..i + 4)?)?),
            b'u' => (6, utf8_len_of_hex(raw.get(i + 2..i + 6)?)?),
            b'U' => (10, utf8_len_of_hex(raw.get(i + 2..i + 10)?)?),
            _ => return None,
        };
        if decoded < out + produced {
            return Some(i);
        }
        out += produced;
        i += raw_len;
    }
    (out == decoded).then_some(i)
}

fn newline_len(bytes: &[u8]) -> usize {
    if bytes.starts_with(b"\r\n") {
        2
    } else if bytes.starts_with(b"\n") {
        1
    } else {
        0
    }
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xf0.. => 4,
        0xe0.. => 3,
        0xc0.. => 2,
        _ => 1,
    }
}

fn utf8_len_of_hex(hex: &str) -> Option<usize> {
    let c = char::from_u32(u32::from_str_radix(hex, 16).ok()?)?;
    Some(c.len_utf8())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_columns_are_one_based_and_count_characters() {
        let text = "a = 1\nbé = \"x\"\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        // `=` after the two-byte é is the 4th character of line 2.
        assert_eq!(line_column(text, text.find('=').unwrap()), (1, 3));
        assert_eq!(line_column(text, 10), (2, 4));
        assert_eq!(line_text(text, 2), Some("bé = \"x\""));
    }

    #[test]
    fn literal_strings_map_one_to_one() {
        assert_eq!(raw_offset(r"'a\d+'", 1), Some(2));
        assert_eq!(raw_offset("'''\nab'''", 1), Some(5));
    }

    #[test]
    fn basic_strings_walk_escapes() {
        // "x\\d(" decodes to x\d( : byte 3 of the value, `(`, is byte 5 of the token.
        assert_eq!(raw_offset(r#""x\\d(""#, 3), Some(5));
        // \u00e9 decodes to two bytes; both map to the escape.
        assert_eq!(raw_offset(r#""\u00e9(""#, 1), Some(1));
        assert_eq!(raw_offset(r#""\u00e9(""#, 2), Some(7));
        // A line-ending backslash in a multi-line basic string disappears with the
        // whitespace after it.
        assert_eq!(raw_offset("\"\"\"\nab\\\n   c\"\"\"", 2), Some(11));
    }
}
