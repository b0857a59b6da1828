//! The kernel's network devices in every network namespace.
//!
//! An OVS interface whose device is gone from *every* namespace is orphaned; one whose device
//! was moved into a router namespace (neutron's `qr-`, `ha-`, `qg-` ports) is fine, although
//! ovs-vswitchd reports `ifindex 0` for both. So every namespace is read: those of running
//! processes (from their `net:[INODE]`) and those named under `/run/netns` (`ip netns`),
//! which may have no process in them at all.
//!
//! Each namespace is entered with `setns(2)` on a dedicated thread (setns changes the calling
//! thread only, and that thread ends afterwards, so no other thread ever runs in a foreign
//! namespace), and its links are dumped with one `RTM_GETLINK` request over `NETLINK_ROUTE`.
//! The dump is a small, fixed message exchange; it is written out here (with bounds-checked
//! parsing tested on hostile input) rather than pulling in a general netlink stack for one
//! request.

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nodedoc_model::{NetDevice, NetNamespace, NetworkNamespaces};

/// Where `ip netns add NAME` bind-mounts named namespaces.
pub const NETNS_RUN_DIR: &str = "/run/netns";

/// A namespace to read: its inode and ways in.
#[derive(Debug, Clone, Default)]
struct Target {
    names: Vec<String>,
    /// Paths that open the namespace, best first (named bind mounts, then processes').
    paths: Vec<PathBuf>,
}

/// Reads the devices of every namespace: those of `processes` (`(pid, net inode)` pairs) and
/// those named under `run_netns` (normally [`NETNS_RUN_DIR`]).
pub fn collect(processes: &[(i32, u64)], run_netns: &Path) -> NetworkNamespaces {
    let own = inode_of(Path::new("/proc/self/ns/net"));
    // The host's namespace is pid 1's; where pid 1 cannot be inspected (a sandbox), the one
    // nodedoc runs in stands for it.
    let initial = inode_of(Path::new("/proc/1/ns/net")).or(own);
    let mut targets: BTreeMap<u64, Target> = BTreeMap::new();
    if let Ok(entries) = std::fs::read_dir(run_netns) {
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            if let Some(inode) = inode_of(&path) {
                let target = targets.entry(inode).or_default();
                target
                    .names
                    .push(entry.file_name().to_string_lossy().into_owned());
                target.paths.push(path);
            }
        }
    }
    for &(pid, inode) in processes {
        let target = targets.entry(inode).or_default();
        // A few processes per namespace are enough: the first that still exists is used.
        if target.paths.len() < 4 {
            target
                .paths
                .push(PathBuf::from(format!("/proc/{pid}/ns/net")));
        }
    }
    if let Some(inode) = own {
        targets
            .entry(inode)
            .or_default()
            .paths
            .insert(0, PathBuf::from("/proc/self/ns/net"));
    }

    let mut result = NetworkNamespaces::default();
    let work: Vec<(u64, Target)> = targets.into_iter().collect();
    // One thread enters the namespaces one after another and ends: setns affects only it.
    let handle = std::thread::Builder::new()
        .name("nodedoc-netns".into())
        .spawn(move || {
            work.into_iter()
                .map(|(inode, target)| (inode, read_namespace(inode, own, &target), target))
                .collect::<Vec<_>>()
        });
    let outcomes = match handle.map(|h| h.join()) {
        Ok(Ok(outcomes)) => outcomes,
        Ok(Err(_)) => {
            result
                .unreadable
                .push("the namespace reader panicked".into());
            return result;
        }
        Err(e) => {
            result
                .unreadable
                .push(format!("cannot start the namespace reader thread: {e}"));
            return result;
        }
    };
    for (inode, outcome, target) in outcomes {
        match outcome {
            Ok((via, mut devices)) => {
                devices.sort_by_key(|d| d.ifindex);
                result.namespaces.push(NetNamespace {
                    inode,
                    names: target.names,
                    initial: Some(inode) == initial,
                    entered_via: via,
                    devices,
                });
            }
            Err(reason) => result.unreadable.push(format!("net:[{inode}]: {reason}")),
        }
    }
    // The host's namespace first, then named ones, then the rest, each by inode.
    result
        .namespaces
        .sort_by_key(|ns| (!ns.initial, ns.names.is_empty(), ns.inode));
    result
}

