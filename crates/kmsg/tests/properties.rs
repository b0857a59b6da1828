//! Whatever bytes the parsers are given, they return; and what the kernel escapes, they
//! unescape back.

use nodedoc_kmsg::{parse_dmesg_text, parse_kmsg_dump, parse_kmsg_record};
use proptest::prelude::*;

/// Escapes a message the way the kernel's `msg_add_ext_text` does for `/dev/kmsg`.
fn kernel_escape(message: &[u8]) -> Vec<u8> {
    let mut escaped = Vec::new();
    for &byte in message {
        if !(b' '..127).contains(&byte) || byte == b'\\' {
            escaped.extend_from_slice(format!("\\x{byte:02x}").as_bytes());
        } else {
            escaped.push(byte);
        }
    }
    escaped
}

/// Bytes that look like records often enough to reach past the prefix checks.
fn kmsg_like() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..256),
        "[0-9]{0,22},[0-9]{0,22},[0-9]{0,22},[-c+]?(,[a-z=0-9]*)?;[ -~\\\\x]{0,64}(\n [A-Z]{0,8}=?[ -~]{0,16}){0,3}\n?"
            .prop_map(String::into_bytes),
        "([0-9,;\\\\xX\n =a-f]|\u{e9}|\u{ff}){0,96}".prop_map(String::into_bytes),
    ]
}

fn dmesg_like() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "(<-?[0-9]{0,22}>?)?(\\[[ 0-9.TC]{0,24}\\]? ?){0,2}[ -~]{0,40}(\n[ \t]{0,4}[ -~]{0,20}){0,3}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

    #[test]
    fn kmsg_record_parser_never_panics(raw in kmsg_like()) {
        let _ = parse_kmsg_record(&raw);
    }

    #[test]
    fn kmsg_dump_parser_never_panics(raw in kmsg_like(), since in any::<Option<u64>>()) {
        let log = parse_kmsg_dump(&raw, since);
        prop_assert!(since.is_none() || log.records.iter().all(|r| Some(r.monotonic_us) >= since));
    }

    #[test]
    fn dmesg_parser_never_panics(text in dmesg_like(), since in any::<Option<u64>>()) {
        let log = parse_dmesg_text(&text, since);
        let lines = text.lines().filter(|line| !line.trim().is_empty()).count() as u64;
        prop_assert_eq!(log.records.len() as u64 + log.malformed + log.skipped_before_window, lines);
    }

    #[test]
    fn escaped_messages_round_trip(
        message in proptest::collection::vec(any::<u8>(), 0..200),
        priority in 0u64..2048,
        sequence in any::<u64>(),
        usec in any::<u64>(),
        value in "[ -~\u{e9}\n]{0,20}",
    ) {
        let mut raw = format!("{priority},{sequence},{usec},-;").into_bytes();
        raw.extend(kernel_escape(&message));
        raw.extend_from_slice(b"\n KEY=");
        raw.extend(kernel_escape(value.as_bytes()));
        raw.push(b'\n');
        let record = parse_kmsg_record(&raw).unwrap();
        prop_assert_eq!(record.message, String::from_utf8_lossy(&message).into_owned());
        prop_assert_eq!(u64::from(record.facility) * 8 + u64::from(record.level), priority);
        prop_assert_eq!(record.sequence, sequence);
        prop_assert_eq!(record.monotonic_us, usec);
        prop_assert_eq!(record.dictionary, vec![("KEY".to_string(), value)]);
    }
}
