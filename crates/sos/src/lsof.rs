//! `lsof -b +M -n -l -c ''` as sos saves it (`sos_commands/process/lsof_-b_M_-n_-l_-c`), turned
//! into one fd census per process.
//!
//! lsof sizes its columns to the widest value before printing, so the header's column edges
//! hold for every row: the values between `PID` and `NAME` are cut at the header's right edges
//! (`FD` is two characters wider, for the mode and lock letters), as insights-core's parser
//! does; `COMMAND` may hold spaces and `NAME` runs to the end of the line. Only rows whose `FD`
//! is a number are descriptors (`cwd`, `rtd`, `txt`, `mem`, `DEL` are not); rows of threads
//! (a `TID` value, lsof `-K`) repeat their process's and are skipped.
//!
//! Netlink sockets: lsof prints `netlink … INODE GENERIC` when it found the socket's inode in
//! `/proc/net/netlink`, and `sock … INODE protocol: NETLINK` when it did not (a table read
//! while sockets come and go misses some: measured here, 3,024 of 3,950 while another process
//! churned 100,000 sockets). Those are looked up by inode in the report's own copy of
//! `/proc/net/netlink` ([`Census::resolve_netlink`]); what neither placed is an
//! `unresolved-socket`, and counted.

use std::collections::{BTreeMap, HashMap};

use nodedoc_model::{
    FdCensus, FdKind, FdKindCount, NamespaceFd, NetlinkProtocol, SocketResolution,
};

/// One process's rows.
#[derive(Debug, Default)]
pub(crate) struct PidFiles {
    /// lsof's COMMAND (at most 9 characters unless `+c` was given).
    pub command: String,
    /// Counts by kind: a process has a handful of kinds, so a list beats hashing per row.
    kinds: Vec<(FdKind, u64)>,
    total: u64,
    /// Netlink sockets whose protocol lsof did not print: their inodes.
    netlink_inodes: Vec<u64>,
    namespace_fds: Vec<NamespaceFd>,
    stdin: Option<FdKind>,
    fuse_device_fds: u64,
    /// Rows lsof marked as unreadable (`NOFD`, `readlink: …`).
    pub unreadable: u64,
}

/// Every process's rows of one lsof listing.
#[derive(Debug, Default)]
pub(crate) struct Census {
    pub by_pid: BTreeMap<i32, PidFiles>,
    /// Data lines that did not fit the header.
    pub unparsed: u64,
    /// Rows of threads, skipped.
    pub thread_rows: u64,
    /// True when a header was found.
    pub header: bool,
    /// Netlink sockets placed by the report's `/proc/net/netlink`, and left unresolved.
    pub netlink_from_table: u64,
    pub netlink_unresolved: u64,
}

/// Column edges from the header line.
struct Columns {
    pid_end: usize,
    /// The columns between PID and NAME: name and right edge.
    middle: Vec<(String, usize)>,
    name_start: usize,
    /// Indexes into `middle` of the columns read (TID is there only with lsof -K).
    tid: Option<usize>,
    fd: Option<usize>,
    kind: Option<usize>,
    node: Option<usize>,
}

impl Columns {
    /// The value of middle column `index` in `line` (empty when the line is short).
    fn value<'l>(&self, line: &'l str, index: Option<usize>) -> &'l str {
        let Some(index) = index else { return "" };
        let start = if index == 0 {
            self.pid_end
        } else {
            self.middle[index - 1].1.min(self.name_start)
        };
        let end = self.middle[index].1.min(self.name_start);
        line.get(start..end.max(start)).map_or("", str::trim)
    }
}

fn columns(header: &str) -> Option<Columns> {
    let pid_end = header.find(" PID").map(|i| i + 4)?;
    let name_start = header.rfind(" NAME").map(|i| i + 1)?;
    let mut middle = Vec::new();
    let between = header.get(pid_end..name_start)?;
    let mut offset = pid_end;
    for word in between.split(' ') {
        if !word.is_empty() {
            let end = offset + word.len() + if word == "FD" { 2 } else { 0 };
            middle.push((word.to_string(), end));
        }
        offset += word.len() + 1;
    }
    let index = |name: &str| middle.iter().position(|(n, _)| n == name);
    Some(Columns {
        pid_end,
        tid: index("TID"),
        fd: index("FD"),
        kind: index("TYPE"),
        node: index("NODE"),
        middle,
        name_start,
    })
}

