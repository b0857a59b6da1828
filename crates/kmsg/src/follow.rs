//! Following `/dev/kmsg` live: a cursor kept between rounds, only new records, bounded work
//! per call, and every sequence number accounted for.
//!
//! An agent reads the kernel log between its rounds. Three things go wrong in the watchers
//! that came before (node-problem-detector issues 282, 1003 and 1168): a flood keeps the
//! reader busy forever, the reader dies on `EPIPE` when the ring wraps, and a slow consumer
//! lets a queue grow without bound. Here:
//!
//! - Work is bounded per call: [`KmsgFollower::drain`] reads at most
//!   [`FollowLimits::records_per_drain`] records and [`FollowLimits::bytes_per_drain`] bytes,
//!   and the rest waits for the next call.
//! - `EPIPE` is a count, not an error: the kernel moves the reader to the oldest record
//!   left, and the gap in sequence numbers says exactly how many were overwritten.
//! - The thread of [`KmsgFollower::spawn`] waits in `poll(2)`, drains once per wakeup, then
//!   rests [`FollowLimits::pause`]: at most one drain per pause, however hard the kernel
//!   logs. Its queue is bounded; a record that does not fit is dropped and counted.
//!
//! The accounting, once the follower knows where it stands (from [`Start::After`] at once,
//! otherwise from the first record it reads): every sequence number after that point, up
//! to [`FollowStats::last_sequence`], is counted exactly once in
//! [`read`](FollowStats::read), [`dropped`](FollowStats::dropped),
//! [`lost`](FollowStats::lost) or [`malformed`](FollowStats::malformed).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use nodedoc_model::KmsgRecord;
use rustix::event::{EventfdFlags, PollFd, PollFlags, Timespec};
use rustix::fd::OwnedFd;
use rustix::fs::SeekFrom;
use rustix::io::Errno;
use rustix::time::ClockId;

use crate::dev_kmsg::{open_for_read, DEV_KMSG, READ_BUFFER_BYTES};
use crate::record::{parse_kmsg_record, ParseError};
use crate::Error;

/// Where a [`KmsgFollower`] starts reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// Only records written after the follower opened the log (`SEEK_END`).
    ///
    /// The follower learns its position from the first record it reads. If the kernel
    /// overwrites that position before then (more than a ring's worth of records between
    /// opening and the first drain), the loss is counted as 1, a lower bound: the one
    /// case where [`FollowStats::lost`] is not exact.
    End,
    /// Every record still in the ring, then new ones.
    Oldest,
    /// Records after this sequence number: the last one an earlier run of the agent
    /// processed. Records at or before it are read and [`skipped`](FollowStats::skipped);
    /// if the ring no longer reaches back to it, the records in between are counted as
    /// [`lost`](FollowStats::lost).
    ///
    /// Sequence numbers restart at boot, so a saved number is only meaningful with the boot
    /// it came from (`/proc/sys/kernel/random/boot_id`): compare before passing it. As a
    /// safety net, a number beyond every record in the ring cannot be from this boot; the
    /// follower then reads the whole ring as new instead of skipping until the kernel
    /// catches up with it.
    After(u64),
}

/// How much a [`KmsgFollower`] does at a time. A kernel printing in a tight loop can write
/// records faster than they are read; these bounds keep the follower from chasing it with a
/// whole core, at the price of records lost to the ring (counted) when the flood lasts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FollowLimits {
    /// The most `read(2)` calls one drain makes (a call returns one record, an `EPIPE`, or
    /// the end). Default 1024.
    pub records_per_drain: usize,
    /// A drain stops once it has read this many bytes. Default 256 KiB.
    pub bytes_per_drain: usize,
    /// The thread of [`KmsgFollower::spawn`] rests this long after each drain, so it
    /// drains at most once per pause. Default 10 ms: with the defaults above, at most 100
    /// wakeups and about 100,000 records a second.
    pub pause: Duration,
}

