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
//! and records their results.
//!
//! Time, for `repeat` and cooldowns, is the snapshot's `collected_at`: the
//! moment the facts describe. Replaying recorded snapshots therefore
//! replays their timing too.

use std::fmt::Write as _;
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

/// Lines of an action's output the first prompt shows, per stream.
pub const PROMPT_OUTPUT_LINES: usize = 10;

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

/// What templates see of a decision (and what `decision.json` holds).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DecisionContext {
    /// This run's findings.
    pub findings: FindingsContext,
    /// The actions of firing findings.
    pub actions: ActionsContext,
    /// The formula's last run, or null before its first.
    pub previous: Option<PreviousRun>,
    /// The gate's decision.
    pub gate: GateDecision,
}

/// `findings`: this run's findings, grouped. Each list is most urgent first.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct FindingsContext {
    /// Findings that fire (new or not).
    pub firing: Vec<Finding>,
    /// Firing findings reported as new in this run.
    pub new: Vec<Finding>,
    /// Findings whose rule's `for` is not yet met.
    pub pending: Vec<Finding>,
    /// Findings that resolved in this run.
    pub resolved: Vec<Finding>,
    /// All of the above.
    pub all: Vec<Finding>,
}

/// `actions`: what happened with the actions of firing findings.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct ActionsContext {
    /// Auto actions to run (with their result once run).
    pub run: Vec<ActionView>,
    /// Proposals made in this run.
    pub proposed: Vec<ActionView>,
    /// Actions held back by a cooldown or a pending proposal, or broken.
    pub held: Vec<ActionView>,
    /// Every proposal of the formula still waiting for a human.
    pub pending: Vec<ProposalView>,
}

/// One action of one firing finding, as templates see it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ActionView {
    /// The action's id.
    pub action: String,
    /// The finding it answers.
    pub fingerprint: String,
    /// `auto` or `propose`.
    pub mode: ActionMode,
    /// What was decided (`kind`: `run`, `propose` with `id`, `cooling-down`
    /// with `until`, `already-proposed` with `id`, `broken` with `error`).
    pub plan: ActionPlan,
    /// The command, rendered.
    pub argv: Vec<String>,
    /// How it went.
    pub result: ResultView,
    /// `ran`, `would run`, `proposed`, `would propose`, `cooling down`, …
    pub status: String,
    /// One line saying all of it, as the journal has it.
    pub summary: String,
}

/// An action's result, as templates see it; before it runs, `outcome` is
/// its status (`would run`) and the rest is empty.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct ResultView {
    /// `ok`, `failed`, `timed-out`, `not-started`, or the status.
    pub outcome: String,
    /// The exit status, when it exited.
    pub exit_code: Option<i32>,
    /// Why it failed to start, was killed, or timed out.
    pub error: Option<String>,
    /// Its standard output (size-capped).
    pub stdout: String,
    /// Its standard error (size-capped).
    pub stderr: String,
    /// Whether output was cut at the cap.
    pub truncated: bool,
    /// How long it ran, in milliseconds.
    pub duration_ms: u64,
}

/// A proposal waiting for a human, as templates see it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ProposalView {
    /// Its id, for `retort approve ID`.
    pub id: i64,
    /// The action's id.
    pub action: String,
    /// The finding it answers.
    pub fingerprint: String,
    /// The command.
    pub argv: Vec<String>,
    /// The finding's message when proposed.
    pub message: String,
    /// When it was proposed.
    pub created_at: DateTime<Utc>,
}

/// `previous`: the formula's last run.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PreviousRun {
    /// Its id.
    pub run_id: String,
    /// The time it decided at.
    pub at: DateTime<Utc>,
    /// `done`, `failed`, `escalate`, or `unknown` (it did not end).
    pub phase: String,
    /// Why it failed or escalated.
    pub reason: Option<String>,
    /// Whether it started the agent.
    pub gate_open: bool,
    /// The findings it saw.
    pub findings: Vec<PreviousFinding>,
    /// Whether a P0–P4 finding fired in it.
    pub alerts: bool,
}

/// A finding of the previous run.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PreviousFinding {
    /// `rule` or `rule[label]`.
    pub fingerprint: String,
    /// The rule's id.
    pub rule: String,
    /// The item's label.
    pub label: Option<String>,
    /// `P0` … `P4` or `info`.
    pub priority: String,
    /// Its message then.
    pub message: String,
    /// `new`, `firing`, `pending` or `resolved`.
    pub state: String,
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

