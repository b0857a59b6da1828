//! The files of a sosreport, from a directory or straight out of its tarball, read as
//! untrusted input.
//!
//! A sosreport is made on the sick node and handed around (support cases, tickets): anyone on
//! the way can have changed it. So:
//!
//! - **Paths stay inside the report.** Every path is resolved component by component within
//!   the report's root, as `openat2(RESOLVE_IN_ROOT)` would: `..` stops at the root and a
//!   symbolic link, relative or absolute, is followed *inside* the report (sos itself rewrites
//!   the links it copies, e.g. `run/openvswitch/ovs-vswitchd.pid -> ../../tmp/…/ovs-vswitchd.pid`,
//!   and `etc/mtab -> ../proc/self/mounts`). No file outside the report is ever opened.
//! - **Regular files only, bounded.** A FIFO, device or socket in a report directory is refused
//!   unopened (see [`nodedoc_model::hostfile`]), the last component is opened `O_NOFOLLOW`, each
//!   file has a size limit (logs are read from their end), and a read that stalls (a report on a
//!   network mount that stops answering) is abandoned.
//! - **Tarballs are never extracted.** The archive (`.tar.xz` as sos 4.0 writes it, `.tar.gz`,
//!   or plain `.tar`) is streamed once; the few files nodedoc reads ([`wanted`]) are kept in
//!   memory, within a total budget, and every symbolic link is kept as its target text to be
//!   resolved the same confined way. Entries with absolute or `..` paths are skipped and
//!   counted; the total unpacked size is bounded, so a decompression bomb ends in an error.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nodedoc_model::hostfile::{self, FileKind, HostFileError};

use crate::SosError;

/// Size limits for reading a report.
#[derive(Clone, Debug)]
pub struct Limits {
    /// The largest file read whole (`lsof` of 100,000 netlink sockets is about 10 MiB).
    pub max_file_bytes: u64,
    /// How much of the end of a log is read (ovs-vswitchd.log), as the live collector does.
    pub log_tail_bytes: u64,
    /// Everything kept in memory from a tarball, in all.
    pub max_kept_bytes: u64,
    /// Everything unpacked from a tarball, read or skipped: a decompression bomb stops here.
    pub max_unpacked_bytes: u64,
    /// A read that makes no progress for this long is abandoned.
    pub stall: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_bytes: 512 << 20,
            log_tail_bytes: nodedoc_ovs::log::DEFAULT_TAIL_BYTES,
            max_kept_bytes: 2 << 30,
            max_unpacked_bytes: 64 << 30,
            stall: hostfile::DEFAULT_STALL_DEADLINE,
        }
    }
}

/// How much of a file is wanted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Keep {
    /// Not read.
    Skip,
    /// All of it, up to [`Limits::max_file_bytes`].
    Whole,
    /// Its last [`Limits::log_tail_bytes`].
    Tail,
}