impl Census {
    /// Parses an lsof listing; never fails (lines that do not fit are counted).
    pub fn parse(text: &str) -> Census {
        let mut census = Census::default();
        let mut lines = text.lines();
        let cols = loop {
            match lines.next() {
                None => return census,
                Some(line) if line.starts_with("COMMAND ") && line.contains(" NAME") => {
                    match columns(line) {
                        Some(c) => break c,
                        None => return census,
                    }
                }
                Some(_) => continue,
            }
        };
        census.header = true;
        for line in lines {
            if line.starts_with("lsof: ") || line.starts_with("      Output information") {
                continue;
            }
            if !census.row(line, &cols) {
                census.unparsed += 1;
            }
        }
        census
    }

    fn row(&mut self, line: &str, cols: &Columns) -> bool {
        let Some(head) = line.get(..cols.pid_end) else {
            return false;
        };
        let Some(split) = head.trim_end().rfind(' ') else {
            return false;
        };
        let Ok(pid) = head[split + 1..].trim().parse::<i32>() else {
            return false;
        };
        let command = head[..split].trim_end();
        let name = line.get(cols.name_start..).unwrap_or("").trim();
        if !cols.value(line, cols.tid).is_empty() {
            self.thread_rows += 1;
            return true;
        }
        let files = self.by_pid.entry(pid).or_insert_with(|| PidFiles {
            command: command.to_string(),
            ..PidFiles::default()
        });
        let fd_text = cols.value(line, cols.fd);
        if fd_text == "NOFD"
            || name.contains("(readlink: ") && !fd_text.starts_with(|c: char| c.is_ascii_digit())
        {
            files.unreadable += 1;
            return true;
        }
        let digits = fd_text
            .find(|c: char| !c.is_ascii_digit())
            .map_or(fd_text, |end| &fd_text[..end]);
        let Ok(fd) = digits.parse::<i32>() else {
            // cwd, rtd, txt, mem, DEL, …: not descriptors.
            return true;
        };
        let kind_type = cols.value(line, cols.kind);
        let node = cols.value(line, cols.node);
        let kind = match classify(kind_type, node, name) {
            Classified::Kind(kind) => kind,
            Classified::NetlinkByInode(inode) => {
                files.netlink_inodes.push(inode);
                files.total += 1;
                return true;
            }
            Classified::Namespace(namespace, inode) => {
                files.namespace_fds.push(NamespaceFd {
                    fd,
                    namespace,
                    inode,
                });
                FdKind::Namespace
            }
            Classified::Unreadable => {
                files.unreadable += 1;
                FdKind::Other
            }
        };
        if fd == 0 {
            files.stdin = Some(kind.clone());
        }
        if kind == FdKind::CharDevice && name == "/dev/fuse" {
            files.fuse_device_fds += 1;
        }
        files.add(kind);
        files.total += 1;
        true
    }

    /// True when some netlink socket's protocol is left to [`resolve_netlink`](Self::resolve_netlink).
    pub fn has_unplaced_netlink(&self) -> bool {
        self.by_pid.values().any(|f| !f.netlink_inodes.is_empty())
    }

    /// Places the netlink sockets lsof printed as `sock … protocol: NETLINK` with the
    /// report's `/proc/net/netlink` (inode → protocol).
    pub fn resolve_netlink(&mut self, table: &HashMap<u64, NetlinkProtocol>) {
        for files in self.by_pid.values_mut() {
            for inode in std::mem::take(&mut files.netlink_inodes) {
                let kind = match table.get(&inode) {
                    Some(&protocol) => {
                        self.netlink_from_table += 1;
                        FdKind::NetlinkSocket { protocol }
                    }
                    None => {
                        self.netlink_unresolved += 1;
                        FdKind::UnresolvedSocket
                    }
                };
                files.add(kind);
            }
        }
    }
}

