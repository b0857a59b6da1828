//! Wall-clock stamps as logs print them, turned into milliseconds since the Unix epoch.
//!
//! Logs print time in a handful of ways, most without a zone and some without a year:
//!
//! ```text
//! 2020-03-03T10:11:12.123456+00:00     RFC 3339 / ISO 8601 (rsyslog, journalctl -o short-iso, logrus)
//! 2020-03-03 10:11:12,123              the same with a space and a comma
//! Tue Mar  3 10:11:12 2020             dmesg -T (ctime)
//! Mar  3 10:11:12 / Mar 03 10:11:12.5  syslog, journalctl -o short (no year)
//! ```
//!
//! A stamp without a zone is read as UTC: it keeps its digits, so differences between the
//! stamps of one log are right, though the instant is off by the writer's zone. A stamp
//! without a year takes it from a hint (the year and month of the file's last modification:
//! a month after the hint's month is of the year before).

/// Months as logs abbreviate them.
pub const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Milliseconds since the epoch of a civil date and time in UTC (proleptic Gregorian
/// calendar, Howard Hinnant's days-from-civil). `None` for fields out of range.
pub fn civil_ms(
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    millis: u32,
) -> Option<i64> {
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
        || millis > 999
    {
        return None;
    }
    let (month, day) = (i64::from(month), i64::from(day));
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds =
        days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second);
    Some(seconds * 1000 + i64::from(millis))
}

/// The civil year and month (1–12) of a Unix time in seconds, in UTC.
pub fn year_month(unix_secs: i64) -> (i64, u32) {
    let z = unix_secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month as u32)
}

/// `YYYY-MM-DD HH:MM:SS` (and `.mmm` when there are milliseconds) of a time in
/// milliseconds since the epoch, without a zone: the digits of the stamp it was read from.
pub fn format_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let (year, month) = year_month(secs);
    let day_start = civil_ms(year, month, 1, 0, 0, 0, 0).unwrap_or(0) / 1000;
    let day = (secs - day_start) / 86_400 + 1;
    let in_day = secs.rem_euclid(86_400);
    let mut text = format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        in_day / 3600,
        (in_day % 3600) / 60,
        in_day % 60
    );
    if millis > 0 {
        text.push_str(&format!(".{millis:03}"));
    }
    text
}

