//! The agent's Open vSwitch stream against a real (private) ovsdb-server: rounds read the
//! replica, updates between rounds patch the last snapshot in place with their events, the
//! log is followed, a lost server degrades the `ovsdb` source alone.

use std::io::Write;
use std::time::{Duration, Instant};

use nodedoc_collect::ovs_stream::{OvsNews, OvsStream};
use nodedoc_collect::OvsSource;
use nodedoc_model::{Gaps, HostInfo, Snapshot, SourceState};
use nodedoc_ovsdb::testing::TestServer;

fn round(stream: &mut OvsStream) -> Snapshot {
    let mut snapshot = Snapshot::new(HostInfo::default());
    let mut gaps = Gaps::new();
    stream.round(&mut snapshot, &mut gaps);
    snapshot.gaps = gaps.into_vec();
    snapshot
}

/// Follows until news that changed the snapshot arrives (bounded: a hang, not a timing, fails).
fn changed(stream: &mut OvsStream, snapshot: &mut Snapshot) -> OvsNews {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let news = stream.follow(Some(snapshot), Duration::from_millis(200));
        if news.changed {
            return news;
        }
        assert!(Instant::now() < deadline, "no news");
    }
}

fn line(seq: u32, what: &str) -> String {
    format!("2026-12-01T07:00:00.{seq:03}Z|{seq:05}|bridge|INFO|bridge br-int: {what}\n")
}

#[test]
fn rounds_read_the_replica_and_updates_between_rounds_patch_the_last_snapshot() {
    let mut server = TestServer::start().expect("ovsdb-server");
    server.vsctl(&["add-br", "br-int"]).unwrap();
    let log_dir = tempfile::tempdir().unwrap();
    let log_path = log_dir.path().join("switch.log");
    std::fs::write(&log_path, line(1, "added interface tap1 on port 1")).unwrap();
    let mut stream = OvsStream::new(OvsSource {
        endpoint: Some(server.endpoint()),
        log: Some(log_path.clone()),
    });
    let mut snapshot = round(&mut stream);
    let ovsdb = snapshot.source("ovsdb").unwrap();
    assert_eq!(ovsdb.state, SourceState::Collected, "{ovsdb:?}");
    assert!(
        ovsdb.detail.contains("followed by monitor"),
        "{}",
        ovsdb.detail
    );
    assert_eq!(snapshot.ovs.as_ref().unwrap().bridges.len(), 1);
    let log = snapshot.ovs.as_ref().unwrap().log.as_ref().unwrap();
    assert_eq!(log.count("interface-added"), 1);
    assert!(snapshot.source("netns").is_some());

    // A tap plugged between rounds: the snapshot is patched, the event named, and its
    // device (which does not exist) marked as not looked for everywhere yet.
    server
        .vsctl(&[
            "--",
            "add-port",
            "br-int",
            "tap1",
            "--",
            "set",
            "Interface",
            "tap1",
            "external_ids:vm-uuid=8f6b0c3e-5d2a-4e71-b9a4-0c6e2f1d3b57",
        ])
        .unwrap();
    let news = changed(&mut stream, &mut snapshot);
    assert_eq!(news.events.len(), 1);
    assert_eq!(news.events[0].interface, "tap1");
    assert_eq!(news.events[0].kind.name(), "inserted");
    let ovs = snapshot.ovs.as_ref().unwrap();
    assert!(ovs.interface("tap1").is_some());
    assert!(snapshot.network.as_ref().unwrap().is_unverified("tap1"));
    let history = ovs.db_history.as_ref().unwrap();
    assert_eq!(history.interfaces["tap1"].inserted, 1);
    // Two more changes: the snapshot's history stays the one the next round carries.
    server
        .vsctl(&["set", "Interface", "tap1", "ofport=4"])
        .unwrap();
    changed(&mut stream, &mut snapshot);
    server
        .vsctl(&["set", "Interface", "tap1", "external_ids:iface-id=5bd1"])
        .unwrap();
    changed(&mut stream, &mut snapshot);
    let patched = snapshot.ovs.as_ref().unwrap().db_history.clone().unwrap();
    assert_eq!(patched.events.len(), 3);

    // The next round: the same state from the replica, the log's new lines, and every
    // namespace read again (an interface changed), which clears the mark.
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&log_path)
        .unwrap();
    file.write_all(line(2, "deleted interface tap1 on port 1").as_bytes())
        .unwrap();
    let next = round(&mut stream);
    let ovs_next = next.ovs.as_ref().unwrap();
    assert_eq!(ovs_next.bridges, snapshot.ovs.as_ref().unwrap().bridges);
    assert_eq!(ovs_next.db_history.as_ref(), Some(&patched));
    assert_eq!(ovs_next.log.as_ref().unwrap().count("interface-deleted"), 1);
    assert!(next.network.as_ref().unwrap().unverified.is_empty());
    let netns = next.source("netns").unwrap();
    assert!(netns.detail.contains("read again"), "{}", netns.detail);
    snapshot = next;

    // The server goes away: the news says so and changes nothing; the next round's `ovsdb`
    // source failed, the others unaffected.
    server.stop().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let lost = loop {
        let news = stream.follow(Some(&mut snapshot), Duration::from_millis(200));
        if let Some(lost) = news.disconnected {
            assert!(!news.changed);
            break lost;
        }
        assert!(Instant::now() < deadline, "the loss was not noticed");
    };
    assert!(lost.contains("reconnecting in"), "{lost}");
    let after = round(&mut stream);
    let ovsdb = after.source("ovsdb").unwrap();
    // The socket file stays behind a stopped server, or not: either way, no OVS state.
    assert!(
        matches!(ovsdb.state, SourceState::Failed | SourceState::Absent),
        "{ovsdb:?}"
    );
    assert!(after.ovs.is_none());
}
