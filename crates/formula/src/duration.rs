//! Durations as people write them in formulas: `"90s"`, `"30m"`, `"1h 30m"`.

use std::fmt;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};

/// A duration written the way people write them: `"90s"`, `"30m"`,
/// `"1h 30m"` (parsed by the `humantime` crate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match humantime::parse_duration(&text) {
            Ok(duration) if duration.is_zero() => Err(serde::de::Error::custom(format!(
                "`{text}` is no time at all; give a positive duration such as \"30m\""
            ))),
            Ok(duration) => Ok(HumanDuration(duration)),
            Err(error) => Err(serde::de::Error::custom(format!(
                "`{text}` is not a duration ({error}); write it like \"90s\", \"30m\" or \"1h 30m\""
            ))),
        }
    }
}

impl JsonSchema for HumanDuration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "HumanDuration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A duration such as \"90s\", \"30m\" or \"1h 30m\" (humantime syntax).",
            "examples": ["30m"]
        })
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}
