//! The shapes checked in under `shapes/` are what the snapshot's and a
//! finding's types compile to today. After changing them:
//! `RETORT_BLESS=1 cargo test -p retort-decide --test shapes`.

use std::path::Path;

use retort_decide::action::{FindingContext, finding_shape};
use retort_decide::cel_value::snapshot_shape;
use retort_formula::shape::Shape;

fn check(file: &str, schema: serde_json::Value, read: &Shape) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("shapes").join(file);
    Shape::check_generated(&path, &schema).unwrap();
    assert_eq!(read.encode(), Shape::from_schema(&schema).encode());
}

#[test]
fn the_generated_shapes_are_current() {
    let snapshot = serde_json::to_value(schemars::schema_for!(retort_preflight::Snapshot)).unwrap();
    check("snapshot.json", snapshot, snapshot_shape());
    let finding = serde_json::to_value(schemars::schema_for!(FindingContext)).unwrap();
    check("finding.json", finding, finding_shape());
    let root = snapshot_shape().root();
    assert!(snapshot_shape().keys(root).contains(&"system"));
}
