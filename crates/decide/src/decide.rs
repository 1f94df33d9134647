//! The decide phase: from the rules' matches and the run history to this
//! run's findings, its actions and the gate's decision.
//!
//! ```text
//! snapshot → RuleSet::evaluate → Evaluation ─┐
//! history (FormulaState) ────────────────────┴→ decide → Decision
//!     findings (finding::track) → actions to run, propose or hold back → gate
//! ```
//!
//! [`decide`] is pure. [`preview`] runs it against a read-only view of the
//! history (`retort render`, `retort run --dry-run`: nothing is written).
//! [`commit`] runs it inside a history transaction and records the run, its
//! findings and its proposals; [`run_actions`] then runs the auto actions
//! and records their results. What a decision shows (the template
//! context, the journal's lines, the first prompt's markdown) is in `view`.
//!
//! Time, for `repeat` and cooldowns, is the snapshot's `collected_at`: the
//! moment the facts describe. Replaying recorded snapshots therefore
//! replays their timing too.

mod view;

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::Serialize;

use retort_journal::history::{
    ActionRunRecord, FormulaState, History, HistoryError, NewProposal, ProposalRecord,
    ProposalStatus, RunRecord,
};

use retort_preflight::Snapshot;

use crate::action::{CommandResult, CommandSpec, run_command_until};
use crate::finding::{Finding, FindingState, FindingWrite, track};
use crate::gate::GateDecision;
use crate::ruleset::{Evaluation, RuleSet};
use retort_formula::action::ActionMode;
use retort_formula::diagnostic::Problem;
use retort_formula::formula::Formula;
use retort_os::interrupt::Interrupt;

pub use view::{
    ActionView, ActionsContext, DecisionContext, FindingsContext, PROMPT_OUTPUT_LINES,
    PreviousFinding, PreviousRun, ProposalView, ResultView,
};

/// What the decide phase decided for one run.
#[derive(Debug, Clone)]
pub struct Decision {
    /// The formula's name.
    pub formula: String,
    /// The time decided at: the snapshot's `collected_at`.
    pub at: DateTime<Utc>,
    /// The run's place in the history.
    pub seq: i64,
    /// Whether this is a preview (nothing recorded, actions not run).
    pub preview: bool,
    /// Whether the formula has rules.
    pub has_rules: bool,
    /// Firing, pending and just-resolved findings, most urgent first.
    pub findings: Vec<Finding>,
    /// What happens with the actions of firing findings.
    pub actions: Vec<PlannedAction>,
    /// Proposals closed because their finding resolved: `(id, action, fingerprint)`.
    pub expired: Vec<(i64, String, String)>,
    /// Proposals of the formula still waiting for a human, from earlier runs.
    pub pending_proposals: Vec<ProposalRecord>,
    /// The gate's decision.
    pub gate: GateDecision,
    /// The formula's previous run, with its findings.
    pub previous: Option<RunRecord>,
    /// Rules not evaluated or failed, and other warnings, one line each.
    pub problems: Vec<String>,
    writes: Vec<FindingWrite>,
}

/// What happens with one action of one firing finding.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedAction {
    /// The action's id.
    pub action: String,
    /// The finding it answers.
    pub fingerprint: String,
    /// Auto or propose.
    pub mode: ActionMode,
    /// The decision.
    pub plan: ActionPlan,
    /// The command, rendered (empty when it could not be).
    pub argv: Vec<String>,
    /// Its result, once run.
    pub result: Option<CommandResult>,
    #[serde(skip)]
    command: Option<CommandSpec>,
}

/// The decision about one action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum ActionPlan {
    /// Run it now (auto).
    Run,
    /// Store a proposal (propose); `id` once stored.
    Propose {
        /// The proposal's id, once stored.
        id: Option<i64>,
    },
    /// Held back: the last attempt for this finding is within the cooldown.
    CoolingDown {
        /// When the cooldown ends.
        until: DateTime<Utc>,
    },
    /// Held back: a proposal for this finding is still pending.
    AlreadyProposed {
        /// Its id.
        id: i64,
    },
    /// Its command could not be rendered.
    Broken {
        /// Why.
        error: String,
    },
}