impl Decision {
    /// Findings in `state`.
    pub fn in_state(&self, state: FindingState) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(move |f| f.state == state)
    }

    /// The journal's lines for this decision.
    pub fn journal(&self) -> retort_journal::Decision {
        let mut actions: Vec<String> = self.actions.iter().map(|a| a.line(self.preview)).collect();
        actions.extend(self.expired.iter().map(|(id, action, fingerprint)| {
            format!("proposal #{id} ({action} for {fingerprint}) expired: its finding resolved")
        }));
        retort_journal::Decision {
            gate: self.gate.describe(),
            findings: self.findings.iter().map(Finding::line).collect(),
            actions,
            problems: self.problems.clone(),
        }
    }

    /// What templates see of this decision: `findings`, `actions`,
    /// `previous` and `gate` (also what `decision.json` holds).
    pub fn context(&self) -> DecisionContext {
        let pick = |keep: &dyn Fn(&Finding) -> bool| -> Vec<Finding> {
            self.findings.iter().filter(|f| keep(f)).cloned().collect()
        };
        let view = |a: &PlannedAction| ActionView {
            action: a.action.clone(),
            fingerprint: a.fingerprint.clone(),
            mode: a.mode,
            plan: a.plan.clone(),
            argv: a.argv.clone(),
            result: match &a.result {
                Some(result) => ResultView {
                    outcome: result.outcome.as_str().to_string(),
                    exit_code: result.exit_code,
                    error: result.error.clone(),
                    stdout: result.stdout.clone(),
                    stderr: result.stderr.clone(),
                    truncated: result.truncated,
                    duration_ms: result.duration_ms,
                },
                // The same shape whether or not it ran, so that templates
                // render alike in a preview and in the run.
                None => ResultView {
                    outcome: a.status(self.preview).to_string(),
                    ..ResultView::default()
                },
            },
            status: a.status(self.preview).to_string(),
            summary: a.line(self.preview),
        };
        let actions = |keep: &dyn Fn(&ActionPlan) -> bool| -> Vec<ActionView> {
            self.actions
                .iter()
                .filter(|a| keep(&a.plan))
                .map(view)
                .collect()
        };
        DecisionContext {
            findings: FindingsContext {
                firing: pick(&|f| f.state == FindingState::Firing),
                new: pick(&|f| f.state == FindingState::Firing && f.new),
                pending: pick(&|f| f.state == FindingState::Pending),
                resolved: pick(&|f| f.state == FindingState::Resolved),
                all: pick(&|_| true),
            },
            actions: ActionsContext {
                run: actions(&|p| matches!(p, ActionPlan::Run)),
                proposed: actions(&|p| matches!(p, ActionPlan::Propose { .. })),
                held: actions(&|p| !matches!(p, ActionPlan::Run | ActionPlan::Propose { .. })),
                pending: self
                    .pending_proposals
                    .iter()
                    .map(|p| ProposalView {
                        id: p.id,
                        action: p.proposal.action.clone(),
                        fingerprint: p.proposal.fingerprint.clone(),
                        argv: p.proposal.argv.clone(),
                        message: p.proposal.message.clone(),
                        created_at: p.proposal.created_at,
                    })
                    .collect(),
            },
            previous: self.previous.as_ref().map(|run| PreviousRun {
                run_id: run.run_id.clone(),
                at: run.at,
                phase: run.phase.clone().unwrap_or_else(|| "unknown".to_string()),
                reason: run.reason.clone(),
                gate_open: run.gate_open,
                alerts: run
                    .findings
                    .iter()
                    .any(|f| f.priority != "info" && matches!(f.state.as_str(), "new" | "firing")),
                findings: run
                    .findings
                    .iter()
                    .map(|f| PreviousFinding {
                        fingerprint: f.fingerprint.clone(),
                        rule: f.rule.clone(),
                        label: f.label.clone(),
                        priority: f.priority.clone(),
                        message: f.message.clone(),
                        state: f.state.clone(),
                    })
                    .collect(),
            }),
            gate: self.gate.clone(),
        }
    }

    /// The findings and actions as markdown, for the first prompt; empty
    /// for a formula without rules.
    pub fn to_markdown(&self) -> String {
        if !self.has_rules {
            return String::new();
        }
        let mut out = String::new();
        let _ = writeln!(
            out,
            "retort evaluated the formula's rules against the snapshot ({}).\n",
            self.at.format("%Y-%m-%d %H:%M UTC")
        );
        let section = |out: &mut String, title: &str, items: Vec<String>| {
            if !items.is_empty() {
                let _ = writeln!(out, "{title}:\n");
                for item in items {
                    let _ = writeln!(out, "- {item}");
                }
                out.push('\n');
            }
        };
        let lines = |state| self.in_state(state).map(Finding::line).collect();
        section(&mut out, "Firing", lines(FindingState::Firing));
        section(
            &mut out,
            "Resolved since the last run",
            lines(FindingState::Resolved),
        );
        section(
            &mut out,
            "Pending (not yet for enough runs)",
            lines(FindingState::Pending),
        );
        if self.findings.is_empty() {
            out.push_str("No findings: healthy.\n\n");
        }
        let mut actions = Vec::new();
        for planned in &self.actions {
            let mut line = planned.line(self.preview);
            if let Some(result) = &planned.result {
                for (name, text) in [("stdout", &result.stdout), ("stderr", &result.stderr)] {
                    let shown: Vec<&str> = text.lines().take(PROMPT_OUTPUT_LINES).collect();
                    if !shown.is_empty() {
                        let more = text.lines().count().saturating_sub(shown.len());
                        let _ = write!(line, "\n  {name}: {}", shown.join("\n    "));
                        if more > 0 || result.truncated {
                            line.push_str("\n    …");
                        }
                    }
                }
            }
            actions.push(line);
        }
        section(&mut out, "Actions", actions);
        section(
            &mut out,
            "Proposals waiting for a human",
            self.pending_proposals
                .iter()
                .map(|p| {
                    format!(
                        "#{} {} for {}: `{}`",
                        p.id,
                        p.proposal.action,
                        p.proposal.fingerprint,
                        p.proposal.argv.join(" ")
                    )
                })
                .collect(),
        );
        section(&mut out, "Rules not evaluated", self.problems.clone());
        if let Some(previous) = &self.previous {
            let alerts: Vec<&str> = previous
                .findings
                .iter()
                .filter(|f| f.priority != "info" && matches!(f.state.as_str(), "new" | "firing"))
                .map(|f| f.fingerprint.as_str())
                .collect();
            let _ = writeln!(
                out,
                "Previous run: {} at {}, PHASE:{}; {}.",
                previous.run_id,
                previous.at.format("%Y-%m-%d %H:%M UTC"),
                previous.phase.as_deref().unwrap_or("unknown"),
                if alerts.is_empty() {
                    "no alerts".to_string()
                } else {
                    format!("alerts: {}", alerts.join(", "))
                }
            );
        }
        out.trim_end().to_string()
    }
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
