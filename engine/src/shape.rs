//! The snapshot's shape: which fields it has and of what kind, read from
//! its JSON Schema (`schemars::schema_for!(retort_preflight::Snapshot)`).
//!
//! Rules are checked against this shape, so a rule naming a field the
//! snapshot lacks (`system.memory.availble_mb`) is an error with a
//! suggestion, and a section that preflight gains is known to rules as soon
//! as its type is in the snapshot. The shape also tells the conversion of a
//! snapshot into CEL values which strings are timestamps
//! (`"format": "date-time"`), so that rules can compare them with `now`.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use chrono::DateTime;
use serde_json::Value as Json;

/// The kind of a value in the snapshot, as far as its schema says.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// An object with these fields (and no others).
    Object(BTreeMap<String, Shape>),
    /// A list whose items have this shape.
    List(Box<Shape>),
    /// A map from any string key to values of this shape.
    Map(Box<Shape>),
    /// An RFC 3339 time string, a CEL `timestamp` in rules.
    Timestamp,
    /// A number.
    Number,
    /// A string.
    String,
    /// `true` or `false`.
    Bool,
    /// Anything: the schema does not say (or says several things).
    Any,
}

/// How deep `$ref`s are followed: deeper (recursive) types read as [`Shape::Any`].
const MAX_DEPTH: usize = 32;

