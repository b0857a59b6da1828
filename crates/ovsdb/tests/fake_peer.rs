//! Protocol behaviour that a real ovsdb-server cannot be made to show on demand: a scripted
//! peer on the other end of a socket pair plays the server.

use std::time::Duration;

use nodedoc_ovsdb::{
    Client, ClientOptions, ConnectionError, Error, FrameError, JsonStreamSplitter, Message,
    MonitorRequest, Operation, RowUpdate2, Select,
};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// Generous bound so a broken test fails instead of hanging; never a performance assertion.
const PATIENCE: Duration = Duration::from_secs(20);

struct FakeServer {
    stream: UnixStream,
    splitter: JsonStreamSplitter,
}

impl FakeServer {
    async fn recv(&mut self) -> Message {
        tokio::time::timeout(PATIENCE, async {
            loop {
                if let Some(bytes) = self.splitter.next_message().unwrap() {
                    return Message::decode(&bytes).unwrap();
                }
                let mut buf = [0u8; 4096];
                let n = self.stream.read(&mut buf).await.unwrap();
                assert!(n > 0, "client closed the connection");
                self.splitter.push(&buf[..n]);
            }
        })
        .await
        .expect("client sent nothing")
    }

    async fn recv_request(&mut self) -> (Value, String, Value) {
        match self.recv().await {
            Message::Request { id, method, params } => (id, method, params),
            other => panic!("expected a request, got {other:?}"),
        }
    }

    async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    async fn send(&mut self, json: Value) {
        self.send_raw(json.to_string().as_bytes()).await;
    }

    async fn reply(&mut self, id: Value, result: Value) {
        self.send(json!({"id": id, "result": result, "error": null}))
            .await;
    }
}

fn pair_with(options: ClientOptions) -> (Client, FakeServer) {
    let (ours, theirs) = UnixStream::pair().unwrap();
    let client = Client::from_stream(ours, "fake", options);
    (
        client,
        FakeServer {
            stream: theirs,
            splitter: JsonStreamSplitter::new(1 << 20),
        },
    )
}

fn pair() -> (Client, FakeServer) {
    pair_with(ClientOptions::default())
}

#[tokio::test]
async fn answers_the_servers_echo_requests() {
    let (client, mut server) = pair();
    server
        .send(json!({"id": "echo", "method": "echo", "params": ["probe", 1]}))
        .await;
    assert_eq!(
        server.recv().await,
        Message::Response {
            id: json!("echo"),
            result: json!(["probe", 1]),
            error: Value::Null
        }
    );
    assert_eq!(client.stats().echo_requests_answered, 1);

    // Unknown server requests still get an answer (JSON-RPC requires one).
    server
        .send(json!({"id": 9, "method": "frobnicate", "params": []}))
        .await;
    match server.recv().await {
        Message::Response { id, error, .. } => {
            assert_eq!(id, json!(9));
            assert_eq!(error["error"], "unknown method");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn echo_calls_round_trip() {
    let (client, mut server) = pair();
    let call = tokio::spawn(async move { client.echo(vec![json!("hello")]).await });
    let (id, method, params) = server.recv_request().await;
    assert_eq!(method, "echo");
    server.reply(id, params).await;
    assert_eq!(call.await.unwrap().unwrap(), vec![json!("hello")]);
}

#[tokio::test]
async fn a_timed_out_call_does_not_wedge_the_connection() {
    let (client, mut server) = pair_with(ClientOptions {
        request_timeout: Some(Duration::from_millis(100)),
        ..ClientOptions::default()
    });
    let err = client.list_dbs().await.unwrap_err();
    assert!(
        matches!(err, Error::Timeout { ref method, .. } if method == "list_dbs"),
        "{err}"
    );
    let (late_id, _, _) = server.recv_request().await;

    let second = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .call_with_timeout("list_dbs", json!([]), Some(PATIENCE))
                .await
        }
    });
    let (id, _, _) = server.recv_request().await;
    // The late reply to the abandoned call arrives first and must be ignored.
    server.reply(late_id, json!(["stale"])).await;
    server.reply(id, json!(["Open_vSwitch"])).await;
    assert_eq!(second.await.unwrap().unwrap(), json!(["Open_vSwitch"]));
    assert_eq!(client.stats().unclaimed_replies, 1);
}