impl Default for FollowLimits {
    fn default() -> FollowLimits {
        FollowLimits {
            records_per_drain: 1024,
            bytes_per_drain: 256 * 1024,
            pause: Duration::from_millis(10),
        }
    }
}

/// The counters of a follower, for the agent's metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FollowStats {
    /// Records read and handed on: to the callback of [`KmsgFollower::drain`], or put on
    /// the queue of a [`FollowerThread`].
    pub read: u64,
    /// Records the kernel overwrote before the follower read them, from gaps in sequence
    /// numbers (an `EPIPE` from the kernel, or a saved sequence older than the ring).
    pub lost: u64,
    /// Records read while a [`FollowerThread`]'s queue was full, and thrown away.
    pub dropped: u64,
    /// Records that did not parse (each is assumed to hold the next sequence number).
    pub malformed: u64,
    /// Records read at or before the starting sequence of [`Start::After`], not handed on.
    pub skipped: u64,
    /// The sequence number of the last record read; `None` until the first one.
    pub last_sequence: Option<u64>,
    /// Records on a [`FollowerThread`]'s queue that the consumer has not taken yet.
    pub lag: u64,
    /// True when the last drain reached the end of the log; false when it stopped at its
    /// [`FollowLimits`] and more records are waiting in the kernel.
    pub caught_up: bool,
    /// Drains done (a [`FollowerThread`] drains once per wakeup).
    pub drains: u64,
    /// `read(2)` calls made on the log.
    pub read_calls: u64,
    /// CPU time the follower used: a [`FollowerThread`]'s whole thread, or the time spent
    /// inside [`KmsgFollower::drain`].
    pub cpu_time: Duration,
}

/// What one [`KmsgFollower::drain`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Drained {
    /// Records handed to the callback.
    pub records: usize,
    /// True when the drain reached the end of the log; false when it stopped at its
    /// limits and should be called again for the rest.
    pub caught_up: bool,
}

/// Reads new records from `/dev/kmsg` round after round, keeping its place between calls.
///
/// Use it directly with [`drain`](KmsgFollower::drain), which never blocks, or hand it to
/// its own thread with [`spawn`](KmsgFollower::spawn).
#[derive(Debug)]
pub struct KmsgFollower {
    file: OwnedFd,
    path: PathBuf,
    limits: FollowLimits,
    buffer: Box<[u8]>,
    /// The last sequence number accounted for; `None` until known.
    cursor: Option<u64>,
    /// Set while [`Start::After`] has not yet reached a record after its sequence.
    resuming: Option<Resume>,
    /// The kernel said `EPIPE`; the next record says how many were lost.
    overwrite_pending: bool,
    /// Malformed records since the last good one; they fill part of the next gap.
    malformed_since_record: u64,
    stats: FollowStats,
}

#[derive(Clone, Copy, Debug)]
struct Resume {
    highest_seen: Option<u64>,
    skipped: u64,
}

/// What became of one record offered to a consumer.
enum Offer {
    Taken,
    Dropped,
}

/// Why a drain stopped: the end of the log, or its limits.
enum DrainEnd {
    CaughtUp,
    Limit,
}

impl KmsgFollower {
    /// Opens [`DEV_KMSG`] with the default [`FollowLimits`]; see [`open_path`].
    ///
    /// [`open_path`]: KmsgFollower::open_path
    pub fn open(start: Start) -> Result<KmsgFollower, Error> {
        KmsgFollower::open_path(Path::new(DEV_KMSG), start, FollowLimits::default())
    }

