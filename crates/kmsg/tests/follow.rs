//! [`KmsgFollower`] against the live `/dev/kmsg`: new records exactly once and in order, a
//! restart from a saved sequence, a 50,000-record burst that overwrites the ring, and a
//! consumer that does not keep up. Skipped, with the reason printed, where `/dev/kmsg`
//! cannot be written.
//!
//! The tests share the kernel's ring, and the burst overwrites it, so they run one at a
//! time. Each writes records tagged `ndfollow-<test>-<pid>-<nanos>: …` and tells them from
//! the host's own records by that tag. The exact accounting is by sequence numbers, which
//! holds whoever else writes.

#[macro_use]
mod live;

use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nodedoc_kmsg::{
    write_kmsg_with_level, Error, FollowStats, FollowerThread, KmsgFollower, KmsgRecord, Start,
};

/// The kernel's ring is one per host; these tests read it whole.
static RING: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    RING.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A tag no other run or test writes.
fn tag(test: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    format!("ndfollow-{test}-{}-{nanos}", std::process::id())
}

/// Writes `<tag>: <n>` at level 6 (info): below the console's level, so the kernel does
/// not also print it on the serial console. Each write opens `/dev/kmsg` afresh, which
/// keeps it clear of `printk_devkmsg=ratelimit` (10 records per open file per 5 s).
fn write(tag: &str, n: impl std::fmt::Display) {
    write_kmsg_with_level(6, &format!("{tag}: {n}")).expect("writing /dev/kmsg");
}

/// The `n` of a record written by [`write`] with `tag`.
fn number(tag: &str, record: &KmsgRecord) -> Option<u64> {
    record
        .message
        .strip_prefix(tag)?
        .strip_prefix(": ")?
        .parse()
        .ok()
}

fn is(tag: &str, label: &str, record: &KmsgRecord) -> bool {
    record.message == format!("{tag}: {label}")
}

/// Waits for `done`, polling; panics with `what` after a minute. A bound on waiting for the
/// kernel and another thread, not an assertion about speed.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Drains `follower` until it reaches the end of the log.
fn drain_to_end(follower: &mut KmsgFollower) -> Vec<KmsgRecord> {
    let mut records = Vec::new();
    while !follower
        .drain(|record| records.push(record))
        .expect("draining /dev/kmsg")
        .caught_up
    {}
    records
}

/// Takes records from `thread` until one satisfies `last`, which is returned last.
fn receive_until(
    thread: &FollowerThread,
    what: &str,
    mut last: impl FnMut(&KmsgRecord) -> bool,
) -> Vec<KmsgRecord> {
    let mut records = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        if let Ok(record) = thread.recv_timeout(Duration::from_millis(100)) {
            let done = last(&record);
            records.push(record);
            if done {
                return records;
            }
        }
    }
}

/// Asserts the records are in strictly rising sequence order and returns the number of
/// sequence numbers missing between them.
fn gaps(records: &[KmsgRecord]) -> u64 {
    records
        .windows(2)
        .map(|pair| {
            assert!(
                pair[0].sequence < pair[1].sequence,
                "out of order or repeated: {} then {}",
                pair[0].sequence,
                pair[1].sequence
            );
            pair[1].sequence - pair[0].sequence - 1
        })
        .sum()
}

/// Every sequence number from the first record read to the last is counted exactly once.
fn assert_accounted(stats: &FollowStats, first_sequence: u64) {
    let last = stats.last_sequence.expect("a record was read");
    assert_eq!(
        stats.read + stats.dropped + stats.lost + stats.malformed,
        last - first_sequence + 1,
        "{stats:?} from sequence {first_sequence}"
    );
}

