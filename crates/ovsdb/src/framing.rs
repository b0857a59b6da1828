//! Splits an OVSDB byte stream into messages.
//!
//! OVSDB sends JSON-RPC messages back to back with no length prefix or delimiter (RFC 7047
//! section 4), so the only way to find where a message ends is to follow the JSON: count
//! `{`/`[` against `}`/`]`, ignoring brackets inside strings (and escaped quotes inside
//! strings). That is all [`JsonStreamSplitter`] does; whether the bytes are valid JSON is left
//! to the decoder, which sees exactly one candidate message at a time.
//!
//! # What a message costs once decoded
//! Bounding the bytes of a message does not bound what decoding it costs: a
//! `serde_json::Value` takes 32 bytes per value, an array's first element allocates room for
//! four, and an object allocates a B-tree node of about 640 bytes for its first key. Measured
//! (a counting allocator over `serde_json::from_slice`): `[0,0,…]` takes 17 times its size,
//! `[[0],[0],…]` 44 times, `[{"a":0},…]` 90 times; a real `monitor_cond` reply of the
//! Open_vSwitch database (1,000 interfaces, 438 kB) 10.8 times. So while it looks for the end
//! of a message, the splitter also adds up an estimate of its decoded size — 32 bytes per
//! value or object key, 144 more for each non-empty array, 640 more for each non-empty
//! object, plus the bytes of its strings — which is within 15 % of the measured figures for
//! all of the above, and rejects a message whose estimate passes
//! [`max_decoded_size`](JsonStreamSplitter::max_decoded_size) before it is decoded (and
//! before the rest of it is even read).

/// Why the byte stream could not be split into messages. Once a splitter has failed it keeps
/// failing: there is no reliable way to find the start of the next message after garbage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// A single message grew past the configured maximum size.
    #[error("a message exceeds the size limit of {} (max_message_size)", human_bytes(*limit))]
    Oversized {
        /// The configured limit, in bytes.
        limit: usize,
    },
    /// A single message would take more memory than allowed once decoded (see the module
    /// documentation for the estimate).
    #[error(
        "a message would take more than {} of memory once decoded (max_decoded_size); \
         {} of it received so far",
        human_bytes(*limit),
        human_bytes(*received)
    )]
    TooCostly {
        /// The configured limit on the estimated decoded size, in bytes.
        limit: usize,
        /// How many bytes of the message had arrived when the estimate passed the limit.
        received: usize,
    },
    /// The stream ended part-way through a message.
    #[error("stream ended inside a message ({buffered} bytes of it received)")]
    Truncated {
        /// How many bytes of the unfinished message had arrived.
        buffered: usize,
    },
    /// Something other than whitespace or the start of a JSON object or array appeared
    /// between messages.
    #[error("unexpected byte {byte:#04x} between messages at stream offset {offset}")]
    UnexpectedByte {
        /// The offending byte.
        byte: u8,
        /// Its offset from the start of the stream.
        offset: u64,
    },
}

/// Incremental splitter for a stream of concatenated JSON objects (or arrays).
///
/// Feed bytes with [`push`](Self::push) as they arrive and take complete messages with
/// [`next_message`](Self::next_message); at end of stream call [`finish`](Self::finish) to
/// learn whether the stream stopped inside a message. Scanning is incremental, so each byte is
/// examined once however the stream is chunked.
#[derive(Debug)]
pub struct JsonStreamSplitter {
    buf: Vec<u8>,
    /// Bytes before this offset have been handed out already.
    consumed: usize,
    /// Bytes before this offset have been scanned.
    scanned: usize,
    /// Where the message being scanned starts, once its first bracket has been seen.
    message_start: Option<usize>,
    depth: u64,
    in_string: bool,
    escaped: bool,
    max_message_size: usize,
    max_decoded_size: usize,
    /// The estimated decoded size of the message being scanned (see the module docs).
    decoded_estimate: usize,
    /// A value may start at the next non-whitespace byte (after `[`, `{`, `,` or `:`).
    value_may_start: bool,
    /// The container just opened (`[` or `{`) while it has no element yet.
    just_opened: Option<u8>,
    /// The estimate of the message most recently handed out.
    last_estimate: usize,
    /// Stream offset of `buf[0]`, for error messages.
    base_offset: u64,
    failed: Option<FrameError>,
}

