//! Parsers for the text the kernel writes under `/proc`. Pure functions over bytes: no I/O,
//! so they are tested on hostile input and on recorded real files. None of them panics.

use nodedoc_model::{
    CgroupMembership, Limit, MountEntry, NetlinkProtocol, ResourceLimit, StackFrame,
};

/// The fields nodedoc uses from `/proc/PID/stat`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stat {
    /// Field 1.
    pub pid: i32,
    /// Field 2, without the parentheses. May contain spaces, `)` and newlines.
    pub comm: String,
    /// Field 3.
    pub state: char,
    /// Field 4.
    pub ppid: i32,
    /// Field 9: `PF_*` flags.
    pub flags: u32,
    /// Field 14.
    pub utime: u64,
    /// Field 15.
    pub stime: u64,
    /// Field 20.
    pub num_threads: u32,
    /// Field 22: start time in clock ticks after boot.
    pub start_time: u64,
}

/// `PF_KTHREAD` from `<linux/sched.h>`.
pub const PF_KTHREAD: u32 = 0x0020_0000;

/// Parses `/proc/PID/stat`.
///
/// The comm field is delimited by the first `(` and the *last* `)`: a process can name itself
/// `a) R 1 (` and only the last parenthesis is trustworthy.
pub fn parse_stat(bytes: &[u8]) -> Result<Stat, String> {
    let open = bytes
        .iter()
        .position(|&b| b == b'(')
        .ok_or("no '(' before the comm field")?;
    let close = bytes
        .iter()
        .rposition(|&b| b == b')')
        .ok_or("no ')' after the comm field")?;
    if close < open {
        return Err("')' comes before '('".into());
    }
    let pid = std::str::from_utf8(&bytes[..open])
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or("the pid field is not a number")?;
    let comm = String::from_utf8_lossy(&bytes[open + 1..close]).into_owned();
    let rest =
        std::str::from_utf8(&bytes[close + 1..]).map_err(|_| "fields after comm are not UTF-8")?;
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    let field = |i: usize, name: &str| -> Result<&str, String> {
        fields
            .get(i)
            .copied()
            .ok_or_else(|| format!("stat ends before the {name} field"))
    };
    fn number<T: std::str::FromStr>(text: &str, name: &str) -> Result<T, String> {
        text.parse()
            .map_err(|_| format!("the {name} field {text:?} is not a number"))
    }
    let state_text = field(0, "state")?;
    let mut state_chars = state_text.chars();
    let state = match (state_chars.next(), state_chars.next()) {
        (Some(c), None) => c,
        _ => return Err(format!("the state field {state_text:?} is not one letter")),
    };
    Ok(Stat {
        pid,
        comm,
        state,
        ppid: number(field(1, "ppid")?, "ppid")?,
        flags: number(field(6, "flags")?, "flags")?,
        utime: number(field(11, "utime")?, "utime")?,
        stime: number(field(12, "stime")?, "stime")?,
        num_threads: number(field(17, "num_threads")?, "num_threads")?,
        start_time: number(field(19, "starttime")?, "starttime")?,
    })
}

/// The fields nodedoc uses from `/proc/PID/status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// Real uid (`Uid:\treal\teffective\tsaved\tfs`).
    pub uid: u32,
    /// `NSpid:`: the pid in each nested pid namespace, outermost first (empty on kernels
    /// before 4.1, which lack the line).
    pub nspid: Vec<i32>,
    /// SIGKILL is in `SigPnd` or `ShdPnd`.
    pub sigkill_pending: bool,
    /// `voluntary_ctxt_switches` + `nonvoluntary_ctxt_switches`, when both lines are there.
    pub context_switches: Option<u64>,
}

/// Bit of SIGKILL (signal 9) in the pending-signal masks.
const SIGKILL_BIT: u64 = 1 << (9 - 1);

