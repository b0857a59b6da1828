//! ovs-vswitchd.log followed from round to round, across rotation and truncation.
//!
//! `check` reads the last 16 MiB of the log once. The agent reads the same tail when it
//! starts and from then on only what was appended: it keeps the file open and remembers its
//! identity (device and inode) and the offset it has read to. Each [`LogFollower::poll`]:
//!
//! - reads what was appended to the open file since the last poll (at most
//!   [`MAX_READ_PER_POLL`]; a log that grew more than that in between — a flood — is skipped to
//!   its last part, and the skip is counted);
//! - notices a **truncation** (`copytruncate`: the file is shorter than the offset) and starts
//!   over at its beginning;
//! - notices a **rotation** (the path now names another file: logrotate renamed the old one
//!   and ovs-vswitchd reopened its log) after draining the old file, and continues at the start
//!   of the new one.
//!
//! Files are opened as `check` opens them: only regular files, of a trusted owner when the log
//! was found through the daemon (see [`crate::vswitchd`]), and every read runs under
//! [`hostfile::guarded`], so a log on a filesystem that stops answering costs a stall
//! deadline, never a hung agent. Lines go into a [`LogBuilder`] with [`LogBounds::AGENT`]:
//! memory stays bounded however long the agent runs and whatever the log says.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nodedoc_model::hostfile::{self, HostFileError, Progress};
use nodedoc_model::OvsLog;

use crate::error::OvsError;
use crate::log::{read_tail, LogBounds, LogBuilder, LogReadOptions};

/// The most a poll reads; a log that grew more since the last poll is read from its last
/// `MAX_READ_PER_POLL` bytes (what `check` would read of it).
pub const MAX_READ_PER_POLL: u64 = crate::log::DEFAULT_TAIL_BYTES;

/// A line longer than this is not one of ovs-vswitchd's: it is dropped (and counted), so a
/// file without newlines cannot grow the follower's buffer.
pub const MAX_LINE_BYTES: usize = 64 << 10;

/// What following the log has met so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FollowCounts {
    /// Bytes read (the first tail included).
    pub bytes_read: u64,
    /// Times the path came to name a new file.
    pub rotations: u64,
    /// Times the file was found shorter than what had been read.
    pub truncations: u64,
    /// Bytes never read because the log grew faster than the polls.
    pub skipped_bytes: u64,
    /// Lines dropped for being longer than [`MAX_LINE_BYTES`].
    pub long_lines: u64,
}

/// The open file and how far it was read.
#[derive(Debug, Default)]
struct Cursor {
    file: Option<File>,
    /// `(device, inode)` of the file being read.
    identity: (u64, u64),
    offset: u64,
    /// The size of the file when last looked at.
    size: u64,
    /// The last bytes read (up to [`FINGERPRINT_BYTES`]), ending at `offset`: a file found
    /// holding other bytes there was truncated and written again (or is another file that
    /// got the same inode).
    fingerprint: Vec<u8>,
}

/// How many of the last bytes read identify the place reading stopped.
const FINGERPRINT_BYTES: usize = 32;

/// What one read brought, in order.
#[derive(Debug)]
enum Chunk {
    Bytes(Vec<u8>),
    /// The file was truncated: what follows starts at its beginning.
    Truncated,
    /// The path names a new file: what follows is its beginning.
    Rotated,
    /// This many bytes were left unread: what follows starts mid-line.
    Skipped(u64),
}

/// Follows one ovs-vswitchd.log; see the module documentation.
#[derive(Debug)]
pub struct LogFollower {
    path: PathBuf,
    found_by: String,
    options: LogReadOptions,
    cursor: Cursor,
    /// Where reading began in the file being read.
    read_from: u64,
    /// The bytes of a line whose newline has not been written yet.
    partial: Vec<u8>,
    /// Bytes up to the next newline belong to a line whose start was not read.
    skip_to_newline: bool,
    builder: LogBuilder,
    counts: FollowCounts,
}

