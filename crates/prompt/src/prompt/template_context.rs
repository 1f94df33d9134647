//! What templates see: a step description's context ([`TemplateContext`]),
//! the `[agent] command` template's ([`AgentContext`]), the names they
//! hold, and their shapes, against which `retort check` checks templates.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use schemars::JsonSchema;
use serde::Serialize;

use retort_preflight::Snapshot;

use retort_decide::condition::StepValue;
use retort_decide::decide::{ActionsContext, FindingsContext, PreviousRun};
use retort_decide::gate::GateDecision;
use retort_formula::formula::Formula;
use retort_formula::shape::Shape;

/// What a step description's template sees.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct TemplateContext {
    /// The preflight snapshot, as `snapshot.json` holds it.
    pub preflight: Snapshot,
    /// The formula.
    pub formula: FormulaInfo,
    /// The model the step runs on (its own, else the formula's), or `""`.
    pub model: String,
    /// The step.
    pub step: StepInfo,
    /// The run.
    pub run: RunInfo,
    /// The formula's variables: `--var` values, else their defaults.
    /// Each is also at the top level of the context (`{{ NAME }}`), unless
    /// its name is one of [`context_names`] (which `retort check` refuses).
    pub vars: BTreeMap<String, String>,
    /// The formula's `[meta]` table, as JSON values (TOML datetimes as
    /// their RFC 3339 text).
    pub meta: BTreeMap<String, serde_json::Value>,
    /// This run's findings, from the formula's rules: `firing`, `new`,
    /// `pending`, `resolved`, `all`.
    pub findings: FindingsContext,
    /// The actions of firing findings: `run` (with results), `proposed`,
    /// `held`, and the proposals still `pending`.
    pub actions: ActionsContext,
    /// The formula's last run (`phase`, `findings`, `alerts`, …), or null
    /// before its first: "post the all-clear only if the previous run had
    /// alerts" is `{% if previous and previous.alerts %}`.
    pub previous: Option<PreviousRun>,
    /// The gate's decision: `mode`, `open`, `reason`.
    pub gate: GateDecision,
    /// The step's ancestors (the steps it needs, directly or not) by id,
    /// each with its `outcome` and `output` (`retort signal done
    /// --output`). `retort check` refuses any other step.
    pub steps: BTreeMap<String, StepValue>,
}

/// What the `[agent] command` template sees.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AgentContext {
    /// The model of the session being started, or `""`.
    pub model: String,
    /// The formula.
    pub formula: FormulaInfo,
    /// The formula's variables; each is also at the top level, as in
    /// [`TemplateContext`].
    pub vars: BTreeMap<String, String>,
    /// The formula's `[meta]` table.
    pub meta: BTreeMap<String, serde_json::Value>,
}

/// The names a declared var may not take, because templates see vars at
/// the top level of their context too and these names are already there:
/// the top-level names of [`TemplateContext`] and [`AgentContext`], those
/// the built-in prompt template adds (`first`, `step_ids`,
/// `context_files`, `preflight_markdown`, `findings_markdown`) and Tera's
/// `loop`. Sorted.
pub fn context_names() -> &'static [String] {
    static NAMES: LazyLock<Vec<String>> = LazyLock::new(|| {
        let mut names: Vec<String> = [description_shape(), agent_command_shape()]
            .iter()
            .flat_map(|shape| shape.keys(shape.root()))
            .chain(PROMPT_NAMES.iter().copied())
            .chain(["loop"])
            .map(str::to_string)
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    });
    &NAMES
}

/// The names the built-in prompt template adds to a step's context.
const PROMPT_NAMES: &[&str] = &[
    "first",
    "step_ids",
    "context_files",
    "preflight_markdown",
    "findings_markdown",
];

/// The formula's `[meta]` table as JSON values: TOML datetimes become
/// their RFC 3339 text (serde would make them a private one-key table).
pub fn meta_values(formula: &Formula) -> BTreeMap<String, serde_json::Value> {
    fn json(value: &toml::Value) -> serde_json::Value {
        match value {
            toml::Value::String(text) => text.clone().into(),
            toml::Value::Integer(n) => (*n).into(),
            toml::Value::Float(x) => (*x).into(),
            toml::Value::Boolean(b) => (*b).into(),
            toml::Value::Datetime(at) => at.to_string().into(),
            toml::Value::Array(items) => items.iter().map(json).collect(),
            toml::Value::Table(table) => table
                .iter()
                .map(|(key, value)| (key.clone(), json(value)))
                .collect::<serde_json::Map<_, _>>()
                .into(),
        }
    }
    formula
        .meta
        .iter()
        .map(|(key, value)| (key.clone(), json(value)))
        .collect()
}

/// The formula, as templates see it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct FormulaInfo {
    /// Its name.
    pub name: String,
    /// Its description.
    pub description: String,
    /// Its author's version number, if any.
    pub version: Option<u32>,
    /// Its model, or `""`.
    pub model: String,
}

impl FormulaInfo {
    /// The template view of `formula`.
    pub fn of(formula: &Formula) -> Self {
        FormulaInfo {
            name: formula.name().to_string(),
            description: formula.description.clone(),
            version: formula.version,
            model: formula.model.clone().unwrap_or_default(),
        }
    }
}

/// The step, as templates see it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct StepInfo {
    /// Its id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// Its position in the run, from 1.
    pub number: usize,
    /// How many steps the run has.
    pub count: usize,
}

/// What templates know of the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct RunInfo {
    /// The run id, such as `20261121-112000-3fa9`.
    pub id: String,
    /// The run directory.
    pub dir: String,
    /// The phase file.
    pub phase_file: String,
}

impl RunInfo {
    /// The stand-in `retort render` uses: no run exists.
    pub fn placeholder() -> Self {
        RunInfo {
            id: "RUN_ID".to_string(),
            dir: "$RETORT_RUN_DIR".to_string(),
            phase_file: "$PHASE_FILE".to_string(),
        }
    }
}

/// The shape of [`TemplateContext`], for checking description templates:
/// its JSON Schema compiled ahead of time into
/// `crates/prompt/shapes/description.json` (see [`Shape::generated`]).
pub fn description_shape() -> &'static Shape {
    static SHAPE: LazyLock<Shape> = LazyLock::new(|| {
        Shape::generated(include_str!("../../shapes/description.json"), || {
            shape_now::<TemplateContext>()
        })
    });
    &SHAPE
}

/// The shape of [`AgentContext`], for checking the agent command template:
/// its JSON Schema compiled ahead of time into
/// `crates/prompt/shapes/agent-command.json` (see [`Shape::generated`]).
pub fn agent_command_shape() -> &'static Shape {
    static SHAPE: LazyLock<Shape> = LazyLock::new(|| {
        Shape::generated(include_str!("../../shapes/agent-command.json"), || {
            shape_now::<AgentContext>()
        })
    });
    &SHAPE
}

/// The shape of `T` compiled now from its JSON Schema, without
/// descriptions (templates only look paths up): what the files under
/// `shapes/` hold for [`TemplateContext`] and [`AgentContext`].
pub fn shape_now<T: schemars::JsonSchema>() -> Shape {
    let schema = serde_json::to_value(schemars::schema_for!(T));
    Shape::from_schema(&schema.unwrap_or_default()).without_descriptions()
}
