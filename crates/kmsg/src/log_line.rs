//! The prefixes that tools put in front of a kernel log line, taken off so the kernel's own
//! text remains: `dmesg`, `dmesg -T`, `dmesg -x`, `journalctl -k` (short, precise, iso and
//! monotonic outputs) and syslog files (`/var/log/kern.log`, `/var/log/messages`).
//!
//! ```text
//! <4>[12345.678901] [ T123] INFO: task …                       dmesg --raw, printk caller id
//! [12345.678901][  T123] INFO: task …                          dmesg (util-linux joins them)
//! [Tue Mar  3 10:11:12 2020] INFO: task …                      dmesg -T
//! kern  :err   : [12345.678901] INFO: task …                  dmesg -x
//! Mar  3 10:11:12 host kernel: [12345.678901] INFO: task …    syslog
//! Mar 03 10:11:12 host kernel: INFO: task …                    journalctl -k
//! 2020-03-03T10:11:12.123456+00:00 host kernel: INFO: task …  rsyslog, journalctl -o short-iso
//! [12345.678901] host kernel: INFO: task …                     journalctl -o short-monotonic
//! ```
//!
//! Parsing is by hand: the prefixes are few and fixed, a regex engine would be the largest
//! dependency of this crate, and each rule below says which tool writes what it takes off.

use nodedoc_model::PrintkCaller;

use crate::dmesg::split_caller_id;

/// A log line with the prefixes of the tools that wrote it taken off.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogLine<'a> {
    /// The kernel's text, leading whitespace kept (call-trace lines are indented).
    pub message: &'a str,
    /// The syslog level of a `<N>` prefix or of `dmesg -x`, when there was one.
    pub level: Option<u8>,
    /// The syslog facility of a `<N>` prefix or of `dmesg -x` (0 is the kernel; what user
    /// space writes into `/dev/kmsg` has another), when there was one.
    pub facility: Option<u8>,
    /// Microseconds since boot, from `[  123.456789]`.
    pub monotonic_us: Option<u64>,
    /// The wall-clock stamp as printed (`Mar  3 10:11:12`, `Tue Mar  3 10:11:12 2020`,
    /// `2020-03-03T10:11:12.123456+00:00`).
    pub wall_clock: Option<&'a str>,
    /// The printk caller id, `T123` or `C1`.
    pub caller: Option<PrintkCaller>,
    /// The program of a syslog or journal line (`kernel`, `CRON`); `None` when the line had
    /// no such prefix. Lines of other programs interleave with the kernel's in syslog files.
    pub program: Option<&'a str>,
}

impl LogLine<'_> {
    /// False for a syslog or journal line of another program than the kernel.
    pub fn is_kernel(&self) -> bool {
        self.program.is_none_or(|p| p == "kernel")
    }
}

use nodedoc_model::clock::MONTHS;
const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const FACILITIES: [&str; 19] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
    "ftp", "local0", "local1", "local2", "local3", "local4", "local5", "local6",
];
const LEVELS: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warn", "notice", "info", "debug",
];

/// Takes the prefixes off one line. Never fails: text that is not a prefix stays in the
/// message.
pub fn parse_log_line(line: &str) -> LogLine<'_> {
    let line = line.trim_end_matches(['\r', '\n']);
    // Logs pasted into issues and mails are often indented; the indentation before a
    // prefix is not the kernel's. Without a prefix the line is kept as it is, since a
    // frame's own indentation is.
    let indented = line.trim_start();
    let mut out = LogLine {
        message: indented,
        ..LogLine::default()
    };
    // Prefixes come in a few orders (a syslog stamp, then the kernel's own); each pass
    // takes at most one, and there are never more than a handful.
    for _ in 0..8 {
        let rest = out.message;
        if let Some(((level, facility), after)) = split_priority(rest) {
            out.level = out.level.or(Some(level));
            out.facility = out.facility.or(facility);
            out.message = after;
        } else if let Some((stamp, program, after)) = split_syslog(rest) {
            out.wall_clock = out.wall_clock.or(Some(stamp));
            out.program = out.program.or(program);
            out.message = after;
        } else if let Some(((level, facility), after)) = split_dmesg_x(rest) {
            out.level = out.level.or(Some(level));
            out.facility = out.facility.or(Some(facility));
            out.message = after;
        } else if let Some((stamp, after)) = split_bracket(rest) {
            match stamp {
                Bracket::Monotonic(us) => out.monotonic_us = out.monotonic_us.or(Some(us)),
                Bracket::WallClock(text) => out.wall_clock = out.wall_clock.or(Some(text)),
                Bracket::Relative => {}
            }
            out.message = after;
            // `journalctl -o short-monotonic`: `[  12.345678] host kernel: `. Only `kernel`
            // is taken here: `usb 1-1: new device` after a dmesg stamp is the kernel's text.
            if let Some((program @ "kernel", after)) = split_host_program(out.message) {
                out.program = out.program.or(Some(program));
                out.message = after;
            }
        } else if let (Some(caller), after) = split_caller_id(rest) {
            out.caller = out.caller.or(Some(caller));
            out.message = after;
        } else {
            break;
        }
    }
    if out.message.len() == indented.len() {
        out.message = line;
    }
    out
}