#[test]
fn new_records_are_delivered_once_in_order_with_their_text() {
    require_live_kmsg!();
    let _ring = one_at_a_time();
    let tag = tag("once");
    write(&tag, "before");
    let mut follower = KmsgFollower::open(Start::End).unwrap();
    let mut thread = KmsgFollower::open(Start::End).unwrap().spawn(1000).unwrap();

    for n in 0..20 {
        write(&tag, n);
    }
    write(&tag, "end");

    let polled = drain_to_end(&mut follower);
    let threaded = receive_until(&thread, "the end record", |r| is(&tag, "end", r));
    for records in [&polled, &threaded] {
        let mine: Vec<u64> = records.iter().filter_map(|r| number(&tag, r)).collect();
        assert_eq!(mine, (0..20).collect::<Vec<_>>(), "each once, in order");
        assert!(!records.iter().any(|r| is(&tag, "before", r)));
        let end = records.iter().find(|r| is(&tag, "end", r)).unwrap();
        assert_eq!((end.facility, end.level), (1, 6));
        assert_eq!(gaps(records), 0, "nothing missing between records");
    }

    // A second round brings nothing already seen.
    let again = drain_to_end(&mut follower);
    assert!(again.iter().all(|r| !r.message.starts_with(&tag)));

    let stats = follower.stats();
    assert_eq!(stats.lost + stats.dropped + stats.malformed, 0, "{stats:?}");
    assert_eq!(stats.lag, 0);
    assert!(stats.caught_up);
    assert_accounted(&stats, polled[0].sequence);
    let polled_and_again = polled.len() + again.len();
    assert_eq!(stats.read, polled_and_again as u64);

    let stats = thread.stop().unwrap();
    let rest: Vec<KmsgRecord> = std::iter::from_fn(|| thread.try_recv().ok()).collect();
    assert_eq!(stats.read, (threaded.len() + rest.len()) as u64);
    assert_accounted(&stats, threaded[0].sequence);
}

#[test]
fn restart_from_a_saved_sequence_reads_only_what_came_after() {
    require_live_kmsg!();
    let _ring = one_at_a_time();
    let tag = tag("restart");
    let mut first_run = KmsgFollower::open(Start::End).unwrap();
    for n in 0..5 {
        write(&tag, n);
    }
    let seen = drain_to_end(&mut first_run);
    let saved = seen
        .iter()
        .rfind(|r| number(&tag, r) == Some(4))
        .expect("the first run's records")
        .sequence;
    drop(first_run);

    for n in 5..10 {
        write(&tag, n);
    }
    let mut second_run = KmsgFollower::open(Start::After(saved)).unwrap();
    assert_eq!(second_run.stats().last_sequence, None, "nothing read yet");
    let records = drain_to_end(&mut second_run);
    let mine: Vec<u64> = records.iter().filter_map(|r| number(&tag, r)).collect();
    assert_eq!(mine, [5, 6, 7, 8, 9]);
    assert!(records.iter().all(|r| r.sequence > saved));
    let stats = second_run.stats();
    assert!(
        stats.skipped >= 5,
        "the first run's records were passed over: {stats:?}"
    );
    assert_eq!(stats.lost, 0);
    // Accounted from the saved sequence on.
    assert_accounted(&stats, saved + 1);
}

#[test]
fn saved_sequence_beyond_the_ring_reads_the_whole_ring() {
    require_live_kmsg!();
    let _ring = one_at_a_time();
    let tag = tag("stale");
    write(&tag, "in the ring");
    // A sequence no kernel reaches in this boot, as from a state file of an earlier boot.
    let mut follower = KmsgFollower::open(Start::After(u64::MAX / 2)).unwrap();
    let records = drain_to_end(&mut follower);
    assert!(records.iter().any(|r| is(&tag, "in the ring", r)));
    let stats = follower.stats();
    assert_eq!((stats.skipped, stats.lost), (0, 0), "{stats:?}");
    assert_accounted(&stats, records[0].sequence);
}

/// The ring holds fewer records than this many bytes; a burst this big must overwrite it.
fn ring_bytes() -> usize {
    // SYSLOG_ACTION_SIZE_BUFFER; any user may ask.
    let size = unsafe { libc::klogctl(10, std::ptr::null_mut(), 0) };
    usize::try_from(size).unwrap_or(0)
}

const BURST: u64 = 50_000;
const WRITER_ENV: &str = "NODEDOC_TEST_KMSG_BURST";

/// The writer of [`a_burst_of_50000_records_is_survived_and_accounted`], run as its own
/// process (this test binary again). Does nothing unless that test started it.
#[test]
#[ignore = "the writer process of the burst test; does nothing on its own"]
fn burst_writer_process() {
    let Ok(tag) = std::env::var(WRITER_ENV) else {
        return;
    };
    for n in 0..BURST {
        write(&tag, n);
    }
}

/// A child process killed and reaped however the test ends.
struct Writer(Child);

