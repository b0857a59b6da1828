//! The agent's OVSDB monitor thread against a real (private) ovsdb-server: a tap's lifecycle
//! arrives as typed rows that become seed 002's events; a restarted server is a resync; a
//! consumer that does not keep up gets the whole database instead of an unbounded queue.

use std::time::{Duration, Instant};

use nodedoc_model::OvsDbEventKind;
use nodedoc_ovs::live::OvsTables;
use nodedoc_ovs::monitor::{Inbox, MonitorMessage, MonitorThread};
use nodedoc_ovsdb::testing::TestServer;
use nodedoc_ovsdb::ReconnectOptions;

fn options() -> ReconnectOptions {
    ReconnectOptions {
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
        ..ReconnectOptions::default()
    }
}

/// The next message that is not a disconnection (bounded wait: a hang, not a timing, fails).
fn next(inbox: &Inbox) -> MonitorMessage {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match inbox.recv_timeout(left) {
            Some(MonitorMessage::Disconnected { .. }) => continue,
            Some(message) => return message,
            None => panic!("no message from the monitor thread"),
        }
    }
}

fn resync(inbox: &Inbox) -> OvsTables {
    match next(inbox) {
        MonitorMessage::Resync { rows, .. } => OvsTables::from_rows(rows),
        other => panic!("expected the whole database, got {other:?}"),
    }
}

#[test]
fn a_taps_lifecycle_arrives_as_events_and_a_restart_as_a_resync() {
    let mut server = TestServer::start().expect("ovsdb-server");
    server.vsctl(&["add-br", "br-int"]).unwrap();
    let inbox = Inbox::new();
    let endpoint = server.endpoint().parse().unwrap();
    let _thread = MonitorThread::spawn(endpoint, options(), &inbox).unwrap();
    let mut tables = resync(&inbox);
    let mut state = tables.to_state("test");
    assert_eq!(state.bridges.len(), 1);

    // libvirt plugs a VM's tap (seed 002), ovs-vswitchd would then assign its OpenFlow
    // port, and libvirt unplugs it at shutdown.
    server
        .vsctl(&[
            "--",
            "add-port",
            "br-int",
            "tap7f",
            "--",
            "set",
            "Interface",
            "tap7f",
            "external_ids:iface-id=5bd1f9a8-2c1b-4f0e-9c1f-3c8e0b4a7d21",
            "external_ids:iface-status=active",
            "external_ids:attached-mac=fa:16:3e:11:22:33",
            "external_ids:vm-uuid=8f6b0c3e-5d2a-4e71-b9a4-0c6e2f1d3b57",
        ])
        .unwrap();
    server
        .vsctl(&["set", "Interface", "tap7f", "ofport=5"])
        .unwrap();
    server.vsctl(&["del-port", "br-int", "tap7f"]).unwrap();
    let mut events = Vec::new();
    while events.len() < 3 {
        match next(&inbox) {
            MonitorMessage::Update { at_unix_ms, rows } => {
                let applied = tables.apply(rows, at_unix_ms);
                tables.patch(&mut state, &applied.touched);
                assert_eq!(state, tables.to_state("test"));
                events.extend(applied.events);
            }
            other => panic!("{other:?}"),
        }
    }
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.name()).collect();
    assert_eq!(kinds, ["inserted", "ofport", "deleted"]);
    assert!(events.iter().all(|e| e.interface == "tap7f"));
    assert!(events.iter().all(|e| e.bridge.as_deref() == Some("br-int")));
    match &events[0].kind {
        OvsDbEventKind::Inserted { external_ids, .. } => {
            assert_eq!(
                external_ids["vm-uuid"],
                "8f6b0c3e-5d2a-4e71-b9a4-0c6e2f1d3b57"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        events[1].kind,
        OvsDbEventKind::Ofport {
            from: None,
            to: Some(5)
        }
    );
    assert_eq!(events[2].kind, OvsDbEventKind::Deleted { ofport: Some(5) });

    // The server goes away and comes back with a port added meanwhile: a fresh copy, whose
    // difference with the old one is the insert.
    server.stop().unwrap();
    match inbox.recv_timeout(Duration::from_secs(30)) {
        Some(MonitorMessage::Disconnected { error, .. }) => assert!(!error.is_empty()),
        other => panic!("{other:?}"),
    }
    server.restart().unwrap();
    server.vsctl(&["add-port", "br-int", "tap80"]).unwrap();
    // tap80 shows as the difference of the two copies, or as an update after the new copy.
    let mut resynced = false;
    let seen = loop {
        let events = match next(&inbox) {
            MonitorMessage::Resync {
                generation,
                at_unix_ms,
                rows,
            } => {
                assert!(generation >= 2, "{generation}");
                resynced = true;
                tables.replace(rows, at_unix_ms)
            }
            MonitorMessage::Update { at_unix_ms, rows } => tables.apply(rows, at_unix_ms).events,
            other => panic!("{other:?}"),
        };
        if let Some(event) = events.into_iter().find(|e| e.interface == "tap80") {
            break event;
        }
    };
    assert!(resynced);
    assert_eq!(seen.kind.name(), "inserted");
    assert!(tables.to_state("test").interface("tap80").is_some());
}

#[test]
fn a_consumer_that_falls_behind_gets_the_whole_database_once_it_has_room() {
    let server = TestServer::start().expect("ovsdb-server");
    server.vsctl(&["add-br", "br0"]).unwrap();
    // Room for two messages only.
    let inbox = Inbox::with_bounds(2, 1_000);
    let endpoint = server.endpoint().parse().unwrap();
    let _thread = MonitorThread::spawn(endpoint, options(), &inbox).unwrap();
    let mut tables = resync(&inbox);
    for i in 0..8 {
        server
            .vsctl(&["add-port", "br0", &format!("p{i}")])
            .unwrap();
    }
    // Only now read: two updates were queued, the rest dropped, then the whole database.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match next(&inbox) {
            MonitorMessage::Update { at_unix_ms, rows } => {
                tables.apply(rows, at_unix_ms);
            }
            MonitorMessage::Resync {
                at_unix_ms, rows, ..
            } => {
                tables.replace(rows, at_unix_ms);
                if tables.interface_count() == 9 {
                    break;
                }
            }
            other => panic!("{other:?}"),
        }
        assert!(Instant::now() < deadline, "never caught up");
    }
    assert!(
        inbox
            .stats()
            .fell_behind
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );
    assert_eq!(inbox.queued_rows(), 0);
}
