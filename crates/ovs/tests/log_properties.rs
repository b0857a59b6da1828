//! Property tests of the ovs-vswitchd.log reader (issue 8: fuzz the parsers of untrusted
//! input; the cargo-fuzz target `ovs_log` in fuzz/ runs them for longer). Interface names
//! and error texts in the log are chosen by whoever names a port or a device, so any line
//! must parse to the right event or to nothing, and never panic.

use nodedoc_model::OvsLogEventKind;
use nodedoc_ovs::log::{parse_line, parse_timestamp, reduce};
use proptest::prelude::*;

/// A name as hostile as OVS allows: shell and terminal metacharacters, `|`, non-ASCII. Not
/// `": "` (the log's own separator), nor a line break.
fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9._|$()'\";`\u{1b}\u{7}é-]{1,15}".prop_filter("no separator", |n| !n.contains(": "))
}

/// Days from 1970-01-01 to `year-01-01`, the slow obvious way (an oracle independent of the
/// reader's closed-form conversion).
fn days_to_year(year: i64) -> i64 {
    let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if year >= 1970 {
        (1970..year).map(|y| if leap(y) { 366 } else { 365 }).sum()
    } else {
        -(year..1970)
            .map(|y| if leap(y) { 366 } else { 365 })
            .sum::<i64>()
    }
}

fn days_before_month(year: i64, month: i64) -> i64 {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let lengths = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    lengths[..(month - 1) as usize].iter().sum()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, failure_persistence: None, ..ProptestConfig::default() })]

    /// Anything that looks like a timestamp: huge years, fractions of any length and of
    /// non-ASCII digits. Out of range is `None`, never an overflow.
    #[test]
    fn timestamps_never_panic(
        text in "-?[0-9]{1,20}-[0-9]{1,3}-[0-9]{1,3}T[0-9]{1,3}:[0-9]{1,3}:[0-9]{1,3}(\\.[0-9a\u{e9}\u{661}]{0,5})?Z?",
    ) {
        let _ = parse_timestamp(&text);
    }

    #[test]
    fn valid_timestamps_are_exact(
        year in 1i64..=9999,
        month in 1i64..=12,
        day in 1i64..=28,
        hour in 0i64..24,
        minute in 0i64..60,
        second in 0i64..60,
        millis in prop::option::of(0i64..1000),
    ) {
        let mut text = format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}");
        if let Some(ms) = millis {
            text.push_str(&format!(".{ms:03}"));
        }
        text.push('Z');
        let days = days_to_year(year) + days_before_month(year, month) + day - 1;
        let want = ((days * 86_400 + hour * 3600 + minute * 60 + second) * 1000) + millis.unwrap_or(0);
        prop_assert_eq!(parse_timestamp(&text), Some(want));
    }

    #[test]
    fn add_and_delete_lines_name_bridge_interface_and_port(
        bridge in name(),
        interface in name(),
        ofport in -1i64..100_000,
        added in any::<bool>(),
    ) {
        let verb = if added { "added" } else { "deleted" };
        let line = format!(
            "2021-04-15T12:36:29.723Z|00595|bridge|INFO|bridge {bridge}: {verb} interface {interface} on port {ofport}"
        );
        let (timestamp, kind) = parse_line(&line).unwrap();
        prop_assert_eq!(timestamp, "2021-04-15T12:36:29.723Z");
        let want = if added {
            OvsLogEventKind::InterfaceAdded { bridge, interface, ofport }
        } else {
            OvsLogEventKind::InterfaceDeleted { bridge, interface, ofport }
        };
        prop_assert_eq!(kind, want);
    }

    #[test]
    fn error_lines_name_interface_and_error(interface in name(), error in "[ -~]{0,30}[!-~]") {
        let line = format!(
            "2021-04-15T12:36:31Z|00597|netdev_linux|WARN|error receiving Ethernet packet on {interface}: {error}"
        );
        let (_, kind) = parse_line(&line).unwrap();
        prop_assert_eq!(kind, OvsLogEventKind::ReceiveError { interface: interface.clone(), error: error.clone() });
        let line = format!(
            "2021-04-15T12:36:33.200Z|00600|dpif|WARN|system@ovs-system: failed to query port {interface}: {error}"
        );
        let (_, kind) = parse_line(&line).unwrap();
        prop_assert_eq!(kind, OvsLogEventKind::QueryPortFailed {
            datapath: "system@ovs-system".into(),
            interface,
            error,
        });
    }

    /// Every line is counted, every parsed line counted by kind, and thinning only drops.
    #[test]
    fn reduce_counts_every_line(
        lines in prop::collection::vec(prop_oneof![
            (name(), 0i64..50).prop_map(|(i, p)| format!("2021-04-15T12:36:29.723Z|1|bridge|INFO|bridge br-int: added interface {i} on port {p}")),
            (name(), 0i64..50).prop_map(|(i, p)| format!("2021-04-15T12:36:30Z|2|bridge|INFO|bridge br-int: deleted interface {i} on port {p}")),
            name().prop_map(|i| format!("2021-04-15T12:36:31Z|3|netdev_linux|WARN|error receiving Ethernet packet on {i}: No such device")),
            "[^\n\r]{0,60}",
        ], 0..40),
    ) {
        let text = lines.join("\n");
        let log = reduce(&text, Some(1));
        prop_assert_eq!(log.lines_read, text.lines().count() as u64);
        let parsed = text.lines().filter(|l| parse_line(l).is_some()).count() as u64;
        prop_assert_eq!(log.counts.values().sum::<u64>(), parsed);
        prop_assert!(log.events.len() as u64 <= parsed);
        prop_assert!(log.events.windows(2).all(|w| w[0].line < w[1].line));
    }
}
