//! What a schedule accepts, what it refuses (message and span), and its
//! next run times.

use chrono::{TimeZone, Utc};
use retort_schedule::{Field, Schedule};

/// The error for `expr`, with the text its span covers.
fn refused(expr: &str) -> (String, String) {
    let e = Schedule::parse(expr).expect_err(expr);
    assert!(e.span.end <= expr.len(), "{expr}: span {:?}", e.span);
    (e.message, expr[e.span].to_string())
}

#[test]
fn the_founding_routines_parse() {
    for expr in [
        "*/20 * * * *", // supervisor
        "0 0 * * *",    // daily update
        "0 2 * * *",    // config review
        "0 3 * * 0",    // weekly security review
        "0 9 * * MON",  // weekly report
        "0 4 */3 * *",  // every 3 days
        "0 5 1,16 * *", // every 15 days
        "@daily",
        "@weekly",
        "  */20 * * * *  ",
    ] {
        Schedule::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
    }
}

#[test]
fn seconds_and_year_fields_are_refused() {
    let (msg, span) = refused("0 */20 * * * *");
    assert!(msg.contains("found 6 fields"), "{msg}");
    assert!(msg.contains("`*/20 * * * *`"), "{msg}");
    assert_eq!(span, "0 */20 * * * *");
    let (msg, _) = refused("0 0 0 * * * 2030");
    assert!(msg.contains("found 7 fields"), "{msg}");
    let (msg, _) = refused("* * *");
    assert!(msg.contains("found 3 fields"), "{msg}");
    let (msg, _) = refused("   ");
    assert!(msg.contains("empty"), "{msg}");
}

#[test]
fn croner_extensions_are_refused_at_the_character() {
    let cases = [
        ("0 0 L * *", "L", "28-31"),
        ("0 0 15W * *", "W", "list the days"),
        ("0 0 * * 5#2", "#", "nth weekday"),
        ("0 0 1 * +MON", "+", "drop the `+`"),
        ("0 0 ? * MON", "?", "write `*`"),
        ("0 0 * * 5L", "L", "list the days"),
    ];
    for (expr, at, fix) in cases {
        let (msg, span) = refused(expr);
        assert_eq!(span, at, "{expr}: {msg}");
        assert!(msg.contains(fix), "{expr}: {msg}");
    }
}

#[test]
fn names_with_l_and_w_are_names() {
    let s = Schedule::parse("0 0 * JUL WED").unwrap();
    assert_eq!(s.values(Field::Month), [7]);
    assert_eq!(s.values(Field::DayOfWeek), [3]);
    Schedule::parse("0 0 * jul-dec mon-fri").unwrap();
}

#[test]
fn values_out_of_range_name_the_field_and_the_range() {
    let (msg, span) = refused("60 * * * *");
    assert_eq!(span, "60");
    assert!(msg.contains("minute") && msg.contains("0–59"), "{msg}");
    let (msg, span) = refused("0 24 * * *");
    assert_eq!(span, "24");
    assert!(msg.contains("0–23"), "{msg}");
    let (msg, span) = refused("0 0 0 * *");
    assert_eq!(span, "0");
    assert!(
        msg.contains("day-of-month") && msg.contains("1–31"),
        "{msg}"
    );
    let (msg, span) = refused("0 0 * 1-13 *");
    assert_eq!(span, "13");
    assert!(msg.contains("month"), "{msg}");
    let (msg, span) = refused("0 0 * * 8");
    assert_eq!(span, "8");
    assert!(msg.contains("0 and 7 are Sunday"), "{msg}");
    let (msg, span) = refused("0 0 * * MOX");
    assert_eq!(span, "MOX");
    assert!(msg.contains("SUN–SAT"), "{msg}");
}

