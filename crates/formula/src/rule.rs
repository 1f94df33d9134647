//! The formula's `[[rules]]`: conditions over the snapshot that retort
//! decides by itself, each yielding findings.
//!
//! ```toml
//! [[rules]]
//! id = "memory-crisis"
//! priority = "P0"                      # P0..P4, or "info"
//! when = "system.memory.available_mb < 500"
//! message = "RAM {{ system.memory.available_mb }} MB available"
//! for = 1                              # consecutive runs before it fires
//! repeat = "4h"                        # reported as new again after this long
//! action = "free-memory"               # an [[actions]] id
//!
//! [[rules]]                            # one finding per list item
//! id = "disk-pressure"
//! priority = "P1"
//! each = "system.disks"
//! label = "item.mount"
//! when = "item.used_percent > 80"
//! message = "Disk {{ item.mount }} at {{ item.used_percent }}%"
//! ```
//!
//! `when`, `each` and `label` are CEL expressions (the `cel` crate), checked
//! against the snapshot's shape before a run (`retort_decide::ruleset`); `message`
//! is a Tera template, whose variable paths are checked the same way. Both
//! see the snapshot's top-level sections as variables (`system`, `tmux`,
//! …), `vars` (the formula's variables, as strings), `now` (the snapshot's
//! `collected_at`; RFC 3339 text in a message) and, in a rule with `each`,
//! `item`; a message also sees the item's `label`.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::duration::HumanDuration;

/// One `[[rules]]` entry.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The rule's identifier, unique among the formula's rules; the start
    /// of its findings' fingerprints.
    #[schemars(with = "String")]
    pub id: Spanned<String>,
    /// How urgent its findings are: `P0` (most) … `P4`, or `info` (never
    /// opens the gate).
    pub priority: Priority,
    /// A CEL expression that is true when something is wrong, such as
    /// `system.memory.available_mb < 500`; in a rule with `each`, evaluated
    /// once per item (`item.used_percent > 80`).
    #[schemars(with = "String")]
    pub when: Spanned<String>,
    /// The finding's message, a Tera template over the same variables
    /// (`RAM {{ system.memory.available_mb }} MB available`).
    #[schemars(with = "String")]
    pub message: Spanned<String>,
    /// A CEL expression giving a list (`system.disks`, `tmux.sessions`):
    /// the rule then yields one finding per item for which `when` holds.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub each: Option<Spanned<String>>,
    /// With `each`: a CEL expression naming the item (`item.mount`), which
    /// goes into the finding's fingerprint: `disk-pressure[/]`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub label: Option<Spanned<String>>,
    /// For how many consecutive runs `when` must hold before the finding
    /// fires; until then it is pending. Default 1.
    #[serde(default, rename = "for")]
    #[schemars(with = "Option<u32>")]
    pub for_runs: Option<Spanned<u32>>,
    /// After firing, how long until the same finding is reported as new
    /// again while it keeps firing (`"4h"`). Default: never.
    #[serde(default)]
    #[schemars(with = "Option<HumanDuration>")]
    pub repeat: Option<Spanned<HumanDuration>>,
    /// The id of the `[[actions]]` entry to run or propose while the
    /// finding fires.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub action: Option<Spanned<String>>,
}

impl Rule {
    /// The rule's id.
    pub fn id(&self) -> &str {
        self.id.get_ref()
    }

    /// The runs `when` must hold before the finding fires (at least 1).
    pub fn for_runs(&self) -> u32 {
        self.for_runs.as_ref().map_or(1, |n| *n.get_ref()).max(1)
    }
}

/// A finding's priority. Orders from most urgent (`P0`) to least (`info`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum Priority {
    /// Memory crisis and the like: act now.
    P0,
    /// Disk pressure and the like: act soon.
    P1,
    /// The factory has stopped.
    P2,
    /// The factory is degraded.
    P3,
    /// Housekeeping.
    P4,
    /// Worth knowing; never opens the gate by itself.
    #[serde(rename = "info")]
    Info,
}

impl Priority {
    /// `P0` … `P4` or `info`.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::P0 => "P0",
            Priority::P1 => "P1",
            Priority::P2 => "P2",
            Priority::P3 => "P3",
            Priority::P4 => "P4",
            Priority::Info => "info",
        }
    }

    /// Reads [`Priority::as_str`]'s words back; `None` for anything else.
    pub fn parse(text: &str) -> Option<Priority> {
        [
            Priority::P0,
            Priority::P1,
            Priority::P2,
            Priority::P3,
            Priority::P4,
            Priority::Info,
        ]
        .into_iter()
        .find(|p| p.as_str() == text)
    }

    /// Whether findings of this priority are alerts (`P0` … `P4`), which
    /// can open the gate, rather than `info`.
    pub fn is_alert(self) -> bool {
        self != Priority::Info
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