/// The files nodedoc reads from a report, by path relative to its root. A tarball is read
/// once, so this list decides what is kept; a directory is read on demand with the same paths.
pub(crate) fn wanted(rel: &str) -> Keep {
    let base = rel.rsplit('/').next().unwrap_or(rel);
    if base == "ovs-vswitchd.log" {
        return Keep::Tail;
    }
    // sos copies a pidfile link and its target, which may be anywhere (OVS_RUNDIR).
    if base == "ovs-vswitchd.pid" {
        return Keep::Whole;
    }
    let whole = |yes: bool| if yes { Keep::Whole } else { Keep::Skip };
    match rel {
        "version.txt"
        | "sos_reports/manifest.json"
        | "proc/stat"
        | "proc/net/netlink"
        | "proc/1/mountinfo"
        | "proc/mounts"
        | "proc/uptime" => return Keep::Whole,
        _ => {}
    }
    let parts: Vec<&str> = rel.split('/').collect();
    match parts.as_slice() {
        ["sos_commands", "process", name] => {
            whole(name.starts_with("lsof_") || name.starts_with("ps_"))
        }
        ["sos_commands", "kernel", name] => whole(matches!(*name, "dmesg" | "uname_-a")),
        ["sos_commands", "host", name] => whole(matches!(*name, "hostname" | "uptime")),
        ["sos_commands", "date", name] => whole(matches!(*name, "date" | "date_--utc")),
        ["sos_commands", "openvswitch", name] => {
            whole(name.starts_with("ovs-vsctl_") || name.starts_with("ovsdb-client_"))
        }
        ["sos_commands", "networking", name] => whole(
            matches!(*name, "ip_-d_address" | "ip_-s_-d_link" | "ip_netns")
                || (name.starts_with("ip_netns_exec_") && name.ends_with("_ip_address_show")),
        ),
        // `proc/net` is a link to `self/net`, `proc/self` to sos's own pid.
        ["proc", pid, "net", "netlink"] => whole(pid.bytes().all(|b| b.is_ascii_digit())),
        ["proc", pid, file] => whole(
            pid.bytes().all(|b| b.is_ascii_digit())
                && matches!(*file, "limits" | "status" | "stack"),
        ),
        ["run" | "var", ..] => whole(rel.contains("openvswitch/") && base.ends_with(".pid")),
        ["sys", "fs", "cgroup", ..] => whole(matches!(base, "freezer.state" | "cgroup.freeze")),
        _ => Keep::Skip,
    }
}

/// Why one file of a report was not read: becomes a gap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FileError {
    /// The path inside the report.
    pub path: String,
    /// Why.
    pub reason: String,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.reason)
    }
}

