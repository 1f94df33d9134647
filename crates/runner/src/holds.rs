//! Holds: what keeps a run's gate closed whatever its findings say.
//!
//! - A **rate-limit hold**: a step that ended `rate-limited` leaves a hold on
//!   its agent (`claude-code`, or a generic agent's command line) until the
//!   time the agent showed, else [`DEFAULT_RATE_LIMIT_HOLD`] from then.
//!   Later runs of any formula of the state directory using that agent keep
//!   the gate closed ("rate-limited until T") instead of starting an agent
//!   that cannot work. Holds live in `STATE/holds.json`:
//!
//!   ```json
//!   [{"agent":"claude-code","until":"2026-11-21T12:20:00Z","reason":"API Error: Request rejected (429) · …","formula":"run-supervisor","run_id":"20261121-112000-3fa9","at":"2026-11-21T11:20:00Z"}]
//!   ```
//!
//!   A hold ends by itself at `until`; expired ones are dropped at the next
//!   write. Removing the file lifts every hold.
//! - The **day's budget**: a formula whose runs of the current UTC day spent
//!   `[budget] day_usd` or more (the run history's `run_usage`) keeps its
//!   gate closed until midnight UTC.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Days, Utc};
use serde::{Deserialize, Serialize};

use retort_agent::stream_json::{DEFAULT_RATE_LIMIT_HOLD, reset_time};
use retort_formula::formula::{AgentKind, AgentSection};
use retort_journal::History;
use retort_os::atomic::write_atomic;

use crate::plan::Plan;

/// The holds file's name in the state directory.
pub const HOLDS_FILE: &str = "holds.json";
/// The file whose `flock(2)` serialises writers of [`HOLDS_FILE`].
pub const HOLDS_LOCK_FILE: &str = "holds.lock";

/// A rate-limit hold on an agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hold {
    /// The agent held ([`agent_key`]).
    pub agent: String,
    /// Until when (UTC).
    pub until: DateTime<Utc>,
    /// What the agent said.
    pub reason: String,
    /// The formula whose run was refused.
    pub formula: String,
    /// That run.
    pub run_id: String,
    /// When it was refused.
    pub at: DateTime<Utc>,
}

/// `STATE/holds.json`.
pub fn holds_file(state_dir: &Path) -> PathBuf {
    state_dir.join(HOLDS_FILE)
}

/// Which agent a hold is on: `claude-code` for Claude Code (one account a
/// machine, whatever the formula), else `generic: COMMAND`.
pub fn agent_key(agent: &AgentSection, command: &str) -> String {
    match agent.kind.unwrap_or_else(|| AgentKind::of_command(command)) {
        AgentKind::ClaudeCode => AgentKind::ClaudeCode.as_str().to_string(),
        AgentKind::Generic => format!("generic: {command}"),
    }
}

/// The holds in `STATE/holds.json`, expired ones too; none when the file
/// is missing or unreadable (a broken file never stops runs).
pub fn read(state_dir: &Path) -> Vec<Hold> {
    std::fs::read(holds_file(state_dir))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// Adds `hold` to `STATE/holds.json`, dropping the holds that ended before
/// `hold.at` and any earlier hold on the same agent that ends sooner.
/// Runs of different formulas share the file: the read and the write are
/// made under an exclusive `flock(2)` on `STATE/holds.lock`, so that two
/// runs adding holds at once lose neither.
///
/// # Errors
/// The I/O error locking or writing the file.
pub fn add(state_dir: &Path, hold: Hold) -> std::io::Result<()> {
    let lock = std::os::unix::fs::OpenOptionsExt::mode(
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true),
        0o600,
    )
    .open(state_dir.join(HOLDS_LOCK_FILE))?;
    // Released when `lock` closes, at the end of this function.
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)?;
    let mut holds: Vec<Hold> = read(state_dir)
        .into_iter()
        .filter(|h| h.until > hold.at)
        .filter(|h| h.agent != hold.agent || h.until > hold.until)
        .collect();
    if !holds.iter().any(|h| h.agent == hold.agent) {
        holds.push(hold);
    }
    let json = serde_json::to_vec_pretty(&holds).map_err(std::io::Error::other)?;
    write_atomic(&holds_file(state_dir), &json)
}

