//! The shapes checked in under `shapes/` are what the snapshot's and a
//! finding's types compile to today. After changing them:
//! `RETORT_BLESS=1 cargo test -p retort-decide --test shapes`.

use std::path::Path;

use retort_decide::action::{finding_shape, finding_shape_now};
use retort_decide::cel_value::{snapshot_shape, snapshot_shape_now};
use retort_formula::shape::Shape;

fn check(file: &str, compiled: Shape, read: &Shape) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("shapes")
        .join(file);
    Shape::check_generated(&path, &compiled).unwrap();
    // What the crate reads is the file (once regenerated, after a rebuild).
    if std::env::var_os("RETORT_BLESS").is_none() {
        assert!(read.encode() == compiled.encode(), "{file} is not read");
    }
}

#[test]
fn the_generated_shapes_are_current() {
    check("snapshot.json", snapshot_shape_now(), snapshot_shape());
    check("finding.json", finding_shape_now(), finding_shape());
    let root = snapshot_shape().root();
    assert!(snapshot_shape().keys(root).contains(&"system"));
}
