//! Prompts: each step's description rendered with Tera against the
//! snapshot, then set in retort's built-in prompt template.
//!
//! Every prompt carries the step's title and rendered description and ends
//! with a footer telling the agent how to signal the end of the step. The
//! first prompt of a run also carries the formula's name and description,
//! the `[context] files` and the preflight snapshot as markdown.
//!
//! A description is a Tera 2 template over this context:
//!
//! | name        | value                                                           |
//! |-------------|-----------------------------------------------------------------|
//! | `preflight` | the snapshot, as `snapshot.json` shows it (`preflight.system.memory.available_mb`) |
//! | `formula`   | `{ name, description, version, model }`                         |
//! | `model`     | the formula's model, or `""`                                     |
//! | `step`      | `{ id, title, number, count }` (number counts from 1)           |
//! | `run`       | `{ id, dir, phase_file }` (placeholders under `retort render`)  |
//! | `vars`      | formula variables (empty for now)                               |
//! | `findings`  | this run's findings: `{ firing, new, pending, resolved, all }`, each a list of `{ fingerprint, rule, label, priority, message, state, new, consecutive, needed, first_seen, fired_at, resolved_at, action }` |
//! | `actions`   | `{ run, proposed, held, pending }`: auto actions with their `result` (`outcome`, `exit_code`, `stdout`, `stderr`, …), proposals made, actions held back, proposals still waiting |
//! | `previous`  | the formula's last run: `{ run_id, at, phase, reason, gate_open, findings, alerts }`, or null |
//! | `gate`      | `{ mode, open, reason }`                                         |

use serde::Serialize;
use serde_json::{Map, Value, json};
use tera::{Context, Tera};
use thiserror::Error;

use retort_preflight::Snapshot;

use crate::context::ContextFile;
use crate::dag::StepDag;
use crate::decide::Decision;
use crate::formula::Formula;

/// retort's built-in prompt template (Tera 2).
pub const PROMPT_TEMPLATE: &str = include_str!("../templates/prompt.md");

const PROMPT_TEMPLATE_NAME: &str = "prompt.md";

/// What templates know of the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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

/// One step's prompt, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    /// The step's id.
    pub step: String,
    /// The step's title.
    pub title: String,
    /// The full text the agent receives.
    pub text: String,
}

/// A prompt could not be rendered.
#[derive(Debug, Error)]
pub enum PromptError {
    /// A step's description is not a valid template, or uses a value the
    /// context does not have.
    #[error("cannot render the description of step `{step}`:\n{report}")]
    Description {
        /// The step's id.
        step: String,
        /// Tera's report, with the offending line of the description.
        report: String,
    },
    /// The prompt template itself failed (a bug in retort's template).
    #[error("cannot render the prompt of step `{step}`:\n{report}")]
    Template {
        /// The step's id.
        step: String,
        /// Tera's report.
        report: String,
    },
}

/// Renders the prompt of every step, in the DAG's topological order. The
/// first of them is the run's opening prompt.
///
/// # Errors
/// The first [`PromptError`] met, naming its step.
pub fn render_prompts(
    formula: &Formula,
    dag: &StepDag,
    snapshot: &Snapshot,
    context_files: &[ContextFile],
    run: &RunInfo,
    decision: &Decision,
) -> Result<Vec<Prompt>, PromptError> {
    let mut tera = Tera::new();
    tera.autoescape_on(Vec::<&str>::new());
    tera.add_raw_template(PROMPT_TEMPLATE_NAME, PROMPT_TEMPLATE)
        .map_err(|e| PromptError::Template {
            step: String::new(),
            report: e.to_string(),
        })?;

    let preflight = serde_json::to_value(snapshot).unwrap_or(Value::Null);
    let preflight_markdown = snapshot.to_markdown();
    let findings = decision.findings_value();
    let actions = decision.actions_value();
    let previous = decision.previous_value();
    let gate = decision.gate_value();
    let findings_markdown = decision.to_markdown();
    let step_ids: Vec<&str> = dag.order().iter().map(|&i| formula.steps[i].id()).collect();
    let formula_value = json!({
        "name": formula.name(),
        "description": formula.description,
        "version": formula.version,
        "model": formula.model.clone().unwrap_or_default(),
    });

    let count = dag.order().len();
    let mut prompts = Vec::with_capacity(count);
    for (position, &index) in dag.order().iter().enumerate() {
        let step = &formula.steps[index];
        let step_value = json!({
            "id": step.id(),
            "title": step.title(),
            "number": position + 1,
            "count": count,
        });
        let mut context = Context::new();
        context.insert("preflight", &preflight);
        context.insert("formula", &formula_value);
        context.insert("model", &formula.model.clone().unwrap_or_default());
        context.insert("step", &step_value);
        context.insert("run", run);
        context.insert("vars", &Map::new());
        context.insert("findings", &findings);
        context.insert("actions", &actions);
        context.insert("previous", &previous);
        context.insert("gate", &gate);

        let description = tera
            .render_str(step.description.get_ref(), &context, false)
            .map_err(|e| PromptError::Description {
                step: step.id().to_string(),
                report: e.to_string(),
            })?;

        let mut step_value = step_value;
        step_value["description"] = Value::String(description.trim_end().to_string());
        context.insert("step", &step_value);
        context.insert("first", &(position == 0));
        context.insert("step_ids", &step_ids);
        context.insert("context_files", context_files);
        context.insert("preflight_markdown", preflight_markdown.trim_end());
        context.insert("findings_markdown", &findings_markdown);

        let text =
            tera.render(PROMPT_TEMPLATE_NAME, &context)
                .map_err(|e| PromptError::Template {
                    step: step.id().to_string(),
                    report: e.to_string(),
                })?;
        prompts.push(Prompt {
            step: step.id().to_string(),
            title: step.title().to_string(),
            text,
        });
    }
    Ok(prompts)
}

/// Renders the agent command template (`[agent] command`, `--agent`, or
/// the default `claude --model {{ model }}`) with `model` and `formula`.
///
/// # Errors
/// [`PromptError::Template`] with Tera's report.
pub fn render_agent_command(template: &str, formula: &Formula) -> Result<String, PromptError> {
    let tera = Tera::new();
    let mut context = Context::new();
    context.insert("model", &formula.model.clone().unwrap_or_default());
    context.insert(
        "formula",
        &json!({ "name": formula.name(), "model": formula.model }),
    );
    context.insert("vars", &Map::new());
    tera.render_str(template, &context, false)
        .map(|command| command.trim().to_string())
        .map_err(|e| PromptError::Template {
            step: "[agent] command".to_string(),
            report: e.to_string(),
        })
}
