//! ovs-vswitchd.log lines. Interface names and error texts in them come from whoever names
//! a port or a device. Reduces the text as the collector does, then runs the detectors on it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nodedoc_model::{HostInfo, OvsState, Snapshot};
use nodedoc_ovs::log;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for line in text.lines() {
        if let Some((timestamp, _)) = log::parse_line(line) {
            let _ = log::parse_timestamp(&timestamp);
        }
    }
    let reduced = log::reduce(&text, Some(1));
    assert_eq!(reduced.lines_read, text.lines().count() as u64);
    let mut snapshot = Snapshot::new(HostInfo {
        clock_ticks_per_sec: 100,
        ..HostInfo::default()
    });
    snapshot.ovs = Some(OvsState {
        endpoint: "unix:/fuzz/db.sock".into(),
        log: Some(reduced),
        ..OvsState::default()
    });
    let _ = nodedoc_detectors::run(&snapshot, &nodedoc_detectors::Config::default());
});
