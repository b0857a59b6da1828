//! What an OVSDB peer sends: a byte stream split into JSON-RPC messages (cut into reads at
//! points the input chooses), each decoded, and the table data in them decoded as the
//! collector does (monitor updates; `select` results built into the vswitch topology).
#![no_main]

use libfuzzer_sys::fuzz_target;
use nodedoc_ovsdb::{JsonStreamSplitter, Message, OvsDump, Row, TableUpdates2};
use serde_json::Value;

/// Decodes the OVSDB data in a message's payload the ways a reply or notification is read.
fn decode_payload(value: &Value) {
    let _ = TableUpdates2::from_json(value);
    if let Value::Array(items) = value {
        // `update2` params: [monitor id, table updates].
        if let Some(updates) = items.get(1) {
            let _ = TableUpdates2::from_json(updates);
        }
        // A transact reply: one `{"rows": [...]}` per select, in the order
        // Open_vSwitch, Bridge, Port, Interface.
        let tables: Vec<Vec<Row>> = items
            .iter()
            .map(|result| {
                result
                    .get("rows")
                    .and_then(Value::as_array)
                    .map(|rows| rows.iter().filter_map(|r| Row::from_json(r).ok()).collect())
                    .unwrap_or_default()
            })
            .collect();
        let table = |i: usize| tables.get(i).into_iter().flatten().map(|row| (None, row));
        if let Ok(dump) = OvsDump::from_rows(table(0), table(1), table(2), table(3)) {
            let _ = nodedoc_ovs::state_from_dump(&dump, "unix:/fuzz/db.sock");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // The first byte chooses the read size and the size limit; the rest is the stream.
    let Some((&control, stream)) = data.split_first() else {
        return;
    };
    let read_size = usize::from(control & 0x0f) * 7 + 1;
    let limit = if control & 0x80 != 0 { 64 } else { 1 << 16 };
    let mut splitter = JsonStreamSplitter::new(limit);
    'reads: for read in stream.chunks(read_size) {
        splitter.push(read);
        loop {
            match splitter.next_message() {
                Ok(Some(frame)) => {
                    assert!(frame.len() <= limit);
                    match Message::decode(&frame) {
                        Ok(Message::Request { params, .. })
                        | Ok(Message::Notification { params, .. }) => decode_payload(&params),
                        Ok(Message::Response { result, error, .. }) => {
                            decode_payload(&result);
                            decode_payload(&error);
                        }
                        Err(_) => {}
                    }
                }
                Ok(None) => break,
                Err(_) => break 'reads,
            }
        }
        assert!(splitter.buffered_len() <= limit + read_size);
    }
    let _ = splitter.finish();
});
