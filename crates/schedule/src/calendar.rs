//! Cron → systemd `OnCalendar=` translation.
//!
//! Works from the value sets croner computed for each field, so every form
//! the grammar allows (lists, ranges, steps, names, weekday 7) comes out the
//! same way. Each set is written compactly in systemd.time(7) syntax: `*`
//! for every value, `A/S` for an arithmetic run from A to the field's end
//! (`*/20` → `00/20`), `A..B` for a contiguous run of three or more, values
//! joined by `,` otherwise. Weekdays are `Mon`…`Sun`.
//!
//! Cron runs a job when EITHER day field matches if both are restricted
//! (crontab(5)); systemd requires every component to match. Such a schedule
//! becomes two expressions, one per day field, whose union is the cron
//! schedule.

use crate::cron::{Field, Schedule};

/// The `OnCalendar=` expressions (one, or two for cron's either-day rule)
/// equivalent to `schedule`, e.g. `*-*-* *:00/20:00` for `*/20 * * * *`.
/// With `time_zone` (an IANA name such as `UTC`) each ends in it, as
/// systemd.time(7) allows; without, they are in the machine's time zone.
pub fn on_calendar(schedule: &Schedule, time_zone: Option<&str>) -> Vec<String> {
    let minutes = component(&schedule.values(Field::Minute), 0, 59);
    let hours = component(&schedule.values(Field::Hour), 0, 23);
    let months = component(&schedule.values(Field::Month), 1, 12);
    let days = component(&schedule.values(Field::DayOfMonth), 1, 31);
    let weekdays = weekdays(&schedule.values(Field::DayOfWeek));
    let time = format!("{hours}:{minutes}:00");
    let zone = time_zone.map(|z| format!(" {z}")).unwrap_or_default();
    let dom = schedule.restricts_day_of_month();
    let dow = schedule.restricts_day_of_week();
    let with_days = format!("*-{months}-{days} {time}{zone}");
    let with_weekdays = format!("{weekdays} *-{months}-* {time}{zone}");
    match (dom, dow) {
        (true, true) => vec![with_days, with_weekdays],
        (false, true) => vec![with_weekdays],
        _ => vec![with_days],
    }
}

/// A set of values in `min..=max` in systemd's component syntax.
fn component(values: &[u8], min: u8, max: u8) -> String {
    if values.len() == usize::from(max - min) + 1 {
        return "*".to_string();
    }
    let width = if max > 9 { 2 } else { 1 };
    let num = |v: u8| format!("{v:0width$}");
    if let Some((start, step)) = progression_to_end(values, max) {
        return format!("{}/{}", num(start), step);
    }
    runs(values)
        .into_iter()
        .map(|(a, b)| match b - a {
            0 => num(a),
            1 => format!("{},{}", num(a), num(b)),
            _ => format!("{}..{}", num(a), num(b)),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// `(start, step)` when `values` (three or more) are `start, start+step, …`
/// up to the last that fits under `max`; that is what systemd's `start/step`
/// means.
fn progression_to_end(values: &[u8], max: u8) -> Option<(u8, u8)> {
    let (&first, &second) = (values.first()?, values.get(1)?);
    if values.len() < 3 {
        return None;
    }
    let step = second - first;
    let regular = values.windows(2).all(|w| w[1] - w[0] == step);
    let last = *values.last()?;
    (regular && u16::from(last) + u16::from(step) > u16::from(max)).then_some((first, step))
}

/// Contiguous runs `(first, last)` of sorted values.
fn runs(values: &[u8]) -> Vec<(u8, u8)> {
    let mut out: Vec<(u8, u8)> = Vec::new();
    for &v in values {
        match out.last_mut() {
            Some((_, last)) if *last + 1 == v => *last = v,
            _ => out.push((v, v)),
        }
    }
    out
}

/// Weekday values (0–6, Sunday 0) as systemd names, Monday first, runs of
/// three or more as `Mon..Fri`.
fn weekdays(values: &[u8]) -> String {
    const NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    // Monday-first positions 0–6 (systemd's week), Sunday last.
    let mut positions: Vec<u8> = values.iter().map(|&d| (d + 6) % 7).collect();
    positions.sort_unstable();
    positions.dedup();
    let name = |p: u8| NAMES[usize::from(p).min(6)];
    runs(&positions)
        .into_iter()
        .map(|(a, b)| match b - a {
            0 => name(a).to_string(),
            1 => format!("{},{}", name(a), name(b)),
            _ => format!("{}..{}", name(a), name(b)),
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cal(expr: &str) -> Vec<String> {
        on_calendar(&Schedule::parse(expr).unwrap(), None)
    }

    #[test]
    fn steps_become_repetitions() {
        assert_eq!(cal("*/20 * * * *"), ["*-*-* *:00/20:00"]);
        assert_eq!(cal("5-59/15 */6 * * *"), ["*-*-* 00/6:05/15:00"]);
    }

    #[test]
    fn lists_and_ranges() {
        assert_eq!(cal("0,30 9-17 * * *"), ["*-*-* 09..17:00,30:00"]);
        assert_eq!(cal("0 0 1,15 1-3 *"), ["*-01..03-01,15 00:00:00"]);
        assert_eq!(cal("0 12 * JAN,JUL *"), ["*-01,07-* 12:00:00"]);
        // A step that stops short of the field's end is listed.
        assert_eq!(cal("0-20/10 * * * *"), ["*-*-* *:00,10,20:00"]);
    }

    #[test]
    fn weekdays_sunday_is_0_and_7() {
        assert_eq!(cal("0 3 * * 0"), ["Sun *-*-* 03:00:00"]);
        assert_eq!(cal("0 3 * * 7"), ["Sun *-*-* 03:00:00"]);
        assert_eq!(cal("0 3 * * SUN"), ["Sun *-*-* 03:00:00"]);
        assert_eq!(cal("0 9 * * MON-FRI"), ["Mon..Fri *-*-* 09:00:00"]);
        assert_eq!(cal("0 9 * * 5-7"), ["Fri..Sun *-*-* 09:00:00"]);
        assert_eq!(cal("0 9 * * 0,6"), ["Sat,Sun *-*-* 09:00:00"]);
    }

    #[test]
    fn either_day_field_gives_two_lines() {
        assert_eq!(
            cal("0 0 1 * MON"),
            ["*-*-01 00:00:00", "Mon *-*-* 00:00:00"]
        );
        // Every day of the month written out still counts as restricted.
        assert_eq!(
            cal("0 0 1-31 * MON"),
            ["*-*-* 00:00:00", "Mon *-*-* 00:00:00"]
        );
    }

    #[test]
    fn time_zone_is_appended() {
        let s = Schedule::parse("0 0 * * *").unwrap();
        assert_eq!(on_calendar(&s, Some("UTC")), ["*-*-* 00:00:00 UTC"]);
    }

    #[test]
    fn nicknames() {
        assert_eq!(cal("@weekly"), ["Sun *-*-* 00:00:00"]);
        assert_eq!(cal("@hourly"), ["*-*-* *:00:00"]);
    }
}
