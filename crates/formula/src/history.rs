//! The `[history]` table: how long what a formula's runs leave is kept.
//!
//! ```toml
//! [history]
//! keep = "30d"   # default: 30 days
//! ```
//!
//! This module is the table's TOML shape; pruning is the runner's
//! (`retort_runner::retention`).

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;

use crate::duration::HumanDuration;

/// How long a formula's runs are kept when `[history] keep` does not say:
/// 30 days (2160 runs of a formula run every 20 minutes).
pub const DEFAULT_KEEP: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// The `[history]` table.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HistorySection {
    /// How long what the formula's runs leave is kept, as a humane duration
    /// (`"30d"`, `"12h"`, `"1y"`): at the end of each run, the formula's
    /// run directories and run-history rows older than this are removed
    /// (its latest run, the latest action run of each action and finding,
    /// pending proposals and the journal always stay). Default: 30 days.
    #[serde(default)]
    #[schemars(with = "Option<HumanDuration>")]
    pub keep: Option<Spanned<HumanDuration>>,
}

impl HistorySection {
    /// How long the formula's runs are kept: `keep`, else [`DEFAULT_KEEP`].
    pub fn keep(&self) -> Duration {
        self.keep.as_ref().map_or(DEFAULT_KEEP, |k| k.get_ref().0)
    }
}
