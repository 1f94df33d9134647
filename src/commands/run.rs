//! `retort run`: a whole run, or with `--dry-run` its plan.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::Utc;
use retort_agent::usage::Usage;
use retort_decide::decide::ActionPlan;
use retort_decide::decide::history_path;
use retort_formula::formula::Backend;
use retort_journal::History;
use retort_runner::holds;
use retort_runner::lock::LockError;
use retort_runner::phase::Phase;
use retort_runner::run::{self, Plan, Progress, RunError, RunOptions, RunReport, StepOutcome};
use retort_runner::state::StateDir;

use super::{options, prepare, prepare_run};
use crate::{EXIT_FAILED, EXIT_TEMPFAIL, invalid};

/// What `retort run` was asked.
#[derive(Debug)]
pub struct RunArgs {
    /// The formula file.
    pub formula: PathBuf,
    /// `--agent`.
    pub agent: Option<String>,
    /// `--ready`.
    pub ready: Option<String>,
    /// `--backend`.
    pub backend: Option<Backend>,
    /// `--state-dir`.
    pub state_dir: Option<PathBuf>,
    /// `--phase-file`.
    pub phase_file: Option<PathBuf>,
    /// `--dry-run`.
    pub dry_run: bool,
    /// `--var`s.
    pub vars: BTreeMap<String, String>,
    /// `--snapshot`.
    pub snapshot: Option<PathBuf>,
    /// `--quiet`: nothing when done, else a short summary.
    pub quiet: bool,
    /// `retort rerun`: the run this one reruns, and from which step.
    pub rerun: Option<retort_runner::rerun::Rerun>,
    /// `--format json` (with `--dry-run`): the plan as JSON.
    pub json: bool,
}

/// Runs the formula (or prints its plan, with `--dry-run`). Returns the
/// exit status: 0 done, 1 failed, 2 invalid, 3 escalated, 75
/// ([`EXIT_TEMPFAIL`]) when another run of the formula holds its lock.
pub async fn run(args: RunArgs) -> u8 {
    let state = match StateDir::resolve(args.state_dir.as_deref()) {
        Ok(state) => state,
        Err(error) => return invalid(&error.to_string()),
    };
    let dry_run = args.dry_run;
    let mut options = options(
        args.formula,
        args.agent,
        state,
        args.phase_file,
        args.vars,
        args.snapshot,
    );
    options.ready = args.ready;
    options.backend = args.backend;
    options.rerun = args.rerun;
    if !dry_run {
        // From here on SIGINT, SIGTERM and SIGHUP end the run where it is,
        // recorded, instead of killing retort.
        options.interrupt = retort_os::interrupt::Interrupt::listen();
    }
    if dry_run && args.json {
        match prepare(&options, false, false).await {
            Ok(plan) => super::plan_json::print(&plan, &options),
            Err(code) => code,
        }
    } else if dry_run {
        dry_run_plan(&options).await
    } else if args.quiet {
        run_quietly(&options).await
    } else {
        run_formula(&options).await
    }
}

async fn dry_run_plan(options: &RunOptions) -> u8 {
    let plan = match prepare(options, false, false).await {
        Ok(plan) => plan,
        Err(code) => return code,
    };
    crate::out(&describe_plan(&plan, options));
    0
}

