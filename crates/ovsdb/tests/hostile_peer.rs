//! The client against a hostile peer (issue 8, item 4): a Python OVSDB "server" that floods
//! `echo` requests without reading, answers with a 120 MB reply, or floods monitor updates.
//! Each attack ends with an error naming the limit, and the process's peak memory stays
//! bounded (VmHWM, reset before each test; the tests run one at a time so that the peak is
//! theirs).

use std::sync::Mutex;
use std::time::Duration;

use nodedoc_ovsdb::testing::{HostileMode, HostilePeer};
use nodedoc_ovsdb::{
    Client, ConnectionError, Error, FrameError, MonitorEvent, MonitorRequest, ReconnectOptions,
    ReconnectingMonitor,
};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Generous bound so a broken test fails instead of hanging; never a performance assertion.
const PATIENCE: Duration = Duration::from_secs(60);

/// Before these fixes the same attacks cost 2 GB and more; a bound well below that, well
/// above what the limits allow.
const PEAK_BOUND_KB: u64 = 200 * 1024;

fn reset_peak_rss() {
    // "5" resets the peak resident set size (proc(5), /proc/PID/clear_refs).
    std::fs::write("/proc/self/clear_refs", "5").expect("reset VmHWM");
}

fn peak_rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn connection_error(err: &Error) -> &ConnectionError {
    match err {
        Error::ConnectionLost { source, .. } => source,
        other => panic!("expected ConnectionLost, got {other}"),
    }
}

/// Calls `list_dbs` on a fresh peer: the peer (for its endpoint), the call's error, and the
/// peak RSS while it ran.
fn list_dbs_against(mode: HostileMode) -> (HostilePeer, Error, u64) {
    let peer = HostilePeer::start(mode).expect("python3 peer");
    reset_peak_rss();
    let err = runtime().block_on(async {
        let client = Client::connect(peer.endpoint()).await.unwrap();
        tokio::time::timeout(PATIENCE, client.list_dbs())
            .await
            .expect("the call ended")
            .unwrap_err()
    });
    let peak = peak_rss_kb();
    (peer, err, peak)
}

#[test]
fn a_peer_flooding_echo_requests_without_reading_is_cut_off() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (peer, err, peak) = list_dbs_against(HostileMode::EchoFlood);
    assert!(
        matches!(
            connection_error(&err),
            ConnectionError::PeerNotReading { limit } if *limit == 4 << 20
        ),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains(&format!("list_dbs on {}", peer.endpoint())),
        "{text}"
    );
    assert!(
        text.contains("the 4 MiB outgoing queue is full (max_outgoing_queue)"),
        "{text}"
    );
    assert!(peak < PEAK_BOUND_KB, "peak RSS {peak} kB");
    eprintln!("echo flood: peak RSS {peak} kB");
}

#[test]
fn a_120_mb_reply_is_refused_at_the_size_limit() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (peer, err, peak) = list_dbs_against(HostileMode::HugeReply);
    assert!(
        matches!(
            connection_error(&err),
            ConnectionError::Frame(FrameError::Oversized { limit }) if *limit == 16 << 20
        ),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains(&format!(
            "list_dbs on {}: connection lost: a message exceeds the size limit of 16 MiB (max_message_size)",
            peer.endpoint()
        )),
        "{text}"
    );
    assert!(peak < PEAK_BOUND_KB, "peak RSS {peak} kB");
    eprintln!("120 MB reply: peak RSS {peak} kB");
}

#[test]
fn endless_monitor_updates_make_a_lagging_monitor_fail_and_the_reconnecting_one_resync() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let peer = HostilePeer::start(HostileMode::UpdateFlood).expect("python3 peer");
    reset_peak_rss();
    runtime().block_on(async {
        // A monitor nobody reads for a while: it fails with "lagged", ahead of its backlog.
        let client = Client::connect(peer.endpoint()).await.unwrap();
        let mut monitor = client
            .monitor_cond("Open_vSwitch", &[MonitorRequest::new("Interface")])
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut taken = 0;
        let err = loop {
            match tokio::time::timeout(PATIENCE, monitor.updates.next())
                .await
                .expect("the monitor ended")
            {
                Some(Ok(_)) => taken += 1,
                Some(Err(err)) => break err,
                None => panic!("ended without an error"),
            }
        };
        assert!(
            matches!(err, Error::MonitorLagged { limit, .. } if limit == 32 << 20),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains(&format!("on {} fell behind", peer.endpoint())),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("32 MiB limit (max_monitor_backlog)"),
            "{err}"
        );
        eprintln!("lagged after taking {taken} updates");
        drop(monitor);
        drop(client);

        // The reconnecting monitor resyncs from a fresh initial state.
        let mut reconnecting = ReconnectingMonitor::new(
            peer.endpoint(),
            "Open_vSwitch",
            vec![MonitorRequest::new("Interface")],
            ReconnectOptions {
                initial_backoff: Duration::from_millis(10),
                ..ReconnectOptions::default()
            },
        )
        .unwrap();
        async fn next(monitor: &mut ReconnectingMonitor) -> MonitorEvent {
            tokio::time::timeout(PATIENCE, monitor.next())
                .await
                .expect("an event")
        }
        assert!(matches!(
            next(&mut reconnecting).await,
            MonitorEvent::Initial { generation: 1, .. }
        ));
        tokio::time::sleep(Duration::from_millis(500)).await;
        let error = loop {
            match next(&mut reconnecting).await {
                MonitorEvent::Update(_) => {}
                MonitorEvent::Disconnected { error, .. } => break error,
                MonitorEvent::Initial { .. } => panic!("initial state twice"),
            }
        };
        assert!(matches!(error, Error::MonitorLagged { .. }), "{error}");
        assert!(matches!(
            next(&mut reconnecting).await,
            MonitorEvent::Initial { generation: 2, .. }
        ));
    });
    let peak = peak_rss_kb();
    assert!(peak < PEAK_BOUND_KB, "peak RSS {peak} kB");
    eprintln!("update flood: peak RSS {peak} kB");
}