impl PlannedAction {
    /// `free-memory for memory-crisis: exit 0 in 12ms`, for journals and terminals.
    pub fn line(&self, preview: bool) -> String {
        let what = match (&self.plan, &self.result) {
            (ActionPlan::Run, Some(result)) => format!("ran, {}", result.summary()),
            (ActionPlan::Run, None) if preview => format!("would run `{}`", self.argv.join(" ")),
            (ActionPlan::Run, None) => "not run".to_string(),
            (ActionPlan::Propose { id: Some(id) }, _) => {
                format!("proposed as #{id} (`retort approve {id}` runs it)")
            }
            (ActionPlan::Propose { id: None }, _) if preview => {
                format!("would propose `{}`", self.argv.join(" "))
            }
            (ActionPlan::Propose { id: None }, _) => "proposal not stored".to_string(),
            (ActionPlan::CoolingDown { until }, _) => format!(
                "held back: cooling down until {}",
                until.format("%Y-%m-%d %H:%M UTC")
            ),
            (ActionPlan::AlreadyProposed { id }, _) => {
                format!("held back: proposal #{id} is still pending")
            }
            (ActionPlan::Broken { error }, _) => format!("not run: {error}"),
        };
        format!("{} for {}: {what}", self.action, self.fingerprint)
    }

    fn status(&self, preview: bool) -> &'static str {
        match (&self.plan, &self.result) {
            (ActionPlan::Run, Some(_)) => "ran",
            (ActionPlan::Run, None) if preview => "would run",
            (ActionPlan::Run, None) => "not run",
            (ActionPlan::Propose { id: Some(_) }, _) => "proposed",
            (ActionPlan::Propose { id: None }, _) if preview => "would propose",
            (ActionPlan::Propose { id: None }, _) => "not proposed",
            (ActionPlan::CoolingDown { .. }, _) => "cooling down",
            (ActionPlan::AlreadyProposed { .. }, _) => "already proposed",
            (ActionPlan::Broken { .. }, _) => "broken",
        }
    }
}

/// Decides, from `evaluation` and the history's `state`, as run `state.next_seq`.
pub fn decide(
    rules: &RuleSet,
    evaluation: &Evaluation,
    state: &FormulaState,
    formula: &str,
    cwd: &Path,
) -> Decision {
    let at = evaluation.at;
    let seq = state.next_seq.max(1);
    let mut tracked = track(evaluation, state, seq);
    tracked
        .findings
        .extend(crate::finding::rule_error_findings(evaluation));
    tracked
        .findings
        .sort_by(|a, b| (a.priority, &a.fingerprint).cmp(&(b.priority, &b.fingerprint)));
    let mut problems = evaluation.problems();
    problems.extend(evaluation.warnings.iter().cloned());

    let mut actions = Vec::new();
    for finding in &tracked.findings {
        let (FindingState::Firing, Some(action)) = (finding.state, &finding.action) else {
            continue;
        };
        let Some(compiled) = rules.action(action) else {
            continue;
        };
        let command = rules.command(action, finding, evaluation, formula, cwd);
        let pending = state.pending_proposal(action, &finding.fingerprint);
        let cooling = state
            .last_attempt(action, &finding.fingerprint)
            .and_then(|last| {
                let until = last + chrono::Duration::from_std(compiled.cooldown).ok()?;
                (until > at).then_some(until)
            });
        let plan = match (&command, pending, cooling) {
            (Err(error), _, _) => ActionPlan::Broken {
                error: error.clone(),
            },
            (_, Some(proposal), _) if compiled.mode == ActionMode::Propose => {
                ActionPlan::AlreadyProposed { id: proposal.id }
            }
            (_, _, Some(until)) => ActionPlan::CoolingDown { until },
            (Ok(_), _, None) => match compiled.mode {
                ActionMode::Auto => ActionPlan::Run,
                ActionMode::Propose => ActionPlan::Propose { id: None },
            },
        };
        let command = command.ok();
        actions.push(PlannedAction {
            action: action.clone(),
            fingerprint: finding.fingerprint.clone(),
            mode: compiled.mode,
            plan,
            argv: command.as_ref().map(|c| c.argv.clone()).unwrap_or_default(),
            result: None,
            command,
        });
    }

    let expired = tracked
        .findings
        .iter()
        .filter(|f| f.state == FindingState::Resolved)
        .flat_map(|f| {
            state
                .pending_proposals
                .iter()
                .filter(move |p| p.proposal.fingerprint == f.fingerprint)
        })
        .map(|p| {
            (
                p.id,
                p.proposal.action.clone(),
                p.proposal.fingerprint.clone(),
            )
        })
        .collect::<Vec<_>>();
    let pending_proposals = state
        .pending_proposals
        .iter()
        .filter(|p| !expired.iter().any(|(id, _, _)| *id == p.id))
        .cloned()
        .collect();

    Decision {
        formula: formula.to_string(),
        at,
        seq,
        preview: true,
        has_rules: rules.has_rules(),
        gate: crate::gate::decide(rules.gate(), rules.has_rules(), &tracked.findings),
        findings: tracked.findings,
        actions,
        expired,
        pending_proposals,
        previous: state.previous.clone(),
        problems,
        writes: tracked.writes,
    }
}

