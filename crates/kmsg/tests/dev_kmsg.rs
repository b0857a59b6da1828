//! Against the live `/dev/kmsg`: records written are read back with the facility, level and
//! text the kernel gives them. Skipped, with the reason printed, where `/dev/kmsg` cannot
//! be written.

#[macro_use]
mod live;

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use nodedoc_kmsg::{
    read_dev_kmsg, read_kernel_log, read_syslog_buffer, write_kmsg, write_kmsg_with_level,
    KernelLog, KernelLogSource, KmsgRecord, DEV_KMSG,
};

/// A message no other run or test writes.
fn marker(test: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    format!(
        "nodedoc-kmsg-test {test} pid={} nonce={nanos}",
        std::process::id()
    )
}

fn find<'a>(log: &'a KernelLog, message: &str) -> Option<&'a KmsgRecord> {
    log.records.iter().find(|record| record.message == message)
}

fn read_live(since_us: Option<u64>) -> KernelLog {
    read_dev_kmsg(Path::new(DEV_KMSG), since_us).expect("reading /dev/kmsg")
}

#[test]
fn written_record_is_read_back_as_user_facility() {
    require_live_kmsg!();
    let message = marker("read-back");
    write_kmsg_with_level(3, &message).unwrap();

    let log = read_live(None);
    assert_eq!(log.source, KernelLogSource::DevKmsg);
    let record = find(&log, &message).expect("the record just written");
    assert_eq!(record.facility, 1, "user space writes as facility 1");
    assert_eq!(record.level, 3);
    assert!(!record.continuation);
    assert!(record.dictionary.is_empty());
    assert!(record.sequence > 0);
    assert!(
        log.records
            .windows(2)
            .all(|pair| pair[0].sequence < pair[1].sequence),
        "records come in sequence order"
    );
}

#[test]
fn window_start_is_inclusive_and_drops_older_records() {
    require_live_kmsg!();
    let message = marker("window");
    write_kmsg_with_level(6, &message).unwrap();
    let written_at = find(&read_live(None), &message)
        .expect("the record just written")
        .monotonic_us;

    let from_the_record = read_live(Some(written_at));
    assert!(find(&from_the_record, &message).is_some());

    let after_the_record = read_live(Some(written_at + 1));
    assert!(find(&after_the_record, &message).is_none());
    assert!(after_the_record.skipped_before_window >= 1);
    assert!(after_the_record
        .records
        .iter()
        .all(|record| record.monotonic_us > written_at));
}

#[test]
fn kernel_refuses_facility_zero_from_user_space() {
    require_live_kmsg!();
    let message = marker("emerg");
    write_kmsg_with_level(0, &message).unwrap();
    let log = read_live(None);
    let record = find(&log, &message).expect("the record just written");
    assert_eq!((record.facility, record.level), (1, 0));
}

#[test]
fn escaped_bytes_come_back_unescaped() {
    require_live_kmsg!();
    let message = format!(
        "{} tab\there back\\slash café; semi, comma \\x41",
        marker("escapes")
    );
    write_kmsg(&message).unwrap();
    let log = read_live(None);
    assert!(
        find(&log, &message).is_some(),
        "no record reads back as {message:?}"
    );
}

#[test]
fn embedded_newline_stays_one_record() {
    require_live_kmsg!();
    let message = format!("{} first\nsecond", marker("newline"));
    write_kmsg(&message).unwrap();
    assert!(find(&read_live(None), &message).is_some());
}

#[test]
fn writes_beyond_the_per_open_burst_all_arrive() {
    require_live_kmsg!();
    // The ratelimit allows 10 records per open file per 5 s; each write opens its own.
    let base = marker("burst");
    let messages: Vec<String> = (0..15).map(|i| format!("{base} #{i}")).collect();
    for message in &messages {
        write_kmsg(message).unwrap();
    }
    let log = read_live(None);
    for message in &messages {
        assert!(find(&log, message).is_some(), "{message:?} was dropped");
    }
}

#[test]
fn syslog_buffer_has_the_same_record() {
    require_live_kmsg!();
    let message = marker("syslog");
    write_kmsg_with_level(4, &message).unwrap();
    let log = match read_syslog_buffer(None) {
        Ok(log) => log,
        Err(error) if error.is_permission_denied() => {
            eprintln!("skipping: {error}");
            return;
        }
        Err(error) => panic!("{error}"),
    };
    assert_eq!(log.source, KernelLogSource::DmesgText);
    let record = find(&log, &message).expect("the record just written");
    assert_eq!((record.facility, record.level), (1, 4));
    assert_eq!(record.sequence, 0);

    let from_kmsg = read_live(None);
    let same = find(&from_kmsg, &message).unwrap();
    assert_eq!(
        record.monotonic_us, same.monotonic_us,
        "both read the same timestamp"
    );
}

#[test]
fn read_kernel_log_prefers_dev_kmsg() {
    require_live_kmsg!();
    let message = marker("convenience");
    write_kmsg(&message).unwrap();
    let log = read_kernel_log(None).unwrap();
    assert_eq!(log.source, KernelLogSource::DevKmsg);
    assert!(find(&log, &message).is_some());
}
