//! The formula model: what a formula TOML file says, typed, with the byte
//! spans that diagnostics point at.
//!
//! A formula is a named set of `[[steps]]`, each a prompt for an LLM agent,
//! whose `needs` entries form a DAG (see [`crate::dag`]). Every table rejects
//! keys it does not know, so a misspelt `need = [...]` is an error instead
//! of a silently dropped dependency.
//!
//! ```toml
//! name = "run-supervisor"
//! description = "Factory health monitoring"
//! version = 1
//! model = "sonnet"
//!
//! [context]
//! files = ["AGENTS.md"]
//!
//! [agent]
//! command = "claude --model {{ model }}"
//!
//! [[steps]]
//! id = "preflight"
//! title = "Review pre-collected metrics"
//! description = "RAM available: {{ preflight.system.memory.available_mb }} MB"
//! timeout = "30m"
//!
//! [[steps]]
//! id = "report"
//! title = "Report"
//! description = "..."
//! needs = ["preflight"]
//! ```
//!
//! Reading a formula from a parsed TOML document, its steps on every core
//! for a large one ([`Formula::from_document`]), is in `read`.

mod agent;
mod read;
mod vars;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::LazyLock;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::action::Action;
use crate::diagnostic::SourceFile;
use crate::duration::HumanDuration;
use crate::gate::GateSection;
use crate::history::HistorySection;
use crate::rule::Rule;
use crate::secrets::SecretsSection;
use crate::shape::Shape;

pub use agent::{
    AgentKind, AgentSection, Backend, DEFAULT_AGENT_COMMAND, DEFAULT_IDLE_TIMEOUT,
    DEFAULT_READY_TIMEOUT, OnPermission, ScreenSection,
};
pub use read::PARALLEL_STEPS;
pub use vars::{VarDecl, VarTable, VarValue};

/// How long a step may run when its formula gives no `timeout`: 30 minutes.
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// A parsed formula. Byte spans index into the formula's source text.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Formula {
    /// The formula's name: names the phase file, the journal directory and
    /// the tmux session (`retort-NAME-RUN_ID`).
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// One line saying what the formula is for; opens the first prompt.
    #[serde(default)]
    pub description: String,
    /// The formula author's own version number of this formula.
    #[serde(default)]
    pub version: Option<u32>,
    /// The model the agent runs, available to templates as `{{ model }}`.
    #[serde(default)]
    pub model: Option<String>,
    /// Whether step descriptions are passed to the agent verbatim instead
    /// of being rendered as Tera templates (for formulas full of shell or
    /// Go-template braces, such as `docker ps --format '{{.Names}}'`). A
    /// step's own `raw` overrides it. Default: false.
    #[serde(default)]
    pub raw: bool,
    /// Variables, set with `--var NAME=VALUE`, available to templates as
    /// `{{ vars.NAME }}`.
    #[serde(default)]
    pub vars: BTreeMap<String, VarDecl>,
    /// Files whose contents the first prompt carries.
    #[serde(default)]
    pub context: ContextSection,
    /// How to start the agent.
    #[serde(default)]
    pub agent: AgentSection,
    /// How much the formula's agents may spend.
    #[serde(default)]
    pub budget: BudgetSection,
    /// The steps, in the order they are written.
    #[serde(default)]
    pub steps: Vec<Step>,
    /// Conditions over the snapshot that retort decides itself, each
    /// yielding findings (see [`crate::rule`]).
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// Fixes that rules run or propose (see [`crate::action`]).
    #[serde(default)]
    pub actions: Vec<Action>,
    /// Whether a run starts the agent (see [`crate::gate`]).
    #[serde(default)]
    pub gate: GateSection,
    /// How long what the formula's runs leave is kept (`[history]`; see
    /// `retort_runner::retention`).
    #[serde(default)]
    pub history: HistorySection,
    /// More environment variables whose values are secret (`[secrets]
    /// env`; see [`crate::secrets`]).
    #[serde(default)]
    pub secrets: SecretsSection,
    /// The formula's own data (`[meta]`: owner, links, anything its
    /// readers or other tools want), which retort does not read but passes
    /// to templates as `meta` (`{{ meta.owner }}`). Any TOML values.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, serde_json::Value>")]
    pub meta: BTreeMap<String, toml::Value>,
    /// When the formula runs by itself, as a five-field cron expression
    /// (`"*/20 * * * *"`: every 20 minutes), in the scheduler's local
    /// time. `retort check` validates it (with `retort_schedule::Schedule`;
    /// `docs/schedules.md` says what is accepted); `retort schedule` turns
    /// it into crontab lines, systemd units or Nomad jobs. A run ignores it.
    /// Default: none (run by hand only).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub schedule: Option<Spanned<String>>,
    /// What preflight collects, and how (`[preflight]`); see
    /// [`retort_preflight::Settings`]. Default: every local collector with
    /// its defaults.
    #[serde(default)]
    pub preflight: retort_preflight::Settings,
    /// Who hears about the formula's runs (`[[notify]]` tables): a Matrix
    /// room or a webhook each, the news it is sent (`on`), the least urgent
    /// finding (`min_priority`) and how long the same news stays quiet
    /// (`repeat`); secrets by environment variable name only. See
    /// [`retort_notify::config`] and `docs/notifications.md`. Default: none.
    #[serde(default)]
    pub notify: Vec<retort_notify::config::NotifyConfig>,
    /// How many steps may run at once: steps whose `needs` are done start
    /// together, each in its own agent session (tmux) or process
    /// (headless), up to this many. 1 runs the steps one at a time in
    /// topological order, as a chain. Default: 4 ([`DEFAULT_MAX_PARALLEL`]).
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub max_parallel: Option<Spanned<u32>>,
    /// What a step that fails (or escalates) does to the rest of the run:
    /// `"stop"` (default) starts nothing more and lets the running steps
    /// finish; `"continue"` runs every step that does not depend on it.
    #[serde(default)]
    pub on_failure: OnFailure,
    /// How long the whole run's agent phase may take, as a humane duration;
    /// at the end, running steps are stopped and fail, and the rest are not
    /// started. Default: 2 hours ([`DEFAULT_RUN_TIMEOUT`]).
    #[serde(default)]
    #[schemars(with = "Option<HumanDuration>")]
    pub timeout: Option<Spanned<HumanDuration>>,
}

