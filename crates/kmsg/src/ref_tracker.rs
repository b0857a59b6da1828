//! What the network-device reference tracker (`CONFIG_NET_DEV_REFCNT_TRACKER`, kernels 5.17
//! and later) prints while `unregister_netdevice` waits for a device's references:
//! the stack that took each reference still held. `lib/ref_tracker.c` has printed it three
//! ways:
//!
//! ```text
//! unregister_netdevice: waiting for lo to become free. Usage count = 2
//! leaked reference.                                          5.17 – 6.0
//!  fib6_nh_init+0x791/0x1fb0
//!  …
//! leaked 3 references.                                       6.1 – 6.4 (equal stacks grouped)
//!  …
//! netdev@ffff88803a65e618 has 1/1 users at                   6.5 –
//!      fib6_nh_init+0x791/0x1fb0
//! ref_tracker: netdev@ffff88803a65e618 has 1/1 users at      6.7 – (a prefix added)
//! ```
//!
//! The stacks follow the `waiting for` line, printed by the same task; lines of other
//! callers are skipped where the log has caller ids. Each device keeps its latest `waiting
//! for` line and the holders of the latest print that had any.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use memchr::memmem;
use nodedoc_model::{
    KmsgRecord, LogPosition, NetdevRefTrackerReport, PrintkCaller, RefTrackerStack,
};

use crate::call_trace::{cut, parse_trace_frame};
use crate::log_line::{parse_log_line, LogLine};

/// Devices kept; a host tearing down thousands of namespaces at once prints more, and the
/// first ones are as good an example as any.
pub const MAX_DEVICES: usize = 64;
/// Holder stacks kept per device (the kernel prints at most 10 per round).
pub const MAX_HOLDERS: usize = 16;
/// Frames kept per holder stack (the kernel saves at most 16).
pub const MAX_HOLDER_FRAMES: usize = 32;

const WAITING: &str = "unregister_netdevice: waiting for ";
const USAGE: &str = " to become free. Usage count = ";

/// The reference-tracker prints in `records`, one report per device.
pub fn netdev_ref_trackers(records: &[KmsgRecord]) -> Vec<NetdevRefTrackerReport> {
    let mut parser = Parser::default();
    for record in records {
        if parser.current.is_none() && !mentions_waiting(&record.message) {
            continue;
        }
        for piece in record.message.split('\n') {
            let mut line = parse_log_line(cut(piece));
            line.caller = record.caller.or(line.caller);
            line.facility = Some(record.facility);
            if record.monotonic_us > 0 || record.sequence > 0 {
                line.monotonic_us = Some(record.monotonic_us);
            }
            parser.line(&line, (record.sequence > 0).then_some(record.sequence));
        }
    }
    parser.finish()
}

/// The reference-tracker prints in a kernel log saved as text (the formats of
/// [`crate::blocked_task_reports_in_text`]).
pub fn netdev_ref_trackers_in_text(text: &str) -> Vec<NetdevRefTrackerReport> {
    let mut parser = Parser::default();
    for line in text.lines() {
        if parser.current.is_none() && !mentions_waiting(line) {
            continue;
        }
        parser.line(&parse_log_line(cut(line)), None);
    }
    parser.finish()
}

/// A quick look for the waiting line, so that other lines of a long log cost a substring
/// search and no parsing.
fn mentions_waiting(text: &str) -> bool {
    static FINDER: LazyLock<memmem::Finder<'static>> =
        LazyLock::new(|| memmem::Finder::new(WAITING));
    FINDER.find(text.as_bytes()).is_some()
}

/// `unregister_netdevice: waiting for DEV to become free. Usage count = N`.
pub(crate) fn parse_waiting_line(text: &str) -> Option<(&str, i64)> {
    let rest = &text[text.find(WAITING)? + WAITING.len()..];
    let (device, count) = rest.split_once(USAGE)?;
    if device.is_empty() || device.contains(char::is_whitespace) {
        return None;
    }
    let count = count.split_whitespace().next()?.parse().ok()?;
    Some((device, count))
}

/// The header of one holder stack: `leaked reference.`, `leaked 3 references.`,
/// `[ref_tracker: ]NAME@ADDR has N/M users at`. The users and, when printed, the total.
fn parse_holder_header(text: &str) -> Option<(u32, Option<u32>)> {
    if text == "leaked reference." {
        return Some((1, None));
    }
    if let Some(count) = text
        .strip_prefix("leaked ")
        .and_then(|rest| rest.strip_suffix(" references."))
    {
        return Some((count.parse().ok()?, None));
    }
    let text = text.strip_prefix("ref_tracker: ").unwrap_or(text);
    let (object, rest) = text.split_once(" has ")?;
    if !object.contains('@') || object.contains(' ') {
        return None;
    }
    let (users, total) = rest.strip_suffix(" users at")?.split_once('/')?;
    Some((users.parse().ok()?, Some(total.parse().ok()?)))
}

