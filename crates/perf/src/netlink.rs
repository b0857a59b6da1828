//! A hint without perf: the process's netlink sockets with a dump in progress (`Dump` of
//! `/proc/PID/net/netlink`). The kernel prints that table by walking every netlink socket of
//! the namespace, which is what takes lsof 16–19 s at 100,000 sockets (seed 000), so it is
//! read only when `/proc/PID/net/protocols` (a constant-time counter) says the namespace holds
//! few.

use nodedoc_model::{NetlinkDumpSocket, NetlinkDumps};

/// The table is read only when the namespace holds at most this many netlink sockets.
pub const MAX_TABLE_SOCKETS: u64 = 10_000;

/// Why the hint was not read.
#[derive(Debug, thiserror::Error)]
pub enum HintError {
    /// The namespace holds too many netlink sockets for the table to be cheap.
    #[error(
        "not read: its network namespace holds {0} netlink sockets (above {MAX_TABLE_SOCKETS}, reading /proc/PID/net/netlink would cost seconds)"
    )]
    TooMany(u64),
    /// A file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The netlink sockets of `pid` that are in the middle of a dump.
pub fn dumping_sockets(pid: i32) -> Result<NetlinkDumps, HintError> {
    let read = |path: String| {
        std::fs::read_to_string(&path).map_err(|source| HintError::Read { path, source })
    };
    let protocols = read(format!("/proc/{pid}/net/protocols"))?;
    let namespace_sockets = netlink_socket_count(&protocols).unwrap_or(0);
    if namespace_sockets > MAX_TABLE_SOCKETS {
        return Err(HintError::TooMany(namespace_sockets));
    }
    let mut inodes = std::collections::HashSet::new();
    let dir = format!("/proc/{pid}/fd");
    let entries = std::fs::read_dir(&dir).map_err(|source| HintError::Read {
        path: dir.clone(),
        source,
    })?;
    for entry in entries.flatten() {
        if let Ok(target) = std::fs::read_link(entry.path()) {
            if let Some(inode) = target
                .to_str()
                .and_then(|t| t.strip_prefix("socket:["))
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse::<u64>().ok())
            {
                inodes.insert(inode);
            }
        }
    }
    let table = read(format!("/proc/{pid}/net/netlink"))?;
    let mut dumps = NetlinkDumps {
        namespace_sockets,
        dumping: Vec::new(),
        sockets: 0,
    };
    for row in parse_table(&table) {
        if !inodes.contains(&row.inode) {
            continue;
        }
        dumps.sockets += 1;
        if row.dump {
            dumps.dumping.push(NetlinkDumpSocket {
                protocol: row.protocol,
                inode: row.inode,
            });
        }
    }
    Ok(dumps)
}

/// The `sockets` column of the `NETLINK` row of `/proc/net/protocols`.
fn netlink_socket_count(protocols: &str) -> Option<u64> {
    protocols.lines().find_map(|line| {
        let mut fields = line.split_ascii_whitespace();
        (fields.next()? == "NETLINK").then_some(())?;
        fields.nth(1)?.parse().ok()
    })
}

struct Row {
    protocol: u32,
    dump: bool,
    inode: u64,
}

/// `sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode` rows.
fn parse_table(table: &str) -> impl Iterator<Item = Row> + '_ {
    table.lines().skip(1).filter_map(|line| {
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        Some(Row {
            protocol: fields.get(1)?.parse().ok()?,
            dump: fields.get(6)?.parse::<u64>().ok()? != 0,
            inode: fields.get(9)?.parse().ok()?,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_count_and_the_dump_column_are_read() {
        let protocols = "protocol  size sockets  memory press maxhdr  slab module     cl co di\nPACKET    1600      0      -1   NI       0   no   kernel      n  n  n\nNETLINK   1096 100200      -1   NI       0   no   kernel      n  n  n\n";
        assert_eq!(netlink_socket_count(protocols), Some(100200));
        let table = "sk               Eth Pid        Groups   Rmem     Wmem     Dump  Locks    Drops    Inode\n00000000938d8e54 0   4711       00000000 0        0        1     2        0        90210\n000000000dd09acc 16  0          00000000 0        0        0     2        0        565\n";
        let rows: Vec<Row> = parse_table(table).collect();
        assert_eq!(rows.len(), 2);
        assert!(rows[0].dump && rows[0].protocol == 0 && rows[0].inode == 90210);
        assert!(!rows[1].dump && rows[1].protocol == 16);
    }
}
