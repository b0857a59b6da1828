//! Finding the ovs-vswitchd that serves a database, its upcall threads and its log file.
//!
//! # Which process is trusted
//! A process name is anyone's to choose: any user can run a process called `ovs-vswitchd`
//! whose command line names the database, holding open a FIFO called `ovs-vswitchd.log`.
//! nodedoc (root) would then take that process's word for where the log is. So a candidate
//! is used only when the kernel's own records say it is the daemon:
//!
//! - it runs as a [`TrustedOwners`] uid: root, or the owner of the directory the database
//!   socket is in, when no one else can write that directory (distributions that run OVS as
//!   `openvswitch` give it `/run/openvswitch`) — real, effective and saved uid alike, so a
//!   set-uid program started by a user does not pass;
//! - its executable (`/proc/PID/exe`) is called `ovs-vswitchd…` and is a regular file owned
//!   by root that neither group nor others can write: a file only root could have installed.
//!   Both checks are needed: a user can run the real `/usr/sbin/ovs-vswitchd` (it fails the
//!   first), and root-owned processes of other programs carry other executables.
//!
//! A pidfile only says which pid to vet: it is read only when it is a regular file owned by
//! a trusted uid, and the pid it names passes the same checks. A candidate that fails is not
//! used — its files are never opened — and the collection says why.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nodedoc_model::hostfile::{self, HostFileError};
use nodedoc_model::{Process, VswitchdProcess};

/// The process name (`/proc/PID/comm`).
pub const VSWITCHD_COMM: &str = "ovs-vswitchd";

/// Where packaged OVS keeps its pidfiles.
const PACKAGED_RUNDIRS: &[&str] = &["/run/openvswitch", "/var/run/openvswitch"];

/// A pidfile holds one number; anything longer is not one.
const PIDFILE_MAX_BYTES: u64 = 64;

fn comm_of(pid: i32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|c| c.trim_end().to_string())
}

fn start_time_of(pid: i32) -> Option<u64> {
    let stat = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    let close = stat.iter().rposition(|&b| b == b')')?;
    std::str::from_utf8(&stat[close + 1..])
        .ok()?
        .split_ascii_whitespace()
        .nth(19)?
        .parse()
        .ok()
}

/// The uids an OVS daemon and its files may belong to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedOwners {
    uids: Vec<u32>,
    words: String,
}

impl TrustedOwners {
    /// Root alone.
    pub fn root() -> TrustedOwners {
        TrustedOwners {
            uids: vec![0],
            words: "root".into(),
        }
    }

    /// Root, and the owner of `rundir` (the database socket's directory) when it is a
    /// directory that neither group nor others can write: whoever owns it runs OVS there.
    pub fn for_rundir(rundir: Option<&Path>) -> TrustedOwners {
        let mut owners = TrustedOwners::root();
        if let Some(dir) = rundir {
            if let Ok(meta) = std::fs::metadata(dir) {
                if meta.is_dir() && meta.uid() != 0 && meta.mode() & 0o022 == 0 {
                    owners = owners.and(meta.uid(), &format!("the owner of {}", dir.display()));
                }
            }
        }
        owners
    }

    /// These owners and `uid` (`why` says who it is).
    pub fn and(mut self, uid: u32, why: &str) -> TrustedOwners {
        if !self.uids.contains(&uid) {
            self.uids.push(uid);
            self.words = format!("{} or uid {uid} ({why})", self.words);
        }
        self
    }

    /// The uids.
    pub fn uids(&self) -> &[u32] {
        &self.uids
    }

    /// Who, in words: `root`, `root or uid 993 (the owner of /run/openvswitch)`.
    pub fn words(&self) -> &str {
        &self.words
    }
}

/// The ovs-vswitchd found, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// Its pid.
    pub pid: i32,
    /// How it was found: `pidfile PATH`, or `procfs (…)`.
    pub how: String,
    /// The uid it runs as (its log may belong to it).
    pub uid: u32,
}