impl LogFollower {
    /// Opens the log at `path` (found as `found_by` says), reads its tail as `check` does
    /// (`options.tail_bytes`) and stays at its end. `now_ms` stamps the lines read.
    pub fn start(
        path: &Path,
        found_by: &str,
        options: &LogReadOptions,
        now_ms: u64,
    ) -> Result<LogFollower, OvsError> {
        let owned = path.to_path_buf();
        let options_owned = options.clone();
        let tail = hostfile::guarded(path, options.stall_deadline, move |progress| {
            read_tail(&owned, &options_owned, progress)
        })
        .map_err(OvsError::Log)?;
        let (text_start, first_line) = tail.whole_lines();
        let mut follower = LogFollower {
            path: path.to_path_buf(),
            found_by: found_by.to_string(),
            options: options.clone(),
            cursor: Cursor {
                identity: (tail.metadata.dev(), tail.metadata.ino()),
                offset: tail.read_pos + tail.bytes.len() as u64,
                size: tail.size,
                fingerprint: fingerprint(&[], &tail.bytes),
                file: Some(tail.file),
            },
            read_from: tail.read_pos + text_start as u64,
            partial: Vec::new(),
            skip_to_newline: false,
            builder: LogBuilder::new(first_line, LogBounds::AGENT),
            counts: FollowCounts {
                bytes_read: tail.bytes.len() as u64,
                ..FollowCounts::default()
            },
        };
        follower.take_bytes(&tail.bytes[text_start..], now_ms);
        Ok(follower)
    }

    /// The path followed.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What following has met so far.
    pub fn counts(&self) -> FollowCounts {
        self.counts
    }

    /// Lines read so far.
    pub fn lines_read(&self) -> u64 {
        self.builder.lines_read()
    }

    /// The builder's interfaces forgotten (bounds, quiet).
    pub fn forgotten_interfaces(&self) -> u64 {
        self.builder.forgotten()
    }

    /// Reads what was written since the last poll (see the module documentation). Returns
    /// the number of events (lines that matter) it brought. On error the follower keeps
    /// its place and the next poll tries again (reopening the path if the file was lost).
    pub fn poll(&mut self, now_ms: u64) -> Result<usize, OvsError> {
        let cursor = std::mem::take(&mut self.cursor);
        let identity = cursor.identity;
        let offset = cursor.offset;
        let last_bytes = cursor.fingerprint.clone();
        let path = self.path.clone();
        let owners = self.options.owners.clone();
        let read = hostfile::guarded(&self.path, self.options.stall_deadline, move |progress| {
            read_more(&path, owners.as_ref(), cursor, progress)
        });
        let (cursor, chunks) = match read {
            Ok(read) => read,
            Err(e) => {
                // The file stays with the reader that stalled (or failed): the next poll
                // reopens the path and, if it is the same file, continues where it was.
                self.cursor = Cursor {
                    file: None,
                    identity,
                    offset,
                    size: offset,
                    fingerprint: last_bytes,
                };
                return Err(OvsError::Log(e));
            }
        };
        self.cursor = cursor;
        let mut events = 0;
        for chunk in chunks {
            match chunk {
                Chunk::Bytes(bytes) => {
                    self.counts.bytes_read += bytes.len() as u64;
                    events += self.take_bytes(&bytes, now_ms);
                }
                Chunk::Truncated | Chunk::Rotated => {
                    if matches!(chunk, Chunk::Truncated) {
                        self.counts.truncations += 1;
                    } else {
                        self.counts.rotations += 1;
                    }
                    // ovs-vswitchd ends every line with a newline: a partial line at the end
                    // of a file that is gone will not be completed.
                    self.partial.clear();
                    self.skip_to_newline = false;
                    self.builder.restart_numbering();
                    self.read_from = 0;
                }
                Chunk::Skipped(n) => {
                    self.counts.skipped_bytes += n;
                    self.partial.clear();
                    self.skip_to_newline = true;
                }
            }
        }
        Ok(events)
    }