/// Decides against the history at `history` without writing anything. A
/// history that cannot be read is reported in the decision's problems and
/// treated as empty.
pub fn preview(
    rules: &RuleSet,
    evaluation: &Evaluation,
    history: &Path,
    formula: &str,
    cwd: &Path,
) -> Decision {
    let state = History::open_read_only(history)
        .and_then(|h| h.map(|h| h.state(formula)).transpose())
        .map(Option::unwrap_or_default);
    preview_state(rules, evaluation, state, history, formula, cwd)
}

/// [`preview`] against a history already open (the run's own connection,
/// which reads without copying anything).
pub fn preview_in(
    rules: &RuleSet,
    evaluation: &Evaluation,
    history: &History,
    formula: &str,
    cwd: &Path,
) -> Decision {
    let state = history.state(formula);
    preview_state(rules, evaluation, state, history.path(), formula, cwd)
}

fn preview_state(
    rules: &RuleSet,
    evaluation: &Evaluation,
    state: Result<FormulaState, HistoryError>,
    history: &Path,
    formula: &str,
    cwd: &Path,
) -> Decision {
    let (state, problem) = match state {
        Ok(state) => (state, None),
        Err(error) if error.is_corrupt() => (
            FormulaState::default(),
            Some(format!(
                "{error}: the history is corrupt; a run moves it aside as {} and starts a \
                 new one; deciding as if there were no history",
                retort_journal::history::corrupt_name(history, chrono::Utc::now()).display()
            )),
        ),
        Err(error) => (
            FormulaState::default(),
            Some(format!("{error}; deciding as if there were no history")),
        ),
    };
    let mut decision = decide(rules, evaluation, &state, formula, cwd);
    decision.problems.extend(problem);
    decision
}

/// Decides inside a transaction of `history`, and records run `run_id`
/// (its gate, its findings, the new state of each finding), its
/// proposals, and the proposals its resolved findings expire.
///
/// # Errors
/// [`HistoryError`]: nothing is recorded then.
pub fn commit(
    history: &mut History,
    rules: &RuleSet,
    evaluation: &Evaluation,
    run_id: &str,
    formula: &str,
    cwd: &Path,
) -> Result<Decision, HistoryError> {
    let tx = history.transaction()?;
    let state = tx.state(formula)?;
    let mut decision = decide(rules, evaluation, &state, formula, cwd);
    decision.preview = false;
    tx.insert_run(&RunRecord {
        seq: decision.seq,
        formula: formula.to_string(),
        run_id: run_id.to_string(),
        at: decision.at,
        gate_open: decision.gate.open,
        gate_reason: decision.gate.reason.clone(),
        phase: None,
        reason: None,
        finished_at: None,
        findings: decision.findings.iter().map(Finding::run_record).collect(),
    })?;
    tx.prune_run_findings(formula)?;
    for write in &decision.writes {
        match write {
            FindingWrite::Put(record) => tx.put_finding(formula, record)?,
            FindingWrite::Delete(fingerprint) => tx.delete_finding(formula, fingerprint)?,
        }
    }
    for (id, _, fingerprint) in &decision.expired {
        let note = format!(
            "finding `{fingerprint}` resolved at {}",
            decision.at.format("%Y-%m-%d %H:%M UTC")
        );
        tx.decide_proposal(
            *id,
            ProposalStatus::Expired,
            "retort",
            Some(&note),
            decision.at,
        )?;
    }
    for planned in &mut decision.actions {
        if let (ActionPlan::Propose { id }, Some(command)) = (&mut planned.plan, &planned.command) {
            let finding = decision
                .findings
                .iter()
                .find(|f| f.fingerprint == planned.fingerprint);
            *id = Some(tx.add_proposal(&NewProposal {
                formula: formula.to_string(),
                action: planned.action.clone(),
                fingerprint: planned.fingerprint.clone(),
                priority: finding.map_or("", |f| f.priority.as_str()).to_string(),
                message: finding.map(|f| f.message.clone()).unwrap_or_default(),
                argv: command.argv.clone(),
                env: command.env.clone(),
                cwd: command.cwd.clone(),
                timeout_ms: u64::try_from(command.timeout.as_millis()).unwrap_or(u64::MAX),
                created_at: decision.at,
                created_run: run_id.to_string(),
            })?);
        }
    }
    tx.commit()?;
    Ok(decision)
}

