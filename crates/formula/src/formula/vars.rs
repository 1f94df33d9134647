//! The `[vars]` table's entries: a default value, or a table with a
//! description, a default and whether a value is required.

use schemars::JsonSchema;
use serde::Deserialize;

/// A `[vars]` entry: `NAME = "default"`, or a table with a description, a
/// default and whether a value is required.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum VarDecl {
    /// `NAME = "default"` (a string, number or boolean, used as its text).
    Default(VarValue),
    /// `NAME = { description = "…", default = "…", required = true }`.
    Table(VarTable),
}

/// The table form of a `[vars]` entry.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VarTable {
    /// What the variable is for.
    #[serde(default)]
    pub description: Option<String>,
    /// Its value when no `--var` sets it.
    #[serde(default)]
    pub default: Option<VarValue>,
    /// Whether `run` and `render` refuse to start without a value.
    #[serde(default)]
    pub required: bool,
}

/// A variable's value as TOML gives it; templates see its text.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum VarValue {
    /// A string.
    Text(String),
    /// An integer, seen as its decimal text.
    Integer(i64),
    /// A float, seen as its shortest text.
    Float(f64),
    /// A boolean, seen as `true` or `false`.
    Boolean(bool),
}

impl VarValue {
    /// The value as templates see it.
    pub fn text(&self) -> String {
        match self {
            VarValue::Text(text) => text.clone(),
            VarValue::Integer(n) => n.to_string(),
            VarValue::Float(x) => x.to_string(),
            VarValue::Boolean(b) => b.to_string(),
        }
    }
}

impl VarDecl {
    /// The default value, if any.
    pub fn default_value(&self) -> Option<String> {
        match self {
            VarDecl::Default(value) => Some(value.text()),
            VarDecl::Table(table) => table.default.as_ref().map(VarValue::text),
        }
    }

    /// Whether a value must be given.
    pub fn required(&self) -> bool {
        matches!(self, VarDecl::Table(VarTable { required: true, .. }))
    }
}
