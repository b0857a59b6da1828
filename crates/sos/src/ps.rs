//! The `ps` listings sos saves, and the clock text (`date`, `lstart`) they need.
//!
//! - `ps axo flags,state,uid,pid,ppid,pgid,sid,cls,pri,addr,sz,wchan:20,lstart,tty,time,cmd`:
//!   state, parent, wait channel, start time, command line — the main reading.
//! - `ps axo pid,ppid,user,group,lwp,nlwp,start_time,comm,cgroup`: the kernel's short name
//!   (`comm`), the thread count and the cgroups.
//! - `ps auxwww`, which sos runs first (before `lsof`): its `STAT` is an earlier reading of the
//!   same processes, so a zombie or a task in D in both was stuck across lsof's run, not passing
//!   through.

use std::collections::HashMap;

use nodedoc_model::{CgroupMembership, TaskState};

/// One row of the main listing.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PsRow {
    pub state: char,
    pub uid: Option<u32>,
    pub pid: i32,
    pub ppid: i32,
    pub wchan: Option<String>,
    /// `lstart` as printed (`Tue Dec  1 05:17:58 2026`), in the host's local time.
    pub started: Option<i64>,
    /// `time`: CPU seconds so far.
    pub cpu_secs: u64,
    pub cmd: String,
}

/// Splits off `n` whitespace-separated fields; returns them and the rest of the line as is.
fn fields(line: &str, n: usize) -> Option<(Vec<&str>, &str)> {
    let mut out = Vec::with_capacity(n);
    let mut rest = line;
    for _ in 0..n {
        rest = rest.trim_start();
        if rest.is_empty() {
            return None;
        }
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        out.push(&rest[..end]);
        rest = &rest[end..];
    }
    Some((out, rest.trim_start()))
}

/// Parses the `flags,state,…,lstart,tty,time,cmd` listing; returns the rows and the number of
/// lines that did not parse.
pub(crate) fn parse_sched(text: &str) -> (Vec<PsRow>, u64) {
    let mut rows = Vec::new();
    let mut bad = 0;
    for line in text
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("F "))
        .skip(1)
    {
        if line.trim().is_empty() {
            continue;
        }
        // F S UID PID PPID PGID SID CLS PRI ADDR SZ WCHAN, then lstart's five words, TT, TIME.
        let Some((f, cmd)) = fields(line, 19) else {
            bad += 1;
            continue;
        };
        let (Ok(pid), Ok(ppid)) = (f[3].parse(), f[4].parse()) else {
            bad += 1;
            continue;
        };
        let state = f[1].chars().next().unwrap_or('?');
        rows.push(PsRow {
            state,
            uid: f[2].parse().ok(),
            pid,
            ppid,
            wchan: match f[11] {
                "-" | "0" => None,
                w => Some(w.to_string()),
            },
            started: parse_ctime(&f[12..17].join(" ")),
            cpu_secs: parse_cpu_time(f[18]).unwrap_or(0),
            cmd: cmd.to_string(),
        });
    }
    (rows, bad)
}

/// One row of the `pid,ppid,user,group,lwp,nlwp,start_time,comm,cgroup` listing.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct GroupRow {
    pub comm: String,
    pub threads: u32,
    pub cgroups: Vec<CgroupMembership>,
}

/// Parses the group listing by pid. `comm` may hold spaces: the cgroup column is the last
/// word and `comm` what lies between `start_time` and it.
pub(crate) fn parse_group(text: &str) -> HashMap<i32, GroupRow> {
    let mut rows = HashMap::new();
    for line in text
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("PID "))
        .skip(1)
    {
        let Some((f, rest)) = fields(line, 7) else {
            continue;
        };
        let Ok(pid) = f[0].parse::<i32>() else {
            continue;
        };
        let rest = rest.trim_end();
        let (comm, cgroup) = match rest.rsplit_once(char::is_whitespace) {
            Some((comm, cgroup)) => (comm.trim_end(), cgroup),
            None => (rest, "-"),
        };
        rows.insert(
            pid,
            GroupRow {
                comm: comm.to_string(),
                threads: f[5].parse().unwrap_or(1),
                cgroups: parse_ps_cgroup(cgroup),
            },
        );
    }
    rows
}