    /// Opens `path` (the `/dev/kmsg` device; a regular file does not return one record per
    /// read) non-blocking, positioned as `start` says.
    ///
    /// Fails when the file cannot be opened (`EPERM` when `kernel.dmesg_restrict=1`
    /// without `CAP_SYSLOG`) or positioned.
    pub fn open_path(
        path: &Path,
        start: Start,
        limits: FollowLimits,
    ) -> Result<KmsgFollower, Error> {
        let file = open_for_read(path)?;
        // A fresh reader of /dev/kmsg starts at the oldest record in the ring.
        let (cursor, resuming) = match start {
            Start::End => {
                rustix::fs::seek(&file, SeekFrom::End(0)).map_err(|errno| Error::Read {
                    path: path.to_path_buf(),
                    source: errno.into(),
                })?;
                (None, None)
            }
            Start::Oldest => (None, None),
            Start::After(sequence) => (
                Some(sequence),
                Some(Resume {
                    highest_seen: None,
                    skipped: 0,
                }),
            ),
        };
        Ok(KmsgFollower {
            file,
            path: path.to_path_buf(),
            limits,
            buffer: vec![0; READ_BUFFER_BYTES].into_boxed_slice(),
            cursor,
            resuming,
            overwrite_pending: false,
            malformed_since_record: 0,
            stats: FollowStats::default(),
        })
    }

    /// Reads the records available now, up to the [`FollowLimits`], handing each new one to
    /// `deliver` in sequence order. Never blocks. Call again when
    /// [`Drained::caught_up`] is false.
    ///
    /// Fails only when a read fails other than the expected `EAGAIN` (the end), `EPIPE`
    /// (records overwritten: counted in [`FollowStats::lost`]) and `EINTR`; the follower
    /// keeps its place and can be drained again.
    pub fn drain(&mut self, mut deliver: impl FnMut(KmsgRecord)) -> Result<Drained, Error> {
        let before = self.stats.read;
        let end = self.drain_offering(&mut |record| {
            deliver(record);
            Offer::Taken
        })?;
        Ok(Drained {
            // At most `records_per_drain` records, which is a usize.
            records: usize::try_from(self.stats.read - before).unwrap_or(usize::MAX),
            caught_up: matches!(end, DrainEnd::CaughtUp),
        })
    }

    /// The counters so far. [`FollowStats::lag`] is 0: without a queue nothing waits.
    pub fn stats(&self) -> FollowStats {
        FollowStats {
            last_sequence: self.last_sequence(),
            ..self.stats
        }
    }

