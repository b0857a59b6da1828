//! The processes labs start, run as `nodedoc lab-helper NAME [ARGS]`. Each prints `ready` on
//! stdout once its fault is in place, then waits to be killed.

use std::io::Write;
use std::time::Duration;

use crate::LabError;

pub(crate) fn helper_error(helper: &str, detail: impl std::fmt::Display) -> LabError {
    LabError::Helper {
        helper: helper.to_string(),
        detail: detail.to_string(),
    }
}

/// `--name value` from a helper's arguments.
pub(crate) fn arg<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.windows(2)
        .find(|pair| pair[0] == name)
        .map(|pair| pair[1].as_str())
}

fn number(helper: &str, args: &[String], name: &str, default: u64) -> Result<u64, LabError> {
    match arg(args, name) {
        None => Ok(default),
        Some(text) => text
            .parse()
            .map_err(|_| helper_error(helper, format!("{name} {text:?} is not a number"))),
    }
}

pub(crate) fn ready() {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "ready");
    let _ = out.flush();
}

pub(crate) fn wait_forever() -> ! {
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// Runs the helper named by `args[0]`. Returns only on failure (or never, for helpers that
/// wait to be killed).
pub fn run_helper(args: &[String]) -> Result<(), LabError> {
    let Some(name) = args.first() else {
        return Err(helper_error("?", "no helper named"));
    };
    let rest = &args[1..];
    // Name the process after its role, so reports say `fd-hog (pid N)`, not `nodedoc`.
    set_comm(name);
    match name.as_str() {
        "fd-hog" => fd_hog(rest),
        "fd-leaker" => fd_leaker(rest),
        "zombie-parent" => zombie_parent(rest),
        "kmsg-repeat" => kmsg_repeat(rest),
        "vfork-parent" => vfork_parent(),
        "forker" => forker(rest),
        "sleeper" => {
            ready();
            wait_forever()
        }
        "fuse-daemon" => crate::fuse::serve(rest),
        "fuse-reader" => fuse_reader(rest),
        "mm-victim" => memory_map_victim(rest),
        "mem-reader" => memory_reader(rest),
        "pidns-init" => pidns_init(),
        "udp-wait" => udp_wait(),
        "netlink-dumper" => netlink_dumper(rest),
        "cni-runtime" => cni_runtime(rest),
        "ipam-skel-0.6" => old_skel_plugin(),
        "ovs-daemons" => crate::ovs_daemons::ovs_daemons(rest),
        "ovs-flapper" => crate::ovs_daemons::ovs_flapper(rest),
        "netlink-per-delete" => netlink_per_delete(rest),
        "runtime-daemon" => crate::runtimes::runtime_daemon(rest),
        other => Err(helper_error(other, "unknown helper")),
    }
}

/// Raises its soft `RLIMIT_NOFILE` to `--soft-limit` and holds `--sockets` bound netlink
/// sockets of `--protocol` (default 16, `NETLINK_GENERIC`): an ovs-vswitchd that leaked its
/// per-port upcall sockets.
fn fd_hog(args: &[String]) -> Result<(), LabError> {
    const NAME: &str = "fd-hog";
    let sockets = number(NAME, args, "--sockets", 1000)?;
    let soft = number(NAME, args, "--soft-limit", 1024)?;
    let protocol = number(NAME, args, "--protocol", 16)? as i32;
    let current = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let hard = current.maximum;
    if hard.is_some_and(|h| soft > h) {
        return Err(helper_error(
            NAME,
            format!("--soft-limit {soft} is above the hard limit {hard:?}"),
        ));
    }
    rustix::process::setrlimit(
        rustix::process::Resource::Nofile,
        rustix::process::Rlimit {
            current: Some(soft),
            maximum: hard,
        },
    )
    .map_err(|e| helper_error(NAME, format!("setrlimit: {e}")))?;
    let mut held = Vec::with_capacity(sockets as usize);
    for i in 0..sockets {
        let fd = rustix::net::socket(
            rustix::net::AddressFamily::NETLINK,
            rustix::net::SocketType::RAW,
            rustix::net::Protocol::from_raw(
                std::num::NonZeroU32::new(protocol as u32).unwrap_or(std::num::NonZeroU32::MIN),
            )
            .into(),
        )
        .map_err(|e| helper_error(NAME, format!("socket #{i}: {e}")))?;
        // Bound with port id 0: the kernel assigns one, as ovs-vswitchd's sockets have.
        let address = rustix::net::netlink::SocketAddrNetlink::new(0, 0);
        rustix::net::bind(&fd, &address)
            .map_err(|e| helper_error(NAME, format!("bind #{i}: {e}")))?;
        held.push(fd);
    }
    ready();
    wait_forever()
}

/// Sets its soft `RLIMIT_NOFILE` to `--soft-limit` (default 20,000) and opens one bound
/// NETLINK_GENERIC socket every 1/`--per-second` s, forever or until it holds `--stop-at`
/// descriptors (then it holds them, flat): a daemon leaking a socket per event, for
/// `fd-leak`.
fn fd_leaker(args: &[String]) -> Result<(), LabError> {
    const NAME: &str = "fd-leaker";
    let per_second = number(NAME, args, "--per-second", 10)?.max(1);
    let soft = number(NAME, args, "--soft-limit", 20_000)?;
    let stop_at = number(NAME, args, "--stop-at", u64::MAX)?;
    set_soft_nofile(NAME, soft)?;
    ready();
    let pause = Duration::from_secs_f64(1.0 / per_second as f64);
    let mut held = Vec::new();
    loop {
        if (held.len() as u64) + 3 < stop_at {
            held.push(generic_netlink_socket(NAME, held.len())?);
        }
        std::thread::sleep(pause);
    }
}

/// A new (unbound) NETLINK_GENERIC socket, the `n`th a helper opens.
fn generic_netlink_socket(helper: &str, n: usize) -> Result<rustix::fd::OwnedFd, LabError> {
    rustix::net::socket(
        rustix::net::AddressFamily::NETLINK,
        rustix::net::SocketType::RAW,
        Some(rustix::net::netlink::GENERIC),
    )
    .map_err(|e| helper_error(helper, format!("socket #{n}: {e}")))
}

/// Sets the soft `RLIMIT_NOFILE` to `soft` (at most the hard limit, which stays).
fn set_soft_nofile(helper: &str, soft: u64) -> Result<(), LabError> {
    let hard = rustix::process::getrlimit(rustix::process::Resource::Nofile).maximum;
    rustix::process::setrlimit(
        rustix::process::Resource::Nofile,
        rustix::process::Rlimit {
            current: Some(hard.map_or(soft, |h| soft.min(h))),
            maximum: hard,
        },
    )
    .map_err(|e| helper_error(helper, format!("setrlimit: {e}")))
}

/// Follows ovs-vswitchd.log at `--log` from its end and opens one NETLINK_GENERIC socket for
/// every `deleted interface` line it sees (only those of `--interface`, when given), and
/// holds them: what ovs-vswitchd does with the kernel datapath when a port's device vanished
/// before `del-port` (seed 000: its per-handler upcall sockets are never closed). This
/// machine has no kernel datapath, so ovs-vswitchd itself leaks nothing here; the helper
/// stands in for the leak while the real ovs-vswitchd logs the real deletes. Its soft
/// `RLIMIT_NOFILE` is `--soft-limit` (default 20,000), so a leak has a time to exhaustion.
fn netlink_per_delete(args: &[String]) -> Result<(), LabError> {
    use std::io::{Read, Seek, SeekFrom};
    const NAME: &str = "netlink-per-delete";
    let path = arg(args, "--log").ok_or_else(|| helper_error(NAME, "--log is required"))?;
    let only = arg(args, "--interface").map(|i| format!("deleted interface {i} on port "));
    let soft = number(NAME, args, "--soft-limit", 20_000)?;
    set_soft_nofile(NAME, soft)?;
    let mut file =
        std::fs::File::open(path).map_err(|e| helper_error(NAME, format!("open {path}: {e}")))?;
    let mut offset = file
        .seek(SeekFrom::End(0))
        .map_err(|e| helper_error(NAME, format!("seek {path}: {e}")))?;
    ready();
    let mut pending: Vec<u8> = Vec::new();
    let mut held = Vec::new();
    let mut buffer = vec![0u8; 64 << 10];
    loop {
        let size = file.metadata().map(|m| m.len()).unwrap_or(offset);
        if size < offset {
            // Truncated: start over.
            offset = 0;
            pending.clear();
        }
        let _ = file.seek(SeekFrom::Start(offset));
        let n = file.read(&mut buffer).unwrap_or(0);
        if n == 0 {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        offset += n as u64;
        pending.extend_from_slice(&buffer[..n]);
        while let Some(newline) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=newline).collect();
            let line = String::from_utf8_lossy(&line);
            let deleted = match &only {
                Some(needle) => line.contains(needle.as_str()),
                None => line.contains("|bridge|") && line.contains(": deleted interface "),
            };
            if deleted {
                held.push(generic_netlink_socket(NAME, held.len())?);
            }
        }
        // A line longer than any of ovs-vswitchd's is not one: forget it.
        if pending.len() > 1 << 20 {
            pending.clear();
        }
    }
}