/// A process that looked like ovs-vswitchd, or a pidfile, that was not trusted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ignored {
    /// What: `ovs-vswitchd candidate pid 123`, `ovs-vswitchd pidfile PATH`.
    pub subject: String,
    /// Why, e.g. `runs as uid 65534, not root`.
    pub reason: String,
}

impl std::fmt::Display for Ignored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ignored: {}", self.subject, self.reason)
    }
}

/// The `Uid:` line of `/proc/PID/status`: real, effective, saved, filesystem.
fn uids_of(pid: i32) -> Result<[u32; 4], String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .ok_or_else(|| format!("/proc/{pid}/status has no Uid line"))?;
    let mut uids = [0u32; 4];
    let mut fields = line.split_ascii_whitespace();
    for uid in &mut uids {
        *uid = fields
            .next()
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| format!("/proc/{pid}/status: bad Uid line {line:?}"))?;
    }
    Ok(uids)
}

/// Checks that `pid` is the daemon (see the module's documentation); its uid when it is,
/// else why not.
pub fn vet(pid: i32, owners: &TrustedOwners) -> Result<u32, String> {
    let [real, effective, saved, _fs] = uids_of(pid)?;
    if !owners.uids.contains(&real) {
        return Err(format!("runs as uid {real}, not {}", owners.words));
    }
    if effective != real || saved != real {
        return Err(format!(
            "runs as uid {real} with effective uid {effective} and saved uid {saved} (a set-uid program?)"
        ));
    }
    let exe_link = format!("/proc/{pid}/exe");
    let exe = std::fs::read_link(&exe_link).map_err(|e| format!("{exe_link}: {e}"))?;
    let exe_text = exe.to_string_lossy();
    // An upgraded package leaves the running daemon's executable deleted.
    let exe_path = exe_text.strip_suffix(" (deleted)").unwrap_or(&exe_text);
    let name = Path::new(exe_path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !name.starts_with(VSWITCHD_COMM) {
        return Err(format!("its executable is {exe_path}, not ovs-vswitchd"));
    }
    // Through /proc/PID/exe: the inode the process runs, even if the path now names another.
    let meta = std::fs::metadata(&exe_link).map_err(|e| format!("{exe_link}: {e}"))?;
    if !meta.is_file() || meta.uid() != 0 || meta.mode() & 0o022 != 0 {
        return Err(format!(
            "its executable {exe_path} is not a root-owned file that only root can write (owner uid {}, mode {:o})",
            meta.uid(),
            meta.mode() & 0o7777
        ));
    }
    Ok(real)
}

/// The pid in a pidfile, read only if it is a regular file owned by `owners`.
fn read_pidfile(
    path: &Path,
    owners: &TrustedOwners,
    deadline: Duration,
) -> Result<i32, HostFileError> {
    let owned = path.to_path_buf();
    let owners = owners.clone();
    let bytes = hostfile::guarded(path, deadline, move |progress| {
        let path = owned.as_path();
        let (file, meta) = hostfile::open_regular(path)?;
        hostfile::require_owner(path, &meta, &owners.uids, &owners.words)?;
        hostfile::read_to_limit(path, file, meta.len(), PIDFILE_MAX_BYTES, progress)
    })?;
    String::from_utf8_lossy(&bytes)
        .trim()
        .parse()
        .map_err(|_| HostFileError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::other("not a pid"),
        })
}

/// What [`find`] concluded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Search {
    /// The daemon, when one was found and trusted.
    pub found: Option<Found>,
    /// Candidates that were not trusted, with why.
    pub ignored: Vec<Ignored>,
}

