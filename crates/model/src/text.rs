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
//! Suggested commands are built with [`shell_command!`](crate::shell_command): its template is
//! a string literal whose only placeholders are `{}`, checked when the crate compiles, and every
//! value goes through [`shell_word`]. So a detector cannot paste a raw name into a command by
//! accident, and a value that cannot be quoted yields no command, with the reason.
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
#[error("\"{shown}\" contains control characters and cannot be pasted safely into a shell")]
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

/// A command line suggested to a human: text from nodedoc's own source, with every value in
/// it one shell word. Only [`shell_command!`](crate::shell_command) makes one, so holding a
/// `ShellCommand` means its values were quoted.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ShellCommand(String);

impl ShellCommand {
    /// The command line.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The command line, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for ShellCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A value that can fill a `{}` of [`shell_command!`](crate::shell_command): text is quoted by
/// [`shell_word`]; numbers are plain words already.
pub trait ShellArg {
    /// The value as exactly one shell word.
    fn to_shell_word(&self) -> Result<Cow<'_, str>, Unquotable>;
}

impl ShellArg for str {
    fn to_shell_word(&self) -> Result<Cow<'_, str>, Unquotable> {
        shell_word(self)
    }
}

impl ShellArg for String {
    fn to_shell_word(&self) -> Result<Cow<'_, str>, Unquotable> {
        shell_word(self)
    }
}

impl ShellArg for Cow<'_, str> {
    fn to_shell_word(&self) -> Result<Cow<'_, str>, Unquotable> {
        shell_word(self)
    }
}

impl<T: ShellArg + ?Sized> ShellArg for &T {
    fn to_shell_word(&self) -> Result<Cow<'_, str>, Unquotable> {
        (**self).to_shell_word()
    }
}

/// Several values for one `{}` of [`shell_command!`](crate::shell_command): each becomes one
/// shell word of its own, separated by spaces (`kubectl delete rs -n {} {}` with every name).
pub struct Words<'a, T>(pub &'a [T]);

impl<T: ShellArg> ShellArg for Words<'_, T> {
    fn to_shell_word(&self) -> Result<Cow<'_, str>, Unquotable> {
        let mut out = String::new();
        for (i, value) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(&value.to_shell_word()?);
        }
        Ok(Cow::Owned(out))
    }
}

macro_rules! number_shell_arg {
    ($($t:ty),*) => {$(
        impl ShellArg for $t {
            fn to_shell_word(&self) -> Result<Cow<'_, str>, Unquotable> {
                // Digits and a leading `-`: plain in every position of a word.
                Ok(Cow::Owned(self.to_string()))
            }
        }
    )*};
}
number_shell_arg!(i8, i16, i32, i64, isize, u8, u16, u32, u64, usize);

/// Checks a [`shell_command!`](crate::shell_command) template while the crate compiles: only
/// `{}` placeholders (a named or formatted one would take a value past the quoting), none
/// inside quotes (the value brings its own; `'{}'` would unquote it), no control characters,
/// and as many placeholders as values.
#[doc(hidden)]
pub const fn check_command_template(template: &str, values: usize) {
    let bytes = template.as_bytes();
    let mut i = 0;
    let mut holes = 0;
    // The quote the template is inside: 0, b'\'' or b'"'.
    let mut quote = 0u8;
    while i < bytes.len() {
        let b = bytes[i];
        let next = if i + 1 < bytes.len() { bytes[i + 1] } else { 0 };
        if b < 0x20 || b == 0x7f {
            panic!("shell_command!: the template holds a control character");
        }
        if b == b'{' && next == b'{' || b == b'}' && next == b'}' {
            i += 2;
            continue;
        }
        if b == b'{' {
            if next != b'}' {
                panic!("shell_command!: only `{{}}` placeholders: a named or formatted one would not be quoted");
            }
            if quote != 0 {
                panic!("shell_command!: a `{{}}` inside quotes: the value is quoted already, put it outside");
            }
            holes += 1;
            i += 2;
            continue;
        }
        if b == b'}' {
            panic!("shell_command!: a lone `}}`: write `}}}}`");
        }
        if quote == 0 && (b == b'\'' || b == b'"') {
            quote = b;
        } else if quote != 0 && b == quote {
            quote = 0;
        } else if b == b'\\' && quote != b'\'' {
            // Escapes the next character (outside quotes and inside double quotes).
            i += 1;
        }
        i += 1;
    }
    if quote != 0 {
        panic!("shell_command!: an unterminated quote in the template");
    }
    if holes != values {
        panic!("shell_command!: the number of `{{}}` differs from the number of values");
    }
}

