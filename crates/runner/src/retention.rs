//! Retention: a formula's runs leave nothing behind for ever.
//!
//! ```toml
//! [history]
//! keep = "30d"   # default: 30 days
//! ```
//!
//! A supervisor run every 20 minutes leaves 72 run directories a day and
//! their rows in the run history. At the end of each run (gate open or
//! closed), under the formula's run lock and after the phase file, the
//! run history and the journal are written, [`prune`] removes what this
//! formula's runs left that is older than `keep`:
//!
//! - run directories `STATE/runs/RUN_ID/` whose `run.json` names this
//!   formula and whose run id's start time is older than `keep`. Never the
//!   current run's; never one whose `run.json` is missing or unreadable
//!   (a run in progress, one that crashed, something not retort's): it is
//!   left alone, not guessed at. `run.json` is removed last, so that a
//!   removal cut short is finished by the next run;
//! - rows of the run history ([`History::prune`]): old runs but the
//!   latest, with their findings; old action runs but the latest of each
//!   action for each finding (cooldowns count from it); decided proposals
//!   but the latest of each action for each finding.
//!
//! Journals (`STATE/journal/`) are the operator's record and never removed;
//! nor are other formulas' directories and rows, or pending proposals.
//!
//! Age is measured on the clock that stamped each thing: a run directory by
//! its run id (the wall clock at its start) against this run's start; a
//! history row by the time it records (mostly snapshot times) against the
//! earlier of this run's start and its snapshot's `collected_at`, so that
//! replaying a snapshot from the future removes nothing more.
//!
//! What goes wrong while pruning is a warning in the run's report, never a
//! failed run. What was removed is in `run.json`, under `pruned`.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use retort_journal::history::{History, PrunedRows};

use crate::state::{StateDir, run_id_started};

/// Failures reported one by one in a run's warnings; more are counted in
/// one more line.
const WARNINGS_SHOWN: usize = 3;

/// What [`prune`] removed; `pruned` in `run.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Pruned {
    /// The formula's `keep`, as a humane duration (`30days`).
    pub keep: String,
    /// Run directories of runs that started before this time (UTC) were old;
    /// none when `keep` reaches back before any time there is.
    pub run_dirs_before: Option<DateTime<Utc>>,
    /// Run-history rows from before this time (UTC) were old; none as above.
    pub history_before: Option<DateTime<Utc>>,
    /// Run directories of this formula removed.
    pub run_dirs: u64,
    /// Old run directories left alone because their `run.json` is missing
    /// or unreadable (runs in progress or crashed, of any formula).
    pub run_dirs_unreadable: u64,
    /// Rows removed from the run history, per table (all zero when pruning
    /// it failed; a warning says why).
    pub history: PrunedRows,
    /// How long pruning took, in milliseconds.
    pub duration_ms: u64,
}

/// What a run needs to prune what its formula's runs left.
#[derive(Debug, Clone, Copy)]
pub struct Retention<'a> {
    /// The state directory.
    pub state: &'a StateDir,
    /// The formula's name, as `run.json` and the run history record it.
    pub formula: &'a str,
    /// The current run's id: its directory is never removed.
    pub run_id: &'a str,
    /// How long to keep ([`retort_formula::history::HistorySection::keep`]).
    pub keep: Duration,
    /// When the current run started (UTC, wall clock).
    pub started_at: DateTime<Utc>,
    /// The current run's snapshot time (`collected_at`), which the history
    /// rows it wrote record.
    pub decided_at: DateTime<Utc>,
}

/// Removes what `retention.formula`'s runs left that is older than `keep`:
/// its old run directories, then its old run-history rows (see the module
/// documentation). Returns what was removed and a warning for each thing
/// that could not be (the first few one by one, the rest counted); a
/// failure never stops the rest.
pub fn prune(retention: &Retention<'_>, history: &mut History) -> (Pruned, Vec<String>) {
    let clock = Instant::now();
    let mut warnings = Vec::new();
    let run_dirs_before = before(retention.started_at, retention.keep);
    let history_before = before(
        retention.started_at.min(retention.decided_at),
        retention.keep,
    );
    let dirs = match run_dirs_before {
        Some(before) => prune_run_dirs(
            &retention.state.runs_dir(),
            retention.formula,
            retention.run_id,
            before,
        ),
        None => RunDirsPruned::default(),
    };
    warnings.extend(dirs.warnings);
    let rows = match history_before {
        Some(before) => match history.prune(retention.formula, before) {
            Ok(rows) => rows,
            Err(error) => {
                warnings.push(format!(
                    "could not remove the run history's rows older than {} ({error}); nothing was removed from it, and the next run tries again",
                    humantime::format_duration(retention.keep)
                ));
                PrunedRows::default()
            }
        },
        None => PrunedRows::default(),
    };
    let pruned = Pruned {
        keep: humantime::format_duration(retention.keep).to_string(),
        run_dirs_before,
        history_before,
        run_dirs: dirs.removed,
        run_dirs_unreadable: dirs.unreadable,
        history: rows,
        duration_ms: u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX),
    };
    (pruned, warnings)
}

