//! The threads of a target process, busiest first.

use std::path::Path;

/// One thread of a target.
#[derive(Clone, Debug)]
pub(crate) struct Thread {
    pub tid: i32,
    /// utime + stime since it started, in clock ticks.
    pub cpu_ticks: u64,
}

/// Field 22 (start time) of `/proc/PID/stat`, or `None` when the process is gone.
pub(crate) fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&stat).map(|s| s.2)
}

/// (state, utime + stime, start time) from a stat line.
fn parse_stat(stat: &[u8]) -> Option<(char, u64, u64)> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&stat[close + 1..]).ok()?;
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    // After the comm: state is field 3, utime 14, stime 15, starttime 22 (1-based).
    let state = fields.first()?.chars().next()?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let start: u64 = fields.get(19)?.parse().ok()?;
    Some((state, utime + stime, start))
}

/// Every thread of `pid` that could be read, busiest (most CPU time so far) first, and how
/// many there are.
pub(crate) fn threads(pid: i32) -> std::io::Result<Vec<Thread>> {
    let dir = format!("/proc/{pid}/task");
    let mut threads = Vec::new();
    for entry in std::fs::read_dir(Path::new(&dir))? {
        let Ok(entry) = entry else { continue };
        let Some(tid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read(entry.path().join("stat")) else {
            continue;
        };
        if let Some((_, cpu_ticks, _)) = parse_stat(&stat) {
            threads.push(Thread { tid, cpu_ticks });
        }
    }
    threads.sort_by(|a, b| b.cpu_ticks.cmp(&a.cpu_ticks).then(a.tid.cmp(&b.tid)));
    Ok(threads)
}

/// State letter of one thread, now.
pub(crate) fn thread_state(pid: i32, tid: i32) -> Option<char> {
    let stat = std::fs::read(format!("/proc/{pid}/task/{tid}/stat")).ok()?;
    parse_stat(&stat).map(|s| s.0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn stat_lines_with_spaces_and_parens_in_the_comm() {
        let line =
            b"42 (a) b) (c) R 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 12345 1000 10";
        assert_eq!(super::parse_stat(line), Some(('R', 300, 12345)));
    }
}
