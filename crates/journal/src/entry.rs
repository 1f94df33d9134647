//! One journal entry: its markdown, and appending it to the day's file.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use retort_os::duration::compact;
use thiserror::Error;

/// What a journal entry records of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The formula's name.
    pub formula: String,
    /// The run id.
    pub run_id: String,
    /// When the run started (UTC); picks the day's file and the heading's time.
    pub started_at: DateTime<Utc>,
    /// How long the run took.
    pub duration: Duration,
    /// The outcome as the phase file says it: `done`, `failed` or `escalate`.
    pub phase: String,
    /// Why it failed or escalated.
    pub reason: Option<String>,
    /// Health status lines from the preflight snapshot, such as
    /// `RAM: 23823 MB available of 24105 MB`.
    pub health: Vec<String>,
    /// Each step, in the order run; empty when no agent was started.
    pub steps: Vec<StepLine>,
    /// What the decide phase found and did, for a formula with rules.
    pub decision: Option<Decision>,
    /// What the agent spent, worded ([`crate::spend::RunSpend::describe`]);
    /// none when no agent reported it.
    pub usage: Option<String>,
    /// What retort itself noticed or did during the run, one line each
    /// (a corrupt run history moved aside, a file it could not write),
    /// shown as `- Note: …` lines under the run line.
    pub notes: Vec<String>,
}

/// The decide phase's part of a journal entry: lines already worded by the
/// engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The gate's decision, such as `closed (on-findings): healthy — no agent started`.
    pub gate: String,
    /// One line per finding: firing, pending and resolved this run. Empty
    /// means healthy.
    pub findings: Vec<String>,
    /// One line per action run, proposed or held back this run.
    pub actions: Vec<String>,
    /// Rules that could not be evaluated, and why.
    pub problems: Vec<String>,
}

/// One step of a journal entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepLine {
    /// The step's id.
    pub id: String,
    /// The step's title.
    pub title: String,
    /// `done`, `failed`, `escalated` or `skipped`.
    pub outcome: String,
    /// How long it took; none when skipped.
    pub duration: Option<Duration>,
    /// Why it failed or escalated.
    pub reason: Option<String>,
    /// What the step cost, worded (`$0.0075`); none when not known.
    pub cost: Option<String>,
    /// Its attempts before the last, oldest first, each worded by the
    /// engine (`attempt 1: failed in 40ms, retried after 1s: the agent
    /// exited with status 7 before signalling`); empty when it ran once.
    pub retried: Vec<String>,
}

/// The journal could not be written.
#[derive(Debug, Error)]
#[error("cannot append to the journal {}: {source}", path.display())]
pub struct JournalError {
    /// The journal file.
    pub path: PathBuf,
    /// The I/O error.
    pub source: std::io::Error,
}

/// The journal file of the UTC day of `at`: `DIR/YYYY-MM-DD.md`.
pub fn journal_file(dir: &Path, at: DateTime<Utc>) -> PathBuf {
    dir.join(format!("{}.md", at.format("%Y-%m-%d")))
}

/// Appends `entry` to its day's file in `dir` (creating both if needed)
/// and returns the file's path. The entry is written with one `write` to a
/// file opened for appending, so concurrent runs do not interleave lines.
///
/// # Errors
/// [`JournalError`] with the path and the I/O error.
pub fn append(dir: &Path, entry: &Entry) -> Result<PathBuf, JournalError> {
    let path = journal_file(dir, entry.started_at);
    let fail = |source| JournalError {
        path: path.clone(),
        source,
    };
    std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
        .create(dir)
        .map_err(fail)?;
    // The journal describes the factory: the file is its owner's only.
    let mut file = std::os::unix::fs::OpenOptionsExt::mode(
        std::fs::OpenOptions::new().create(true).append(true),
        0o600,
    )
    .open(&path)
    .map_err(fail)?;
    let mut text = String::new();
    if file.metadata().map_err(fail)?.len() > 0 {
        text.push('\n');
    }
    text.push_str(&entry.to_markdown());
    // Not synced: the journal is read by people and agents, and what must
    // survive a crash of the machine (the phase file, the history's record
    // of the run) is synced where it is written.
    file.write_all(text.as_bytes()).map_err(fail)?;
    Ok(path)
}

