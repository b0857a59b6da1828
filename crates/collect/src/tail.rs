//! Following a log file across rotation and truncation, as `tail -F` does, for the agent.
//!
//! A [`FileTail`] remembers which file it read (device and inode) and how far. Each call to
//! [`FileTail::read_new`] returns what was appended since: when the path now names another
//! file (logrotate moved the old one away), the rest of the old file is read first, then the
//! new one from its start; when the file got shorter than what was read (`copytruncate`,
//! `> file`), reading restarts at its start (a file emptied and refilled past the old offset
//! between two reads cannot be told from one that grew, as with `tail -F`). Reads are bounded per call (the rest waits for the
//! next call, reported as lag) and go through [`nodedoc_model::hostfile`]: only regular files,
//! and a file on a mount that stops answering is given up after a deadline, not waited for.

use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nodedoc_model::hostfile::{self, HostFileError};
use serde::{Deserialize, Serialize};

/// Where a tail starts the first time it opens its file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TailStart {
    /// At the end: only what is written from now on.
    End,
    /// This many bytes before the end (the whole file when it is smaller).
    LastBytes(u64),
    /// Where a saved cursor says, if it is the same file; else as `LastBytes` of this size.
    Resume(TailCursor, u64),
}

/// Which file was read, and how far: what a state file keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TailCursor {
    /// Device of the file.
    pub dev: u64,
    /// Inode of the file.
    pub ino: u64,
    /// Bytes read.
    pub offset: u64,
}

/// What one call read.
#[derive(Debug, Default)]
pub struct TailRead {
    /// The bytes appended since the last call (the end of the old file first, after a
    /// rotation).
    pub bytes: Vec<u8>,
    /// The path names a new file since the last call.
    pub rotated: bool,
    /// The file got shorter than what had been read: reading restarted at its start.
    pub truncated: bool,
    /// Bytes that are there but were left for the next call.
    pub lag: u64,
    /// Where in `bytes` a file starts being read from its start again (the new file after a
    /// rotation, the truncated file): what comes before it ended with the old file.
    pub restarted_at: Option<usize>,
}

/// A followed file.
#[derive(Debug)]
pub struct FileTail {
    path: PathBuf,
    start: TailStart,
    open: Option<(File, TailCursor)>,
    max_bytes_per_read: u64,
    stall: Duration,
}

impl FileTail {
    /// A tail of `path`, reading at most `max_bytes_per_read` per call.
    pub fn new(path: &Path, start: TailStart, max_bytes_per_read: u64) -> FileTail {
        FileTail {
            path: path.to_path_buf(),
            start,
            open: None,
            max_bytes_per_read: max_bytes_per_read.max(1),
            stall: hostfile::DEFAULT_STALL_DEADLINE,
        }
    }

    /// The file followed.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where reading stands, once the file was opened.
    pub fn cursor(&self) -> Option<TailCursor> {
        self.open.as_ref().map(|(_, c)| *c)
    }

    /// Reads what was appended since the last call. An error leaves the tail closed: the next
    /// call opens the path again (from its start, as after a rotation).
    pub fn read_new(&mut self) -> Result<TailRead, HostFileError> {
        let path = self.path.clone();
        let open = self.open.take();
        let start = self.start.clone();
        let max = self.max_bytes_per_read;
        let result = hostfile::guarded(&self.path, self.stall, move |progress| {
            let mut read = TailRead::default();
            let (mut file, mut cursor) = match open {
                Some(open) => open,
                None => {
                    let (file, metadata) = hostfile::open_regular(&path)?;
                    let size = metadata.len();
                    let id = (metadata.dev(), metadata.ino());
                    let offset = match start {
                        TailStart::End => size,
                        TailStart::LastBytes(n) => size.saturating_sub(n),
                        TailStart::Resume(saved, _) if (saved.dev, saved.ino) == id => {
                            if saved.offset <= size {
                                saved.offset
                            } else {
                                read.truncated = true;
                                read.restarted_at = Some(0);
                                0
                            }
                        }
                        TailStart::Resume(_, n) => size.saturating_sub(n),
                    };
                    let cursor = TailCursor {
                        dev: id.0,
                        ino: id.1,
                        offset,
                    };
                    (file, cursor)
                }
            };
            progress.tick();
            // Rotated: the path names another file now. Finish the old one first.
            let now = std::fs::metadata(&path).ok();
            let rotated = now
                .as_ref()
                .is_some_and(|m| (m.dev(), m.ino()) != (cursor.dev, cursor.ino));
            let mut budget = max;
            read_from(&path, &file, &mut cursor, &mut read, &mut budget, progress)?;
            if rotated && budget > 0 {
                let (new_file, metadata) = hostfile::open_regular(&path)?;
                read.rotated = true;
                read.restarted_at = Some(read.bytes.len());
                file = new_file;
                cursor = TailCursor {
                    dev: metadata.dev(),
                    ino: metadata.ino(),
                    offset: 0,
                };
                read_from(&path, &file, &mut cursor, &mut read, &mut budget, progress)?;
            }
            Ok((read, file, cursor))
        });
        let (read, file, cursor) = result?;
        self.open = Some((file, cursor));
        Ok(read)
    }
}

