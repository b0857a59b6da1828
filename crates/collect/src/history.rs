//! Descriptor counts kept between rounds: the film `check` cannot see.
//!
//! Every round the collector notes each process's open descriptors. A process whose count
//! moved gets a series, and keeps it while it lives; the others cost one number each. Both
//! are bounded: at most [`MAX_SERIES`] series (the least recently moving one makes room) of at
//! most [`MAX_POINTS`] points (older points are thinned, so a series still reaches back to when
//! its count started moving), and the breakdown by kind is kept only at a series' first and
//! last point — enough to say which kind grows, at a fraction of the memory.

use std::collections::HashMap;

use nodedoc_model::{FdPoint, FdSeries, History, Process, ProcessKey};

/// Series kept at most.
pub const MAX_SERIES: usize = 64;

/// Points per series at most.
pub const MAX_POINTS: usize = 240;

#[derive(Debug)]
struct Tracked {
    series: FdSeries,
    /// When the count last changed.
    last_change_ms: u64,
}

/// Descriptor counts of every process over rounds.
#[derive(Debug, Default)]
pub struct FdHistory {
    /// The last count of every process seen in the last round, and when.
    last: HashMap<ProcessKey, (u64, u64)>,
    tracked: HashMap<ProcessKey, Tracked>,
    /// Processes whose count moved in the last round but found no free series.
    untracked_movers: u64,
}

impl FdHistory {
    /// Notes one round: every process whose fd census was read.
    pub fn record(&mut self, processes: &[Process], at_unix_ms: u64) {
        let mut seen: HashMap<ProcessKey, (u64, u64)> = HashMap::with_capacity(processes.len());
        let mut movers: Vec<&Process> = Vec::new();
        // First the tracked series, so the ones still moving this round are known before a
        // newcomer asks for a slot.
        for process in processes {
            let Some(fds) = &process.fds else { continue };
            let key = process.key();
            let total = fds.total;
            seen.insert(key, (total, at_unix_ms));
            let Some(tracked) = self.tracked.get_mut(&key) else {
                if self
                    .last
                    .get(&key)
                    .is_some_and(|&(before, _)| before != total)
                {
                    movers.push(process);
                }
                continue;
            };
            let series = &mut tracked.series;
            // Only the earliest point with a breakdown and the last keep theirs.
            let earliest = series.points.iter().position(|p| !p.kinds.is_empty());
            let last = series.points.len().checked_sub(1);
            if last.is_some() && last != earliest {
                if let Some(previous) = series.points.last_mut() {
                    previous.kinds = Vec::new();
                }
            }
            if series.points.last().is_some_and(|p| p.total != total) {
                tracked.last_change_ms = at_unix_ms;
            }
            series.comm.clone_from(&process.comm);
            series.points.push(FdPoint {
                at_unix_ms,
                total,
                kinds: fds.kinds.clone(),
            });
            if series.points.len() > MAX_POINTS {
                thin(&mut series.points);
            }
        }
        // Processes that exited take their series with them.
        self.tracked.retain(|key, _| seen.contains_key(key));
        self.untracked_movers = 0;
        for process in movers {
            let key = process.key();
            if self.tracked.len() >= MAX_SERIES && !self.evict_quiet(at_unix_ms) {
                // Every series moved this round: the one being followed is kept.
                self.untracked_movers += 1;
                continue;
            }
            let (before, before_ms) = self.last[&key];
            let fds = process.fds.as_ref().expect("movers have a census");
            self.tracked.insert(
                key,
                Tracked {
                    series: FdSeries {
                        pid: process.pid,
                        start_time_ticks: process.start_time_ticks,
                        comm: process.comm.clone(),
                        points: vec![
                            FdPoint {
                                at_unix_ms: before_ms,
                                total: before,
                                kinds: Vec::new(),
                            },
                            FdPoint {
                                at_unix_ms,
                                total: fds.total,
                                kinds: fds.kinds.clone(),
                            },
                        ],
                    },
                    last_change_ms: at_unix_ms,
                },
            );
        }
        self.last = seen;
    }

    /// Makes room by dropping the series that has been still the longest, if one did not
    /// move this round.
    fn evict_quiet(&mut self, now_ms: u64) -> bool {
        let quietest = self
            .tracked
            .iter()
            .filter(|(_, t)| t.last_change_ms < now_ms)
            .min_by_key(|(_, t)| t.last_change_ms)
            .map(|(key, _)| *key);
        match quietest {
            Some(key) => {
                self.tracked.remove(&key);
                true
            }
            None => false,
        }
    }