/// `<6>` or util-linux's `<-1>`: the level, and the facility when the prefix says.
fn split_priority(text: &str) -> Option<((u8, Option<u8>), &str)> {
    let inside = text.strip_prefix('<')?;
    let close = inside.find('>')?;
    let number = &inside[..close];
    let priority = if number == "-1" {
        (6, None)
    } else if !number.is_empty() && number.len() <= 4 && number.bytes().all(|b| b.is_ascii_digit())
    {
        let value = number.parse::<u32>().ok()?;
        ((value & 7) as u8, u8::try_from(value >> 3).ok())
    } else {
        return None;
    };
    Some((priority, &inside[close + 1..]))
}

/// `kern  :err   : ` of `dmesg -x`: the level and the facility.
fn split_dmesg_x(text: &str) -> Option<((u8, u8), &str)> {
    let (facility, rest) = text.split_once(':')?;
    let facility = FACILITIES.iter().position(|f| *f == facility.trim_end())?;
    // kern … ftp are 0 … 11; local0 … follow at 16.
    let facility = if facility < 12 {
        facility
    } else {
        facility + 4
    };
    let (level, rest) = rest.split_once(':')?;
    let level = LEVELS.iter().position(|l| *l == level.trim_end())?;
    Some((
        (level as u8, facility as u8),
        rest.strip_prefix(' ').unwrap_or(rest),
    ))
}

enum Bracket<'a> {
    Monotonic(u64),
    WallClock(&'a str),
    /// `dmesg --reltime`'s `[  +0.000004]` or `-H`'s `[Mar 3 10:11]`: a time, but not one
    /// nodedoc can place.
    Relative,
}

/// `[  12.345678]`, `[Tue Mar  3 10:11:12 2020]`, `[  +0.000004]`.
fn split_bracket(text: &str) -> Option<(Bracket<'_>, &str)> {
    let inside = text.strip_prefix('[')?;
    let close = inside.find(']')?;
    let stamp = &inside[..close];
    let rest = &inside[close + 1..];
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    let trimmed = stamp.trim();
    if let Some(us) = monotonic_us(trimmed) {
        return Some((Bracket::Monotonic(us), rest));
    }
    if trimmed.starts_with('+')
        && trimmed[1..]
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.')
    {
        return Some((Bracket::Relative, rest));
    }
    let first = trimmed.split(' ').next().unwrap_or("");
    if (WEEKDAYS.contains(&first) || MONTHS.contains(&first)) && trimmed.contains(':') {
        let has_weekday = WEEKDAYS.contains(&first);
        return Some((
            if has_weekday {
                Bracket::WallClock(trimmed)
            } else {
                Bracket::Relative
            },
            rest,
        ));
    }
    None
}

/// `12.345678` → microseconds; `None` for anything else.
fn monotonic_us(text: &str) -> Option<u64> {
    let (seconds, fraction) = text.split_once('.')?;
    if seconds.is_empty()
        || seconds.len() > 12
        || !seconds.bytes().all(|b| b.is_ascii_digit())
        || fraction.is_empty()
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let micros = fraction
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(6)
        .fold(0u64, |value, digit| value * 10 + u64::from(digit - b'0'));
    seconds
        .parse::<u64>()
        .ok()?
        .checked_mul(1_000_000)?
        .checked_add(micros)
}

