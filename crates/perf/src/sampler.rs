//! Sampling with `perf_event_open`: one task-clock event per thread, each with a small ring
//! buffer the kernel writes samples into (instruction pointer, thread id, kernel call chain).
//!
//! Why these choices:
//! - `PERF_COUNT_SW_TASK_CLOCK` ticks only while the thread runs, so samples fall in
//!   proportion to the CPU time each path uses, and the counter's value is the thread's CPU
//!   time over the window (the share to report);
//! - one event per thread (`pid = tid`, any CPU): `inherit` only follows threads created after
//!   the event is opened, and a per-CPU event would sample every task on the machine;
//! - user-mode samples are kept (they tell "busy in its own code" from "busy in the kernel")
//!   but without their user call chain (`exclude_callchain_user`): no user memory is read;
//! - rings are small (16 KiB per thread) and drained when half full (`wakeup_watermark`), so
//!   memory stays bounded whatever the number of samples;
//! - the chains are kept as raw addresses while sampling and named only once the window is
//!   over, so the window itself costs nodedoc almost nothing.

use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use perf_event::events::Software;
use perf_event::{Builder, SampleFlag, Sampler};

use crate::threads::Thread;

/// `PERF_RECORD_LOST`: the kernel dropped samples (the ring was full).
const RECORD_LOST: u32 = 2;
/// `PERF_RECORD_SAMPLE`.
const RECORD_SAMPLE: u32 = 9;
/// `PERF_RECORD_MISC_CPUMODE_MASK` and its user-mode value.
const CPUMODE_MASK: u16 = 7;
const CPUMODE_USER: u16 = 2;
const CPUMODE_GUEST_USER: u16 = 5;
/// Call-chain entries at or above this are context markers (`PERF_CONTEXT_KERNEL`, …).
const CONTEXT_MAX: u64 = -4095i64 as u64;

/// Data bytes of each thread's ring buffer (a power of two; one header page is added).
pub(crate) const RING_DATA_BYTES: usize = 16 << 10;

/// Distinct raw chains kept per process; samples of further ones are only counted.
const MAX_RAW_CHAINS: usize = 8192;

/// Why no event could be opened at all.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// Not allowed (`perf_event_paranoid`, no CAP_PERFMON / CAP_SYS_ADMIN, a seccomp
    /// filter of the container runtime).
    Denied(std::io::Error),
    /// This kernel has no perf events (or not this one).
    Unsupported(std::io::Error),
}

/// What sampling one process gave, before its chains are named.
#[derive(Debug, Default)]
pub(crate) struct RawProfile {
    pub threads_sampled: u32,
    pub samples: u64,
    pub user_samples: u64,
    /// Kernel call chains (innermost first, as the kernel writes them) and their counts.
    pub chains: HashMap<Vec<u64>, u64>,
    /// Kernel samples whose chain did not fit in `chains`.
    pub chains_omitted: u64,
    pub lost: u64,
    /// Task-clock nanoseconds of the sampled threads during the window.
    pub task_clock_ns: u64,
    /// Threads that could not be sampled, and why (one line each, bounded by the caller).
    pub skipped: Vec<String>,
}

/// One thread's event.
struct Event {
    sampler: Sampler,
    /// Which target it belongs to.
    target: usize,
    /// Still worth polling (its thread has not exited).
    open: bool,
}

/// The result of sampling every target's threads for one window.
pub(crate) struct Window {
    pub profiles: Vec<RawProfile>,
    pub ring_bytes: u64,
}