async fn run_formula(options: &RunOptions) -> u8 {
    let plan = match prepare_run(options, false).await {
        Ok(plan) => plan,
        Err(code) => return code,
    };
    let mut show = |progress: Progress<'_>| match progress {
        Progress::SessionStarted {
            session,
            command,
            run_dir,
        } => eprintln!(
            "retort: {} run {}: agent `{command}` in tmux session {session} (watch: tmux attach -t {session})\nretort: run directory {}",
            plan.loaded.formula.name(),
            plan.run_id,
            run_dir.display()
        ),
        Progress::HeadlessStarted {
            command,
            per_session,
            run_dir,
            output_dir,
        } => eprintln!(
            "retort: {} run {}: agent `{command}`, headless: {} (output in {})\nretort: run directory {}",
            plan.loaded.formula.name(),
            plan.run_id,
            if per_session {
                "one process per session, stream-json"
            } else {
                "one process per step"
            },
            output_dir.display(),
            run_dir.display()
        ),
        Progress::AgentReady { after, .. } => {
            eprintln!("retort: agent ready after {:.1}s", after.as_secs_f64());
        }
        Progress::StepStarted {
            number,
            count,
            id,
            title,
        } => eprintln!("==> step {number}/{count} {id}: {title}"),
        Progress::Decided(decision) => {
            let rules = plan.rules.has_rules();
            if rules && decision.findings.is_empty() {
                eprintln!("retort: findings: none");
            }
            for finding in &decision.findings {
                eprintln!("retort: finding {}", finding.line());
            }
            for line in &decision.problems {
                if line.contains(": failed: ") {
                    eprintln!("warning: rule {line}");
                } else {
                    eprintln!("retort: rule {line}");
                }
            }
            if rules || !decision.gate.open {
                eprintln!("retort: gate {}", decision.gate.describe());
            }
            for planned in decision
                .actions
                .iter()
                .filter(|a| !matches!(a.plan, ActionPlan::Run))
            {
                eprintln!("retort: action {}", planned.line(false));
            }
        }
        Progress::ActionRan(planned) => eprintln!("retort: action {}", planned.line(false)),
        Progress::Running(steps) => eprintln!("retort: running {}", steps.join(", ")),
        Progress::StepEnded(result) => {
            let cost = result
                .usage
                .map(|u| format!(" ({})", usage_words(&u)))
                .unwrap_or_default();
            let took = result
                .duration_ms
                .map(|ms| format!(" in {:.1}s{cost}", ms as f64 / 1000.0))
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
            let usage = report
                .usage
                .map(|u| format!("; {}", usage_words(&u)))
                .unwrap_or_default();
            eprintln!(
                "retort: PHASE:{}{} (phase file {}{journal}{usage})",
                report.phase,
                report
                    .reason
                    .as_ref()
                    .map(|r| format!(" — {r}"))
                    .unwrap_or_default(),
                report.phase_file.display()
            );
            report.exit_code()
        }
        Err(error) => run_error(&error),
    }
}

/// `run --quiet`, for cron: no progress and no warnings; nothing at all
/// when the run ends done (whether or not the gate opened), else a summary
/// of a few lines on standard error. Errors that stop a run before it ends
/// (an invalid formula, the lock held) are printed as without `--quiet`.
async fn run_quietly(options: &RunOptions) -> u8 {
    let plan = match prepare_run(options, true).await {
        Ok(plan) => plan,
        Err(code) => return code,
    };
    match run::execute(&plan, options, &mut |_| {}).await {
        Ok(report) => {
            if report.phase != Phase::Done {
                eprint!("{}", quiet_summary(&report));
            }
            report.exit_code()
        }
        Err(error) => run_error(&error),
    }
}

/// What `run --quiet` prints of a run that did not end done: the phase and
/// reason, the step it ended at, the run directory, the journal and how
/// many warnings `run.json` holds.
fn quiet_summary(report: &RunReport) -> String {
    let mut text = format!(
        "retort: {} run {}: PHASE:{}{}\n",
        report.formula,
        report.run_id,
        report.phase,
        report
            .reason
            .as_ref()
            .map(|r| format!(" — {}", r.split_whitespace().collect::<Vec<_>>().join(" ")))
            .unwrap_or_default()
    );
    if let Some(step) = report
        .steps
        .iter()
        .find(|s| matches!(s.outcome, StepOutcome::Failed | StepOutcome::Escalated))
    {
        text.push_str(&format!(
            "retort: step {} ({}): {}\n",
            step.id,
            step.title,
            step.outcome.as_str()
        ));
    }
    text.push_str(&format!(
        "retort: run directory {}\n",
        report.run_dir.display()
    ));
    if let Some(journal) = &report.journal_file {
        text.push_str(&format!("retort: journal {}\n", journal.display()));
    }
    if !report.warnings.is_empty() {
        text.push_str(&format!(
            "retort: {} warning{} (in run.json)\n",
            report.warnings.len(),
            if report.warnings.len() == 1 { "" } else { "s" }
        ));
    }
    text
}

/// Prints why a run could not be carried out; the exit status:
/// [`EXIT_TEMPFAIL`] when another run holds the lock, else [`EXIT_FAILED`].
/// Prints a run's error and returns its exit status: 75 when another run
/// holds the lock, 128 + N when signal N stopped it, else 1.
pub(super) fn run_error(error: &RunError) -> u8 {
    eprintln!("error: {error}");
    match error {
        RunError::Interrupted { signal, .. } => signal.exit_code(),
        RunError::Locked(LockError::Held { .. }) => {
            eprintln!(
                "retort: not started; the next scheduled run will try again (exit status {EXIT_TEMPFAIL})"
            );
            EXIT_TEMPFAIL
        }
        _ => EXIT_FAILED,
    }
}

