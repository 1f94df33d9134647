//! The shapes checked in under `shapes/` are what the template contexts'
//! types compile to today. After changing them:
//! `RETORT_BLESS=1 cargo test -p retort-prompt --test shapes`.

use std::path::Path;

use retort_formula::shape::Shape;
use retort_prompt::prompt::{
    AgentContext, TemplateContext, agent_command_shape, description_shape,
};

fn check(file: &str, schema: serde_json::Value, read: &Shape) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("shapes").join(file);
    Shape::check_generated(&path, &schema).unwrap();
    assert_eq!(read.encode(), Shape::from_schema(&schema).encode());
}

#[test]
fn the_generated_shapes_are_current() {
    let description = serde_json::to_value(schemars::schema_for!(TemplateContext)).unwrap();
    check("description.json", description, description_shape());
    let agent = serde_json::to_value(schemars::schema_for!(AgentContext)).unwrap();
    check("agent-command.json", agent, agent_command_shape());
    let root = description_shape().root();
    assert!(description_shape().keys(root).contains(&"preflight"));
}