/// Forks `--children` children named `--name` (default `calico`, as in seed 001) that exit at
/// once, and never waits for them: they stay zombies. On SIGTERM it reaps them and exits, so
/// that stopping the lab leaves no zombie for an init that reaps lazily.
fn zombie_parent(args: &[String]) -> Result<(), LabError> {
    const NAME: &str = "zombie-parent";
    let children = number(NAME, args, "--children", 3)?;
    let child_name = arg(args, "--name").unwrap_or("calico").to_string();
    let mut comm = [0u8; 16];
    let bytes = child_name.as_bytes();
    comm[..bytes.len().min(15)].copy_from_slice(&bytes[..bytes.len().min(15)]);

    // Block SIGTERM before forking so it is delivered only through sigwait below.
    // SAFETY: plain libc signal-mask calls on a single-threaded process.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
    let mut pids = Vec::new();
    for _ in 0..children {
        // SAFETY: the helper is single-threaded here; the child only renames itself and
        // calls _exit, both async-signal-safe.
        match unsafe { libc::fork() } {
            -1 => return Err(helper_error(NAME, std::io::Error::last_os_error())),
            0 => unsafe {
                libc::prctl(libc::PR_SET_NAME, comm.as_ptr() as libc::c_ulong, 0, 0, 0);
                libc::_exit(0);
            },
            pid => pids.push(pid),
        }
    }
    // Ready once every child is a zombie.
    for pid in &pids {
        while crate::process::state(*pid) != Some('Z') {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    ready();
    let mut signal = 0;
    // SAFETY: waits for the blocked SIGTERM.
    unsafe { libc::sigwait(&set, &mut signal) };
    for pid in pids {
        // SAFETY: reaping our own children.
        unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
    }
    std::process::exit(0)
}

/// Writes `--line` to /dev/kmsg every `--every` seconds (default 10, like the kernel's
/// `netdev_wait_allrefs`) at level `--level` (default 4, warning: the real line is emergency
/// level, which syslog daemons broadcast to every terminal; a lab should not).
fn kmsg_repeat(args: &[String]) -> Result<(), LabError> {
    const NAME: &str = "kmsg-repeat";
    let line = arg(args, "--line").ok_or_else(|| helper_error(NAME, "--line is required"))?;
    let every = number(NAME, args, "--every", 10)?.max(1);
    let level = number(NAME, args, "--level", 4)?.min(7) as u8;
    nodedoc_kmsg::write_kmsg_with_level(level, line).map_err(|e| helper_error(NAME, e))?;
    ready();
    loop {
        std::thread::sleep(Duration::from_secs(every));
        // Keep going even if one write fails: the lab's point is the repetition.
        let _ = nodedoc_kmsg::write_kmsg_with_level(level, line);
    }
}

/// Calls vfork(2) and leaves the child sleeping without exec: the parent stays in
/// `wait_for_vfork_done`, state D, until the child execs or exits.
fn vfork_parent() -> Result<(), LabError> {
    // `ready` comes first: after vfork this process is suspended.
    ready();
    // SAFETY: the child only calls pause(2) in a loop and never returns into Rust code; it
    // shares the parent's memory, which is exactly what makes the parent wait. libc marks
    // vfork deprecated because misuse corrupts memory; reproducing a vfork parent is the point
    // here, and the lab kills the parent before the child so it never resumes.
    #[allow(deprecated)]
    let child = unsafe { libc::vfork() };
    match child {
        -1 => Err(helper_error(
            "vfork-parent",
            std::io::Error::last_os_error(),
        )),
        0 => loop {
            // SAFETY: a bare system call, no memory touched.
            unsafe { libc::syscall(libc::SYS_pause) };
        },
        _ => wait_forever(),
    }
}

/// Starts `/bin/true` over and over from its main thread, as fast as it can, until killed:
/// std's `Command` uses posix_spawn, a vfork, so the process passes through D (in
/// `kernel_clone`, waiting for the child to exec) thousands of times a second, then waits in
/// `do_wait`. Writes how many it started to `--count-file` every 256 children.
fn forker(args: &[String]) -> Result<(), LabError> {
    const NAME: &str = "forker";
    let count_file = arg(args, "--count-file");
    ready();
    let mut started: u64 = 0;
    loop {
        std::process::Command::new("/bin/true")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .map_err(|e| helper_error(NAME, e))?;
        started += 1;
        if started % 256 == 0 {
            if let Some(path) = count_file {
                std::fs::write(path, started.to_string()).map_err(|e| helper_error(NAME, e))?;
            }
        }
    }
}

/// Reads `--path`, a file of the lab's FUSE filesystem whose reads are never answered.
fn fuse_reader(args: &[String]) -> Result<(), LabError> {
    use std::io::Read;
    const NAME: &str = "fuse-reader";
    let path = arg(args, "--path").ok_or_else(|| helper_error(NAME, "--path is required"))?;
    let mut file =
        std::fs::File::open(path).map_err(|e| helper_error(NAME, format!("open {path}: {e}")))?;
    ready();
    let mut buf = [0u8; 4096];
    let _ = file.read(&mut buf);
    wait_forever()
}

/// Maps `--path` (a file whose reads never answer) and waits for SIGUSR1; then asks for its
/// memory-map lock for writing (an anonymous mmap, as a new thread's stack would), which
/// blocks while `mem-reader` holds the lock for reading. Its main thread is the writer, so
/// `/proc/PID/stat` shows the D state.
fn memory_map_victim(args: &[String]) -> Result<(), LabError> {
    const NAME: &str = "mm-victim";
    let path = arg(args, "--path").ok_or_else(|| helper_error(NAME, "--path is required"))?;
    let file =
        std::fs::File::open(path).map_err(|e| helper_error(NAME, format!("open {path}: {e}")))?;
    // SAFETY: a read-only private mapping of a file we keep open; nothing reads it here.
    let mapped = unsafe {
        rustix::mm::mmap(
            std::ptr::null_mut(),
            4096,
            rustix::mm::ProtFlags::READ,
            rustix::mm::MapFlags::PRIVATE,
            &file,
            0,
        )
    }
    .map_err(|e| helper_error(NAME, format!("mmap {path}: {e}")))?;
    // SAFETY: plain signal-mask calls on a single-threaded process.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGUSR1);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
    ready();
    let mut signal = 0;
    // SAFETY: waits for the signal blocked above.
    unsafe { libc::sigwait(&set, &mut signal) };
    // SAFETY: a fresh anonymous mapping, never used.
    let _writer = unsafe {
        rustix::mm::mmap_anonymous(
            std::ptr::null_mut(),
            1 << 20,
            rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
            rustix::mm::MapFlags::PRIVATE,
        )
    };
    let _ = (mapped, file);
    wait_forever()
}

/// Reads the first page of `--path` as mapped in `--pid`, through `/proc/PID/mem`: the fault
/// waits for the FUSE daemon that never answers, holding the target's memory-map lock for
/// reading, as a debugger, a profiler or a monitoring agent reading a process's memory would.
fn memory_reader(args: &[String]) -> Result<(), LabError> {
    const NAME: &str = "mem-reader";
    let pid = arg(args, "--pid").ok_or_else(|| helper_error(NAME, "--pid is required"))?;
    let path = arg(args, "--path").ok_or_else(|| helper_error(NAME, "--path is required"))?;
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .map_err(|e| helper_error(NAME, format!("read /proc/{pid}/maps: {e}")))?;
    let start = maps
        .lines()
        .find(|line| line.ends_with(path))
        .and_then(|line| line.split('-').next())
        .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        .ok_or_else(|| helper_error(NAME, format!("{path} is not mapped in {pid}")))?;
    let memory = std::fs::File::open(format!("/proc/{pid}/mem"))
        .map_err(|e| helper_error(NAME, format!("open /proc/{pid}/mem: {e}")))?;
    ready();
    let mut buf = [0u8; 16];
    let _ = std::os::unix::fs::FileExt::read_at(&memory, &mut buf, start);
    wait_forever()
}

/// The init of a new pid namespace (run under `unshare --pid --fork`): forks a child that
/// sleeps, then waits for it like any init.
fn pidns_init() -> Result<(), LabError> {
    const NAME: &str = "pidns-init";
    // SAFETY: single-threaded here; the child renames itself and sleeps.
    match unsafe { libc::fork() } {
        -1 => Err(helper_error(NAME, std::io::Error::last_os_error())),
        0 => {
            set_comm("pidns-child");
            wait_forever()
        }
        child => {
            ready();
            loop {
                // SAFETY: waiting for our own child.
                if unsafe { libc::waitpid(child, std::ptr::null_mut(), 0) } == child {
                    std::process::exit(0);
                }
            }
        }
    }
}

/// Blocks in recvfrom(2) on a UDP socket in its (soon deleted) network namespace.
fn udp_wait() -> Result<(), LabError> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").map_err(|e| helper_error("udp-wait", e))?;
    ready();
    let mut buf = [0u8; 512];
    loop {
        let _ = socket.recv_from(&mut buf);
    }
}

/// Dumps every address of its network namespace over NETLINK_ROUTE in a loop, as kube-proxy's
/// IPVS proxier did in `NodeIPs()` (seed 003; `net.InterfaceAddrs` and netlink.AddrList send
/// the same request): `RTM_GETADDR` with `NLM_F_DUMP` and family `AF_UNSPEC`, then read the
/// answer to `NLMSG_DONE`. Prints `ready` once a dump returned at least `--min-addresses`.
fn netlink_dumper(args: &[String]) -> Result<(), LabError> {
    const NAME: &str = "netlink-dumper";
    let min = number(NAME, args, "--min-addresses", 1)?;
    let threads = number(NAME, args, "--threads", 2)?.clamp(1, 16);
    // The first dump checks the table is there; then every thread dumps for ever (kube-proxy
    // is a Go program: its dumps ran on several threads at once, "2 cores" in seed 003).
    let addresses = dump_addresses(NAME, &open_route_socket(NAME)?, 1)?;
    if addresses < min {
        return Err(helper_error(
            NAME,
            format!("the dump returned {addresses} addresses, fewer than {min}"),
        ));
    }
    for _ in 1..threads {
        let socket = open_route_socket(NAME)?;
        std::thread::spawn(move || {
            for seq in 1u32.. {
                if dump_addresses(NAME, &socket, seq).is_err() {
                    break;
                }
            }
        });
    }
    let socket = open_route_socket(NAME)?;
    ready();
    for seq in 2u32.. {
        dump_addresses(NAME, &socket, seq)?;
    }
    Ok(())
}

fn open_route_socket(name: &str) -> Result<rustix::fd::OwnedFd, LabError> {
    let socket = rustix::net::socket(
        rustix::net::AddressFamily::NETLINK,
        rustix::net::SocketType::RAW,
        // NETLINK_ROUTE is protocol 0.
        None,
    )
    .map_err(|e| helper_error(name, format!("socket: {e}")))?;
    rustix::net::bind(&socket, &rustix::net::netlink::SocketAddrNetlink::new(0, 0))
        .map_err(|e| helper_error(name, format!("bind: {e}")))?;
    Ok(socket)
}

/// One `RTM_GETADDR` dump, read to `NLMSG_DONE`; returns the addresses it listed.
fn dump_addresses(name: &str, socket: &rustix::fd::OwnedFd, seq: u32) -> Result<u64, LabError> {
    // struct nlmsghdr (16 bytes) + struct ifaddrmsg (8 bytes, family AF_UNSPEC).
    let mut request = [0u8; 24];
    request[0..4].copy_from_slice(&24u32.to_ne_bytes());
    request[4..6].copy_from_slice(&(libc::RTM_GETADDR).to_ne_bytes());
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16;
    request[6..8].copy_from_slice(&flags.to_ne_bytes());
    request[8..12].copy_from_slice(&seq.to_ne_bytes());
    let kernel = rustix::net::netlink::SocketAddrNetlink::new(0, 0);
    rustix::net::sendto(socket, &request, rustix::net::SendFlags::empty(), &kernel)
        .map_err(|e| helper_error(name, format!("send: {e}")))?;
    let mut buf = vec![0u8; 64 << 10];
    let mut addresses = 0u64;
    loop {
        let n = rustix::net::recv(socket, &mut buf[..], rustix::net::RecvFlags::empty())
            .map_err(|e| helper_error(name, format!("recv: {e}")))?
            .0
            .min(buf.len());
        let mut at = 0usize;
        while at + 16 <= n {
            let header = &buf[at..at + 16];
            let len = u32::from_ne_bytes([header[0], header[1], header[2], header[3]]) as usize;
            let kind = u16::from_ne_bytes([header[4], header[5]]);
            if len < 16 {
                break;
            }
            if kind == libc::NLMSG_DONE as u16 {
                return Ok(addresses);
            }
            if kind == libc::NLMSG_ERROR as u16 {
                return Err(helper_error(
                    name,
                    "the kernel answered the dump with an error",
                ));
            }
            addresses += u64::from(kind == libc::RTM_NEWADDR);
            at += (len + 3) & !3;
        }
    }
}

/// A container runtime stand-in: starts the old-skel plugin (`ipam-skel-0.6`) the way a
/// runtime starts a CNI plugin, `CNI_*` in its environment and stdin a pipe it keeps open and
/// never writes, as for `VERSION`. On SIGTERM it kills and reaps the plugin, then exits.
fn cni_runtime(args: &[String]) -> Result<(), LabError> {
    const NAME: &str = "cni-runtime";
    let command = arg(args, "--command").unwrap_or("VERSION");
    let container = arg(args, "--container-id").unwrap_or("nodedoc-lab");
    let exe = std::env::current_exe().map_err(|e| helper_error(NAME, e))?;
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: plain libc signal-mask calls; SIGTERM is then taken with sigwait below.
    unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
    let mut plugin = std::process::Command::new(exe)
        .args(["lab-helper", "ipam-skel-0.6"])
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", container)
        .env("CNI_NETNS", format!("/var/run/netns/{container}"))
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", "/opt/cni/bin:/usr/lib/cni")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| helper_error(NAME, format!("start the plugin: {e}")))?;
    // Held, never written: the plugin's read of stdin never ends.
    let _stdin = plugin.stdin.take();
    ready();
    let mut signal = 0;
    // SAFETY: waits for the blocked SIGTERM.
    unsafe { libc::sigwait(&set, &mut signal) };
    let _ = plugin.kill();
    let _ = plugin.wait();
    std::process::exit(0)
}

/// A CNI plugin built with containernetworking/cni's skel before v0.7.0: it reads all of
/// stdin for every command, VERSION included, before answering.
fn old_skel_plugin() -> Result<(), LabError> {
    use std::io::Read;
    let mut input = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut input);
    println!(r#"{{"cniVersion":"0.3.1","supportedVersions":["0.1.0","0.2.0","0.3.0","0.3.1"]}}"#);
    Ok(())
}

fn set_comm(name: &str) {
    let mut comm = [0u8; 16];
    let len = name.len().min(15);
    comm[..len].copy_from_slice(&name.as_bytes()[..len]);
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    unsafe { libc::prctl(libc::PR_SET_NAME, comm.as_ptr() as libc::c_ulong, 0, 0, 0) };
}