/// Fills a checked template; see [`shell_command!`](crate::shell_command).
#[doc(hidden)]
pub fn build_command(
    template: &'static str,
    values: &[&dyn ShellArg],
) -> Result<ShellCommand, Unquotable> {
    let mut out = String::with_capacity(template.len() + 16);
    let mut values = values.iter();
    let mut rest = template;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if tail.starts_with("{}") {
            let value = values
                .next()
                .expect("placeholders were counted at compile time");
            out.push_str(&value.to_shell_word()?);
        } else {
            // `{{` or `}}`.
            out.push_str(&tail[..1]);
        }
        rest = &tail[2..];
    }
    out.push_str(rest);
    Ok(ShellCommand(out))
}

/// A [`ShellCommand`] from a template and values: `shell_command!("ovs-vsctl get Interface {}
/// external_ids", name)`. The template is a string literal whose only placeholders are `{}`
/// (`{{`/`}}` for braces), outside any quotes; this is checked when the crate compiles. Each
/// value is a [`ShellArg`] and becomes one [`shell_word`]. The result is an
/// `Err(`[`Unquotable`]`)` when a value has control characters: suggest no command then, and
/// say why.
///
/// A value inside a `grep` pattern must also be literal for grep: use `grep -F --` (or `-e`).
///
/// ```
/// let name = "z$(touch${IFS}pwned)";
/// let command = nodedoc_model::shell_command!("ip link show dev {}", name).unwrap();
/// assert_eq!(command.as_str(), "ip link show dev 'z$(touch${IFS}pwned)'");
/// ```
///
/// A named placeholder would take the raw value: it does not compile.
///
/// ```compile_fail
/// let name = "z$(touch${IFS}pwned)";
/// let _ = nodedoc_model::shell_command!("ip link show dev {name}");
/// ```
///
/// Nor does a placeholder inside quotes, which would undo the value's own quoting.
///
/// ```compile_fail
/// let name = "q'$(id)'z";
/// let _ = nodedoc_model::shell_command!("dmesg | grep 'waiting for {} to'", name);
/// ```
#[macro_export]
macro_rules! shell_command {
    ($template:literal $(, $value:expr)* $(,)?) => {{
        const _: () = $crate::text::check_command_template(
            $template,
            <[&str]>::len(&[$(stringify!($value)),*]),
        );
        $crate::text::build_command($template, &[$(&$value as &dyn $crate::text::ShellArg),*])
    }};
}

/// Writes `value` as pretty JSON that is exact and also safe on a terminal: serde_json already
/// writes C0 controls as escapes; this writes the other [unsafe characters](is_unsafe_char)
/// (DEL, C1 controls such as the one-byte CSI, bidirectional overrides) as `\uXXXX` too. A
/// JSON reader gets the same strings back.
pub fn write_json_pretty<W, T>(writer: W, value: &T) -> serde_json::Result<()>
where
    W: std::io::Write,
    T: ?Sized + serde::Serialize,
{
    let mut serializer = serde_json::Serializer::with_formatter(
        writer,
        TerminalSafe(serde_json::ser::PrettyFormatter::new()),
    );
    value.serialize(&mut serializer)
}

/// [`write_json_pretty`] on one line.
pub fn write_json<W, T>(writer: W, value: &T) -> serde_json::Result<()>
where
    W: std::io::Write,
    T: ?Sized + serde::Serialize,
{
    let mut serializer = serde_json::Serializer::with_formatter(
        writer,
        TerminalSafe(serde_json::ser::CompactFormatter),
    );
    value.serialize(&mut serializer)
}

/// A JSON formatter that escapes [unsafe characters](is_unsafe_char) inside strings, around
/// another formatter (pretty or compact).
struct TerminalSafe<F>(F);

