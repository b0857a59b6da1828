//! Untrusted text on its way to a human: shown on a terminal, or pasted into a shell.
//!
//! Almost every string nodedoc reports was chosen by someone else: process names and command
//! lines (any user sets them), network device and OVS interface names, external_ids, log
//! lines. Two rules keep them from acting on the operator:
//!
//! - [`terminal`]: on a terminal, control characters are shown, never sent. An escape
//!   sequence in a process name would otherwise clear the screen or retitle the window, and a
//!   newline in a command line would forge a whole report line. JSON output stays exact: its
//!   encoder escapes control characters itself.
//! - [`shell_word`]: a value placed in a suggested command is one shell word, single-quoted
//!   (`'` written as `'\''`), so `$(…)`, backquotes and `;` stay text when the command is
//!   pasted. A value with control characters has no safe pasteable form (a quoted newline is
//!   still a newline on the operator's clipboard, and the terminal shows it escaped, which
//!   would not name the same thing): no command is suggested for it.
//!
//! Written here rather than taken from `shlex`: `shlex::try_quote` mixes quoting styles and
//! leaves control characters in place by design; both rules above need the opposite.

use std::borrow::Cow;
use std::fmt;

/// True for characters that must not reach a terminal raw: C0 controls (newline and tab
/// included), DEL, C1 controls, and the Unicode format characters that reorder or hide text
/// (bidirectional overrides and isolates, zero-width characters, the BOM).
pub fn is_unsafe_char(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}'
        | '\u{7f}'..='\u{9f}'
        | '\u{200b}'..='\u{200f}'
        | '\u{2028}'..='\u{202e}'
        | '\u{2060}'..='\u{2069}'
        | '\u{feff}'
    )
}

/// `text` with every [unsafe character](is_unsafe_char) written as a visible escape: `\n`,
/// `\t`, `\r`, `\e` (ESC), else `\xNN` below U+0100 and `\u{NNNN}` above. Borrowed when there is
/// nothing to escape (the common case).
pub fn terminal(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if !is_unsafe_char(c) {
            out.push(c);
            continue;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{1b}' => out.push_str("\\e"),
            c if (c as u32) < 0x100 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push_str(&format!("\\u{{{:04x}}}", c as u32)),
        }
    }
    Cow::Owned(out)
}

/// [`terminal`] as a `Display` adapter, for `format!("{}", Escaped(name))`.
#[derive(Clone, Copy, Debug)]
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&terminal(self.0))
    }
}

/// Why a value cannot be placed in a suggested shell command.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{shown} contains control characters and cannot be pasted safely into a shell")]
pub struct Unquotable {
    /// The value, escaped for display.
    pub shown: String,
}

/// Characters a POSIX shell gives no meaning to in any position of a word.
fn is_plain_shell_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(c, '_' | '-' | '.' | '/' | ':' | ',' | '+' | '@' | '%' | '=')
}

/// `value` as exactly one shell word: unchanged when every character is plain (`ha-d489f511-9f`,
/// `812`, `/var/log/x.log`), else in single quotes with each `'` written as `'\''`. An error
/// when the value has a control character (see the module documentation). The empty string
/// is `''`.
pub fn shell_word(value: &str) -> Result<Cow<'_, str>, Unquotable> {
    if value.chars().any(is_unsafe_char) {
        return Err(Unquotable {
            shown: terminal(value).into_owned(),
        });
    }
    // `=` is plain except where it would turn the first word into an assignment, and `-` at
    // the start is an option to the program, not to the shell: both stay as they are, since
    // the command's author chose the position.
    if !value.is_empty() && value.chars().all(is_plain_shell_char) {
        return Ok(Cow::Borrowed(value));
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    Ok(Cow::Owned(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_shown_not_sent() {
        assert_eq!(terminal("ovs-vswitchd"), "ovs-vswitchd");
        assert!(matches!(terminal("plain"), Cow::Borrowed(_)));
        assert_eq!(terminal("a\nCRITICAL x"), "a\\nCRITICAL x");
        assert_eq!(
            terminal("\u{1b}]0;pwned\u{7}\u{1b}[2J"),
            "\\e]0;pwned\\x07\\e[2J"
        );
        assert_eq!(terminal("\u{9b}31m"), "\\x9b31m");
        assert_eq!(terminal("abc\u{202e}fed"), "abc\\u{202e}fed");
        assert_eq!(terminal("tab\there"), "tab\\there");
        assert_eq!(terminal("日本 ü"), "日本 ü");
        assert_eq!(Escaped("x\ry").to_string(), "x\\ry");
    }

    #[test]
    fn shell_words_stay_one_word() {
        assert_eq!(shell_word("ha-d489f511-9f").unwrap(), "ha-d489f511-9f");
        assert_eq!(shell_word("812").unwrap(), "812");
        assert_eq!(shell_word("").unwrap(), "''");
        assert_eq!(
            shell_word("z$(touch${IFS}pwned)").unwrap(),
            "'z$(touch${IFS}pwned)'"
        );
        assert_eq!(shell_word("q'$(id)'z").unwrap(), "'q'\\''$(id)'\\''z'");
        assert_eq!(shell_word("a b;c`d`").unwrap(), "'a b;c`d`'");
        assert_eq!(shell_word("*").unwrap(), "'*'");
        assert_eq!(shell_word("~root").unwrap(), "'~root'");
        let err = shell_word("x\ny").unwrap_err();
        assert_eq!(err.shown, "x\\ny");
        assert!(shell_word("\u{1b}[2J").is_err());
    }

    #[test]
    fn quoted_words_survive_a_real_shell() {
        // sh must see each quoted value as one word equal to the value, running nothing.
        let values = [
            "z$(touch${IFS}pwned)",
            "q'$(id)'z",
            "''''",
            "a\\b\"c",
            "!x !! $HOME `id` ; | & > <",
            "日本",
        ];
        for value in values {
            let word = shell_word(value).unwrap();
            let script = format!("printf '%s' {word}");
            let out = std::process::Command::new("sh")
                .args(["-c", &script])
                .output()
                .expect("sh runs");
            assert_eq!(String::from_utf8(out.stdout).unwrap(), value, "{script}");
        }
    }
}