#[test]
fn syntax_mistakes_point_at_the_item() {
    let (msg, span) = refused("5/10 * * * *");
    assert_eq!(span, "5/10");
    assert!(msg.contains("`*/10` or `5-59/10`"), "{msg}");
    let (msg, span) = refused("*/0 * * * *");
    assert_eq!(span, "0");
    assert!(msg.contains("never advances"), "{msg}");
    let (msg, span) = refused("0 22-2 * * *");
    assert_eq!(span, "22-2");
    assert!(msg.contains("`22-23,0-2`"), "{msg}");
    let (msg, span) = refused("0 0 * * FRI-SUN");
    assert_eq!(span, "FRI-SUN");
    assert!(msg.contains("5-7"), "{msg}");
    let (msg, span) = refused("0,,5 * * * *");
    assert_eq!(span, "");
    assert!(msg.contains("extra `,`"), "{msg}");
    let (msg, span) = refused("0 0 * 5,* *");
    assert_eq!(span, "*");
    assert!(msg.contains("write `*` alone"), "{msg}");
    let (msg, span) = refused("*/60 * * * *");
    assert_eq!(span, "60");
    assert!(msg.contains("at most 59"), "{msg}");
    let (msg, span) = refused("0 0 * * 1-5/7");
    assert_eq!(span, "7");
    assert!(msg.contains("at most 6"), "{msg}");
    let (msg, _) = refused("@reboot");
    assert!(msg.contains("@reboot"), "{msg}");
}

#[test]
fn spans_count_bytes_of_the_text_as_given() {
    // Leading spaces and a tab before the bad field.
    let expr = "  0\t0 * * 9";
    let e = Schedule::parse(expr).unwrap_err();
    assert_eq!(&expr[e.span.clone()], "9");
    assert_eq!(e.span, 10..11);
}

#[test]
fn ambiguous_star_step_day_fields_are_refused() {
    let (msg, span) = refused("0 0 */2 * MON");
    assert_eq!(span, "*/2");
    assert!(msg.contains("BOTH") && msg.contains("`1-31/2`"), "{msg}");
    let (msg, span) = refused("0 0 1 * */2");
    assert_eq!(span, "*/2");
    assert!(msg.contains("`0-6/2`"), "{msg}");
    let (msg, _) = refused("0 0 1,*/7 * MON");
    assert!(msg.contains("`1,1-31/7`"), "{msg}");
    // Alone, a starred step is plain.
    Schedule::parse("0 0 */2 * *").unwrap();
}

#[test]
fn days_that_never_occur_are_refused() {
    let (msg, span) = refused("0 0 30 2 *");
    assert_eq!(span, "30");
    assert!(msg.contains("never"), "{msg}");
    // February 29th occurs in leap years; the 31st in some listed month.
    Schedule::parse("0 0 29 2 *").unwrap();
    Schedule::parse("0 0 31 2,3 *").unwrap();
    // With a weekday too, cron runs on those weekdays.
    Schedule::parse("0 0 30 2 MON").unwrap();
}

#[test]
fn portable_form_uses_numbers_and_sunday_0() {
    let p = |e: &str| Schedule::parse(e).unwrap().portable();
    assert_eq!(p("0 9 * JAN-MAR MON-FRI"), "0 9 * 1-3 1-5");
    assert_eq!(p("0 9 * * 7"), "0 9 * * 0");
    assert_eq!(p("0 9 * * 5-7"), "0 9 * * 5,6,0");
    assert_eq!(p("0 9 * * 1-7/2"), "0 9 * * 1,3,5,0");
    assert_eq!(p("0 9 * * 0-7"), "0 9 * * 0,1,2,3,4,5,6");
    assert_eq!(p("@weekly"), "0 0 * * 0");
    assert_eq!(p("*/20 * * * *"), "*/20 * * * *");
}

#[test]
fn next_runs_follow_the_expression() {
    let after = Utc.with_ymd_and_hms(2026, 1, 1, 0, 5, 0).unwrap();
    let s = Schedule::parse("*/20 * * * *").unwrap();
    let runs: Vec<String> = s
        .next_runs(&after, 3)
        .iter()
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .collect();
    assert_eq!(
        runs,
        ["2026-01-01 00:20", "2026-01-01 00:40", "2026-01-01 01:00"]
    );
    // Strictly after: a run time given as `after` is not repeated.
    let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 20, 0).unwrap();
    assert_eq!(
        s.next_runs(&at, 1)[0],
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 40, 0).unwrap()
    );
    // Either day field: 1st of the month or a Monday (2026-01-05).
    let either = Schedule::parse("0 0 1 * MON").unwrap();
    let days: Vec<u32> = either
        .next_runs(&after, 3)
        .iter()
        .map(chrono::Datelike::day)
        .collect();
    assert_eq!(days, [5, 12, 19]);
}
