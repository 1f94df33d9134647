//! A session's agent, as the sequential loop and the scheduler both start
//! and end it: its command and environment ([`session_spec`]), the
//! headless process with its Claude Code settings ([`headless_agent`]),
//! and its end ([`retire`]).

use retort_agent::agent::Agent;
use retort_agent::claude_code::settings_file;
use retort_agent::headless::HeadlessAgent;
use retort_agent::session::SessionSpec;
use retort_agent::watchdog::TmuxWatch;
use retort_formula::formula::AgentKind;
use retort_os::atomic::write_atomic;
use retort_os::paths::file_safe;
use retort_os::redact::Redactor;

use crate::plan::{Plan, RunOptions, SessionPlan};
use crate::run::{PANE_CAPTURE_LINES, RunError, write_file};
use crate::state::{EVENTS_FILE_ENV, PHASE_FILE_ENV, RUN_DIR_ENV, RunDir};

/// The agent's session `number` (from 0): the agent command in the
/// working directory, with retort's own environment (so that what cron or
/// the operator exported reaches the agent even when a tmux server with
/// another environment is already running), plus `RETORT_RUN_DIR`,
/// `PHASE_FILE` and `RETORT_EVENTS_FILE` (session `files`'s phase and
/// events files: `number` when sessions run at once, 0 when they go one at
/// a time), `RETORT_FORMULA`, `RETORT_RUN_ID`, and `PATH` with retort's
/// directory first.
pub(crate) fn session_spec(
    plan: &Plan,
    planned: &SessionPlan,
    options: &RunOptions,
    run: &RunDir,
    number: usize,
    files: usize,
) -> SessionSpec {
    let mut path: Vec<String> = options
        .bin_dir
        .iter()
        .map(|dir| dir.display().to_string())
        .collect();
    if let Ok(existing) = std::env::var("PATH") {
        path.push(existing);
    }
    // The agent's own phase file: what it writes there signals the step in
    // progress; retort's phase file stays retort's. Its hooks' events go
    // to its own file too.
    let ours = [
        (RUN_DIR_ENV, run.path().display().to_string()),
        (
            PHASE_FILE_ENV,
            run.agent_phase_file(files).display().to_string(),
        ),
        (
            EVENTS_FILE_ENV,
            run.events_file(files).display().to_string(),
        ),
        ("PATH", path.join(":")),
        ("RETORT_FORMULA", plan.loaded.formula.name().to_string()),
        ("RETORT_RUN_ID", plan.run_id.clone()),
    ];
    let mut env: Vec<(String, String)> = std::env::vars()
        .filter(|(key, _)| !key.starts_with("TMUX") && !ours.iter().any(|(name, _)| name == key))
        .collect();
    env.extend(
        ours.into_iter()
            .map(|(key, value)| (key.to_string(), value)),
    );
    SessionSpec {
        name: planned.name.clone(),
        command: planned.agent_command.clone(),
        exit_file: run.agent_exit_file(number),
        env_file: run.agent_env_file(number),
        cwd: options.cwd.clone(),
        env,
    }
}

/// Ends the agent of session `number`: a tmux session has its pane's last
/// lines saved (secrets replaced by `redactor`) and is killed; a headless agent's process group is ended
/// (`graceful`: its last step ended with its signal, so it has time to
/// exit by itself first).
pub(crate) async fn retire(
    run: &RunDir,
    redactor: &Redactor,
    number: usize,
    agent: Agent,
    graceful: bool,
    warnings: &mut Vec<String>,
) {
    let session = match agent {
        Agent::Tmux(session) => session,
        Agent::Headless(mut headless) => {
            headless.end(graceful).await;
            crate::run::redact_outputs(run, redactor);
            return;
        }
    };
    if let Some(pane) = session.capture(PANE_CAPTURE_LINES).await {
        let pane = redactor.redact(&pane).into_owned();
        let _ = write_atomic(&run.pane_capture_file(number), pane.as_bytes());
    }
    if let Err(error) = session.kill().await {
        warnings.push(format!(
            "could not kill tmux session {}: {error}",
            session.name()
        ));
    }
}

/// The headless agent of session `number`: for Claude Code, one
/// stream-json process for the session, its command line with
/// `--settings RUN/claude-settings.json` (written here: the permissions of
/// [`retort_agent::profile::Profile::claude_settings`]; print mode reports
/// through its output, so no hooks); for a generic agent, its command once
/// per step, as written.
pub(crate) fn headless_agent(
    planned: &SessionPlan,
    run: &RunDir,
    number: usize,
    spec: &mut SessionSpec,
) -> Result<HeadlessAgent, RunError> {
    let profile = &planned.profile;
    if profile.kind == AgentKind::Generic {
        return Ok(HeadlessAgent::new(spec.clone()));
    }
    let settings = settings_file(run, number);
    let mut json = profile.claude_settings("");
    if let Some(object) = json.as_object_mut() {
        object.remove("hooks");
    }
    write_file(
        &settings,
        &serde_json::to_vec_pretty(&json).unwrap_or_default(),
    )?;
    spec.command = profile.headless_command(&spec.command, &settings);
    Ok(HeadlessAgent::stream_json(spec.clone()))
}

/// Gives the agent step `step`'s prompt (`RUN/prompts/STEP.md`): pasted
/// into its tmux session (through the Claude Code watchdog when there is
/// one, which checks it arrived), or to its headless agent. The sequential
/// loop and the scheduler both deliver through here, once the step is
/// marked current.
///
/// # Errors
/// What went wrong, naming the step: the prompt not delivered, or the
/// headless agent not started.
pub(crate) async fn deliver_prompt(
    run: &RunDir,
    agent: &mut Agent,
    tmux_watch: Option<&mut TmuxWatch>,
    step: &str,
    plan: &Plan,
) -> Result<(), String> {
    match agent {
        Agent::Tmux(session) => {
            let buffer = format!("retort-{}-{}", plan.run_id, file_safe(step));
            let prompt = run.prompt_file(step);
            let delivered = match tmux_watch {
                Some(tmux) => {
                    tmux.deliver(session, &prompt, &buffer, plan.submit_delay)
                        .await
                }
                None => session
                    .deliver(&prompt, &buffer, plan.submit_delay)
                    .await
                    .map_err(|e| e.to_string()),
            };
            delivered.map_err(|e| format!("step `{step}`: could not deliver its prompt: {e}"))
        }
        Agent::Headless(headless) => headless
            .deliver(step, &run.prompt_file(step), &run.agent_output_file(step))
            .await
            .map_err(|e| format!("could not start the agent on step `{step}`: {e}")),
    }
}
