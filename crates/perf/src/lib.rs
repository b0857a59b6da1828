//! Where busy processes spend their CPU time in the kernel.
//!
//! [`Profiler::profile`] samples the threads of a few processes for a short window with
//! `perf_event_open` (task-clock sampling with kernel call chains, one event and a 16 KiB ring
//! per thread), names the addresses from `/proc/kallsyms` (read once, kept compact, binary
//! searched) and folds them into [`CpuProfile`]s: distinct kernel call paths, outermost frame
//! first, with their sample counts.
//!
//! When perf events are refused (`perf_event_paranoid` 3 or a container without
//! CAP_PERFMON/CAP_SYS_ADMIN) or absent, it falls back to reading `/proc/PID/task/TID/stack`
//! of the running threads, says in the profile that this is weak, and adds a cheap hint: the
//! process's netlink sockets with a dump in progress ([`netlink::dumping_sockets`]).
//!
//! The sampler costs nodedoc well under 1 % of a core during the window (measured in
//! docs/benchmarks.md; each profile records its own cost), and memory is bounded: 20 KiB of
//! ring per thread, at most [`ProfileOptions::max_threads`] threads per process, and a bounded
//! number of distinct chains.
#![deny(missing_docs)]

pub mod kallsyms;
pub mod netlink;
mod procstack;
mod sampler;
mod threads;

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use nodedoc_model::{CpuProfile, KernelStackCount, ProfileMethod, SamplingCost};

pub use kallsyms::{Kallsyms, KallsymsError, Symbol};

/// How to sample.
#[derive(Clone, Debug)]
pub struct ProfileOptions {
    /// How long each process is sampled (all of them in the same window).
    pub window: Duration,
    /// Samples per second of CPU time of each thread.
    pub frequency_hz: u64,
    /// Threads sampled per process at most (the busiest so far first).
    pub max_threads: usize,
    /// Use perf events; `false` goes straight to the `/proc/PID/stack` fallback (for tests,
    /// and for operators who do not want perf events opened).
    pub perf: bool,
}

impl Default for ProfileOptions {
    fn default() -> Self {
        ProfileOptions {
            window: Duration::from_millis(200),
            frequency_hz: 1000,
            max_threads: 64,
            perf: true,
        }
    }
}

/// A process to sample.
#[derive(Clone, Debug)]
pub struct Target {
    /// Its pid.
    pub pid: i32,
    /// Its start time: a pid now held by another process is not sampled.
    pub start_time_ticks: u64,
    /// Its comm, for the profile.
    pub comm: String,
}

/// What could not be sampled or named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileGap {
    /// What (`perf_event_open`, `/proc/kallsyms`, `/proc/PID/task/TID/stack`, …).
    pub what: String,
    /// Why.
    pub reason: String,
    /// The pid it concerns, if one.
    pub pid: Option<i32>,
}

/// The profiles of one window.
#[derive(Debug, Default)]
pub struct Profiles {
    /// One per target that still existed, in the order of the targets.
    pub profiles: Vec<CpuProfile>,
    /// What could not be done.
    pub gaps: Vec<ProfileGap>,
}

/// Samples processes, keeping the kernel symbol table between calls.
#[derive(Debug, Default)]
pub struct Profiler {
    symbols: Option<Result<Kallsyms, String>>,
}

/// The symbol table is read again after this long: modules loaded since would be missing.
const SYMBOLS_MAX_AGE: Duration = Duration::from_secs(600);

impl Profiler {
    /// A profiler that has not read the symbol table yet.
    pub fn new() -> Profiler {
        Profiler::default()
    }