/// Reads `file` from the cursor up to its size or the budget.
fn read_from(
    path: &Path,
    file: &File,
    cursor: &mut TailCursor,
    read: &mut TailRead,
    budget: &mut u64,
    progress: &hostfile::Progress,
) -> Result<(), HostFileError> {
    let size = file
        .metadata()
        .map_err(|e| HostFileError::Io {
            path: path.to_path_buf(),
            source: e,
        })?
        .len();
    if size < cursor.offset {
        read.truncated = true;
        read.restarted_at = Some(read.bytes.len());
        cursor.offset = 0;
    }
    let want = (size - cursor.offset).min(*budget);
    let mut chunk = vec![0u8; want as usize];
    let mut filled = 0usize;
    while filled < chunk.len() {
        match file.read_at(&mut chunk[filled..], cursor.offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => {
                filled += n;
                progress.tick();
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(HostFileError::Io {
                    path: path.to_path_buf(),
                    source: e,
                })
            }
        }
    }
    chunk.truncate(filled);
    cursor.offset += filled as u64;
    *budget -= filled as u64;
    read.bytes.extend_from_slice(&chunk);
    read.lag = size.saturating_sub(cursor.offset);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::append;

    fn read(tail: &mut FileTail) -> (String, TailRead) {
        let read = tail.read_new().unwrap();
        (String::from_utf8(read.bytes.clone()).unwrap(), read)
    }

    #[test]
    fn follows_appends_rotation_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        append(&log, "old line\n");
        let mut tail = FileTail::new(&log, TailStart::End, 1 << 20);
        assert_eq!(read(&mut tail).0, "");
        append(&log, "one\ntwo\n");
        assert_eq!(read(&mut tail).0, "one\ntwo\n");
        assert_eq!(read(&mut tail).0, "");

        // logrotate: the old file moves away after one more line; a new one takes its name.
        append(&log, "three\n");
        std::fs::rename(&log, dir.path().join("app.log.1")).unwrap();
        append(&log, "four\n");
        let (text, info) = read(&mut tail);
        assert_eq!(text, "three\nfour\n");
        assert!(info.rotated);
        assert_eq!(info.restarted_at, Some("three\n".len()));

        // copytruncate: the file is emptied in place (and written again, less than was read:
        // refilled past the old offset between two reads, no size-based tail can tell).
        std::fs::write(&log, "").unwrap();
        append(&log, "5\n");
        let (text, info) = read(&mut tail);
        assert_eq!(text, "5\n");
        assert!(info.truncated);
        assert_eq!(info.restarted_at, Some(0));
    }

    #[test]
    fn reads_are_bounded_and_a_cursor_resumes_the_same_file_only() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("big.log");
        append(&log, &"x".repeat(10_000));
        let mut tail = FileTail::new(&log, TailStart::LastBytes(u64::MAX), 4096);
        let (text, info) = read(&mut tail);
        assert_eq!(text.len(), 4096);
        assert_eq!(info.lag, 10_000 - 4096);
        let cursor = tail.cursor().unwrap();
        let mut resumed = FileTail::new(&log, TailStart::Resume(cursor, 0), 1 << 20);
        assert_eq!(read(&mut resumed).0.len(), 10_000 - 4096);
        let other = TailCursor {
            ino: cursor.ino + 1,
            ..cursor
        };
        let mut fresh = FileTail::new(&log, TailStart::Resume(other, 100), 1 << 20);
        assert_eq!(read(&mut fresh).0.len(), 100);
    }

    #[test]
    fn a_fifo_is_refused_not_opened() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo.log");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let err = FileTail::new(&fifo, TailStart::End, 1024)
            .read_new()
            .unwrap_err();
        assert!(err.to_string().contains("FIFO"), "{err}");
    }
}
