//! CPU hogs: which processes used more than the threshold since the last reading, their
//! shares over the agent's rounds, and what their threads do in the kernel.
//!
//! The collector only measures and samples; `cpu-hog` judges. A process is a *suspect* when it
//! used more than [`CpuHogOptions::threshold`] cores between two readings: for `check`, the
//! scan and the second reading; for `watch`, the previous round and this one. Suspects (the
//! busiest [`CpuHogOptions::max_profiles`]) have their kernel call paths sampled for a short
//! window right after that reading ([`nodedoc_perf`]); the agent keeps a profile for
//! [`CpuHogOptions::reprofile_every_rounds`] rounds before it samples that process again.

use nodedoc_model::{
    CpuPoint, CpuProfile, CpuSeries, Gaps, ProcessKey, Snapshot, SourceState, SourceStatus,
};
use std::collections::HashMap;

/// How CPU hogs are found and sampled.
#[derive(Clone, Debug)]
pub struct CpuHogOptions {
    /// A process above this many cores between two readings is a suspect (the `cpu-hog`
    /// threshold; 0.5 is half a core).
    pub threshold: f64,
    /// Sample the suspects' kernel call paths at all.
    pub profile: bool,
    /// How: window, frequency, threads, and whether perf events may be used.
    pub sampling: nodedoc_perf::ProfileOptions,
    /// Processes sampled per reading at most (the busiest).
    pub max_profiles: usize,
    /// The agent samples a process again after this many rounds (its profile is kept until
    /// then, or until it is no longer above the threshold).
    pub reprofile_every_rounds: u64,
}

impl Default for CpuHogOptions {
    fn default() -> Self {
        CpuHogOptions {
            threshold: 0.5,
            profile: true,
            sampling: nodedoc_perf::ProfileOptions::default(),
            max_profiles: 4,
            reprofile_every_rounds: 30,
        }
    }
}

/// Series kept at most (the busiest processes).
pub const MAX_SERIES: usize = 64;

/// Points per series at most (the latest).
pub const MAX_POINTS: usize = 60;

/// The source name in snapshots.
const SOURCE: &str = "cpu-profile";

/// A process above the threshold.
#[derive(Clone, Debug)]
struct Suspect {
    key: ProcessKey,
    comm: String,
    cores: f64,
}

/// What the collector keeps between readings.
#[derive(Debug, Default)]
pub(crate) struct CpuWatch {
    profiler: nodedoc_perf::Profiler,
    /// The last reading of every process: CPU ticks (user, system) and when, in µs of
    /// CLOCK_MONOTONIC.
    last: HashMap<ProcessKey, (u64, u64, u64)>,
    series: HashMap<ProcessKey, CpuSeries>,
    /// Profiles of the current hogs, with the round they were taken in.
    profiles: HashMap<ProcessKey, (CpuProfile, u64)>,
    rounds: u64,
}

fn ticks_per_sec(snapshot: &Snapshot) -> f64 {
    snapshot.host.clock_ticks_per_sec.max(1) as f64
}

impl CpuWatch {
    /// `check`: suspects are the processes above the threshold between the scan and the
    /// second reading; they are sampled now.
    pub(crate) fn after_second_reading(
        &mut self,
        options: &CpuHogOptions,
        snapshot: &mut Snapshot,
    ) {
        let Some(resample) = &snapshot.resample else {
            snapshot.sources.push(SourceStatus {
                source: SOURCE.into(),
                state: SourceState::Skipped,
                detail: "a single reading (--interval 0) gives no CPU shares".into(),
            });
            return;
        };
        let ticks = ticks_per_sec(snapshot);
        let me = std::process::id() as i32;
        let mut suspects: Vec<Suspect> = Vec::new();
        for process in snapshot.processes.iter().filter(|p| p.pid != me) {
            let Some(later) = resample.task(process.key()) else {
                continue;
            };
            let elapsed_us = later.sampled_at_us.saturating_sub(process.sampled_at_us);
            if elapsed_us == 0 {
                continue;
            }
            let used = (later.utime_ticks + later.stime_ticks)
                .saturating_sub(process.utime_ticks + process.stime_ticks);
            let cores = used as f64 / ticks / (elapsed_us as f64 / 1e6);
            if cores >= options.threshold {
                suspects.push(Suspect {
                    key: process.key(),
                    comm: process.comm.clone(),
                    cores,
                });
            }
        }
        let profiles = self.sample(options, &mut suspects, snapshot);
        snapshot.cpu_profiles = profiles;
    }