    /// Samples every target in one window and returns their profiles.
    pub fn profile(&mut self, targets: &[Target], options: &ProfileOptions) -> Profiles {
        let mut out = Profiles::default();
        let mut live: Vec<&Target> = Vec::new();
        let mut threads: Vec<Vec<threads::Thread>> = Vec::new();
        let mut thread_counts: Vec<u32> = Vec::new();
        for target in targets {
            if threads::start_time(target.pid) != Some(target.start_time_ticks) {
                continue; // exited, or the pid is another process now
            }
            match threads::threads(target.pid) {
                Ok(mut list) => {
                    thread_counts.push(list.len() as u32);
                    list.truncate(options.max_threads.max(1));
                    threads.push(list);
                    live.push(target);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => out.gaps.push(ProfileGap {
                    what: "/proc/PID/task".into(),
                    reason: e.to_string(),
                    pid: Some(target.pid),
                }),
            }
        }
        if live.is_empty() {
            return out;
        }
        let taken_at_unix_ms = unix_ms();
        let refusal = if options.perf {
            let cpu_before = thread_cpu_us();
            let started = Instant::now();
            match sampler::sample(
                &threads,
                options.window,
                options.frequency_hz,
                CpuProfile::MAX_DEPTH as u16,
            ) {
                Ok(window) => {
                    let cost = SamplingCost {
                        cpu_us: thread_cpu_us().saturating_sub(cpu_before),
                        wall_us: started.elapsed().as_micros() as u64,
                        ring_bytes: window.ring_bytes,
                    };
                    let symbols = self.symbols(&mut out.gaps);
                    for (((target, raw), count), _) in live
                        .iter()
                        .zip(window.profiles)
                        .zip(&thread_counts)
                        .zip(&threads)
                    {
                        out.profiles.push(perf_profile(
                            target,
                            raw,
                            *count,
                            symbols,
                            options,
                            &cost,
                            taken_at_unix_ms,
                        ));
                    }
                    return out;
                }
                Err(refusal) => Some(refusal),
            }
        } else {
            None
        };
        let why = match &refusal {
            Some(sampler::Refusal::Denied(e)) => format!(
                "perf_event_open was refused ({e}; kernel.perf_event_paranoid is {}; it needs root, CAP_PERFMON or CAP_SYS_ADMIN, and a container runtime's seccomp profile may block it)",
                paranoid().unwrap_or_else(|| "unreadable".into())
            ),
            Some(sampler::Refusal::Unsupported(e)) => {
                format!("perf_event_open failed ({e}): this kernel has no software perf events")
            }
            None => "perf events were not used (switched off)".to_string(),
        };
        if refusal.is_some() {
            out.gaps.push(ProfileGap {
                what: "perf_event_open".into(),
                reason: why.clone(),
                pid: None,
            });
        }
        let cpu_before = thread_cpu_us();
        let started = Instant::now();
        let pids: Vec<i32> = live.iter().map(|t| t.pid).collect();
        let readings = procstack::sample(&pids, &threads, options.window);
        let cost = SamplingCost {
            cpu_us: thread_cpu_us().saturating_sub(cpu_before),
            wall_us: started.elapsed().as_micros() as u64,
            ring_bytes: 0,
        };
        for ((target, reading), count) in live.iter().zip(readings).zip(&thread_counts) {
            let mut profile = stack_profile(target, reading, *count, options, &cost, &why);
            profile.taken_at_unix_ms = taken_at_unix_ms;
            match netlink::dumping_sockets(target.pid) {
                Ok(dumps) => profile.netlink_dumps = Some(dumps),
                Err(e) => profile.notes.push(format!("netlink dump hint: {e}")),
            }
            out.profiles.push(profile);
        }
        out
    }

    /// Drops the symbol table (about 5 MB on a distribution kernel). An agent that profiles
    /// rarely reads it again when it next does (about 30 ms) rather than keep it resident.
    pub fn forget_symbols(&mut self) {
        self.symbols = None;
    }

    /// Symbols kept and the bytes they take, once the table has been read.
    pub fn symbol_table(&self) -> Option<(usize, usize)> {
        match &self.symbols {
            Some(Ok(table)) => Some((table.len(), table.memory_bytes())),
            _ => None,
        }
    }

    /// The symbol table, read on first use and again when old.
    fn symbols(&mut self, gaps: &mut Vec<ProfileGap>) -> Option<&Kallsyms> {
        let stale = match &self.symbols {
            Some(Ok(table)) => table.loaded_at().elapsed() > SYMBOLS_MAX_AGE,
            Some(Err(_)) | None => true,
        };
        if stale {
            self.symbols = Some(Kallsyms::load().map_err(|e| e.to_string()));
        }
        match self.symbols.as_ref().expect("just set") {
            Ok(table) => Some(table),
            Err(reason) => {
                gaps.push(ProfileGap {
                    what: "/proc/kallsyms".into(),
                    reason: format!("{reason}; frames are left as addresses"),
                    pid: None,
                });
                None
            }
        }
    }
}

/// A perf profile from its raw chains.
fn perf_profile(
    target: &Target,
    raw: sampler::RawProfile,
    threads: u32,
    symbols: Option<&Kallsyms>,
    options: &ProfileOptions,
    cost: &SamplingCost,
    taken_at_unix_ms: u64,
) -> CpuProfile {
    let mut folded: HashMap<Vec<String>, u64> = HashMap::new();
    for (chain, count) in raw.chains {
        let frames = name_chain(&chain, symbols);
        *folded.entry(frames).or_default() += count;
    }
    let (stacks, omitted) = bounded(folded);
    let window_ns = options.window.as_nanos().max(1) as f64;
    let mut notes = raw.skipped;
    notes.truncate(4);
    if threads as usize > options.max_threads {
        notes.push(format!(
            "{} of its {threads} threads sampled (the busiest so far)",
            options.max_threads
        ));
    }
    CpuProfile {
        pid: target.pid,
        start_time_ticks: target.start_time_ticks,
        comm: target.comm.clone(),
        method: ProfileMethod::PerfEvents,
        taken_at_unix_ms,
        window_ms: options.window.as_millis() as u64,
        frequency_hz: options.frequency_hz,
        threads,
        threads_sampled: raw.threads_sampled,
        cpu_cores: Some(raw.task_clock_ns as f64 / window_ns),
        samples: raw.samples,
        user_samples: raw.user_samples,
        stacks,
        stacks_omitted_samples: omitted + raw.chains_omitted,
        lost_samples: raw.lost,
        cost: cost.clone(),
        netlink_dumps: None,
        notes,
    }
}

/// Names a chain (innermost first, as the kernel writes it) and turns it outermost first.
/// Every address but the first is a return address, which points after its call: the
/// function is the one holding the byte before it.
pub fn name_chain(chain: &[u64], symbols: Option<&Kallsyms>) -> Vec<String> {
    let mut frames: Vec<String> = chain
        .iter()
        .enumerate()
        .map(|(i, &address)| {
            let lookup = if i == 0 {
                address
            } else {
                address.saturating_sub(1)
            };
            match symbols {
                Some(table) => match table.resolve(lookup) {
                    Some(symbol) => match symbol.module {
                        Some(module) => format!("{} [{module}]", symbol.name),
                        None => symbol.name.to_string(),
                    },
                    None => "[unknown]".to_string(),
                },
                None => format!("{address:#x}"),
            }
        })
        .collect();
    frames.reverse();
    frames
}

/// The most frequent [`CpuProfile::MAX_STACKS`] paths, most frequent first, and the samples
/// of the others.
fn bounded(folded: HashMap<Vec<String>, u64>) -> (Vec<KernelStackCount>, u64) {
    let mut stacks: Vec<KernelStackCount> = folded
        .into_iter()
        .map(|(frames, samples)| KernelStackCount { samples, frames })
        .collect();
    stacks.sort_by(|a, b| {
        b.samples
            .cmp(&a.samples)
            .then_with(|| a.frames.cmp(&b.frames))
    });
    let omitted = stacks
        .iter()
        .skip(CpuProfile::MAX_STACKS)
        .map(|s| s.samples)
        .sum();
    stacks.truncate(CpuProfile::MAX_STACKS);
    (stacks, omitted)
}

/// A fallback profile from stack readings.
fn stack_profile(
    target: &Target,
    reading: procstack::StackReadings,
    threads: u32,
    options: &ProfileOptions,
    cost: &SamplingCost,
    why: &str,
) -> CpuProfile {
    let mut notes = vec![format!(
        "weak: {why}; fell back to reading /proc/PID/task/TID/stack of its running threads, which shows where a thread was last switched out, not where its CPU time goes"
    )];
    let only_return_path = !reading.stacks.is_empty()
        && reading.stacks.keys().all(|frames| {
            frames
                .first()
                .is_some_and(|f| f.starts_with("exit_to_user_mode"))
        });
    if only_return_path {
        notes.push(
            "every stack read shows only the return to user space (exit_to_user_mode_loop): on a kernel without preemption a thread busy in a system call cannot be seen this way".into(),
        );
    }
    notes.extend(reading.errors);
    let folded: HashMap<Vec<String>, u64> = reading
        .stacks
        .into_iter()
        .map(|(mut frames, count)| {
            frames.truncate(CpuProfile::MAX_DEPTH);
            frames.reverse();
            (frames, count)
        })
        .collect();
    let (stacks, omitted) = bounded(folded);
    CpuProfile {
        pid: target.pid,
        start_time_ticks: target.start_time_ticks,
        comm: target.comm.clone(),
        method: ProfileMethod::ProcStack,
        taken_at_unix_ms: 0,
        window_ms: options.window.as_millis() as u64,
        frequency_hz: procstack::FREQUENCY_HZ,
        threads,
        threads_sampled: reading.threads_sampled,
        cpu_cores: None,
        samples: reading.samples,
        user_samples: reading.empty,
        stacks,
        stacks_omitted_samples: omitted,
        lost_samples: 0,
        cost: cost.clone(),
        netlink_dumps: None,
        notes,
    }
}

fn paranoid() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
        .ok()
        .map(|s| s.trim().to_string())
}