/// `now - keep`, or `None` when that is before any time chrono knows.
fn before(now: DateTime<Utc>, keep: Duration) -> Option<DateTime<Utc>> {
    chrono::Duration::from_std(keep)
        .ok()
        .and_then(|keep| now.checked_sub_signed(keep))
}

/// What [`prune_run_dirs`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunDirsPruned {
    /// Run directories removed.
    pub removed: u64,
    /// Old run directories left alone: no readable `run.json`.
    pub unreadable: u64,
    /// What could not be removed, or listed, one line each (the first
    /// three one by one, the rest counted in one more line).
    pub warnings: Vec<String>,
}

/// Removes the run directories in `runs_dir` (`STATE/runs`) whose name is a
/// run id that started before `before` and whose `run.json` names
/// `formula`, except `current` (the run in progress). Names that are not
/// run ids, symbolic links and files are left alone, and so are
/// directories whose `run.json` is missing or unreadable (counted).
pub fn prune_run_dirs(
    runs_dir: &Path,
    formula: &str,
    current: &str,
    before: DateTime<Utc>,
) -> RunDirsPruned {
    prune_run_dirs_with(runs_dir, formula, current, before, &mut remove_run_dir)
}

/// [`prune_run_dirs`], removing each directory with `remove`.
fn prune_run_dirs_with(
    runs_dir: &Path,
    formula: &str,
    current: &str,
    before: DateTime<Utc>,
    remove: &mut dyn FnMut(&Path) -> std::io::Result<()>,
) -> RunDirsPruned {
    let mut pruned = RunDirsPruned::default();
    let entries = match std::fs::read_dir(runs_dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == ErrorKind::NotFound => return pruned,
        Err(error) => {
            pruned.warnings.push(format!(
                "could not list the run directories in {} to remove old ones: {error}; check that retort may read it",
                runs_dir.display()
            ));
            return pruned;
        }
    };
    let mut old: Vec<PathBuf> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(error) => {
                failures.push(format!(
                    "could not list {} to the end: {error}",
                    runs_dir.display()
                ));
                break;
            }
        };
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        let is_old = run_id_started(name).is_some_and(|started| started < before);
        // `file_type` does not follow symbolic links: a link is never
        // followed into what it points at.
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_old && is_dir && name != current {
            old.push(entry.path());
        }
    }
    old.sort();
    for dir in old {
        match owner(&dir) {
            Some(owner) if owner == formula => {}
            Some(_) => continue,
            None => {
                pruned.unreadable += 1;
                continue;
            }
        }
        match remove(&dir) {
            Ok(()) => pruned.removed += 1,
            Err(error) if error.kind() == ErrorKind::NotFound => failures.push(format!(
                "old run directory {} vanished while it was being removed (did something else remove it?); nothing is left to do",
                dir.display()
            )),
            Err(error) => failures.push(format!(
                "could not remove old run directory {}: {error}; remove what is left of it by hand (rm -r {}) or let retort have write access to it",
                dir.display(),
                dir.display()
            )),
        }
    }
    let more = failures.len().saturating_sub(WARNINGS_SHOWN);
    pruned
        .warnings
        .extend(failures.into_iter().take(WARNINGS_SHOWN));
    if more > 0 {
        pruned.warnings.push(format!(
            "… and {more} more old run directories in {} could not be removed (as above)",
            runs_dir.display()
        ));
    }
    pruned
}

/// The formula that `dir/run.json` names, or `None` when it is missing,
/// unreadable, or not a run summary.
fn owner(dir: &Path) -> Option<String> {
    #[derive(Deserialize)]
    struct Summary {
        formula: String,
    }
    let bytes = std::fs::read(dir.join("run.json")).ok()?;
    serde_json::from_slice::<Summary>(&bytes)
        .ok()
        .map(|s| s.formula)
}

