//! The shape checked in under `shapes/` is what the formula's types compile
//! to today. After changing them: `RETORT_BLESS=1 cargo test -p retort-formula --test shapes`.

use std::path::Path;

use retort_formula::formula::{formula_shape, json_schema};
use retort_formula::shape::Shape;

#[test]
fn the_generated_formula_shape_is_current() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("shapes/formula.json");
    let compiled = Shape::from_schema(&json_schema());
    Shape::check_generated(&file, &compiled).unwrap();
    // And it is what the checker reads, descriptions included (they are
    // the help of structure problems).
    if std::env::var_os("RETORT_BLESS").is_none() {
        assert!(formula_shape().encode() == compiled.encode(), "not read");
    }
    let root = formula_shape().root();
    assert!(formula_shape().keys(root).contains(&"steps"));
    let name = formula_shape().property(root, "name").unwrap();
    assert!(formula_shape().node(name).description.is_some());
}
