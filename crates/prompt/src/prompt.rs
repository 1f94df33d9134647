//! Prompts: each step's description rendered with Tera against the
//! snapshot, then set in retort's built-in prompt template.
//!
//! Every prompt carries the step's title and rendered description and ends
//! with a footer telling the agent how to signal the end of the step. The
//! prompt that opens an agent session (the run's first, and the first after
//! a change of model) also carries the formula's name and description, the
//! `[context] files` and the preflight snapshot as markdown.
//!
//! A description is a Tera 2 template over a [`TemplateContext`]; its JSON
//! Schema is what `retort check` checks variable paths against, so the two
//! cannot disagree. Declared vars are at the context's top level too
//! (`{{ NAME }}` as well as `{{ vars.NAME }}`), and the formula's `[meta]`
//! is `meta`. A step (or formula) with `raw = true` is sent verbatim.
//!
//! The template contexts, the names they hold and their shapes are in
//! `template_context`.

mod template_context;

use std::collections::BTreeMap;

use tera::{Context, Tera};
use thiserror::Error;

use retort_preflight::Snapshot;

use crate::context::ContextFile;
use retort_decide::condition::StepValue;
use retort_decide::decide::{Decision, DecisionContext};
use retort_formula::dag::StepDag;
use retort_formula::formula::Formula;

pub use template_context::{
    AgentContext, FormulaInfo, RunInfo, StepInfo, TemplateContext, agent_command_shape,
    context_names, description_shape, meta_values, shape_now,
};

/// retort's built-in prompt template (Tera 2).
pub const PROMPT_TEMPLATE: &str = include_str!("../templates/prompt.md");

const PROMPT_TEMPLATE_NAME: &str = "prompt.md";

/// Puts each of `vars` at the top level of `context`, except those whose
/// name the context already has ([`context_names`]).
fn insert_vars(context: &mut Context, vars: &BTreeMap<String, String>) {
    let taken = context_names();
    for (name, value) in vars {
        if taken.binary_search(name).is_err() {
            context.insert(name.clone(), value);
        }
    }
}

