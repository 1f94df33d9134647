//! The snapshot as CEL values, for rules: its shape (from its JSON Schema,
//! [`snapshot_shape`]) and the conversions between JSON and CEL.
//!
//! The shape tells the conversion which strings are timestamps (`"format":
//! "date-time"`), so that rules compare them with `now` and durations:
//! `now - item.last_activity > duration('3h')`.

use std::sync::{Arc, LazyLock};

use chrono::DateTime;
use serde_json::Value as Json;

use retort_formula::shape::{NodeId, Shape};

/// The shape of [`retort_preflight::Snapshot`]: its JSON Schema compiled
/// ahead of time into `crates/decide/shapes/snapshot.json` (a test keeps it
/// current; see [`Shape::generated`]), read once.
pub fn snapshot_shape() -> &'static Shape {
    static SHAPE: LazyLock<Shape> = LazyLock::new(|| {
        Shape::generated(include_str!("../shapes/snapshot.json"), snapshot_shape_now)
    });
    &SHAPE
}

/// [`snapshot_shape`] compiled now from the snapshot's JSON Schema, without
/// descriptions (rules only look paths up): what `shapes/snapshot.json`
/// holds.
pub fn snapshot_shape_now() -> Shape {
    let schema = serde_json::to_value(schemars::schema_for!(retort_preflight::Snapshot));
    Shape::from_schema(&schema.unwrap_or_default()).without_descriptions()
}

/// Converts `value`, whose shape is node `id` of `shape` (or unknown), into
/// a CEL value: integers that fit become `int`, other numbers `uint` or
/// `double`; timestamp strings become `timestamp`s (left as strings when
/// they do not parse); objects become maps.
pub fn to_cel(shape: &Shape, id: Option<NodeId>, value: &Json) -> cel::Value {
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
            if id.is_some_and(|id| shape.is_timestamp(id))
                && let Ok(at) = DateTime::parse_from_rfc3339(s)
            {
                return cel::Value::Timestamp(at);
            }
            cel::Value::String(Arc::new(s.clone()))
        }
        Json::Array(items) => {
            let item = id.and_then(|id| shape.items(id));
            cel::Value::List(Arc::new(
                items.iter().map(|v| to_cel(shape, item, v)).collect(),
            ))
        }
        Json::Object(fields) => {
            let map = fields
                .iter()
                .map(|(key, v)| {
                    let child = id.and_then(|id| shape.property(id, key));
                    (
                        cel::objects::Key::String(Arc::new(key.clone())),
                        to_cel(shape, child, v),
                    )
                })
                .collect();
            cel::Value::Map(cel::objects::Map { map: Arc::new(map) })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_snapshot_shape_has_the_documented_fields() {
        let shape = snapshot_shape();
        let path = |path: &str| {
            path.split('.').try_fold(shape.root(), |id, name| {
                if name == "[]" {
                    shape.items(id)
                } else {
                    shape.property(id, name)
                }
            })
        };
        assert!(path("system.memory.available_mb").is_some());
        assert!(path("system.memory.availble_mb").is_none());
        assert!(shape.is_list(path("system.disks").unwrap()));
        assert!(shape.is_timestamp(path("tmux.sessions.[].last_activity").unwrap()));
        assert!(shape.is_timestamp(path("collected_at").unwrap()));
        assert!(shape.keys(path("system").unwrap()).contains(&"status"));
    }

    #[test]
    fn snapshot_values_convert_to_cel_with_timestamps_and_back() {
        let json = serde_json::json!({
            "collected_at": "2026-11-21T11:20:00Z",
            "system": { "memory": { "available_mb": 300 }, "load": { "one": 1.5 } },
            "tmux": { "sessions": [ { "name": "dev-1", "last_activity": "2026-11-21T09:00:00Z" } ] }
        });
        let shape = snapshot_shape();
        let value = to_cel(shape, Some(shape.root()), &json);
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
