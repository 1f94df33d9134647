//! Properties of the snapshot reader (`retort_runner::plan::read_snapshot`,
//! which `--snapshot` and `retort rerun`'s advice use to read a run's
//! `snapshot.json` back): whatever the file holds it never panics, and a
//! snapshot written by a run always reads back equal.

use proptest::prelude::*;
use retort_preflight::{CollectorStatus, Snapshot};
use retort_runner::plan::read_snapshot;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn arbitrary_bytes_are_an_error_or_a_snapshot_never_a_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..1024),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snapshot.json");
        std::fs::write(&path, &bytes).unwrap();
        if let Err(error) = read_snapshot(&path) {
            prop_assert!(error.to_string().contains("snapshot.json"), "{error}");
        }
    }

    #[test]
    fn a_saved_snapshot_reads_back_equal(
        hostname in ".{0,40}",
        available in 0u64..1_000_000,
        total in 0u64..1_000_000,
        cut in 0usize..100_000,
    ) {
        let mut snapshot = Snapshot {
            hostname,
            ..Snapshot::default()
        };
        snapshot.system.status = CollectorStatus::Ok;
        snapshot.system.memory.available_mb = available;
        snapshot.system.memory.total_mb = total;
        let json = serde_json::to_vec_pretty(&snapshot).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snapshot.json");
        std::fs::write(&path, &json).unwrap();
        prop_assert_eq!(read_snapshot(&path).unwrap(), snapshot);
        // A file cut short (a crash mid-copy) is an error, not a panic.
        let cut = cut % json.len();
        std::fs::write(&path, &json[..cut]).unwrap();
        prop_assert!(read_snapshot(&path).is_err());
    }
}