/// How the steps run: at once or not, the run's timeout, and the parallel
/// layers with each step's session and condition (`retort graph`'s text).
fn parallel_layers(plan: &Plan) -> String {
    let formula = &plan.loaded.formula;
    let mut text = format!(
        "  schedule    {}, on_failure = {}, run timeout {}\n",
        match formula.max_parallel() {
            1 => "one step at a time".to_string(),
            n => format!("up to {n} steps at once"),
        },
        formula.on_failure.as_str(),
        humantime::format_duration(formula.run_timeout()),
    );
    let drawing = retort_formula::graph::text(formula, &plan.dag);
    for line in drawing.lines().skip(2) {
        text.push_str(&format!("    {line}\n"));
    }
    text
}

/// `2100 tokens in, 100 out, $0.0075`: input tokens with the cache's,
/// output tokens, and the cost when known.
fn usage_words(usage: &Usage) -> String {
    let input =
        usage.input_tokens + usage.cache_creation_input_tokens + usage.cache_read_input_tokens;
    let cost = usage
        .cost_usd
        .map_or_else(|| "cost unknown".to_string(), |c| format!("${c:.4}"));
    format!("{input} tokens in, {} out, {cost}", usage.output_tokens)
}

fn describe_plan(plan: &Plan, options: &RunOptions) -> String {
    let formula = &plan.loaded.formula;
    let mut text = format!(
        "Plan for {} ({})\n",
        formula.name(),
        plan.loaded.path.display()
    );
    let journal = retort_journal::journal_file(&plan.journal_dir, plan.started_at);
    let mut rows = vec![("run id", plan.run_id.clone())];
    rows.push(("backend", plan.backend.to_string()));
    for session in &plan.sessions {
        if plan.backend == Backend::Tmux {
            rows.push(("session", session.name.clone()));
        }
        rows.push(("agent", session.agent_command.clone()));
    }
    if plan.backend == Backend::Tmux {
        rows.push(("ready", plan.readiness.describe()));
    }
    for (label, value) in rows.into_iter().chain([
        ("state dir", options.state.path().display().to_string()),
        ("run dir", plan.run_dir.path().display().to_string()),
        ("phase file", plan.phase_file.display().to_string()),
        ("journal", journal.display().to_string()),
    ]) {
        text.push_str(&format!("  {label:<11} {value}\n"));
    }
    let history = History::open_read_only(&history_path(options.state.path()))
        .ok()
        .flatten();
    let held = holds::gate_hold(plan, options.state.path(), history.as_ref(), Utc::now());
    if let Some(reason) = &held {
        text.push_str(&format!("  hold        {reason}\n"));
    }
    let budget = &formula.budget;
    if budget.run_usd.is_some() || budget.day_usd.is_some() {
        let spent = history
            .as_ref()
            .and_then(|h| {
                h.spent_since(formula.name(), holds::day_start(Utc::now()))
                    .ok()
            })
            .unwrap_or(0.0);
        let limit =
            |usd: Option<f64>| usd.map_or_else(|| "none".to_string(), |u| format!("${u:.2}"));
        text.push_str(&format!(
            "  budget      run {}, day {} (${spent:.4} spent today, UTC)\n",
            limit(budget.run_usd),
            limit(budget.day_usd)
        ));
    }
    text.push_str("  health:\n");
    for line in plan.snapshot.health_summary() {
        text.push_str(&format!("    {line}\n"));
    }
    let decision = &plan.decision;
    if plan.rules.has_rules() {
        text.push_str(&format!("  gate        {}\n", decision.gate.describe()));
        text.push_str("  findings:\n");
        if decision.findings.is_empty() {
            text.push_str("    none: healthy\n");
        }
        for finding in &decision.findings {
            text.push_str(&format!("    {}\n", finding.line()));
        }
        let journal = decision.journal();
        if !journal.actions.is_empty() {
            text.push_str("  actions:\n");
            for line in &journal.actions {
                text.push_str(&format!("    {line}\n"));
            }
        }
        if !decision.problems.is_empty() {
            text.push_str("  rules not evaluated:\n");
            for line in &decision.problems {
                text.push_str(&format!("    {line}\n"));
            }
        }
    }
    if decision.gate.open && held.is_none() {
        text.push_str("  steps, in topological order:\n");
    } else {
        text.push_str("  steps, in topological order (not sent: the gate stays closed):\n");
    }
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
    text.push_str(&parallel_layers(plan));
    text.push_str(
        "Dry run: nothing was started, run or written. `retort render FORMULA` prints the prompts.\n",
    );
    text
}
