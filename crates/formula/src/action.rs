//! The formula's `[[actions]]`: fixes that rules trigger, run by retort
//! itself (`mode = "auto"`) or stored as proposals for a human to approve
//! (`mode = "propose"`), and how a command is run.
//!
//! ```toml
//! [[actions]]
//! id = "free-memory"
//! run = ["supervisor/actions/memory-crisis.sh"]   # argv, no shell
//! mode = "auto"
//! timeout = "60s"
//! cooldown = "30m"
//! ```
//!
//! Each `run` element is a Tera template over the variables of the rule
//! whose finding triggers it (the snapshot's sections, `vars`, `now` and,
//! with `each`, `item` and `label`) plus `finding` (`retort_decide::action::FindingContext`:
//! `{ fingerprint, rule, label, priority, message }`), so an action for a
//! rule over a list can name the item:
//! `run = ["tmux", "kill-session", "-t", "={{ item.name }}"]`. `retort
//! check` checks the variable paths of each element against every rule that
//! names the action (`retort_decide::ruleset`), `item` against the items of that
//! rule's `each`. The command
//! runs without a shell, in retort's working directory (a relative program
//! path such as `supervisor/actions/x.sh` is taken from there), in its own
//! process group, with retort's environment plus `RETORT_FORMULA`,
//! `RETORT_ACTION`, `RETORT_FINGERPRINT`, `RETORT_RULE`, `RETORT_LABEL`,
//! `RETORT_PRIORITY` and `RETORT_MESSAGE`. Its standard input is empty; its
//! output is kept up to `retort_decide::action::OUTPUT_CAP` bytes a stream.

//!
//! This module is the table's TOML shape; running and proposing are
//! `retort-decide`'s.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::duration::HumanDuration;

/// How long an action may run when its formula gives no `timeout`: 60 seconds.
pub const DEFAULT_ACTION_TIMEOUT: Duration = Duration::from_secs(60);

/// One `[[actions]]` entry.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Action {
    /// The action's identifier, which rules name in `action`.
    #[schemars(with = "String")]
    pub id: Spanned<String>,
    /// The command: program and arguments, each a Tera template, run
    /// without a shell. Each element keeps its own place in the file, for
    /// diagnostics inside it.
    #[schemars(with = "Vec<String>")]
    pub run: Spanned<Vec<Spanned<String>>>,
    /// `auto`: retort runs it before the agent starts. `propose`: retort
    /// stores a proposal for `retort approve`. Default `propose`.
    #[serde(default)]
    pub mode: ActionMode,
    /// How long it may run before it is killed. Default [`DEFAULT_ACTION_TIMEOUT`].
    #[serde(default)]
    #[schemars(with = "Option<HumanDuration>")]
    pub timeout: Option<Spanned<HumanDuration>>,
    /// The least time between two runs (or proposals) of this action for
    /// the same finding. Default: none, so an auto action runs at every run
    /// in which its finding fires.
    #[serde(default)]
    #[schemars(with = "Option<HumanDuration>")]
    pub cooldown: Option<Spanned<HumanDuration>>,
}

impl Action {
    /// The action's id.
    pub fn id(&self) -> &str {
        self.id.get_ref()
    }

    /// How long it may run.
    pub fn timeout(&self) -> Duration {
        self.timeout
            .as_ref()
            .map_or(DEFAULT_ACTION_TIMEOUT, |t| t.get_ref().0)
    }

    /// The cooldown, zero when none.
    pub fn cooldown(&self) -> Duration {
        self.cooldown
            .as_ref()
            .map_or(Duration::ZERO, |c| c.get_ref().0)
    }
}

/// Who starts an action.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ActionMode {
    /// retort runs it, before the agent starts.
    Auto,
    /// retort stores a proposal; a human runs `retort approve ID`.
    #[default]
    Propose,
}

impl ActionMode {
    /// `auto` or `propose`.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionMode::Auto => "auto",
            ActionMode::Propose => "propose",
        }
    }
}
