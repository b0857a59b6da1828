//! `/dev/kmsg` records (what any process with write access to /dev/kmsg, or the kernel on
//! behalf of any device name, can put there): one record, a saved dump, and the detectors
//! that read the messages (device names, `blocked for more than N seconds`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use nodedoc_model::{HostInfo, Snapshot};

fuzz_target!(|data: &[u8]| {
    let _ = nodedoc_kmsg::parse_kmsg_record(data);
    // The window cuts at a time taken from the input, so records on both sides of it occur.
    let since = data
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap()) >> 24);
    let windowed = nodedoc_kmsg::parse_kmsg_dump(data, since);
    assert!(windowed
        .records
        .iter()
        .all(|r| since.is_none_or(|s| r.monotonic_us >= s)));
    let log = nodedoc_kmsg::parse_kmsg_dump(data, None);
    let mut snapshot = Snapshot::new(HostInfo {
        kernel_release: "5.10.0-fuzz".into(),
        uptime_us: u64::MAX / 2,
        clock_ticks_per_sec: 100,
        ..HostInfo::default()
    });
    snapshot.kernel_log = Some(log);
    let _ = nodedoc_detectors::run(&snapshot, &nodedoc_detectors::Config::default());
});