/// `ps`'s cgroup column: the lines of `/proc/PID/cgroup` joined with commas, whose controller
/// lists hold commas too (`3:cpu,cpuacct:/x,6:freezer:/y`): an entry starts at `N:`.
pub(crate) fn parse_ps_cgroup(text: &str) -> Vec<CgroupMembership> {
    if text == "-" || text.is_empty() {
        return Vec::new();
    }
    let mut entries: Vec<String> = Vec::new();
    for piece in text.split(',') {
        let starts_entry = piece.split_once(':').is_some_and(|(n, rest)| {
            !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && rest.contains(':')
        });
        match entries.last_mut() {
            Some(last) if !starts_entry => {
                last.push(',');
                last.push_str(piece);
            }
            _ => entries.push(piece.to_string()),
        }
    }
    let (memberships, _) = nodedoc_procfs::parse::parse_cgroup(&entries.join("\n"));
    memberships
}

/// `ps auxwww`: pid → state letter, and the command, to match the process.
pub(crate) fn parse_aux(text: &str) -> HashMap<i32, (char, String)> {
    let mut rows = HashMap::new();
    for line in text.lines().skip_while(|l| !l.starts_with("USER ")).skip(1) {
        // USER PID %CPU %MEM VSZ RSS TTY STAT START TIME COMMAND
        let Some((f, cmd)) = fields(line, 10) else {
            continue;
        };
        if let Ok(pid) = f[1].parse() {
            rows.insert(pid, (f[7].chars().next().unwrap_or('?'), cmd.to_string()));
        }
    }
    rows
}

/// `[DD-]HH:MM:SS` or `M:SS` of `ps`'s TIME.
fn parse_cpu_time(text: &str) -> Option<u64> {
    let (days, rest) = match text.split_once('-') {
        Some((d, rest)) => (d.parse::<u64>().ok()?, rest),
        None => (0, text),
    };
    let mut secs = 0u64;
    for part in rest.split(':') {
        secs = secs.checked_mul(60)?.checked_add(part.parse().ok()?)?;
    }
    days.checked_mul(86_400)?.checked_add(secs)
}