/// Bytes as a person reads them: `16 MiB`, `1.5 KiB`, `100 bytes`.
pub(crate) fn human_bytes(n: usize) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} bytes");
    }
    let mut value = n as f64;
    let mut unit = "bytes";
    for u in UNITS {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = u;
    }
    if value.fract() == 0.0 {
        format!("{value:.0} {unit}")
    } else {
        format!("{value:.1} {unit}")
    }
}

/// Cost of one value (or object key) once decoded: the size of a `serde_json::Value`.
const VALUE_COST: usize = 32;
/// Extra cost of a non-empty array: its first element allocates room for four values.
const ARRAY_COST: usize = 144;
/// Extra cost of a non-empty object: its first key allocates a B-tree leaf node.
const OBJECT_COST: usize = 640;

impl JsonStreamSplitter {
    /// A splitter that rejects messages longer than `max_message_size` bytes, with no limit
    /// on their decoded size.
    pub fn new(max_message_size: usize) -> Self {
        JsonStreamSplitter {
            buf: Vec::new(),
            consumed: 0,
            scanned: 0,
            message_start: None,
            depth: 0,
            in_string: false,
            escaped: false,
            max_message_size: max_message_size.max(1),
            max_decoded_size: usize::MAX,
            decoded_estimate: 0,
            value_may_start: false,
            just_opened: None,
            last_estimate: 0,
            base_offset: 0,
            failed: None,
        }
    }

    /// Also rejects messages whose estimated decoded size (see the module documentation)
    /// exceeds `max_decoded_size` bytes.
    pub fn with_max_decoded_size(mut self, max_decoded_size: usize) -> Self {
        self.max_decoded_size = max_decoded_size.max(1);
        self
    }

    /// The configured maximum message size in bytes.
    pub fn max_message_size(&self) -> usize {
        self.max_message_size
    }

    /// The configured maximum estimated decoded size in bytes.
    pub fn max_decoded_size(&self) -> usize {
        self.max_decoded_size
    }