impl PidFiles {
    fn add(&mut self, kind: FdKind) {
        match self.kinds.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, count)) => *count += 1,
            None => self.kinds.push((kind, 1)),
        }
    }

    /// The census, biggest kinds first.
    pub fn census(&self) -> FdCensus {
        let mut kinds: Vec<FdKindCount> = self
            .kinds
            .iter()
            .map(|(kind, count)| FdKindCount {
                kind: kind.clone(),
                count: *count,
            })
            .collect();
        kinds.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.kind.cmp(&b.kind)));
        let any_socket =
            kinds.iter().any(|k| k.kind.is_socket()) || !self.netlink_inodes.is_empty();
        FdCensus {
            total: self.total,
            kinds,
            socket_resolution: if any_socket {
                SocketResolution::Lsof
            } else {
                SocketResolution::NoSockets
            },
            namespace_fds: self.namespace_fds.clone(),
            stdin: self.stdin.clone(),
            fuse_device_fds: self.fuse_device_fds,
        }
    }
}

enum Classified {
    Kind(FdKind),
    NetlinkByInode(u64),
    Namespace(String, u64),
    Unreadable,
}

fn classify(kind_type: &str, node: &str, name: &str) -> Classified {
    let kind = match kind_type {
        "REG" if name.starts_with("/memfd:") => FdKind::Memfd,
        "REG" => FdKind::File,
        "DIR" => FdKind::Directory,
        "CHR" => FdKind::CharDevice,
        "BLK" => FdKind::BlockDevice,
        "FIFO" if name == "pipe" || name.starts_with("pipe ") || name.starts_with("pipe:") => {
            FdKind::Pipe
        }
        "FIFO" => FdKind::NamedPipe,
        "unix" => FdKind::UnixSocket,
        "pack" => FdKind::PacketSocket,
        "IPv4" | "IPv6" => match node {
            "TCP" => FdKind::TcpSocket,
            "UDP" => FdKind::UdpSocket,
            other => FdKind::OtherSocket {
                family: if kind_type == "IPv4" { 2 } else { 10 },
                protocol: match other {
                    "ICMP" => 1,
                    "ICMPV6" => 58,
                    "SCTP" => 132,
                    "UDPLITE" => 136,
                    _ => 255,
                },
            },
        },
        "netlink" => {
            let word = name.split_whitespace().next().unwrap_or("");
            // GENERIC and ROUTE are nearly every row: no allocation for them.
            let protocol = match word {
                "GENERIC" => Some(NetlinkProtocol::GENERIC),
                "ROUTE" => Some(NetlinkProtocol::ROUTE),
                _ => NetlinkProtocol::from_name(&format!("NETLINK_{word}")),
            }
            .or_else(|| word.parse().ok().map(NetlinkProtocol));
            match (protocol, node.parse::<u64>()) {
                (Some(protocol), _) => FdKind::NetlinkSocket { protocol },
                (None, Ok(inode)) => return Classified::NetlinkByInode(inode),
                (None, Err(_)) => FdKind::UnresolvedSocket,
            }
        }
        "sock" => match name.strip_prefix("protocol: ").unwrap_or("") {
            "NETLINK" => match node.parse::<u64>() {
                Ok(inode) => return Classified::NetlinkByInode(inode),
                Err(_) => FdKind::UnresolvedSocket,
            },
            "UNIX" | "UNIX-STREAM" => FdKind::UnixSocket,
            "TCP" | "TCPv6" => FdKind::TcpSocket,
            "UDP" | "UDPv6" => FdKind::UdpSocket,
            "PACKET" => FdKind::PacketSocket,
            _ => FdKind::UnresolvedSocket,
        },
        "a_inode" => {
            let inner = name.trim_start_matches('[');
            let inner = inner.split([']', ':']).next().unwrap_or("");
            FdKind::AnonInode {
                name: if inner.is_empty() {
                    "unknown".to_string()
                } else {
                    inner.to_string()
                },
            }
        }
        "unknown" if name.contains("(readlink: ") => return Classified::Unreadable,
        _ => {
            if let Some((namespace, inode)) = namespace_name(name) {
                return Classified::Namespace(namespace.to_string(), inode);
            }
            FdKind::Other
        }
    };
    // Namespace files (`net:[…]`) show as REG or unknown; sockets, pipes and devices never are.
    if matches!(kind, FdKind::File | FdKind::Other) {
        if let Some((namespace, inode)) = namespace_name(name) {
            return Classified::Namespace(namespace.to_string(), inode);
        }
    }
    Classified::Kind(kind)
}