/// Runs the decision's auto actions, one after another, and records each
/// in `history`. Returns the warnings of results that could not be
/// recorded.
///
/// Each action is recorded as it starts (outcome `running`, at the
/// decision's time), before its command runs, and updated with its result
/// once it has ended: so its cooldown holds for the next run even when
/// retort is killed while it runs. `hooks.started` is told each action's
/// process group as it starts; when `hooks.interrupt` comes, the action
/// running is ended ([`crate::action::run_command_until`]) and those not
/// yet started are not started (`not-started`, "retort was interrupted").
pub async fn run_actions(
    decision: &mut Decision,
    history: &History,
    run_id: &str,
    hooks: &mut ActionHooks<'_>,
) -> Vec<String> {
    let mut warnings = Vec::new();
    for planned in &mut decision.actions {
        let (ActionPlan::Run, Some(command)) = (&planned.plan, &planned.command) else {
            continue;
        };
        let mut record = ActionRunRecord {
            formula: decision.formula.clone(),
            action: planned.action.clone(),
            fingerprint: planned.fingerprint.clone(),
            run_id: Some(run_id.to_string()),
            proposal: None,
            argv: command.argv.clone(),
            at: decision.at,
            duration_ms: 0,
            exit_code: None,
            outcome: "running".to_string(),
            error: None,
            stdout: String::new(),
            stderr: String::new(),
            truncated: false,
        };
        let result = match hooks.interrupt.received() {
            Some(signal) => CommandResult {
                outcome: crate::action::CommandOutcome::NotStarted,
                exit_code: None,
                error: Some(format!("retort was interrupted by {signal} first")),
                stdout: String::new(),
                stderr: String::new(),
                truncated: false,
                duration_ms: 0,
            },
            None => {
                let id = history.record_action_run(&record);
                if let Err(error) = &id {
                    warnings.push(format!(
                        "the start of action `{}` could not be recorded: {error}",
                        planned.action
                    ));
                }
                let result = run_command_until(command, hooks.interrupt, hooks.started).await;
                fill(&mut record, &result);
                let recorded = match id {
                    Ok(id) => history.update_action_run(id, &record),
                    Err(_) => history.record_action_run(&record).map(|_| ()),
                };
                if let Err(error) = recorded {
                    warnings.push(format!(
                        "the result of action `{}` could not be recorded: {error}",
                        planned.action
                    ));
                }
                result
            }
        };
        planned.result = Some(result);
        (hooks.progress)(planned);
    }
    warnings
}

/// What [`run_actions`] reports to, and listens for, as it runs.
pub struct ActionHooks<'a> {
    /// Ends the action running, and starts no more, when it comes.
    pub interrupt: &'a Interrupt,
    /// Told each action's process group (its leader's pid) as it starts.
    pub started: &'a mut dyn FnMut(i32),
    /// Told each action once it has run.
    pub progress: &'a mut dyn FnMut(&PlannedAction),
}

fn fill(record: &mut ActionRunRecord, result: &CommandResult) {
    record.duration_ms = result.duration_ms;
    record.exit_code = result.exit_code;
    record.outcome = result.outcome.as_str().to_string();
    record.error.clone_from(&result.error);
    record.stdout.clone_from(&result.stdout);
    record.stderr.clone_from(&result.stderr);
    record.truncated = result.truncated;
}

/// The decision a first run of `formula` would make against `snapshot`,
/// with no history and no `vars`; for tests and tools. Actions are planned
/// to run in the current directory.
///
/// # Errors
/// The formula's rule problems, when its rules are invalid.
pub fn fresh(formula: &Formula, snapshot: &Snapshot) -> Result<Decision, Vec<Problem>> {
    let rules = RuleSet::check(formula, "")?;
    let evaluation = rules.evaluate(snapshot, &std::collections::BTreeMap::new());
    Ok(decide(
        &rules,
        &evaluation,
        &FormulaState::default(),
        formula.name(),
        Path::new("."),
    ))
}

/// Where the run history of `state_dir` lives.
pub fn history_path(state_dir: &Path) -> PathBuf {
    retort_journal::history::history_file(state_dir)
}