/// A node of a tarball, as kept.
#[derive(Clone, Debug)]
enum Node {
    Dir,
    File(Vec<u8>),
    /// Kept from its end: the bytes and the whole size.
    Tail(Vec<u8>, u64),
    /// Over the size limit: its size.
    TooLarge(u64),
    /// Present but not kept (not [`wanted`]).
    Skipped,
    /// Not a regular file, directory or link (a FIFO or device entry): what it is.
    Special(&'static str),
    Symlink(String),
    /// A hard link: the path (inside the report) of the file it names.
    HardLink(String),
}

/// The files of one sosreport.
pub(crate) struct Bundle {
    /// What was opened, for messages.
    pub origin: PathBuf,
    source: Source,
    limits: Limits,
}

enum Source {
    Dir(PathBuf),
    Archive {
        nodes: BTreeMap<String, Node>,
        /// Entries skipped because their path was absolute or climbed out with `..`.
        unsafe_entries: u64,
        compression: &'static str,
    },
}

/// How a path resolved.
enum Resolved {
    Missing,
    /// The path, relative to the root, after every link was followed.
    Found(String),
}

/// Links followed in one lookup before giving up (the kernel's limit).
const MAX_LINK_HOPS: usize = 40;

impl Bundle {
    /// Opens a report directory, or reads a tarball's wanted files.
    pub fn open(path: &Path, limits: Limits) -> Result<Bundle, SosError> {
        let metadata = std::fs::metadata(path).map_err(|e| SosError::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        let source = if metadata.is_dir() {
            Source::Dir(path.to_path_buf())
        } else if metadata.is_file() {
            read_archive(path, &limits)?
        } else {
            return Err(SosError::NotASosreport {
                path: path.to_path_buf(),
                why: format!(
                    "it is {}: give a sosreport directory or tarball",
                    FileKind::of(metadata.file_type())
                ),
            });
        };
        Ok(Bundle {
            origin: path.to_path_buf(),
            source,
            limits,
        })
    }

    /// "the directory X" or "the tarball X (xz)", for source lines.
    pub fn describe(&self) -> String {
        match &self.source {
            Source::Dir(_) => format!("directory {}", self.origin.display()),
            Source::Archive { compression, .. } => {
                format!(
                    "{compression} tarball {} (read in memory, not extracted)",
                    self.origin.display()
                )
            }
        }
    }

    /// Archive entries skipped for unsafe paths.
    pub fn unsafe_entries(&self) -> u64 {
        match &self.source {
            Source::Dir(_) => 0,
            Source::Archive { unsafe_entries, .. } => *unsafe_entries,
        }
    }

    /// True when the path names something (file, directory or link that resolves).
    pub fn exists(&self, rel: &str) -> bool {
        matches!(self.resolve(rel), Ok(Resolved::Found(_)))
    }

    /// Where `rel` resolves inside the report, `None` when the report does not have it.
    fn locate(&self, rel: &str) -> Result<Option<String>, FileError> {
        match self.resolve(rel) {
            Ok(Resolved::Missing) => Ok(None),
            Ok(Resolved::Found(found)) => Ok(Some(found)),
            Err(reason) => Err(FileError {
                path: rel.to_string(),
                reason,
            }),
        }
    }

    /// Reads a file whole: `Ok(None)` when the report does not have it.
    pub fn read(&self, rel: &str) -> Result<Option<Vec<u8>>, FileError> {
        let error = |reason: String| FileError {
            path: rel.to_string(),
            reason,
        };
        let Some(found) = self.locate(rel)? else {
            return Ok(None);
        };
        match &self.source {
            Source::Dir(root) => {
                let path = root.join(&found);
                let max = self.limits.max_file_bytes;
                let owned = path.clone();
                hostfile::guarded(&path, self.limits.stall, move |progress| {
                    let (file, size) = open_nofollow(&owned)?;
                    hostfile::read_to_limit(&owned, file, size, max, progress)
                })
                .map(Some)
                .map_err(|e| error(host_reason(&e)))
            }
            Source::Archive { nodes, .. } => match nodes.get(&found) {
                Some(Node::File(bytes)) => Ok(Some(bytes.clone())),
                other => self.archive_refusal(rel, other).map(|_| None),
            },
        }
    }

    /// Reads the end of a file (a log): the bytes, its whole size and where they start.
    pub fn read_tail(&self, rel: &str) -> Result<Option<(Vec<u8>, u64)>, FileError> {
        let error = |reason: String| FileError {
            path: rel.to_string(),
            reason,
        };
        let Some(found) = self.locate(rel)? else {
            return Ok(None);
        };
        match &self.source {
            Source::Dir(root) => {
                let path = root.join(&found);
                let max = self.limits.log_tail_bytes;
                let owned = path.clone();
                hostfile::guarded(&path, self.limits.stall, move |progress| {
                    let (mut file, size) = open_nofollow(&owned)?;
                    let start = size.saturating_sub(max);
                    file.seek(SeekFrom::Start(start))
                        .map_err(|e| io_error(&owned, e))?;
                    let bytes = hostfile::read_to_limit(&owned, file, size - start, max, progress)?;
                    Ok((bytes, size))
                })
                .map(Some)
                .map_err(|e| error(host_reason(&e)))
            }
            Source::Archive { nodes, .. } => match nodes.get(&found) {
                Some(Node::Tail(bytes, size)) => Ok(Some((bytes.clone(), *size))),
                Some(Node::File(bytes)) => Ok(Some((bytes.clone(), bytes.len() as u64))),
                other => self.archive_refusal(rel, other).map(|_| None),
            },
        }
    }

    fn archive_refusal(&self, rel: &str, node: Option<&Node>) -> Result<(), FileError> {
        let reason = match node {
            None => return Ok(()),
            Some(Node::Dir) => "a directory, not a regular file: not read".to_string(),
            Some(Node::TooLarge(size)) => format!(
                "larger than {} ({size} bytes): not read",
                hostfile::format_bytes(self.limits.max_file_bytes)
            ),
            Some(Node::Special(kind)) => format!("{kind}, not a regular file: not read"),
            Some(Node::Skipped) => {
                "not kept from the tarball (nodedoc does not read it)".to_string()
            }
            Some(Node::Tail(..)) => "kept only in part (a log tail)".to_string(),
            Some(Node::File(_) | Node::Symlink(_) | Node::HardLink(_)) => {
                "an unresolved link".to_string()
            }
        };
        Err(FileError {
            path: rel.to_string(),
            reason,
        })
    }

    /// Reads a file as text (invalid UTF-8 replaced).
    pub fn read_text(&self, rel: &str) -> Result<Option<String>, FileError> {
        // Valid UTF-8 (nearly always) is taken as is, without a copy.
        Ok(self.read(rel)?.map(|bytes| {
            String::from_utf8(bytes)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
        }))
    }

    /// The names in a directory of the report, sorted (empty when it is missing).
    pub fn list(&self, rel: &str) -> Vec<String> {
        let Ok(Resolved::Found(found)) = self.resolve(rel) else {
            return Vec::new();
        };
        match &self.source {
            Source::Dir(root) => {
                let Ok(entries) = std::fs::read_dir(root.join(&found)) else {
                    return Vec::new();
                };
                let mut names: Vec<String> = entries
                    .filter_map(|e| e.ok())
                    .filter_map(|e| e.file_name().into_string().ok())
                    .collect();
                names.sort();
                names
            }
            Source::Archive { nodes, .. } => {
                let prefix = if found.is_empty() {
                    String::new()
                } else {
                    format!("{found}/")
                };
                let mut names: Vec<String> = nodes
                    .range(prefix.clone()..)
                    .take_while(|(k, _)| k.starts_with(&prefix))
                    .filter_map(|(k, _)| k[prefix.len()..].split('/').next())
                    .filter(|n| !n.is_empty())
                    .map(str::to_string)
                    .collect();
                names.dedup();
                names
            }
        }
    }

    /// Paths of kept files with this base name (tarballs only: a directory is not searched).
    pub fn kept_with_basename(&self, base: &str) -> Vec<String> {
        match &self.source {
            Source::Dir(_) => Vec::new(),
            Source::Archive { nodes, .. } => nodes
                .iter()
                .filter(|(k, n)| {
                    matches!(n, Node::File(_) | Node::Tail(..))
                        && k.rsplit('/').next() == Some(base)
                })
                .map(|(k, _)| k.clone())
                .collect(),
        }
    }

    /// Resolves `rel` inside the root, following links the way `RESOLVE_IN_ROOT` does.
    fn resolve(&self, rel: &str) -> Result<Resolved, String> {
        let mut pending: Vec<String> = components(rel).rev().collect();
        let mut current: Vec<String> = Vec::new();
        let mut hops = 0;
        while let Some(component) = pending.pop() {
            if component == ".." {
                current.pop();
                continue;
            }
            current.push(component);
            let here = current.join("/");
            match self.link_at(&here)? {
                Lookup::Missing => return Ok(Resolved::Missing),
                Lookup::Other => {}
                Lookup::Link(target) => {
                    hops += 1;
                    if hops > MAX_LINK_HOPS {
                        return Err(format!("more than {MAX_LINK_HOPS} symbolic links"));
                    }
                    current.pop();
                    if target.starts_with('/') {
                        // Absolute links point into the report's root, never the host's.
                        current.clear();
                    }
                    pending.extend(components(&target).rev());
                }
                Lookup::HardLink(target) => {
                    hops += 1;
                    if hops > MAX_LINK_HOPS {
                        return Err(format!("more than {MAX_LINK_HOPS} links"));
                    }
                    current.clear();
                    pending.extend(components(&target).rev());
                }
            }
        }
        Ok(Resolved::Found(current.join("/")))
    }

    fn link_at(&self, here: &str) -> Result<Lookup, String> {
        match &self.source {
            Source::Dir(root) => match std::fs::symlink_metadata(root.join(here)) {
                Ok(m) if m.file_type().is_symlink() => {
                    let target = std::fs::read_link(root.join(here)).map_err(|e| e.to_string())?;
                    Ok(Lookup::Link(target.to_string_lossy().into_owned()))
                }
                Ok(_) => Ok(Lookup::Other),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Lookup::Missing),
                Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => Ok(Lookup::Missing),
                Err(e) => Err(e.to_string()),
            },
            Source::Archive { nodes, .. } => match nodes.get(here) {
                Some(Node::Symlink(target)) => Ok(Lookup::Link(target.clone())),
                Some(Node::HardLink(target)) => Ok(Lookup::HardLink(target.clone())),
                Some(_) => Ok(Lookup::Other),
                // Directories are often implicit in tarballs: a prefix of a kept path exists.
                None => {
                    let prefix = format!("{here}/");
                    match nodes.range(prefix.clone()..).next() {
                        Some((k, _)) if k.starts_with(&prefix) => Ok(Lookup::Other),
                        _ => Ok(Lookup::Missing),
                    }
                }
            },
        }
    }
}

enum Lookup {
    Missing,
    Other,
    Link(String),
    HardLink(String),
}

/// The components of a path, without empty ones and `.`.
fn components(path: &str) -> impl DoubleEndedIterator<Item = String> + '_ {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::to_string)
}