/// Whether the step at `position` of the topological order opens an agent
/// session: the first step does, and so does a step whose model, or whose
/// `allowed_tools` or `disallowed_tools`, differ from the step before it
/// (an agent's permissions are fixed when it starts).
pub fn opens_session(formula: &Formula, dag: &StepDag, position: usize) -> bool {
    let order = dag.order();
    match position.checked_sub(1) {
        None => true,
        Some(previous) => {
            let (a, b) = (
                &formula.steps[order[previous]],
                &formula.steps[order[position]],
            );
            let allowed = |s: &'_ retort_formula::formula::Step| {
                s.allowed_tools
                    .iter()
                    .map(|t| t.get_ref().clone())
                    .collect::<Vec<_>>()
            };
            let denied = |s: &'_ retort_formula::formula::Step| {
                s.disallowed_tools
                    .iter()
                    .map(|t| t.get_ref().clone())
                    .collect::<Vec<_>>()
            };
            formula.model_of(a) != formula.model_of(b)
                || allowed(a) != allowed(b)
                || denied(a) != denied(b)
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
    /// The agent command template failed.
    #[error("cannot render the agent command:\n{report}")]
    AgentCommand {
        /// Tera's report.
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

/// Renders the prompt of every step, in the DAG's topological order,
/// with `vars` the variables' values and `decision` the decide phase's.
/// A step's `steps.ID` (its ancestors' ends) are placeholders: outcome
/// `done`, output `<output of step `ID`>`; a run renders each prompt again
/// with the real ones as the step starts ([`PromptRenderer`]).
///
/// # Errors
/// The first [`PromptError`] met, naming its step.
pub fn render_prompts(
    formula: &Formula,
    dag: &StepDag,
    snapshot: &Snapshot,
    context_files: &[ContextFile],
    run: &RunInfo,
    vars: &BTreeMap<String, String>,
    decision: &Decision,
) -> Result<Vec<Prompt>, PromptError> {
    let renderer = PromptRenderer::new(formula, dag, snapshot, context_files, run, vars, decision)?;
    let ancestors = dag_ancestors(dag);
    (0..dag.order().len())
        .map(|position| {
            let index = dag.order()[position];
            let steps = ancestors[index]
                .iter()
                .map(|&a| {
                    let id = formula.steps[a].id().to_string();
                    let value = StepValue {
                        outcome: "done".to_string(),
                        output: format!("<output of step `{id}`>"),
                    };
                    (id, value)
                })
                .collect();
            renderer.render(position, opens_session(formula, dag, position), &steps)
        })
        .collect()
}

/// Each step's ancestors (indices into `formula.steps`), indexed like the
/// steps.
pub fn dag_ancestors(dag: &StepDag) -> Vec<std::collections::BTreeSet<usize>> {
    let n = dag.order().len();
    let mut ancestors = vec![std::collections::BTreeSet::new(); n];
    for &index in dag.order() {
        let mut mine = std::collections::BTreeSet::new();
        for need in dag.needs(index) {
            mine.insert(need);
            mine.extend(ancestors[need].iter().copied());
        }
        ancestors[index] = mine;
    }
    ancestors
}

/// Renders steps' prompts one at a time, as a run reaches them: what all
/// prompts share (the snapshot, findings, context files) is prepared once.
pub struct PromptRenderer<'a> {
    tera: Tera,
    formula: &'a Formula,
    dag: &'a StepDag,
    snapshot: &'a Snapshot,
    context_files: &'a [ContextFile],
    run: &'a RunInfo,
    vars: &'a BTreeMap<String, String>,
    decided: DecisionContext,
    preflight_markdown: String,
    findings_markdown: String,
    step_ids: Vec<&'a str>,
    meta: BTreeMap<String, serde_json::Value>,
}

impl<'a> PromptRenderer<'a> {
    /// A renderer for the steps of `formula`, with `decision`.
    ///
    /// # Errors
    /// [`PromptError::Template`] when retort's own prompt template does not
    /// parse (a bug).
    pub fn new(
        formula: &'a Formula,
        dag: &'a StepDag,
        snapshot: &'a Snapshot,
        context_files: &'a [ContextFile],
        run: &'a RunInfo,
        vars: &'a BTreeMap<String, String>,
        decision: &Decision,
    ) -> Result<PromptRenderer<'a>, PromptError> {
        let mut tera = Tera::new();
        tera.autoescape_on(Vec::<&str>::new());
        tera.add_raw_template(PROMPT_TEMPLATE_NAME, PROMPT_TEMPLATE)
            .map_err(|e| PromptError::Template {
                step: String::new(),
                report: e.to_string(),
            })?;
        Ok(PromptRenderer {
            tera,
            formula,
            dag,
            snapshot,
            context_files,
            run,
            vars,
            decided: decision.context(),
            preflight_markdown: snapshot.to_markdown(),
            findings_markdown: decision.to_markdown(),
            step_ids: dag.order().iter().map(|&i| formula.steps[i].id()).collect(),
            meta: meta_values(formula),
        })
    }

    /// The prompt of the step at `position` (in topological order);
    /// `first`: it opens its agent session (the formula's header, context
    /// files and snapshot come with it); `steps`: the ends of its
    /// ancestors, by id (`steps.ID` in its description).
    ///
    /// # Errors
    /// [`PromptError::Description`] when the description does not render.
    pub fn render(
        &self,
        position: usize,
        first: bool,
        steps: &BTreeMap<String, StepValue>,
    ) -> Result<Prompt, PromptError> {
        self.render_in(position, first, steps, self.run)
    }

    /// [`PromptRenderer::render`], with `run` in place of the renderer's
    /// [`RunInfo`]: for a step whose session's agent has a phase file of
    /// its own (`run.phase_file`, `RUN/agent-2.phase`, … when sessions run
    /// at once).
    ///
    /// # Errors
    /// [`PromptError::Description`] when the description does not render.
    pub fn render_in(
        &self,
        position: usize,
        first: bool,
        steps: &BTreeMap<String, StepValue>,
        run: &RunInfo,
    ) -> Result<Prompt, PromptError> {
        let formula = self.formula;
        let count = self.dag.order().len();
        let Some(&index) = self.dag.order().get(position) else {
            return Err(PromptError::Template {
                step: String::new(),
                report: format!("no step at position {position}"),
            });
        };
        let step = &formula.steps[index];
        let values = TemplateContext {
            preflight: self.snapshot.clone(),
            formula: FormulaInfo::of(formula),
            model: formula.model_of(step).unwrap_or_default().to_string(),
            step: StepInfo {
                id: step.id().to_string(),
                title: step.title().to_string(),
                number: position + 1,
                count,
            },
            run: run.clone(),
            vars: self.vars.clone(),
            meta: self.meta.clone(),
            findings: self.decided.findings.clone(),
            actions: self.decided.actions.clone(),
            previous: self.decided.previous.clone(),
            gate: self.decided.gate.clone(),
            steps: steps.clone(),
        };
        let mut context = Context::from_serialize(&values).map_err(|e| PromptError::Template {
            step: step.id().to_string(),
            report: e.to_string(),
        })?;
        insert_vars(&mut context, self.vars);

        let description = if step.is_template(formula.raw) {
            self.tera
                .render_str(step.description.get_ref(), &context, false)
                .map_err(|e| PromptError::Description {
                    step: step.id().to_string(),
                    report: e.to_string(),
                })?
        } else {
            step.description.get_ref().clone()
        };

        let mut step_value = serde_json::to_value(&values.step).unwrap_or_default();
        step_value["description"] = serde_json::Value::String(description.trim_end().to_string());
        context.insert("step", &step_value);
        context.insert("first", &first);
        // Only a session's opening prompt lists the steps; giving the list
        // to every step's context made rendering quadratic in the number
        // of steps (10,000 steps took 1.6 s, 50,000 35 s).
        let no_ids: &[&str] = &[];
        context.insert(
            "step_ids",
            if first {
                self.step_ids.as_slice()
            } else {
                no_ids
            },
        );
        context.insert("context_files", self.context_files);
        context.insert("preflight_markdown", self.preflight_markdown.trim_end());
        context.insert("findings_markdown", &self.findings_markdown);

        let text = self
            .tera
            .render(PROMPT_TEMPLATE_NAME, &context)
            .map_err(|e| PromptError::Template {
                step: step.id().to_string(),
                report: e.to_string(),
            })?;
        Ok(Prompt {
            step: step.id().to_string(),
            title: step.title().to_string(),
            text,
        })
    }
}

/// Renders the agent command template (`[agent] command`, `--agent`, or
/// the default `claude --model {{ model }}`) for a session on `model`.
///
/// # Errors
/// [`PromptError::AgentCommand`] with Tera's report.
pub fn render_agent_command(
    template: &str,
    formula: &Formula,
    model: Option<&str>,
    vars: &BTreeMap<String, String>,
) -> Result<String, PromptError> {
    let values = AgentContext {
        model: model.unwrap_or_default().to_string(),
        formula: FormulaInfo::of(formula),
        vars: vars.clone(),
        meta: meta_values(formula),
    };
    let mut context = Context::from_serialize(&values).map_err(|e| PromptError::AgentCommand {
        report: e.to_string(),
    })?;
    insert_vars(&mut context, vars);
    Tera::new()
        .render_str(template, &context, false)
        .map(|command| command.trim().to_string())
        .map_err(|e| PromptError::AgentCommand {
            report: e.to_string(),
        })
}
