//! One `/dev/kmsg` record: `prio,seq,usec,flags[,more];message\n` plus ` KEY=value\n` lines.

use std::fmt;

use nodedoc_model::KmsgRecord;

/// How much of a bad record a [`ParseError`] keeps: enough to find it in a dump, little
/// enough that a garbage megabyte does not end up in a report.
const RECORD_EXCERPT_BYTES: usize = 48;
/// How much of a bad prefix field a [`ParseProblem`] keeps.
const FIELD_EXCERPT_BYTES: usize = 24;

/// The largest priority the kernel can emit: its facility field is a `u8` (`prio >> 3`)
/// and its level field has three bits.
const MAX_PRIORITY: u64 = (u8::MAX as u64) << 3 | 7;

/// A field of the `prio,seq,usec,flags` prefix of a `/dev/kmsg` record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrefixField {
    /// `prio`: `facility * 8 + level`.
    Priority,
    /// `seq`: the record's sequence number.
    Sequence,
    /// `usec`: microseconds since boot.
    Timestamp,
    /// `flags`: `-`, or `c`/`+` for fragments of a continued line.
    Flags,
}

impl fmt::Display for PrefixField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PrefixField::Priority => "priority",
            PrefixField::Sequence => "sequence number",
            PrefixField::Timestamp => "timestamp",
            PrefixField::Flags => "flags",
        })
    }
}

/// What was wrong with a record that [`parse_kmsg_record`] rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseProblem {
    /// The record has no bytes at all.
    #[error("the record is empty")]
    Empty,
    /// No `;` ends the prefix on the record's first line (a truncated record, or not
    /// `/dev/kmsg` data at all).
    #[error("no `;` ends the `prio,seq,usec,flags` prefix")]
    UnterminatedPrefix,
    /// The prefix ends before this field.
    #[error("the prefix has no {0} field")]
    MissingField(PrefixField),
    /// A numeric field holds something other than decimal digits (`value` is an excerpt).
    #[error("the {field} field {value:?} is not a decimal number")]
    NotANumber {
        /// Which field.
        field: PrefixField,
        /// The start of the field's text.
        value: String,
    },
    /// A numeric field is too large: beyond `u64`, or a priority whose facility does not
    /// fit the kernel's 8 bits (`value` is an excerpt).
    #[error("the {field} field {value:?} is out of range")]
    OutOfRange {
        /// Which field.
        field: PrefixField,
        /// The start of the field's text.
        value: String,
    },
}

/// A `/dev/kmsg` record that could not be parsed, with an excerpt of it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed /dev/kmsg record: {problem} (record begins {excerpt:?})")]
pub struct ParseError {
    problem: ParseProblem,
    excerpt: String,
}

impl ParseError {
    fn new(problem: ParseProblem, raw: &[u8]) -> ParseError {
        ParseError {
            problem,
            excerpt: excerpt(raw, RECORD_EXCERPT_BYTES),
        }
    }

    /// What was wrong.
    pub fn problem(&self) -> &ParseProblem {
        &self.problem
    }

    /// The first bytes of the record (invalid UTF-8 replaced), for finding it in a dump.
    pub fn excerpt(&self) -> &str {
        &self.excerpt
    }
}