impl Writer {
    fn start(tag: &str) -> Writer {
        let child = Command::new(std::env::current_exe().unwrap())
            .args(["burst_writer_process", "--exact", "--ignored"])
            .args(["--nocapture", "--test-threads=1"])
            .env(WRITER_ENV, tag)
            .stdout(Stdio::null())
            .spawn()
            .expect("starting the writer process");
        Writer(child)
    }

    fn wait(mut self) {
        let status = self.0.wait().unwrap();
        assert!(status.success(), "the writer process failed: {status}");
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[test]
fn a_burst_of_50000_records_is_survived_and_accounted() {
    require_live_kmsg!();
    let _ring = one_at_a_time();
    let tag = tag("burst");
    // Two followers see the same burst: one on its own thread, keeping up as well as its
    // limits let it, and one not drained at all until the burst is over.
    let mut thread = KmsgFollower::open(Start::End)
        .unwrap()
        .spawn(2 * BURST as usize)
        .unwrap();
    let mut slow = KmsgFollower::open(Start::End).unwrap();
    write(&tag, "start");
    let mut received = receive_until(&thread, "the start record", |r| is(&tag, "start", r));
    let start_sequence = received.last().unwrap().sequence;
    wait_for("the thread's counters to pass the start record", || {
        thread.stats().last_sequence >= Some(start_sequence)
    });
    let before = thread.stats();
    let slow_before = drain_to_end(&mut slow);
    assert!(slow_before.iter().any(|r| is(&tag, "start", r)));
    let slow_cursor = slow.stats().last_sequence.unwrap();

    let writer = Writer::start(&tag);
    // Take records while the writer writes: the queue is for lag, not for storage.
    received.extend(receive_until(
        &thread,
        "the last record of the burst",
        |r| number(&tag, r) == Some(BURST - 1),
    ));
    writer.wait();
    let after_burst = thread.stats();
    // Drained at once: the longer it waits, the likelier another test on the host has
    // overwritten ours too.
    let late = drain_to_end(&mut slow);

    // Idle: no records of ours, so no drain without a record to read.
    std::thread::sleep(Duration::from_secs(1));
    let idle = thread.stats();
    let stats = thread.stop().expect("the follower survived the burst");
    received.extend(std::iter::from_fn(|| thread.try_recv().ok()));

    // Exact accounting, from the follower's counters and from the records received.
    assert_eq!(
        stats.read,
        received.len() as u64,
        "every record read was received"
    );
    assert_eq!(stats.last_sequence, Some(received.last().unwrap().sequence));
    assert_eq!(
        gaps(&received),
        stats.lost + stats.dropped + stats.malformed
    );
    assert_accounted(&stats, received[0].sequence);
    assert_eq!(stats.dropped, 0, "the queue had room for the whole burst");

    // Ours: in order, the newest seen, and every one missing inside a counted gap.
    let ours: Vec<(u64, u64)> = received
        .iter()
        .filter_map(|r| Some((number(&tag, r)?, r.sequence)))
        .collect();
    assert_eq!(ours.last().map(|&(n, _)| n), Some(BURST - 1));
    for pair in ours.windows(2) {
        let ((n0, s0), (n1, s1)) = (pair[0], pair[1]);
        assert!(n0 < n1, "ours out of order: {n0} then {n1}");
        assert!(
            n1 - n0 <= s1 - s0,
            "{} of ours missing between sequences {s0} and {s1}",
            n1 - n0 - 1
        );
    }
    let missing = BURST - ours.len() as u64;
    assert!(
        missing <= stats.lost,
        "{missing} of ours missing, {} lost",
        stats.lost
    );

    // Bounded work: a drain only when the kernel has a record, at most one read(2) per
    // record plus the EPIPE and the end of each drain, and nothing while the log is idle.
    let handled = |s: &FollowStats| s.read + s.dropped + s.malformed + s.skipped;
    let burst_records = handled(&after_burst) - handled(&before);
    let burst_drains = after_burst.drains - before.drains;
    let burst_calls = after_burst.read_calls - before.read_calls;
    let burst_cpu = after_burst.cpu_time - before.cpu_time;
    assert!(
        burst_drains <= burst_records + 2,
        "{burst_drains} drains for {burst_records} records"
    );
    assert!(
        burst_calls <= 2 * burst_records + burst_drains,
        "{burst_calls} read calls for {burst_records} records in {burst_drains} drains"
    );
    assert!(
        idle.drains - after_burst.drains <= handled(&idle) - handled(&after_burst),
        "drains while idle: {after_burst:?} then {idle:?}"
    );
    // Far from a spinning reader (a core for the whole burst); generous for a loaded host.
    assert!(burst_cpu < Duration::from_secs(2), "{burst_cpu:?} of CPU");
    eprintln!(
        "burst: {BURST} written, {burst_records} records read by the thread in {burst_drains} \
         drains and {burst_calls} read calls, {burst_cpu:?} CPU, {} lost, {missing} of ours missing",
        stats.lost - before.lost
    );

    // The slow follower: one EPIPE, a loss equal to the sequence gap, then the newest.
    let slow_stats = slow.stats();
    let lost = slow_stats.lost;
    assert_eq!(
        lost,
        late[0].sequence - slow_cursor - 1 + gaps(&late),
        "the loss is the gap in sequence numbers"
    );
    assert_accounted(&slow_stats, slow_before[0].sequence);
    // The ring drops its oldest records first, so what is left of ours is the newest of
    // them, without a hole; nothing is left only if others wrote a ring's worth after ours.
    let late_ours: Vec<u64> = late.iter().filter_map(|r| number(&tag, r)).collect();
    let newest_of_ours = BURST - late_ours.len() as u64..BURST;
    assert!(
        late_ours.iter().copied().eq(newest_of_ours.clone()),
        "the follower resumed with the newest: {newest_of_ours:?} expected, got {} records \
         from {:?} to {:?}",
        late_ours.len(),
        late_ours.first(),
        late_ours.last()
    );
    let late_missing = BURST - late_ours.len() as u64;
    assert!(
        late_missing <= lost,
        "{late_missing} of ours missing, {lost} lost"
    );
    if ring_bytes() < (BURST as usize) * tag.len() {
        assert!(lost > 0, "a burst bigger than the ring overwrote records");
    }
    eprintln!(
        "slow follower: {lost} lost, {} of ours read after the overwrite (ring {} bytes)",
        late_ours.len(),
        ring_bytes()
    );
}

#[test]
fn a_consumer_that_does_not_read_costs_dropped_records_not_memory() {
    require_live_kmsg!();
    let _ring = one_at_a_time();
    let tag = tag("lag");
    let mut thread = KmsgFollower::open(Start::End).unwrap().spawn(100).unwrap();
    // Tells where our records end, in sequence numbers.
    let mut marker = KmsgFollower::open(Start::End).unwrap();
    for n in 0..1000 {
        write(&tag, n);
    }
    write(&tag, "end");
    let end = drain_to_end(&mut marker)
        .into_iter()
        .find(|r| is(&tag, "end", r))
        .unwrap()
        .sequence;
    wait_for("the follower to read past our records", || {
        let stats = thread.stats();
        assert!(stats.lag <= 100, "the queue grew past its bound: {stats:?}");
        stats.last_sequence >= Some(end)
    });

    let stats = thread.stats();
    assert_eq!((stats.read, stats.lag), (100, 100), "{stats:?}");
    assert!(stats.dropped >= 901, "{stats:?}");
    let queued: Vec<KmsgRecord> = std::iter::from_fn(|| thread.try_recv().ok()).collect();
    assert_eq!(queued.len(), 100, "the queue holds what fit");
    assert_eq!(thread.stats().lag, 0);
    // Exactly accounted even so: the first 100 records read are the ones queued.
    gaps(&queued);
    assert_accounted(&stats, queued[0].sequence);

    // With room again, new records come through.
    write(&tag, "after");
    receive_until(&thread, "a record after the queue emptied", |r| {
        is(&tag, "after", r)
    });
    thread.stop().unwrap();
}

#[test]
fn an_unreadable_path_is_a_clear_error() {
    let error = KmsgFollower::open_path(
        std::path::Path::new("/nonexistent/kmsg"),
        Start::End,
        Default::default(),
    )
    .unwrap_err();
    assert!(matches!(error, Error::OpenForRead { .. }));
    assert_eq!(
        error.to_string(),
        "cannot open /nonexistent/kmsg for reading"
    );
}
