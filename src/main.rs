//! `retort`: the command-line front end of the engine. Parsing, printing
//! and exit statuses live here; everything else is in the workspace crates.

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use retort_engine::run::{self, Plan, Progress, RunError, RunOptions, StepOutcome};
use retort_engine::session::TmuxServer;
use retort_engine::signal::{self, Signal, SignalRecord};
use retort_engine::state::{RUN_DIR_ENV, RunDir, StateDir};

use cli::{Cli, Command, SignalArg};

/// Exit status for an invalid invocation or formula.
const EXIT_INVALID: u8 = 2;
/// Exit status when a run could not be carried out (as a failed run).
const EXIT_FAILED: u8 = 1;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    ExitCode::from(runtime.block_on(dispatch(cli.command)))
}

async fn dispatch(command: Command) -> u8 {
    match command {
        Command::Render { formula, step } => render(formula, step).await,
        Command::Run {
            formula,
            agent,
            state_dir,
            phase_file,
            dry_run,
        } => {
            let state = match StateDir::resolve(state_dir.as_deref()) {
                Ok(state) => state,
                Err(error) => return invalid(&error.to_string()),
            };
            let options = options(formula, agent, state, phase_file);
            if dry_run {
                dry_run_plan(&options).await
            } else {
                run_formula(&options).await
            }
        }
        Command::Signal {
            signal,
            reason,
            step,
        } => send_signal(signal, reason, step),
    }
}

fn options(
    formula: PathBuf,
    agent: Option<String>,
    state: StateDir,
    phase_file: Option<PathBuf>,
) -> RunOptions {
    RunOptions {
        formula,
        agent,
        state,
        phase_file,
        cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
        tmux: TmuxServer::default(),
        preflight: retort_preflight::Config::default(),
        bin_dir: std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(PathBuf::from)),
    }
}

async fn render(formula: PathBuf, step: Option<String>) -> u8 {
    // Rendering needs no state directory; a placeholder keeps it pure.
    let options = options(formula, None, StateDir::placeholder(), None);
    let plan = match prepare(&options, true).await {
        Ok(plan) => plan,
        Err(code) => return code,
    };
    let prompts = match &step {
        Some(id) => match plan.prompt(id) {
            Ok(prompt) => vec![prompt],
            Err(error) => return invalid(&error.to_string()),
        },
        None => plan.prompts.iter().collect(),
    };
    let mut out = String::new();
    for (i, prompt) in prompts.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&format!("==> step {}: {}\n", prompt.step, prompt.title));
        out.push_str(&prompt.text);
        if !prompt.text.ends_with('\n') {
            out.push('\n');
        }
    }
    print!("{out}");
    0
}

async fn dry_run_plan(options: &RunOptions) -> u8 {
    let plan = match prepare(options, false).await {
        Ok(plan) => plan,
        Err(code) => return code,
    };
    print!("{}", describe_plan(&plan, options));
    0
}

async fn run_formula(options: &RunOptions) -> u8 {
    let plan = match prepare(options, false).await {
        Ok(plan) => plan,
        Err(code) => return code,
    };
    let mut show = |progress: Progress<'_>| match progress {
        Progress::SessionStarted { session, run_dir } => eprintln!(
            "retort: {} run {}: agent `{}` in tmux session {session} (watch: tmux attach -t {session})\nretort: run directory {}",
            plan.loaded.formula.name(),
            plan.run_id,
            plan.agent_command,
            run_dir.display()
        ),
        Progress::StepStarted {
            number,
            count,
            id,
            title,
        } => eprintln!("==> step {number}/{count} {id}: {title}"),
        Progress::StepEnded(result) => {
            let took = result
                .duration_ms
                .map(|ms| format!(" in {:.1}s", ms as f64 / 1000.0))
                .unwrap_or_default();
            match (&result.outcome, &result.reason) {
                (StepOutcome::Done, _) | (_, None) => {
                    eprintln!("    {}{took}", result.outcome.as_str());
                }
                (outcome, Some(reason)) => {
                    eprintln!("    {}{took}: {reason}", outcome.as_str());
                }
            }
        }
    };
    match run::execute(&plan, options, &mut show).await {
        Ok(report) => {
            for warning in &report.warnings {
                eprintln!("warning: {warning}");
            }
            let journal = report
                .journal_file
                .as_ref()
                .map(|p| format!("; journal {}", p.display()))
                .unwrap_or_default();
            eprintln!(
                "retort: PHASE:{}{} (phase file {}{journal})",
                report.phase,
                report
                    .reason
                    .as_ref()
                    .map(|r| format!(" — {r}"))
                    .unwrap_or_default(),
                report.phase_file.display()
            );
            report.phase.exit_code()
        }
        Err(error) => {
            eprintln!("error: {error}");
            EXIT_FAILED
        }
    }
}