/// Opens one event per thread of each target (`threads[i]` for target `i`), samples for
/// `window` at `frequency_hz` per running thread, and returns the raw chains. Fails only when
/// not a single event could be opened for a reason that applies to all (permission, kernel
/// support).
pub(crate) fn sample(
    threads: &[Vec<Thread>],
    window: Duration,
    frequency_hz: u64,
    max_depth: u16,
) -> Result<Window, Refusal> {
    let period_ns = 1_000_000_000 / frequency_hz.clamp(1, 10_000);
    let mut profiles: Vec<RawProfile> = threads.iter().map(|_| RawProfile::default()).collect();
    let mut events: Vec<Event> = Vec::new();
    let mut first_error: Option<std::io::Error> = None;
    for (target, list) in threads.iter().enumerate() {
        for thread in list {
            match open(thread.tid, period_ns, max_depth) {
                Ok(sampler) => {
                    events.push(Event {
                        sampler,
                        target,
                        open: true,
                    });
                    profiles[target].threads_sampled += 1;
                }
                Err(e) => {
                    // A thread that exited meanwhile is not a failure.
                    if e.raw_os_error() != Some(libc::ESRCH) {
                        profiles[target]
                            .skipped
                            .push(format!("thread {}: {e}", thread.tid));
                        first_error.get_or_insert(e);
                    }
                }
            }
        }
    }
    if events.is_empty() {
        if let Some(e) = first_error {
            return Err(match e.raw_os_error() {
                Some(libc::EACCES | libc::EPERM) => Refusal::Denied(e),
                _ => Refusal::Unsupported(e),
            });
        }
    }
    let ring_bytes = (events.len() * (RING_DATA_BYTES + page_size())) as u64;

    for event in &mut events {
        if let Err(e) = event.sampler.enable() {
            profiles[event.target].skipped.push(format!("enable: {e}"));
            event.open = false;
        }
    }
    let deadline = Instant::now() + window;
    let mut pollfds: Vec<libc::pollfd> = Vec::with_capacity(events.len());
    let mut polled: Vec<usize> = Vec::with_capacity(events.len());
    loop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        pollfds.clear();
        polled.clear();
        for (i, event) in events.iter().enumerate().filter(|(_, e)| e.open) {
            pollfds.push(libc::pollfd {
                fd: event.sampler.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
            polled.push(i);
        }
        let timeout = (deadline - now).as_millis().clamp(1, 1000) as libc::c_int;
        if pollfds.is_empty() {
            std::thread::sleep(deadline - now);
            break;
        }
        // SAFETY: pollfds is a valid array of pollfd of the given length.
        let ready = unsafe { libc::poll(pollfds.as_mut_ptr(), pollfds.len() as _, timeout) };
        if ready <= 0 {
            continue;
        }
        for (pollfd, &i) in pollfds.iter().zip(&polled) {
            if pollfd.revents == 0 {
                continue;
            }
            let event = &mut events[i];
            drain(&mut event.sampler, &mut profiles[event.target], max_depth);
            if pollfd.revents & (libc::POLLHUP | libc::POLLERR) != 0 {
                // Its thread exited: nothing more will come.
                event.open = false;
            }
        }
    }
    for event in &mut events {
        let _ = event.sampler.disable();
        drain(&mut event.sampler, &mut profiles[event.target], max_depth);
        if let Ok(ns) = event.sampler.read() {
            profiles[event.target].task_clock_ns += ns;
        }
    }
    Ok(Window {
        profiles,
        ring_bytes,
    })
}

fn open(tid: i32, period_ns: u64, max_depth: u16) -> std::io::Result<Sampler> {
    Builder::new(Software::TASK_CLOCK)
        .observe_pid(tid)
        .any_cpu()
        .exclude_kernel(false)
        .exclude_hv(true)
        .sample_period(period_ns)
        .sample(SampleFlag::IP | SampleFlag::TID | SampleFlag::CALLCHAIN)
        .exclude_callchain_user(true)
        .sample_max_stack(max_depth)
        .wakeup_watermark(RING_DATA_BYTES / 2)
        .enabled(false)
        .build()?
        .sampled(RING_DATA_BYTES)
}

/// Reads every record in the ring.
fn drain(sampler: &mut Sampler, profile: &mut RawProfile, max_depth: u16) {
    while let Some(record) = sampler.next_record() {
        let kind = record.ty();
        let misc = record.misc();
        let bytes = record.to_contiguous();
        match kind {
            RECORD_SAMPLE => {
                profile.samples += 1;
                let mode = misc & CPUMODE_MASK;
                if mode == CPUMODE_USER || mode == CPUMODE_GUEST_USER {
                    profile.user_samples += 1;
                    continue;
                }
                let chain = kernel_chain(&bytes, max_depth as usize);
                if chain.is_empty() {
                    // A kernel sample without a chain (should not happen): counted as one
                    // path of its own, nameless.
                    *profile.chains.entry(Vec::new()).or_default() += 1;
                    continue;
                }
                if let Some(count) = profile.chains.get_mut(&chain) {
                    *count += 1;
                } else if profile.chains.len() < MAX_RAW_CHAINS {
                    profile.chains.insert(chain, 1);
                } else {
                    profile.chains_omitted += 1;
                }
            }
            RECORD_LOST => {
                // struct { u64 id; u64 lost; }
                if let Some(lost) = bytes.get(8..16) {
                    profile.lost += u64::from_ne_bytes(lost.try_into().expect("8 bytes"));
                }
            }
            _ => {}
        }
    }
}

/// The kernel addresses of a sample record's call chain, innermost first, without the
/// context markers. Layout for `IP | TID | CALLCHAIN`: `u64 ip; u32 pid, tid; u64 nr;
/// u64 ips[nr]`.
pub(crate) fn kernel_chain(bytes: &[u8], max_depth: usize) -> Vec<u64> {
    let word = |i: usize| -> Option<u64> {
        bytes
            .get(i..i + 8)
            .map(|b| u64::from_ne_bytes(b.try_into().expect("8 bytes")))
    };
    let Some(nr) = word(16) else {
        return Vec::new();
    };
    let mut chain = Vec::with_capacity((nr as usize).min(max_depth));
    let mut in_kernel = true;
    for k in 0..nr as usize {
        let Some(address) = word(24 + 8 * k) else {
            break;
        };
        if address >= CONTEXT_MAX {
            // PERF_CONTEXT_KERNEL is -128; any other marker (user, guest) ends the kernel part.
            in_kernel = address == (-128i64) as u64;
            continue;
        }
        if in_kernel {
            chain.push(address);
            if chain.len() >= max_depth {
                break;
            }
        }
    }
    if chain.is_empty() {
        // No chain: the sampled instruction pointer alone.
        if let Some(ip) = word(0).filter(|&ip| ip != 0) {
            chain.push(ip);
        }
    }
    chain
}

pub(crate) fn page_size() -> usize {
    rustix::param::page_size()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(ip: u64, chain: &[u64]) -> Vec<u8> {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&ip.to_ne_bytes());
        bytes.extend_from_slice(&7u32.to_ne_bytes());
        bytes.extend_from_slice(&8u32.to_ne_bytes());
        bytes.extend_from_slice(&(chain.len() as u64).to_ne_bytes());
        for address in chain {
            bytes.extend_from_slice(&address.to_ne_bytes());
        }
        bytes
    }

    #[test]
    fn chains_lose_their_markers_and_stop_at_user_space() {
        let kernel = (-128i64) as u64;
        let user = (-512i64) as u64;
        let bytes = record(0xa, &[kernel, 0xa, 0xb, 0xc, user, 0x4000]);
        assert_eq!(kernel_chain(&bytes, 64), vec![0xa, 0xb, 0xc]);
        assert_eq!(kernel_chain(&bytes, 2), vec![0xa, 0xb], "bounded depth");
        assert_eq!(kernel_chain(&record(0xf, &[]), 64), vec![0xf], "ip alone");
        assert_eq!(
            kernel_chain(&bytes[..20], 64),
            Vec::<u64>::new(),
            "truncated"
        );
    }
}