/// The hold for a step of `agent` that ended rate-limited at `now` with
/// `text` (the agent's words): until the time the text shows, else
/// [`DEFAULT_RATE_LIMIT_HOLD`] from `now`.
pub fn rate_limit_hold(
    agent: String,
    text: &str,
    plan: &Plan,
    now: DateTime<Utc>,
    until: Option<DateTime<Utc>>,
) -> Hold {
    let until = until.or_else(|| reset_time(text, now)).unwrap_or_else(|| {
        now + chrono::Duration::from_std(DEFAULT_RATE_LIMIT_HOLD)
            .unwrap_or(chrono::Duration::hours(1))
    });
    Hold {
        agent,
        until,
        reason: text.to_string(),
        formula: plan.loaded.formula.name().to_string(),
        run_id: plan.run_id.clone(),
        at: now,
    }
}

/// The agent key of each session of `plan`.
pub fn plan_agents(plan: &Plan) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for session in &plan.sessions {
        let key = agent_key(&plan.loaded.formula.agent, &session.agent_command);
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys
}

/// The agent key of the session that runs step `id` of `plan`.
pub fn agent_of_step(plan: &Plan, id: &str) -> Option<String> {
    let formula = &plan.loaded.formula;
    let position = plan
        .dag
        .order()
        .iter()
        .position(|&index| formula.steps[index].id() == id)?;
    plan.sessions
        .iter()
        .find(|s| s.steps.contains(&position))
        .map(|s| agent_key(&formula.agent, &s.agent_command))
}

/// Midnight UTC at the start of `now`'s day.
pub fn day_start(now: DateTime<Utc>) -> DateTime<Utc> {
    now.date_naive().and_time(chrono::NaiveTime::MIN).and_utc()
}

/// Why `plan`'s gate stays closed at `now` whatever its findings say, if
/// it does: a rate-limit hold on one of its agents ("rate-limited until
/// 2026-11-21 12:20 UTC (claude-code): …"), or its day's budget spent
/// ("over the day's budget until 2026-11-22 00:00 UTC: $5.0210 spent of
/// $5.00"), read from `history` (none: nothing spent yet).
pub fn gate_hold(
    plan: &Plan,
    state_dir: &Path,
    history: Option<&History>,
    now: DateTime<Utc>,
) -> Option<String> {
    let agents = plan_agents(plan);
    let held = read(state_dir)
        .into_iter()
        .filter(|h| h.until > now && agents.contains(&h.agent))
        .max_by_key(|h| h.until);
    if let Some(hold) = held {
        return Some(format!(
            "rate-limited until {} ({}, since run {} of {}: {})",
            hold.until.format("%Y-%m-%d %H:%M:%S UTC"),
            hold.agent,
            hold.run_id,
            hold.formula,
            hold.reason
        ));
    }
    let limit_usd = plan.loaded.formula.budget.day_usd?;
    let spent_usd = history
        .and_then(|h| {
            h.spent_since(plan.loaded.formula.name(), day_start(now))
                .ok()
        })
        .unwrap_or(0.0);
    let budget = DayBudget::at(limit_usd, spent_usd, now);
    budget.held_until.map(|midnight| {
        format!(
            "over the day's budget until {}: {} spent of {} (`[budget] day_usd`)",
            midnight.format("%Y-%m-%d %H:%M UTC"),
            usd(spent_usd),
            usd(limit_usd)
        )
    })
}

/// A formula's `[budget] day_usd` and what its runs of the current UTC day
/// spent: the one rule for runs ([`gate_hold`]) and `retort status`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DayBudget {
    /// `[budget] day_usd` (USD).
    pub limit_usd: f64,
    /// Spent since midnight UTC (USD), from the run history's `run_usage`.
    pub spent_usd: f64,
    /// Midnight UTC ending the day, once `spent_usd` reached `limit_usd`:
    /// until then every gate of the formula stays closed.
    pub held_until: Option<DateTime<Utc>>,
}