impl Entry {
    /// The entry's markdown:
    ///
    /// ```text
    /// ## run-supervisor run — 11:20 UTC
    ///
    /// - Run: 20261121-112000-3fa9, PHASE:done in 3m
    ///
    /// ### Health status
    /// - RAM: 23823 MB available of 24105 MB
    /// ...
    ///
    /// ### Steps
    /// - `preflight` Review pre-collected metrics — done (12s)
    /// - `fetch` Fetch — done (3s)
    ///   - attempt 1: failed in 40ms, retried after 1s: step `fetch` was not signalled: …
    /// ```
    ///
    /// With a [`Decision`], a `- Gate: …` line follows the run line (then
    /// `- Usage: …` when the agent reported its spend; a step's cost follows
    /// its duration: `(12s, $0.0075)`), and
    /// `### Findings` (`- None: healthy` when there are none), `### Actions`
    /// and `### Rules not evaluated` (each only when it has lines) come
    /// before the steps.
    pub fn to_markdown(&self) -> String {
        let mut text = String::new();
        let _ = writeln!(
            text,
            "## {} run — {} UTC\n",
            self.formula,
            self.started_at.format("%H:%M")
        );
        let _ = writeln!(
            text,
            "- Run: {}, PHASE:{} in {}",
            self.run_id,
            self.phase,
            compact(self.duration)
        );
        if let Some(reason) = &self.reason {
            let _ = writeln!(text, "- Reason: {}", one_line(reason));
        }
        if let Some(decision) = &self.decision {
            let _ = writeln!(text, "- Gate: {}", one_line(&decision.gate));
        }
        if let Some(usage) = &self.usage {
            let _ = writeln!(text, "- Usage: {}", one_line(usage));
        }
        for note in &self.notes {
            let _ = writeln!(text, "- Note: {}", one_line(note));
        }
        text.push_str("\n### Health status\n");
        if self.health.is_empty() {
            text.push_str("- (no preflight data)\n");
        }
        for line in &self.health {
            let _ = writeln!(text, "- {}", one_line(line));
        }
        if let Some(decision) = &self.decision {
            text.push_str("\n### Findings\n");
            if decision.findings.is_empty() {
                text.push_str("- None: healthy\n");
            }
            for line in &decision.findings {
                let _ = writeln!(text, "- {}", one_line(line));
            }
            if !decision.actions.is_empty() {
                text.push_str("\n### Actions\n");
                for line in &decision.actions {
                    let _ = writeln!(text, "- {}", one_line(line));
                }
            }
            if !decision.problems.is_empty() {
                text.push_str("\n### Rules not evaluated\n");
                for line in &decision.problems {
                    let _ = writeln!(text, "- {}", one_line(line));
                }
            }
        }
        text.push_str("\n### Steps\n");
        if self.steps.is_empty() {
            text.push_str("- None: no agent was started\n");
        }
        for step in &self.steps {
            let _ = write!(
                text,
                "- `{}` {} — {}",
                step.id,
                one_line(&step.title),
                step.outcome
            );
            match (step.duration, &step.cost) {
                (Some(duration), Some(cost)) => {
                    let _ = write!(text, " ({}, {})", compact(duration), one_line(cost));
                }
                (Some(duration), None) => {
                    let _ = write!(text, " ({})", compact(duration));
                }
                (None, Some(cost)) => {
                    let _ = write!(text, " ({})", one_line(cost));
                }
                (None, None) => {}
            }
            if let Some(reason) = &step.reason {
                let _ = write!(text, ": {}", one_line(reason));
            }
            text.push('\n');
            for attempt in &step.retried {
                let _ = writeln!(text, "  - {}", one_line(attempt));
            }
        }
        text
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn entry(at: DateTime<Utc>, phase: &str) -> Entry {
        Entry {
            formula: "run-supervisor".into(),
            run_id: "20261121-112000-3fa9".into(),
            started_at: at,
            duration: Duration::from_secs(192),
            phase: phase.into(),
            reason: (phase != "done").then(|| "step `report` timed out\nafter 30m".into()),
            health: vec![
                "RAM: 1200 MB available of 24105 MB".into(),
                "Disk /: 83% used".into(),
            ],
            steps: vec![
                StepLine {
                    id: "preflight".into(),
                    title: "Review pre-collected metrics".into(),
                    outcome: "done".into(),
                    duration: Some(Duration::from_millis(12_400)),
                    reason: None,
                    cost: Some("$0.0075".into()),
                    retried: vec![
                        "attempt 1: failed in 2s, retried after 1s: the agent\nexited".into(),
                    ],
                },
                StepLine {
                    id: "report".into(),
                    title: "Report".into(),
                    outcome: "skipped".into(),
                    duration: None,
                    reason: None,
                    cost: None,
                    retried: Vec::new(),
                },
            ],
            decision: None,
            usage: Some("2000 in, 100 out, cache 0 written / 0 read tokens; $0.0075".into()),
            notes: Vec::new(),
        }
    }

    #[test]
    fn entry_has_heading_health_and_steps() {
        let at = Utc.with_ymd_and_hms(2026, 11, 21, 11, 20, 5).unwrap();
        let text = entry(at, "failed").to_markdown();
        assert!(
            text.starts_with("## run-supervisor run — 11:20 UTC\n"),
            "{text}"
        );
        assert!(
            text.contains("- Run: 20261121-112000-3fa9, PHASE:failed in 3m\n"),
            "{text}"
        );
        assert!(
            text.contains("- Reason: step `report` timed out after 30m\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "### Health status\n- RAM: 1200 MB available of 24105 MB\n- Disk /: 83% used\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("- `preflight` Review pre-collected metrics — done (12s, $0.0075)\n  - attempt 1: failed in 2s, retried after 1s: the agent exited\n- `report`"),
            "{text}"
        );
        assert!(text.contains("- `report` Report — skipped\n"), "{text}");
        assert!(
            text.contains(
                "- Usage: 2000 in, 100 out, cache 0 written / 0 read tokens; $0.0075\n\n### Health"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_closed_gate_says_healthy_and_that_no_agent_started() {
        let at = Utc.with_ymd_and_hms(2026, 11, 21, 11, 20, 5).unwrap();
        let mut entry = entry(at, "done");
        entry.steps.clear();
        entry.decision = Some(Decision {
            gate: "closed (on-findings): healthy — no agent started".into(),
            findings: vec![],
            actions: vec![],
            problems: vec![],
        });
        let text = entry.to_markdown();
        assert!(
            text.contains("in 3m\n- Gate: closed (on-findings): healthy — no agent started\n"),
            "{text}"
        );
        assert!(text.contains("### Findings\n- None: healthy\n"), "{text}");
        assert!(!text.contains("### Actions"), "{text}");
        assert!(
            text.ends_with("### Steps\n- None: no agent was started\n"),
            "{text}"
        );
    }

    #[test]
    fn findings_and_actions_are_listed_before_the_steps() {
        let at = Utc.with_ymd_and_hms(2026, 11, 21, 11, 20, 5).unwrap();
        let mut entry = entry(at, "done");
        entry.decision = Some(Decision {
            gate: "open (on-findings): 1 finding firing".into(),
            findings: vec!["[P0] memory-crisis: RAM 300 MB available — new".into()],
            actions: vec!["free-memory for memory-crisis: exit 0 in 12ms".into()],
            problems: vec!["docker-down: docker is unavailable".into()],
        });
        let text = entry.to_markdown();
        let findings =
            text.find("### Findings\n- [P0] memory-crisis: RAM 300 MB available — new\n");
        let actions = text.find("### Actions\n- free-memory for memory-crisis: exit 0 in 12ms\n");
        let problems = text.find("### Rules not evaluated\n- docker-down: docker is unavailable\n");
        let steps = text.find("### Steps\n- `preflight`");
        assert!(
            findings.is_some() && actions.is_some() && problems.is_some(),
            "{text}"
        );
        assert!(
            findings < actions && actions < problems && problems < steps,
            "{text}"
        );
    }

    #[test]
    fn append_keeps_earlier_entries_and_splits_days() {
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("journal/run-supervisor");
        let morning = Utc.with_ymd_and_hms(2026, 11, 21, 0, 20, 0).unwrap();
        let noon = Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).unwrap();
        let next_day = Utc.with_ymd_and_hms(2026, 11, 22, 0, 0, 0).unwrap();

        let first = append(&journal, &entry(morning, "done")).unwrap();
        let second = append(&journal, &entry(noon, "escalate")).unwrap();
        let third = append(&journal, &entry(next_day, "done")).unwrap();

        assert_eq!(first, journal.join("2026-11-21.md"));
        assert_eq!(second, first);
        assert_eq!(third, journal.join("2026-11-22.md"));
        let day = std::fs::read_to_string(&first).unwrap();
        assert_eq!(day.matches("## run-supervisor run — ").count(), 2, "{day}");
        let morning_at = day.find("00:20 UTC").unwrap();
        let noon_at = day.find("12:00 UTC").unwrap();
        assert!(morning_at < noon_at, "entries are in the order appended");
        assert!(day.contains("PHASE:escalate"));
        assert!(
            day.contains("\n\n## run-supervisor run — 12:00 UTC"),
            "entries are separated by a blank line"
        );
    }

    #[test]
    fn append_reports_an_unwritable_directory() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "not a directory").unwrap();
        let at = Utc.with_ymd_and_hms(2026, 11, 21, 0, 0, 0).unwrap();
        let error = append(&blocker.join("journal"), &entry(at, "done")).unwrap_err();
        assert!(
            error.to_string().contains("cannot append to the journal"),
            "{error}"
        );
        assert_eq!(
            std::fs::read_to_string(&blocker).unwrap(),
            "not a directory"
        );
    }
}