#[derive(Default)]
struct Parser {
    devices: BTreeMap<String, NetdevRefTrackerReport>,
    order: Vec<String>,
    /// The device whose print is being read, its caller, and the holders read so far.
    current: Option<(String, Option<PrintkCaller>, Vec<RefTrackerStack>)>,
}

impl Parser {
    fn line(&mut self, line: &LogLine<'_>, sequence: Option<u64>) {
        if !line.is_kernel() {
            return;
        }
        let text = line.message.trim();
        if let Some((device, count)) = parse_waiting_line(text) {
            self.end_print();
            if !self.devices.contains_key(device) {
                if self.devices.len() >= MAX_DEVICES {
                    return;
                }
                self.order.push(device.to_string());
            }
            let report = self.devices.entry(device.to_string()).or_default();
            report.device = device.to_string();
            report.usage_count = count;
            report.logged_at = LogPosition {
                sequence,
                monotonic_us: line.monotonic_us,
                wall_clock: line.wall_clock.map(str::to_string),
                wall_clock_ms: None,
                facility: line.facility.filter(|&f| f != 0),
            };
            self.current = Some((device.to_string(), line.caller, Vec::new()));
            return;
        }
        let Some((_, caller, holders)) = &mut self.current else {
            return;
        };
        if caller.is_some() && line.caller.is_some() && *caller != line.caller {
            return;
        }
        if let Some((users, total)) = parse_holder_header(text) {
            if holders.len() < MAX_HOLDERS {
                holders.push(RefTrackerStack {
                    users,
                    total,
                    frames: Vec::new(),
                });
            }
            return;
        }
        if text.ends_with("[inline]")
            || (text.contains(" skipped reports about ") && text.contains('@'))
        {
            return;
        }
        match (parse_trace_frame(text), holders.last_mut()) {
            (Some(frame), Some(holder)) => {
                if holder.frames.len() < MAX_HOLDER_FRAMES {
                    holder.frames.push(frame);
                }
            }
            _ => self.end_print(),
        }
    }

    /// The print of the current device is over: keep its holders if it had any.
    fn end_print(&mut self) {
        if let Some((device, _, holders)) = self.current.take() {
            if !holders.is_empty() {
                if let Some(report) = self.devices.get_mut(&device) {
                    report.holders = holders;
                }
            }
        }
    }

    fn finish(mut self) -> Vec<NetdevRefTrackerReport> {
        self.end_print();
        self.order
            .iter()
            .filter_map(|device| self.devices.remove(device))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holder_headers_of_every_kernel() {
        assert_eq!(parse_holder_header("leaked reference."), Some((1, None)));
        assert_eq!(parse_holder_header("leaked 3 references."), Some((3, None)));
        assert_eq!(
            parse_holder_header("netdev@ffff88803a65e618 has 1/2 users at"),
            Some((1, Some(2)))
        );
        assert_eq!(
            parse_holder_header("ref_tracker: netdev@ffff88805f84a618 has 6658/6658 users at"),
            Some((6658, Some(6658)))
        );
        assert_eq!(parse_holder_header("eth0 has 1/2 users at"), None);
        assert_eq!(parse_holder_header("leaked many references."), None);
    }

    #[test]
    fn the_5_17_format_with_its_stack() {
        // lib/ref_tracker.c of 5.17: pr_err("leaked reference.\n"), then stack_depot_print,
        // whose lines are indented by one space.
        let text =
            "[ 100.0] unregister_netdevice: waiting for veth1 to become free. Usage count = 2
[ 100.0] leaked reference.
[ 100.0]  dev_hold_track+0x2b/0x40
[ 100.0]  inetdev_init+0x1a0/0x2a0
[ 100.0]  inetdev_event+0x4f6/0x6a0
[ 100.0] IPv6: ADDRCONF(NETDEV_CHANGE): veth2: link becomes ready
[ 110.0] unregister_netdevice: waiting for veth1 to become free. Usage count = 2
";
        let reports = netdev_ref_trackers_in_text(text);
        assert_eq!(reports.len(), 1);
        let report = &reports[0];
        assert_eq!((report.device.as_str(), report.usage_count), ("veth1", 2));
        assert_eq!(report.logged_at.monotonic_us, Some(110_000_000));
        // The second print had no holders: the first print's are kept.
        assert_eq!(report.holders.len(), 1);
        let functions: Vec<&str> = report.holders[0]
            .frames
            .iter()
            .map(|f| f.function.as_str())
            .collect();
        assert_eq!(
            functions,
            ["dev_hold_track", "inetdev_init", "inetdev_event"]
        );
    }

    #[test]
    fn a_negative_count_without_holders() {
        let reports = netdev_ref_trackers_in_text(
            "unregister_netdevice: waiting for sit0 to become free. Usage count = -1",
        );
        assert_eq!(reports[0].usage_count, -1);
        assert!(reports[0].holders.is_empty());
    }
}
