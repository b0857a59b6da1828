//! Property tests of the parsers that read services' logs given with `--log` (untrusted text from
//! a sick node): any text parses without a panic, and what is kept is bounded.

use nodedoc_collect::service_log;
use nodedoc_model::LogFormat;
use proptest::prelude::*;

/// Lines that look like what containerd, dockerd and kubelet write, with hostile bits mixed in:
/// unbalanced quotes, escapes, multi-byte characters, control characters and stray `=`.
fn line() -> impl Strategy<Value = String> {
    let word = "[a-zA-Z0-9_.:/\\-]{0,12}";
    let quoted = "\"([^\"\\\\]|\\\\.|é|\u{1b}\\[2J|\\\\){0,20}\"?";
    prop_oneof![
        // logfmt
        proptest::collection::vec(
            (
                word,
                prop_oneof![
                    Just(String::new()),
                    word.prop_map(String::from),
                    quoted.prop_map(String::from)
                ]
            ),
            0..8,
        )
        .prop_map(|pairs| pairs
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")),
        // klog: E0102 15:04:05.123456    1234 file.go:12] message
        (
            "[IWEF]",
            0u32..1400,
            0u32..99,
            0u32..99,
            0u32..99,
            0u32..9999999,
            0u32..99999,
            word,
            ".{0,30}"
        )
            .prop_map(|(l, md, h, m, s, us, pid, file, msg)| format!(
                "{l}{md:04} {h:02}:{m:02}:{s:02}.{us:06} {pid:7} {file}.go:{md}] {msg}"
            )),
        // syslog / journalctl prefixes around anything
        ("[A-Z][a-z]{2}", 0u32..40, word, ".{0,40}").prop_map(|(mon, d, prog, rest)| format!(
            "{mon} {d:2} 10:11:12 node {prog}[{d}]: {rest}"
        )),
        ".{0,80}",
    ]
}

proptest! {
    #[test]
    fn any_service_log_parses_and_stays_bounded(lines in proptest::collection::vec(line(), 0..60)) {
        let text = lines.join("\n");
        let log = service_log::parse(&text, "/var/log/containerd.log");
        prop_assert!(log.entries.len() as u64 <= log.entries_read);
        let text_lines = text.lines().count() as u64;
        prop_assert_eq!(
            log.entries_read,
            text.lines().filter(|l| !l.trim().is_empty()).count() as u64
        );
        for entry in &log.entries {
            prop_assert!(entry.line >= 1 && entry.line <= text_lines);
        }
        for line in text.lines() {
            let (format, entry) = service_log::parse_line(line);
            // Only a structured line has fields.
            if format == LogFormat::Plain {
                prop_assert!(entry.fields.is_empty());
            }
        }
    }

    #[test]
    fn rfc3339_of_anything_is_a_time_or_nothing(text in ".{0,40}") {
        let _ = service_log::rfc3339_ms(&text);
    }
}
