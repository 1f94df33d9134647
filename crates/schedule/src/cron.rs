//! [`Schedule`]: a validated five-field cron expression.
//!
//! The grammar accepted is the part of cron that Vixie cron and cronie
//! (crontab), systemd timers (`OnCalendar=`) and Nomad (`periodic.crons`,
//! hashicorp/cronexpr) all read the same way:
//!
//! ```text
//! expression := field{5} | @yearly | @annually | @monthly | @weekly | @daily | @hourly
//! field      := item ("," item)*
//! item       := "*" ["/" step] | value ["-" value ["/" step]]
//! value      := number | three-letter name (months JAN–DEC, weekdays SUN–SAT)
//! ```
//!
//! Ranges: minute 0–59, hour 0–23, day of month 1–31, month 1–12, day of
//! week 0–7 (0 and 7 are Sunday), as in crontab(5). Everything croner accepts
//! beyond that (seconds and year fields, `L`, `W`, `#`, `?`, the `+` prefix,
//! `N/step`) is refused with a [`ScheduleError`] saying how to write it.
//! Parsing and next-run arithmetic are croner's; this module adds only the
//! checks above and the byte ranges for errors.

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use chrono::{DateTime, TimeZone};
use croner::Cron;

use crate::grammar::{
    check_day_fields, check_days_occur, check_field, field_count_error, parse_with_croner,
    split_fields,
};

/// One of the five fields of a cron expression, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// Minute, 0–59.
    Minute,
    /// Hour, 0–23.
    Hour,
    /// Day of month, 1–31.
    DayOfMonth,
    /// Month, 1–12 or JAN–DEC.
    Month,
    /// Day of week, 0–7 (0 and 7 are Sunday) or SUN–SAT.
    DayOfWeek,
}

impl Field {
    pub(crate) const ALL: [Field; 5] = [
        Field::Minute,
        Field::Hour,
        Field::DayOfMonth,
        Field::Month,
        Field::DayOfWeek,
    ];

    /// The smallest and largest value the field takes.
    pub fn bounds(self) -> (u8, u8) {
        match self {
            Field::Minute => (0, 59),
            Field::Hour => (0, 23),
            Field::DayOfMonth => (1, 31),
            Field::Month => (1, 12),
            Field::DayOfWeek => (0, 7),
        }
    }

    fn names(self) -> &'static [&'static str] {
        match self {
            Field::Month => &[
                "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
            ],
            Field::DayOfWeek => &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
            _ => &[],
        }
    }

    /// The value of a three-letter name (`JAN` = 1, `SUN` = 0), any case.
    pub(crate) fn name_value(self, name: &str) -> Option<u8> {
        let first = if self == Field::Month { 1 } else { 0 };
        self.names()
            .iter()
            .position(|n| n.eq_ignore_ascii_case(name))
            .and_then(|i| u8::try_from(i).ok())
            .map(|i| i + first)
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::Minute => "minute",
            Field::Hour => "hour",
            Field::DayOfMonth => "day-of-month",
            Field::Month => "month",
            Field::DayOfWeek => "day-of-week",
        })
    }
}

/// Why a cron expression was refused.
///
/// `message` says what is wrong and how to fix it; `span` is the byte range
/// within the expression it is about (the whole expression when no part of
/// it is to blame), for `retort check` to underline.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ScheduleError {
    /// What is wrong and how to write it instead.
    pub message: String,
    /// Byte range within the expression as given (before trimming).
    pub span: Range<usize>,
}

impl ScheduleError {
    pub(crate) fn new(message: impl Into<String>, span: Range<usize>) -> Self {
        ScheduleError {
            message: message.into(),
            span,
        }
    }
}

/// A validated five-field cron expression, e.g. `*/20 * * * *`.
///
/// Build it with [`Schedule::parse`] (or `str::parse`). It keeps the
/// expression as written ([`Schedule::as_str`]) and croner's parse of it.
#[derive(Debug, Clone)]
pub struct Schedule {
    text: String,
    /// The five fields after expanding a `@nickname`, as written otherwise.
    fields: [String; 5],
    cron: Cron,
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for Schedule {}

impl FromStr for Schedule {
    type Err = ScheduleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Schedule::parse(s)
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The five-field form of each `@nickname` crontab(5) and croner share.
const NICKNAMES: [(&str, &str); 6] = [
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
    ("@monthly", "0 0 1 * *"),
    ("@weekly", "0 0 * * 0"),
    ("@daily", "0 0 * * *"),
    ("@hourly", "0 * * * *"),
];

impl Schedule {
    /// Parses and validates `expression`.
    ///
    /// # Errors
    /// A [`ScheduleError`] when the expression is not five fields of the
    /// grammar in the module documentation, a value is out of its field's
    /// range, a range runs backwards, a step is 0, the days can never occur
    /// (`0 0 30 2 *`), or the day fields are written in a way crontab and
    /// croner read differently (`*/2` in one day field while the other is
    /// restricted: write `1-31/2`).
    pub fn parse(expression: &str) -> Result<Schedule, ScheduleError> {
        let whole = 0..expression.len();
        let trimmed = expression.trim();
        if trimmed.is_empty() {
            return Err(ScheduleError::new(
                "the schedule is empty: write five fields, minute hour day-of-month month \
                 day-of-week, e.g. `*/20 * * * *`",
                whole,
            ));
        }
        if let Some(nick) = trimmed.strip_prefix('@') {
            return Self::parse_nickname(expression, nick, whole);
        }
        let words = split_fields(expression);
        if words.len() != 5 {
            return Err(field_count_error(words.len(), whole));
        }
        let mut fields: [String; 5] = Default::default();
        for ((field, (text, start)), slot) in Field::ALL.iter().zip(&words).zip(&mut fields) {
            check_field(*field, text, *start)?;
            *slot = (*text).to_string();
        }
        check_day_fields(&words)?;
        let cron = parse_with_croner(&fields.join(" "), whole)?;
        check_days_occur(&cron, &words)?;
        Ok(Schedule {
            text: expression.to_string(),
            fields,
            cron,
        })
    }

