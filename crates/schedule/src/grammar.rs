//! The checks behind [`crate::Schedule::parse`]: the five-field grammar
//! every target reads alike (see the `cron` module), each refusal with the
//! byte range it is about; then croner's parse, and a check that the days
//! can occur.

use std::ops::Range;

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

use crate::cron::{Field, ScheduleError};

/// Each whitespace-separated word of `s` with its byte offset.
pub(crate) fn split_fields(s: &str) -> Vec<(&str, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in s.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(b)) => {
                out.push((&s[b..i], b));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(b) = start {
        out.push((&s[b..], b));
    }
    out
}

pub(crate) fn field_count_error(count: usize, whole: Range<usize>) -> ScheduleError {
    let message = match count {
        6 | 7 => format!(
            "found {count} fields; retort schedules have five (minute hour day-of-month month \
             day-of-week). A sixth field is seconds (croner, Quartz) or a year, which crontab and \
             systemd timers here cannot express: remove it, e.g. `0 */20 * * * *` becomes \
             `*/20 * * * *`"
        ),
        _ => format!(
            "found {count} field{}; write five: minute hour day-of-month month day-of-week, e.g. \
             `*/20 * * * *`",
            if count == 1 { "" } else { "s" }
        ),
    };
    ScheduleError::new(message, whole)
}

/// Checks one field against the grammar and its range.
pub(crate) fn check_field(field: Field, text: &str, start: usize) -> Result<(), ScheduleError> {
    let mut offset = start;
    for item in text.split(',') {
        let span = offset..offset + item.len();
        offset += item.len() + 1;
        if item.is_empty() {
            return Err(ScheduleError::new(
                format!("empty item in the {field} field: remove the extra `,`"),
                span,
            ));
        }
        if item == "*" && text != "*" {
            return Err(ScheduleError::new(
                format!(
                    "`*` inside a list in the {field} field: croner refuses it and Nomad \
                     reads it differently; `*` already means every value: write `*` alone"
                ),
                span,
            ));
        }
        check_item(field, item, span)?;
    }
    Ok(())
}

fn check_item(field: Field, item: &str, span: Range<usize>) -> Result<(), ScheduleError> {
    if let Some(bad) = item.find(['?', 'L', 'l', 'W', 'w', '#', '+']).filter(|_| {
        // A name like `JUL` or `WED` contains L or W: only flag the
        // extensions when the item is not made of names.
        !item
            .split(['-', '/'])
            .all(|part| field.name_value(part).is_some() || part.parse::<u32>().is_ok())
    }) {
        let at = span.start + bad..span.start + bad + 1;
        let what = match item.as_bytes()[bad] {
            b'?' => "`?` is croner's and Quartz's; crontab has no `?`: write `*`".to_string(),
            b'#' => "`#` (nth weekday of the month) is croner's; crontab and systemd cannot \
                     express it: use a day-of-month range with the weekday in the formula's \
                     steps, or a plain weekday"
                .to_string(),
            b'+' => "`+` (day of month AND day of week) is croner's; crontab and systemd read \
                     cron's either-matches rule only: drop the `+`, or restrict one day field"
                .to_string(),
            _ => format!(
                "`{}` (last day / nearest weekday) is croner's; crontab and systemd cannot \
                 express it: list the days instead, e.g. `28-31` for the end of the month",
                &item[bad..bad + 1]
            ),
        };
        return Err(ScheduleError::new(
            format!("{what} (in the {field} field)"),
            at,
        ));
    }
    let (range_text, step) = match item.split_once('/') {
        Some((r, s)) => (r, Some((s, span.start + r.len() + 1))),
        None => (item, None),
    };
    if let Some((step_text, step_at)) = step {
        let step_span = step_at..step_at + step_text.len();
        match step_text.parse::<u32>() {
            Ok(0) => {
                return Err(ScheduleError::new(
                    format!("a step of 0 in the {field} field never advances: use 1 or more"),
                    step_span,
                ));
            }
            Ok(step) if step > u32::from(step_max(field)) => {
                return Err(ScheduleError::new(
                    format!(
                        "a step of {step} is larger than the {field} field (at most {}); Nomad \
                         refuses it, and it selects only the first value: write that value",
                        step_max(field)
                    ),
                    step_span,
                ));
            }
            Ok(_) => {}
            Err(_) => {
                return Err(ScheduleError::new(
                    format!("`{step_text}` is not a step: write a whole number after `/`"),
                    step_span,
                ));
            }
        }
        if range_text != "*" && !range_text.contains('-') {
            return Err(ScheduleError::new(
                format!(
                    "`{item}`: a step needs a range; crontab implementations disagree on \
                     `N/step`: write `*/{s}` or `{range_text}-{max}/{s}`",
                    s = step_text,
                    max = field
                        .bounds()
                        .1
                        .min(if field == Field::DayOfWeek { 6 } else { 59 })
                ),
                span,
            ));
        }
    }
    if range_text == "*" {
        return Ok(());
    }
    let (lo_text, hi_text) = match range_text.split_once('-') {
        Some((a, b)) => (a, Some(b)),
        None => (range_text, None),
    };
    let lo = value(field, lo_text, span.start)?;
    if let Some(hi_text) = hi_text {
        let hi_at = span.start + lo_text.len() + 1;
        let hi = value(field, hi_text, hi_at)?;
        if hi < lo {
            let (min, max) = field.bounds();
            let fix = if field == Field::DayOfWeek && hi == 0 {
                format!("{lo}-7 (7 is Sunday)")
            } else if field == Field::DayOfWeek {
                format!("{lo}-6,0-{hi}")
            } else {
                format!("{lo}-{max},{min}-{hi}")
            };
            return Err(ScheduleError::new(
                format!(
                    "the range `{range_text}` in the {field} field runs backwards; crontab does \
                     not wrap around: write `{fix}`"
                ),
                span.start..span.start + range_text.len(),
            ));
        }
    }
    Ok(())
}

