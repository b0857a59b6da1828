//! From the files of a report to a [`Snapshot`], each source degrading alone and saying what
//! it lacks.

use std::collections::HashMap;
use std::path::Path;

use nodedoc_model::{
    CgroupHierarchy, FreezerCgroup, FreezerState, Gaps, HostInfo, KernelLogSource, MountEntry,
    NetNamespace, NetworkNamespaces, OvsLog, Process, Resample, Snapshot, SourceState,
    SourceStatus, TaskSample, TaskState, VswitchdProcess,
};

use crate::bundle::{Bundle, FileError};
use crate::{lsof, net, ovs, ps, Limits, SosError};

/// `USER_HZ`: the unit of the ticks in the snapshot (100 on every Linux architecture nodedoc
/// supports); `ps` gives seconds, so nothing finer is lost.
const TICKS: u64 = 100;

/// sos's `process` plugin saves `/proc/PID/{status,limits,stack}` for this many pids only
/// (its `numprocs` option).
const SOS_NUMPROCS: usize = 2_048;

/// Reads the sosreport at `path` (a directory or a tarball) into a snapshot.
pub fn read_sosreport(path: &Path, limits: Limits) -> Result<Snapshot, SosError> {
    let bundle = Bundle::open(path, limits)?;
    let mut b = Builder {
        bundle: &bundle,
        gaps: Gaps::new(),
        sources: Vec::new(),
        proc_files: false,
    };
    b.check_layout()?;
    Ok(b.build())
}

struct Builder<'a> {
    bundle: &'a Bundle,
    gaps: Gaps,
    sources: Vec<SourceStatus>,
    /// The report holds `proc/PID/{limits,status,stack}` for some pids (a newer sos).
    proc_files: bool,
}

/// The main ps listing, by its prefix.
const PS_SCHED: &str = "ps_axo_flags_state_uid_pid_ppid_pgid_sid_cls_pri_addr_sz_wchan";
const PS_GROUP: &str = "ps_axo_pid_ppid_user_group_lwp_nlwp_start_time_comm_cgroup";