/// How many steps run at once when a formula's `max_parallel` does not say: 4.
pub const DEFAULT_MAX_PARALLEL: usize = 4;

/// How long a run's agent phase may take when a formula's `timeout` does
/// not say: 2 hours.
pub const DEFAULT_RUN_TIMEOUT: Duration = Duration::from_secs(2 * 60 * 60);

/// The first pause before a step's retry when its `retry_delay` does not
/// say: 30 seconds (doubled for each further attempt).
pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(30);

/// What a failed step does to the rest of the run (`on_failure`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// No new step starts; the running ones finish; the rest are skipped.
    #[default]
    Stop,
    /// Every step that does not depend on the failed one still runs.
    Continue,
}

impl OnFailure {
    /// `stop` or `continue`.
    pub fn as_str(self) -> &'static str {
        match self {
            OnFailure::Stop => "stop",
            OnFailure::Continue => "continue",
        }
    }
}

/// The `[context]` table.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContextSection {
    /// Paths, relative to the working directory, of files pasted into the
    /// first prompt. A missing file is a warning, not an error.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub files: Vec<Spanned<String>>,
}

/// The `[budget]` table: how much a formula's agents may spend, in US
/// dollars as the agent reports its cost (Claude Code's `total_cost_usd`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetSection {
    /// The most one run may spend (USD). A run that reaches it stops its
    /// agent with the reason.
    #[serde(default)]
    pub run_usd: Option<f64>,
    /// The most the formula's runs may spend in one UTC day (USD). Once
    /// reached, the gate stays closed until the day ends.
    #[serde(default)]
    pub day_usd: Option<f64>,
}

/// One `[[steps]]` entry.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// The step's identifier, unique within the formula; names its prompt
    /// file (`prompts/ID.md`) and signal file (`steps/ID.signal`).
    #[schemars(with = "String")]
    pub id: Spanned<String>,
    /// A short human title; defaults to the id.
    #[serde(default)]
    pub title: Option<String>,
    /// The step's instructions, a Tera template rendered against the
    /// snapshot (`{{ preflight.system.memory.available_mb }}`).
    #[schemars(with = "String")]
    pub description: Spanned<String>,
    /// Ids of the steps that must finish before this one starts.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub needs: Vec<Spanned<String>>,
    /// How long the step may take, as a humane duration (`"90s"`, `"30m"`,
    /// `"1h 30m"`). Default: 30 minutes.
    #[serde(default)]
    #[schemars(with = "Option<HumanDuration>")]
    pub timeout: Option<Spanned<HumanDuration>>,
    /// The model for this step, overriding the formula's. Consecutive steps
    /// with the same model share one agent session; a step whose model
    /// differs starts a new session with that model.
    #[serde(default)]
    pub model: Option<String>,
    /// Whether this step's description is passed verbatim instead of being
    /// rendered as a Tera template. Default: the formula's `raw`.
    #[serde(default)]
    pub raw: Option<bool>,
    /// Tools this step's agent may use besides `[agent] allowed_tools`. A
    /// step whose tools differ from the step before starts a new session.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub allowed_tools: Vec<Spanned<String>>,
    /// Tools this step's agent must not use besides `[agent]
    /// disallowed_tools`.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub disallowed_tools: Vec<Spanned<String>>,
    /// The agent session the step runs in: steps naming the same session
    /// share one agent (one conversation) and run one after another in it,
    /// in topological order. Without it, a step continues the session of
    /// the first step it needs, unless another step already did (then it
    /// gets a session of its own).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub session: Option<Spanned<String>>,
    /// A CEL condition over the snapshot, `findings`, `vars` and the
    /// outcomes and outputs of the steps it depends on
    /// (`steps.ID.outcome == "done"`, `steps.ID.output`), evaluated when the
    /// step's `needs` have ended. False: the step is skipped with the
    /// condition as its reason, and a skipped step satisfies its dependents.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub when: Option<Spanned<String>>,
    /// How many times the step is tried again after a transient end (its
    /// agent crashed, its prompt was not delivered, it was rate-limited,
    /// it timed out); never after it signals `failed` or `escalate`.
    /// Default: 0.
    #[serde(default)]
    pub retries: u32,
    /// The pause before the first retry, doubled for each one after
    /// (exponential backoff); a rate limit waits until its reset time when
    /// that is later. Default: 30 seconds.
    #[serde(default)]
    #[schemars(with = "Option<HumanDuration>")]
    pub retry_delay: Option<Spanned<HumanDuration>>,
}

