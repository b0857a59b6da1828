//! Reads processes from `/proc`: identity, state, limits, namespaces, cgroups, an fd census
//! with netlink sockets by protocol, and kernel stacks for the tasks that need them.
//!
//! Works on the live `/proc` or on a fake root (a directory laid out like `/proc`), so
//! detectors can be tested offline on recorded trees. A process that exits mid-scan and a
//! file root cannot read are normal: they become [`Gaps`], never a failed scan.
#![deny(missing_docs)]

mod census;
mod error;
mod host;
mod light;
mod memory_map;
pub mod parse;
mod resample;
mod scan;
mod system;
#[cfg(feature = "fake-root")]
pub mod testing;

use std::ffi::CStr;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};

pub use census::{census, CensusRequest, NetTables, ResolutionMode};
pub use error::{ReadError, ReadErrorKind};
pub use host::{host_info, monotonic_us};
pub use light::{fd_count_method, light_scan, FdCountMethod, LightScan, LightTask};
pub use nodedoc_model::Gaps;
pub use resample::{read_blocked, resample, ReadStep};
pub use scan::{
    read_kernel_detail, read_process, read_stack, scan, ProcessScan, ScanOptions,
    DEFAULT_MEMORY_MAP_DEADLINE,
};
pub use system::{interesting as mount_of_interest, read_freezers, read_mounts};

/// A `/proc` to read: the live one, or a fake root for tests.
#[derive(Debug)]
pub struct ProcRoot {
    path: PathBuf,
    dir: OwnedFd,
    live: bool,
}

impl ProcRoot {
    /// The live `/proc`.
    pub fn live() -> Result<ProcRoot, ReadError> {
        let mut root = ProcRoot::at(Path::new("/proc"))?;
        root.live = true;
        Ok(root)
    }

    /// A directory laid out like `/proc` (`PID/stat`, `PID/fd/N` symlinks, …). Sockets in a
    /// fake root can only be resolved through its `PID/net/*` tables.
    pub fn at(path: &Path) -> Result<ProcRoot, ReadError> {
        let dir = rustix::fs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| ReadError::from_io(path.display().to_string(), e.into()))?;
        Ok(ProcRoot {
            path: path.to_path_buf(),
            dir,
            live: false,
        })
    }

    /// The directory this root reads.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True for the live `/proc`.
    pub fn is_live(&self) -> bool {
        self.live
    }

    /// Every numeric entry, ascending.
    pub fn pids(&self) -> Result<Vec<i32>, ReadError> {
        let dir = rustix::fs::openat(
            &self.dir,
            c".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| ReadError::from_io(self.path.display().to_string(), e.into()))?;
        let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 32 * 1024];
        let mut entries = rustix::fs::RawDir::new(&dir, &mut buf);
        let mut pids = Vec::new();
        while let Some(entry) = entries.next() {
            let entry =
                entry.map_err(|e| ReadError::from_io(self.path.display().to_string(), e.into()))?;
            if let Some(pid) = std::str::from_utf8(entry.file_name().to_bytes())
                .ok()
                .and_then(|n| n.parse::<i32>().ok())
            {
                pids.push(pid);
            }
        }
        pids.sort_unstable();
        Ok(pids)
    }

    /// Opens `PID/` so that every later read of this process goes through one handle: if the
    /// pid is reused meanwhile, reads fail instead of mixing two processes.
    pub(crate) fn open_pid(&self, pid: i32) -> Result<OwnedFd, ReadError> {
        let name = pid.to_string();
        rustix::fs::openat(
            &self.dir,
            name.as_str(),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| ReadError::from_io(self.display(pid, ""), e.into()))
    }

    /// `/proc/PID/what` as a user would type it (for errors and evidence).
    pub fn display(&self, pid: i32, what: &str) -> String {
        let base = self.path.display();
        if what.is_empty() {
            format!("{base}/{pid}")
        } else {
            format!("{base}/{pid}/{what}")
        }
    }
}

/// Reads a whole small file relative to `dir` into `buf` (cleared first).
pub(crate) fn read_at(dir: BorrowedFd<'_>, name: &CStr, buf: &mut Vec<u8>) -> std::io::Result<()> {
    use std::io::Read;
    let fd = rustix::fs::openat(dir, name, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
    let mut file = std::fs::File::from(fd);
    buf.clear();
    file.read_to_end(buf)?;
    Ok(())
}
