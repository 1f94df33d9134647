//! Random cron expressions, built from the whole grammar (and some of what
//! it refuses), either translate to `OnCalendar=` lines whose elapses match
//! croner's next runs, or are refused with a message and a span inside the
//! expression. Each case checks a batch of expressions with one
//! `systemd-analyze calendar` call (~10 ms a call).

mod common;

use chrono::{TimeZone, Utc};
use common::{assert_systemd_matches_croner, systemd_analyze};
use proptest::prelude::*;
use retort_schedule::Schedule;

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// A value of a field with bounds `min..=max`.
fn value(min: u8, max: u8) -> BoxedStrategy<u8> {
    (min..=max).boxed()
}

/// `v` as a number, or as a name when `as_name` and the field has names:
/// months (`names` = `Some(1)`) and weekdays (`Some(0)`).
fn show(v: u8, names: Option<u8>, as_name: bool) -> String {
    match (names, as_name) {
        (Some(1), true) => MONTHS[usize::from(v.clamp(1, 12) - 1)].to_string(),
        (Some(0), true) if v <= 6 => DAYS[usize::from(v)].to_string(),
        _ => v.to_string(),
    }
}

/// One valid list item: `V`, `A-B`, `A-B/S` (A ≤ B, S no more than the
/// field's largest value, 6 for weekdays).
fn item(min: u8, max: u8, names: Option<u8>) -> BoxedStrategy<String> {
    let v = value(min, max);
    let pair = (v.clone(), v.clone()).prop_map(|(a, b)| (a.min(b), a.max(b)));
    let step_max = if max == 7 { 6 } else { max };
    prop_oneof![
        4 => (v, any::<bool>()).prop_map(move |(a, n)| show(a, names, n)),
        3 => (pair.clone(), any::<bool>())
            .prop_map(move |((a, b), n)| format!("{}-{}", show(a, names, n), show(b, names, n))),
        2 => (pair, 1..=step_max, any::<bool>()).prop_map(move |((a, b), s, n)| {
            format!("{}-{}/{s}", show(a, names, n), show(b, names, n))
        }),
    ]
    .boxed()
}

/// Something the grammar refuses, to put in place of a field.
fn refused_field() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "L", "15W", "5#2", "?", "3/5", "60", "22-2", "*/0", "1,,2", "+MON", "X",
    ])
    .prop_map(String::from)
}

/// A field: `*` or `*/S` alone, or a list of one to three items.
fn field(min: u8, max: u8, names: Option<u8>) -> impl Strategy<Value = String> {
    let step_max = if max == 7 { 6 } else { max };
    prop_oneof![
        3 => Just("*".to_string()),
        1 => (1..=step_max).prop_map(|s| format!("*/{s}")),
        4 => prop::collection::vec(item(min, max, names), 1..=3).prop_map(|items| items.join(",")),
    ]
}

fn expression() -> impl Strategy<Value = String> {
    let fields = (
        field(0, 59, None),
        field(0, 23, None),
        field(1, 31, None),
        field(1, 12, Some(1)),
        field(0, 7, Some(0)),
    )
        .prop_map(|(m, h, dom, mon, dow)| [m, h, dom, mon, dow]);
    // One expression in six gets a refused form in one field.
    (fields, 0..30usize, refused_field()).prop_map(|(mut fields, at, bad)| {
        if at < fields.len() {
            fields[at] = bad;
        }
        fields.join(" ")
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 16,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn translated_or_refused(batch in prop::collection::vec(expression(), 40)) {
        let mut accepted = Vec::new();
        for expr in &batch {
            match Schedule::parse(expr) {
                Ok(s) => accepted.push(s),
                Err(e) => {
                    prop_assert!(!e.message.is_empty(), "{expr}");
                    // Our checks, with their spans, catch what croner would refuse.
                    prop_assert!(!e.message.starts_with("croner refused"), "{expr}: {}", e.message);
                    prop_assert!(e.span.end <= expr.len() && e.span.start <= e.span.end,
                        "{expr}: span {:?}", e.span);
                }
            }
        }
        let Some(analyze) = systemd_analyze() else { return Ok(()) };
        let base = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
        assert_systemd_matches_croner(&analyze, &accepted, &[base], 6);
    }
}

/// The generator is not so refusal-heavy that nothing gets translated.
#[test]
fn the_generator_yields_both_outcomes() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut ok, mut refused) = (0, 0);
    for _ in 0..300 {
        let expr = expression().new_tree(&mut runner).unwrap().current();
        match Schedule::parse(&expr) {
            Ok(_) => ok += 1,
            Err(e) => {
                refused += 1;
                assert!(
                    !e.message.starts_with("croner refused"),
                    "{expr}: {}",
                    e.message
                );
                if refused < 6 {
                    eprintln!("{expr}: {}", e.message);
                }
            }
        }
    }
    eprintln!("accepted {ok}, refused {refused} of 300");
    assert!(
        ok >= 60 && refused >= 60,
        "accepted {ok}, refused {refused}"
    );
}
