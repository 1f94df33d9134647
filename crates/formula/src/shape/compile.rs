//! The schema compiler: a JSON Schema as `schemars` writes it, compiled
//! into a [`Shape`]'s nodes (`type`, `properties`, `required`,
//! `additionalProperties`, `items`, `enum`, `const`, `anyOf`/`oneOf`,
//! `minimum`/`maximum`, `description`, local `$ref`s to `$defs`).

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use super::{Kind, Node, NodeId, Shape};

impl Shape {
    /// Compiles `schema` (a JSON Schema as `schemars` writes it).
    pub fn from_schema(schema: &Value) -> Shape {
        let mut compiler = Compiler {
            root: schema,
            nodes: Vec::new(),
            defs: HashMap::new(),
        };
        let root = compiler.compile(schema);
        Shape::from_nodes(compiler.nodes, root)
    }
}

struct Compiler<'a> {
    root: &'a Value,
    nodes: Vec<Node>,
    defs: HashMap<String, NodeId>,
}

impl Compiler<'_> {
    fn push(&mut self, kind: Kind, description: Option<String>) -> NodeId {
        self.nodes.push(Node {
            kind,
            description,
            format: None,
        });
        self.nodes.len() - 1
    }

    fn compile(&mut self, schema: &Value) -> NodeId {
        let description = schema
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_string);
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            let target = self.reference(reference);
            return match description {
                // Keep the referring field's own description.
                Some(text) => self.push(Kind::Union(vec![target]), Some(text)),
                None => target,
            };
        }
        if let Some(options) = schema
            .get("anyOf")
            .or_else(|| schema.get("oneOf"))
            .and_then(Value::as_array)
        {
            let members: Vec<NodeId> = options.iter().map(|o| self.compile(o)).collect();
            // A choice of single strings (`oneOf` of `const`s, as schemars
            // writes a Rust enum) is one string with those allowed values.
            let values: Option<Vec<String>> = members
                .iter()
                .map(|&m| match &self.nodes[m].kind {
                    Kind::String {
                        allowed: Some(allowed),
                    } => Some(allowed.clone()),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()
                .map(|lists| lists.concat());
            if let Some(allowed) = values.filter(|v| !v.is_empty()) {
                let kind = Kind::String {
                    allowed: Some(allowed),
                };
                return self.push(kind, description);
            }
            return self.push(Kind::Union(members), description);
        }
        if let Some(value) = schema.get("const") {
            let allowed = value.as_str().map(|s| vec![s.to_string()]);
            return self.push(Kind::String { allowed }, description);
        }
        if let Some(values) = schema.get("enum").and_then(Value::as_array) {
            let allowed: Vec<String> = values
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect();
            let kind = Kind::String {
                allowed: Some(allowed),
            };
            return self.push(kind, description);
        }
        let types: Vec<&str> = match schema.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if types.is_empty() {
            if schema.get("properties").is_some() {
                return self.object(schema, description);
            }
            return self.push(Kind::Any, description);
        }
        let members: Vec<NodeId> = types
            .iter()
            .map(|t| self.typed(t, schema, description.clone()))
            .collect();
        if members.len() == 1 {
            members[0]
        } else {
            self.push(Kind::Union(members), description)
        }
    }

    fn typed(&mut self, kind: &str, schema: &Value, description: Option<String>) -> NodeId {
        match kind {
            "null" => self.push(Kind::Null, description),
            "boolean" => self.push(Kind::Boolean, description),
            "integer" => {
                let bound = |key| schema.get(key).and_then(Value::as_f64);
                let kind = Kind::Integer {
                    min: bound("minimum"),
                    max: bound("maximum"),
                };
                self.push(kind, description)
            }
            "number" => self.push(Kind::Number, description),
            "string" => {
                let id = self.push(Kind::String { allowed: None }, description);
                self.nodes[id].format = schema
                    .get("format")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                id
            }
            "array" => {
                let items = match schema.get("items") {
                    Some(items) => self.compile(items),
                    None => self.push(Kind::Any, None),
                };
                self.push(Kind::Array { items }, description)
            }
            "object" => self.object(schema, description),
            _ => self.push(Kind::Any, description),
        }
    }

    fn object(&mut self, schema: &Value, description: Option<String>) -> NodeId {
        let mut properties = BTreeMap::new();
        if let Some(map) = schema.get("properties").and_then(Value::as_object) {
            for (key, value) in map {
                let id = self.compile(value);
                properties.insert(key.clone(), id);
            }
        }
        let required = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| {
                r.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let additional = match schema.get("additionalProperties") {
            Some(Value::Bool(false)) => None,
            Some(Value::Object(_)) => {
                let extra = schema.get("additionalProperties").unwrap_or(&Value::Null);
                Some(self.compile(extra))
            }
            // Unspecified: a struct (it lists its properties) has exactly
            // those keys; a free-form object takes any.
            _ if schema.get("properties").is_some() => None,
            _ => Some(self.push(Kind::Any, None)),
        };
        let kind = Kind::Object {
            properties,
            required,
            additional,
        };
        self.push(kind, description)
    }

    fn reference(&mut self, reference: &str) -> NodeId {
        if let Some(&id) = self.defs.get(reference) {
            return id;
        }
        let target = reference
            .strip_prefix("#/")
            .map(|path| {
                path.split('/')
                    .try_fold(self.root, |value, part| value.get(part))
            })
            .unwrap_or(None);
        let Some(target) = target else {
            return self.push(Kind::Any, None);
        };
        // Reserve the node first, so that recursive types terminate.
        let placeholder = self.push(Kind::Any, None);
        self.defs.insert(reference.to_string(), placeholder);
        let compiled = self.compile(target);
        self.nodes[placeholder] = self.nodes[compiled].clone();
        placeholder
    }
}