/// Parses `/proc/PID/status`.
pub fn parse_status(text: &str) -> Result<Status, (usize, String)> {
    let mut uid = None;
    let mut nspid = Vec::new();
    let mut sigkill_pending = false;
    let (mut voluntary, mut involuntary) = (None, None);
    for (i, line) in text.lines().enumerate() {
        if let Some(mask) = line
            .strip_prefix("SigPnd:")
            .or_else(|| line.strip_prefix("ShdPnd:"))
        {
            let mask = u64::from_str_radix(mask.trim(), 16)
                .map_err(|_| (i + 1, format!("bad pending-signal mask {line:?}")))?;
            sigkill_pending |= mask & SIGKILL_BIT != 0;
            continue;
        }
        if let Some(rest) = line.strip_prefix("Uid:") {
            uid = Some(
                rest.split_ascii_whitespace()
                    .next()
                    .and_then(|u| u.parse().ok())
                    .ok_or_else(|| (i + 1, format!("bad Uid line {line:?}")))?,
            );
        } else if let Some(rest) = line.strip_prefix("voluntary_ctxt_switches:") {
            voluntary = Some(switches(rest).ok_or_else(|| (i + 1, format!("bad line {line:?}")))?);
        } else if let Some(rest) = line.strip_prefix("nonvoluntary_ctxt_switches:") {
            involuntary =
                Some(switches(rest).ok_or_else(|| (i + 1, format!("bad line {line:?}")))?);
        } else if let Some(rest) = line.strip_prefix("NSpid:") {
            nspid = rest
                .split_ascii_whitespace()
                .map(|p| {
                    p.parse()
                        .map_err(|_| (i + 1, format!("bad NSpid line {line:?}")))
                })
                .collect::<Result<_, _>>()?;
        }
    }
    let uid = uid.ok_or((0, "no Uid line".to_string()))?;
    Ok(Status {
        uid,
        nspid,
        sigkill_pending,
        context_switches: voluntary
            .zip(involuntary)
            .map(|(v, n): (u64, u64)| v.saturating_add(n)),
    })
}

fn switches(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// The variables of a NUL-separated `/proc/PID/environ` whose names start with one of
/// `prefixes`. Everything else is dropped as it is parsed: nodedoc never keeps a process's
/// other variables (they hold secrets).
pub fn parse_environ_selected(
    bytes: &[u8],
    prefixes: &[&str],
) -> std::collections::BTreeMap<String, String> {
    let mut selected = std::collections::BTreeMap::new();
    if prefixes.is_empty() {
        return selected;
    }
    for entry in bytes.split(|&b| b == 0) {
        if !prefixes.iter().any(|p| entry.starts_with(p.as_bytes())) {
            continue;
        }
        let Some(eq) = entry.iter().position(|&b| b == b'=') else {
            continue;
        };
        selected.insert(
            String::from_utf8_lossy(&entry[..eq]).into_owned(),
            String::from_utf8_lossy(&entry[eq + 1..]).into_owned(),
        );
    }
    selected
}

/// `/proc/PID/syscall`: `None` for `running`; the number (−1 when blocked outside a system
/// call) and the six arguments otherwise.
pub fn parse_syscall(text: &str) -> Result<Option<(i64, Vec<u64>)>, String> {
    let text = text.trim();
    if text == "running" {
        return Ok(None);
    }
    let mut words = text.split_ascii_whitespace();
    let number: i64 = words
        .next()
        .ok_or("empty")?
        .parse()
        .map_err(|_| format!("the syscall number in {text:?} is not a number"))?;
    let args = if number < 0 {
        Vec::new()
    } else {
        words
            .take(6)
            .map(|w| {
                u64::from_str_radix(w.trim_start_matches("0x"), 16)
                    .map_err(|_| format!("argument {w:?} is not hexadecimal"))
            })
            .collect::<Result<_, _>>()?
    };
    Ok(Some((number, args)))
}

/// Parses `/proc/PID/mountinfo` (`36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3
/// /dev/root rw,errors=continue`); returns the lines that parse, with `mount_namespace` and
/// `seen_via_pid` left 0 for the caller, and the numbers of the lines that do not.
pub fn parse_mountinfo(text: &str) -> (Vec<MountEntry>, Vec<usize>) {
    let mut mounts = Vec::new();
    let mut bad = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match parse_mountinfo_line(line) {
            Some(m) => mounts.push(m),
            None => bad.push(i + 1),
        }
    }
    (mounts, bad)
}