    /// Feeds the whole lines of `bytes` (after what is pending) to the builder; keeps the
    /// unfinished last line. Returns the events found.
    fn take_bytes(&mut self, mut bytes: &[u8], now_ms: u64) -> usize {
        if self.skip_to_newline {
            match bytes.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    bytes = &bytes[i + 1..];
                    self.skip_to_newline = false;
                }
                None => return 0,
            }
        }
        let mut events = 0;
        let mut rest = bytes;
        while let Some(newline) = rest.iter().position(|&b| b == b'\n') {
            let piece = &rest[..newline];
            rest = &rest[newline + 1..];
            if self.partial.is_empty() {
                events += usize::from(self.push_line(piece, now_ms));
            } else {
                let mut line = std::mem::take(&mut self.partial);
                line.extend_from_slice(piece);
                events += usize::from(self.push_line(&line, now_ms));
            }
        }
        if self.partial.len() + rest.len() > MAX_LINE_BYTES {
            self.counts.long_lines += 1;
            self.partial.clear();
            self.skip_to_newline = true;
        } else {
            self.partial.extend_from_slice(rest);
        }
        events
    }

    fn push_line(&mut self, line: &[u8], now_ms: u64) -> bool {
        if line.len() > MAX_LINE_BYTES {
            self.counts.long_lines += 1;
            return false;
        }
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        self.builder.push(&String::from_utf8_lossy(line), now_ms)
    }

    /// Forgets interfaces with no line for `quiet_ms` (see [`LogBuilder::forget_quiet`]).
    pub fn forget_quiet(&mut self, now_ms: u64, quiet_ms: u64) -> usize {
        self.builder.forget_quiet(now_ms, quiet_ms)
    }

    /// The log as detectors read it.
    pub fn log(&self) -> OvsLog {
        let mut log = self.builder.to_log();
        log.path = self.path.display().to_string();
        log.found_by = self.found_by.clone();
        log.size = self.cursor.size;
        log.read_from = self.read_from;
        log
    }

    /// One line on how the log is followed, for the `ovs-log` source.
    pub fn detail(&self) -> String {
        let c = self.counts;
        let mut detail = format!(
            "{} ({}): followed, {} lines read since byte {} of the current file",
            self.path.display(),
            self.found_by,
            self.builder.lines_read(),
            self.read_from
        );
        for (n, what) in [
            (c.rotations, "rotations"),
            (c.truncations, "truncations"),
            (c.long_lines, "overlong lines dropped"),
        ] {
            if n > 0 {
                detail.push_str(&format!(", {n} {what}"));
            }
        }
        if c.skipped_bytes > 0 {
            detail.push_str(&format!(
                ", {} bytes skipped (written faster than read)",
                c.skipped_bytes
            ));
        }
        if self.builder.forgotten() > 0 {
            detail.push_str(&format!(
                ", {} interfaces forgotten (quiet, or beyond the bounds)",
                self.builder.forgotten()
            ));
        }
        detail
    }
}

/// Opens `path` if it is a regular file of a trusted owner.
fn open_trusted(
    path: &Path,
    owners: Option<&crate::vswitchd::TrustedOwners>,
) -> Result<(File, (u64, u64)), HostFileError> {
    let (file, meta) = hostfile::open_regular(path)?;
    if let Some(owners) = owners {
        hostfile::require_owner(path, &meta, owners.uids(), owners.words())?;
    }
    Ok((file, (meta.dev(), meta.ino())))
}

/// On [`hostfile::guarded`]'s thread: reads the rest of the open file, then, if the path
/// names another file now, that file from its start.
fn read_more(
    path: &Path,
    owners: Option<&crate::vswitchd::TrustedOwners>,
    mut cursor: Cursor,
    progress: &Progress,
) -> Result<(Cursor, Vec<Chunk>), HostFileError> {
    let mut chunks = Vec::new();
    if cursor.file.is_none() {
        let (file, identity) = open_trusted(path, owners)?;
        if identity != cursor.identity {
            chunks.push(Chunk::Rotated);
            cursor.offset = 0;
        }
        cursor.file = Some(file);
        cursor.identity = identity;
    }
    read_to_end(path, &mut cursor, &mut chunks, progress)?;
    progress.tick();
    // Between logrotate's rename and ovs-vswitchd's reopen the path may name nothing: the
    // old file is still the one written to.
    if let Ok(meta) = std::fs::metadata(path) {
        if (meta.dev(), meta.ino()) != cursor.identity {
            let (file, identity) = open_trusted(path, owners)?;
            cursor = Cursor {
                file: Some(file),
                identity,
                ..Cursor::default()
            };
            chunks.push(Chunk::Rotated);
            read_to_end(path, &mut cursor, &mut chunks, progress)?;
        }
    }
    Ok((cursor, chunks))
}

