//! Inputs read from files the operator names instead of this host's live state: a saved
//! kernel log (`--kernel-log`), ovs-vswitchd's log (`--ovs-log`, read with Open vSwitch on a
//! live check). They work the same for a live check (they replace what would be read live)
//! and for a saved snapshot (`check --from`): [`apply`], [`apply_ovs_log`].

use std::path::{Path, PathBuf};

use nodedoc_model::{Gaps, KernelLog, Snapshot, SourceState, SourceStatus};

/// Files named on the command line.
#[derive(Clone, Debug, Default)]
pub struct FileInputs {
    /// A saved kernel log (dmesg, `dmesg -T`, `journalctl -k`, syslog, saved `/dev/kmsg`
    /// records): it replaces this host's kernel log.
    pub kernel_log: Option<PathBuf>,
    /// Services' logs (`--log`, repeatable): kubelet, containerd, dockerd text into
    /// [`Snapshot::service_logs`]; one in ovs-vswitchd's format into the OVS state.
    pub logs: Vec<PathBuf>,
    /// systemd journal files or directories (`--journal`, repeatable).
    pub journal: Vec<PathBuf>,
}

impl FileInputs {
    /// True when no file is named.
    pub fn is_empty(&self) -> bool {
        self.kernel_log.is_none() && self.logs.is_empty() && self.journal.is_empty()
    }
}

/// Reads a saved kernel log: its last [`nodedoc_kmsg::DEFAULT_TAIL_BYTES`], a regular file
/// only, a stalled read given up after the default deadline.
pub fn read_kernel_log(path: &Path) -> Result<KernelLog, nodedoc_kmsg::Error> {
    nodedoc_kmsg::read_kernel_log_file(
        path,
        nodedoc_kmsg::DEFAULT_TAIL_BYTES,
        nodedoc_model::hostfile::DEFAULT_STALL_DEADLINE,
    )
}

/// Puts a kernel log (or why it could not be read) into `snapshot`, in place of any it had:
/// the log, its `kernel-log` source status, and a gap on failure. `what` names what was read.
pub fn set_kernel_log(
    snapshot: &mut Snapshot,
    gaps: &mut Gaps,
    result: Result<KernelLog, nodedoc_kmsg::Error>,
    what: &str,
) {
    snapshot.sources.retain(|s| s.source != "kernel-log");
    match result {
        Ok(log) => {
            snapshot.sources.push(crate::kernel_log_status(&log));
            snapshot.kernel_log = Some(log);
        }
        Err(e) => {
            gaps.record("kernel-log", what, e.to_string(), "");
            snapshot.sources.push(SourceStatus {
                source: "kernel-log".into(),
                state: SourceState::Failed,
                detail: e.to_string(),
            });
            snapshot.kernel_log = None;
        }
    }
}

/// Reads the named files into a snapshot already made (`check --from`): each replaces what
/// the snapshot had of its kind; what cannot be read is said in its source status and gaps.
pub fn apply(inputs: &FileInputs, snapshot: &mut Snapshot) {
    let mut gaps = Gaps::new();
    if let Some(path) = &inputs.kernel_log {
        set_kernel_log(
            snapshot,
            &mut gaps,
            read_kernel_log(path),
            &path.display().to_string(),
        );
    }
    read_service_logs(inputs, snapshot, &mut gaps);
    read_journals(inputs, snapshot, &mut gaps);
    snapshot.gaps.extend(gaps.into_vec());
}

