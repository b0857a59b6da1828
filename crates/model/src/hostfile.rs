//! Reading files whose paths come from the host or the user, as root, without being made to
//! hang, to read what is not a file, or to read without end.
//!
//! nodedoc runs as root on nodes where other users can plant files and processes. A path
//! found on the host (a log among a daemon's open files, a pidfile) or typed by the operator
//! (`--from`, `--ovs-log`) may name a FIFO, whose `open` blocks until a writer comes — forever,
//! when the writer is an attacker who never comes; a device, whose `open` may act (a tape
//! rewinds) and whose reads never end (`/dev/zero`); or a regular file on a FUSE or NFS mount
//! that does not answer, where `stat`, `open` and `read` all block. So every such read goes
//! through here:
//!
//! - **Only regular files.** The path is `stat`ed first and anything else is refused without
//!   being opened, with an error that names the path and what it is. A regular file is then
//!   opened `O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC` and `fstat`ed again: a file swapped
//!   in between (a FIFO renamed over it) is caught, and thanks to `O_NONBLOCK` its open cannot
//!   block either.
//! - **Bounded in size.** Callers pass a maximum; the file is refused above it, and a file
//!   that grows while read is cut at it.
//! - **Bounded in time.** The work runs on a helper thread ([`guarded`]) and the caller gives
//!   up once the helper has made no progress for a deadline. This is the idea of procfs's
//!   memory-map reader (see `nodedoc_procfs`'s `memory_map` module) applied to files: a read
//!   that does not answer leaves the helper blocked in the kernel; the wait is killable (FUSE
//!   and NFS wait killably), so it ends at the latest when nodedoc exits. A deadline on
//!   *progress* rather than on the whole read lets a large file on a slow disk finish.
//!
//! Files under `/proc` and `/sys` are read directly elsewhere: the kernel serves them, and
//! none of them is a FIFO or a device.

use std::fmt;
use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// How long a read of a host file may make no progress before nodedoc gives up on it. A
/// healthy local or network filesystem answers within milliseconds; ten seconds of silence is
/// a mount that does not answer.
pub const DEFAULT_STALL_DEADLINE: Duration = Duration::from_secs(10);

/// What kind of file a path names, for refusals that say what was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// A regular file: the only kind nodedoc reads.
    Regular,
    /// A directory.
    Directory,
    /// A FIFO (named pipe): opening it blocks until a writer comes.
    Fifo,
    /// A unix socket.
    Socket,
    /// A character device (`/dev/zero`, a tty).
    CharDevice,
    /// A block device (a disk).
    BlockDevice,
    /// A symbolic link (only seen where links are not followed).
    Symlink,
    /// Anything else.
    Other,
}

impl FileKind {
    /// The kind of a file type.
    pub fn of(file_type: std::fs::FileType) -> FileKind {
        if file_type.is_file() {
            FileKind::Regular
        } else if file_type.is_dir() {
            FileKind::Directory
        } else if file_type.is_symlink() {
            FileKind::Symlink
        } else if file_type.is_fifo() {
            FileKind::Fifo
        } else if file_type.is_socket() {
            FileKind::Socket
        } else if file_type.is_char_device() {
            FileKind::CharDevice
        } else if file_type.is_block_device() {
            FileKind::BlockDevice
        } else {
            FileKind::Other
        }
    }
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileKind::Regular => "a regular file",
            FileKind::Directory => "a directory",
            FileKind::Fifo => "a FIFO (named pipe)",
            FileKind::Socket => "a socket",
            FileKind::CharDevice => "a character device",
            FileKind::BlockDevice => "a block device",
            FileKind::Symlink => "a symbolic link",
            FileKind::Other => "a special file",
        })
    }
}

/// `limit` in the largest binary unit that divides it (`1 GiB`, `16 MiB`), else in bytes.
pub fn format_bytes(limit: u64) -> String {
    for (shift, unit) in [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if limit >= 1 << shift && limit % (1 << shift) == 0 {
            return format!("{} {unit}", limit >> shift);
        }
    }
    format!("{limit} bytes")
}