    /// Moves the follower to a thread of its own that waits for records with `poll(2)` and
    /// puts them on a queue of `queue_capacity` records (at least 1). When the consumer
    /// falls behind and the queue is full, records are dropped and counted in
    /// [`FollowStats::dropped`]: memory stays bounded by the queue.
    ///
    /// Fails when the thread or its wakeup `eventfd` cannot be created.
    pub fn spawn(self, queue_capacity: usize) -> Result<FollowerThread, Error> {
        let stop = rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)
            .map_err(|errno| Error::StartFollower {
                source: errno.into(),
            })?;
        let stop = Arc::new(stop);
        let shared = Arc::new(Shared::default());
        shared.publish(&self.stats(), Duration::ZERO);
        let capacity = queue_capacity.max(1);
        // The bound is the follower's own count (see `follow`), not the channel's: a
        // `sync_channel` would allocate room for every record up front (4 MB for 50,000
        // records, idle or not), where this one grows with what is queued.
        let (sender, records) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("kmsg-follower".to_string())
            .spawn({
                let stop = Arc::clone(&stop);
                let shared = Arc::clone(&shared);
                move || follow(self, &sender, capacity, &shared, &stop)
            })
            .map_err(|source| Error::StartFollower { source })?;
        Ok(FollowerThread {
            records,
            shared,
            stop,
            thread: Some(thread),
        })
    }

    fn last_sequence(&self) -> Option<u64> {
        // While resuming, the cursor is the caller's saved number, not something read.
        match self.resuming {
            Some(_) => None,
            None => self.cursor,
        }
    }

    fn drain_offering(
        &mut self,
        offer: &mut dyn FnMut(KmsgRecord) -> Offer,
    ) -> Result<DrainEnd, Error> {
        let cpu_before = thread_cpu_time();
        let result = self.read_records(offer);
        self.stats.drains += 1;
        self.stats.caught_up = matches!(result, Ok(DrainEnd::CaughtUp));
        self.stats.cpu_time += thread_cpu_time().saturating_sub(cpu_before);
        result
    }

    fn read_records(
        &mut self,
        offer: &mut dyn FnMut(KmsgRecord) -> Offer,
    ) -> Result<DrainEnd, Error> {
        let mut bytes = 0;
        for _ in 0..self.limits.records_per_drain.max(1) {
            if bytes >= self.limits.bytes_per_drain {
                return Ok(DrainEnd::Limit);
            }
            self.stats.read_calls += 1;
            match rustix::io::read(&self.file, &mut self.buffer[..]) {
                // Not something /dev/kmsg does, but a path that is not /dev/kmsg might.
                Ok(0) => return Ok(self.at_end()),
                Ok(length) => {
                    bytes += length;
                    let parsed = parse_kmsg_record(&self.buffer[..length]);
                    self.accept(parsed, offer);
                }
                Err(Errno::AGAIN) => return Ok(self.at_end()),
                Err(Errno::PIPE) => self.overwrite_pending = true,
                Err(Errno::INTR) => {}
                Err(errno) => {
                    return Err(Error::Read {
                        path: self.path.clone(),
                        source: errno.into(),
                    })
                }
            }
        }
        Ok(DrainEnd::Limit)
    }

    /// Accounts for one record read and offers it on if it is new.
    fn accept(
        &mut self,
        parsed: Result<KmsgRecord, ParseError>,
        offer: &mut dyn FnMut(KmsgRecord) -> Offer,
    ) {
        let record = match parsed {
            Ok(record) => record,
            Err(_) => {
                self.stats.malformed += 1;
                self.malformed_since_record += 1;
                return;
            }
        };
        let sequence = record.sequence;
        if let Some(resume) = &mut self.resuming {
            resume.highest_seen = resume.highest_seen.max(Some(sequence));
        }
        match self.cursor {
            Some(cursor) if sequence <= cursor => {
                // Before the saved sequence (or, never seen, a repeat): what was lost
                // before it is none of the caller's business either.
                self.overwrite_pending = false;
                self.malformed_since_record = 0;
                self.stats.skipped += 1;
                if let Some(resume) = &mut self.resuming {
                    resume.skipped += 1;
                }
                return;
            }
            Some(cursor) => {
                let gap = sequence - cursor - 1;
                self.stats.lost += gap.saturating_sub(self.malformed_since_record);
            }
            None if self.overwrite_pending => self.stats.lost += 1,
            None => {}
        }
        self.overwrite_pending = false;
        self.malformed_since_record = 0;
        self.cursor = Some(sequence);
        self.resuming = None;
        match offer(record) {
            Offer::Taken => self.stats.read += 1,
            Offer::Dropped => self.stats.dropped += 1,
        }
    }

    /// `EAGAIN`: the end of the log for now.
    fn at_end(&mut self) -> DrainEnd {
        if let Some(Resume {
            highest_seen: Some(highest),
            skipped,
        }) = self.resuming
        {
            if self.cursor.is_some_and(|saved| highest < saved) {
                // The saved sequence is beyond the kernel's newest record: it comes from an
                // earlier boot. Everything in this ring is new to the caller.
                if rustix::fs::seek(&self.file, SeekFrom::Start(0)).is_ok() {
                    self.stats.skipped -= skipped;
                    self.cursor = None;
                    self.resuming = None;
                    self.overwrite_pending = false;
                    self.malformed_since_record = 0;
                    return DrainEnd::Limit;
                }
            }
        }
        DrainEnd::CaughtUp
    }
}

/// A [`KmsgFollower`] on its own thread, with a bounded queue of records. Dropping it stops
/// the thread.
#[derive(Debug)]
pub struct FollowerThread {
    records: Receiver<KmsgRecord>,
    shared: Arc<Shared>,
    stop: Arc<OwnedFd>,
    thread: Option<JoinHandle<Result<(), Error>>>,
}