#[tokio::test]
async fn dropping_a_transact_future_cancels_it_and_keeps_the_connection() {
    let (client, mut server) = pair();
    {
        let fut = client.transact("Open_vSwitch", [Operation::comment("slow")]);
        // Poll it until the request is on the wire, then drop it.
        tokio::select! {
            _ = fut => panic!("no reply was sent"),
            request = server.recv_request() => assert_eq!(request.1, "transact"),
        }
    }
    match server.recv().await {
        Message::Notification { method, params } => {
            assert_eq!(method, "cancel");
            assert!(params[0].is_u64());
        }
        other => panic!("expected a cancel notification, got {other:?}"),
    }
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.list_dbs().await }
    });
    let (id, _, _) = server.recv_request().await;
    server.reply(id, json!(["Open_vSwitch"])).await;
    assert_eq!(call.await.unwrap().unwrap(), vec!["Open_vSwitch"]);
}

#[tokio::test]
async fn error_replies_without_result_member_are_rpc_errors() {
    let (client, mut server) = pair();
    let call = tokio::spawn(async move { client.get_schema("Nope").await });
    let (id, _, _) = server.recv_request().await;
    // ovsdb-server 3.1 sends no "result" member with an error.
    server
        .send(json!({"id": id, "error": {"error": "unknown database",
                     "details": "get_schema request specifies unknown database Nope"}}))
        .await;
    let err = call.await.unwrap().unwrap_err();
    match &err {
        Error::Rpc { error, method, .. } => {
            assert_eq!(method, "get_schema");
            assert_eq!(error.error, "unknown database");
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("unknown database"));
}

async fn call_then_feed(bytes: &[u8], close: bool) -> Error {
    let (client, mut server) = pair_with(ClientOptions {
        max_message_size: 64,
        ..ClientOptions::default()
    });
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.list_dbs().await }
    });
    server.recv_request().await;
    server.send_raw(bytes).await;
    if close {
        drop(server);
    }
    let err = call.await.unwrap().unwrap_err();
    // The connection is closed for later calls too.
    assert!(client.closed_reason().is_some());
    assert!(matches!(
        client.list_dbs().await,
        Err(Error::ConnectionLost { .. })
    ));
    err
}

fn connection_error(err: &Error) -> &ConnectionError {
    match err {
        Error::ConnectionLost { source, .. } => source,
        other => panic!("expected ConnectionLost, got {other}"),
    }
}