impl Step {
    /// The step's id.
    pub fn id(&self) -> &str {
        self.id.get_ref()
    }

    /// The step's title, or its id when it has none.
    pub fn title(&self) -> &str {
        self.title.as_deref().unwrap_or_else(|| self.id())
    }

    /// Whether the description is rendered as a template, given the
    /// formula's default.
    pub fn is_template(&self, formula_raw: bool) -> bool {
        !self.raw.unwrap_or(formula_raw)
    }

    /// How long the step may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
            .as_ref()
            .map_or(DEFAULT_STEP_TIMEOUT, |t| t.get_ref().0)
    }

    /// The pause before the step's first retry ([`DEFAULT_RETRY_DELAY`]
    /// when `retry_delay` does not say).
    pub fn retry_delay(&self) -> Duration {
        self.retry_delay
            .as_ref()
            .map_or(DEFAULT_RETRY_DELAY, |d| d.get_ref().0)
    }

    /// The step's `session`, if it names one.
    pub fn session(&self) -> Option<&str> {
        self.session.as_ref().map(|s| s.get_ref().as_str())
    }

    /// The step's `when` condition, if it has one.
    pub fn when(&self) -> Option<&str> {
        self.when.as_ref().map(|w| w.get_ref().as_str())
    }
}

impl Formula {
    /// Parses formula text. Errors carry the TOML parser's message and the
    /// byte span it points at.
    pub fn parse(text: &str) -> Result<Formula, toml::de::Error> {
        toml::from_str(text)
    }

    /// The formula's name.
    pub fn name(&self) -> &str {
        self.name.get_ref()
    }

    /// The step with this id, if there is one.
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id() == id)
    }

    /// How many steps may run at once (`max_parallel`, at least 1;
    /// [`DEFAULT_MAX_PARALLEL`] when it does not say).
    pub fn max_parallel(&self) -> usize {
        self.max_parallel
            .as_ref()
            .map_or(DEFAULT_MAX_PARALLEL, |n| {
                usize::try_from(*n.get_ref()).unwrap_or(usize::MAX)
            })
            .max(1)
    }

    /// How long the run's agent phase may take ([`DEFAULT_RUN_TIMEOUT`]
    /// when `timeout` does not say).
    pub fn run_timeout(&self) -> Duration {
        self.timeout
            .as_ref()
            .map_or(DEFAULT_RUN_TIMEOUT, |t| t.get_ref().0)
    }

    /// The model `step` runs on: its own, else the formula's.
    pub fn model_of<'a>(&'a self, step: &'a Step) -> Option<&'a str> {
        step.model.as_deref().or(self.model.as_deref())
    }
}

/// The JSON Schema (draft 2020-12) of formula files, generated from
/// [`Formula`] by `schemars`. Editors use it for completion and hover
/// documentation (taplo / Even Better TOML: a `#:schema PATH` first line),
/// and the checker uses it to find every unknown key and wrong type.
pub fn json_schema() -> serde_json::Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(Formula)).unwrap_or_default();
    if let Some(object) = schema.as_object_mut() {
        object.insert("title".into(), "retort formula".into());
        object.insert(
            "description".into(),
            "A retort formula: a named DAG of steps, each a prompt for an LLM agent.".into(),
        );
    }
    schema
}

/// The formula's shape: its JSON Schema compiled ahead of time into
/// `crates/formula/shapes/formula.json` (see [`Shape::generated`]), read
/// once.
pub fn formula_shape() -> &'static Shape {
    static SHAPE: LazyLock<Shape> = LazyLock::new(|| {
        Shape::generated(include_str!("../shapes/formula.json"), || {
            Shape::from_schema(&json_schema())
        })
    });
    &SHAPE
}

/// A formula read from a file, with its source kept for diagnostics.
#[derive(Debug, Clone)]
pub struct LoadedFormula {
    /// Where it was read from.
    pub path: PathBuf,
    /// The parsed formula.
    pub formula: Formula,
    /// The source text, for diagnostics.
    pub source: SourceFile,
}