/// Reads the services' logs named with `--log` into `snapshot`, after what was collected or
/// loaded: each file's `service-log` source (or `ovs-log`, for ovs-vswitchd's own format)
/// starts with its path and says how it went; a failure is a gap too. A log read again
/// (the same path) replaces the one the snapshot had.
pub fn read_service_logs(inputs: &FileInputs, snapshot: &mut Snapshot, gaps: &mut Gaps) {
    for path in &inputs.logs {
        let shown = path.display().to_string();
        snapshot.sources.retain(|s| {
            !(s.source == "service-log" && s.detail.starts_with(&format!("{shown} (")))
        });
        let (text, skipped) = match crate::service_log::read_text(path) {
            Ok(read) => read,
            Err(e) => {
                named_file_failed(snapshot, gaps, "service-log", "--log", &shown, &e);
                continue;
            }
        };
        if crate::service_log::is_ovs_log(&text) {
            // ovs-vswitchd's own log: where the OVS detectors read it, as with --ovs-log.
            apply_ovs_log(path, "--log", snapshot);
            continue;
        }
        let log = crate::service_log::parse(&text, &shown);
        let detail = format!(
            "{shown} (--log: {}, {} format): {} entries{}{}",
            log.service
                .as_deref()
                .unwrap_or("service not named by its lines"),
            crate::service_log::format_name(log.format),
            log.entries_read,
            if log.entries_dropped > 0 {
                format!(", the oldest {} not kept", log.entries_dropped)
            } else {
                String::new()
            },
            if skipped > 0 {
                format!(", after the first {skipped} bytes (only the end is read)")
            } else {
                String::new()
            }
        );
        snapshot.service_logs.retain(|l| l.source != log.source);
        snapshot.service_logs.push(log);
        snapshot.sources.push(SourceStatus {
            source: "service-log".into(),
            state: SourceState::Collected,
            detail,
        });
    }
}

/// Reads ovs-vswitchd's log into a snapshot already made (`check --from --ovs-log`): it
/// replaces the log of the snapshot's OVS state, or, without one, is the state alone
/// ([`OvsState::log_only`](nodedoc_model::OvsState::log_only)). The `ovs-log` source says how
/// it went.
pub fn apply_ovs_log(path: &Path, flag: &str, snapshot: &mut Snapshot) {
    let options = nodedoc_ovs::log::LogReadOptions::tail(nodedoc_ovs::log::DEFAULT_TAIL_BYTES);
    snapshot.sources.retain(|s| s.source != "ovs-log");
    match nodedoc_ovs::log::read_log(path, &options, flag) {
        Ok(log) => {
            snapshot.sources.push(SourceStatus {
                source: "ovs-log".into(),
                state: SourceState::Collected,
                detail: format!(
                    "{} ({flag}{}): {} lines read from byte {} of {}",
                    log.path,
                    if snapshot.ovs.as_ref().is_some_and(|o| !o.log_only) {
                        ", in place of the OVS state's log"
                    } else {
                        ", without the OVSDB: the log alone"
                    },
                    log.lines_read,
                    log.read_from,
                    log.size
                ),
            });
            set_ovs_log(snapshot, log);
        }
        Err(e) => {
            let mut gaps = Gaps::new();
            gaps.record(
                "ovs-log",
                "ovs-vswitchd.log",
                e.to_string(),
                path.display().to_string(),
            );
            snapshot.gaps.extend(gaps.into_vec());
            snapshot.sources.push(SourceStatus {
                source: "ovs-log".into(),
                state: SourceState::Failed,
                detail: e.to_string(),
            });
        }
    }
}

/// Puts ovs-vswitchd's log into the snapshot's OVS state, or, without one, makes it the
/// state alone ([`OvsState::log_only`](nodedoc_model::OvsState::log_only)).
fn set_ovs_log(snapshot: &mut Snapshot, log: nodedoc_model::OvsLog) {
    match &mut snapshot.ovs {
        Some(ovs) => ovs.log = Some(log),
        None => {
            snapshot.ovs = Some(nodedoc_model::OvsState {
                log: Some(log),
                log_only: true,
                ..Default::default()
            })
        }
    }
}

