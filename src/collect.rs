//! Live collection: reads this host into a [`Snapshot`]. Collectors never judge; this module
//! only decides what to read and records how it went.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use nodedoc_model::{
    Gaps, KernelLog, Process, Resample, Snapshot, SourceState, SourceStatus, TaskState,
};
use nodedoc_procfs::{ProcRoot, ResolutionMode, ScanOptions};

use crate::cli::{CollectionArgs, OvsSourceArgs, SocketResolutionArg};

impl From<SocketResolutionArg> for ResolutionMode {
    fn from(arg: SocketResolutionArg) -> Self {
        match arg {
            SocketResolutionArg::Auto => ResolutionMode::Auto,
            SocketResolutionArg::Pidfd => ResolutionMode::PidfdOnly,
            SocketResolutionArg::ProcNet => ResolutionMode::ProcNetTables,
            SocketResolutionArg::None => ResolutionMode::None,
        }
    }
}

/// Which tasks get their kernel stack and blocked system call read during the scan: the
/// ones the hang detectors examine. Reading a stack takes a lock per task in the kernel, so
/// a scan reads only these:
/// - tasks in uninterruptible sleep (`hung-task`);
/// - the init of a pid namespace sleeping in `do_wait`, which is where an init that was
///   killed waits for its namespace to empty (`pidns-exit-hang`);
/// - CNI plugins (`cni-plugin-hang`).
fn wants_kernel_detail(process: &Process) -> bool {
    process.state == TaskState::UninterruptibleSleep
        || (process.wchan.as_deref() == Some("do_wait")
            && process.nspid.len() > 1
            && process.nspid.last() == Some(&1))
        || process.environment.contains_key("CNI_COMMAND")
        || process.memory_map_blocked
}

/// The only environment variables nodedoc reads (see `cni-plugin-hang`).
const ENVIRONMENT_PREFIXES: &[&str] = &["CNI_"];

/// Tasks whose stack the scan did not read but a detector needs, now that every process is
/// known: every member of a pid namespace whose init is stuck in `zap_pid_ns_processes`,
/// and every task alone in its network namespace (is it blocked in network code?).
fn second_look(snapshot: &Snapshot) -> Vec<i32> {
    let mut pids = std::collections::BTreeSet::new();
    for init in &snapshot.processes {
        let zapping = init
            .kernel_stack
            .as_ref()
            .is_some_and(|s| s.iter().any(|f| f.function == "zap_pid_ns_processes"));
        if zapping {
            pids.extend(snapshot.descendants(init.pid).iter().map(|p| p.pid));
        }
    }
    let mut members: std::collections::HashMap<u64, usize> = std::collections::HashMap::new();
    for ns in snapshot.processes.iter().filter_map(|p| p.namespaces.net) {
        *members.entry(ns).or_default() += 1;
    }
    for process in &snapshot.processes {
        if process.namespaces.net.is_some_and(|ns| members[&ns] == 1) {
            pids.insert(process.pid);
        }
    }
    pids.into_iter()
        .filter(|pid| {
            snapshot
                .process(*pid)
                .is_some_and(|p| p.kernel_stack.is_none() && !p.kernel_thread)
        })
        .collect()
}