/// The largest step every implementation takes: the field's largest value
/// (hashicorp/cronexpr, which Nomad uses, refuses more), 6 for weekdays.
fn step_max(field: Field) -> u8 {
    match field {
        Field::DayOfWeek => 6,
        other => other.bounds().1,
    }
}

/// A number or name in `field`, checked against the field's range.
fn value(field: Field, text: &str, at: usize) -> Result<u8, ScheduleError> {
    let span = at..at + text.len();
    let (min, max) = field.bounds();
    if let Some(v) = field.name_value(text) {
        return Ok(v);
    }
    let Ok(v) = text.parse::<u32>() else {
        let names = match field {
            Field::Month => " or a name JAN–DEC",
            Field::DayOfWeek => " or a name SUN–SAT",
            _ => "",
        };
        return Err(ScheduleError::new(
            format!("`{text}` is not a {field} value: write a number {min}–{max}{names}"),
            span,
        ));
    };
    match u8::try_from(v) {
        Ok(v) if (min..=max).contains(&v) => Ok(v),
        _ => {
            let sunday = if field == Field::DayOfWeek {
                " (0 and 7 are Sunday)"
            } else {
                ""
            };
            Err(ScheduleError::new(
                format!("{v} is out of range for the {field} field: use {min}–{max}{sunday}"),
                span,
            ))
        }
    }
}

/// Refuses `*/N` in a day field while the other day field is restricted:
/// Vixie cron and cronie then require both fields to match (they test
/// whether the field starts with `*`), croner and cronexpr (Nomad) either.
pub(crate) fn check_day_fields(words: &[(&str, usize)]) -> Result<(), ScheduleError> {
    let (dom, dom_at) = words[2];
    let (dow, dow_at) = words[4];
    for ((text, at), other, name, full) in [
        ((dom, dom_at), dow, Field::DayOfMonth, "1-31"),
        ((dow, dow_at), dom, Field::DayOfWeek, "0-6"),
    ] {
        if text == "*" || other == "*" || !text.split(',').any(|i| i.starts_with('*')) {
            continue;
        }
        let fixed: Vec<String> = text
            .split(',')
            .map(|i| match i.strip_prefix('*') {
                Some(rest) => format!("{full}{rest}"),
                None => i.to_string(),
            })
            .collect();
        return Err(ScheduleError::new(
            format!(
                "`{text}` in the {name} field while the other day field is restricted: crontab \
                 (Vixie, cronie) then runs only when BOTH day fields match, croner and Nomad \
                 when EITHER does. Write `{}` for either-matches (cron's usual rule)",
                fixed.join(",")
            ),
            at..at + text.len(),
        ));
    }
    Ok(())
}

pub(crate) fn parse_with_croner(five: &str, whole: Range<usize>) -> Result<Cron, ScheduleError> {
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
        .parse(five)
        .map_err(|e| ScheduleError::new(format!("croner refused the schedule: {e}"), whole))
}

/// Refuses a day-of-month that occurs in none of the months given
/// (`0 0 30 2 *`), unless the day of week is restricted too (then a run
/// happens on those weekdays).
pub(crate) fn check_days_occur(cron: &Cron, words: &[(&str, usize)]) -> Result<(), ScheduleError> {
    let p = &cron.pattern;
    if p.is_dom_wildcard() || !p.is_dow_wildcard() {
        return Ok(());
    }
    const LONGEST: [u16; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let days = p.days.values();
    let occurs = p.months.values().iter().any(|&m| {
        let longest = LONGEST[usize::from(m.saturating_sub(1)).min(11)];
        days.iter().any(|&d| d <= longest)
    });
    if occurs {
        return Ok(());
    }
    let (dom, at) = words[2];
    Err(ScheduleError::new(
        format!(
            "day {dom} never occurs in month(s) {}: the schedule would never run; pick days \
             that exist in those months",
            words[3].0
        ),
        at..at + dom.len(),
    ))
}