fn parse_mountinfo_line(line: &str) -> Option<MountEntry> {
    let (before, after) = line.split_once(" - ")?;
    let mut fields = before.split(' ');
    let mount_id = fields.next()?.parse().ok()?;
    let _parent = fields.next()?;
    let (major, minor) = fields.next()?.split_once(':')?;
    let root = unescape_octal(fields.next()?);
    let mount_point = unescape_octal(fields.next()?);
    let mut tail = after.split(' ');
    let fs_type = unescape_octal(tail.next()?);
    let source = unescape_octal(tail.next().unwrap_or(""));
    Some(MountEntry {
        mount_namespace: 0,
        seen_via_pid: 0,
        mount_id,
        major: major.parse().ok()?,
        minor: minor.parse().ok()?,
        root,
        mount_point,
        fs_type,
        source,
    })
}

/// Undoes the kernel's `\040`-style escaping of spaces, tabs, newlines and backslashes.
fn unescape_octal(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b));
        if bytes[i] == b'\\' && octal {
            let digit = |k: usize| u32::from(bytes[i + k] - b'0');
            let value = digit(1) * 64 + digit(2) * 8 + digit(3);
            if let Ok(byte) = u8::try_from(value) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `Max open files` from `/proc/PID/limits`.
pub fn parse_limits_nofile(text: &str) -> Result<ResourceLimit, (usize, String)> {
    for (i, line) in text.lines().enumerate() {
        if let Some(rest) = line.strip_prefix("Max open files") {
            let mut words = rest.split_ascii_whitespace();
            let mut limit = |which: &str| -> Result<Limit, (usize, String)> {
                match words.next() {
                    Some("unlimited") => Ok(Limit::Unlimited),
                    Some(w) => w
                        .parse()
                        .map(Limit::Finite)
                        .map_err(|_| (i + 1, format!("{which} limit {w:?} is not a number"))),
                    None => Err((i + 1, format!("no {which} limit"))),
                }
            };
            let soft = limit("soft")?;
            let hard = limit("hard")?;
            return Ok(ResourceLimit { soft, hard });
        }
    }
    Err((0, "no 'Max open files' line".to_string()))
}

/// `/proc/PID/cgroup`: one `hierarchy-id:controllers:path` per line. Lines that do not fit
/// are skipped and their numbers returned, so the caller can report them.
pub fn parse_cgroup(text: &str) -> (Vec<CgroupMembership>, Vec<usize>) {
    let mut memberships = Vec::new();
    let mut bad = Vec::new();
    // Split on '\n' only: `lines()` would also drop a '\r' that ends a cgroup's name (the
    // kernel prints the path unescaped), and then the cgroup would not be found.
    for (i, line) in text.split('\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let mut parts = line.splitn(3, ':');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(id), Some(controllers), Some(path)) => match id.parse() {
                Ok(hierarchy) => memberships.push(CgroupMembership {
                    hierarchy,
                    controllers: controllers.to_string(),
                    path: path.to_string(),
                }),
                Err(_) => bad.push(i + 1),
            },
            _ => bad.push(i + 1),
        }
    }
    (memberships, bad)
}

/// `/proc/PID/stack`: lines like `[<0>] do_wait+0x1d7/0x250` (addresses are hidden from
/// non-root as `<0>`), `[<ffffffffc08766ce>] __ceph_do_pending_vmtruncate+0x4e/0x260 [ceph]`.
/// The terminating `0xffffffffffffffff` frame of older kernels is dropped.
pub fn parse_stack(text: &str) -> Vec<StackFrame> {
    text.lines().filter_map(parse_stack_line).collect()
}

/// One line of a kernel stack; `None` for lines that hold no function.
pub fn parse_stack_line(line: &str) -> Option<StackFrame> {
    let mut rest = line.trim();
    // Skip the `[<address>]` prefix when present.
    if rest.starts_with("[<") {
        let end = rest.find(">]")?;
        rest = rest[end + 2..].trim_start();
    }
    let mut words = rest.split_ascii_whitespace();
    let symbol = words.next()?;
    if symbol.starts_with("0x") {
        return None;
    }
    let module = words
        .next()
        .and_then(|m| m.strip_prefix('[').and_then(|m| m.strip_suffix(']')))
        .map(str::to_string);
    let (function, offset) = match symbol.split_once('+') {
        Some((f, o)) => (f, Some(o.to_string())),
        None => (symbol, None),
    };
    if function.is_empty() {
        return None;
    }
    Some(StackFrame {
        function: function.to_string(),
        offset,
        module,
    })
}