/// The task state of a ps letter.
pub(crate) fn state(letter: char) -> TaskState {
    TaskState::from_letter(letter)
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Seconds since the epoch of a civil date, read as UTC.
pub(crate) fn civil_to_unix(year: i64, month: i64, day: i64, h: i64, m: i64, s: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + h * 3600 + m * 60 + s
}

/// `Tue Dec  1 06:51:17 UTC 2026` (date) or `Tue Dec  1 05:17:58 2026` (lstart): the time as
/// written, read as if it were UTC (the zone word, if any, is ignored: see [`zone_offset`]).
pub(crate) fn parse_ctime(text: &str) -> Option<i64> {
    let words: Vec<&str> = text.split_whitespace().collect();
    // weekday month day time [zone] year
    if words.len() < 5 {
        return None;
    }
    let month = MONTHS.iter().position(|m| *m == words[1])? as i64 + 1;
    let day: i64 = words[2].parse().ok()?;
    let mut hms = words[3].split(':').map(|p| p.parse::<i64>());
    let (h, m, s) = (hms.next()?.ok()?, hms.next()?.ok()?, hms.next()?.ok()?);
    let year: i64 = words.last()?.parse().ok()?;
    if !(1..=31).contains(&day) || h > 24 || m > 59 || s > 61 || !(1970..=9999).contains(&year) {
        return None;
    }
    Some(civil_to_unix(year, month, day, h, m, s))
}

/// The host's offset from UTC in seconds, from `date` and `date --utc` taken a moment apart:
/// rounded to a quarter of an hour.
pub(crate) fn zone_offset(local: &str, utc: &str) -> Option<i64> {
    let diff = parse_ctime(local)? - parse_ctime(utc)?;
    Some(((diff as f64) / 900.0).round() as i64 * 900)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recorded from `sosreport` (sos 4.0, Debian 12) on this project's test machine with the
    /// zombies and d-state labs running.
    const SCHED: &str = "\
F S   UID   PID  PPID  PGID   SID CLS PRI ADDR    SZ WCHAN                                 STARTED TT           TIME CMD
4 S     0     1     0     0     0  TS  29    - 13075 -                    Tue Dec  1 05:17:58 2026 ?        00:00:32 /process_api --firecracker-init
1 I     0     4     2     0     0  TS  39    -     0 rescuer_thread       Tue Dec  1 05:17:58 2026 ?        00:00:00 [kworker/R-rcu_gp]
1 Z     0 21888 21887 21882 12245  TS  19    -     0 -                    Tue Dec  1 07:00:26 2026 ?        00:00:00 [calico] <defunct>
0 D     0 21894     1 21882 12245  TS  19    -  6518 kernel_clone         Tue Dec  1 07:00:26 2026 ?        1-00:00:03 /work/wt/sos/target/debug/nodedoc lab-helper vfork-parent
";

    #[test]
    fn the_sched_listing_gives_state_parent_wchan_and_start() {
        let (rows, bad) = parse_sched(SCHED);
        assert_eq!(bad, 0);
        assert_eq!(rows.len(), 4);
        let zombie = &rows[2];
        assert_eq!((zombie.pid, zombie.ppid, zombie.state), (21888, 21887, 'Z'));
        assert_eq!(zombie.cmd, "[calico] <defunct>");
        let vfork = &rows[3];
        assert_eq!(vfork.wchan.as_deref(), Some("kernel_clone"));
        assert_eq!(vfork.cpu_secs, 86_403);
        assert_eq!(vfork.started, Some(civil_to_unix(2026, 12, 1, 7, 0, 26)));
        assert_eq!(rows[0].wchan, None);
    }

    #[test]
    fn cgroups_and_comm_with_spaces() {
        let text = "  PID  PPID USER     GROUP      LWP NLWP START COMMAND         CGROUP
21896     1 root     root     21896    1 07:00 sleeper         6:freezer:/nodedoc-lab-48f3f7,4:memory:/process_api/c3f
  900     1 root     root       900    3 07:00 Web Content     3:cpu,cpuacct:/a,b,0::/user.slice
";
        let rows = parse_group(text);
        let sleeper = &rows[&21896];
        assert_eq!(sleeper.comm, "sleeper");
        assert_eq!(sleeper.cgroups[0].controllers, "freezer");
        assert_eq!(sleeper.cgroups[0].path, "/nodedoc-lab-48f3f7");
        let web = &rows[&900];
        assert_eq!((web.comm.as_str(), web.threads), ("Web Content", 3));
        assert_eq!(web.cgroups[0].controllers, "cpu,cpuacct");
        assert_eq!(web.cgroups[0].path, "/a,b");
        assert_eq!(web.cgroups[1].hierarchy, 0);
    }

    #[test]
    fn clocks() {
        assert_eq!(civil_to_unix(1970, 1, 1, 0, 0, 0), 0);
        assert_eq!(
            parse_ctime("Tue Dec  1 06:51:17 UTC 2026"),
            Some(civil_to_unix(2026, 12, 1, 6, 51, 17))
        );
        assert_eq!(
            zone_offset(
                "Tue Dec  1 08:51:18 CEST 2026",
                "Tue Dec  1 06:51:17 UTC 2026"
            ),
            Some(7200)
        );
        assert_eq!(parse_ctime("garbage"), None);
        assert_eq!(parse_ctime("Tue Dec 99 06:51:17 2026"), None);
        assert_eq!(parse_cpu_time("1:02"), Some(62));
        assert_eq!(parse_cpu_time("99999999999999999-00:00:00"), None);
    }
}
