//! Services' logs given with `--log` are untrusted text from a sick node. Lines in the shapes
//! the runtime detectors look for — containerd's failed StopContainer, dockerd's kill lines,
//! kubelet's PLEG line — with values at the ends of their ranges (times in year 0 and 9999,
//! stalls of billions of hours, ids that are not ids, escapes) must parse, and every detector
//! must run over them without a panic, its text escaped.

use nodedoc_model::{text::Escaped, Snapshot};
use proptest::prelude::*;

fn time() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("2026-12-01T10:00:00.123456789Z".to_string()),
        Just("0000-01-01T00:00:00Z".to_string()),
        Just("9999-12-31T23:59:59.999999999Z".to_string()),
        Just("2026-13-45T99:99:99Z".to_string()),
        Just("2026-12-01T10:00:00+99:99".to_string()),
        "[0-9T:.Z+-]{0,30}",
    ]
}

fn id() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("b32a2fd9b0a141bdc9be897b80762009665ce408cde67b93e64dc2b1c1aa2c78".to_string()),
        Just("b32a2fd9b0a1".to_string()),
        Just(String::new()),
        Just("\u{1b}]0;pwned\u{7}".to_string()),
        "[0-9a-f\"\\\\]{0,70}",
    ]
}

fn stall() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("3m5.1s".to_string()),
        Just("99999999999999999999h0m0s".to_string()),
        Just("-3m".to_string()),
        Just("1e308s".to_string()),
        "[0-9hms.µ-]{0,24}",
    ]
}

fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        (time(), id(), id()).prop_map(|(t, a, b)| format!(
            "time=\"{t}\" level=error msg=\"StopContainer for \\\"{a}\\\" failed\" error=\"rpc error: code = DeadlineExceeded desc = an error occurs during waiting for container \\\"{b}\\\" to be killed: wait container \\\"{b}\\\": context deadline exceeded\""
        )),
        (time(), id()).prop_map(|(t, a)| format!(
            "time=\"{t}\" level=info msg=\"Container failed to exit within 10 seconds of kill - trying direct SIGKILL\" container={a} error=\"context deadline exceeded\""
        )),
        (time(), id()).prop_map(|(t, a)| format!(
            "time=\"{t}\" level=error msg=\"Handler for POST /v1.41/containers/{a}/stop returned error: cannot stop container: {a}: tried to kill container, but did not receive an exit event\""
        )),
        (0u32..1300, stall(), stall()).prop_map(|(md, s, t)| format!(
            "E{md:04} 10:11:12.123456    1234 kubelet.go:2183] \"Skipping pod synchronization\" err=\"PLEG is not healthy: pleg was last seen active {s} ago; threshold is {t}\""
        )),
        (stall(), stall()).prop_map(|(s, t)| format!(
            "Dec  1 10:11:12 node kubelet[1234]: skipping pod synchronization - PLEG is not healthy: pleg was last seen active {s} ago; threshold is {t}"
        )),
        ".{0,60}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn runtime_and_kubelet_lines_at_their_extremes_run_every_detector(
        lines in proptest::collection::vec(line(), 1..30),
        name in proptest::sample::select(&["containerd.log", "dockerd.log", "kubelet.log", "x.log"][..]),
    ) {
        let mut snapshot = Snapshot::new(Default::default());
        snapshot.host.collected_at_unix = 1_796_108_600;
        snapshot
            .service_logs
            .push(nodedoc_collect::service_log::parse(&lines.join("\n"), name));
        let findings = nodedoc_detectors::run(&snapshot, &Default::default());
        for finding in &findings {
            let shown = format!("{}", Escaped(&finding.summary));
            prop_assert!(!shown.contains('\x1b'), "raw escape in {:?}", shown);
        }
    }
}

/// The generator's shapes are the detectors' own: in range, they give their findings.
#[test]
fn the_shapes_in_range_give_their_findings() {
    let id = "b32a2fd9b0a141bdc9be897b80762009665ce408cde67b93e64dc2b1c1aa2c78";
    let containerd = format!(
        "time=\"2026-12-01T10:00:00.123456789Z\" level=error msg=\"StopContainer for \\\"{id}\\\" failed\" error=\"rpc error: code = DeadlineExceeded desc = an error occurs during waiting for container \\\"{id}\\\" to be killed: wait container \\\"{id}\\\": context deadline exceeded\""
    );
    let kubelet = "Dec  1 10:11:12 node kubelet[1234]: skipping pod synchronization - PLEG is not healthy: pleg was last seen active 3m5.1s ago; threshold is 3m0s";
    let mut snapshot = Snapshot::new(Default::default());
    snapshot.host.collected_at_unix = 1_796_108_600;
    snapshot
        .service_logs
        .push(nodedoc_collect::service_log::parse(
            &containerd,
            "containerd.log",
        ));
    snapshot
        .service_logs
        .push(nodedoc_collect::service_log::parse(kubelet, "kubelet.log"));
    let findings = nodedoc_detectors::run(&snapshot, &Default::default());
    let detectors: Vec<&str> = findings.iter().map(|f| f.detector.as_str()).collect();
    assert!(
        detectors.contains(&"container-stop-failed"),
        "{detectors:?}"
    );
    assert!(
        detectors.contains(&"kubelet-pleg-unhealthy"),
        "{detectors:?}"
    );
}
