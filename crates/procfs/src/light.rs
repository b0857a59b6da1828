//! The cheap reading of every process that an agent round takes: `/proc/PID/stat` and the
//! number of open descriptors, nothing else.
//!
//! Since Linux 6.2 (commit f1f1f2569901, "procfs: add 'size' to /proc/<pid>/fd/"), `stat(2)` on
//! `/proc/PID/fd` reports the number of open descriptors as its size: one system call instead
//! of listing the directory, whatever the count (a process holding 100,000 sockets costs the
//! same as one holding 3). Older kernels report 0; there the directory is listed.

use std::os::fd::AsFd;

use nodedoc_model::TaskState;
use rustix::fs::{AtFlags, Mode, OFlags};

use crate::parse::{parse_stat, PF_KTHREAD};
use crate::{read_at, ProcRoot, ReadError};

/// One process as a round reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct LightTask {
    /// Process id.
    pub pid: i32,
    /// Parent.
    pub ppid: i32,
    /// `comm`.
    pub comm: String,
    /// State letter.
    pub state: TaskState,
    /// Start time in clock ticks after boot (with the pid, its identity).
    pub start_time_ticks: u64,
    /// User CPU ticks.
    pub utime_ticks: u64,
    /// System CPU ticks.
    pub stime_ticks: u64,
    /// Threads.
    pub threads: u32,
    /// A kernel thread.
    pub kernel_thread: bool,
    /// Open descriptors, when `/proc/PID/fd` could be read.
    pub fd_count: Option<u64>,
    /// When it was read, microseconds of `CLOCK_MONOTONIC`.
    pub sampled_at_us: u64,
}

/// How descriptors are counted on this kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FdCountMethod {
    /// `stat(2)` of `/proc/PID/fd` (Linux ≥ 6.2): constant cost.
    StatSize,
    /// Listing `/proc/PID/fd`: cost grows with the count.
    Listing,
}

/// Which method this kernel supports, decided once from this process's own table (which is
/// never empty: it holds at least the directory it is reading).
pub fn fd_count_method(root: &ProcRoot) -> FdCountMethod {
    let me = std::process::id() as i32;
    let size = root.open_pid(me).ok().and_then(|dir| {
        rustix::fs::statat(dir.as_fd(), c"fd", AtFlags::empty())
            .ok()
            .map(|st| st.st_size)
    });
    if root.is_live() && size.is_some_and(|s| s > 0) {
        FdCountMethod::StatSize
    } else {
        FdCountMethod::Listing
    }
}

/// A cheap reading of every process.
#[derive(Debug, Default)]
pub struct LightScan {
    /// By pid.
    pub tasks: Vec<LightTask>,
    /// Processes that exited between the listing and their reading.
    pub vanished: u64,
}

/// Reads `stat` and the descriptor count of every process.
pub fn light_scan(root: &ProcRoot, method: FdCountMethod) -> Result<LightScan, ReadError> {
    let mut scan = LightScan::default();
    let mut buf = Vec::with_capacity(1024);
    for pid in root.pids()? {
        match read_light(root, pid, method, &mut buf) {
            Ok(task) => scan.tasks.push(task),
            Err(_) => scan.vanished += 1,
        }
    }
    Ok(scan)
}

fn read_light(
    root: &ProcRoot,
    pid: i32,
    method: FdCountMethod,
    buf: &mut Vec<u8>,
) -> Result<LightTask, ReadError> {
    let dir = root.open_pid(pid)?;
    let sampled_at_us = crate::monotonic_us();
    read_at(dir.as_fd(), c"stat", buf)
        .map_err(|e| ReadError::from_io(root.display(pid, "stat"), e))?;
    let stat = parse_stat(buf)
        .map_err(|what| ReadError::parse(root.display(pid, "stat"), Some(1), what))?;
    let fd_count = match method {
        FdCountMethod::StatSize => rustix::fs::statat(dir.as_fd(), c"fd", AtFlags::empty())
            .ok()
            .map(|st| st.st_size.max(0) as u64),
        FdCountMethod::Listing => count_entries(dir.as_fd()),
    };
    Ok(LightTask {
        pid,
        ppid: stat.ppid,
        comm: stat.comm,
        state: TaskState::from_letter(stat.state),
        start_time_ticks: stat.start_time,
        utime_ticks: stat.utime,
        stime_ticks: stat.stime,
        threads: stat.num_threads,
        kernel_thread: stat.flags & PF_KTHREAD != 0,
        fd_count,
        sampled_at_us,
    })
}

/// Entries of `fd` below a process directory, `.` and `..` left out.
fn count_entries(dir: std::os::fd::BorrowedFd<'_>) -> Option<u64> {
    let fd = rustix::fs::openat(
        dir,
        c"fd",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let mut space = [std::mem::MaybeUninit::<u8>::uninit(); 16 * 1024];
    let mut entries = rustix::fs::RawDir::new(&fd, &mut space);
    let mut count = 0;
    while let Some(entry) = entries.next() {
        let entry = entry.ok()?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            count += 1;
        }
    }
    Some(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_methods_count_the_same_descriptors_of_this_process() {
        let root = ProcRoot::live().unwrap();
        // Hold a known number more, so the count is not just a coincidence.
        let held: Vec<std::fs::File> = (0..50)
            .map(|_| std::fs::File::open("/proc/self/stat").unwrap())
            .collect();
        let me = std::process::id() as i32;
        let listed = read_light(&root, me, FdCountMethod::Listing, &mut Vec::new()).unwrap();
        assert!(listed.fd_count.unwrap() >= 50);
        if fd_count_method(&root) == FdCountMethod::StatSize {
            // Other tests of this process open and close files on their threads meanwhile
            // (a failure in the full suite: listed 59, stat said 57): compare only readings
            // between which the listing did not change.
            let count = |method| {
                read_light(&root, me, method, &mut Vec::new())
                    .unwrap()
                    .fd_count
                    .unwrap()
            };
            let mut compared = None;
            for _ in 0..200 {
                let before = count(FdCountMethod::Listing);
                let stated = count(FdCountMethod::StatSize);
                let after = count(FdCountMethod::Listing);
                if before == after {
                    compared = Some((before, stated));
                    break;
                }
            }
            let (a, b) = compared.expect("the descriptor table never held still");
            // The listing itself held one more descriptor while it ran.
            assert!(a.abs_diff(b) <= 1, "listed {a}, stat says {b}");
        }
        drop(held);
        let scan = light_scan(&root, fd_count_method(&root)).unwrap();
        assert!(scan.tasks.iter().any(|t| t.pid == me));
        assert!(scan.tasks.iter().any(|t| t.kernel_thread));
    }
}