/// A namespace link target such as `net:[4026531840]`: its type and inode.
pub fn parse_namespace_link(target: &[u8]) -> Option<(&str, u64)> {
    let text = std::str::from_utf8(target).ok()?;
    let (kind, rest) = text.split_once(":[")?;
    let inode = rest.strip_suffix(']')?.parse().ok()?;
    if kind.is_empty() || !kind.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
        return None;
    }
    Some((kind, inode))
}

/// What the link target of `/proc/PID/fd/N` says an fd is, before any further lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FdTarget<'a> {
    /// `socket:[inode]`.
    Socket {
        /// The socket inode.
        inode: u64,
    },
    /// `pipe:[inode]`.
    Pipe,
    /// `anon_inode:[eventfd]`, `anon_inode:bpf-map`, …
    AnonInode {
        /// The name without brackets.
        name: &'a str,
    },
    /// `net:[inode]` and other namespace files.
    Namespace {
        /// `net`, `mnt`, …
        namespace: &'a str,
        /// The namespace inode.
        inode: u64,
    },
    /// `/memfd:name (deleted)`.
    Memfd,
    /// A path in the filesystem: its type needs a `statx`.
    Path,
    /// Anything else.
    Other,
}

/// Classifies a `/proc/PID/fd/N` link target.
pub fn classify_fd_target(target: &[u8]) -> FdTarget<'_> {
    if let Some(rest) = target.strip_prefix(b"socket:[") {
        return match parse_bracketed_inode(rest) {
            Some(inode) => FdTarget::Socket { inode },
            None => FdTarget::Other,
        };
    }
    if target.starts_with(b"pipe:[") {
        return FdTarget::Pipe;
    }
    if let Some(rest) = target.strip_prefix(b"anon_inode:") {
        let name = std::str::from_utf8(rest).unwrap_or("?");
        let name = name
            .strip_prefix('[')
            .and_then(|n| n.strip_suffix(']'))
            .unwrap_or(name);
        return FdTarget::AnonInode { name };
    }
    if target.starts_with(b"/memfd:") {
        return FdTarget::Memfd;
    }
    if target.starts_with(b"/") {
        return FdTarget::Path;
    }
    if let Some((namespace, inode)) = parse_namespace_link(target) {
        return FdTarget::Namespace { namespace, inode };
    }
    FdTarget::Other
}

fn parse_bracketed_inode(rest: &[u8]) -> Option<u64> {
    let digits = rest.strip_suffix(b"]")?;
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    let mut n: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(n)
}

/// `/proc/PID/net/netlink`: `(socket inode, protocol)` for every row.
///
/// Columns: `sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode`; `Eth` is the protocol.
pub fn parse_proc_net_netlink(text: &str) -> Vec<(u64, NetlinkProtocol)> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_ascii_whitespace().collect();
            let protocol = fields.get(1)?.parse().ok()?;
            let inode = fields.get(9)?.parse().ok()?;
            Some((inode, NetlinkProtocol(protocol)))
        })
        .collect()
}

/// The socket inodes of a `/proc/PID/net/{tcp,tcp6,udp,udp6,unix,packet}` table.
///
/// `inode_column` is the 0-based column holding the inode: 9 for tcp/udp, 6 for unix, 8 for
/// packet.
pub fn parse_proc_net_inodes(text: &str, inode_column: usize) -> Vec<u64> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            line.split_ascii_whitespace()
                .nth(inode_column)?
                .parse()
                .ok()
        })
        .collect()
}

/// The arguments of `/proc/PID/cmdline` (NUL-separated; invalid UTF-8 replaced).
pub fn parse_cmdline(bytes: &[u8]) -> Vec<String> {
    let bytes = bytes.strip_suffix(b"\0").unwrap_or(bytes);
    if bytes.is_empty() {
        return Vec::new();
    }
    bytes
        .split(|&b| b == 0)
        .map(|arg| String::from_utf8_lossy(arg).into_owned())
        .collect()
}