/// Parses a stamp in any of the forms of the module documentation. `year_hint` is the year
/// and month the log was last written, for stamps without a year. `None` for anything else.
pub fn parse_stamp(text: &str, year_hint: Option<(i64, u32)>) -> Option<i64> {
    let text = text.trim();
    if let Some(ms) = parse_iso(text) {
        return Some(ms);
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    match words.as_slice() {
        // `Tue Mar  3 10:11:12 2020`
        [_weekday, month, day, time, year] => {
            let year: i64 = year.parse().ok()?;
            month_day_time(month, day, time, year)
        }
        // `Mar  3 10:11:12`
        [month, day, time] => {
            let month_number = month_number(month)?;
            let (hint_year, hint_month) = year_hint?;
            let year = if month_number > hint_month {
                hint_year - 1
            } else {
                hint_year
            };
            month_day_time(month, day, time, year)
        }
        _ => None,
    }
}

fn month_number(name: &str) -> Option<u32> {
    MONTHS.iter().position(|m| *m == name).map(|i| i as u32 + 1)
}

fn month_day_time(month: &str, day: &str, time: &str, year: i64) -> Option<i64> {
    let month = month_number(month)?;
    let day: u32 = day.parse().ok()?;
    let (hour, minute, second, millis) = parse_clock(time)?;
    civil_ms(year, month, day, hour, minute, second, millis)
}

/// `HH:MM:SS[.fraction]` (a comma works as the point).
pub fn parse_clock(text: &str) -> Option<(u32, u32, u32, u32)> {
    let (hms, fraction) = match text.split_once(['.', ',']) {
        Some((hms, fraction)) => (hms, fraction),
        None => (text, ""),
    };
    let mut parts = hms.split(':');
    let hour: u32 = digits(parts.next()?, 2)?;
    let minute: u32 = digits(parts.next()?, 2)?;
    let second: u32 = digits(parts.next()?, 2)?;
    if parts.next().is_some() || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let millis = fraction
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(3)
        .fold(0u32, |value, digit| value * 10 + u32::from(digit - b'0'));
    Some((hour, minute, second, millis))
}

fn digits(text: &str, len: usize) -> Option<u32> {
    (text.len() == len && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

/// `2020-03-03T10:11:12[.frac][Z|±hh:mm|±hhmm]`, `T` or a space between date and time.
pub fn parse_iso(text: &str) -> Option<i64> {
    let date = text.get(..10)?;
    let separator = text.as_bytes().get(10)?;
    if *separator != b'T' && *separator != b' ' {
        return None;
    }
    let mut date_parts = date.split('-');
    let year: i64 = i64::from(digits(date_parts.next()?, 4)?);
    let month = digits(date_parts.next()?, 2)?;
    let day = digits(date_parts.next()?, 2)?;
    let rest = &text[11..];
    // The clock runs to the zone: `Z`, `+`, or `-` (not inside the clock).
    let zone_at = rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len());
    let (hour, minute, second, millis) = parse_clock(&rest[..zone_at])?;
    let utc = civil_ms(year, month, day, hour, minute, second, millis)?;
    let zone = &rest[zone_at..];
    let offset_minutes: i64 = match zone.as_bytes().first() {
        None | Some(b'Z') | Some(b'z') => 0,
        Some(sign) => {
            let numbers: String = zone[1..].chars().filter(|c| *c != ':').collect();
            if numbers.len() != 4 || !numbers.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let hours: i64 = numbers[..2].parse().ok()?;
            let minutes: i64 = numbers[2..].parse().ok()?;
            let total = hours * 60 + minutes;
            if *sign == b'-' {
                -total
            } else {
                total
            }
        }
    };
    Some(utc - offset_minutes * 60_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS_2020_03_03_10_11_12: i64 = 1_583_230_272_000;

    #[test]
    fn every_form() {
        let hint = Some((2020, 6));
        for (text, ms) in [
            ("2020-03-03T10:11:12Z", MS_2020_03_03_10_11_12),
            (
                "2020-03-03T10:11:12.123456+00:00",
                MS_2020_03_03_10_11_12 + 123,
            ),
            ("2020-03-03T12:11:12+0200", MS_2020_03_03_10_11_12),
            ("2020-03-03T05:11:12-05:00", MS_2020_03_03_10_11_12),
            ("2020-03-03 10:11:12,5", MS_2020_03_03_10_11_12 + 500),
            ("2020-03-03T10:11:12", MS_2020_03_03_10_11_12),
            ("Tue Mar  3 10:11:12 2020", MS_2020_03_03_10_11_12),
            ("Mar  3 10:11:12", MS_2020_03_03_10_11_12),
            ("Mar 03 10:11:12.250", MS_2020_03_03_10_11_12 + 250),
        ] {
            assert_eq!(parse_stamp(text, hint), Some(ms), "{text}");
        }
        // A month after the hint's is of the year before.
        assert_eq!(
            parse_stamp("Dec 31 23:59:59", Some((2021, 1))),
            civil_ms(2020, 12, 31, 23, 59, 59, 0)
        );
        for bad in [
            "",
            "Mar",
            "Mar 3 10:11",
            "Foo 3 10:11:12",
            "2020-13-03T10:11:12Z",
            "Mar 3 10:11:12",
        ] {
            assert_eq!(parse_stamp(bad, None), None, "{bad}");
        }
        assert_eq!(parse_stamp("2020-03-03T10:11:12+2", None), None);
    }

    #[test]
    fn formats_back_to_its_digits() {
        assert_eq!(format_ms(MS_2020_03_03_10_11_12), "2020-03-03 10:11:12");
        assert_eq!(
            format_ms(MS_2020_03_03_10_11_12 + 5),
            "2020-03-03 10:11:12.005"
        );
        assert_eq!(year_month(951_782_400), (2000, 2));
        assert_eq!(format_ms(951_782_400_000), "2000-02-29 00:00:00");
    }
}
