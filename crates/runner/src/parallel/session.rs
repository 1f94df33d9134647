//! The agent sessions of a run whose steps the scheduler starts: each
//! session's agent started for its first step (a tmux session, or a
//! headless agent), kept idle between its steps, and handed to the next.
//!
//! Each session has files of its own, so that sessions running at once
//! never read what another's agent wrote: its current-step file
//! ([`current_step_file`], named by [`CURRENT_STEP_FILE_ENV`]), its phase
//! file and its hook events (`RUN/agent.phase`, `agent-events.jsonl`;
//! `agent-2.phase`, `agent-events-2.jsonl`, … for the sessions after the
//! first, see [`retort_agent::run_dir`]).

use retort_agent::agent::Agent;
use retort_agent::profile::Profile;
use retort_agent::session::AgentSession;
use retort_agent::watchdog::TmuxWatch;
use retort_formula::formula::{Backend, Step};
use retort_prompt::prompt::render_agent_command;

use super::Setup;
use crate::agent_phase::{Agents, headless_agent, session_spec};
use crate::plan::{Plan, RunOptions, SessionPlan};
use crate::run::{Progress, RunError};
use crate::state::RunDir;
use crate::tmux_start::tmux_command;
use crate::turns::SessionAccount;

/// The environment variable naming the file that holds the step a
/// session's agent is on (`RUN/current_step`, `current_step-2`, … by
/// session): `retort signal` without `--step` reads it.
pub const CURRENT_STEP_FILE_ENV: &str = "RETORT_CURRENT_STEP_FILE";

/// A session's agent and what it carries from one step to the next.
pub(super) struct SessionAgent {
    /// The agent.
    pub(super) agent: Agent,
    /// Its stream-json account (headless Claude Code).
    pub(super) account: SessionAccount,
    /// Its watchdog (tmux).
    pub(super) tmux_watch: Option<TmuxWatch>,
    /// What retort knows of its CLI.
    pub(super) profile: Profile,
    /// Its agent command, as rendered for the session (its model and the
    /// formula's vars in it), shown in the progress line of its start.
    pub(super) command: String,
}

/// A session's agent, when no step of it runs.
pub(super) enum Slot {
    /// Not started yet, or ended (a retry starts a new one).
    NotStarted,
    /// Started, between two steps; `bool`: its last step ended with its
    /// own signal.
    Idle(Box<(SessionAgent, bool)>),
    /// One of its steps runs.
    Busy,
}

/// The agent for `step`, of session `session`: the one idle since the
/// session's last step, or a new one, whose start is shown in `progress`
/// (and its tmux session added to `agents`). The slot is left busy.
///
/// # Errors
/// Why a new agent could not start, as the step's reason; the slot is
/// then left not started.
pub(super) async fn take_agent(
    setup: &Setup<'_>,
    slots: &mut [Slot],
    agents: &mut Agents,
    session: usize,
    step: &Step,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<SessionAgent, String> {
    if let Slot::Idle(idle) = std::mem::replace(&mut slots[session], Slot::Busy) {
        return Ok(idle.0);
    }
    let name = match session {
        0 => setup.base_name.clone(),
        n => format!("{}-{}", setup.base_name, n + 1),
    };
    let run = setup.run;
    let started = start_session(
        setup.plan,
        setup.options,
        run,
        session,
        name,
        step,
        &setup.template,
        &setup.agent_template,
    )
    .await;
    match &started {
        Ok(started) => match &started.agent {
            Agent::Tmux(tmux) => {
                agents.sessions.push(tmux.name().to_string());
                progress(Progress::SessionStarted {
                    session: tmux.name(),
                    command: &started.command,
                    run_dir: run.path(),
                });
            }
            Agent::Headless(headless) if session == 0 => {
                progress(Progress::HeadlessStarted {
                    command: headless.command(),
                    per_session: headless.is_stream(),
                    run_dir: run.path(),
                    output_dir: &run.agent_output_dir(),
                });
            }
            Agent::Headless(_) => {}
        },
        Err(_) => slots[session] = Slot::NotStarted,
    }
    started
}

/// Starts the agent of session `number` for its first step `step`: a
/// tmux session (with Claude Code's settings) or a headless agent, its
/// environment naming the session's current-step file.
///
/// # Errors
/// Why it could not start, as the step's reason.
#[allow(clippy::too_many_arguments)]
async fn start_session(
    plan: &Plan,
    options: &RunOptions,
    run: &RunDir,
    number: usize,
    name: String,
    step: &Step,
    first_command: &str,
    agent_template: &str,
) -> Result<SessionAgent, String> {
    let formula = &plan.loaded.formula;
    let model = formula.model_of(step).map(str::to_string);
    let agent_command = match number {
        0 => first_command.to_string(),
        _ => render_agent_command(agent_template, formula, model.as_deref(), &plan.vars)
            .map_err(|e| e.to_string())?,
    };
    let profile = Profile::new(&formula.agent, &agent_command, &[step]);
    let planned = SessionPlan {
        name,
        model,
        agent_command: agent_command.clone(),
        steps: 0..0,
        profile,
    };
    let mut spec = session_spec(plan, &planned, options, run, number, number);
    spec.env.push((
        CURRENT_STEP_FILE_ENV.to_string(),
        current_step_file(run, number).display().to_string(),
    ));
    let started = match plan.backend {
        Backend::Tmux => match tmux_command(&planned, options, run, number) {
            Ok(command) => {
                spec.command = command;
                AgentSession::start(&options.tmux, &spec)
                    .await
                    .map(Agent::Tmux)
                    .map_err(RunError::Session)
            }
            Err(error) => Err(error),
        },
        Backend::Headless => headless_agent(&planned, run, number, &mut spec).map(Agent::Headless),
    };
    let agent = started.map_err(|e| format!("cannot start session {}: {e}", planned.name))?;
    let tmux_watch = match &agent {
        Agent::Tmux(_) => Some(TmuxWatch::new(&planned.profile, run, number)),
        Agent::Headless(_) => None,
    };
    Ok(SessionAgent {
        agent,
        account: SessionAccount::default(),
        tmux_watch,
        profile: planned.profile,
        command: agent_command,
    })
}

/// The file holding the step session `number`'s agent is on:
/// `RUN/current_step` for the first, `current_step-N` for the Nth after.
pub fn current_step_file(run: &RunDir, number: usize) -> std::path::PathBuf {
    match number {
        0 => run.current_step_file(),
        n => run.path().join(format!("current_step-{}", n + 1)),
    }
}
