//! Reads of `/proc/PID` files that take the target's memory-map lock, with a deadline.
//!
//! # Why
//! `/proc/PID/cmdline` and `/proc/PID/environ` are copied out of the target's memory, under
//! its `mmap_lock` (`access_remote_vm`). When a task of the target waits to take that lock for
//! writing (`mmap`, `munmap`, a new thread's stack) while someone holds it for reading and is
//! stuck (a page fault on a FUSE or NFS file that does not answer), every new reader queues
//! behind the writer: this is why `ps`, `top` and `pgrep -f` hang on a sick node. Measured on
//! kernel 6.18 with the `memory-map-lock` lab: the read never returns until the filesystem
//! answers. nodedoc runs on exactly such nodes, so these reads go through a helper thread and
//! the scan gives up on one after a deadline, records it, and goes on. Processes that cannot
//! have such a writer (one thread, not in D) are read directly: the helper's round trip is
//! two context switches (see docs/benchmarks.md).
//!
//! An abandoned helper stays blocked in the kernel until the lock frees; the wait is killable,
//! so it ends at the latest when nodedoc exits. The next read starts a fresh helper.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::mpsc;
use std::time::Duration;

use crate::read_at;

/// The files of one process to read, and what came of each.
struct Request {
    dir: OwnedFd,
    files: Vec<&'static CStr>,
}

type Reply = Vec<io::Result<Vec<u8>>>;

struct Helper {
    requests: mpsc::Sender<Request>,
    replies: mpsc::Receiver<Reply>,
}

impl Helper {
    fn spawn() -> io::Result<Helper> {
        let (requests, incoming) = mpsc::channel::<Request>();
        let (outgoing, replies) = mpsc::channel::<Reply>();
        std::thread::Builder::new()
            .name("procfs-mm-read".into())
            .stack_size(256 * 1024)
            .spawn(move || {
                for request in incoming {
                    let reply = read_files(request.dir.as_fd(), &request.files);
                    if outgoing.send(reply).is_err() {
                        // Abandoned: the scan gave up on this read and moved on.
                        return;
                    }
                }
            })?;
        Ok(Helper { requests, replies })
    }
}

/// What a guarded read gave.
pub(crate) enum Guarded {
    /// Each file's bytes or error, in the order asked.
    Read(Vec<io::Result<Vec<u8>>>),
    /// The reads did not finish within the deadline: the memory-map lock is held.
    Blocked,
}

/// Reads memory-map-locked files of one process after another, on one helper thread.
pub(crate) struct MemoryMapReader {
    deadline: Duration,
    helper: Option<Helper>,
}

impl MemoryMapReader {
    /// A reader that gives up on a process after `deadline`.
    pub(crate) fn new(deadline: Duration) -> MemoryMapReader {
        MemoryMapReader {
            deadline,
            helper: None,
        }
    }

    /// Reads `files` of the process whose `/proc/PID` directory is `dir`: on the helper thread
    /// when the read `may_block`, else right here.
    pub(crate) fn read(
        &mut self,
        dir: BorrowedFd<'_>,
        files: &[&'static CStr],
        may_block: bool,
    ) -> Guarded {
        if !may_block {
            return Guarded::Read(read_files(dir, files));
        }
        let dir = match dir.try_clone_to_owned() {
            Ok(dir) => dir,
            Err(e) => return Guarded::Read(files.iter().map(|_| Err(clone_error(&e))).collect()),
        };
        let helper = match self.helper.take() {
            Some(helper) => helper,
            None => match Helper::spawn() {
                Ok(helper) => helper,
                Err(e) => {
                    return Guarded::Read(files.iter().map(|_| Err(clone_error(&e))).collect())
                }
            },
        };
        let request = Request {
            dir,
            files: files.to_vec(),
        };
        if helper.requests.send(request).is_err() {
            // The helper is gone (it cannot panic on a read, but never trust that): no reads.
            let e = io::Error::other("the reading thread stopped");
            return Guarded::Read(files.iter().map(|_| Err(clone_error(&e))).collect());
        }
        match helper.replies.recv_timeout(self.deadline) {
            Ok(reply) => {
                self.helper = Some(helper);
                Guarded::Read(reply)
            }
            // Dropping the helper's channels abandons it; it exits once its read returns.
            Err(mpsc::RecvTimeoutError::Timeout) => Guarded::Blocked,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let e = io::Error::other("the reading thread stopped");
                Guarded::Read(files.iter().map(|_| Err(clone_error(&e))).collect())
            }
        }
    }
}

fn read_files(dir: BorrowedFd<'_>, files: &[&'static CStr]) -> Reply {
    files
        .iter()
        .map(|name| {
            let mut buf = Vec::new();
            read_at(dir, name, &mut buf).map(|()| buf)
        })
        .collect()
}

fn clone_error(e: &io::Error) -> io::Error {
    match e.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(e.kind(), e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process_and_reuses_its_helper() {
        let dir = std::fs::File::open("/proc/self").unwrap();
        let mut reader = MemoryMapReader::new(Duration::from_secs(30));
        for _ in 0..3 {
            match reader.read(dir.as_fd(), &[c"cmdline", c"no-such-file"], true) {
                Guarded::Read(results) => {
                    assert!(!results[0].as_ref().unwrap().is_empty());
                    assert_eq!(
                        results[1].as_ref().unwrap_err().kind(),
                        io::ErrorKind::NotFound
                    );
                }
                Guarded::Blocked => panic!("reading our own cmdline cannot block"),
            }
            assert!(reader.helper.is_some());
        }
    }
}
