//! Property tests of the stream splitter and decoder: arbitrary input never panics, and a
//! valid message stream decodes to the same messages however it is cut into reads.

use nodedoc_ovsdb::{Datum, FrameError, JsonStreamSplitter, Message, Row, TableUpdates2};
use proptest::prelude::*;
use serde_json::{json, Value};

fn json_value() -> impl Strategy<Value = Value> {
    // Strings from the full Unicode range plus a set rich in JSON syntax, so quotes,
    // backslashes and brackets inside strings are common.
    let tricky = prop::sample::select(vec![
        "\"", "\\", "{", "}", "[", "]", "\\\"", "\"}", "\\\\\"", "é", "\u{2028}", "\0",
    ])
    .prop_map(str::to_owned);
    let string = prop_oneof![any::<String>(), tricky];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1e9f64..1e9).prop_map(Value::from),
        string.clone().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(string.clone(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn message() -> impl Strategy<Value = Message> {
    let method = prop_oneof![
        Just("echo".to_owned()),
        Just("update2".to_owned()),
        any::<String>()
    ];
    let id = prop_oneof![
        any::<u64>().prop_map(Value::from),
        any::<String>().prop_map(Value::from)
    ];
    prop_oneof![
        (id.clone(), method.clone(), json_value())
            .prop_map(|(id, method, params)| { Message::Request { id, method, params } }),
        (method, json_value())
            .prop_map(|(method, params)| Message::Notification { method, params }),
        (id, json_value(), json_value()).prop_map(|(id, result, error)| Message::Response {
            id,
            result,
            error
        }),
    ]
}

/// Feeds `chunks` to a splitter and decodes every message; stops at the first error.
fn decode_stream<'a>(
    chunks: impl IntoIterator<Item = &'a [u8]>,
    max: usize,
) -> (Vec<Message>, Option<String>) {
    let mut splitter = JsonStreamSplitter::new(max);
    let mut out = Vec::new();
    for chunk in chunks {
        splitter.push(chunk);
        loop {
            match splitter.next_message() {
                Ok(Some(bytes)) => match Message::decode(&bytes) {
                    Ok(m) => out.push(m),
                    Err(e) => return (out, Some(e.to_string())),
                },
                Ok(None) => break,
                Err(e) => return (out, Some(e.to_string())),
            }
        }
    }
    let end = splitter.finish().err().map(|e| e.to_string());
    (out, end)
}

fn reparsed(messages: &[Message]) -> Vec<Message> {
    messages
        .iter()
        .map(|m| Message::decode(&m.encode()).expect("an encoded message decodes"))
        .collect()
}

fn cut(bytes: &[u8], mut points: Vec<usize>) -> Vec<&[u8]> {
    points.iter_mut().for_each(|p| *p %= bytes.len() + 1);
    points.sort_unstable();
    let mut chunks = Vec::new();
    let mut start = 0;
    for p in points {
        chunks.push(&bytes[start..p]);
        start = p;
    }
    chunks.push(&bytes[start..]);
    chunks
}

proptest! {
    // No regression files in the source tree: failures print their minimal input instead.
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn valid_streams_decode_identically_however_split(
        messages in prop::collection::vec(message(), 0..8),
        separators in prop::collection::vec(prop::sample::select(vec!["", " ", "\n", "\r\n", "\t  "]), 8),
        points in prop::collection::vec(any::<usize>(), 0..40),
    ) {
        let mut stream = Vec::new();
        for (m, sep) in messages.iter().zip(separators.iter().cycle()) {
            stream.extend_from_slice(&m.encode());
            stream.extend_from_slice(sep.as_bytes());
        }
        // serde_json may parse a float back one ulp off what it printed, so the reference
        // is each message decoded on its own, not the generated value.
        let messages = reparsed(&messages);
        let (whole, end) = decode_stream([stream.as_slice()], 1 << 20);
        prop_assert_eq!(end, None);
        prop_assert_eq!(&whole, &messages);

        let (pieces, end) = decode_stream(cut(&stream, points), 1 << 20);
        prop_assert_eq!(end, None);
        prop_assert_eq!(&pieces, &messages);

        let byte_at_a_time = decode_stream(stream.chunks(1), 1 << 20);
        prop_assert_eq!(byte_at_a_time, (messages, None));
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..4096),
        points in prop::collection::vec(any::<usize>(), 0..20),
        max in 1usize..512,
    ) {
        let _ = decode_stream(cut(&bytes, points), max);
        let _ = Message::decode(&bytes);
    }

    #[test]
    fn json_syntax_soup_never_panics(
        bytes in prop::collection::vec(prop::sample::select(b"{}[]\"\\ ,:a01-.e\n".to_vec()), 0..2048),
        points in prop::collection::vec(any::<usize>(), 0..20),
    ) {
        let (_, _) = decode_stream(cut(&bytes, points), 256);
    }

    #[test]
    fn a_valid_prefix_then_garbage_keeps_the_prefix(
        messages in prop::collection::vec(message(), 1..4),
        garbage in prop::collection::vec(any::<u8>(), 1..64),
        points in prop::collection::vec(any::<usize>(), 0..10),
    ) {
        let mut stream: Vec<u8> = messages.iter().flat_map(Message::encode).collect();
        stream.extend_from_slice(&garbage);
        let messages = reparsed(&messages);
        let (decoded, _) = decode_stream(cut(&stream, points), 1 << 20);
        prop_assert!(decoded.len() >= messages.len());
        prop_assert_eq!(&decoded[..messages.len()], &messages[..]);
    }

    #[test]
    fn oversized_messages_are_always_rejected(
        message in message(),
        points in prop::collection::vec(any::<usize>(), 0..10),
    ) {
        let bytes = message.encode();
        let limit = bytes.len() - 1;
        let mut splitter = JsonStreamSplitter::new(limit.max(1));
        let mut result = Ok(None);
        for chunk in cut(&bytes, points) {
            splitter.push(chunk);
            result = splitter.next_message();
            if result.is_err() { break; }
        }
        prop_assert_eq!(result, Err(FrameError::Oversized { limit: limit.max(1) }));
    }

    #[test]
    fn ovsdb_data_decoders_never_panic(value in json_value()) {
        let _ = Datum::from_json(&value);
        let _ = Row::from_json(&value);
        let _ = TableUpdates2::from_json(&value);
        let _ = TableUpdates2::from_json(&json!({"Interface": {"3410a295-c0b5-42b9-b8cf-fc7944be60df": value}}));
    }
}
