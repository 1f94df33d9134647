//! A plan's agent sessions: which steps share one, the agent command each
//! runs, and how a new session's agent is known to be ready.

use std::collections::BTreeMap;

use retort_agent::profile::Profile;
use retort_agent::ready::Readiness;
use retort_formula::dag::StepDag;
use retort_formula::formula::{
    AgentSection, DEFAULT_AGENT_COMMAND, DEFAULT_READY_TIMEOUT, Formula,
};
use retort_os::paths::file_safe;
use retort_prompt::prompt::{opens_session, render_agent_command};

use super::{RunOptions, SessionPlan};
use crate::run::RunError;

/// The agent sessions of run `run_id`, in order: a new one at each step
/// that opens one ([`opens_session`]: the first, and each change of model
/// or tools), the steps after it joining it. Named `retort-FORMULA-RUN_ID`,
/// then `…-2`, `…-3`; each runs `--agent`, else the formula's
/// `[agent] command`, else [`DEFAULT_AGENT_COMMAND`], rendered for its model.
///
/// # Errors
/// [`RunError::Prompt`] when the agent command's template fails to render.
pub(super) fn plan_sessions(
    options: &RunOptions,
    formula: &Formula,
    dag: &StepDag,
    vars: &BTreeMap<String, String>,
    run_id: &str,
) -> Result<Vec<SessionPlan>, RunError> {
    let template = options
        .agent
        .clone()
        .or_else(|| formula.agent.command.as_ref().map(|c| c.get_ref().clone()))
        .unwrap_or_else(|| DEFAULT_AGENT_COMMAND.to_string());
    let base_name = format!("retort-{}-{}", file_safe(formula.name()), run_id);
    let mut sessions: Vec<SessionPlan> = Vec::new();
    for position in 0..dag.order().len() {
        if opens_session(formula, dag, position) {
            let step = &formula.steps[dag.order()[position]];
            let model = formula.model_of(step).map(str::to_string);
            let agent_command = render_agent_command(&template, formula, model.as_deref(), vars)?;
            let name = match sessions.len() {
                0 => base_name.clone(),
                n => format!("{base_name}-{}", n + 1),
            };
            let profile = Profile::new(&formula.agent, &agent_command, &[step]);
            sessions.push(SessionPlan {
                name,
                model,
                agent_command,
                steps: position..position + 1,
                profile,
            });
        } else if let Some(last) = sessions.last_mut() {
            last.steps.end = position + 1;
        }
    }
    Ok(sessions)
}

/// How a new session's agent is known to be ready for its first prompt:
/// the `--ready` text with `--agent`, else the formula's `[agent] ready`;
/// without either, Claude Code's known footer, or a settled screen for
/// another agent; within the formula's `ready_timeout` (default
/// [`DEFAULT_READY_TIMEOUT`]).
pub(super) fn readiness(
    options: &RunOptions,
    agent: &AgentSection,
    sessions: &[SessionPlan],
) -> Readiness {
    let ready_text = match &options.agent {
        // The formula's ready text describes the formula's own agent.
        Some(_) => options.ready.clone(),
        None => agent.ready.as_ref().map(|text| text.get_ref().clone()),
    };
    let timeout = agent
        .ready_timeout
        .as_ref()
        .map_or(DEFAULT_READY_TIMEOUT, |t| t.get_ref().0);
    // Claude Code's ready screen is known: its input box's footer.
    let claude = sessions
        .first()
        .is_some_and(|s| s.profile.kind == retort_formula::formula::AgentKind::ClaudeCode);
    match ready_text {
        Some(text) => Readiness::Shows { text, timeout },
        None if claude => Readiness::Shows {
            text: retort_agent::claude_code::SHORTCUTS_FOOTER.to_string(),
            timeout,
        },
        None => Readiness::Settled { timeout },
    }
}