    /// The estimated decoded size of the message most recently returned by
    /// [`next_message`](Self::next_message), in bytes.
    pub fn last_decoded_estimate(&self) -> usize {
        self.last_estimate
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        // Drop what was handed out before growing, so the buffer holds at most one
        // unfinished message plus one read's worth of data.
        if self.consumed > 0 && (self.consumed >= self.buf.len() / 2 || self.consumed > 1 << 16) {
            self.buf.drain(..self.consumed);
            self.scanned -= self.consumed;
            if let Some(start) = &mut self.message_start {
                *start -= self.consumed;
            }
            self.base_offset += self.consumed as u64;
            self.consumed = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete message, if one has fully arrived.
    pub fn next_message(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        match self.scan() {
            Ok(found) => Ok(found),
            Err(err) => {
                self.failed = Some(err.clone());
                Err(err)
            }
        }
    }

    /// Declares the end of the stream: an error if it stopped inside a message.
    pub fn finish(&self) -> Result<(), FrameError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        match self.message_start {
            Some(start) => Err(FrameError::Truncated {
                buffered: self.buf.len() - start,
            }),
            None => Ok(()),
        }
    }

    /// Bytes received but not yet handed out as messages (whitespace included).
    pub fn buffered_len(&self) -> usize {
        self.buf.len() - self.consumed
    }

    fn scan(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        while self.scanned < self.buf.len() {
            let i = self.scanned;
            let byte = self.buf[i];
            self.scanned += 1;

            let Some(start) = self.message_start else {
                // Between messages: only whitespace or the opening bracket of the next one.
                match byte {
                    b' ' | b'\t' | b'\n' | b'\r' => self.consumed = self.scanned,
                    b'{' | b'[' => {
                        self.message_start = Some(i);
                        self.depth = 1;
                        self.decoded_estimate = VALUE_COST;
                        self.value_may_start = true;
                        self.just_opened = Some(byte);
                    }
                    _ => {
                        return Err(FrameError::UnexpectedByte {
                            byte,
                            offset: self.base_offset + i as u64,
                        })
                    }
                }
                continue;
            };

            if self.scanned - start > self.max_message_size {
                return Err(FrameError::Oversized {
                    limit: self.max_message_size,
                });
            }

            if self.in_string {
                // A string's bytes end up on the heap (escapes make it shorter, never longer).
                self.decoded_estimate += 1;
                if self.escaped {
                    self.escaped = false;
                } else if byte == b'\\' {
                    self.escaped = true;
                } else if byte == b'"' {
                    self.in_string = false;
                }
                continue;
            }
            if matches!(byte, b' ' | b'\t' | b'\n' | b'\r') {
                continue;
            }

            if self.value_may_start && byte != b']' && byte != b'}' {
                // A value (or an object key) starts here.
                self.decoded_estimate += VALUE_COST
                    + match self.just_opened {
                        Some(b'[') => ARRAY_COST,
                        Some(_) => OBJECT_COST,
                        None => 0,
                    };
                if self.decoded_estimate > self.max_decoded_size {
                    return Err(FrameError::TooCostly {
                        limit: self.max_decoded_size,
                        received: self.scanned - start,
                    });
                }
            }
            self.value_may_start = false;
            self.just_opened = None;

            match byte {
                b'"' => self.in_string = true,
                b'{' | b'[' => {
                    self.depth += 1;
                    self.value_may_start = true;
                    self.just_opened = Some(byte);
                }
                b',' | b':' => self.value_may_start = true,
                b'}' | b']' => {
                    self.depth -= 1;
                    if self.depth == 0 {
                        // Mismatched pairs such as `{]` still end here; the JSON decoder
                        // rejects them with a precise message.
                        let message = self.buf[start..self.scanned].to_vec();
                        self.message_start = None;
                        self.consumed = self.scanned;
                        self.last_estimate = self.decoded_estimate;
                        return Ok(Some(message));
                    }
                }
                _ => {}
            }
        }
        // Everything buffered is scanned; enforce the limit on an unfinished message too, so
        // a server that never closes its brackets cannot make us buffer without bound.
        if let Some(start) = self.message_start {
            if self.buf.len() - start > self.max_message_size {
                return Err(FrameError::Oversized {
                    limit: self.max_message_size,
                });
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_all(input: &[u8], max: usize) -> (Vec<Vec<u8>>, Result<(), FrameError>) {
        let mut splitter = JsonStreamSplitter::new(max);
        splitter.push(input);
        let mut out = Vec::new();
        loop {
            match splitter.next_message() {
                Ok(Some(m)) => out.push(m),
                Ok(None) => return (out, splitter.finish()),
                Err(e) => return (out, Err(e)),
            }
        }
    }

    #[test]
    fn splits_concatenated_messages_with_tricky_strings() {
        let input = br#" {"a":"}{\"\\"} [1,[2]]{"b":"\u007b"}
{}"#;
        let (messages, end) = split_all(input, 1024);
        assert_eq!(end, Ok(()));
        assert_eq!(
            messages,
            vec![
                br#"{"a":"}{\"\\"}"#.to_vec(),
                b"[1,[2]]".to_vec(),
                br#"{"b":"\u007b"}"#.to_vec(),
                b"{}".to_vec(),
            ]
        );
    }

    #[test]
    fn byte_at_a_time_gives_the_same_messages() {
        let input = br#"{"id":1,"result":["x\"]"],"error":null}{"id":null,"method":"update2","params":["m",{}]}"#;
        let (whole, _) = split_all(input, 1024);
        let mut splitter = JsonStreamSplitter::new(1024);
        let mut pieces = Vec::new();
        for b in input {
            splitter.push(&[*b]);
            while let Some(m) = splitter.next_message().unwrap() {
                pieces.push(m);
            }
        }
        assert_eq!(splitter.finish(), Ok(()));
        assert_eq!(whole, pieces);
        assert_eq!(whole.len(), 2);
    }

    #[test]
    fn truncated_stream_is_reported_at_finish() {
        let (messages, end) = split_all(br#"{"id":1}{"id":2,"res"#, 1024);
        assert_eq!(messages.len(), 1);
        assert_eq!(end, Err(FrameError::Truncated { buffered: 12 }));
        // Ending inside a string or after an escape is still truncation, not a panic.
        assert!(matches!(
            split_all(br#"{"a":"\"#, 1024).1,
            Err(FrameError::Truncated { .. })
        ));
    }

    #[test]
    fn garbage_between_messages_is_an_error_with_its_offset() {
        let (messages, end) = split_all(b"{} x{}", 1024);
        assert_eq!(messages.len(), 1);
        assert_eq!(
            end,
            Err(FrameError::UnexpectedByte {
                byte: b'x',
                offset: 3
            })
        );
        // A stray closing bracket at top level is garbage too.
        assert!(matches!(
            split_all(b"}", 1024).1,
            Err(FrameError::UnexpectedByte { byte: b'}', .. })
        ));
    }

    #[test]
    fn oversized_messages_are_rejected_even_before_they_end() {
        let (_, end) = split_all(br#"{"a":"0123456789"}"#, 10);
        assert_eq!(end, Err(FrameError::Oversized { limit: 10 }));

        let mut splitter = JsonStreamSplitter::new(10);
        splitter.push(b"[[[[[[[[[[[[[[[[");
        assert_eq!(
            splitter.next_message(),
            Err(FrameError::Oversized { limit: 10 })
        );
        // The splitter stays failed.
        splitter.push(b"]");
        assert!(splitter.next_message().is_err());
        assert!(splitter.finish().is_err());
    }

    #[test]
    fn a_message_of_exactly_the_limit_is_accepted() {
        let (messages, end) = split_all(br#"{"a":1}"#, 7);
        assert_eq!(end, Ok(()));
        assert_eq!(messages.len(), 1);
    }

    #[test]
    fn estimates_the_decoded_size_of_each_message() {
        let mut splitter = JsonStreamSplitter::new(1024);
        let mut estimate = |text: &str| {
            splitter.push(text.as_bytes());
            splitter.next_message().unwrap().expect("a message");
            splitter.last_decoded_estimate()
        };
        // The array itself, then its first element (with room for four), then two more.
        assert_eq!(estimate("[0, 0,0]"), 32 + (32 + 144) + 2 * 32);
        // Empty containers allocate nothing.
        assert_eq!(estimate("[[], {}]"), 32 + (32 + 144) + 32);
        // An object: its node with the first key, the key, the value, the key's bytes (and
        // its closing quote, which is close enough).
        assert_eq!(estimate(r#"{"id":1}"#), 32 + (32 + 640) + 32 + 3);
        // Brackets inside strings are string bytes, not values.
        assert_eq!(estimate(r#"["[{,:"]"#), 32 + (32 + 144) + 5);
    }

    #[test]
    fn a_message_too_costly_to_decode_is_rejected_before_it_ends() {
        // 8 bytes per element on the wire, about 700 bytes each once decoded.
        let mut splitter = JsonStreamSplitter::new(1 << 20).with_max_decoded_size(64 * 1024);
        splitter.push(b"[");
        for _ in 0..1000 {
            splitter.push(br#"{"a":0},"#);
        }
        match splitter.next_message() {
            Err(FrameError::TooCostly { limit, received }) => {
                assert_eq!(limit, 64 * 1024);
                assert!(received < 1000, "rejected after {received} bytes");
            }
            other => panic!("{other:?}"),
        }
        let text = splitter.next_message().unwrap_err().to_string();
        assert!(
            text.contains("more than 64 KiB of memory once decoded"),
            "{text}"
        );
        // The same bytes are fine without the limit.
        let mut splitter = JsonStreamSplitter::new(1 << 20);
        splitter.push(b"[");
        for _ in 0..1000 {
            splitter.push(br#"{"a":0},"#);
        }
        splitter.push(b"{}]");
        assert!(splitter.next_message().unwrap().is_some());
        assert!(splitter.last_decoded_estimate() > 700_000);
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_bytes(100), "100 bytes");
        assert_eq!(human_bytes(64 * 1024), "64 KiB");
        assert_eq!(human_bytes(16 << 20), "16 MiB");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(
            FrameError::Oversized { limit: 16 << 20 }.to_string(),
            "a message exceeds the size limit of 16 MiB (max_message_size)"
        );
    }

    #[test]
    fn buffer_is_compacted_as_messages_are_taken() {
        let mut splitter = JsonStreamSplitter::new(1024);
        for _ in 0..10_000 {
            splitter.push(br#"{"id":1,"result":[],"error":null}"#);
            assert!(splitter.next_message().unwrap().is_some());
        }
        assert!(splitter.buf.len() < 1024, "{}", splitter.buf.len());
        assert_eq!(splitter.buffered_len(), 0);
    }
}
