//! Splits an OVSDB byte stream into messages.
//!
//! OVSDB sends JSON-RPC messages back to back with no length prefix or delimiter (RFC 7047
//! section 4), so the only way to find where a message ends is to follow the JSON: count
//! `{`/`[` against `}`/`]`, ignoring brackets inside strings (and escaped quotes inside
//! strings). That is all [`JsonStreamSplitter`] does; whether the bytes are valid JSON is left
//! to the decoder, which sees exactly one candidate message at a time.

/// Why the byte stream could not be split into messages. Once a splitter has failed it keeps
/// failing: there is no reliable way to find the start of the next message after garbage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// A single message grew past the configured maximum size.
    #[error("message exceeds the {limit}-byte limit")]
    Oversized {
        /// The configured limit, in bytes.
        limit: usize,
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
    /// Stream offset of `buf[0]`, for error messages.
    base_offset: u64,
    failed: Option<FrameError>,
}

impl JsonStreamSplitter {
    /// A splitter that rejects messages longer than `max_message_size` bytes.
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
            base_offset: 0,
            failed: None,
        }
    }

    /// The configured maximum message size in bytes.
    pub fn max_message_size(&self) -> usize {
        self.max_message_size
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
                if self.escaped {
                    self.escaped = false;
                } else if byte == b'\\' {
                    self.escaped = true;
                } else if byte == b'"' {
                    self.in_string = false;
                }
                continue;
            }

            match byte {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth -= 1;
                    if self.depth == 0 {
                        // Mismatched pairs such as `{]` still end here; the JSON decoder
                        // rejects them with a precise message.
                        let message = self.buf[start..self.scanned].to_vec();
                        self.message_start = None;
                        self.consumed = self.scanned;
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