impl FollowerThread {
    /// Takes the next record if one is queued. `Disconnected` means the thread has ended;
    /// [`stop`](FollowerThread::stop) says why.
    pub fn try_recv(&self) -> Result<KmsgRecord, TryRecvError> {
        let record = self.records.try_recv()?;
        self.shared.received.fetch_add(1, Ordering::Relaxed);
        Ok(record)
    }

    /// Waits up to `timeout` for the next record. `Disconnected` means the thread has
    /// ended; [`stop`](FollowerThread::stop) says why.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<KmsgRecord, RecvTimeoutError> {
        let record = self.records.recv_timeout(timeout)?;
        self.shared.received.fetch_add(1, Ordering::Relaxed);
        Ok(record)
    }

    /// The counters as of the thread's last drain, and the queue's current
    /// [`lag`](FollowStats::lag).
    pub fn stats(&self) -> FollowStats {
        self.shared.load()
    }

    /// Stops the thread and waits for it; then returns its final counters, or the read
    /// error that ended it (returned once; a later call gives the counters). Records still
    /// queued stay there for [`try_recv`](FollowerThread::try_recv), which then says
    /// `Disconnected`. To resume in a later run without losing records, save the sequence
    /// of the last record *processed*, not [`FollowStats::last_sequence`].
    pub fn stop(&mut self) -> Result<FollowStats, Error> {
        self.stop_thread()?;
        Ok(self.shared.load())
    }

    fn stop_thread(&mut self) -> Result<(), Error> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        // Cannot fail short of a full counter (2^64 - 2 stops); the thread also ends
        // when the queue's receiver is dropped.
        let _ = rustix::io::write(&*self.stop, &1u64.to_ne_bytes());
        match thread.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

impl Drop for FollowerThread {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // Do not turn one panic into an abort; the thread ends when it sees the stop.
            let _ = rustix::io::write(&*self.stop, &1u64.to_ne_bytes());
            return;
        }
        let _ = self.stop_thread();
    }
}

/// The thread's counters, published after each drain (at most once per pause, so the lock
/// is cheap), and the queue's fill. One lock keeps a snapshot consistent: the counters
/// always add up to the sequence range.
#[derive(Debug, Default)]
struct Shared {
    published: Mutex<FollowStats>,
    /// Records put on the queue.
    sent: AtomicU64,
    /// Records the consumer has taken.
    received: AtomicU64,
}

impl Shared {
    fn publish(&self, stats: &FollowStats, cpu_time: Duration) {
        let mut published = self
            .published
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *published = FollowStats { cpu_time, ..*stats };
    }

    fn load(&self) -> FollowStats {
        let stats = *self
            .published
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        FollowStats {
            lag: self.queued(),
            ..stats
        }
    }

    /// Records on the queue, or fewer: the consumer counts a record after taking it.
    fn queued(&self) -> u64 {
        let received = self.received.load(Ordering::Relaxed);
        self.sent.load(Ordering::Relaxed).saturating_sub(received)
    }
}

