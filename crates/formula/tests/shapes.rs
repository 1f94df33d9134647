//! The shape checked in under `shapes/` is what the formula's types compile
//! to today. After changing them: `RETORT_BLESS=1 cargo test -p retort-formula --test shapes`.

use std::path::Path;

use retort_formula::formula::{formula_shape, json_schema};
use retort_formula::shape::Shape;

#[test]
fn the_generated_formula_shape_is_current() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("shapes/formula.json");
    Shape::check_generated(&file, &json_schema()).unwrap();
    // And it is what the checker reads.
    let compiled = Shape::from_schema(&json_schema());
    assert_eq!(formula_shape().encode(), compiled.encode());
    assert!(formula_shape().keys(formula_shape().root()).contains(&"steps"));
}