/// `/proc/PID/wchan`: the function name, or `None` for `0` (running, or not sleeping).
pub fn parse_wchan(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    if text.is_empty() || text == "0" {
        None
    } else {
        Some(text.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REAL_STAT: &[u8] = b"4113 (python3) S 3900 4113 3900 0 -1 4194304 2512 0 0 0 12 31 0 0 20 0 1 0 75012 31899648 4166 18446744073709551615 1 1 0 0 0 0 0 16781312 2 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n";

    #[test]
    fn reads_a_real_stat_line() {
        let stat = parse_stat(REAL_STAT).unwrap();
        assert_eq!(stat.pid, 4113);
        assert_eq!(stat.comm, "python3");
        assert_eq!(stat.state, 'S');
        assert_eq!(stat.ppid, 3900);
        assert_eq!(stat.flags, 4194304);
        assert_eq!((stat.utime, stat.stime), (12, 31));
        assert_eq!(stat.num_threads, 1);
        assert_eq!(stat.start_time, 75012);
    }

    #[test]
    fn a_comm_with_parens_spaces_and_newlines_does_not_shift_fields() {
        let line = b"77 (evil) R 1 (\nx) D 1 2 3 4 -1 4194560 0 0 0 0 5 6 0 0 20 0 3 0 999 0 0\n";
        let stat = parse_stat(line).unwrap();
        assert_eq!(stat.comm, "evil) R 1 (\nx");
        assert_eq!(stat.state, 'D');
        assert_eq!(stat.ppid, 1);
        assert_eq!(stat.num_threads, 3);
        assert_eq!(stat.start_time, 999);
    }

    #[test]
    fn every_truncation_of_stat_is_an_error_not_a_panic() {
        for cut in 0..REAL_STAT.len() - 1 {
            let result = parse_stat(&REAL_STAT[..cut]);
            // Cutting inside trailing fields nodedoc does not use still parses.
            if cut < 60 {
                assert!(result.is_err(), "cut at {cut} parsed");
            }
        }
        assert!(parse_stat(b"").is_err());
        assert!(parse_stat(b")(").is_err());
        assert!(parse_stat(b"x (a) S 1 2 3").is_err());
        assert!(parse_stat(b"1 (a) SS 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19").is_err());
        assert!(parse_stat("1 (\u{fffd}\u{0}) S 99999999999999999999999 1".as_bytes()).is_err());
    }

    #[test]
    fn limits_and_status() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \nMax cpu time              unlimited            unlimited            seconds   \nMax open files            102400               102400               files     \n";
        let nofile = parse_limits_nofile(limits).unwrap();
        assert_eq!(nofile.soft, Limit::Finite(102400));
        assert_eq!(nofile.hard, Limit::Finite(102400));
        assert!(parse_limits_nofile("Max open files  lots\n").is_err());
        assert!(parse_limits_nofile("Max open files  10\n").is_err());
        assert!(parse_limits_nofile("").is_err());
        let unlimited = parse_limits_nofile("Max open files unlimited unlimited files").unwrap();
        assert_eq!(unlimited.soft, Limit::Unlimited);
        let status =
            parse_status("Name:\tx\nUid:\t1000\t1000\t1000\t1000\nNSpid:\t7788\t1\n").unwrap();
        assert_eq!(status.uid, 1000);
        assert_eq!(status.nspid, vec![7788, 1]);
        assert!(!status.sigkill_pending);
        let killed =
            parse_status("SigPnd:\t0000000000000000\nShdPnd:\t0000000000000100\nUid:\t0\n")
                .unwrap();
        assert!(killed.sigkill_pending);
        assert!(parse_status("SigPnd:\tzz\nUid:\t0\n").is_err());
        assert_eq!(parse_status("Uid:\tx\n").unwrap_err().0, 1);
        assert_eq!(parse_status("Uid:\t0\nNSpid:\t1 x\n").unwrap_err().0, 2);
        assert_eq!(status.context_switches, None);
        let switched =
            parse_status("Uid:\t0\nvoluntary_ctxt_switches:\t12\nnonvoluntary_ctxt_switches:\t3\n")
                .unwrap();
        assert_eq!(switched.context_switches, Some(15));
        assert!(parse_status("Uid:\t0\nvoluntary_ctxt_switches:\t-\n").is_err());
    }

    #[test]
    fn cgroup_lines_both_versions_and_garbage() {
        let (cgroups, bad) = parse_cgroup(
            "12:freezer:/nodedoc-lab-1\n1:name=systemd:/\n0::/user.slice\ngarbage\nx:y:z\n",
        );
        assert_eq!(cgroups.len(), 3);
        assert_eq!(cgroups[0].controllers, "freezer");
        assert_eq!(cgroups[0].path, "/nodedoc-lab-1");
        assert_eq!(cgroups[2].hierarchy, 0);
        assert_eq!(bad, vec![4, 5]);
        // Regression (found by the property test): a name ending in '\r' keeps it.
        let (cgroups, bad) = parse_cgroup("4:freezer:/frozen\r\n");
        assert_eq!(cgroups[0].path, "/frozen\r");
        assert!(bad.is_empty());
    }

    #[test]
    fn stacks_from_the_seed_and_from_this_kernel() {
        let seed = "[<ffffffffa0ae9918>] call_rwsem_down_read_failed+0x18/0x30\n[<ffffffffa0235da2>] iterate_supers+0xa2/0x110\n[<ffffffffa0269ba4>] sys_sync+0x44/0xb0\n[<ffffffffc08766ce>] __ceph_do_pending_vmtruncate+0x4e/0x260 [ceph]\n[<ffffffffffffffff>] 0xffffffffffffffff\n";
        let frames = parse_stack(seed);
        assert_eq!(frames.len(), 4);
        assert_eq!(frames[1].function, "iterate_supers");
        assert_eq!(frames[1].offset.as_deref(), Some("0xa2/0x110"));
        assert_eq!(frames[3].module.as_deref(), Some("ceph"));
        let modern = parse_stack("[<0>] do_wait+0x5d/0x100\n[<0>] kernel_wait4+0xa9/0x150\n");
        assert_eq!(modern[0].function, "do_wait");
        assert!(parse_stack("[<0\n[<>]\n\n  \n+0x1\n").is_empty());
    }

    #[test]
    fn fd_targets() {
        assert_eq!(
            classify_fd_target(b"socket:[123456]"),
            FdTarget::Socket { inode: 123456 }
        );
        assert_eq!(classify_fd_target(b"socket:[12x]"), FdTarget::Other);
        assert_eq!(
            classify_fd_target(b"socket:[99999999999999999999999]"),
            FdTarget::Other
        );
        assert_eq!(classify_fd_target(b"pipe:[7]"), FdTarget::Pipe);
        assert_eq!(
            classify_fd_target(b"anon_inode:[eventfd]"),
            FdTarget::AnonInode { name: "eventfd" }
        );
        assert_eq!(
            classify_fd_target(b"anon_inode:bpf-map"),
            FdTarget::AnonInode { name: "bpf-map" }
        );
        assert_eq!(
            classify_fd_target(b"net:[4026531840]"),
            FdTarget::Namespace {
                namespace: "net",
                inode: 4026531840
            }
        );
        assert_eq!(classify_fd_target(b"/memfd:x (deleted)"), FdTarget::Memfd);
        assert_eq!(classify_fd_target(b"/dev/null"), FdTarget::Path);
        assert_eq!(classify_fd_target(b""), FdTarget::Other);
        assert_eq!(classify_fd_target(b"Net:[1]"), FdTarget::Other);
    }

    #[test]
    fn proc_net_tables() {
        let netlink = "sk               Eth Pid        Groups   Rmem     Wmem     Dump  Locks    Drops    Inode\n\
                       ffff9b1e0a0c8000 0   1          00000000 0        0        0     2        0        15\n\
                       ffff9b1e0a0c9800 16  4113       00000000 0        0        0     2        0        98123\n\
                       truncated line\n";
        assert_eq!(
            parse_proc_net_netlink(netlink),
            vec![
                (15, NetlinkProtocol::ROUTE),
                (98123, NetlinkProtocol::GENERIC)
            ]
        );
        let unix = "Num       RefCount Protocol Flags    Type St Inode Path\n0000000000000000: 00000002 00000000 00010000 0001 01 20187 /run/x.sock\n";
        assert_eq!(parse_proc_net_inodes(unix, 6), vec![20187]);
    }

    #[test]
    fn environ_keeps_only_the_asked_prefixes() {
        let environ = b"PATH=/bin\0CNI_COMMAND=VERSION\0AWS_SECRET_ACCESS_KEY=hunter2\0CNI_CONTAINERID=abc\0CNI_BROKEN\0\0";
        let env = parse_environ_selected(environ, &["CNI_"]);
        assert_eq!(env.len(), 2);
        assert_eq!(env["CNI_COMMAND"], "VERSION");
        assert_eq!(env["CNI_CONTAINERID"], "abc");
        assert!(parse_environ_selected(environ, &[]).is_empty());
    }

    #[test]
    fn syscall_lines() {
        assert_eq!(parse_syscall("running\n").unwrap(), None);
        let (nr, args) =
            parse_syscall("0 0x0 0x7ffc 0x1000 0x0 0x0 0x0 0x7ffc13b1c748 0x7fa6792c8503\n")
                .unwrap()
                .unwrap();
        assert_eq!(nr, 0);
        assert_eq!(args, vec![0, 0x7ffc, 0x1000, 0, 0, 0]);
        assert_eq!(
            parse_syscall("-1 0x7ffc 0x7fa6\n").unwrap(),
            Some((-1, vec![]))
        );
        assert!(parse_syscall("x 0x1").is_err());
        assert!(parse_syscall("1 0xzz").is_err());
    }

    #[test]
    fn mountinfo_lines_with_escapes_and_optional_fields() {
        let text = "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n\
                    612 29 0:4 net:[4026532181] /run/netns/ndlab\\040x rw shared:5 - nsfs nsfs rw\n\
                    700 29 0:63 / /tmp/fuse rw,nosuid,nodev - fuse.nodedoc-lab nodedoc-lab rw,user_id=0\n\
                    garbage\n";
        let (mounts, bad) = parse_mountinfo(text);
        assert_eq!(bad, vec![4]);
        assert_eq!(mounts.len(), 3);
        assert_eq!(mounts[1].root, "net:[4026532181]");
        assert_eq!(mounts[1].mount_point, "/run/netns/ndlab x");
        assert_eq!(mounts[1].fs_type, "nsfs");
        assert_eq!((mounts[2].major, mounts[2].minor), (0, 63));
        assert_eq!(mounts[2].fs_type, "fuse.nodedoc-lab");
    }

    #[test]
    fn cmdline_and_wchan() {
        assert_eq!(
            parse_cmdline(b"ovs-vswitchd\0unix:/run/db.sock\0"),
            vec!["ovs-vswitchd", "unix:/run/db.sock"]
        );
        assert!(parse_cmdline(b"").is_empty());
        assert_eq!(parse_cmdline(b"a\xff\0"), vec!["a\u{fffd}"]);
        assert_eq!(parse_wchan(b"0"), None);
        assert_eq!(parse_wchan(b"do_wait"), Some("do_wait".into()));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A small deterministic generator: no extra dependency for this one property.
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let alphabet = b"()[]<>:+ \n\t0123456789abcdefxDSRZsocket_pipeanon/\xff\0";
        for _ in 0..20_000 {
            let len = (next() % 80) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            let text = String::from_utf8_lossy(&bytes);
            let _ = parse_stat(&bytes);
            let _ = parse_status(&text);
            let _ = parse_environ_selected(&bytes, &["CNI_"]);
            let _ = parse_syscall(&text);
            let _ = parse_mountinfo(&text);
            let _ = parse_limits_nofile(&text);
            let _ = parse_cgroup(&text);
            let _ = parse_stack(&text);
            let _ = classify_fd_target(&bytes);
            let _ = parse_proc_net_netlink(&text);
            let _ = parse_cmdline(&bytes);
        }
    }
}