/// The body of a [`FollowerThread`]: wait, drain once, rest, until stopped or the consumer
/// is gone.
///
/// A drain's records are queued together after it: sent one by one between reads, each
/// would find the consumer asleep and pay a futex wakeup, which doubled the thread's CPU
/// per record in a burst. Whether a record fits is decided as it is read, against the
/// queue's fill plus the batch, so the counters stay exact and the send cannot find the
/// queue full.
fn follow(
    mut follower: KmsgFollower,
    sender: &mpsc::Sender<KmsgRecord>,
    capacity: usize,
    shared: &Shared,
    stop: &OwnedFd,
) -> Result<(), Error> {
    let pause = Timespec::try_from(follower.limits.pause).unwrap_or(Timespec {
        tv_sec: i64::MAX,
        tv_nsec: 0,
    });
    let poll_error = |path: &Path, errno: Errno| Error::Read {
        path: path.to_path_buf(),
        source: std::io::Error::other(format!("poll(2): {errno}")),
    };
    let capacity = u64::try_from(capacity).unwrap_or(u64::MAX);
    let mut batch = Vec::new();
    loop {
        // Wait, without a timeout: an idle log costs no wakeups.
        let stopped = {
            let mut fds = [
                PollFd::new(&follower.file, PollFlags::IN),
                PollFd::new(stop, PollFlags::IN),
            ];
            match rustix::event::poll(&mut fds, None) {
                Ok(_) => !fds[1].revents().is_empty(),
                Err(Errno::INTR) => continue,
                Err(errno) => return Err(poll_error(&follower.path, errno)),
            }
        };
        if stopped {
            return Ok(());
        }
        // The kernel says POLLERR as well as POLLIN when records were overwritten; the
        // drain meets the same thing as EPIPE and counts it.
        let queued = shared.queued();
        let end = follower.drain_offering(&mut |record| {
            if queued + (batch.len() as u64) < capacity {
                batch.push(record);
                Offer::Taken
            } else {
                Offer::Dropped
            }
        });
        for record in batch.drain(..) {
            if sender.send(record).is_err() {
                // The consumer is gone.
                return Ok(());
            }
            shared.sent.fetch_add(1, Ordering::Relaxed);
        }
        shared.publish(&follower.stats(), thread_cpu_time());
        end?;
        // Rest, so that a flood gets at most one drain per pause; wake early only to stop.
        let mut fds = [PollFd::new(stop, PollFlags::IN)];
        match rustix::event::poll(&mut fds, Some(&pause)) {
            Ok(0) | Err(Errno::INTR) => {}
            Ok(_) => return Ok(()),
            Err(errno) => return Err(poll_error(&follower.path, errno)),
        }
    }
}