/// Finds the ovs-vswitchd serving the database at `socket` (a unix socket path, when the
/// endpoint is one; `default_endpoint` when it is the packaged default).
///
/// In order: the pidfile beside the socket (ovs-vswitchd writes it in the same `OVS_RUNDIR`),
/// the packaged pidfiles (for the default endpoint), then the processes named
/// `ovs-vswitchd` whose command line names the socket — or, for the default endpoint, the one
/// running at all. With `--monitor`, two processes carry the name; the worker (the one with
/// threads) is the one wanted. Every candidate is [vetted](vet) first; `deadline` bounds
/// reading each pidfile.
pub fn find(
    socket: Option<&Path>,
    default_endpoint: bool,
    processes: &[Process],
    owners: &TrustedOwners,
    deadline: Duration,
) -> Search {
    let mut search = Search::default();
    let mut pidfiles: Vec<PathBuf> = Vec::new();
    if let Some(dir) = socket.and_then(Path::parent) {
        pidfiles.push(dir.join("ovs-vswitchd.pid"));
    }
    if default_endpoint {
        pidfiles.extend(
            PACKAGED_RUNDIRS
                .iter()
                .map(|d| Path::new(d).join("ovs-vswitchd.pid")),
        );
    }
    let ignore = |search: &mut Search, subject: String, reason: String| {
        if !search.ignored.iter().any(|i| i.subject == subject) {
            search.ignored.push(Ignored { subject, reason });
        }
    };
    let candidate = |pid: i32| format!("ovs-vswitchd candidate pid {pid}");
    for pidfile in pidfiles {
        let pid = match read_pidfile(&pidfile, owners, deadline) {
            Ok(pid) => pid,
            Err(HostFileError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                continue
            }
            // A pidfile that is no file, or not the daemon's owner's: nothing to vet, but say so.
            Err(e) => {
                let subject = format!("ovs-vswitchd pidfile {}", pidfile.display());
                ignore(&mut search, subject, e.to_string());
                continue;
            }
        };
        if comm_of(pid).as_deref() != Some(VSWITCHD_COMM) {
            continue;
        }
        match vet(pid, owners) {
            Ok(uid) => {
                search.found = Some(Found {
                    pid,
                    how: format!("pidfile {}", pidfile.display()),
                    uid,
                });
                return search;
            }
            Err(reason) => ignore(&mut search, candidate(pid), reason),
        }
    }
    let candidates: Vec<&Process> = processes
        .iter()
        .filter(|p| p.comm == VSWITCHD_COMM && !p.kernel_thread)
        .collect();
    let names_socket = |p: &&Process| {
        socket.is_some_and(|s| {
            let s = s.to_string_lossy();
            p.cmdline.iter().any(|arg| arg.contains(s.as_ref()))
        })
    };
    let mut matching: Vec<&Process> = candidates.iter().copied().filter(names_socket).collect();
    if matching.is_empty() && default_endpoint {
        // Packaged daemons name the default socket implicitly (no argument, or `unix:` of
        // the default path, which the check above already matched).
        matching = candidates
            .iter()
            .copied()
            .filter(|p| !p.cmdline.iter().any(|a| a.starts_with("unix:")))
            .collect();
    }
    let mut trusted: Vec<(&Process, u32)> = Vec::new();
    for process in matching {
        match vet(process.pid, owners) {
            Ok(uid) => trusted.push((process, uid)),
            Err(reason) => ignore(&mut search, candidate(process.pid), reason),
        }
    }
    search.found = trusted
        .into_iter()
        .max_by_key(|(p, _)| p.threads)
        .map(|(p, uid)| Found {
            pid: p.pid,
            how: "procfs (name, command line, owner and executable)".to_string(),
            uid,
        });
    search
}

/// Reads ovs-vswitchd's threads: handlers and revalidators by name.
pub fn describe(pid: i32, found_by: String) -> Option<VswitchdProcess> {
    let start_time_ticks = start_time_of(pid)?;
    let mut process = VswitchdProcess {
        pid,
        start_time_ticks,
        found_by,
        ..VswitchdProcess::default()
    };
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            process.threads += 1;
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            let comm = comm.trim_end();
            // ovs-vswitchd names them handlerN and revalidatorN (N a global thread counter).
            if comm.starts_with("handler") {
                process.handler_threads += 1;
            } else if comm.starts_with("revalidator") {
                process.revalidator_threads += 1;
            }
        }
    }
    Some(process)
}