/// CPU time of the calling thread, in microseconds.
fn thread_cpu_us() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    t.tv_sec as u64 * 1_000_000 + t.tv_nsec as u64 / 1000
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "\
ffffffff81000000 T entry_SYSCALL_64
ffffffff81100000 T do_syscall_64
ffffffff81e7c8f0 t rtnl_dump_all
ffffffff81efeea0 t netlink_dump
ffffffff82053150 t in_dev_dump_addr
ffffffff82054130 t inet_dump_addr
ffffffff82060000 t inet_fill_ifaddr
";

    #[test]
    fn chains_are_named_outermost_first_with_return_addresses_looked_up_before_the_call() {
        let table = Kallsyms::parse(TABLE).unwrap();
        // Innermost first: the sampled ip, then return addresses. A return address that is
        // the first byte of the next symbol (a call as the caller's last instruction) is still
        // the caller's: the byte before it is looked up.
        let chain = [
            0xffffffff82060010, // inet_fill_ifaddr (the ip)
            0xffffffff82053200, // in_dev_dump_addr
            0xffffffff82054200, // inet_dump_addr
            0xffffffff81e7c900, // rtnl_dump_all
            0xffffffff81efeea0, // the first byte of netlink_dump: a return into rtnl_dump_all
            0xffffffff81100020, // do_syscall_64
            0xffffffff81000010, // entry_SYSCALL_64
        ];
        let frames = name_chain(&chain, Some(&table));
        assert_eq!(
            frames,
            vec![
                "entry_SYSCALL_64",
                "do_syscall_64",
                "rtnl_dump_all",
                "rtnl_dump_all",
                "inet_dump_addr",
                "in_dev_dump_addr",
                "inet_fill_ifaddr",
            ]
        );
        assert_eq!(
            name_chain(&[0x1000], None),
            vec!["0x1000"],
            "no table: addresses"
        );
        assert_eq!(name_chain(&[0x1000], Some(&table)), vec!["[unknown]"]);
    }

    #[test]
    fn only_the_most_frequent_paths_are_kept() {
        let mut folded = HashMap::new();
        for i in 0..(CpuProfile::MAX_STACKS as u64 + 10) {
            folded.insert(vec![format!("f{i}")], i + 1);
        }
        let (stacks, omitted) = bounded(folded);
        assert_eq!(stacks.len(), CpuProfile::MAX_STACKS);
        assert_eq!(stacks[0].samples, CpuProfile::MAX_STACKS as u64 + 10);
        assert_eq!(omitted, (1..=10).sum::<u64>());
    }
}