/// Parses one record as a single `read(2)` of `/dev/kmsg` returns it.
///
/// The format (Documentation/ABI/testing/dev-kmsg):
///
/// ```text
/// 6,1234,5678901234,-;unregister_netdevice: waiting for cli-veth to become free. Usage count = 1
///  SUBSYSTEM=net
///  DEVICE=n3
/// ```
///
/// `prio` is `facility * 8 + level`; of the fields after `flags`, `caller=T123` (from
/// `CONFIG_PRINTK_CALLER`) becomes [`KmsgRecord::caller`] and the others are ignored, as
/// the ABI asks. The flags `c` (first fragment of
/// a continued line) and `+` (a later fragment), both from kernels before 4.9, set
/// [`KmsgRecord::continuation`]. The kernel escapes bytes outside printable ASCII, and `\`
/// itself, as `\xNN`; those are undone here, so multi-byte UTF-8 comes back whole and
/// anything that is still not UTF-8 is replaced with U+FFFD. A `\` not followed by `x` and
/// two hex digits is kept as it is. The trailing newline is optional, so a record cut short
/// after its `;` still parses (with the message it has).
///
/// Dictionary lines (`SUBSYSTEM=net`, `DEVICE=n3`) become
/// [`KmsgRecord::dictionary`] in order; values are unescaped like the message, lines
/// without `=` are skipped.
pub fn parse_kmsg_record(raw: &[u8]) -> Result<KmsgRecord, ParseError> {
    let fail = |problem| ParseError::new(problem, raw);
    if raw.is_empty() {
        return Err(fail(ParseProblem::Empty));
    }
    // Only the first line can hold the prefix; a `;` in a dictionary value must not
    // be taken for its end.
    let first_line_end = raw.iter().position(|&b| b == b'\n').unwrap_or(raw.len());
    let first_line = &raw[..first_line_end];
    let semicolon = first_line
        .iter()
        .position(|&b| b == b';')
        .ok_or_else(|| fail(ParseProblem::UnterminatedPrefix))?;

    let mut fields = first_line[..semicolon].split(|&b| b == b',');
    let mut next_number = |field| match fields.next() {
        None => Err(ParseProblem::MissingField(field)),
        Some(text) => parse_decimal(text, field),
    };
    let priority = next_number(PrefixField::Priority).map_err(fail)?;
    let sequence = next_number(PrefixField::Sequence).map_err(fail)?;
    let monotonic_us = next_number(PrefixField::Timestamp).map_err(fail)?;
    let flags = fields
        .next()
        .ok_or_else(|| fail(ParseProblem::MissingField(PrefixField::Flags)))?;
    // Fields after the flags are for readers that know them; `caller=T123` is the one
    // nodedoc uses. One that does not parse is ignored like any unknown field.
    let caller = fields
        .filter_map(|field| field.strip_prefix(b"caller="))
        .find_map(|id| std::str::from_utf8(id).ok()?.parse().ok());

    if priority > MAX_PRIORITY {
        return Err(fail(ParseProblem::OutOfRange {
            field: PrefixField::Priority,
            value: priority.to_string(),
        }));
    }
    // Both casts are exact: MAX_PRIORITY >> 3 is u8::MAX and the level has three bits.
    let facility = (priority >> 3) as u8;
    let level = (priority & 7) as u8;

    Ok(KmsgRecord {
        level,
        facility,
        sequence,
        monotonic_us,
        continuation: flags.iter().any(|&b| b == b'c' || b == b'+'),
        message: unescape(&first_line[semicolon + 1..]),
        dictionary: parse_dictionary(&raw[first_line_end..]),
        caller,
        wall_clock_ms: None,
    })
}

/// Parses the ` KEY=value` lines that follow the message line (`rest` starts at its `\n`).
fn parse_dictionary(rest: &[u8]) -> Vec<(String, String)> {
    rest.split(|&b| b == b'\n')
        .filter_map(|line| line.strip_prefix(b" "))
        .filter_map(|entry| {
            let equals = entry.iter().position(|&b| b == b'=')?;
            let key = &entry[..equals];
            if key.is_empty() {
                return None;
            }
            // Keys are plain `[A-Za-z0-9._-]`; only values carry kernel escapes.
            Some((
                String::from_utf8_lossy(key).into_owned(),
                unescape(&entry[equals + 1..]),
            ))
        })
        .collect()
}

/// Parses an unsigned decimal field. `u64::from_str` would also take a leading `+`, which
/// the kernel never writes, so digits are checked by hand.
fn parse_decimal(text: &[u8], field: PrefixField) -> Result<u64, ParseProblem> {
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return Err(ParseProblem::NotANumber {
            field,
            value: excerpt(text, FIELD_EXCERPT_BYTES),
        });
    }
    text.iter()
        .try_fold(0u64, |value, &digit| {
            value.checked_mul(10)?.checked_add(u64::from(digit - b'0'))
        })
        .ok_or_else(|| ParseProblem::OutOfRange {
            field,
            value: excerpt(text, FIELD_EXCERPT_BYTES),
        })
}

