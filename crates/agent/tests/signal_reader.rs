//! Properties of the signal-file reader (`retort_agent::signal::parse_record`):
//! whatever the bytes, it never panics; a record half-written (any prefix
//! of one) is never taken for a different record; a valid record always
//! reads back as written, its reason cleaned.

use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;
use retort_agent::signal::{Signal, SignalRecord, parse_record};
use retort_os::clean::{REASON_CAP, one_line};

fn signal() -> impl Strategy<Value = Signal> {
    prop_oneof![
        Just(Signal::Done),
        Just(Signal::Failed),
        Just(Signal::Escalate)
    ]
}

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(seconds, 0).single().unwrap()
}

fn record() -> impl Strategy<Value = SignalRecord> {
    (
        "[A-Za-z0-9_-]{1,40}",
        signal(),
        proptest::option::of(any::<String>()),
        0i64..4_000_000_000,
    )
        .prop_map(|(step, signal, reason, seconds)| SignalRecord {
            step,
            signal,
            reason,
            at: at(seconds),
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_record(&bytes);
    }

    #[test]
    fn a_valid_record_always_reads_back(record in record()) {
        let line = serde_json::to_vec(&record).unwrap();
        let read = parse_record(&line).unwrap().expect("a record");
        let cleaned = record
            .reason
            .as_deref()
            .map(|r| one_line(r, REASON_CAP))
            .filter(|r| !r.is_empty());
        prop_assert_eq!(&read.step, &record.step);
        prop_assert_eq!(read.signal, record.signal);
        prop_assert_eq!(read.at, record.at);
        prop_assert_eq!(read.reason, cleaned);
    }

    #[test]
    fn a_partial_write_is_never_another_record(record in record(), cut in 0usize..4096) {
        let line = serde_json::to_vec(&record).unwrap();
        let cut = cut % (line.len() + 1);
        match parse_record(&line[..cut]) {
            // Not yet written, or not yet whole: read again.
            Ok(None) | Err(_) => {}
            Ok(Some(read)) => {
                prop_assert_eq!(cut, line.len(), "a prefix parsed as a record");
                prop_assert_eq!(read.step, record.step);
            }
        }
    }
}