/// The network namespace of every process now, as `(pid, net inode)` pairs: what [`collect`]
/// needs when no process scan is at hand (the fix re-reads every namespace right before it
/// writes). A process that exits meanwhile is simply absent.
pub fn process_namespaces() -> Vec<(i32, u64)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pairs: Vec<(i32, u64)> = entries
        .flatten()
        .filter_map(|entry| {
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let inode = inode_of(&entry.path().join("ns/net"))?;
            Some((pid, inode))
        })
        .collect();
    pairs.sort_unstable();
    pairs
}

/// The network namespace nodedoc runs in (its inode).
pub fn own_namespace() -> Option<u64> {
    inode_of(Path::new("/proc/self/ns/net"))
}

/// The device called `name` in nodedoc's own network namespace, looked up by name
/// (`if_nametoindex`, one ioctl): the cheap check an agent makes for an interface an OVSDB
/// update just named, instead of reading every namespace again. Its kind and state are not
/// read (`kind` is `None`, `up` false).
pub fn device_here(name: &str) -> Option<NetDevice> {
    if name.is_empty() || name.len() >= 16 || name.contains(['/', '\0']) {
        return None;
    }
    let c_name = std::ffi::CString::new(name).ok()?;
    // SAFETY: a valid NUL-terminated string; if_nametoindex only reads it.
    let index = unsafe { libc::if_nametoindex(c_name.as_ptr()) };
    (index != 0).then(|| NetDevice {
        name: name.to_string(),
        ifindex: index,
        kind: None,
        up: false,
    })
}

/// What decides which namespaces [`collect`] reads: the namespaces of `processes` and the
/// names (with inodes) under `run_netns`. When it has not changed since the last reading, no
/// namespace came or went.
pub fn namespace_key(processes: &[(i32, u64)], run_netns: &Path) -> Vec<(u64, String)> {
    let mut key: Vec<(u64, String)> = processes
        .iter()
        .map(|(_, inode)| (*inode, String::new()))
        .collect();
    if let Ok(entries) = std::fs::read_dir(run_netns) {
        for entry in entries.flatten() {
            if let Some(inode) = inode_of(&entry.path()) {
                key.push((inode, entry.file_name().to_string_lossy().into_owned()));
            }
        }
    }
    key.sort_unstable();
    key.dedup();
    key
}

/// The inode of a namespace file (`stat` follows the magic link to the nsfs inode).
fn inode_of(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.ino())
}

fn read_namespace(
    inode: u64,
    own: Option<u64>,
    target: &Target,
) -> Result<(String, Vec<NetDevice>), String> {
    if Some(inode) == own {
        return dump_links()
            .map(|d| ("/proc/self/ns/net".to_string(), d))
            .map_err(|e| format!("RTM_GETLINK: {e}"));
    }
    let mut last_error = "no way in (no process or name)".to_string();
    for path in &target.paths {
        // O_NONBLOCK: a FIFO put where a namespace was expected must not block the open (a
        // namespace file is no FIFO, and the inode check below then refuses it).
        let file = match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(path)
        {
            Ok(file) => file,
            Err(e) => {
                last_error = format!("{}: {e}", path.display());
                continue;
            }
        };
        // The path may now name another namespace (a pid reused): check the inode of what
        // was opened.
        if file.metadata().ok().map(|m| m.ino()) != Some(inode) {
            last_error = format!("{}: now another namespace", path.display());
            continue;
        }
        // SAFETY: setns on a valid namespace fd; it changes only this (dedicated) thread.
        if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            last_error = format!(
                "setns {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            );
            continue;
        }
        return dump_links()
            .map(|d| (path.display().to_string(), d))
            .map_err(|e| format!("RTM_GETLINK in {}: {e}", path.display()));
    }
    Err(last_error)
}

