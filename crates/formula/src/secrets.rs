//! The `[secrets]` table: which environment variables hold secrets.
//!
//! ```toml
//! [secrets]
//! env = ["FORGE_AUTH", "MATRIX_ACCESS"]
//! ```
//!
//! The values of variables whose names contain `TOKEN`, `SECRET`,
//! `PASSWORD`, `PASSWD` or `KEY` (any case) are secret without being
//! listed (`retort_os::redact`); `env` names more. Their values, and the
//! user information of URLs (`https://user:pass@host`), are replaced by
//! `[redacted]` in the preflight snapshot before it is saved or shown to
//! the agent.
//!
//! This module is the table's TOML shape; redaction is `retort_os`'s.

use schemars::JsonSchema;
use serde::Deserialize;

/// The `[secrets]` table.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretsSection {
    /// Names of environment variables whose values are secret, besides
    /// those whose names mark them so (`TOKEN`, `SECRET`, `PASSWORD`,
    /// `PASSWD`, `KEY`). Exact names, such as `"FORGE_AUTH"`.
    #[serde(default)]
    pub env: Vec<String>,
}
