//! The kernel log of an agent: followed live between rounds, kept as a bounded window of
//! recent records that each round's snapshot carries.
//!
//! `check` reads the whole ring once. The agent instead follows `/dev/kmsg` on a thread
//! ([`nodedoc_kmsg::FollowerThread`]: bounded queue, bounded work per wakeup, exact loss
//! counts), and at each round moves what arrived into a window of the most recent records —
//! at most [`WINDOW_RECORDS`], none older than [`WINDOW_SECS`] — so detectors see the recent
//! past (a `waiting for DEV to become free` line repeats every 10 s while it waits) without the
//! agent's memory growing with the log.

use std::collections::VecDeque;

use nodedoc_kmsg::{FollowStats, FollowerThread, KmsgFollower, Start};
use nodedoc_model::{KernelLog, KernelLogSource, KmsgRecord};

/// Records kept at most.
pub const WINDOW_RECORDS: usize = 5_000;

/// Records older than this (by their kernel timestamp) leave the window.
pub const WINDOW_SECS: u64 = 900;

/// Records the follower may queue between two rounds; more are dropped and counted.
pub const QUEUE_RECORDS: usize = 50_000;

/// The followed kernel log.
#[derive(Debug, Default)]
pub struct KernelLogWindow {
    resume_after: Option<u64>,
    follower: Option<FollowerThread>,
    window: VecDeque<KmsgRecord>,
    /// Records that arrived in the last round.
    arrived: Vec<KmsgRecord>,
    /// Why the follower could not start, when it could not.
    failed: Option<String>,
    last_sequence: Option<u64>,
}

impl KernelLogWindow {
    pub(crate) fn resume_after(&mut self, sequence: u64) {
        self.resume_after = Some(sequence);
    }

    /// The records that arrived during the last round, in order.
    pub fn arrived(&self) -> &[KmsgRecord] {
        &self.arrived
    }

    /// The follower's counters (read, lost, dropped, lag), once it runs.
    pub fn stats(&self) -> Option<FollowStats> {
        self.follower.as_ref().map(FollowerThread::stats)
    }

    /// The sequence number of the last record taken into the window: what a state file
    /// keeps to resume after.
    pub fn last_sequence(&self) -> Option<u64> {
        self.last_sequence
    }

    /// Takes back the window the last round's snapshot carried.
    pub(crate) fn recycle(&mut self, records: Vec<KmsgRecord>) {
        if self.follower.is_some() {
            self.window = records.into();
        }
    }

    /// Moves what arrived into the window and returns the window as this round's kernel log.
    pub(crate) fn take_round(&mut self) -> Result<KernelLog, nodedoc_kmsg::Error> {
        if self.follower.is_none() && self.failed.is_none() {
            let start = match self.resume_after {
                Some(sequence) => Start::After(sequence),
                None => Start::Oldest,
            };
            match KmsgFollower::open(start).and_then(|f| f.spawn(QUEUE_RECORDS)) {
                Ok(thread) => {
                    // The first round sees what the ring already holds: give the thread a
                    // moment to read it.
                    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
                    while !thread.stats().caught_up && std::time::Instant::now() < deadline {
                        std::thread::sleep(std::time::Duration::from_millis(5));
                    }
                    self.follower = Some(thread);
                }
                Err(e) => self.failed = Some(e.to_string()),
            }
        }
        let Some(follower) = &self.follower else {
            // No /dev/kmsg (or no right to it): read what syslog(2) gives, as check does.
            return nodedoc_kmsg::read_kernel_log(None);
        };
        self.arrived.clear();
        while let Ok(record) = follower.try_recv() {
            self.arrived.push(record);
        }
        self.window.extend(self.arrived.iter().cloned());
        if let Some(last) = self.window.back() {
            self.last_sequence = Some(last.sequence);
        }
        while self.window.len() > WINDOW_RECORDS {
            self.window.pop_front();
        }
        if let Some(newest) = self.window.back().map(|r| r.monotonic_us) {
            let horizon = newest.saturating_sub(WINDOW_SECS * 1_000_000);
            while self
                .window
                .front()
                .is_some_and(|r| r.monotonic_us < horizon)
            {
                self.window.pop_front();
            }
        }
        let stats = follower.stats();
        // Moved out, not copied: `Collector::recycle` puts them back.
        let records: Vec<KmsgRecord> = self.window.drain(..).collect();
        let blocked = nodedoc_kmsg::blocked_task_reports(&records);
        let netdev_ref_trackers = nodedoc_kmsg::netdev_ref_trackers(&records);
        Ok(KernelLog {
            source: KernelLogSource::DevKmsg,
            records,
            overwritten: stats.lost + stats.dropped,
            skipped_before_window: 0,
            malformed: stats.malformed,
            blocked_task_reports: blocked.reports,
            blocked_task_reports_dropped: blocked.dropped,
            netdev_ref_trackers,
            file: None,
        })
    }
}