/// The CPU time of the calling thread so far.
fn thread_cpu_time() -> Duration {
    Duration::try_from(rustix::time::clock_gettime(ClockId::ThreadCPUTime)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A follower on a file that is never read: `accept` and `at_end` are the accounting.
    fn follower(start: Start) -> KmsgFollower {
        KmsgFollower::open_path(Path::new("/dev/null"), start, FollowLimits::default()).unwrap()
    }

    fn raw(sequence: u64) -> Vec<u8> {
        format!("6,{sequence},{sequence}000,-;record {sequence}\n").into_bytes()
    }

    /// Feeds records (`Some(seq)`), an `EPIPE` (`None`) or garbage (`Some(u64::MAX)`), and
    /// returns the sequences delivered.
    fn feed(follower: &mut KmsgFollower, events: &[Option<u64>]) -> Vec<u64> {
        let mut delivered = Vec::new();
        for event in events {
            match event {
                None => follower.overwrite_pending = true,
                Some(u64::MAX) => {
                    let parsed = parse_kmsg_record(b"garbage");
                    follower.accept(parsed, &mut |_| Offer::Taken);
                }
                Some(sequence) => {
                    let parsed = parse_kmsg_record(&raw(*sequence));
                    follower.accept(parsed, &mut |record| {
                        delivered.push(record.sequence);
                        Offer::Taken
                    });
                }
            }
        }
        delivered
    }

    #[test]
    fn epipe_loss_is_the_sequence_gap() {
        let mut f = follower(Start::End);
        assert_eq!(
            feed(&mut f, &[Some(10), Some(11), None, Some(20), Some(21)]),
            [10, 11, 20, 21]
        );
        let stats = f.stats();
        assert_eq!(
            (stats.read, stats.lost, stats.last_sequence),
            (4, 8, Some(21))
        );
    }

    #[test]
    fn a_gap_without_epipe_is_lost_too() {
        let mut f = follower(Start::Oldest);
        feed(&mut f, &[Some(1), Some(5)]);
        assert_eq!(f.stats().lost, 3);
    }

    #[test]
    fn epipe_before_the_first_record_counts_one() {
        let mut f = follower(Start::End);
        feed(&mut f, &[None, None, Some(100), Some(101)]);
        assert_eq!((f.stats().lost, f.stats().read), (1, 2));
    }

    #[test]
    fn malformed_records_fill_their_place_in_the_gap() {
        let mut f = follower(Start::Oldest);
        feed(
            &mut f,
            &[Some(1), Some(u64::MAX), Some(3), Some(u64::MAX), Some(7)],
        );
        let stats = f.stats();
        assert_eq!((stats.read, stats.malformed, stats.lost), (3, 2, 2));
        assert_eq!(stats.read + stats.malformed + stats.lost, 7 - 1 + 1);
    }

    #[test]
    fn resume_skips_up_to_the_saved_sequence() {
        let mut f = follower(Start::After(12));
        assert_eq!(f.stats().last_sequence, None);
        assert_eq!(
            feed(&mut f, &[Some(10), Some(11), Some(12), Some(13), Some(14)]),
            [13, 14]
        );
        let stats = f.stats();
        assert_eq!((stats.skipped, stats.lost, stats.read), (3, 0, 2));
        assert_eq!(stats.last_sequence, Some(14));
    }

    #[test]
    fn resume_from_a_sequence_older_than_the_ring_counts_the_loss() {
        let mut f = follower(Start::After(12));
        // EPIPE first: the ring moved on while the agent was down.
        assert_eq!(feed(&mut f, &[None, Some(40), Some(41)]), [40, 41]);
        let stats = f.stats();
        assert_eq!((stats.lost, stats.read, stats.skipped), (27, 2, 0));
        assert_eq!(stats.read + stats.lost, 41 - 12);
    }

    #[test]
    fn overwrite_while_resuming_before_the_saved_sequence_loses_nothing() {
        let mut f = follower(Start::After(50));
        assert_eq!(feed(&mut f, &[Some(10), None, Some(45), Some(51)]), [51]);
        assert_eq!((f.stats().lost, f.stats().skipped), (0, 2));
    }

    #[test]
    fn repeated_sequences_are_not_delivered_twice() {
        let mut f = follower(Start::Oldest);
        assert_eq!(feed(&mut f, &[Some(5), Some(5), Some(4), Some(6)]), [5, 6]);
        assert_eq!((f.stats().read, f.stats().lost), (2, 0));
    }

    #[test]
    fn a_saved_sequence_beyond_the_ring_is_from_another_boot() {
        let mut f = follower(Start::After(1_000_000));
        assert!(feed(&mut f, &[Some(1), Some(2), Some(3)]).is_empty());
        assert_eq!(f.stats().skipped, 3);
        assert!(
            matches!(f.at_end(), DrainEnd::Limit),
            "rewinds and reads on"
        );
        assert_eq!(f.stats().skipped, 0);
        assert_eq!(feed(&mut f, &[Some(1), Some(2), Some(3)]), [1, 2, 3]);
        assert_eq!((f.stats().read, f.stats().lost), (3, 0));
    }

    #[test]
    fn a_saved_sequence_equal_to_the_newest_is_a_plain_restart() {
        let mut f = follower(Start::After(3));
        feed(&mut f, &[Some(1), Some(2), Some(3)]);
        assert!(matches!(f.at_end(), DrainEnd::CaughtUp));
        assert_eq!(feed(&mut f, &[Some(4)]), [4]);
    }

    #[test]
    fn the_thread_handle_can_move_to_the_consumer_thread() {
        fn send<T: Send>() {}
        send::<FollowerThread>();
        send::<KmsgFollower>();
    }

    #[test]
    fn dropped_records_advance_the_cursor() {
        let mut f = follower(Start::Oldest);
        for (sequence, offer) in [(1, Offer::Taken), (2, Offer::Dropped), (3, Offer::Taken)] {
            let mut offer = Some(offer);
            f.accept(parse_kmsg_record(&raw(sequence)), &mut |_| {
                offer.take().unwrap()
            });
        }
        let stats = f.stats();
        assert_eq!((stats.read, stats.dropped, stats.lost), (2, 1, 0));
        assert_eq!(stats.last_sequence, Some(3));
    }
}
