//! Inputs read from files the operator names instead of this host's live state: a saved
//! kernel log (`--kernel-log`). They work the same for a live check (they replace what
//! would be read live) and for a saved snapshot (`check --from`): [`apply`].

use std::path::{Path, PathBuf};

use nodedoc_model::{Gaps, KernelLog, Snapshot, SourceState, SourceStatus};

/// Files named on the command line.
#[derive(Clone, Debug, Default)]
pub struct FileInputs {
    /// A saved kernel log (dmesg, `dmesg -T`, `journalctl -k`, syslog, saved `/dev/kmsg`
    /// records): it replaces this host's kernel log.
    pub kernel_log: Option<PathBuf>,
}

impl FileInputs {
    /// True when no file is named.
    pub fn is_empty(&self) -> bool {
        self.kernel_log.is_none()
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
    snapshot.gaps.extend(gaps.into_vec());
}
