//! `docs/snapshot-reference.md` and the snapshot agree: every field of the
//! snapshot's JSON Schema is documented, every documented field exists, and
//! a real snapshot has no field the schema lacks.

use std::collections::BTreeSet;
use std::path::Path;

use retort_preflight::{Config, Snapshot, collect};
use serde_json::Value;

/// Every field path of the schema: `system.memory.available_mb`,
/// `tmux.sessions[].panes[].pid`, ….
fn schema_paths() -> BTreeSet<String> {
    let schema = serde_json::to_value(schemars::schema_for!(Snapshot)).unwrap();
    let mut paths = BTreeSet::new();
    walk(&schema, &schema, "", &mut paths);
    paths
}

fn resolve<'a>(root: &'a Value, node: &'a Value) -> &'a Value {
    match node.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let name = reference.rsplit('/').next().unwrap();
            resolve(root, &root["$defs"][name])
        }
        None => node,
    }
}

fn walk(root: &Value, node: &Value, prefix: &str, paths: &mut BTreeSet<String>) {
    let node = resolve(root, node);
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(variants) = node.get(key).and_then(Value::as_array) {
            for variant in variants {
                walk(root, variant, prefix, paths);
            }
        }
    }
    if let Some(properties) = node.get("properties").and_then(Value::as_object) {
        for (name, child) in properties {
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            paths.insert(path.clone());
            walk(root, child, &path, paths);
        }
    }
    if let Some(items) = node.get("items") {
        walk(root, items, &format!("{prefix}[]"), paths);
    }
}

/// The field paths a JSON value has (arrays' elements all walked).
fn value_paths(value: &Value, prefix: &str, paths: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (name, child) in map {
                let path = if prefix.is_empty() {
                    name.clone()
                } else {
                    format!("{prefix}.{name}")
                };
                paths.insert(path.clone());
                value_paths(child, &path, paths);
            }
        }
        Value::Array(items) => {
            for item in items {
                value_paths(item, &format!("{prefix}[]"), paths);
            }
        }
        _ => {}
    }
}

fn reference() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/snapshot-reference.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The paths documented in the reference's field tables (those headed
/// `| field |`): the first cell of each row, a path in backticks.
fn documented_paths(text: &str) -> BTreeSet<String> {
    let mut paths = BTreeSet::new();
    let mut in_fields = false;
    for line in text.lines() {
        if line.starts_with("| field |") {
            in_fields = true;
        } else if !line.starts_with('|') {
            in_fields = false;
        } else if in_fields
            && let Some(rest) = line.strip_prefix("| `")
            && let Some((path, _)) = rest.split_once('`')
        {
            paths.insert(path.to_owned());
        }
    }
    paths
}

#[test]
fn every_schema_field_is_documented_and_every_documented_field_exists() {
    let schema = schema_paths();
    let documented = documented_paths(&reference());
    let undocumented: Vec<&String> = schema.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "fields missing from docs/snapshot-reference.md: {undocumented:#?}"
    );
    let unknown: Vec<&String> = documented.difference(&schema).collect();
    assert!(
        unknown.is_empty(),
        "docs/snapshot-reference.md documents fields the snapshot lacks: {unknown:#?}"
    );
}

#[tokio::test]
async fn a_real_snapshot_has_only_schema_fields() {
    let snapshot = collect(&Config::default()).await;
    let json = serde_json::to_value(&snapshot).unwrap();
    let mut seen = BTreeSet::new();
    value_paths(&json, "", &mut seen);
    let schema = schema_paths();
    // `ci.status_counts` is a map keyed by status; its keys are data, not fields.
    let extra: Vec<&String> = seen
        .iter()
        .filter(|p| !p.starts_with("ci.status_counts."))
        .filter(|p| !schema.contains(*p))
        .collect();
    assert!(extra.is_empty(), "fields not in the schema: {extra:?}");
    // Every section is there, each with its status and reason.
    for section in [
        "system",
        "docker",
        "tmux",
        "phase_files",
        "locks",
        "logs",
        "git",
        "escalations",
        "forge",
        "ci",
        "commands",
    ] {
        assert!(seen.contains(&format!("{section}.status")), "{section}");
        assert!(json[section].get("reason").is_some(), "{section}");
    }
}