/// Reads the journal files named with `--journal` into `snapshot`: the services' entries as
/// service logs, ovs-vswitchd's as its log, the kernel's as the kernel log (unless
/// `--kernel-log` names one). Each path's `journal` source starts with the path and says
/// what it held; one that cannot be read is a gap too.
pub fn read_journals(inputs: &FileInputs, snapshot: &mut Snapshot, gaps: &mut Gaps) {
    for path in &inputs.journal {
        let shown = path.display().to_string();
        let read = match crate::journal::read(path) {
            Ok(read) => read,
            Err(e) => {
                named_file_failed(snapshot, gaps, "journal", "--journal", &shown, &e);
                continue;
            }
        };
        let mut held: Vec<String> = read
            .services
            .iter()
            .map(|l| {
                format!(
                    "{} {}",
                    l.service.as_deref().unwrap_or_default(),
                    l.entries_read
                )
            })
            .collect();
        for log in read.services {
            // The same unit in several journals named: one log, in the order named.
            match snapshot
                .service_logs
                .iter_mut()
                .find(|l| l.source == log.source)
            {
                Some(had) => {
                    had.entries.extend(log.entries);
                    had.entries_read += log.entries_read;
                    had.entries_dropped += log.entries_dropped;
                }
                None => snapshot.service_logs.push(log),
            }
        }
        if let Some(log) = read.ovs {
            // ovs-vswitchd.log (named, found among the daemon's files, or the snapshot's) is
            // fuller than what the daemon sends to syslog: it stays.
            let file_read = snapshot
                .ovs
                .as_ref()
                .and_then(|o| o.log.as_ref())
                .is_some_and(|l| l.found_by != "--journal");
            if file_read {
                held.push(format!(
                    "ovs-vswitchd {} (not used: ovs-vswitchd.log was read)",
                    log.lines_read
                ));
            } else {
                held.push(format!("ovs-vswitchd {}", log.lines_read));
                snapshot.sources.retain(|s| s.source != "ovs-log");
                snapshot.sources.push(SourceStatus {
                    source: "ovs-log".into(),
                    state: SourceState::Collected,
                    detail: format!(
                        "{} (--journal{}): {} entries of ovs-vswitchd",
                        log.path,
                        if snapshot.ovs.as_ref().is_some_and(|o| !o.log_only) {
                            ", with the OVSDB's state"
                        } else {
                            ", without the OVSDB: the log alone"
                        },
                        log.lines_read
                    ),
                });
                set_ovs_log(snapshot, log);
            }
        }
        if let Some(kernel) = read.kernel {
            let records = kernel.records.len();
            let earlier = if read.kernel_earlier_boots > 0 {
                format!(", {} of earlier boots left out", read.kernel_earlier_boots)
            } else {
                String::new()
            };
            if inputs.kernel_log.is_some() {
                held.push(format!(
                    "kernel {records} (not used: --kernel-log names the kernel log){earlier}"
                ));
            } else {
                held.push(format!("kernel {records} of the last boot{earlier}"));
                set_kernel_log(snapshot, gaps, Ok(kernel), &shown);
            }
        }
        let detail = format!(
            "{shown} (--journal, read by journalctl): {} entries of the services and the kernel{}{}",
            read.entries,
            if held.is_empty() {
                String::new()
            } else {
                format!(": {}", held.join(", "))
            },
            if read.malformed > 0 {
                format!("; {} lines of journalctl output not understood", read.malformed)
            } else {
                String::new()
            }
        );
        snapshot.sources.push(SourceStatus {
            source: "journal".into(),
            state: SourceState::Collected,
            detail,
        });
    }
}

/// Records that a file named with `flag` could not be read: a gap, and a failed `source`
/// whose detail starts with the path (how the caller finds it again for exit 3).
fn named_file_failed(
    snapshot: &mut Snapshot,
    gaps: &mut Gaps,
    source: &str,
    flag: &str,
    shown: &str,
    error: &dyn std::fmt::Display,
) {
    gaps.record(source, flag, error.to_string(), shown.to_string());
    snapshot.sources.push(SourceStatus {
        source: source.into(),
        state: SourceState::Failed,
        detail: format!("{shown} ({flag}): {error}"),
    });
}