/// Reads from the cursor's offset to the end of its file (the last [`MAX_READ_PER_POLL`]
/// bytes of it at most).
fn read_to_end(
    path: &Path,
    cursor: &mut Cursor,
    chunks: &mut Vec<Chunk>,
    progress: &Progress,
) -> Result<(), HostFileError> {
    let io = |source| HostFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = cursor.file.as_mut().expect("an open file");
    let size = file.metadata().map_err(io)?.len();
    cursor.size = size;
    let rewritten = size >= cursor.offset && !cursor.fingerprint.is_empty() && {
        let mut found = vec![0u8; cursor.fingerprint.len()];
        let at = cursor.offset - found.len() as u64;
        std::os::unix::fs::FileExt::read_exact_at(&*file, &mut found, at).map_err(io)?;
        found != cursor.fingerprint
    };
    if size < cursor.offset || rewritten {
        chunks.push(Chunk::Truncated);
        cursor.offset = 0;
        cursor.fingerprint.clear();
    }
    let unread = size - cursor.offset;
    if unread > MAX_READ_PER_POLL {
        let skip = unread - MAX_READ_PER_POLL;
        chunks.push(Chunk::Skipped(skip));
        cursor.offset += skip;
    }
    if size == cursor.offset {
        return Ok(());
    }
    file.seek(SeekFrom::Start(cursor.offset)).map_err(io)?;
    let mut bytes = Vec::with_capacity((size - cursor.offset) as usize);
    // What was there when looked at: lines written meanwhile wait for the next poll.
    progress
        .reader(&mut *file)
        .take(size - cursor.offset)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    cursor.offset += bytes.len() as u64;
    cursor.fingerprint = fingerprint(&cursor.fingerprint, &bytes);
    chunks.push(Chunk::Bytes(bytes));
    Ok(())
}