impl Builder<'_> {
    fn source(&mut self, source: &str, state: SourceState, detail: impl Into<String>) {
        self.sources.push(SourceStatus {
            source: source.to_string(),
            state,
            detail: detail.into(),
        });
    }

    fn gap(&mut self, what: &str, reason: impl Into<String>, example: impl Into<String>) {
        self.gaps.record("sosreport", what, reason, example);
    }

    /// Reads a file; an unreadable one is a gap, a missing one `None`.
    fn text(&mut self, rel: &str) -> Option<String> {
        match self.bundle.read_text(rel) {
            Ok(text) => text,
            Err(FileError { path, reason }) => {
                self.gap(&path, reason, path.clone());
                None
            }
        }
    }

    /// A report has `sos_commands/` (and, from sos 3.x on, `version.txt`).
    fn check_layout(&mut self) -> Result<(), SosError> {
        if self.bundle.exists("sos_commands") {
            return Ok(());
        }
        Err(SosError::NotASosreport {
            path: self.bundle.origin.clone(),
            why: "it has no sos_commands/ directory (give the directory sos wrote, or its tarball)"
                .to_string(),
        })
    }

    /// The first file in `dir` whose name starts with `prefix` (sos names files after their
    /// command lines, which differ between sos versions).
    fn find(&self, dir: &str, prefix: &str) -> Option<String> {
        self.bundle
            .list(dir)
            .into_iter()
            .find(|n| n.starts_with(prefix))
            .map(|n| format!("{dir}/{n}"))
    }

    fn build(mut self) -> Snapshot {
        let manifest: Option<serde_json::Value> = self
            .text("sos_reports/manifest.json")
            .and_then(|t| serde_json::from_str(&t).ok());
        let version = self
            .text("version.txt")
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("sosreport: ").map(|v| v.trim().to_string()))
            })
            .or_else(|| {
                manifest
                    .as_ref()
                    .and_then(|m| m["version"].as_str().map(str::to_string))
            });
        let unsafe_entries = self.bundle.unsafe_entries();
        if unsafe_entries > 0 {
            self.gap(
                "archive entries",
                "absolute or `..` path: skipped, never extracted",
                format!("{unsafe_entries} entries"),
            );
        }
        self.source(
            "sosreport",
            SourceState::Collected,
            format!(
                "{}, made by sos {}",
                self.bundle.describe(),
                version.as_deref().unwrap_or("(version unknown)")
            ),
        );

        let host = self.host();
        let mut snapshot = Snapshot::new(host);
        let offset = self.zone_offset();
        self.processes(&mut snapshot, manifest.as_ref(), offset, version.as_deref());
        self.kernel_log(&mut snapshot);
        // The clock: the kernel log's last line is no later than collection.
        if let Some(last) = snapshot
            .kernel_log
            .as_ref()
            .and_then(|l| l.records.iter().map(|r| r.monotonic_us).max())
        {
            snapshot.host.uptime_us = snapshot.host.uptime_us.max(last);
        }
        self.mounts(&mut snapshot);
        self.freezers(&mut snapshot);
        self.network(&mut snapshot);
        self.ovs(&mut snapshot, manifest.as_ref());
        self.detector_gaps(&snapshot);
        snapshot.sources = self.sources;
        snapshot.gaps = self.gaps.into_vec();
        snapshot
    }

    fn host(&mut self) -> HostInfo {
        let uname = self
            .text("sos_commands/kernel/uname_-a")
            .unwrap_or_default();
        let words: Vec<&str> = uname.split_whitespace().collect();
        const ARCHES: &[&str] = &[
            "x86_64", "aarch64", "ppc64le", "ppc64", "s390x", "i686", "i386", "armv7l", "riscv64",
        ];
        let arch_at = words.iter().position(|w| ARCHES.contains(w));
        let hostname = self
            .text("sos_commands/host/hostname")
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .or_else(|| words.get(1).map(|w| w.to_string()))
            .unwrap_or_default();
        let stat = self.text("proc/stat").unwrap_or_default();
        let btime = stat
            .lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|b| b.trim().parse::<u64>().ok());
        let cpus = stat
            .lines()
            .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
            .count() as u32;
        let collected = self
            .text("sos_commands/date/date_--utc")
            .and_then(|t| ps::parse_ctime(t.trim()))
            .filter(|t| *t > 0)
            .map(|t| t as u64);
        if collected.is_none() {
            self.gap(
                "sos_commands/date/date_--utc",
                "missing or unreadable: the time of collection is unknown (ages are measured from the last kernel log line)",
                "date",
            );
        }
        if btime.is_none() {
            self.gap(
                "proc/stat",
                "no btime: boot time unknown, process ages cannot be told",
                "btime",
            );
        }
        let uptime_us = match (collected, btime) {
            (Some(now), Some(boot)) => now.saturating_sub(boot) * 1_000_000,
            _ => 0,
        };
        HostInfo {
            hostname,
            kernel_release: words.get(2).map(|w| w.to_string()).unwrap_or_default(),
            kernel_version: match arch_at {
                Some(at) if at > 3 => words[3..at].join(" "),
                _ => String::new(),
            },
            machine: arch_at.map(|at| words[at].to_string()).unwrap_or_default(),
            collected_at_unix: collected.unwrap_or(0),
            uptime_us,
            boot_time_unix: btime.unwrap_or(0),
            clock_ticks_per_sec: TICKS,
            online_cpus: cpus,
            collector_version: format!("nodedoc-sos {}", env!("CARGO_PKG_VERSION")),
        }
    }

    /// The host's offset from UTC: `ps` prints start times in local time.
    fn zone_offset(&mut self) -> i64 {
        let local = self.text("sos_commands/date/date");
        let utc = self.text("sos_commands/date/date_--utc");
        match local
            .zip(utc)
            .and_then(|(l, u)| ps::zone_offset(l.trim(), u.trim()))
        {
            Some(offset) => offset,
            None => {
                self.gap(
                    "sos_commands/date/date",
                    "the host's time zone is unknown: process start times are read as UTC",
                    "date",
                );
                0
            }
        }
    }

    fn processes(
        &mut self,
        snapshot: &mut Snapshot,
        manifest: Option<&serde_json::Value>,
        offset: i64,
        version: Option<&str>,
    ) {
        let dir = "sos_commands/process";
        let Some(sched_path) = self.find(dir, PS_SCHED) else {
            self.source(
                "processes",
                SourceState::Absent,
                "no `ps axo …state…wchan…lstart…` listing: the process plugin did not run",
            );
            return;
        };
        let Some(sched_text) = self.text(&sched_path) else {
            self.source(
                "processes",
                SourceState::Failed,
                format!("{sched_path} unreadable"),
            );
            return;
        };
        let (rows, bad) = ps::parse_sched(&sched_text);
        if bad > 0 {
            for _ in 0..bad {
                self.gap(&sched_path, "line does not parse", "ps");
            }
        }
        let groups = self
            .find(dir, PS_GROUP)
            .and_then(|p| self.text(&p))
            .map(|t| ps::parse_group(&t))
            .unwrap_or_default();
        let boot = snapshot.host.boot_time_unix as i64;
        let mut processes: Vec<Process> = rows
            .iter()
            .map(|row| {
                let group = groups.get(&row.pid);
                let bracketed = row.cmd.starts_with('[');
                let comm = group
                    .map(|g| g.comm.clone())
                    .unwrap_or_else(|| comm_of(&row.cmd));
                let start_secs = row
                    .started
                    .map(|s| (s - offset - boot).max(0) as u64)
                    .unwrap_or(0);
                Process {
                    pid: row.pid,
                    ppid: row.ppid,
                    comm,
                    cmdline: if bracketed {
                        Vec::new()
                    } else {
                        row.cmd.split_whitespace().map(str::to_string).collect()
                    },
                    state: ps::state(row.state),
                    start_time_ticks: start_secs.saturating_mul(TICKS),
                    uid: row.uid,
                    threads: group.map_or(1, |g| g.threads),
                    // ps shows no PF_KTHREAD: kthreadd and its children with a bracketed name.
                    kernel_thread: bracketed && (row.pid == 2 || row.ppid == 2) && row.state != 'Z',
                    nofile: None,
                    namespaces: Default::default(),
                    cgroups: group.map(|g| g.cgroups.clone()).unwrap_or_default(),
                    wchan: row.wchan.clone(),
                    utime_ticks: row.cpu_secs.saturating_mul(TICKS),
                    stime_ticks: 0,
                    sampled_at_us: 0,
                    fds: None,
                    kernel_stack: None,
                    nspid: Vec::new(),
                    environment: Default::default(),
                    syscall: None,
                    sigkill_pending: false,
                    memory_map_blocked: false,
                    context_switches: None,
                }
            })
            .collect();
        processes.sort_by_key(|p| p.pid);
        processes.dedup_by_key(|p| p.pid);
        self.source(
            "processes",
            SourceState::Collected,
            format!("{} processes from {sched_path}", processes.len()),
        );

        self.proc_files(&mut processes, version);
        self.fd_census(&mut processes, manifest);
        snapshot.resample = self.second_reading(&processes, manifest);
        snapshot.processes = processes;
    }

    /// `proc/PID/{limits,status,stack}`, which newer sos saves for its first 2,048 pids.
    fn proc_files(&mut self, processes: &mut [Process], version: Option<&str>) {
        let pids: Vec<String> = self
            .bundle
            .list("proc")
            .into_iter()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
            .collect();
        let (mut limits, mut stacks) = (0u64, 0u64);
        for process in processes.iter_mut() {
            let pid = process.pid.to_string();
            if !pids.contains(&pid) {
                continue;
            }
            if let Some(text) = self.text(&format!("proc/{pid}/limits")) {
                match nodedoc_procfs::parse::parse_limits_nofile(&text) {
                    Ok(limit) => {
                        process.nofile = Some(limit);
                        limits += 1;
                    }
                    Err((line, why)) => self.gap(
                        "proc/PID/limits",
                        format!("does not parse (line {line}: {why})"),
                        pid.clone(),
                    ),
                }
            }
            if let Some(text) = self.text(&format!("proc/{pid}/status")) {
                if let Ok(status) = nodedoc_procfs::parse::parse_status(&text) {
                    process.uid = Some(status.uid);
                    process.nspid = status.nspid;
                    process.sigkill_pending = status.sigkill_pending;
                    process.context_switches = status.context_switches;
                }
            }
            // Stacks are kept for the tasks detectors read them for, as live.
            if process.state == TaskState::UninterruptibleSleep {
                if let Some(text) = self.text(&format!("proc/{pid}/stack")) {
                    let stack = nodedoc_procfs::parse::parse_stack(&text);
                    if !stack.is_empty() {
                        process.kernel_stack = Some(stack);
                        stacks += 1;
                    }
                }
            }
        }
        self.proc_files = limits > 0 || stacks > 0;
        let detail = format!(
            "/proc/PID/limits of {limits} processes, kernel stacks of {stacks} tasks in D (sos saves them for its first {SOS_NUMPROCS} pids)"
        );
        let state = if limits > 0 {
            SourceState::Partial
        } else {
            SourceState::Absent
        };
        self.source(
            "proc-files",
            state,
            if limits > 0 {
                detail
            } else {
                format!(
                    "no /proc/PID/limits, status or stack: sos {} does not save them (later sos versions save them for the first {SOS_NUMPROCS} pids)",
                    version.unwrap_or("of this report")
                )
            },
        );
    }

    fn fd_census(&mut self, processes: &mut [Process], manifest: Option<&serde_json::Value>) {
        let dir = "sos_commands/process";
        // sos 4.0: `lsof -b +M -n -l -c ''`; later: `lsof +M -n -l -c ''`. The `-c` one lists
        // processes; the other (lsof-threads) lists tasks.
        let names = self.bundle.list(dir);
        let Some(name) = names
            .iter()
            .filter(|n| n.starts_with("lsof_"))
            .max_by_key(|n| n.ends_with("_-c"))
        else {
            self.source(
                "fd-census",
                SourceState::Absent,
                "no lsof output: the process plugin ran without its lsof option",
            );
            return;
        };
        let path = format!("{dir}/{name}");
        let Some(text) = self.text(&path) else {
            self.source(
                "fd-census",
                SourceState::Failed,
                format!("{path} unreadable"),
            );
            return;
        };
        let return_code = manifest
            .and_then(|m| command_of(m, &path))
            .and_then(|c| c["return_code"].as_i64());
        let mut census = lsof::Census::parse(&text);
        if !census.header {
            let why = match return_code {
                Some(124) => "sos killed lsof at its timeout (return code 124 in the manifest) before it printed anything".to_string(),
                Some(rc) if rc != 0 => format!("lsof printed nothing (return code {rc} in the manifest)"),
                _ => "the file is empty: lsof printed nothing (later sos versions kill lsof after 15 s, which 100,000 sockets exceed)".to_string(),
            };
            self.gap(
                &format!("{path} (fd-exhaustion, ovs-netlink-socket-excess: no fd census)"),
                why.clone(),
                "lsof",
            );
            self.source("fd-census", SourceState::Failed, format!("{path}: {why}"));
            return;
        }
        // The table is read only when lsof left sockets to place (it is as large as lsof's
        // listing at seed 000's scale).
        let table: HashMap<u64, nodedoc_model::NetlinkProtocol> = if census.has_unplaced_netlink() {
            self.text("proc/net/netlink")
                .map(|t| {
                    nodedoc_procfs::parse::parse_proc_net_netlink(&t)
                        .into_iter()
                        .collect()
                })
                .unwrap_or_default()
        } else {
            HashMap::new()
        };
        census.resolve_netlink(&table);
        let mut with_fds = 0;
        for process in processes.iter_mut() {
            if let Some(files) = census.by_pid.get(&process.pid) {
                if files.unreadable > 0 {
                    self.gap(
                        "lsof: descriptors of a process",
                        "lsof could not read them (readlink: Permission denied, NOFD)",
                        process.pid.to_string(),
                    );
                }
                let fds = files.census();
                if files.unreadable > 0 && fds.total == 0 {
                    continue;
                }
                process.fds = Some(fds);
                with_fds += 1;
            }
        }
        for (pid, files) in &census.by_pid {
            if processes.binary_search_by_key(pid, |p| p.pid).is_err() {
                self.gap(
                    "lsof: processes missing from ps",
                    "started or ended between the ps and lsof listings: their descriptors are not used",
                    format!("{pid} ({})", files.command),
                );
            }
        }
        if census.netlink_unresolved > 0 {
            self.gap(
                "lsof: netlink socket protocols",
                format!(
                    "{} sockets lsof printed as `sock … protocol: NETLINK` are not in the report's proc/net/netlink: counted as unresolved-socket",
                    census.netlink_unresolved
                ),
                path.clone(),
            );
        }
        let partial = return_code.is_some_and(|rc| rc != 0) || census.unparsed > 0;
        if let Some(rc) = return_code.filter(|rc| *rc != 0) {
            self.gap(
                &path,
                format!(
                    "lsof ended with return code {rc}{}: its listing may stop early",
                    if rc == 124 { " (sos's timeout)" } else { "" }
                ),
                "lsof",
            );
        }
        self.source(
            "fd-census",
            if partial {
                SourceState::Partial
            } else {
                SourceState::Collected
            },
            format!(
                "{path}: descriptors of {with_fds} processes{}{}",
                if census.netlink_from_table > 0 {
                    format!(
                        "; {} netlink sockets lsof left as `sock` placed by proc/net/netlink",
                        census.netlink_from_table
                    )
                } else {
                    String::new()
                },
                if census.unparsed > 0 {
                    format!("; {} lines did not parse", census.unparsed)
                } else {
                    String::new()
                }
            ),
        );
    }

    /// `ps auxwww`, which sos ran before the main listing, as the earlier reading.
    fn second_reading(
        &mut self,
        processes: &[Process],
        manifest: Option<&serde_json::Value>,
    ) -> Option<Resample> {
        let path = self.find("sos_commands/process", "ps_auxwww")?;
        let aux = ps::parse_aux(&self.text(&path)?);
        // The listings ran in this order; the time between is at least the commands between.
        let interval_ms = manifest
            .and_then(|m| {
                let commands =
                    m["components"]["report"]["plugins"]["process"]["commands"].as_array()?;
                let first = commands
                    .iter()
                    .position(|c| c["exec"].as_str() == Some("ps auxwww"))?;
                let last = commands.iter().position(|c| {
                    c["exec"]
                        .as_str()
                        .is_some_and(|e| e.starts_with("ps axo flags,state"))
                })?;
                let secs: f64 = commands
                    .get(first + 1..last)?
                    .iter()
                    .filter_map(|c| c["run_time"].as_f64())
                    .sum();
                Some((secs * 1000.0) as u64)
            })
            .unwrap_or(0);
        let mut tasks: Vec<TaskSample> = processes
            .iter()
            .filter_map(|p| {
                let (letter, cmd) = aux.get(&p.pid)?;
                // The same process: same command line (pids are reused).
                let same = p.cmdline.join(" ")
                    == cmd.split_whitespace().collect::<Vec<_>>().join(" ")
                    || (p.cmdline.is_empty() && cmd.starts_with('['));
                same.then(|| TaskSample {
                    pid: p.pid,
                    start_time_ticks: p.start_time_ticks,
                    state: TaskState::from_letter(*letter),
                    // CPU time in ps is whole seconds: no share can be measured between the
                    // readings, so both carry the same times and the same instant.
                    utime_ticks: p.utime_ticks,
                    stime_ticks: p.stime_ticks,
                    sampled_at_us: p.sampled_at_us,
                    blocked: None,
                })
            })
            .collect();
        tasks.sort_by_key(|t| t.pid);
        self.source(
            "second-reading",
            SourceState::Partial,
            format!(
                "{path}, run before the main listing{}: states only (no CPU shares, no context switches)",
                if interval_ms > 0 {
                    format!(" (at least {interval_ms} ms earlier, by the manifest)")
                } else {
                    String::new()
                }
            ),
        );
        Some(Resample { interval_ms, tasks })
    }

    fn kernel_log(&mut self, snapshot: &mut Snapshot) {
        let path = "sos_commands/kernel/dmesg";
        let Some(text) = self.text(path) else {
            self.source(
                "kernel-log",
                SourceState::Absent,
                "no dmesg in the report (kernel plugin not run)",
            );
            return;
        };
        let mut log = nodedoc_kmsg::parse_dmesg_text(&text, None);
        log.source = KernelLogSource::File;
        self.source(
            "kernel-log",
            SourceState::Partial,
            format!(
                "{path}: {} records, {} blocked-task reports; `dmesg` text has no facility: lines user space wrote into /dev/kmsg look like the kernel's",
                log.records.len(),
                log.blocked_task_reports.len()
            ),
        );
        if log.malformed > 0 {
            self.gap(
                path,
                format!("{} lines do not parse", log.malformed),
                "dmesg",
            );
        }
        snapshot.kernel_log = Some(log);
    }

    fn mounts(&mut self, snapshot: &mut Snapshot) {
        let Some(text) = self.text("proc/1/mountinfo") else {
            self.source(
                "mounts",
                SourceState::Absent,
                "no proc/1/mountinfo (filesys plugin not run)",
            );
            return;
        };
        let (mounts, bad) = nodedoc_procfs::parse::parse_mountinfo(&text);
        snapshot.mounts = mounts
            .into_iter()
            .filter(nodedoc_procfs::mount_of_interest)
            .map(|m| MountEntry {
                seen_via_pid: 1,
                ..m
            })
            .collect();
        if !bad.is_empty() {
            self.gap(
                "proc/1/mountinfo",
                format!("{} lines do not parse", bad.len()),
                "mountinfo",
            );
        }
        self.source(
            "mounts",
            SourceState::Partial,
            "proc/1/mountinfo: the host's mount namespace only (namespace inodes are not in a report)",
        );
    }

    fn freezers(&mut self, snapshot: &mut Snapshot) {
        let mut seen = std::collections::BTreeSet::new();
        for process in &snapshot.processes {
            for membership in &process.cgroups {
                let v1 = membership.controllers.split(',').any(|c| c == "freezer");
                if !(v1 || membership.hierarchy == 0) || !seen.insert((v1, membership.path.clone()))
                {
                    continue;
                }
                let found = if v1 {
                    let rel = format!("sys/fs/cgroup/freezer{}/freezer.state", membership.path);
                    self.text(&rel).and_then(|t| {
                        let state = match t.trim() {
                            "FROZEN" => FreezerState::Frozen,
                            "FREEZING" => FreezerState::Freezing,
                            "THAWED" => FreezerState::Thawed,
                            _ => return None,
                        };
                        Some((CgroupHierarchy::V1Freezer, state))
                    })
                } else {
                    ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
                        .iter()
                        .find_map(|mount| {
                            let rel = format!("{}{}/cgroup.freeze", &mount[1..], membership.path);
                            let text = self.text(&rel)?;
                            let state = if text.trim() == "1" {
                                FreezerState::Frozen
                            } else {
                                FreezerState::Thawed
                            };
                            Some((
                                CgroupHierarchy::V2 {
                                    mount: mount.to_string(),
                                },
                                state,
                            ))
                        })
                };
                if let Some((hierarchy, state)) = found {
                    if state != FreezerState::Thawed {
                        snapshot.freezers.push(FreezerCgroup {
                            hierarchy,
                            path: membership.path.clone(),
                            state,
                        });
                    }
                }
            }
        }
        if !self.bundle.exists("sys/fs/cgroup") {
            self.source(
                "freezers",
                SourceState::Absent,
                "no sys/fs/cgroup (cgroups plugin not run): frozen tasks cannot be told",
            );
        }
    }

    fn network(&mut self, snapshot: &mut Snapshot) {
        let dir = "sos_commands/networking";
        let host_text = ["ip_-d_address", "ip_-s_-d_link"].iter().find_map(|name| {
            self.text(&format!("{dir}/{name}"))
                .map(|t| (name.to_string(), t))
        });
        let Some((host_file, host_text)) = host_text else {
            self.source(
                "network",
                SourceState::Absent,
                "no `ip -d address` (networking plugin not run)",
            );
            return;
        };
        let mut namespaces = vec![NetNamespace {
            inode: 0,
            names: Vec::new(),
            initial: true,
            entered_via: format!("sos: {dir}/{host_file}"),
            devices: net::parse_ip_address(&host_text),
        }];
        let mut unreadable = vec![
            "namespaces without a name under /run/netns (sos runs `ip netns exec` only for named ones)"
                .to_string(),
        ];
        let names = self
            .text(&format!("{dir}/ip_netns"))
            .map(|t| net::parse_netns_list(&t))
            .unwrap_or_default();
        for name in names {
            let rel = format!("{dir}/ip_netns_exec_{name}_ip_address_show");
            match self.text(&rel) {
                Some(text) => namespaces.push(NetNamespace {
                    inode: 0,
                    names: vec![name.clone()],
                    initial: false,
                    entered_via: format!("sos: {rel}"),
                    devices: net::parse_ip_address(&text),
                }),
                None => unreadable.push(format!(
                    "{name}: not collected (sos's networking.namespaces limit?)"
                )),
            }
        }
        self.source(
            "network",
            SourceState::Partial,
            format!(
                "devices of the host and of {} named namespaces; {}",
                namespaces.len() - 1,
                unreadable.join("; ")
            ),
        );
        snapshot.network = Some(NetworkNamespaces {
            namespaces,
            unreadable,
            unverified: Vec::new(),
        });
    }

    fn ovs(&mut self, snapshot: &mut Snapshot, manifest: Option<&serde_json::Value>) {
        let dir = "sos_commands/openvswitch";
        let dump_path = format!("{dir}/ovsdb-client_-f_list_dump");
        let state = match self.text(&dump_path) {
            Some(text) => ovs::from_dump(&text, &format!("sos: {dump_path}")),
            None => None,
        }
        .or_else(|| {
            let interfaces = self.text(&format!("{dir}/ovs-vsctl_-t_5_list_interface"))?;
            let show = self.text(&format!("{dir}/ovs-vsctl_-t_5_show"));
            let root = self.text(&format!("{dir}/ovs-vsctl_-t_5_list_Open_vSwitch"));
            ovs::from_listings(
                &interfaces,
                show.as_deref(),
                root.as_deref(),
                "sos: ovs-vsctl list interface",
            )
        });
        let vswitchd_running = snapshot.processes.iter().any(|p| p.comm == "ovs-vswitchd");
        let Some(mut state) = state else {
            if vswitchd_running || self.bundle.exists(dir) {
                self.source(
                    "ovsdb",
                    if vswitchd_running { SourceState::Failed } else { SourceState::Absent },
                    format!("no OVSDB rows in {dir} (sos's openvswitch plugin finds OVS only under /run/openvswitch)"),
                );
            } else {
                self.source(
                    "ovsdb",
                    SourceState::Absent,
                    "no Open vSwitch in the report",
                );
            }
            return;
        };
        state.vswitchd = self.vswitchd(snapshot);
        state.log = self.ovs_log(manifest);
        self.source(
            "ovsdb",
            SourceState::Collected,
            format!(
                "{} bridges, {} interfaces from {}",
                state.bridges.len(),
                state.interfaces().count(),
                state.endpoint.trim_start_matches("sos: ")
            ),
        );
        match &state.log {
            Some(log) => {
                let detail = format!("{} ({} lines read)", log.path, log.lines_read);
                self.source("ovs-log", SourceState::Collected, detail);
            }
            None => self.source(
                "ovs-log",
                SourceState::Absent,
                "no ovs-vswitchd.log in the report (ovs-port-flapping needs it)",
            ),
        }
        snapshot.ovs = Some(state);
    }

    fn vswitchd(&mut self, snapshot: &Snapshot) -> Option<VswitchdProcess> {
        let found = [
            "run/openvswitch/ovs-vswitchd.pid",
            "var/run/openvswitch/ovs-vswitchd.pid",
        ]
        .iter()
        .find_map(|rel| {
            let pid: i32 = self.text(rel)?.trim().parse().ok()?;
            let p = snapshot
                .process(pid)
                .filter(|p| p.comm.starts_with("ovs-vswitchd"))?;
            Some((p, format!("pidfile {rel} in the report")))
        })
        .or_else(|| {
            snapshot
                .processes
                .iter()
                .filter(|p| p.comm == "ovs-vswitchd")
                .max_by_key(|p| p.threads)
                .map(|p| (p, "ps in the report (by name)".to_string()))
        })?;
        let (p, found_by) = found;
        Some(VswitchdProcess {
            pid: p.pid,
            start_time_ticks: p.start_time_ticks,
            found_by,
            handler_threads: 0,
            revalidator_threads: 0,
            threads: p.threads,
        })
    }

    fn ovs_log(&mut self, manifest: Option<&serde_json::Value>) -> Option<OvsLog> {
        let mut candidates: Vec<String> = Vec::new();
        if let Some(files) = manifest
            .and_then(|m| m["components"]["report"]["plugins"]["openvswitch"]["files"].as_array())
        {
            for spec in files {
                for copied in spec["files_copied"].as_array().into_iter().flatten() {
                    if let Some(path) = copied.as_str().filter(|p| p.ends_with("/ovs-vswitchd.log"))
                    {
                        candidates.push(path.trim_start_matches('/').to_string());
                    }
                }
            }
        }
        candidates.extend(self.bundle.kept_with_basename("ovs-vswitchd.log"));
        candidates.push("var/log/openvswitch/ovs-vswitchd.log".to_string());
        candidates.push("usr/local/var/log/openvswitch/ovs-vswitchd.log".to_string());
        candidates.dedup();
        for rel in candidates {
            match self.bundle.read_tail(&rel) {
                Ok(Some((bytes, size))) => {
                    let cut = size > bytes.len() as u64;
                    let (start, first_line) = if cut {
                        match bytes.iter().position(|&b| b == b'\n') {
                            Some(newline) => (newline + 1, None),
                            None => (bytes.len(), None),
                        }
                    } else {
                        (0, Some(1))
                    };
                    let text = String::from_utf8_lossy(&bytes[start..]);
                    let mut log = nodedoc_ovs::log::reduce(&text, first_line);
                    log.path = format!("/{rel}");
                    log.found_by = format!("copied into the sosreport as {rel}");
                    log.size = size;
                    log.read_from = size.saturating_sub(bytes.len() as u64) + start as u64;
                    return Some(log);
                }
                Ok(None) => continue,
                Err(FileError { path, reason }) => self.gap(&path, reason, path.clone()),
            }
        }
        None
    }

    /// What each detector cannot see in this report.
    fn detector_gaps(&mut self, snapshot: &Snapshot) {
        let why_missing = if self.proc_files {
            "not collected for this pid: sos saves /proc/PID files for its first 2,048 pids only"
        } else {
            "not in the report: sos 4.0 saves none, later versions only the first 2,048 pids'"
        };
        let with_fds_no_limit: Vec<i32> = snapshot
            .processes
            .iter()
            .filter(|p| p.fds.is_some() && p.nofile.is_none())
            .map(|p| p.pid)
            .collect();
        for pid in &with_fds_no_limit {
            self.gap(
                "/proc/PID/limits (fd-exhaustion: limit unknown, only thousands of one socket kind are reported)",
                why_missing,
                pid.to_string(),
            );
        }
        let blocked: Vec<&Process> = snapshot
            .processes
            .iter()
            .filter(|p| p.state == TaskState::UninterruptibleSleep && p.kernel_stack.is_none())
            .collect();
        for p in blocked {
            self.gap(
                "/proc/PID/stack (hung-task, pidns-exit-hang: stack unclassified, wchan only)",
                why_missing,
                p.pid.to_string(),
            );
        }
        if !snapshot.processes.is_empty() {
            self.gap(
                "CPU time between two readings (ovs-vswitchd-busy)",
                "a report holds one reading of CPU time, in whole seconds",
                "ps",
            );
            self.gap(
                "/proc/PID/ns and /proc/PID/environ (netns-gone, pidns-exit-hang, cni-plugin-hang)",
                "not in a report",
                "ns",
            );
        }
        if snapshot.ovs.is_some() {
            self.gap(
                "/proc/PID/task/*/comm of ovs-vswitchd (ovs-netlink-socket-excess: handler threads unknown)",
                "not in a report",
                "handler threads",
            );
        }
        if snapshot.kernel_log.is_some() {
            self.gap(
                "kernel log facility (netdev-unregister-stuck, hung-task: lines user space wrote into /dev/kmsg cannot be told from the kernel's)",
                "sos saves `dmesg` text without the facility",
                "dmesg",
            );
        }
    }
}