    /// The processes whose series is followed.
    pub fn followed(&self) -> std::collections::HashSet<ProcessKey> {
        self.tracked.keys().copied().collect()
    }

    /// The series, for the snapshot; `None` when nothing has moved yet.
    pub fn to_model(&self) -> Option<History> {
        if self.tracked.is_empty() {
            return None;
        }
        let mut fd_series: Vec<FdSeries> =
            self.tracked.values().map(|t| t.series.clone()).collect();
        fd_series.sort_by_key(|s| s.pid);
        Some(History {
            fd_series,
            untracked_movers: self.untracked_movers,
            cpu_series: Vec::new(),
        })
    }
}

/// Drops every other point of the older half, keeping the first.
fn thin(points: &mut Vec<FdPoint>) {
    let half = points.len() / 2;
    let mut index = 0;
    points.retain(|_| {
        let keep = index >= half || index % 2 == 0;
        index += 1;
        keep
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use nodedoc_model::{FdCensus, FdKind, FdKindCount, NamespaceIds, SocketResolution, TaskState};

    fn process(pid: i32, total: u64) -> Process {
        Process {
            pid,
            ppid: 1,
            comm: format!("p{pid}"),
            cmdline: Vec::new(),
            state: TaskState::Sleeping,
            start_time_ticks: 100,
            uid: Some(0),
            threads: 1,
            kernel_thread: false,
            nofile: None,
            namespaces: NamespaceIds::default(),
            cgroups: Vec::new(),
            wchan: None,
            utime_ticks: 0,
            stime_ticks: 0,
            sampled_at_us: 0,
            kernel_stack: None,
            nspid: vec![pid],
            environment: Default::default(),
            syscall: None,
            sigkill_pending: false,
            memory_map_blocked: false,
            context_switches: None,
            fds: Some(FdCensus {
                total,
                kinds: vec![FdKindCount {
                    kind: FdKind::File,
                    count: total,
                }],
                socket_resolution: SocketResolution::NoSockets,
                namespace_fds: Vec::new(),
                stdin: None,
                fuse_device_fds: 0,
            }),
        }
    }

    #[test]
    fn only_processes_whose_count_moves_get_a_series() {
        let mut history = FdHistory::default();
        history.record(&[process(1, 10), process(2, 50)], 1000);
        assert!(history.to_model().is_none());
        history.record(&[process(1, 10), process(2, 60)], 2000);
        history.record(&[process(1, 10), process(2, 70)], 3000);
        let model = history.to_model().unwrap();
        assert_eq!(model.fd_series.len(), 1);
        let series = &model.fd_series[0];
        assert_eq!(series.pid, 2);
        let totals: Vec<u64> = series.points.iter().map(|p| p.total).collect();
        assert_eq!(totals, vec![50, 60, 70]);
        // The breakdown stays on the earliest point that had one and on the last.
        let kinds: Vec<bool> = series.points.iter().map(|p| !p.kinds.is_empty()).collect();
        assert_eq!(kinds, vec![false, true, true]);
        history.record(&[process(1, 10), process(2, 80)], 4000);
        let model = history.to_model().unwrap();
        let kinds: Vec<bool> = model.fd_series[0]
            .points
            .iter()
            .map(|p| !p.kinds.is_empty())
            .collect();
        assert_eq!(kinds, vec![false, true, false, true]);
        // The process exits: its series goes.
        history.record(&[process(1, 10)], 5000);
        assert!(history.to_model().is_none());
    }

    #[test]
    fn series_and_points_stay_bounded() {
        let mut history = FdHistory::default();
        for round in 0..(MAX_POINTS as u64 * 3) {
            let processes: Vec<Process> = (0..(MAX_SERIES as i32 + 10))
                .map(|pid| process(pid, round + pid as u64))
                .collect();
            history.record(&processes, round * 1000);
        }
        let model = history.to_model().unwrap();
        assert_eq!(model.fd_series.len(), MAX_SERIES);
        assert_eq!(model.untracked_movers, 10);
        for series in &model.fd_series {
            assert!(series.points.len() <= MAX_POINTS);
            // Thinned, but still reaching back to the start.
            assert!(
                series.points[0].at_unix_ms < 10_000,
                "{}",
                series.points[0].at_unix_ms
            );
        }
    }
}