/// The last [`FINGERPRINT_BYTES`] of `before` followed by `bytes`.
fn fingerprint(before: &[u8], bytes: &[u8]) -> Vec<u8> {
    let mut joined: Vec<u8> = before.iter().chain(bytes).copied().collect();
    let excess = joined.len().saturating_sub(FINGERPRINT_BYTES);
    joined.drain(..excess);
    joined
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    // The files here are not called ovs-vswitchd.log: a follower keeps its file open, and
    // `vswitchd::find_log`'s test looks for such a file among this process's descriptors.

    fn line(seq: u32, what: &str) -> String {
        format!(
            "2021-04-15T12:36:29.{:03}Z|{seq:05}|bridge|INFO|bridge br-int: {what}\n",
            seq % 1000
        )
    }

    fn append(path: &Path, text: &str) {
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .unwrap();
        file.write_all(text.as_bytes()).unwrap();
    }

    #[test]
    fn appended_lines_rotation_and_truncation_are_followed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("switch.log");
        append(&path, &line(1, "added interface a on port 1"));
        let options = LogReadOptions::tail(crate::log::DEFAULT_TAIL_BYTES);
        let mut follower = LogFollower::start(&path, "--ovs-log", &options, 0).unwrap();
        assert_eq!(follower.log().count("interface-added"), 1);
        assert_eq!(follower.poll(0).unwrap(), 0);

        // Appended, the second line without its newline yet.
        append(&path, &line(2, "deleted interface a on port 1"));
        let unfinished = line(3, "added interface a on port 2");
        append(&path, &unfinished[..20]);
        assert_eq!(follower.poll(0).unwrap(), 1);
        append(&path, &unfinished[20..]);
        assert_eq!(follower.poll(0).unwrap(), 1);
        let log = follower.log();
        assert_eq!(log.interface_count("a", "interface-added"), 2);
        assert_eq!(log.interface_count("a", "interface-deleted"), 1);
        assert_eq!(log.events.last().unwrap().line, 3);

        // Rotated: renamed, a new file at the path; the old one had one more line first.
        append(&path, &line(4, "deleted interface a on port 2"));
        std::fs::rename(&path, dir.path().join("switch.log.1")).unwrap();
        append(&path, &line(5, "added interface b on port 3"));
        assert_eq!(follower.poll(0).unwrap(), 2);
        let log = follower.log();
        assert_eq!(log.interface_count("a", "interface-deleted"), 2);
        assert_eq!(log.interface_count("b", "interface-added"), 1);
        // Line numbers start again in the new file.
        assert_eq!(log.events.last().unwrap().line, 1);
        assert_eq!(log.read_from, 0);
        assert_eq!(follower.counts().rotations, 1);

        // Truncated (copytruncate), then written again past where reading had stopped.
        std::fs::write(&path, line(6, "deleted interface b on port 3")).unwrap();
        assert_eq!(follower.poll(0).unwrap(), 1);
        assert_eq!(follower.counts().truncations, 1);
        assert_eq!(follower.log().interface_count("b", "interface-deleted"), 1);
        assert!(
            follower.detail().contains("1 rotations, 1 truncations"),
            "{}",
            follower.detail()
        );
    }

    #[test]
    fn a_flood_is_skipped_to_its_end_and_overlong_lines_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("switch.log");
        std::fs::write(&path, "").unwrap();
        let options = LogReadOptions::tail(1 << 20);
        let mut follower = LogFollower::start(&path, "--ovs-log", &options, 0).unwrap();
        // More than a poll reads: the start is skipped, the rest still parses from a whole line.
        let filler = "x".repeat(1000) + "\n";
        let mut text = String::new();
        while text.len() as u64 <= MAX_READ_PER_POLL {
            text.push_str(&filler);
        }
        append(&path, &text);
        append(&path, &line(1, "added interface c on port 1"));
        assert_eq!(follower.poll(0).unwrap(), 1);
        assert!(follower.counts().skipped_bytes > 0);
        // A "line" that never ends cannot grow the buffer.
        append(&path, &"y".repeat(MAX_LINE_BYTES + 10));
        follower.poll(0).unwrap();
        append(
            &path,
            &format!("tail of it\n{}", line(2, "deleted interface c on port 1")),
        );
        assert_eq!(follower.poll(0).unwrap(), 1);
        assert_eq!(follower.counts().long_lines, 1);
        assert!(follower.partial.is_empty());
    }

    #[test]
    fn a_replacement_by_a_fifo_or_another_owner_is_refused_and_retried() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("switch.log");
        append(&path, &line(1, "added interface a on port 1"));
        // SAFETY: getuid cannot fail.
        let me = unsafe { libc::getuid() };
        let mut options = LogReadOptions::tail(1 << 20);
        options.owners = Some(crate::vswitchd::TrustedOwners::root().and(me, "the daemon's"));
        let mut follower = LogFollower::start(&path, "test", &options, 0).unwrap();
        std::fs::remove_file(&path).unwrap();
        let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: a valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o666) }, 0);
        let err = follower.poll(0).unwrap_err().to_string();
        assert!(
            err.contains("is a FIFO (named pipe), not a regular file"),
            "{err}"
        );
        // A regular file again: followed from its start.
        std::fs::remove_file(&path).unwrap();
        append(&path, &line(2, "deleted interface a on port 1"));
        assert_eq!(follower.poll(0).unwrap(), 1);
        if me == 0 {
            std::fs::remove_file(&path).unwrap();
            append(&path, &line(3, "added interface a on port 2"));
            std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
            let err = follower.poll(0).unwrap_err().to_string();
            assert!(err.contains("owned by uid 65534"), "{err}");
        }
    }

    #[test]
    fn quiet_interfaces_are_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("switch.log");
        append(&path, &line(1, "added interface old on port 1"));
        let options = LogReadOptions::tail(1 << 20);
        let mut follower = LogFollower::start(&path, "--ovs-log", &options, 1_000).unwrap();
        append(&path, &line(2, "added interface new on port 2"));
        follower.poll(600_000).unwrap();
        assert_eq!(follower.forget_quiet(700_000, 300_000), 1);
        let log = follower.log();
        assert_eq!(log.interface_count("old", "interface-added"), 0);
        assert_eq!(log.count("interface-added"), 1);
    }
}
