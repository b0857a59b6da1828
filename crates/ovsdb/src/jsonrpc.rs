//! JSON-RPC 1.0 messages as OVSDB uses them (RFC 7047 section 4).
//!
//! Requests carry a non-null `id` and expect a response with the same `id`; notifications
//! are requests with `"id": null` and get no response. ovsdb-server 3.1 leaves out the
//! `result` member of error responses, so a response is recognised by having `result` *or*
//! `error`, not both.

use serde_json::{json, Map, Value};

/// A complete message could not be interpreted as JSON-RPC.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The bytes are not valid JSON.
    #[error("invalid JSON in message: {0}")]
    Json(#[from] serde_json::Error),
    /// The JSON is valid but not a JSON-RPC request, notification or response.
    #[error("not a JSON-RPC message: {reason}")]
    NotJsonRpc {
        /// What is missing or wrong.
        reason: &'static str,
    },
}

/// One JSON-RPC message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A call that expects a [`Message::Response`] with the same `id`.
    Request {
        /// The request identifier (never `null`).
        id: Value,
        /// The method name, e.g. `"echo"`.
        method: String,
        /// The parameters (an array for every OVSDB method).
        params: Value,
    },
    /// A call that expects no response (`"id": null`), e.g. `update2`.
    Notification {
        /// The method name.
        method: String,
        /// The parameters.
        params: Value,
    },
    /// The answer to a request.
    Response {
        /// The `id` of the request being answered.
        id: Value,
        /// The result; `null` when the call failed.
        result: Value,
        /// The error; `null` when the call succeeded.
        error: Value,
    },
}

impl Message {
    /// Parses one complete message (as produced by
    /// [`JsonStreamSplitter`](crate::JsonStreamSplitter)).
    pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
        let value: Value = serde_json::from_slice(bytes)?;
        Message::from_json(value)
    }

    /// Interprets a parsed JSON value as a message.
    pub fn from_json(value: Value) -> Result<Message, DecodeError> {
        let Value::Object(mut map) = value else {
            return Err(DecodeError::NotJsonRpc {
                reason: "a message must be a JSON object",
            });
        };
        let id = map.remove("id").unwrap_or(Value::Null);
        if let Some(method) = map.remove("method") {
            let Value::String(method) = method else {
                return Err(DecodeError::NotJsonRpc {
                    reason: "\"method\" must be a string",
                });
            };
            let params = map.remove("params").unwrap_or_else(|| json!([]));
            return Ok(if id.is_null() {
                Message::Notification { method, params }
            } else {
                Message::Request { id, method, params }
            });
        }
        let result = map.remove("result");
        let error = map.remove("error");
        if result.is_none() && error.is_none() {
            return Err(DecodeError::NotJsonRpc {
                reason: "object has neither \"method\" nor \"result\"/\"error\"",
            });
        }
        Ok(Message::Response {
            id,
            result: result.unwrap_or(Value::Null),
            error: error.unwrap_or(Value::Null),
        })
    }

    /// The JSON form, with every member JSON-RPC 1.0 requires.
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        match self {
            Message::Request { id, method, params } => {
                map.insert("id".into(), id.clone());
                map.insert("method".into(), Value::String(method.clone()));
                map.insert("params".into(), params.clone());
            }
            Message::Notification { method, params } => {
                map.insert("id".into(), Value::Null);
                map.insert("method".into(), Value::String(method.clone()));
                map.insert("params".into(), params.clone());
            }
            Message::Response { id, result, error } => {
                map.insert("id".into(), id.clone());
                map.insert("result".into(), result.clone());
                map.insert("error".into(), error.clone());
            }
        }
        Value::Object(map)
    }

    /// The bytes to put on the wire.
    pub fn encode(&self) -> Vec<u8> {
        // Serializing a `Value` cannot fail: its map keys are strings.
        serde_json::to_vec(&self.to_json()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_requests_notifications_and_responses() {
        assert_eq!(
            Message::decode(br#"{"id":"echo","method":"echo","params":[]}"#).unwrap(),
            Message::Request {
                id: json!("echo"),
                method: "echo".into(),
                params: json!([])
            }
        );
        assert_eq!(
            Message::decode(br#"{"id":null,"method":"update2","params":["m",{}]}"#).unwrap(),
            Message::Notification {
                method: "update2".into(),
                params: json!(["m", {}])
            }
        );
        // ovsdb-server 3.1 error responses have no "result" member.
        assert_eq!(
            Message::decode(br#"{"id":7,"error":"unknown monitor"}"#).unwrap(),
            Message::Response {
                id: json!(7),
                result: Value::Null,
                error: json!("unknown monitor")
            }
        );
    }

    #[test]
    fn rejects_what_is_not_json_rpc() {
        for bad in [
            &b"[1,2]"[..],
            br#"{"id":1}"#,
            br#"{"method":5,"params":[]}"#,
            br#"{"id":1,"result":"#,
            br#"{]"#,
            b"\xff\xfe",
        ] {
            assert!(
                Message::decode(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn encode_round_trips() {
        for m in [
            Message::Request {
                id: json!(3),
                method: "transact".into(),
                params: json!(["Open_vSwitch", {"op": "comment", "comment": "hi"}]),
            },
            Message::Notification {
                method: "cancel".into(),
                params: json!([3]),
            },
            Message::Response {
                id: json!("echo"),
                result: json!([]),
                error: Value::Null,
            },
        ] {
            assert_eq!(Message::decode(&m.encode()).unwrap(), m);
        }
    }
}