const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const IFLA_IFNAME: u16 = 3;
const IFLA_LINKINFO: u16 = 18;
const IFLA_INFO_KIND: u16 = 1;
const NLMSG_HDRLEN: usize = 16;
const IFINFOMSG_LEN: usize = 16;
const IFF_UP: u32 = 1;

/// Dumps the links of the calling thread's network namespace.
pub fn dump_links() -> std::io::Result<Vec<NetDevice>> {
    // SAFETY: plain socket(2); the fd is owned below.
    let raw = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if raw < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor nobody else owns.
    let socket = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut request = [0u8; NLMSG_HDRLEN + IFINFOMSG_LEN];
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16;
    let request_len = request.len() as u32;
    request[0..4].copy_from_slice(&request_len.to_ne_bytes());
    request[4..6].copy_from_slice(&RTM_GETLINK.to_ne_bytes());
    request[6..8].copy_from_slice(&flags.to_ne_bytes());
    request[8..12].copy_from_slice(&1u32.to_ne_bytes());
    request[NLMSG_HDRLEN] = libc::AF_UNSPEC as u8;
    // SAFETY: sending our own buffer on our socket; the kernel is the default destination.
    let sent = unsafe {
        libc::send(
            socket.as_raw_fd(),
            request.as_ptr().cast(),
            request.len(),
            0,
        )
    };
    if sent < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut devices = Vec::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        // SAFETY: receiving into our own buffer.
        let n = unsafe {
            libc::recv(
                socket.as_raw_fd(),
                buffer.as_mut_ptr().cast(),
                buffer.len(),
                0,
            )
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "netlink socket closed mid-dump",
            ));
        }
        match parse_link_messages(&buffer[..n as usize], &mut devices) {
            Ok(true) => return Ok(devices),
            Ok(false) => {}
            Err(e) => return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
        }
    }
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    bytes
        .get(at..at + 2)
        .map(|b| u16::from_ne_bytes([b[0], b[1]]))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    bytes
        .get(at..at + 4)
        .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Netlink attributes in `bytes` as `(type, payload)` pairs; stops at the first malformed one.
fn attributes(bytes: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let len = u16_at(bytes, at)? as usize;
        let kind = u16_at(bytes, at + 2)? & 0x3fff; // without NLA_F_NESTED/NET_BYTEORDER
        if len < 4 || at + len > bytes.len() {
            return None;
        }
        let payload = &bytes[at + 4..at + len];
        at += align4(len);
        Some((kind, payload))
    })
}

fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// Parses one datagram of an `RTM_GETLINK` dump, appending devices. Returns true at
/// `NLMSG_DONE`.
pub fn parse_link_messages(bytes: &[u8], devices: &mut Vec<NetDevice>) -> Result<bool, String> {
    let mut at = 0;
    while at + NLMSG_HDRLEN <= bytes.len() {
        let len = u32_at(bytes, at).unwrap_or(0) as usize;
        let kind = u16_at(bytes, at + 4).unwrap_or(0);
        if len < NLMSG_HDRLEN || at + len > bytes.len() {
            return Err(format!(
                "netlink message at byte {at} claims {len} bytes of {}",
                bytes.len()
            ));
        }
        let body = &bytes[at + NLMSG_HDRLEN..at + len];
        match kind {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => {
                let errno = u32_at(body, 0).map_or(0, |e| e as i32);
                if errno != 0 {
                    return Err(std::io::Error::from_raw_os_error(-errno).to_string());
                }
            }
            RTM_NEWLINK => {
                if body.len() < IFINFOMSG_LEN {
                    return Err("RTM_NEWLINK shorter than its ifinfomsg".into());
                }
                let ifindex = u32_at(body, 4).unwrap_or(0);
                let flags = u32_at(body, 8).unwrap_or(0);
                let mut device = NetDevice {
                    ifindex,
                    up: flags & IFF_UP != 0,
                    ..NetDevice::default()
                };
                for (attr, payload) in attributes(&body[IFINFOMSG_LEN..]) {
                    match attr {
                        IFLA_IFNAME => device.name = c_string(payload),
                        IFLA_LINKINFO => {
                            for (info, value) in attributes(payload) {
                                if info == IFLA_INFO_KIND {
                                    device.kind = Some(c_string(value));
                                }
                            }
                        }
                        _ => {}
                    }
                }
                if !device.name.is_empty() {
                    devices.push(device);
                }
            }
            _ => {}
        }
        at += align4(len);
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_here_are_found_by_name() {
        let lo = device_here("lo").expect("every namespace has lo");
        assert_eq!(lo.ifindex, 1);
        assert!(device_here("nodedoc-none0").is_none());
        for hostile in ["", "a/b", "x\0y", "0123456789abcdefg"] {
            assert!(device_here(hostile).is_none(), "{hostile:?}");
        }
        assert!(own_namespace().is_some());
    }

    fn attr(kind: u16, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&((4 + payload.len()) as u16).to_ne_bytes());
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(payload);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out
    }

    fn message(kind: u16, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&((NLMSG_HDRLEN + body.len()) as u32).to_ne_bytes());
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(&[0; 10]);
        out.extend_from_slice(body);
        out
    }

    fn link(index: u32, name: &str, kind: Option<&str>) -> Vec<u8> {
        let mut body = vec![0u8; IFINFOMSG_LEN];
        body[4..8].copy_from_slice(&index.to_ne_bytes());
        body[8..12].copy_from_slice(&IFF_UP.to_ne_bytes());
        body.extend(attr(IFLA_IFNAME, format!("{name}\0").as_bytes()));
        if let Some(kind) = kind {
            let info = attr(IFLA_INFO_KIND, format!("{kind}\0").as_bytes());
            body.extend(attr(IFLA_LINKINFO | 0x8000, &info));
        }
        message(RTM_NEWLINK, &body)
    }

    #[test]
    fn parses_a_dump() {
        let mut datagram = link(1, "lo", None);
        datagram.extend(link(7, "tap0", Some("tun")));
        let mut devices = Vec::new();
        assert_eq!(parse_link_messages(&datagram, &mut devices), Ok(false));
        assert_eq!(
            parse_link_messages(&message(NLMSG_DONE, &[0; 4]), &mut devices),
            Ok(true)
        );
        assert_eq!(devices.len(), 2);
        assert_eq!(devices[1].name, "tap0");
        assert_eq!(devices[1].ifindex, 7);
        assert_eq!(devices[1].kind.as_deref(), Some("tun"));
        assert!(devices[1].up);
    }

    #[test]
    fn hostile_datagrams_are_errors_or_ignored_never_panics() {
        let good = link(3, "eth0", Some("veth"));
        for cut in 0..good.len() {
            let mut devices = Vec::new();
            let _ = parse_link_messages(&good[..cut], &mut devices);
        }
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2000 {
            let mut bytes = good.clone();
            for _ in 0..4 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let i = (seed as usize) % bytes.len();
                bytes[i] = (seed >> 32) as u8;
            }
            let mut devices = Vec::new();
            let _ = parse_link_messages(&bytes, &mut devices);
        }
        let mut devices = Vec::new();
        let mut error = message(NLMSG_ERROR, &(-libc::EPERM).to_ne_bytes());
        error.extend_from_slice(&[0; 16]);
        assert!(parse_link_messages(&error, &mut devices).is_err());
    }

    #[test]
    fn every_process_has_a_network_namespace() {
        let pairs = process_namespaces();
        let own = inode_of(Path::new("/proc/self/ns/net")).unwrap();
        assert!(
            pairs.contains(&(std::process::id() as i32, own)),
            "{pairs:?}"
        );
    }

    #[test]
    fn reads_this_namespace_and_named_ones() {
        let nets = collect(&[], Path::new(NETNS_RUN_DIR));
        if !nets.complete() {
            // Not root: named namespaces cannot be entered; this namespace still is.
            assert!(!nets.namespaces.is_empty(), "{nets:?}");
        }
        let own = nets
            .namespaces
            .iter()
            .find(|ns| ns.entered_via == "/proc/self/ns/net")
            .expect("this namespace");
        assert!(own.devices.iter().any(|d| d.name == "lo"), "{own:?}");
    }
}
