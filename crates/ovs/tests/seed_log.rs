//! The parser on seed 000's own ovs-vswitchd.log lines (tests/fixtures), read as a file.

use std::path::Path;

use nodedoc_model::OvsLogEventKind;

fn fixture() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/seed-000-ovs-vswitchd.log"
    ))
}

#[test]
fn seed_000_lines_become_add_delete_and_query_events() {
    let log = nodedoc_ovs::log::read_log(
        fixture(),
        &nodedoc_ovs::log::LogReadOptions::tail(nodedoc_ovs::log::DEFAULT_TAIL_BYTES),
        "--ovs-log",
    )
    .expect("read the fixture");
    assert_eq!(log.lines_read, 18);
    assert_eq!(log.count("interface-added"), 9);
    assert_eq!(log.count("interface-deleted"), 7);
    assert_eq!(log.count("query-port-failed"), 2);
    assert_eq!(log.interface_count("ha-d489f511-9f", "interface-added"), 6);
    assert_eq!(
        log.interface_count("ha-d489f511-9f", "interface-deleted"),
        5
    );
    assert_eq!(log.interface_count("ha-24939610-b4", "interface-added"), 3);
    assert_eq!(
        log.first_timestamp.as_deref(),
        Some("2021-04-15T12:36:29.723Z")
    );

    let first = &log.events[0];
    assert_eq!(first.line, 1);
    assert_eq!(first.unix_ms, Some(1_618_490_189_723));
    assert_eq!(
        first.kind,
        OvsLogEventKind::InterfaceAdded {
            bridge: "br-int".into(),
            interface: "ha-d489f511-9f".into(),
            ofport: 17744
        }
    );
    let ofports: Vec<i64> = log
        .events_of("ha-d489f511-9f")
        .filter_map(|e| match e.kind {
            OvsLogEventKind::InterfaceAdded { ofport, .. } => Some(ofport),
            _ => None,
        })
        .collect();
    assert_eq!(ofports, [17744, 17746, 17746, 17748, 17748, 17750]);
    let query = log
        .events
        .iter()
        .find(|e| matches!(e.kind, OvsLogEventKind::QueryPortFailed { .. }))
        .unwrap();
    assert_eq!(query.line, 17);
    assert_eq!(
        query.kind,
        OvsLogEventKind::QueryPortFailed {
            datapath: "system@ovs-system".into(),
            interface: "ha-d489f511-9f".into(),
            error: "No such device".into()
        }
    );
}

#[test]
fn every_prefix_and_mangling_of_the_seed_log_parses_without_panic() {
    let text = std::fs::read_to_string(fixture()).unwrap();
    for cut in 0..text.len() {
        if text.is_char_boundary(cut) {
            let _ = nodedoc_ovs::log::reduce(&text[..cut], None);
        }
    }
    let mangled: String = text
        .chars()
        .enumerate()
        .map(|(i, c)| if i % 7 == 3 { '|' } else { c })
        .collect();
    let _ = nodedoc_ovs::log::reduce(&mangled, None);
}