    fn parse_nickname(
        expression: &str,
        nick: &str,
        whole: Range<usize>,
    ) -> Result<Schedule, ScheduleError> {
        let Some((_, five)) = NICKNAMES
            .iter()
            .find(|(name, _)| name[1..].eq_ignore_ascii_case(nick))
        else {
            let hint = if nick.eq_ignore_ascii_case("reboot") {
                "`@reboot` is not a time of day; retort schedules run at times"
            } else {
                "unknown nickname"
            };
            return Err(ScheduleError::new(
                format!(
                    "{hint}: use one of @hourly, @daily, @weekly, @monthly, @yearly, or five \
                     fields such as `0 0 * * *`"
                ),
                whole,
            ));
        };
        let parsed = Schedule::parse(five)?;
        Ok(Schedule {
            text: expression.to_string(),
            ..parsed
        })
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The five fields (a `@nickname` expanded), e.g. `["*/20", "*", "*", "*", "*"]`.
    pub fn fields(&self) -> &[String; 5] {
        &self.fields
    }

    /// The expression in the form every crontab and cronexpr version reads
    /// alike: names as numbers, a day of week of 7 written 0. Steps, ranges
    /// and the `*` of each field are kept, so the day-of-month/day-of-week
    /// rule (either matches, when both are restricted) reads the same.
    pub fn portable(&self) -> String {
        let mut out = Vec::with_capacity(5);
        for (field, text) in Field::ALL.iter().zip(&self.fields) {
            out.push(portable_field(*field, text));
        }
        out.join(" ")
    }

    /// Croner's parse of the expression.
    pub fn cron(&self) -> &Cron {
        &self.cron
    }

    /// The values a field matches, ascending (day of week: 0–6, Sunday 0).
    pub fn values(&self, field: Field) -> Vec<u8> {
        let p = &self.cron.pattern;
        let component = match field {
            Field::Minute => &p.minutes,
            Field::Hour => &p.hours,
            Field::DayOfMonth => &p.days,
            Field::Month => &p.months,
            Field::DayOfWeek => &p.days_of_week,
        };
        component
            .values()
            .into_iter()
            .filter_map(|v| u8::try_from(v).ok())
            .collect()
    }

    /// Whether the day-of-month field is restricted (anything but `*`).
    pub fn restricts_day_of_month(&self) -> bool {
        !self.cron.pattern.is_dom_wildcard()
    }

    /// Whether the day-of-week field is restricted (anything but `*`).
    pub fn restricts_day_of_week(&self) -> bool {
        !self.cron.pattern.is_dow_wildcard()
    }

    /// The next `n` run times strictly after `after`, in `after`'s time
    /// zone, for `retort schedule list`. Fewer than `n` only if croner's
    /// search gives up (it searches up to year 5000; validation refuses
    /// schedules that never run).
    pub fn next_runs<Tz: TimeZone>(&self, after: &DateTime<Tz>, n: usize) -> Vec<DateTime<Tz>> {
        self.cron
            .clone()
            .iter_after(after.clone())
            .take(n)
            .collect()
    }
}

/// One field with names turned into numbers and a weekday 7 into 0.
fn portable_field(field: Field, text: &str) -> String {
    if !matches!(field, Field::Month | Field::DayOfWeek) {
        return text.to_string();
    }
    let mut items = Vec::new();
    for item in text.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (item, None),
        };
        let number = |v: &str| -> String {
            match field.name_value(v) {
                Some(n) => n.to_string(),
                None => v.to_string(),
            }
        };
        let mut out = match range.split_once('-') {
            // A weekday range ending at 7 (Sunday) is listed out: old
            // cronexpr versions (Nomad) dropped the Sunday of `5-7`.
            Some((a, b)) if field == Field::DayOfWeek && number(b) == "7" => {
                let lo: u8 = number(a).parse().unwrap_or(0);
                let step: usize = step.and_then(|s| s.parse().ok()).unwrap_or(1).max(1);
                let mut list: Vec<String> = Vec::new();
                for d in (lo..=7).step_by(step).map(|d| (d % 7).to_string()) {
                    if !list.contains(&d) {
                        list.push(d);
                    }
                }
                items.push(list.join(","));
                continue;
            }
            Some((a, b)) => format!("{}-{}", number(a), number(b)),
            None if field == Field::DayOfWeek && number(range) == "7" => "0".to_string(),
            None => number(range),
        };
        if let Some(s) = step {
            out.push('/');
            out.push_str(s);
        }
        items.push(out);
    }
    items.join(",")
}