impl DayBudget {
    /// The budget of `limit_usd` with `spent_usd` spent on `now`'s UTC day.
    pub fn at(limit_usd: f64, spent_usd: f64, now: DateTime<Utc>) -> DayBudget {
        let midnight = day_start(now).checked_add_days(Days::new(1)).unwrap_or(now);
        DayBudget {
            limit_usd,
            spent_usd,
            held_until: (spent_usd >= limit_usd).then_some(midnight),
        }
    }
}

/// The run's budget, `[budget] run_usd`, once `spent` (USD) reaches it:
/// the reason the run stops, "budget reached: $0.015 of $0.01
/// (`[budget] run_usd`)".
pub fn run_budget_reached(plan: &Plan, spent: f64) -> Option<String> {
    let budget = plan.loaded.formula.budget.run_usd?;
    (spent >= budget).then(|| {
        format!(
            "budget reached: {} of {} (`[budget] run_usd`)",
            usd(spent),
            usd(budget)
        )
    })
}

/// US dollars to 4 decimals, trailing zeros cut down to 2: `$5.00`,
/// `$0.015`, `$0.0192`.
pub fn usd(amount: f64) -> String {
    let text = format!("{amount:.4}");
    let trimmed = text.trim_end_matches('0');
    let decimals = trimmed.split_once('.').map_or(0, |(_, d)| d.len());
    if decimals < 2 {
        format!("${amount:.2}")
    } else {
        format!("${trimmed}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn hold(agent: &str, until: DateTime<Utc>, at: DateTime<Utc>) -> Hold {
        Hold {
            agent: agent.into(),
            until,
            reason: "429".into(),
            formula: "f".into(),
            run_id: "r".into(),
            at,
        }
    }

    #[test]
    fn holds_are_kept_per_agent_and_expired_ones_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let t = |h| Utc.with_ymd_and_hms(2026, 11, 21, h, 0, 0).unwrap();
        assert!(read(dir.path()).is_empty());
        add(dir.path(), hold("claude-code", t(12), t(11))).unwrap();
        add(dir.path(), hold("generic: x", t(13), t(11))).unwrap();
        // A later hold on the same agent replaces the earlier one.
        add(dir.path(), hold("claude-code", t(14), t(11))).unwrap();
        let holds = read(dir.path());
        assert_eq!(holds.len(), 2, "{holds:?}");
        assert!(
            holds
                .iter()
                .any(|h| h.agent == "claude-code" && h.until == t(14))
        );
        // Written after 13:00: the generic hold has ended and goes.
        add(dir.path(), hold("claude-code", t(15), t(13))).unwrap();
        let holds = read(dir.path());
        assert_eq!(holds.len(), 1, "{holds:?}");
        assert_eq!(holds[0].until, t(15));
    }

    #[test]
    fn holds_added_at_once_by_several_runs_are_all_kept() {
        let dir = tempfile::tempdir().unwrap();
        let at = Utc::now();
        let until = at + chrono::Duration::hours(1);
        std::thread::scope(|scope| {
            for n in 0..16 {
                let dir = dir.path();
                scope.spawn(move || {
                    for k in 0..5 {
                        add(dir, hold(&format!("agent-{n}-{k}"), until, at)).unwrap();
                    }
                });
            }
        });
        let kept = read(dir.path());
        assert_eq!(kept.len(), 80, "holds lost by concurrent writers");
    }

    #[test]
    fn agents_are_keyed_by_kind() {
        let section = AgentSection::default();
        assert_eq!(agent_key(&section, "claude --model sonnet"), "claude-code");
        assert_eq!(agent_key(&section, "/opt/bin/claude"), "claude-code");
        assert_eq!(agent_key(&section, "bash a.sh"), "generic: bash a.sh");
        let day = Utc.with_ymd_and_hms(2026, 11, 21, 17, 3, 4).unwrap();
        assert_eq!(usd(5.0), "$5.00");
        assert_eq!(usd(0.001), "$0.001");
        assert_eq!(usd(0.01824), "$0.0182");
        assert_eq!(
            day_start(day),
            Utc.with_ymd_and_hms(2026, 11, 21, 0, 0, 0).unwrap()
        );
    }
}