/// Removes a run directory: everything but `run.json`, then `run.json`,
/// then the directory, so that until the end it still says whose it is.
/// What vanishes meanwhile inside it is no error; the directory itself
/// vanishing is `NotFound`.
fn remove_run_dir(dir: &Path) -> std::io::Result<()> {
    let gone = |result: std::io::Result<()>| match result {
        Err(error) if error.kind() == ErrorKind::NotFound => Ok(()),
        other => other,
    };
    let summary = dir.join("run.json");
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if path == summary {
            continue;
        }
        match entry.file_type()?.is_dir() {
            true => gone(std::fs::remove_dir_all(&path))?,
            false => gone(std::fs::remove_file(&path))?,
        }
    }
    gone(std::fs::remove_file(&summary))?;
    std::fs::remove_dir(dir)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::run::{RunOptions, execute, prepare};
    use retort_agent::session::TmuxServer;

    /// The run directory of a real run of a formula named `tidy` whose gate
    /// stays closed (no agent), in `root/state`.
    async fn real_run(root: &Path) -> PathBuf {
        let formula = root.join("tidy.toml");
        std::fs::write(
            &formula,
            "name = \"tidy\"\n[[rules]]\nid = \"low\"\npriority = \"P0\"\n\
             when = \"system.memory.available_mb < 500\"\nmessage = \"low\"\n\
             [[steps]]\nid = \"look\"\ndescription = \"Look.\"\n",
        )
        .unwrap();
        let mut snapshot = retort_preflight::Snapshot::default();
        snapshot.system.status = retort_preflight::CollectorStatus::Ok;
        snapshot.system.memory.available_mb = 6000;
        let snapshot_file = root.join("snapshot.json");
        std::fs::write(&snapshot_file, serde_json::to_vec(&snapshot).unwrap()).unwrap();
        let options = RunOptions {
            formula,
            agent: None,
            ready: None,
            backend: None,
            vars: BTreeMap::new(),
            state: StateDir::resolve(Some(&root.join("state"))).unwrap(),
            phase_file: None,
            cwd: root.to_path_buf(),
            tmux: TmuxServer::default(),
            preflight: retort_preflight::Config::default(),
            bin_dir: None,
            snapshot: Some(snapshot_file),
            rerun: None,
            interrupt: retort_os::interrupt::Interrupt::never(),
        };
        let plan = prepare(&options, false).await.unwrap();
        let report = execute(&plan, &options, &mut |_| {}).await.unwrap();
        assert!(!report.gate.open);
        report.run_dir
    }

    /// Copies the run directory `from` to `runs/name`, its `run.json`
    /// naming that run.
    fn copy_run(from: &Path, runs: &Path, name: &str) -> PathBuf {
        let to = runs.join(name);
        std::fs::create_dir(&to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
        let mut summary: serde_json::Value =
            serde_json::from_slice(&std::fs::read(to.join("run.json")).unwrap()).unwrap();
        summary["run_id"] = name.into();
        summary["run_dir"] = to.display().to_string().into();
        std::fs::write(to.join("run.json"), summary.to_string()).unwrap();
        to
    }

    fn tomorrow() -> DateTime<Utc> {
        Utc::now() + chrono::Duration::days(1)
    }

    #[tokio::test]
    async fn the_current_run_is_never_removed_however_old() {
        let root = tempfile::tempdir().unwrap();
        let real = real_run(root.path()).await;
        let runs = real.parent().unwrap().to_path_buf();
        let current = copy_run(&real, &runs, "20200101-000000-0001");
        let older = copy_run(&real, &runs, "20190101-000000-0002");

        let pruned = prune_run_dirs(&runs, "tidy", "20200101-000000-0001", tomorrow());

        assert_eq!(pruned.removed, 2, "{pruned:?}");
        assert!(pruned.warnings.is_empty(), "{:?}", pruned.warnings);
        assert!(current.join("run.json").exists());
        assert!(!older.exists() && !real.exists());
    }

    #[tokio::test]
    async fn directories_that_vanish_or_stay_are_warnings_the_first_few_one_by_one() {
        let root = tempfile::tempdir().unwrap();
        let real = real_run(root.path()).await;
        let runs = real.parent().unwrap().to_path_buf();
        let names: Vec<String> = (1..=5)
            .map(|n| format!("20200101-00000{n}-000{n}"))
            .collect();
        let dirs: Vec<PathBuf> = names.iter().map(|n| copy_run(&real, &runs, n)).collect();
        std::fs::remove_dir_all(&real).unwrap();
        // The first vanishes just before it is removed (something else
        // removed it); the others cannot be removed. (Tests may run as
        // root, whom permissions do not stop: the error is made up.)
        let mut remove = |dir: &Path| {
            if dir == dirs[0] {
                std::fs::remove_dir_all(dir)?;
                return remove_run_dir(dir);
            }
            Err(std::io::Error::from(ErrorKind::PermissionDenied))
        };

        let pruned = prune_run_dirs_with(&runs, "tidy", "none", tomorrow(), &mut remove);

        assert_eq!(pruned.removed, 0);
        assert_eq!(pruned.warnings.len(), 4, "{:#?}", pruned.warnings);
        assert_eq!(
            pruned.warnings[0],
            format!(
                "old run directory {} vanished while it was being removed (did something else remove it?); nothing is left to do",
                dirs[0].display()
            )
        );
        assert!(
            pruned.warnings[1].starts_with(&format!(
                "could not remove old run directory {}: permission denied; remove what is left of it by hand (rm -r {})",
                dirs[1].display(),
                dirs[1].display()
            )),
            "{}",
            pruned.warnings[1]
        );
        assert!(
            pruned.warnings[2].contains(&names[2]),
            "{}",
            pruned.warnings[2]
        );
        assert_eq!(
            pruned.warnings[3],
            format!(
                "… and 2 more old run directories in {} could not be removed (as above)",
                runs.display()
            )
        );
        assert!(dirs[1..].iter().all(|dir| dir.join("run.json").exists()));
    }

    #[test]
    fn a_keep_beyond_the_calendar_finds_nothing_old() {
        let now = Utc::now();
        assert_eq!(
            before(now, Duration::from_secs(3600)),
            Some(now - chrono::Duration::hours(1))
        );
        assert_eq!(before(now, Duration::from_secs(u64::MAX)), None);
        assert_eq!(
            before(now, Duration::from_secs(400_000 * 366 * 86_400)),
            None
        );
    }
}