/// Undoes the kernel's `\xNN` escaping and decodes the bytes as UTF-8, lossily.
pub(crate) fn unescape(escaped: &[u8]) -> String {
    if !escaped.contains(&b'\\') {
        return String::from_utf8_lossy(escaped).into_owned();
    }
    let mut bytes = Vec::with_capacity(escaped.len());
    let mut i = 0;
    while i < escaped.len() {
        if let [b'\\', b'x', high, low, ..] = escaped[i..] {
            if let (Some(high), Some(low)) = (hex_value(high), hex_value(low)) {
                bytes.push(high << 4 | low);
                i += 4;
                continue;
            }
        }
        bytes.push(escaped[i]);
        i += 1;
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// The first `limit` bytes of `bytes` as text; cutting a UTF-8 sequence in half only costs
/// a replacement character.
fn excerpt(bytes: &[u8], limit: usize) -> String {
    let cut = &bytes[..bytes.len().min(limit)];
    let mut text = String::from_utf8_lossy(cut).into_owned();
    if bytes.len() > limit {
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &[u8] =
        b"6,1234,5678901234,-;unregister_netdevice: waiting for cli-veth to become free. Usage count = 1\n";
    const HUNG_TASK: &[u8] =
        b"3,812,243000123,-;INFO: task s6-sync:362091 blocked for more than 120 seconds.\n";
    const WITH_DICTIONARY: &[u8] = b"0,5123,987654321,-;unregister_netdevice: waiting for n3 to become free. Usage count = 2\n SUBSYSTEM=net\n DEVICE=n3\n";

    fn problem(raw: &[u8]) -> ParseProblem {
        parse_kmsg_record(raw).unwrap_err().problem().clone()
    }

    #[test]
    fn seed_record() {
        let record = parse_kmsg_record(SEED).unwrap();
        assert_eq!(
            record,
            KmsgRecord {
                level: 6,
                facility: 0,
                sequence: 1234,
                monotonic_us: 5_678_901_234,
                continuation: false,
                message:
                    "unregister_netdevice: waiting for cli-veth to become free. Usage count = 1"
                        .to_string(),
                dictionary: vec![],
                caller: None,
                wall_clock_ms: None,
            }
        );
    }

    #[test]
    fn hung_task_record() {
        let record = parse_kmsg_record(HUNG_TASK).unwrap();
        assert_eq!((record.level, record.facility), (3, 0));
        assert_eq!(record.sequence, 812);
        assert_eq!(record.monotonic_us, 243_000_123);
        assert_eq!(
            record.message,
            "INFO: task s6-sync:362091 blocked for more than 120 seconds."
        );
    }

    #[test]
    fn dictionary_lines() {
        let record = parse_kmsg_record(WITH_DICTIONARY).unwrap();
        assert_eq!(record.level, 0);
        assert_eq!(
            record.message,
            "unregister_netdevice: waiting for n3 to become free. Usage count = 2"
        );
        assert_eq!(
            record.dictionary,
            vec![
                ("SUBSYSTEM".to_string(), "net".to_string()),
                ("DEVICE".to_string(), "n3".to_string()),
            ]
        );
    }

    #[test]
    fn dictionary_as_seen_on_a_real_kernel() {
        let raw = b"5,329,1277184,-;virtio_blk virtio1: [vda] new size: 536870912 512-byte logical blocks (275 GB/256 GiB)\n SUBSYSTEM=virtio\n DEVICE=+virtio:virtio1\n";
        let record = parse_kmsg_record(raw).unwrap();
        assert_eq!(
            record.dictionary,
            vec![
                ("SUBSYSTEM".to_string(), "virtio".to_string()),
                ("DEVICE".to_string(), "+virtio:virtio1".to_string()),
            ]
        );
    }

    #[test]
    fn dictionary_values_are_unescaped_and_odd_lines_skipped() {
        let raw = b"6,1,2,-;m\n NOEQUALS\n =novalue\n KEY=a\\x3bb=c\nnot-indented=1\n\n";
        let record = parse_kmsg_record(raw).unwrap();
        assert_eq!(
            record.dictionary,
            vec![("KEY".to_string(), "a;b=c".to_string())]
        );
    }

    #[test]
    fn semicolon_in_dictionary_does_not_end_the_prefix() {
        assert_eq!(
            problem(b"6,1,2,-\n KEY=a;b\n"),
            ParseProblem::UnterminatedPrefix
        );
    }

    #[test]
    fn message_keeps_semicolons_and_commas() {
        let record = parse_kmsg_record(b"4,77,1000,-;a;b,c; d,,e;\n").expect("a valid record");
        assert_eq!(record.message, "a;b,c; d,,e;");
        assert_eq!(
            (record.level, record.sequence, record.monotonic_us),
            (4, 77, 1000)
        );
    }

    #[test]
    fn facility_and_level_split() {
        // What the kernel stored for `<0>` and `<191>` written to /dev/kmsg.
        let user = parse_kmsg_record(b"8,1,2,-;x\n").unwrap();
        assert_eq!((user.facility, user.level), (1, 0));
        let local7 = parse_kmsg_record(b"191,1,2,-;x\n").unwrap();
        assert_eq!((local7.facility, local7.level), (23, 7));
        let widest = parse_kmsg_record(b"2047,1,2,-;x\n").unwrap();
        assert_eq!((widest.facility, widest.level), (255, 7));
    }

    #[test]
    fn continuation_flags() {
        assert!(!parse_kmsg_record(b"6,1,2,-;x").unwrap().continuation);
        assert!(parse_kmsg_record(b"6,1,2,c;x").unwrap().continuation);
        assert!(parse_kmsg_record(b"6,1,2,+;x").unwrap().continuation);
        // An empty flags field is odd but carries no flag.
        assert!(!parse_kmsg_record(b"6,1,2,;x").unwrap().continuation);
    }

    #[test]
    fn extra_prefix_fields_are_ignored_but_the_caller_is_kept() {
        let record = parse_kmsg_record(b"6,10,20,-,caller=T1234,future;hello\n").unwrap();
        assert_eq!(record.message, "hello");
        assert_eq!(record.sequence, 10);
        assert_eq!(
            record.caller,
            Some(nodedoc_model::PrintkCaller::Thread(1234))
        );
        let cpu = parse_kmsg_record(b"6,10,20,-,future,caller=C3;x\n").unwrap();
        assert_eq!(cpu.caller, Some(nodedoc_model::PrintkCaller::Cpu(3)));
        for odd in [
            &b"6,1,2,-,caller=;x"[..],
            b"6,1,2,-,caller=X9;x",
            b"6,1,2,-,caller=T;x",
            b"6,1,2,-;x",
        ] {
            assert_eq!(parse_kmsg_record(odd).unwrap().caller, None, "{odd:?}");
        }
    }

    #[test]
    fn escapes() {
        let cases: &[(&[u8], &str)] = &[
            // Seen on a real kernel: a leading tab.
            (
                b"6,90,153010,-;rcu: \\x09RCU restricting CPUs\n",
                "rcu: \tRCU restricting CPUs",
            ),
            // Backslash itself, newline, and uppercase hex.
            (b"6,1,2,-;a\\x5cb\\x0Ac\n", "a\\b\nc"),
            // Multi-byte UTF-8 escaped byte by byte comes back whole.
            (b"6,1,2,-;caf\\xc3\\xa9\n", "café"),
            // Not UTF-8 once unescaped: replaced, not dropped, not a panic.
            (b"6,1,2,-;bad \\xff byte\n", "bad \u{fffd} byte"),
            // Escapes that are not: kept as written.
            (b"6,1,2,-;lone \\x\n", "lone \\x"),
            (b"6,1,2,-;half \\x4\n", "half \\x4"),
            (b"6,1,2,-;not hex \\xzz\n", "not hex \\xzz"),
            (b"6,1,2,-;trailing \\\n", "trailing \\"),
            (b"6,1,2,-;other \\n escape\n", "other \\n escape"),
            (b"6,1,2,-;\\x5cx41\n", "\\x41"),
        ];
        for (raw, message) in cases {
            let record = parse_kmsg_record(raw)
                .unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(raw)));
            assert_eq!(
                record.message,
                *message,
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn raw_non_utf8_is_replaced() {
        let record = parse_kmsg_record(b"6,1,2,-;\xff\xfe ok\n").unwrap();
        assert_eq!(record.message, "\u{fffd}\u{fffd} ok");
    }

    #[test]
    fn every_truncation_of_a_real_record() {
        for raw in [SEED, HUNG_TASK, WITH_DICTIONARY] {
            let full = parse_kmsg_record(raw).unwrap();
            let semicolon = raw.iter().position(|&b| b == b';').unwrap();
            for cut in 0..=raw.len() {
                let result = parse_kmsg_record(&raw[..cut]);
                if cut <= semicolon {
                    assert!(result.is_err(), "cut at {cut} parsed: {result:?}");
                } else {
                    let record = result.unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
                    assert_eq!(record.sequence, full.sequence);
                    assert!(
                        full.message.starts_with(&record.message),
                        "cut at {cut}: {:?}",
                        record.message
                    );
                }
            }
        }
    }

    #[test]
    fn truncated_prefixes_say_what_is_missing() {
        assert_eq!(problem(b""), ParseProblem::Empty);
        assert_eq!(
            problem(b"6,1234,5678901234,-"),
            ParseProblem::UnterminatedPrefix
        );
        assert_eq!(
            problem(b"6;x"),
            ParseProblem::MissingField(PrefixField::Sequence)
        );
        assert_eq!(
            problem(b"6,1;x"),
            ParseProblem::MissingField(PrefixField::Timestamp)
        );
        assert_eq!(
            problem(b"6,1,2;x"),
            ParseProblem::MissingField(PrefixField::Flags)
        );
        assert_eq!(
            problem(b";x"),
            ParseProblem::NotANumber {
                field: PrefixField::Priority,
                value: String::new()
            }
        );
    }

    #[test]
    fn non_numeric_fields() {
        assert_eq!(
            problem(b"six,1,2,-;x"),
            ParseProblem::NotANumber {
                field: PrefixField::Priority,
                value: "six".to_string()
            }
        );
        assert_eq!(
            problem(b"6,+1,2,-;x"),
            ParseProblem::NotANumber {
                field: PrefixField::Sequence,
                value: "+1".to_string()
            }
        );
        assert_eq!(
            problem(b"6,1,-2,-;x"),
            ParseProblem::NotANumber {
                field: PrefixField::Timestamp,
                value: "-2".to_string()
            }
        );
        assert!(matches!(
            problem(b"6, 1,2,-;x"),
            ParseProblem::NotANumber { .. }
        ));
    }

    #[test]
    fn huge_numbers() {
        let max = parse_kmsg_record(b"6,18446744073709551615,18446744073709551615,-;x").unwrap();
        assert_eq!((max.sequence, max.monotonic_us), (u64::MAX, u64::MAX));
        assert_eq!(
            problem(b"6,18446744073709551616,1,-;x"),
            ParseProblem::OutOfRange {
                field: PrefixField::Sequence,
                value: "18446744073709551616".to_string()
            }
        );
        assert_eq!(
            problem(b"2048,1,2,-;x"),
            ParseProblem::OutOfRange {
                field: PrefixField::Priority,
                value: "2048".to_string()
            }
        );
        let long = format!("6,1,{},-;x", "9".repeat(10_000));
        match problem(long.as_bytes()) {
            ParseProblem::OutOfRange { field, value } => {
                assert_eq!(field, PrefixField::Timestamp);
                assert!(
                    value.len() < 40,
                    "excerpt not bounded: {} bytes",
                    value.len()
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn garbage() {
        for raw in [
            &b"\0\0\0\0"[..],
            b"\n",
            b";",
            b",,,;",
            b"hello world",
            b"<6>[   12.345678] a dmesg line, not kmsg",
            b"\xff\xfe\xfd;\xff",
            b"6,1,2\n,-;x",
        ] {
            assert!(parse_kmsg_record(raw).is_err(), "{raw:?} parsed");
        }
    }

    #[test]
    fn error_message_has_problem_and_bounded_excerpt() {
        let raw = format!("x,1,2,-;{}", "y".repeat(1000));
        let error = parse_kmsg_record(raw.as_bytes()).unwrap_err();
        let text = error.to_string();
        assert!(text.contains("priority field \"x\""), "{text}");
        assert!(text.contains("x,1,2,-;yyy"), "{text}");
        assert!(text.len() < 200, "{text}");
        assert!(error.excerpt().ends_with('…'));
    }

    #[test]
    fn excerpt_cuts_utf8_safely() {
        let raw = format!("x;{}", "é".repeat(100));
        let error = parse_kmsg_record(raw.as_bytes()).unwrap_err();
        assert!(error.excerpt().starts_with("x;é"));
    }
}