impl Shape {
    /// The shape of [`retort_preflight::Snapshot`], built once.
    pub fn snapshot() -> &'static Shape {
        static SHAPE: OnceLock<Shape> = OnceLock::new();
        SHAPE.get_or_init(|| {
            let schema = schemars::schema_for!(retort_preflight::Snapshot);
            Shape::from_schema(&schema.to_value())
        })
    }

    /// Reads a JSON Schema (draft 2020-12, as schemars writes it): objects
    /// with `properties`, arrays with `items`, maps as objects with only
    /// `additionalProperties`, `$ref` into `$defs`, nullable types
    /// (`["string", "null"]`, or `anyOf` with `{"type": "null"}`) as their
    /// non-null kind, and `oneOf` of string constants (enums) as strings.
    pub fn from_schema(root: &Json) -> Shape {
        shape_of(root, root, 0)
    }

    /// The top-level fields, as `(name, shape)`, when this is an object.
    pub fn fields(&self) -> Option<&BTreeMap<String, Shape>> {
        match self {
            Shape::Object(fields) => Some(fields),
            _ => None,
        }
    }

    /// Words for the kind, for messages: `an object`, `a list`, `a number`, …
    pub fn kind(&self) -> &'static str {
        match self {
            Shape::Object(_) => "an object",
            Shape::List(_) => "a list",
            Shape::Map(_) => "a map",
            Shape::Timestamp => "a timestamp",
            Shape::Number => "a number",
            Shape::String => "a string",
            Shape::Bool => "a boolean",
            Shape::Any => "a value",
        }
    }

    /// Converts a JSON value of this shape into a CEL value: integers that
    /// fit become `int`, other numbers `uint` or `double`; strings whose
    /// shape is [`Shape::Timestamp`] become `timestamp`s (left as strings
    /// when they do not parse); objects become maps.
    pub fn to_cel(&self, value: &Json) -> cel::Value {
        match value {
            Json::Null => cel::Value::Null,
            Json::Bool(b) => cel::Value::Bool(*b),
            Json::Number(n) => {
                if let Some(i) = n.as_i64() {
                    cel::Value::Int(i)
                } else if let Some(u) = n.as_u64() {
                    cel::Value::UInt(u)
                } else {
                    cel::Value::Float(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Json::String(s) => {
                if *self == Shape::Timestamp
                    && let Ok(at) = DateTime::parse_from_rfc3339(s)
                {
                    return cel::Value::Timestamp(at);
                }
                cel::Value::String(Arc::new(s.clone()))
            }
            Json::Array(items) => {
                let item = match self {
                    Shape::List(item) => item.as_ref(),
                    _ => &Shape::Any,
                };
                cel::Value::List(Arc::new(items.iter().map(|v| item.to_cel(v)).collect()))
            }
            Json::Object(fields) => {
                let map = fields
                    .iter()
                    .map(|(key, v)| {
                        let shape = match self {
                            Shape::Object(known) => known.get(key).unwrap_or(&Shape::Any),
                            Shape::Map(value) => value.as_ref(),
                            _ => &Shape::Any,
                        };
                        (
                            cel::objects::Key::String(Arc::new(key.clone())),
                            shape.to_cel(v),
                        )
                    })
                    .collect();
                cel::Value::Map(cel::objects::Map { map: Arc::new(map) })
            }
        }
    }
}

/// Converts a CEL value back into JSON, for templates: timestamps as RFC
/// 3339 strings, durations as seconds, bytes as lossy UTF-8.
pub fn cel_to_json(value: &cel::Value) -> Json {
    match value {
        cel::Value::Null => Json::Null,
        cel::Value::Bool(b) => Json::Bool(*b),
        cel::Value::Int(i) => Json::from(*i),
        cel::Value::UInt(u) => Json::from(*u),
        cel::Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        cel::Value::String(s) => Json::String(s.as_ref().clone()),
        cel::Value::Bytes(b) => Json::String(String::from_utf8_lossy(b).into_owned()),
        cel::Value::List(items) => Json::Array(items.iter().map(cel_to_json).collect()),
        cel::Value::Map(map) => Json::Object(
            map.map
                .iter()
                .map(|(key, v)| {
                    let key = match key {
                        cel::objects::Key::String(s) => s.as_ref().clone(),
                        cel::objects::Key::Int(i) => i.to_string(),
                        cel::objects::Key::Uint(u) => u.to_string(),
                        cel::objects::Key::Bool(b) => b.to_string(),
                    };
                    (key, cel_to_json(v))
                })
                .collect(),
        ),
        cel::Value::Timestamp(at) => Json::String(at.to_rfc3339()),
        cel::Value::Duration(d) => Json::from(d.num_seconds()),
        _ => Json::Null,
    }
}

fn shape_of(schema: &Json, root: &Json, depth: usize) -> Shape {
    if depth > MAX_DEPTH {
        return Shape::Any;
    }
    let Some(object) = schema.as_object() else {
        return Shape::Any;
    };
    if let Some(reference) = object.get("$ref").and_then(Json::as_str) {
        return match resolve(root, reference) {
            Some(target) => shape_of(target, root, depth + 1),
            None => Shape::Any,
        };
    }
    for combinator in ["anyOf", "oneOf"] {
        if let Some(variants) = object.get(combinator).and_then(Json::as_array) {
            return one_of(variants, root, depth);
        }
    }
    if let Some(all) = object.get("allOf").and_then(Json::as_array)
        && all.len() == 1
    {
        return shape_of(&all[0], root, depth + 1);
    }
    let kind = match object.get("type") {
        Some(Json::String(kind)) => Some(kind.as_str()),
        Some(Json::Array(kinds)) => {
            let kinds: Vec<&str> = kinds
                .iter()
                .filter_map(Json::as_str)
                .filter(|k| *k != "null")
                .collect();
            if kinds.len() == 1 {
                Some(kinds[0])
            } else {
                None
            }
        }
        _ => None,
    };
    match kind {
        Some("object") => {
            if let Some(properties) = object.get("properties").and_then(Json::as_object) {
                Shape::Object(
                    properties
                        .iter()
                        .map(|(name, s)| (name.clone(), shape_of(s, root, depth + 1)))
                        .collect(),
                )
            } else {
                match object.get("additionalProperties") {
                    Some(Json::Bool(false)) => Shape::Object(BTreeMap::new()),
                    Some(values @ Json::Object(_)) => {
                        Shape::Map(Box::new(shape_of(values, root, depth + 1)))
                    }
                    _ => Shape::Map(Box::new(Shape::Any)),
                }
            }
        }
        Some("array") => Shape::List(Box::new(
            object
                .get("items")
                .map_or(Shape::Any, |items| shape_of(items, root, depth + 1)),
        )),
        Some("string") => {
            if object.get("format").and_then(Json::as_str) == Some("date-time") {
                Shape::Timestamp
            } else {
                Shape::String
            }
        }
        Some("integer" | "number") => Shape::Number,
        Some("boolean") => Shape::Bool,
        _ => Shape::Any,
    }
}

/// `anyOf`/`oneOf`: the one shape all non-null variants share, else [`Shape::Any`].
fn one_of(variants: &[Json], root: &Json, depth: usize) -> Shape {
    let shapes: Vec<Shape> = variants
        .iter()
        .filter(|v| v.get("type").and_then(Json::as_str) != Some("null"))
        .map(|v| shape_of(v, root, depth + 1))
        .collect();
    match shapes.split_first() {
        Some((first, rest)) if rest.iter().all(|s| s == first) => first.clone(),
        _ => Shape::Any,
    }
}

/// Follows a local reference such as `#/$defs/SystemSection`.
fn resolve<'a>(root: &'a Json, reference: &str) -> Option<&'a Json> {
    let pointer = reference.strip_prefix('#')?;
    root.pointer(pointer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field<'a>(shape: &'a Shape, path: &str) -> &'a Shape {
        path.split('.').fold(shape, |shape, name| match shape {
            Shape::Object(fields) => fields
                .get(name)
                .unwrap_or_else(|| panic!("no field {name} in {path}")),
            Shape::List(item) if name == "[]" => item,
            other => panic!("{path}: {other:?} has no {name}"),
        })
    }

    #[test]
    fn the_snapshot_shape_has_the_documented_fields_and_kinds() {
        let shape = Shape::snapshot();
        assert_eq!(field(shape, "system.memory.available_mb"), &Shape::Number);
        assert_eq!(field(shape, "system.status"), &Shape::String);
        assert_eq!(field(shape, "system.reason"), &Shape::String);
        assert_eq!(field(shape, "system.disks.[].mount"), &Shape::String);
        assert_eq!(
            field(shape, "tmux.sessions.[].last_activity"),
            &Shape::Timestamp
        );
        assert_eq!(field(shape, "tmux.sessions.[].attached"), &Shape::Bool);
        assert_eq!(field(shape, "collected_at"), &Shape::Timestamp);
    }

    #[test]
    fn maps_nullable_refs_and_unions_are_read() {
        let schema = serde_json::json!({
            "type": "object",
            "properties": {
                "outputs": { "type": "object", "additionalProperties": { "$ref": "#/$defs/Out" } },
                "maybe": { "anyOf": [ { "$ref": "#/$defs/Out" }, { "type": "null" } ] },
                "mixed": { "anyOf": [ { "type": "string" }, { "type": "integer" } ] },
                "note": { "type": ["string", "null"] }
            },
            "$defs": { "Out": { "type": "object", "properties": { "code": { "type": "integer" } } } }
        });
        let shape = Shape::from_schema(&schema);
        let fields = shape.fields().unwrap();
        let out = Shape::Object(BTreeMap::from([("code".to_string(), Shape::Number)]));
        assert_eq!(fields["outputs"], Shape::Map(Box::new(out.clone())));
        assert_eq!(fields["maybe"], out);
        assert_eq!(fields["mixed"], Shape::Any);
        assert_eq!(fields["note"], Shape::String);
    }

    #[test]
    fn snapshot_values_convert_to_cel_with_timestamps_and_back() {
        let json = serde_json::json!({
            "collected_at": "2026-11-21T11:20:00Z",
            "system": { "memory": { "available_mb": 300 }, "load": { "one": 1.5 } },
            "tmux": { "sessions": [ { "name": "dev-1", "last_activity": "2026-11-21T09:00:00Z" } ] }
        });
        let value = Shape::snapshot().to_cel(&json);
        let cel::Value::Map(map) = &value else {
            panic!("{value:?}")
        };
        let key = |k: &str| cel::objects::Key::String(Arc::new(k.to_string()));
        assert!(matches!(
            map.get(&key("collected_at")),
            Some(cel::Value::Timestamp(_))
        ));
        let back = cel_to_json(&value);
        assert_eq!(back["system"]["memory"]["available_mb"], 300);
        assert_eq!(back["system"]["load"]["one"], 1.5);
        assert_eq!(
            back["tmux"]["sessions"][0]["last_activity"],
            "2026-11-21T09:00:00+00:00"
        );
    }
}