/// Runs `run::prepare`, printing warnings, and turns errors into exit statuses.
async fn prepare(options: &RunOptions, placeholder_run: bool) -> Result<Plan, u8> {
    match run::prepare(options, placeholder_run).await {
        Ok(plan) => {
            for warning in &plan.warnings {
                eprintln!("warning: {warning}");
            }
            Ok(plan)
        }
        Err(RunError::Formula(error)) => {
            eprintln!("{:?}", miette::Report::new(error));
            Err(EXIT_INVALID)
        }
        Err(error) => Err(invalid(&error.to_string())),
    }
}

fn describe_plan(plan: &Plan, options: &RunOptions) -> String {
    let formula = &plan.loaded.formula;
    let mut text = format!(
        "Plan for {} ({})\n",
        formula.name(),
        plan.loaded.path.display()
    );
    let journal = retort_journal::journal_file(&plan.journal_dir, plan.started_at);
    for (label, value) in [
        ("run id", plan.run_id.clone()),
        ("session", plan.session_name.clone()),
        ("agent", plan.agent_command.clone()),
        ("state dir", options.state.path().display().to_string()),
        ("run dir", plan.run_dir.path().display().to_string()),
        ("phase file", plan.phase_file.display().to_string()),
        ("journal", journal.display().to_string()),
    ] {
        text.push_str(&format!("  {label:<11} {value}\n"));
    }
    text.push_str("  health:\n");
    for line in plan.snapshot.health_summary() {
        text.push_str(&format!("    {line}\n"));
    }
    text.push_str("  steps, in topological order:\n");
    for (position, &index) in plan.dag.order().iter().enumerate() {
        let step = &formula.steps[index];
        let needs: Vec<&str> = plan
            .dag
            .needs(index)
            .into_iter()
            .map(|i| formula.steps[i].id())
            .collect();
        let bytes = plan
            .prompts
            .get(position)
            .map_or(0, |prompt| prompt.text.len());
        text.push_str(&format!(
            "    {}. {} — {} (timeout {}, prompt {} bytes{})\n",
            position + 1,
            step.id(),
            step.title(),
            humantime::format_duration(step.timeout()),
            bytes,
            if needs.is_empty() {
                String::new()
            } else {
                format!(", needs {}", needs.join(", "))
            }
        ));
    }
    text.push_str(
        "Dry run: nothing was started or written. `retort render FORMULA` prints the prompts.\n",
    );
    text
}

fn send_signal(signal: SignalArg, reason: Option<String>, step: Option<String>) -> u8 {
    let Some(dir) = std::env::var_os(RUN_DIR_ENV).filter(|d| !d.is_empty()) else {
        return invalid(&signal::SignalError::NotInRun.to_string());
    };
    let run = RunDir::new(PathBuf::from(dir));
    let step = match step.map_or_else(|| signal::current_step(&run), Ok) {
        Ok(step) => step,
        Err(error) => return invalid(&error.to_string()),
    };
    let signal = match signal {
        SignalArg::Done => Signal::Done,
        SignalArg::Failed => Signal::Failed,
        SignalArg::Escalate => Signal::Escalate,
    };
    let record = SignalRecord {
        step: step.clone(),
        signal,
        reason,
        at: chrono::Utc::now(),
    };
    match signal::write(&run, &record) {
        Ok(()) => {
            println!("retort: step `{step}` signalled {signal}");
            0
        }
        Err(error) => {
            eprintln!("error: {error}");
            EXIT_FAILED
        }
    }
}

fn invalid(message: &str) -> u8 {
    eprintln!("error: {message}");
    EXIT_INVALID
}