/// Why a host file was not read. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum HostFileError {
    /// The file could not be found, opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// The path names something other than a regular file; it was not opened.
    #[error("{path} is {kind}, not a regular file: not opened")]
    NotRegular {
        /// The file.
        path: PathBuf,
        /// What it is.
        kind: FileKind,
    },
    /// The file is larger than the caller's limit.
    #[error("{path} is larger than {} ({size} bytes): not read", format_bytes(*limit))]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size (at least), in bytes.
        size: u64,
        /// The limit, in bytes.
        limit: u64,
    },
    /// Reading made no progress for the deadline: the filesystem does not answer.
    #[error("{path}: no answer for {}s (a filesystem that does not answer?); gave up", stalled.as_secs_f32())]
    Stalled {
        /// The file.
        path: PathBuf,
        /// How long it made no progress.
        stalled: Duration,
    },
    /// The file is owned by someone it should not be.
    #[error("{path} is owned by uid {uid}, not by {expected}: not read")]
    Owner {
        /// The file.
        path: PathBuf,
        /// Its owner.
        uid: u32,
        /// Who may own it, in words (`root`, `root or uid 993`).
        expected: String,
    },
}

impl HostFileError {
    fn io(path: &Path, source: io::Error) -> HostFileError {
        HostFileError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            HostFileError::Io { path, .. }
            | HostFileError::NotRegular { path, .. }
            | HostFileError::TooLarge { path, .. }
            | HostFileError::Stalled { path, .. }
            | HostFileError::Owner { path, .. } => path,
        }
    }
}

/// Opens `path` for reading if, and only if, it is a regular file (symlinks to one are
/// followed); returns it with its metadata. Anything else is refused before any `open`.
///
/// This blocks if the filesystem does not answer: call it inside [`guarded`].
pub fn open_regular(path: &Path) -> Result<(File, Metadata), HostFileError> {
    let before = std::fs::metadata(path).map_err(|e| HostFileError::io(path, e))?;
    refuse_unless_regular(path, &before)?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        // O_NONBLOCK: should a FIFO have been swapped in since the stat, its open returns at
        // once instead of waiting for a writer. O_NOCTTY: a tty swapped in does not become
        // ours. (O_CLOEXEC is std's default.)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| HostFileError::io(path, e))?;
    let metadata = file.metadata().map_err(|e| HostFileError::io(path, e))?;
    refuse_unless_regular(path, &metadata)?;
    if (metadata.dev(), metadata.ino()) != (before.dev(), before.ino()) {
        return Err(HostFileError::io(
            path,
            io::Error::other("replaced by another file while being opened"),
        ));
    }
    Ok((file, metadata))
}

fn refuse_unless_regular(path: &Path, metadata: &Metadata) -> Result<(), HostFileError> {
    match FileKind::of(metadata.file_type()) {
        FileKind::Regular => Ok(()),
        kind => Err(HostFileError::NotRegular {
            path: path.to_path_buf(),
            kind,
        }),
    }
}

/// Refuses a file whose owner is not one of `owners` (`expected` says who, in words).
pub fn require_owner(
    path: &Path,
    metadata: &Metadata,
    owners: &[u32],
    expected: &str,
) -> Result<(), HostFileError> {
    if owners.contains(&metadata.uid()) {
        Ok(())
    } else {
        Err(HostFileError::Owner {
            path: path.to_path_buf(),
            uid: metadata.uid(),
            expected: expected.to_string(),
        })
    }
}

/// Reads all of the regular file at `path`, refusing it above `max_bytes`, giving up when the
/// read makes no progress for `stall`.
pub fn read_regular(
    path: &Path,
    max_bytes: u64,
    stall: Duration,
) -> Result<Vec<u8>, HostFileError> {
    let owned = path.to_path_buf();
    guarded(path, stall, move |progress| {
        let path = owned.as_path();
        let (file, metadata) = open_regular(path)?;
        progress.tick();
        read_to_limit(path, file, metadata.len(), max_bytes, progress)
    })
}

/// Reads `file` (whose size was `size` when opened) to its end, at most `max_bytes`.
pub fn read_to_limit(
    path: &Path,
    file: File,
    size: u64,
    max_bytes: u64,
    progress: &Progress,
) -> Result<Vec<u8>, HostFileError> {
    let too_large = |size| HostFileError::TooLarge {
        path: path.to_path_buf(),
        size,
        limit: max_bytes,
    };
    if size > max_bytes {
        return Err(too_large(size));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    // One byte more than allowed tells a file that grew past the limit from one that did not.
    progress
        .reader(file)
        .take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| HostFileError::io(path, e))?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// The end of a file, read by [`read_tail`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tail {
    /// The bytes read, from the start of a line.
    pub bytes: Vec<u8>,
    /// The file's size when it was opened.
    pub size: u64,
    /// Bytes before [`bytes`](Self::bytes) that were not read: the head of a file larger than
    /// the tail asked for, and the partial line the tail started in.
    pub skipped: u64,
    /// When the file was last modified, seconds since the Unix epoch.
    pub modified_unix: Option<i64>,
}