/// A syslog or journal stamp, with the host and program after it: `Mar  3 10:11:12 host
/// kernel: `, `Mar 03 10:11:12.123456 host kernel: `, `2020-03-03T10:11:12+0000 host kernel: `.
/// An ISO stamp with no host and program after it (`dmesg --time-format iso`) is taken alone.
fn split_syslog(text: &str) -> Option<(&str, Option<&str>, &str)> {
    let stamp_end = if let Some(month) = text.get(..3).filter(|m| MONTHS.contains(m)) {
        let _ = month;
        // `Mar  3 10:11:12`, `Mar 03 10:11:12.123456`
        let after_month = text[3..].strip_prefix(' ')?;
        let day_start = after_month.len() - after_month.trim_start_matches(' ').len();
        let day = &after_month[day_start..];
        let day_len = day.bytes().take_while(u8::is_ascii_digit).count();
        if day_len == 0 || day_len > 2 {
            return None;
        }
        let time = day[day_len..].strip_prefix(' ')?;
        let time_len = clock_len(time)?;
        3 + 1 + day_start + day_len + 1 + time_len
    } else {
        iso_len(text)?
    };
    let stamp = &text[..stamp_end];
    let rest = &text[stamp_end..];
    let Some(rest) = rest.strip_prefix(' ') else {
        return if rest.is_empty() {
            Some((stamp, None, rest))
        } else {
            None
        };
    };
    // A pasted log with the host name cut out: `May 17 18:48:11 kernel: …`.
    if let Some(after) = rest.strip_prefix("kernel: ") {
        return Some((stamp, Some("kernel"), after));
    }
    match split_host_program(rest) {
        Some((program, after)) => Some((stamp, Some(program), after)),
        // `dmesg --time-format iso` has no host; a bare syslog stamp is taken too.
        None => Some((stamp, None, rest)),
    }
}

/// `host kernel: ` or `host CRON[123]: ` → the program and the rest.
fn split_host_program(text: &str) -> Option<(&str, &str)> {
    let (host, rest) = text.split_once(' ')?;
    if host.is_empty() || host.contains([':', '[', '<']) {
        return None;
    }
    let (tag, rest) = rest.split_once(':')?;
    // `kernel`, `CRON[1182563]`, `systemd-journald[312]`: no spaces, a name before any `[`.
    if tag.is_empty() || tag.contains(' ') {
        return None;
    }
    let program = tag.split('[').next().unwrap_or(tag);
    if program.is_empty() {
        return None;
    }
    Some((program, rest.strip_prefix(' ').unwrap_or(rest)))
}

/// The length of `HH:MM:SS` with an optional `.fraction`.
fn clock_len(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    if bytes.len() < 8 {
        return None;
    }
    let digits = |range: std::ops::Range<usize>| bytes[range].iter().all(u8::is_ascii_digit);
    if !(digits(0..2) && bytes[2] == b':' && digits(3..5) && bytes[5] == b':' && digits(6..8)) {
        return None;
    }
    let mut len = 8;
    if bytes.get(8) == Some(&b'.') || bytes.get(8) == Some(&b',') {
        let fraction = bytes[9..].iter().take_while(|b| b.is_ascii_digit()).count();
        if fraction > 0 {
            len = 9 + fraction;
        }
    }
    Some(len)
}