/// Finds ovs-vswitchd's log: the first of its open files that is a `.log` (read with
/// `readlink`, never opened through /proc, lowest fd first — the log is opened at startup),
/// else the `--log-file=PATH` argument. Returns the path and how it was found. Only call it
/// for a [vetted](vet) daemon, and open the path with [`crate::log::read_log`], which reads
/// only a regular file owned by the daemon's owner or root.
pub fn find_log(pid: i32, cmdline: &[String]) -> Option<(PathBuf, String)> {
    if let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
        let mut fds: Vec<u32> = entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect();
        fds.sort_unstable();
        for fd in fds {
            let Ok(target) = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")) else {
                continue;
            };
            let name = target.to_string_lossy();
            if name.starts_with('/') && name.ends_with(".log") && name.contains("vswitchd") {
                return Some((target, format!("open by ovs-vswitchd (fd {fd})")));
            }
        }
    }
    for arg in cmdline {
        if let Some(path) = arg.strip_prefix("--log-file=") {
            return Some((PathBuf::from(path), "ovs-vswitchd --log-file".to_string()));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_not_ovs_vswitchd() {
        let me = std::process::id() as i32;
        let described = describe(me, "test".into()).unwrap();
        assert!(described.threads >= 1);
        assert_eq!(described.handler_threads, 0);
        let search = find(
            Some(Path::new("/nonexistent/db.sock")),
            false,
            &[],
            &TrustedOwners::root(),
            Duration::from_secs(10),
        );
        assert_eq!(search, Search::default());
        assert_eq!(
            find_log(me, &["--log-file=/x/ovs-vswitchd.log".into()])
                .unwrap()
                .0,
            PathBuf::from("/x/ovs-vswitchd.log")
        );
    }

    #[test]
    fn a_test_binary_is_not_ovs_vswitchd_even_as_root() {
        let me = std::process::id() as i32;
        let reason = vet(me, &TrustedOwners::root().and(my_uid(), "this test")).unwrap_err();
        assert!(reason.starts_with("its executable is "), "{reason}");
        assert!(reason.ends_with(", not ovs-vswitchd"), "{reason}");
    }

    #[test]
    fn owners_read_as_words() {
        let owners = TrustedOwners::root().and(993, "the owner of /run/openvswitch");
        assert_eq!(owners.uids(), &[0, 993]);
        assert_eq!(
            owners.words(),
            "root or uid 993 (the owner of /run/openvswitch)"
        );
        assert_eq!(owners.clone().and(0, "again"), owners);
        // A directory others can write names no extra owner; /tmp is root's anyway.
        assert_eq!(
            TrustedOwners::for_rundir(Some(Path::new("/tmp"))),
            TrustedOwners::root()
        );
    }

    #[test]
    fn pidfiles_must_be_regular_files_of_a_trusted_owner() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("ovs-vswitchd.pid");
        std::fs::write(&pidfile, "4242\n").unwrap();
        let deadline = Duration::from_secs(10);
        let mine = TrustedOwners::root().and(my_uid(), "this test");
        assert_eq!(read_pidfile(&pidfile, &mine, deadline).unwrap(), 4242);
        let nobody = TrustedOwners {
            uids: vec![65534],
            words: "nobody".into(),
        };
        let err = read_pidfile(&pidfile, &nobody, deadline).unwrap_err();
        assert!(matches!(err, HostFileError::Owner { .. }), "{err}");
        std::fs::remove_file(&pidfile).unwrap();
        let c = std::ffi::CString::new(pidfile.to_str().unwrap()).unwrap();
        // SAFETY: a valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o666) }, 0);
        let err = read_pidfile(&pidfile, &mine, deadline).unwrap_err();
        assert!(matches!(err, HostFileError::NotRegular { .. }), "{err}");
    }

    fn my_uid() -> u32 {
        // SAFETY: getuid cannot fail.
        unsafe { libc::getuid() }
    }
}