    /// `watch`: notes this round's reading of every process, keeps the series of those
    /// above the threshold, samples the new ones, and puts the series and the current
    /// profiles in the snapshot.
    pub(crate) fn after_round(
        &mut self,
        options: &CpuHogOptions,
        snapshot: &mut Snapshot,
        at_unix_ms: u64,
    ) -> Vec<CpuSeries> {
        self.rounds += 1;
        let ticks = ticks_per_sec(snapshot);
        let me = std::process::id() as i32;
        let mut seen: HashMap<ProcessKey, (u64, u64, u64)> =
            HashMap::with_capacity(snapshot.processes.len());
        let mut above: Vec<(Suspect, f64)> = Vec::new();
        for process in &snapshot.processes {
            let key = process.key();
            seen.insert(
                key,
                (
                    process.utime_ticks,
                    process.stime_ticks,
                    process.sampled_at_us,
                ),
            );
            if process.pid == me {
                continue;
            }
            let Some(&(user, system, at_us)) = self.last.get(&key) else {
                continue;
            };
            let elapsed_us = process.sampled_at_us.saturating_sub(at_us);
            if elapsed_us == 0 {
                continue;
            }
            let secs = elapsed_us as f64 / 1e6;
            let kernel = process.stime_ticks.saturating_sub(system) as f64 / ticks / secs;
            let cores = kernel + process.utime_ticks.saturating_sub(user) as f64 / ticks / secs;
            if cores >= options.threshold {
                above.push((
                    Suspect {
                        key,
                        comm: process.comm.clone(),
                        cores,
                    },
                    kernel,
                ));
            }
        }
        self.last = seen;
        // Series of processes no longer above the threshold (or gone) end.
        let still: std::collections::HashSet<ProcessKey> =
            above.iter().map(|(s, _)| s.key).collect();
        self.series.retain(|key, _| still.contains(key));
        self.profiles.retain(|key, _| still.contains(key));
        above.sort_by(|a, b| b.0.cores.total_cmp(&a.0.cores));
        for (suspect, kernel) in above.iter().take(MAX_SERIES) {
            let series = self.series.entry(suspect.key).or_insert_with(|| CpuSeries {
                pid: suspect.key.pid,
                start_time_ticks: suspect.key.start_time_ticks,
                comm: suspect.comm.clone(),
                rounds_above: 0,
                above_since_unix_ms: at_unix_ms,
                points: Vec::new(),
            });
            series.comm.clone_from(&suspect.comm);
            series.rounds_above += 1;
            series.points.push(CpuPoint {
                at_unix_ms,
                cores: suspect.cores,
                kernel_cores: *kernel,
            });
            if series.points.len() > MAX_POINTS {
                series.points.remove(0);
            }
        }
        // Beyond MAX_SERIES the least busy are not followed this round.
        if self.series.len() > MAX_SERIES {
            let kept: std::collections::HashSet<ProcessKey> =
                above.iter().take(MAX_SERIES).map(|(s, _)| s.key).collect();
            self.series.retain(|key, _| kept.contains(key));
        }
        // Sample the hogs without a recent profile.
        let round = self.rounds;
        let mut due: Vec<Suspect> = above
            .iter()
            .map(|(s, _)| s.clone())
            .filter(|s| {
                self.profiles.get(&s.key).is_none_or(|(_, taken)| {
                    round.saturating_sub(*taken) >= options.reprofile_every_rounds
                })
            })
            .collect();
        for profile in self.sample(options, &mut due, snapshot) {
            self.profiles.insert(profile.key(), (profile, round));
        }
        let mut profiles: Vec<CpuProfile> =
            self.profiles.values().map(|(p, _)| p.clone()).collect();
        profiles.sort_by_key(|p| p.pid);
        snapshot.cpu_profiles = profiles;
        let mut series: Vec<CpuSeries> = self.series.values().cloned().collect();
        series.sort_by_key(|s| s.pid);
        series
    }

    /// Samples the busiest suspects and records the source's status and gaps.
    fn sample(
        &mut self,
        options: &CpuHogOptions,
        suspects: &mut [Suspect],
        snapshot: &mut Snapshot,
    ) -> Vec<CpuProfile> {
        let threshold = format!("{:.0}% of a core", options.threshold * 100.0);
        if suspects.is_empty() {
            snapshot.sources.push(SourceStatus {
                source: SOURCE.into(),
                state: SourceState::Collected,
                detail: format!(
                    "no process to sample: none above {threshold} since the last reading"
                ),
            });
            return Vec::new();
        }
        if !options.profile {
            snapshot.sources.push(SourceStatus {
                source: SOURCE.into(),
                state: SourceState::Skipped,
                detail: format!(
                    "{} process(es) above {threshold}, not sampled (switched off)",
                    suspects.len()
                ),
            });
            return Vec::new();
        }
        suspects.sort_by(|a, b| b.cores.total_cmp(&a.cores));
        let chosen = &suspects[..suspects.len().min(options.max_profiles.max(1))];
        let targets: Vec<nodedoc_perf::Target> = chosen
            .iter()
            .map(|s| nodedoc_perf::Target {
                pid: s.key.pid,
                start_time_ticks: s.key.start_time_ticks,
                comm: s.comm.clone(),
            })
            .collect();
        let result = self.profiler.profile(&targets, &options.sampling);
        // Profiles are rare (a process going above the threshold, then every so many rounds):
        // the agent reads the symbol table again then rather than keep 5 MB resident.
        self.profiler.forget_symbols();
        let mut gaps = Gaps::new();
        for gap in &result.gaps {
            gaps.record(
                SOURCE,
                &gap.what,
                gap.reason.clone(),
                gap.pid.map(|p| p.to_string()).unwrap_or_default(),
            );
        }
        let method = result.profiles.first().map(|p| p.method);
        let cost: u64 = result.profiles.first().map_or(0, |p| p.cost.cpu_us);
        let mut detail = format!(
            "{} of {} process(es) above {threshold} sampled for {} ms",
            result.profiles.len(),
            suspects.len(),
            options.sampling.window.as_millis()
        );
        match method {
            Some(nodedoc_model::ProfileMethod::PerfEvents) => detail.push_str(&format!(
                " with perf events at {} Hz, costing {} µs of CPU",
                options.sampling.frequency_hz, cost
            )),
            Some(nodedoc_model::ProfileMethod::ProcStack) => {
                detail.push_str(" by reading /proc/PID/task/TID/stack (weak: perf events refused)")
            }
            None => {}
        }
        let state = match method {
            Some(nodedoc_model::ProfileMethod::PerfEvents) if gaps.is_empty() => {
                SourceState::Collected
            }
            Some(_) => SourceState::Partial,
            None if gaps.is_empty() => SourceState::Collected,
            None => SourceState::Failed,
        };
        snapshot.sources.push(SourceStatus {
            source: SOURCE.into(),
            state,
            detail,
        });
        snapshot.gaps.extend(gaps.into_vec());
        result.profiles
    }
}
