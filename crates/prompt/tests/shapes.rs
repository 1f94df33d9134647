//! The shapes checked in under `shapes/` are what the template contexts'
//! types compile to today. After changing them:
//! `RETORT_BLESS=1 cargo test -p retort-prompt --test shapes`.

use std::path::Path;

use retort_formula::shape::Shape;
use retort_prompt::prompt::{
    AgentContext, TemplateContext, agent_command_shape, description_shape, shape_now,
};

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
    check(
        "description.json",
        shape_now::<TemplateContext>(),
        description_shape(),
    );
    check(
        "agent-command.json",
        shape_now::<AgentContext>(),
        agent_command_shape(),
    );
    let root = description_shape().root();
    assert!(description_shape().keys(root).contains(&"preflight"));
}