/// Reads the last `tail_bytes` of the regular file at `path`, from the first whole line in
/// them (a log of gigabytes costs what its end costs), giving up when the read makes no
/// progress for `stall`. A file that grows while read is read up to its size at open.
pub fn read_tail(path: &Path, tail_bytes: u64, stall: Duration) -> Result<Tail, HostFileError> {
    use std::io::{Seek, SeekFrom};
    let owned = path.to_path_buf();
    guarded(path, stall, move |progress| {
        let path = owned.as_path();
        let (mut file, metadata) = open_regular(path)?;
        progress.tick();
        let size = metadata.len();
        let start = size.saturating_sub(tail_bytes);
        // From one byte before the tail: if that byte is a newline the tail starts on a whole
        // line, otherwise the partial line up to the first newline is dropped.
        let read_from = start.saturating_sub(1);
        file.seek(SeekFrom::Start(read_from))
            .map_err(|e| HostFileError::io(path, e))?;
        let mut bytes = Vec::with_capacity((size - read_from) as usize);
        progress
            .reader(&mut file)
            .take(size - read_from)
            .read_to_end(&mut bytes)
            .map_err(|e| HostFileError::io(path, e))?;
        let first = if read_from == 0 {
            0
        } else {
            bytes
                .iter()
                .position(|&b| b == b'\n')
                .map_or(bytes.len(), |n| n + 1)
        };
        bytes.drain(..first);
        Ok(Tail {
            bytes,
            size,
            skipped: read_from + first as u64,
            modified_unix: Some(metadata.mtime()),
        })
    })
}

/// Progress of a [`guarded`] read: each tick restarts the stall deadline.
pub struct Progress {
    started: Instant,
    /// Milliseconds from `started` to the last tick.
    last_ms: Arc<AtomicU64>,
}

impl Progress {
    /// Says the work is moving.
    pub fn tick(&self) {
        let now = self.started.elapsed().as_millis() as u64;
        self.last_ms.store(now, Ordering::Relaxed);
    }

    /// Wraps a reader so that every read that returns ticks.
    pub fn reader<R: Read>(&self, inner: R) -> ProgressReader<'_, R> {
        ProgressReader {
            inner,
            progress: self,
        }
    }
}

/// A reader that ticks a [`Progress`] on every read.
pub struct ProgressReader<'a, R> {
    inner: R,
    progress: &'a Progress,
}

impl<R: Read> Read for ProgressReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.tick();
        Ok(n)
    }
}