fn io_error(path: &Path, source: io::Error) -> HostFileError {
    HostFileError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The reason of a host-file error without its path (the gap names the path).
fn host_reason(error: &HostFileError) -> String {
    let text = error.to_string();
    let path = error.path().display().to_string();
    text.strip_prefix(&path)
        .map(|rest| rest.trim_start_matches(':').trim_start().to_string())
        .unwrap_or(text)
}

/// Opens a resolved path whose last component is not followed if it is a link (resolution
/// already followed the links; one that appears since is refused), only if it is a regular file.
fn open_nofollow(path: &Path) -> Result<(File, u64), HostFileError> {
    let metadata = std::fs::symlink_metadata(path).map_err(|e| io_error(path, e))?;
    let kind = FileKind::of(metadata.file_type());
    if kind != FileKind::Regular {
        return Err(HostFileError::NotRegular {
            path: path.to_path_buf(),
            kind,
        });
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| io_error(path, e))?;
    let metadata = file.metadata().map_err(|e| io_error(path, e))?;
    let kind = FileKind::of(metadata.file_type());
    if kind != FileKind::Regular {
        return Err(HostFileError::NotRegular {
            path: path.to_path_buf(),
            kind,
        });
    }
    Ok((file, metadata.len()))
}

/// Streams a tarball once and keeps what [`wanted`] names.
fn read_archive(path: &Path, limits: &Limits) -> Result<Source, SosError> {
    let owned = path.to_path_buf();
    let limits_owned = limits.clone();
    let result = hostfile::guarded(path, limits.stall, move |progress| {
        let (file, _) = hostfile::open_regular(&owned)?;
        let mut reader = std::io::BufReader::new(progress.reader(file));
        Ok(stream_archive(&owned, &mut reader, &limits_owned))
    });
    match result {
        Ok(inner) => inner,
        Err(e) => Err(SosError::File(e)),
    }
}

/// The compression, from the first bytes.
fn sniff(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(&[0xFD, b'7', b'z', b'X', b'Z', 0]) {
        Some("xz")
    } else if head.starts_with(&[0x1F, 0x8B]) {
        Some("gzip")
    } else if head.len() > 262 && &head[257..262] == b"ustar" {
        Some("uncompressed")
    } else {
        None
    }
}

fn stream_archive<R: std::io::BufRead>(
    path: &Path,
    reader: &mut R,
    limits: &Limits,
) -> Result<Source, SosError> {
    let head = reader.fill_buf().map_err(|e| SosError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    let compression = sniff(head).ok_or_else(|| SosError::NotASosreport {
        path: path.to_path_buf(),
        why: "it is neither a directory nor a tar archive (plain, xz or gzip)".to_string(),
    })?;
    let decoder: Box<dyn Read + '_> = match compression {
        "xz" => Box::new(liblzma::read::XzDecoder::new_multi_decoder(reader)),
        "gzip" => Box::new(flate2::read::MultiGzDecoder::new(reader)),
        _ => Box::new(reader),
    };
    let archive_error = |e: io::Error| SosError::Archive {
        path: path.to_path_buf(),
        source: e,
    };
    let mut archive = tar::Archive::new(decoder);
    let mut nodes: BTreeMap<String, Node> = BTreeMap::new();
    let mut top: Option<String> = None;
    let mut unsafe_entries = 0u64;
    let mut kept = 0u64;
    let mut unpacked = 0u64;
    for entry in archive.entries().map_err(archive_error)? {
        let mut entry = entry.map_err(archive_error)?;
        let raw = entry.path_bytes().into_owned();
        let Ok(text) = String::from_utf8(raw) else {
            unsafe_entries += 1;
            continue;
        };
        if text.starts_with('/') || text.split('/').any(|c| c == "..") {
            unsafe_entries += 1;
            continue;
        }
        let mut parts = components(&text);
        let Some(first) = parts.next() else { continue };
        match &top {
            None => top = Some(first.clone()),
            Some(t) if *t != first => {
                return Err(SosError::NotASosreport {
                    path: path.to_path_buf(),
                    why: format!(
                        "the archive holds more than one top-level entry ({t:?}, {first:?}); a sosreport has one directory"
                    ),
                })
            }
            Some(_) => {}
        }
        let rel: Vec<String> = parts.collect();
        let rel = rel.join("/");
        let size = entry.size();
        unpacked = unpacked.saturating_add(size);
        if unpacked > limits.max_unpacked_bytes {
            return Err(SosError::TooLarge {
                path: path.to_path_buf(),
                what: format!(
                    "it unpacks to more than {}",
                    hostfile::format_bytes(limits.max_unpacked_bytes)
                ),
            });
        }
        if rel.is_empty() {
            continue;
        }
        let kind = entry.header().entry_type();
        let node = if kind.is_dir() {
            Node::Dir
        } else if kind.is_symlink() {
            match entry.link_name_bytes() {
                Some(target) => match String::from_utf8(target.into_owned()) {
                    Ok(target) => Node::Symlink(target),
                    Err(_) => {
                        unsafe_entries += 1;
                        continue;
                    }
                },
                None => continue,
            }
        } else if kind.is_hard_link() {
            let Some(target) = entry.link_name_bytes() else {
                continue;
            };
            let Ok(target) = String::from_utf8(target.into_owned()) else {
                unsafe_entries += 1;
                continue;
            };
            if target.starts_with('/') || target.split('/').any(|c| c == "..") {
                unsafe_entries += 1;
                continue;
            }
            // Hard-link names are archive paths: drop the top directory.
            let mut t = components(&target);
            t.next();
            Node::HardLink(t.collect::<Vec<_>>().join("/"))
        } else if kind.is_file()
            || kind == tar::EntryType::Continuous
            || kind == tar::EntryType::GNUSparse
        {
            match wanted(&rel) {
                Keep::Skip => Node::Skipped,
                Keep::Whole if size > limits.max_file_bytes => Node::TooLarge(size),
                Keep::Whole => {
                    let mut bytes = Vec::with_capacity(size as usize);
                    (&mut entry)
                        .take(limits.max_file_bytes + 1)
                        .read_to_end(&mut bytes)
                        .map_err(archive_error)?;
                    if bytes.len() as u64 > limits.max_file_bytes {
                        Node::TooLarge(bytes.len() as u64)
                    } else {
                        kept += bytes.len() as u64;
                        Node::File(bytes)
                    }
                }
                Keep::Tail => {
                    let skip = size.saturating_sub(limits.log_tail_bytes);
                    io::copy(&mut (&mut entry).take(skip), &mut io::sink())
                        .map_err(archive_error)?;
                    let mut bytes = Vec::new();
                    (&mut entry)
                        .take(limits.log_tail_bytes)
                        .read_to_end(&mut bytes)
                        .map_err(archive_error)?;
                    kept += bytes.len() as u64;
                    Node::Tail(bytes, size)
                }
            }
        } else {
            Node::Special(match kind {
                tar::EntryType::Fifo => "a FIFO",
                tar::EntryType::Char => "a character device",
                tar::EntryType::Block => "a block device",
                _ => "a special entry",
            })
        };
        if kept > limits.max_kept_bytes {
            return Err(SosError::TooLarge {
                path: path.to_path_buf(),
                what: format!(
                    "the files nodedoc reads from it exceed {}",
                    hostfile::format_bytes(limits.max_kept_bytes)
                ),
            });
        }
        nodes.insert(rel, node);
    }
    if top.is_none() {
        return Err(SosError::NotASosreport {
            path: path.to_path_buf(),
            why: "the archive is empty".to_string(),
        });
    }
    Ok(Source::Archive {
        nodes,
        unsafe_entries,
        compression,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_bundle(dir: &Path) -> Bundle {
        Bundle::open(dir, Limits::default()).unwrap()
    }

    #[test]
    fn links_resolve_inside_the_report_never_outside() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "host file").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("sos_commands/process")).unwrap();
        std::fs::create_dir_all(root.join("tmp/ovs")).unwrap();
        std::fs::create_dir_all(root.join("run/openvswitch")).unwrap();
        std::fs::write(root.join("sos_commands/process/ps_auxwww"), "USER PID").unwrap();
        std::fs::write(root.join("tmp/ovs/ovs-vswitchd.pid"), "812\n").unwrap();
        std::os::unix::fs::symlink("sos_commands/process/ps_auxwww", root.join("ps")).unwrap();
        // As sos rewrites it: relative, through the report's own tree.
        std::os::unix::fs::symlink(
            "../../tmp/ovs/ovs-vswitchd.pid",
            root.join("run/openvswitch/ovs-vswitchd.pid"),
        )
        .unwrap();
        // Planted: an absolute link and one that climbs out.
        std::os::unix::fs::symlink(outside.path().join("secret"), root.join("abs")).unwrap();
        let climb = format!(
            "../../../../../../..{}",
            outside.path().join("secret").display()
        );
        std::os::unix::fs::symlink(&climb, root.join("climb")).unwrap();
        std::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
        let bundle = dir_bundle(root);
        assert_eq!(bundle.read_text("ps").unwrap().unwrap(), "USER PID");
        assert_eq!(
            bundle
                .read_text("run/openvswitch/ovs-vswitchd.pid")
                .unwrap()
                .unwrap(),
            "812\n"
        );
        // Absolute and climbing links land inside the root, where there is no such file.
        assert_eq!(bundle.read("abs").unwrap(), None);
        assert_eq!(bundle.read("climb").unwrap(), None);
        assert_eq!(bundle.read("../../etc/passwd").unwrap(), None);
        assert!(bundle
            .read("loop")
            .unwrap_err()
            .reason
            .contains("symbolic links"));
        assert_eq!(bundle.list("sos_commands/process"), vec!["ps_auxwww"]);
    }

    #[test]
    fn fifos_in_a_report_directory_are_refused_unopened() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("uptime");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        let bundle = dir_bundle(dir.path());
        let err = bundle.read("uptime").unwrap_err();
        assert!(err.reason.contains("FIFO"), "{err}");
    }

    fn tarball(entries: &[(&str, &[u8])], links: &[(&str, &str)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            builder.append_data(&mut header, path, *data).unwrap();
        }
        for (path, target) in links {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            builder.append_link(&mut header, path, target).unwrap();
        }
        builder.into_inner().unwrap()
    }

    fn xz(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = liblzma::read::XzEncoder::new(bytes, 1);
        encoder.read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn tarballs_are_read_without_extracting_and_links_stay_inside() {
        let tar = tarball(
            &[
                ("sosreport-h-1/sos_commands/process/ps_auxwww", b"USER PID"),
                (
                    "sosreport-h-1/sos_commands/networking/ethtool_-S_eth0",
                    b"skipped",
                ),
                ("sosreport-h-1/tmp/x/ovs-vswitchd.log", b"line 1\nline 2\n"),
            ],
            &[
                ("sosreport-h-1/ps", "sos_commands/process/ps_auxwww"),
                ("sosreport-h-1/abs", "/sos_commands/process/ps_auxwww"),
                ("sosreport-h-1/out", "../../../etc/passwd"),
            ],
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sosreport-h-1.tar.xz");
        std::fs::write(&path, xz(&tar)).unwrap();
        let bundle = Bundle::open(&path, Limits::default()).unwrap();
        assert!(bundle.describe().starts_with("xz tarball"));
        assert_eq!(bundle.read_text("ps").unwrap().unwrap(), "USER PID");
        // An absolute link points at the report's own root.
        assert_eq!(bundle.read_text("abs").unwrap().unwrap(), "USER PID");
        assert_eq!(bundle.read("out").unwrap(), None);
        let err = bundle
            .read("sos_commands/networking/ethtool_-S_eth0")
            .unwrap_err();
        assert!(err.reason.contains("not kept"), "{err}");
        assert_eq!(
            bundle.kept_with_basename("ovs-vswitchd.log"),
            vec!["tmp/x/ovs-vswitchd.log"]
        );
        let (tail, size) = bundle.read_tail("tmp/x/ovs-vswitchd.log").unwrap().unwrap();
        assert_eq!((tail.as_slice(), size), (&b"line 1\nline 2\n"[..], 14));
        assert_eq!(bundle.list("sos_commands"), vec!["networking", "process"]);
    }

    #[test]
    fn unsafe_and_oversized_entries_and_bombs_are_refused() {
        let mut raw = tarball(&[("sosreport-h-1/proc/stat", b"btime 1\n")], &[]);
        // A `..` entry written by hand (tar::Builder refuses to).
        let mut evil = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.as_gnu_mut().unwrap().name[..30].copy_from_slice(b"sosreport-h-1/../../etc/cron.d");
        header.set_size(1);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        evil.append(&header, &b"x"[..]).unwrap();
        let evil = evil.into_inner().unwrap();
        raw.truncate(raw.len() - 1024); // drop the end-of-archive blocks
        raw.extend_from_slice(&evil);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.tar");
        std::fs::write(&path, &raw).unwrap();
        let bundle = Bundle::open(&path, Limits::default()).unwrap();
        assert_eq!(bundle.unsafe_entries(), 1);
        assert_eq!(bundle.read_text("proc/stat").unwrap().unwrap(), "btime 1\n");

        let limits = Limits {
            max_file_bytes: 4,
            ..Limits::default()
        };
        let bundle = Bundle::open(&path, limits).unwrap();
        assert!(bundle
            .read("proc/stat")
            .unwrap_err()
            .reason
            .contains("larger than"));

        let limits = Limits {
            max_unpacked_bytes: 4,
            ..Limits::default()
        };
        let err = Bundle::open(&path, limits).err().unwrap();
        assert!(err.to_string().contains("unpacks to more than"), "{err}");

        std::fs::write(&path, b"hello, not an archive at all").unwrap();
        let err = Bundle::open(&path, Limits::default()).err().unwrap();
        assert!(err.to_string().contains("not a sosreport"), "{err}");
    }
}