/// The manifest's entry of the command whose output is `path`.
fn command_of<'m>(manifest: &'m serde_json::Value, path: &str) -> Option<&'m serde_json::Value> {
    let plugins = manifest["components"]["report"]["plugins"].as_object()?;
    plugins
        .values()
        .filter_map(|p| p["commands"].as_array())
        .flatten()
        .find(|c| c["filepath"].as_str() == Some(path))
}

/// The kernel's short name from a ps command line: `[kworker/0:1]` → `kworker/0:1`, a path →
/// its last component, cut to 15 bytes as the kernel does. Used only when the `comm` listing
/// lacks the process.
fn comm_of(cmd: &str) -> String {
    let name = if let Some(inner) = cmd.strip_prefix('[') {
        // Kernel threads as ps shows them, whole (workqueue workers' names exceed 15 bytes).
        return inner.split(']').next().unwrap_or(inner).to_string();
    } else {
        let first = cmd.split_whitespace().next().unwrap_or("");
        first.rsplit('/').next().unwrap_or(first)
    };
    let mut end = name.len().min(15);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comm_from_command_lines() {
        assert_eq!(comm_of("[kworker/R-rcu_gp]"), "kworker/R-rcu_gp");
        assert_eq!(
            comm_of("/usr/sbin/ovs-vswitchd unix:/x --pidfile"),
            "ovs-vswitchd"
        );
        assert_eq!(comm_of("/a/very-long-program-name"), "very-long-progr");
        assert_eq!(comm_of(""), "");
    }
}