/// Reads this host.
pub fn collect_live(args: &CollectionArgs, progress: &crate::Progress) -> Result<Snapshot> {
    let started = Instant::now();
    let mut snapshot = Snapshot::new(nodedoc_procfs::host_info());
    let mut gaps = Gaps::new();

    // The kernel log is read on its own thread while /proc is scanned: the two are
    // independent and each mostly waits on the kernel.
    let since_us = args.since.map(|window| {
        snapshot
            .host
            .uptime_us
            .saturating_sub(window.as_micros().min(u128::from(u64::MAX)) as u64)
    });
    let kernel_log = std::thread::spawn(move || nodedoc_kmsg::read_kernel_log(since_us));

    let threads = args.scan_threads();
    progress.step("reading processes");
    let root = ProcRoot::live().context("cannot open /proc")?;
    let options = ScanOptions {
        fd_census: !args.no_fds,
        resolution: args.socket_resolution.into(),
        threads,
        wants_kernel_detail: &wants_kernel_detail,
        environment_prefixes: ENVIRONMENT_PREFIXES,
        memory_map_deadline: args.memory_map_deadline,
    };
    let scan = nodedoc_procfs::scan(&root, &options).context("cannot list /proc")?;
    let process_count = scan.processes.len();
    let resolutions = scan.resolution_counts();
    let vanished = scan.vanished;
    gaps.merge(scan.gaps);
    snapshot.processes = scan.processes;

    progress.step("reading mounts and cgroups");
    snapshot.mounts = nodedoc_procfs::read_mounts(&root, &snapshot.processes, &mut gaps);
    snapshot.freezers = nodedoc_procfs::read_freezers(
        std::path::Path::new("/sys/fs/cgroup"),
        &snapshot.processes,
        &mut gaps,
    );
    for pid in second_look(&snapshot) {
        match nodedoc_procfs::read_kernel_detail(&root, pid) {
            Ok((stack, syscall)) => {
                if let Ok(i) = snapshot.processes.binary_search_by_key(&pid, |p| p.pid) {
                    snapshot.processes[i].kernel_stack = Some(stack);
                    snapshot.processes[i].syscall = syscall;
                }
            }
            Err(e) if e.is_vanished() => {}
            Err(e) => gaps.record("procfs", "/proc/PID/stack", e.reason(), pid.to_string()),
        }
    }

    let mut detail = format!("{process_count} processes");
    if args.no_fds {
        detail.push_str("; fd census skipped (--no-fds)");
    } else {
        let parts: Vec<String> = resolutions
            .iter()
            .filter(|(r, _)| *r != nodedoc_model::SocketResolution::NoSockets)
            .map(|(r, n)| format!("{n} process{} by {r}", if *n == 1 { "" } else { "es" }))
            .collect();
        if !parts.is_empty() {
            detail.push_str(&format!("; sockets resolved: {}", parts.join(", ")));
        }
    }
    if vanished > 0 {
        detail.push_str(&format!("; {vanished} exited during the scan"));
    }
    snapshot.sources.push(SourceStatus {
        source: "procfs".into(),
        state: if gaps.is_empty() {
            SourceState::Collected
        } else {
            SourceState::Partial
        },
        detail,
    });

    progress.step("reading Open vSwitch");
    collect_ovs(&args.ovs, &mut snapshot, &mut gaps);

    progress.step("reading the kernel log");
    match kernel_log.join() {
        Ok(Ok(log)) => {
            snapshot.sources.push(kernel_log_status(&log));
            snapshot.kernel_log = Some(log);
        }
        Ok(Err(e)) => {
            gaps.record("kernel-log", "/dev/kmsg and syslog(2)", e.to_string(), "");
            snapshot.sources.push(SourceStatus {
                source: "kernel-log".into(),
                state: SourceState::Failed,
                detail: e.to_string(),
            });
        }
        Err(_) => anyhow::bail!("the kernel log reader panicked"),
    }

    if !args.interval.is_zero() {
        // The interval counts from the first reading: the scan itself already took part of it.
        let elapsed = started.elapsed();
        if elapsed < args.interval {
            progress.step("sampling again");
            std::thread::sleep(args.interval - elapsed);
        }
        let keys: Vec<_> = snapshot.processes.iter().map(Process::key).collect();
        snapshot.resample = Some(Resample {
            interval_ms: duration_ms(args.interval),
            tasks: nodedoc_procfs::resample(&root, &keys),
        });
    }
    snapshot.gaps = gaps.into_vec();
    Ok(snapshot)
}

/// Adds Open vSwitch (and the network devices of every namespace) to a snapshot whose
/// processes are read.
pub fn collect_ovs(args: &OvsSourceArgs, snapshot: &mut Snapshot, gaps: &mut Gaps) {
    let options = nodedoc_ovs::OvsOptions {
        endpoint: args.ovsdb.clone(),
        log: args.ovs_log.clone(),
        ..nodedoc_ovs::OvsOptions::default()
    };
    let collection = nodedoc_ovs::collect(&options, &snapshot.processes);
    snapshot.sources.extend(collection.sources);
    gaps.merge(collection.gaps);
    snapshot.ovs = collection.ovs;
    snapshot.network = collection.network;
}

/// What `ovs ports` and `fix` need: processes without their fd census (for ovs-vswitchd
/// and the network namespaces) and Open vSwitch.
pub fn collect_ovs_only(args: &OvsSourceArgs) -> Result<Snapshot> {
    let mut snapshot = Snapshot::new(nodedoc_procfs::host_info());
    let mut gaps = Gaps::new();
    let root = ProcRoot::live().context("cannot open /proc")?;
    let options = ScanOptions {
        fd_census: false,
        wants_kernel_detail: &|_| false,
        ..ScanOptions::default()
    };
    let scan = nodedoc_procfs::scan(&root, &options).context("cannot list /proc")?;
    gaps.merge(scan.gaps);
    snapshot.processes = scan.processes;
    collect_ovs(args, &mut snapshot, &mut gaps);
    snapshot.gaps = gaps.into_vec();
    Ok(snapshot)
}

fn kernel_log_status(log: &KernelLog) -> SourceStatus {
    let source = match log.source {
        nodedoc_model::KernelLogSource::DevKmsg => "/dev/kmsg",
        nodedoc_model::KernelLogSource::DmesgText => "syslog(2) text (no /dev/kmsg)",
        nodedoc_model::KernelLogSource::File => "a saved file",
    };
    let mut detail = format!("{}: {} records", source, log.records.len());
    if log.skipped_before_window > 0 {
        detail.push_str(&format!(
            ", {} older ones outside --since",
            log.skipped_before_window
        ));
    }
    if log.overwritten > 0 {
        detail.push_str(&format!(", {} overwritten while reading", log.overwritten));
    }
    if log.malformed > 0 {
        detail.push_str(&format!(", {} malformed skipped", log.malformed));
    }
    SourceStatus {
        source: "kernel-log".into(),
        state: if log.source == nodedoc_model::KernelLogSource::DevKmsg {
            SourceState::Collected
        } else {
            SourceState::Partial
        },
        detail,
    }
}

fn duration_ms(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}