/// `net:[4026532181]` and the like.
fn namespace_name(name: &str) -> Option<(&str, u64)> {
    let (kind, rest) = name.split_once(":[")?;
    if !matches!(
        kind,
        "net" | "mnt" | "pid" | "uts" | "ipc" | "user" | "cgroup" | "time"
    ) {
        return None;
    }
    Some((kind, rest.strip_suffix(']')?.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recorded from `sosreport` (sos 4.0, Debian 12) run on this project's test machine while
    /// the fd-exhaustion lab ran and another process churned 100,000 netlink sockets.
    const LSOF: &str = "\
lsof: avoiding readlink(/proc): -b was specified.
lsof: WARNING: can't stat() proc file system /proc
      Output information may be incomplete.
COMMAND     PID     USER   FD      TYPE             DEVICE  SIZE/OFF     NODE NAME
process_a     1        0  cwd   unknown                                       /proc/1/cwd (readlink: Permission denied)
process_a     1        0    3   unknown                                       /proc/1/fd/3 (readlink: Permission denied)
fd-hog    21885        0  cwd       DIR              254,0      4096   246951 /tmp
fd-hog    21885        0  txt       REG              254,0 136047864  6605518 /work/wt/sos/target/debug/nodedoc
fd-hog    21885        0  mem       REG              254,0   1926232   326279 /usr/lib/x86_64-linux-gnu/libc.so.6
fd-hog    21885        0    0r      CHR                1,3       0t0        3 /dev/null
fd-hog    21885        0    1w     FIFO               0,15       0t0 20072405 pipe
fd-hog    21885        0    4u  netlink                          0t0 19980589 GENERIC
fd-hog    21885        0    8u  netlink                          0t0 19980593 GENERIC
fd-hog    21885        0 3950u     sock                0,9       0t0 20075672 protocol: NETLINK
fd-hog    21885        0 3951u     sock                0,9       0t0 20075673 protocol: NETLINK
cargo     14719        0    3u     unix 0x00000000c3474718       0t0 19871238 type=STREAM (CONNECTED)
my cmd    14720        0    5u  a_inode               0,16         0     1057 [eventfd:77]
my cmd    14720        0    6r      REG                0,4         0 40265318 net:[4026531840]
";

    #[test]
    fn rows_become_censuses_with_netlink_protocols() {
        let mut census = Census::parse(LSOF);
        assert!(census.header);
        assert_eq!(census.unparsed, 0);
        census.resolve_netlink(&HashMap::from([(20075672, NetlinkProtocol::GENERIC)]));
        assert_eq!(census.netlink_from_table, 1);
        assert_eq!(census.netlink_unresolved, 1);
        let hog = census.by_pid[&21885].census();
        assert_eq!(hog.total, 6, "fds 0, 1, 4, 8, 3950, 3951");
        let generic = FdKind::NetlinkSocket {
            protocol: NetlinkProtocol::GENERIC,
        };
        assert_eq!(hog.count(&generic), 3);
        assert_eq!(hog.count(&FdKind::UnresolvedSocket), 1);
        assert_eq!(hog.count(&FdKind::Pipe), 1);
        assert_eq!(hog.stdin, Some(FdKind::CharDevice));
        assert_eq!(hog.socket_resolution, SocketResolution::Lsof);
        assert_eq!(census.by_pid[&21885].command, "fd-hog");
        // pid 1: lsof could not read its descriptors.
        assert_eq!(census.by_pid[&1].unreadable, 2);
        let spaced = &census.by_pid[&14720];
        assert_eq!(spaced.command, "my cmd");
        let c = spaced.census();
        assert_eq!(
            c.count(&FdKind::AnonInode {
                name: "eventfd".into()
            }),
            1
        );
        assert_eq!(c.namespace_fds[0].inode, 4026531840);
        assert_eq!(census.by_pid[&14719].census().count(&FdKind::UnixSocket), 1);
    }

    #[test]
    fn garbage_and_missing_headers_do_not_panic() {
        for text in [
            "",
            "COMMAND PID NAME",
            "COMMAND     PID     USER   FD      TYPE DEVICE SIZE/OFF NODE NAME\nx",
            "COMMAND     PID     USER   FD      TYPE DEVICE SIZE/OFF NODE NAME\nλλλλλλλλλλλλλλλλλλλλλλλλλλλλλλλλλλλλλλ",
            "COMMAND     PID  NAME\nabc  12345  é",
        ] {
            let census = Census::parse(text);
            assert!(census.by_pid.values().all(|p| p.total == 0));
        }
    }
}