/// The length of `2020-03-03T10:11:12[.123456][Z|+00:00|+0000]`.
fn iso_len(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    if bytes.len() < 19 {
        return None;
    }
    let digits = |range: std::ops::Range<usize>| bytes[range].iter().all(u8::is_ascii_digit);
    if !(digits(0..4) && bytes[4] == b'-' && digits(5..7) && bytes[7] == b'-' && digits(8..10))
        || !(bytes[10] == b'T' || bytes[10] == b' ')
    {
        return None;
    }
    let mut len = 11 + clock_len(&text[11..])?;
    match bytes.get(len) {
        Some(b'Z') => len += 1,
        Some(b'+') | Some(b'-') => {
            let zone = bytes[len + 1..]
                .iter()
                .take_while(|b| b.is_ascii_digit() || **b == b':')
                .count();
            if zone >= 2 {
                len += 1 + zone;
            }
        }
        _ => {}
    }
    Some(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(line: &str) -> &str {
        parse_log_line(line).message
    }

    #[test]
    fn every_tool_prefix() {
        let cases: &[(&str, &str)] = &[
            (
                "[ 1560.084180] INFO: task x:1 blocked",
                "INFO: task x:1 blocked",
            ),
            ("<3>[ 1560.084180] INFO: task x:1", "INFO: task x:1"),
            ("[ 1431.920513][ T1054] INFO: task x:1", "INFO: task x:1"),
            ("<6>[  125.351161][  T140]  </TASK>", " </TASK>"),
            (
                "[Thu May 20 08:53:35 2021]  __schedule+0x23d/0x670",
                " __schedule+0x23d/0x670",
            ),
            ("kern  :err   : [  12.5] INFO: task x:1", "INFO: task x:1"),
            (
                "Mar  5 08:31:52 puma kernel: [10359910.034793]  __schedule+0x2ee/0x900",
                " __schedule+0x2ee/0x900",
            ),
            (
                "Oct 11 06:07:26 glustern1 kernel: Call Trace:",
                "Call Trace:",
            ),
            (
                "Jul 05 19:33:34 gke-node kernel: unregister_netdevice: x",
                "unregister_netdevice: x",
            ),
            (
                "Mar 03 10:11:12.123456 host kernel: INFO: task x:1",
                "INFO: task x:1",
            ),
            (
                "2020-03-03T10:11:12.123456+00:00 host kernel: [  5.1] INFO: task x:1",
                "INFO: task x:1",
            ),
            (
                "2020-03-03T10:11:12+0000 host kernel: INFO: task x:1",
                "INFO: task x:1",
            ),
            (
                "2020-03-03T10:11:12,123456+00:00 INFO: task x:1",
                "INFO: task x:1",
            ),
            (
                "[12345.678901] host kernel: INFO: task x:1",
                "INFO: task x:1",
            ),
            ("[  +0.000004]  schedule+0x4f/0xc0", " schedule+0x4f/0xc0"),
            // Not prefixes: kept.
            (
                " [<ffffffff8135077c>] ? mutex_lock+0x1a/0x2d",
                " [<ffffffff8135077c>] ? mutex_lock+0x1a/0x2d",
            ),
            (
                "[<80c1e5e8>] (__schedule) from [<80c1eb20>]",
                "[<80c1e5e8>] (__schedule) from [<80c1eb20>]",
            ),
            ("[drm] x", "[drm] x"),
            ("Call Trace:", "Call Trace:"),
            (
                "INFO: task a b:1 blocked for more than 2 seconds.",
                "INFO: task a b:1 blocked for more than 2 seconds.",
            ),
            ("", ""),
            (
                "    Oct 21 16:07:25 server_name kernel: [433838.878970] Call Trace:",
                "Call Trace:",
            ),
            ("    [  1.0] x", "x"),
        ];
        for (line, expected) in cases {
            assert_eq!(message(line), *expected, "{line:?}");
        }
    }

    #[test]
    fn the_fields_of_the_prefixes() {
        let line = parse_log_line("Mar  5 08:31:52 puma kernel: [10359910.034733] INFO: task");
        assert_eq!(line.wall_clock, Some("Mar  5 08:31:52"));
        assert_eq!(line.monotonic_us, Some(10_359_910_034_733));
        assert_eq!(line.program, Some("kernel"));
        assert!(line.is_kernel());
        let cron = parse_log_line("Mar  5 08:25:01 puma CRON[1182563]: (root) CMD (x)");
        assert_eq!(cron.program, Some("CRON"));
        assert!(!cron.is_kernel());
        let dmesg_t = parse_log_line("[Thu May 20 08:53:35 2021] task:mount.nfs state:D");
        assert_eq!(dmesg_t.wall_clock, Some("Thu May 20 08:53:35 2021"));
        assert_eq!(dmesg_t.monotonic_us, None);
        let caller = parse_log_line("<3>[  125.362363][  T140] INFO: task zsh:470");
        assert_eq!(caller.caller, Some(PrintkCaller::Thread(140)));
        assert_eq!(caller.level, Some(3));
        assert_eq!(
            parse_log_line("[  1.5][    C1] x").caller,
            Some(PrintkCaller::Cpu(1))
        );
        assert_eq!(parse_log_line("kern  :warn  : x").level, Some(4));
        assert_eq!(parse_log_line("kern  :warn  : x").facility, Some(0));
        assert_eq!(parse_log_line("user  :err   : x").facility, Some(1));
        assert_eq!(parse_log_line("local0:err   : x").facility, Some(16));
        assert_eq!(parse_log_line("<14>[  1.5] x").facility, Some(1));
        assert_eq!(parse_log_line("<-1>[  1.5] x").facility, None);
    }

    #[test]
    fn odd_text_never_panics() {
        for line in [
            "[",
            "[]",
            "<",
            "<>",
            "<99999999>x",
            "Mar",
            "Mar ",
            "Mar  3",
            "Mar  3 10:11",
            "Mar  3 10:11:12",
            "2020-03-03T",
            "2020-03-03T10:11:12+",
            "[ 1.2.3] x",
            "kern:",
            "kern  :bogus : x",
            "\u{fffd}\u{fffd}",
            "[Thu",
            "é[1.0]é",
            "[99999999999999999999.1] x",
        ] {
            let _ = parse_log_line(line);
        }
    }
}