impl<F: serde_json::ser::Formatter> serde_json::ser::Formatter for TerminalSafe<F> {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        // serde_json escaped C0 already; what is left to escape is DEL and above.
        if fragment.bytes().all(|b| b < 0x7f) {
            return writer.write_all(fragment.as_bytes());
        }
        // Every unsafe character is in the Basic Multilingual Plane: one `\uXXXX` each.
        let mut rest = fragment;
        while let Some((i, c)) = rest.char_indices().find(|(_, c)| is_unsafe_char(*c)) {
            writer.write_all(&rest.as_bytes()[..i])?;
            write!(writer, "\\u{:04x}", c as u32)?;
            rest = &rest[i + c.len_utf8()..];
        }
        writer.write_all(rest.as_bytes())
    }

    fn begin_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn end_object_key<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_object_key(w)
    }
    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_object_value(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_one_by_one() {
        let names = ["web-1", "it's", "$(id)"];
        let command =
            crate::shell_command!("kubectl delete rs -n {} {}", "shop", Words(&names)).unwrap();
        assert_eq!(
            command.as_str(),
            "kubectl delete rs -n shop web-1 'it'\\''s' '$(id)'"
        );
        assert!(crate::shell_command!("echo {}", Words(&["a\u{1b}[2J"])).is_err());
    }

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

    #[test]
    fn commands_quote_every_value_and_refuse_control_characters() {
        let pid = 812;
        let name = "z$(touch${IFS}pwned)";
        assert_eq!(
            crate::shell_command!("ovs-vsctl get Interface {} external_ids", name)
                .unwrap()
                .as_str(),
            "ovs-vsctl get Interface 'z$(touch${IFS}pwned)' external_ids"
        );
        assert_eq!(
            crate::shell_command!("cat /proc/{}/stack; ls -l /proc/{}/fd", pid, pid)
                .unwrap()
                .to_string(),
            "cat /proc/812/stack; ls -l /proc/812/fd"
        );
        assert_eq!(
            crate::shell_command!("awk '{{print $1}}' /proc/{}/stat", pid)
                .unwrap()
                .as_str(),
            "awk '{print $1}' /proc/812/stat"
        );
        assert_eq!(
            crate::shell_command!("uname -r").unwrap().as_str(),
            "uname -r"
        );
        let owned = String::from("q'x");
        assert_eq!(
            crate::shell_command!("grep -F -- {} {}", owned, &owned)
                .unwrap()
                .as_str(),
            "grep -F -- 'q'\\''x' 'q'\\''x'"
        );
        let err = crate::shell_command!("kill {} {}", pid, "x\u{1b}[2J").unwrap_err();
        assert_eq!(err.shown, "x\\e[2J");
        assert_eq!(
            err.to_string(),
            "\"x\\e[2J\" contains control characters and cannot be pasted safely into a shell"
        );
    }

    #[test]
    fn command_templates_are_checked() {
        // The const checks, run here at run time to see each refusal.
        let refused = |template: &'static str, values: usize| {
            std::panic::catch_unwind(|| check_command_template(template, values)).is_err()
        };
        assert!(!refused("ls /proc/{}/fd", 1));
        assert!(!refused("tr '\\0' ' ' < /proc/{}/cmdline", 1));
        assert!(!refused("grep -c 'Max open files' /proc/{}/limits", 1));
        assert!(!refused("echo \\' {}", 1));
        assert!(refused("ls /proc/{pid}/fd", 1), "named placeholder");
        assert!(refused("ls /proc/{:>5}/fd", 1), "formatted placeholder");
        assert!(refused("grep '{}' x", 1), "inside single quotes");
        assert!(refused("grep \"a {}\" x", 1), "inside double quotes");
        assert!(refused("ls {} {}", 1), "two placeholders, one value");
        assert!(refused("ls", 1), "a value without a placeholder");
        assert!(refused("ls }", 0), "lone brace");
        assert!(refused("echo 'x", 0), "unterminated quote");
        assert!(refused("ls\n{}", 1), "control character");
    }

    #[test]
    fn json_stays_exact_and_terminal_safe() {
        let hostile = "a\u{1b}[2J\u{7}\r\nCRITICAL \u{9b}31m \u{202e}x\u{7f}\"\\ 日本";
        let value = serde_json::json!({ hostile: [hostile, 1] });
        let mut out = Vec::new();
        write_json_pretty(&mut out, &value).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            !text.chars().any(|c| is_unsafe_char(c) && c != '\n'),
            "{text:?}"
        );
        assert!(text.contains("\\u009b31m \\u202ex\\u007f"), "{text}");
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, value);
        let mut compact = Vec::new();
        write_json(&mut compact, &value).unwrap();
        let compact = String::from_utf8(compact).unwrap();
        assert!(!compact.chars().any(is_unsafe_char), "{compact:?}");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&compact).unwrap(),
            value
        );
        // Pretty, as serde_json's own.
        assert_eq!(
            {
                let mut plain = Vec::new();
                write_json_pretty(&mut plain, &serde_json::json!({"a": [1, {"b": null}]})).unwrap();
                String::from_utf8(plain).unwrap()
            },
            serde_json::to_string_pretty(&serde_json::json!({"a": [1, {"b": null}]})).unwrap()
        );
    }
}
