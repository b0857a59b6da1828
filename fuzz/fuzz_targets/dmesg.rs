//! `dmesg` text (syslog(2) when /dev/kmsg is not there, or a user's saved file), then the
//! detectors that read the messages.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nodedoc_model::{HostInfo, Snapshot};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let log = nodedoc_kmsg::parse_dmesg_text(&text, None);
    let lines = text.lines().filter(|line| !line.trim().is_empty()).count() as u64;
    assert_eq!(log.records.len() as u64 + log.malformed, lines);
    let since = data
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap()) >> 24);
    let _ = nodedoc_kmsg::parse_dmesg_text(&text, since);
    let mut snapshot = Snapshot::new(HostInfo {
        kernel_release: "4.19.0-fuzz".into(),
        uptime_us: u64::MAX / 2,
        clock_ticks_per_sec: 100,
        ..HostInfo::default()
    });
    snapshot.kernel_log = Some(log);
    let _ = nodedoc_detectors::run(&snapshot, &nodedoc_detectors::Config::default());
});
