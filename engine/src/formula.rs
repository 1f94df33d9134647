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

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};
use toml::Spanned;

use crate::diagnostic::{FormulaError, SourceFile};

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
    /// Files whose contents the first prompt carries.
    #[serde(default)]
    pub context: ContextSection,
    /// How to start the agent.
    #[serde(default)]
    pub agent: AgentSection,
    /// The steps, in the order they are written.
    #[serde(default)]
    pub steps: Vec<Step>,
    /// What preflight collects, and how (`[preflight]`); see
    /// [`retort_preflight::Settings`]. Default: every local collector with
    /// its defaults.
    #[serde(default)]
    pub preflight: retort_preflight::Settings,
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

/// The `[agent]` table.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentSection {
    /// The shell command that starts the agent, a Tera template over
    /// `model`. Default: [`DEFAULT_AGENT_COMMAND`].
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub command: Option<Spanned<String>>,
}

/// The agent command used when neither `--agent` nor `[agent] command` is given.
pub const DEFAULT_AGENT_COMMAND: &str = "claude{% if model %} --model {{ model }}{% endif %}";

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
    /// `"1h 30m"`). Default: [`DEFAULT_STEP_TIMEOUT`].
    #[serde(default)]
    #[schemars(with = "Option<HumanDuration>")]
    pub timeout: Option<Spanned<HumanDuration>>,
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

    /// How long the step may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
            .as_ref()
            .map_or(DEFAULT_STEP_TIMEOUT, |t| t.get_ref().0)
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

/// Reads and parses the formula at `path`.
///
/// # Errors
/// [`FormulaError::Read`] when the file cannot be read or is not UTF-8, and
/// [`FormulaError::Syntax`] (with line, column and excerpt) when it is not a
/// well-formed formula: bad TOML, an unknown key, a wrong type, a bad duration.
pub fn load(path: &Path) -> Result<LoadedFormula, FormulaError> {
    let text = std::fs::read_to_string(path).map_err(|source| FormulaError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_source(path, text)
}

/// Parses `text` as the formula file `path` (which is not read).
///
/// # Errors
/// As [`load`], but never [`FormulaError::Read`].
pub fn parse_source(path: &Path, text: String) -> Result<LoadedFormula, FormulaError> {
    let source = SourceFile::new(path, text);
    match Formula::parse(source.text()) {
        Ok(formula) => Ok(LoadedFormula {
            path: path.to_path_buf(),
            formula,
            source,
        }),
        Err(error) => Err(FormulaError::syntax(&source, &error)),
    }
}

/// A duration written the way people write them: `"90s"`, `"30m"`,
/// `"1h 30m"` (parsed by the `humantime` crate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match humantime::parse_duration(&text) {
            Ok(duration) if duration.is_zero() => Err(serde::de::Error::custom(format!(
                "a timeout of `{text}` would end the step at once; give a positive duration such as \"30m\""
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