/// Runs `work` (which opens and reads `path`) on a helper thread, and gives up with
/// [`HostFileError::Stalled`] once it has not ticked its [`Progress`] for `stall`. An
/// abandoned helper ends when its blocked call returns, or with nodedoc.
pub fn guarded<T, F>(path: &Path, stall: Duration, work: F) -> Result<T, HostFileError>
where
    T: Send + 'static,
    F: FnOnce(&Progress) -> Result<T, HostFileError> + Send + 'static,
{
    let started = Instant::now();
    let last_ms = Arc::new(AtomicU64::new(0));
    let progress = Progress {
        started,
        last_ms: last_ms.clone(),
    };
    let (reply, replies) = mpsc::channel();
    std::thread::Builder::new()
        .name("nodedoc-file-read".into())
        .spawn(move || {
            // The receiver is gone when the caller gave up: nothing to do then.
            let _ = reply.send(work(&progress));
        })
        .map_err(|e| HostFileError::io(path, e))?;
    loop {
        let since_last = started
            .elapsed()
            .saturating_sub(Duration::from_millis(last_ms.load(Ordering::Relaxed)));
        if since_last >= stall {
            return Err(HostFileError::Stalled {
                path: path.to_path_buf(),
                stalled: stall,
            });
        }
        match replies.recv_timeout(stall - since_last) {
            Ok(result) => return result,
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(HostFileError::io(
                    path,
                    io::Error::other("the reading thread stopped"),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mkfifo(path: &Path) {
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid C string; mkfifo does not keep it.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o666) }, 0);
    }

    #[test]
    fn tails_start_on_a_whole_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(&path, "first line\nsecond\nthird\n").unwrap();
        let whole = read_tail(&path, 1 << 20, DEFAULT_STALL_DEADLINE).unwrap();
        assert_eq!(whole.bytes, b"first line\nsecond\nthird\n");
        assert_eq!((whole.size, whole.skipped), (24, 0));
        assert!(whole.modified_unix.is_some());
        // The last 10 bytes start inside "second": that partial line is dropped.
        let tail = read_tail(&path, 10, DEFAULT_STALL_DEADLINE).unwrap();
        assert_eq!(tail.bytes, b"third\n");
        assert_eq!(tail.skipped, 18);
        // A tail that starts right after a newline keeps its first line.
        let exact = read_tail(&path, 13, DEFAULT_STALL_DEADLINE).unwrap();
        assert_eq!(exact.bytes, b"second\nthird\n");
        assert!(matches!(
            read_tail(dir.path(), 10, DEFAULT_STALL_DEADLINE),
            Err(HostFileError::NotRegular { .. })
        ));
    }

    #[test]
    fn regular_files_are_read_within_their_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"12345").unwrap();
        assert_eq!(
            read_regular(&path, 5, DEFAULT_STALL_DEADLINE).unwrap(),
            b"12345"
        );
        let err = read_regular(&path, 4, DEFAULT_STALL_DEADLINE).unwrap_err();
        assert!(
            matches!(
                err,
                HostFileError::TooLarge {
                    size: 5,
                    limit: 4,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("larger than 4 bytes"), "{err}");
        // A symlink to a regular file is followed.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert_eq!(
            read_regular(&link, 5, DEFAULT_STALL_DEADLINE).unwrap(),
            b"12345"
        );
        let missing = read_regular(&dir.path().join("nope"), 5, DEFAULT_STALL_DEADLINE);
        assert!(missing.unwrap_err().to_string().contains("nope"));
    }

    #[test]
    fn fifos_devices_and_directories_are_refused_unopened() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        mkfifo(&fifo);
        // No writer ever comes: a blocking open would never return.
        let err = read_regular(&fifo, 1 << 20, DEFAULT_STALL_DEADLINE).unwrap_err();
        assert!(
            matches!(
                err,
                HostFileError::NotRegular {
                    kind: FileKind::Fifo,
                    ..
                }
            ),
            "{err}"
        );
        let text = err.to_string();
        assert!(text.contains("fifo is a FIFO (named pipe)"), "{text}");
        for (path, kind) in [
            ("/dev/zero", FileKind::CharDevice),
            ("/dev/null", FileKind::CharDevice),
            ("/", FileKind::Directory),
        ] {
            let err = read_regular(Path::new(path), 1 << 20, DEFAULT_STALL_DEADLINE).unwrap_err();
            match err {
                HostFileError::NotRegular { kind: found, .. } => assert_eq!(found, kind, "{path}"),
                other => panic!("{path}: {other}"),
            }
        }
    }

    #[test]
    fn a_read_that_makes_no_progress_is_abandoned() {
        let (release, wait) = mpsc::channel::<()>();
        let started = Instant::now();
        let err = guarded(Path::new("/stuck"), Duration::from_millis(200), move |_| {
            // Stands for a read on a filesystem that does not answer.
            let _ = wait.recv();
            Ok(())
        })
        .unwrap_err();
        assert!(matches!(err, HostFileError::Stalled { .. }), "{err}");
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert!(
            err.to_string().starts_with("/stuck: no answer for 0.2s"),
            "{err}"
        );
        drop(release);
    }

    #[test]
    fn ticks_keep_a_slow_read_alive() {
        // 1.5 s in all, never 1 s without a tick.
        let result = guarded(Path::new("/slow"), Duration::from_secs(1), |progress| {
            for _ in 0..10 {
                std::thread::sleep(Duration::from_millis(150));
                progress.tick();
            }
            Ok(7)
        });
        assert_eq!(result.unwrap(), 7);
    }

    #[test]
    fn owners_and_sizes_read_well() {
        let meta = std::fs::metadata("/").unwrap();
        assert!(require_owner(Path::new("/"), &meta, &[0], "root").is_ok());
        let err = require_owner(Path::new("/"), &meta, &[65534], "uid 65534").unwrap_err();
        assert_eq!(
            err.to_string(),
            "/ is owned by uid 0, not by uid 65534: not read"
        );
        assert_eq!(format_bytes(1 << 30), "1 GiB");
        assert_eq!(format_bytes(16 << 20), "16 MiB");
        assert_eq!(format_bytes(1000), "1000 bytes");
    }
}