#[tokio::test]
async fn malformed_server_messages_end_the_connection_with_typed_errors() {
    let err = call_then_feed(br#"{"id":1,"result":[1,]}"#, false).await;
    assert!(
        matches!(connection_error(&err), ConnectionError::Decode(_)),
        "{err}"
    );

    let err = call_then_feed(b"hello", false).await;
    assert!(matches!(
        connection_error(&err),
        ConnectionError::Frame(FrameError::UnexpectedByte { byte: b'h', .. })
    ));

    let err = call_then_feed(br#"{"id":1,"result":["#, true).await;
    assert!(matches!(
        connection_error(&err),
        ConnectionError::Frame(FrameError::Truncated { .. })
    ));

    let oversized = format!(r#"{{"id":1,"result":["{}"]}}"#, "x".repeat(100));
    let err = call_then_feed(oversized.as_bytes(), false).await;
    assert!(matches!(
        connection_error(&err),
        ConnectionError::Frame(FrameError::Oversized { limit: 64 })
    ));

    let err = call_then_feed(b"[1,2]", false).await;
    assert!(matches!(connection_error(&err), ConnectionError::Decode(_)));

    let err = call_then_feed(b"", true).await;
    assert!(matches!(connection_error(&err), ConnectionError::Eof));
    assert!(
        err.to_string()
            .contains("list_dbs on fake: connection lost"),
        "{err}"
    );
}

#[tokio::test]
async fn monitors_get_their_own_updates_and_cancel_on_drop() {
    let (client, mut server) = pair();
    let start = |client: Client, table: &'static str| {
        tokio::spawn(async move {
            client
                .monitor_cond("Open_vSwitch", &[MonitorRequest::new(table)])
                .await
        })
    };
    let uuid_a = "3410a295-c0b5-42b9-b8cf-fc7944be60df";
    let uuid_b = "acabf608-7e01-4f6e-9339-5e6f4d9f06c0";

    let first = start(client.clone(), "Bridge");
    let (id, method, params) = server.recv_request().await;
    assert_eq!(method, "monitor_cond");
    let bridge_monitor_id = params[1].clone();
    assert!(params[2]["Bridge"].is_array());
    server
        .reply(
            id,
            json!({"Bridge": {uuid_a: {"initial": {"name": "br0"}}}}),
        )
        .await;
    let mut bridges = first.await.unwrap().unwrap();
    assert_eq!(bridges.initial.tables["Bridge"].len(), 1);

    let second = start(client.clone(), "Interface");
    let (id, _, params) = server.recv_request().await;
    let iface_monitor_id = params[1].clone();
    assert_ne!(iface_monitor_id, bridge_monitor_id);
    server.reply(id, json!({})).await;
    let mut interfaces = second.await.unwrap().unwrap();

    server
        .send(
            json!({"id": null, "method": "update2", "params": [iface_monitor_id,
              {"Interface": {uuid_b: {"insert": {"name": "p1"}}}}]}),
        )
        .await;
    server
        .send(
            json!({"id": null, "method": "update2", "params": [bridge_monitor_id,
              {"Bridge": {uuid_a: {"modify": {"name": "br1"}}}}]}),
        )
        .await;
    let update = tokio::time::timeout(PATIENCE, interfaces.updates.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(matches!(
        update.tables["Interface"].values().next(),
        Some(RowUpdate2::Insert(_))
    ));
    let update = tokio::time::timeout(PATIENCE, bridges.updates.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(matches!(
        update.tables["Bridge"].values().next(),
        Some(RowUpdate2::Modify(_))
    ));

    // Dropping a monitor tells the server.
    drop(interfaces);
    let (_, method, params) = server.recv_request().await;
    assert_eq!(method, "monitor_cancel");
    assert_eq!(params, json!([iface_monitor_id]));

    // The server cancelling a monitor ends its stream with a typed error.
    server
        .send(json!({"id": null, "method": "monitor_canceled", "params": [bridge_monitor_id]}))
        .await;
    let end = tokio::time::timeout(PATIENCE, bridges.updates.next())
        .await
        .unwrap();
    assert!(
        matches!(end, Some(Err(Error::MonitorCanceled { .. }))),
        "{end:?}"
    );
    assert!(bridges.updates.next().await.is_none());
}

#[tokio::test]
async fn a_monitor_learns_when_the_connection_drops() {
    let (client, mut server) = pair();
    let start = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .monitor("Open_vSwitch", &[MonitorRequest::new("Bridge")])
                .await
        }
    });
    let (id, method, params) = server.recv_request().await;
    assert_eq!(method, "monitor");
    // Plain monitor requests carry no "where".
    assert!(params[2]["Bridge"][0].get("where").is_none());
    server.reply(id, json!({})).await;
    let mut monitor = start.await.unwrap().unwrap();
    drop(server);
    let end = tokio::time::timeout(PATIENCE, monitor.updates.next())
        .await
        .unwrap();
    assert!(
        matches!(end, Some(Err(Error::ConnectionLost { .. }))),
        "{end:?}"
    );
}

#[tokio::test]
async fn transact_reports_the_failing_operation() {
    let (client, mut server) = pair();
    let call = tokio::spawn(async move {
        client
            .transact(
                "Open_vSwitch",
                [
                    Operation::comment("first"),
                    Select::new("Bridge").columns(["nope"]).into(),
                ],
            )
            .await
    });
    let (id, _, params) = server.recv_request().await;
    assert_eq!(params[0], "Open_vSwitch");
    assert_eq!(params[2]["op"], "select");
    server
        .reply(id, json!([{}, {"error": "syntax error", "details": "nope is not a valid column name", "syntax": "[\"nope\"]"}]))
        .await;
    match call.await.unwrap().unwrap_err() {
        Error::Transaction {
            failure, database, ..
        } => {
            assert_eq!(database, "Open_vSwitch");
            assert_eq!(failure.index, 1);
            assert_eq!(failure.operation.as_deref(), Some("select"));
            assert_eq!(failure.error, "syntax error");
        }
        other => panic!("{other}"),
    }
}

// ---- Bounded memory against a hostile server (issue 8, item 4) ----

#[tokio::test]
async fn a_server_that_floods_echo_requests_without_reading_ends_the_connection() {
    let (client, mut server) = pair_with(ClientOptions {
        max_outgoing_queue: 64 * 1024,
        ..ClientOptions::default()
    });
    // Never read: the socket buffer fills with echo replies, then the queue does.
    let echo = br#"{"id":"probe","method":"echo","params":[]}"#;
    let flood = tokio::spawn(async move {
        for _ in 0..1_000_000 {
            if server.stream.write_all(echo).await.is_err() {
                break;
            }
        }
        server
    });
    let _server = tokio::time::timeout(PATIENCE, flood)
        .await
        .expect("the client stopped reading")
        .unwrap();
    let reason = client.closed_reason().expect("connection ended");
    assert!(
        matches!(*reason, ConnectionError::PeerNotReading { limit: 65536 }),
        "{reason}"
    );
    assert!(
        reason.to_string().contains("64 KiB outgoing queue is full"),
        "{reason}"
    );
    let err = client.list_dbs().await.unwrap_err();
    assert!(err.to_string().contains("list_dbs on fake"), "{err}");
    // Every answered echo was queued within the limit.
    assert!(client.stats().echo_requests_answered > 100);
}

#[tokio::test]
async fn a_request_larger_than_the_queue_goes_alone_and_the_next_waits_within_its_timeout() {
    let (client, mut server) = pair_with(ClientOptions {
        max_outgoing_queue: 1024,
        request_timeout: Some(Duration::from_millis(300)),
        ..ClientOptions::default()
    });
    // A request far larger than the queue goes alone once the queue is empty.
    let big = "x".repeat(100_000);
    let call = tokio::spawn({
        let client = client.clone();
        let big = big.clone();
        async move { client.echo(vec![json!(big)]).await }
    });
    let (id, method, params) = server.recv_request().await;
    assert_eq!(method, "echo");
    server.reply(id, params).await;
    assert_eq!(call.await.unwrap().unwrap()[0], json!(big));

    // The server stops reading: a 1 MB request fills the socket and holds the queue, so the
    // next call waits for room, and gives up at its timeout like any call.
    let stuck = tokio::spawn({
        let client = client.clone();
        async move { client.echo(vec![json!("y".repeat(1_000_000))]).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    match client.list_dbs().await {
        Err(Error::Timeout { method, .. }) => assert_eq!(method, "list_dbs"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(stuck.await.unwrap(), Err(Error::Timeout { .. })));
    assert!(client.closed_reason().is_none(), "still connected");
}

#[tokio::test]
async fn a_reply_too_costly_to_decode_is_refused_before_decoding() {
    let (client, mut server) = pair_with(ClientOptions {
        max_decoded_size: 1 << 20,
        ..ClientOptions::default()
    });
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.list_dbs().await }
    });
    let (id, _, _) = server.recv_request().await;
    // 200 kB on the wire, about 18 MB once decoded.
    let mut reply = format!(r#"{{"id":{id},"error":null,"result":["#).into_bytes();
    for _ in 0..25_000 {
        reply.extend_from_slice(br#"{"a":0},"#);
    }
    reply.extend_from_slice(b"{}]}");
    server.send_raw(&reply).await;
    let err = call.await.unwrap().unwrap_err();
    match connection_error(&err) {
        ConnectionError::Frame(FrameError::TooCostly { limit, received }) => {
            assert_eq!(*limit, 1 << 20);
            assert!(*received < 20_000, "{received}");
        }
        other => panic!("{other}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("list_dbs on fake: connection lost: a message would take more than 1 MiB"),
        "{text}"
    );
}

#[tokio::test]
async fn a_monitor_whose_consumer_lags_fails_with_lagged_and_is_cancelled() {
    let (client, mut server) = pair_with(ClientOptions {
        max_monitor_backlog: 64 * 1024,
        ..ClientOptions::default()
    });
    let start = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .monitor_cond("Open_vSwitch", &[MonitorRequest::new("Interface")])
                .await
        }
    });
    let (id, _, params) = server.recv_request().await;
    let monitor_id = params[1].clone();
    server.reply(id, json!({})).await;
    let mut monitor = start.await.unwrap().unwrap();
    let uuid = "3410a295-c0b5-42b9-b8cf-fc7944be60df";
    let update = json!({"id": null, "method": "update2", "params": [monitor_id,
        {"Interface": {uuid: {"modify": {"ofport": 7}}}}]})
    .to_string();
    // One update is taken; then nobody reads while 1,000 more (about 2.5 MB decoded) come.
    server.send_raw(update.as_bytes()).await;
    assert!(monitor.updates.next().await.unwrap().is_ok());
    for _ in 0..1000 {
        server.send_raw(update.as_bytes()).await;
    }
    // The client cancels the monitor on the server as soon as it overflows.
    let (_, method, params) = server.recv_request().await;
    assert_eq!(method, "monitor_cancel");
    assert_eq!(params, json!([monitor_id]));
    // The consumer learns it next, ahead of what was queued, then the stream ends.
    match monitor.updates.next().await {
        Some(Err(err @ Error::MonitorLagged { limit: 65536, .. })) => {
            assert!(err.is_connection_error());
            assert!(err.to_string().contains("fell behind"), "{err}");
            assert!(
                err.to_string()
                    .contains("64 KiB limit (max_monitor_backlog)"),
                "{err}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(monitor.updates.next().await.is_none());
    // The connection itself is fine.
    let echo = tokio::spawn({
        let client = client.clone();
        async move { client.echo(vec![json!(1)]).await }
    });
    let (id, _, params) = server.recv_request().await;
    server.reply(id, params).await;
    assert_eq!(echo.await.unwrap().unwrap(), vec![json!(1)]);
}
