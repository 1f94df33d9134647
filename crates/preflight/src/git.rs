//! The git collector: for each configured repository its branch (and the
//! expected one), detached HEAD, rebase or merge in progress, changed files,
//! ahead/behind its upstream and its worktrees; and the worktree directories
//! matching globs, with their age.
//!
//! Each repository costs one `git` process, never a shell: `status
//! --porcelain=v2 --branch` (a machine-readable format that git keeps
//! stable), with `--no-optional-locks` so that looking never takes
//! `index.lock` from under an agent at work. Where the working tree and the
//! git directory are, and the worktrees, are read from the repository's
//! files (`.git`, `HEAD`, refs, `worktrees/`: see `git/files.rs`), as
//! git reads them; a repository of another layout (bare, reftable refs, a
//! `core.worktree`, …) also gets `rev-parse --absolute-git-dir
//! --show-toplevel` and `worktree list --porcelain`, at once. A rebase or merge in
//! progress is read from the git directory (`rebase-merge/`,
//! `rebase-apply/`, `MERGE_HEAD`), as git itself decides it.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::{GitConfig, RepoConfig};
use crate::files::{Kind, age_seconds, expand, modified, resolve};
use crate::snapshot::{CollectorStatus, impl_section, plural};

mod files;

/// Git repositories, their worktrees, and worktree directories.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema, PartialEq)]
pub struct GitSection {
    /// How the collector fared: `error` when any repository could not be read.
    pub status: CollectorStatus,
    /// Human-readable explanation when `status` is not `Ok`, or a note (`null` when absent).
    pub reason: Option<String>,
    /// How long the collector took, in milliseconds.
    pub duration_ms: u64,
    /// One entry per configured repository, in configuration order (by
    /// default the repository holding the working directory, if any).
    pub repos: Vec<Repo>,
    /// The worktree-directory globs searched, as configured.
    pub worktree_globs: Vec<String>,
    /// Directories matching `worktree_globs`, by path.
    pub worktree_dirs: Vec<WorktreeDir>,
}

impl_section!(GitSection);

/// The state of one repository.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
pub struct Repo {
    /// The configured path, resolved (absolute).
    pub path: String,
    /// `ok`, or `error` / `unavailable` when git could not read it (`reason` says why).
    pub status: CollectorStatus,
    /// Why the repository could not be read (`null` when it could).
    pub reason: Option<String>,
    /// The top of its working tree (`git rev-parse --show-toplevel`).
    pub root: Option<String>,
    /// The checked-out branch (`# branch.head`), `null` when HEAD is detached.
    pub branch: Option<String>,
    /// The branch the formula expects it to be on (`[preflight.git] repos[].branch`), if any.
    pub expected_branch: Option<String>,
    /// Whether HEAD is detached (also the case during a rebase).
    pub detached: bool,
    /// The commit HEAD points at (`# branch.oid`, full hex); `null` before the first commit.
    pub head: Option<String>,
    /// Whether a rebase is in progress (`rebase-merge/` or `rebase-apply/`
    /// exists in the git directory, and it is not a `git am`).
    pub rebase_in_progress: bool,
    /// Whether a merge is in progress (`MERGE_HEAD` exists).
    pub merge_in_progress: bool,
    /// Paths `git status` lists: staged or unstaged changes, conflicts and
    /// untracked files (not ignored ones).
    pub changed_files: u64,
    /// Of `changed_files`, those with unresolved conflicts.
    pub conflicted_files: u64,
    /// Of `changed_files`, the untracked ones.
    pub untracked_files: u64,
    /// The upstream branch (`# branch.upstream`, e.g. `origin/main`), if one is set.
    pub upstream: Option<String>,
    /// Commits on the branch not on its upstream; `null` without an upstream
    /// (or when the upstream branch is gone).
    pub ahead: Option<u64>,
    /// Commits on the upstream not on the branch; `null` as for `ahead`.
    pub behind: Option<u64>,
    /// Its worktrees (`git worktree list`), the main one first.
    pub worktrees: Vec<Worktree>,
}

/// One worktree of a repository.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
pub struct Worktree {
    /// Its directory.
    pub path: String,
    /// Whether it is the repository's main worktree.
    pub primary: bool,
    /// Its branch (without `refs/heads/`); `null` when detached or bare.
    pub branch: Option<String>,
    /// The commit it has checked out (full hex), `null` for a bare repository.
    pub head: Option<String>,
    /// Whether its HEAD is detached.
    pub detached: bool,
    /// Whether it is locked (`git worktree lock`).
    pub locked: bool,
    /// Whether git considers it prunable (its directory is gone).
    pub prunable: bool,
    /// Last modification time of its directory, UTC; `null` when the directory is missing.
    pub modified: Option<DateTime<Utc>>,
    /// Seconds since then; `null` when the directory is missing.
    pub age_seconds: Option<u64>,
}

/// A directory matching `[preflight.git] worktree_globs`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
pub struct WorktreeDir {
    /// Its path.
    pub path: String,
    /// Last modification time of the directory itself, UTC (it changes when
    /// an entry directly inside is created, removed or renamed).
    pub modified: DateTime<Utc>,
    /// Seconds since then.
    pub age_seconds: u64,
}

pub(crate) async fn collect(config: GitConfig, cwd: PathBuf, now: DateTime<Utc>) -> GitSection {
    let mut note = None;
    let repos: Vec<RepoConfig> = match &config.repos {
        Some(repos) => repos.clone(),
        None => match enclosing_repo(&cwd) {
            Some(path) => vec![RepoConfig { path, branch: None }],
            None => {
                note = Some(format!(
                    "{} is not in a git repository, and [preflight.git] names no repos",
                    cwd.display()
                ));
                Vec::new()
            }
        },
    };

    let globs = config.worktree_globs.clone();
    let dirs_cwd = cwd.clone();
    let dirs = crate::off_thread("git", move || worktree_dirs(&globs, &dirs_cwd, now));
    let paths: Vec<PathBuf> = repos
        .iter()
        .map(|repo| resolve(&repo.path.to_string_lossy(), &cwd))
        .collect();
    let reads = crate::join_all(
        repos
            .iter()
            .zip(&paths)
            .map(|(repo, path)| read_repo(path.clone(), repo.branch.clone(), now))
            .collect(),
    );
    let (dirs, reads) = tokio::join!(dirs, reads);
    let repos: Vec<Repo> = reads
        .into_iter()
        .zip(&paths)
        .map(|(read, path)| {
            read.unwrap_or_else(|reason| Repo {
                path: path.display().to_string(),
                status: CollectorStatus::Error,
                reason: Some(reason),
                ..Repo::default()
            })
        })
        .collect();

    let mut problems = Vec::new();
    let worktree_dirs = match dirs {
        Ok((dirs, glob_problems)) => {
            problems.extend(glob_problems);
            dirs
        }
        Err(reason) => {
            problems.push(reason);
            Vec::new()
        }
    };
    let mut status = CollectorStatus::Ok;
    for repo in &repos {
        if let Some(reason) = &repo.reason {
            problems.push(format!("{}: {reason}", repo.path));
        }
        match repo.status {
            CollectorStatus::Error => status = CollectorStatus::Error,
            CollectorStatus::Unavailable if status == CollectorStatus::Ok => {
                status = CollectorStatus::Unavailable;
            }
            _ => {}
        }
    }
    if !problems.is_empty() && status == CollectorStatus::Ok {
        status = CollectorStatus::Error;
    }
    let reason = if problems.is_empty() {
        note
    } else {
        Some(problems.join("; "))
    };
    GitSection {
        status,
        reason,
        duration_ms: 0,
        repos,
        worktree_globs: config.worktree_globs,
        worktree_dirs,
    }
}

/// The working tree holding `dir`: the nearest ancestor with a `.git` entry.
fn enclosing_repo(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .find(|d| d.join(".git").exists())
        .map(Path::to_path_buf)
}

fn worktree_dirs(
    globs: &[String],
    cwd: &Path,
    now: DateTime<Utc>,
) -> (Vec<WorktreeDir>, Vec<String>) {
    let matches = expand(globs, cwd, Kind::Dir);
    let dirs = matches
        .found
        .iter()
        .map(|found| {
            let (modified, age_seconds) = crate::files::mtime_and_age(&found.metadata, now);
            WorktreeDir {
                path: found.path.display().to_string(),
                modified,
                age_seconds,
            }
        })
        .collect();
    (dirs, matches.problems)
}

/// Reads one repository. Never fails: problems are in its `status` and `reason`.
async fn read_repo(path: PathBuf, expected_branch: Option<String>, now: DateTime<Utc>) -> Repo {
    let mut repo = Repo {
        path: path.display().to_string(),
        expected_branch,
        ..Repo::default()
    };
    // The working tree, the git directory and the worktrees are read from
    // files where the repository has the plain layout (`files`), so that
    // only `git status` runs; otherwise `git` is asked for them too. The
    // status is polled first: its process starts before the files are read.
    let (status, (dirs, worktrees)) = tokio::join!(
        git(&path, &["status", "--porcelain=v2", "--branch"]),
        async {
            let layout = files::layout(&path);
            let listed = layout.as_ref().and_then(files::worktrees);
            let dirs = async {
                match &layout {
                    Some(layout) => Ok(format!(
                        "{}\n{}\n",
                        layout.git_dir.display(),
                        layout.root.display()
                    )),
                    None => {
                        let args = ["rev-parse", "--absolute-git-dir", "--show-toplevel"];
                        git(&path, &args).await
                    }
                }
            };
            let worktrees = async {
                match &listed {
                    Some(listed) => Ok(files::porcelain(listed)),
                    None => git(&path, &["worktree", "list", "--porcelain"]).await,
                }
            };
            tokio::join!(dirs, worktrees)
        },
    );
    let dirs = match dirs {
        Ok(out) => out,
        Err((status, reason)) => {
            repo.status = status;
            repo.reason = Some(reason);
            return repo;
        }
    };
    let mut lines = dirs.lines();
    let git_dir = lines.next().map(PathBuf::from);
    repo.root = lines.next().map(str::to_owned);
    if let Some(git_dir) = &git_dir {
        repo.rebase_in_progress = git_dir.join("rebase-merge").is_dir()
            || (git_dir.join("rebase-apply").is_dir()
                && !git_dir.join("rebase-apply/applying").exists());
        repo.merge_in_progress = git_dir.join("MERGE_HEAD").exists();
    }

    let mut problems = Vec::new();
    match status {
        Ok(out) => apply_status(&mut repo, &out),
        Err((_, reason)) => problems.push(reason),
    }
    match worktrees {
        Ok(out) => repo.worktrees = parse_worktrees(&out, now),
        Err((_, reason)) => problems.push(reason),
    }
    if !problems.is_empty() {
        repo.status = CollectorStatus::Error;
        repo.reason = Some(problems.join("; "));
    } else {
        repo.status = CollectorStatus::Ok;
    }
    repo
}

/// Runs `git --no-optional-locks -C DIR ARGS` with a predictable environment
/// and returns its standard output, or a status and reason.
async fn git(dir: &Path, args: &[&str]) -> Result<String, (CollectorStatus, String)> {
    let output = tokio::process::Command::new("git")
        .arg("--no-optional-locks")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("LC_ALL", "C")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output()
        .await;
    match output {
        Ok(output) if output.status.success() => {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        }
        Ok(output) => {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let message = stderr.lines().next().unwrap_or("").trim();
            let message = message.strip_prefix("fatal: ").unwrap_or(message);
            Err((
                CollectorStatus::Error,
                format!("git {} failed ({}): {message}", args[0], output.status),
            ))
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => Err((
            CollectorStatus::Unavailable,
            "git is not installed (not found on PATH)".to_owned(),
        )),
        Err(err) => Err((CollectorStatus::Error, format!("could not run git: {err}"))),
    }
}

/// Fills the branch and change fields from `git status --porcelain=v2 --branch`.
fn apply_status(repo: &mut Repo, out: &str) {
    for line in out.lines() {
        if let Some(header) = line.strip_prefix("# ") {
            let (key, value) = header.split_once(' ').unwrap_or((header, ""));
            match key {
                "branch.oid" => {
                    repo.head = (value != "(initial)").then(|| value.to_owned());
                }
                "branch.head" => {
                    repo.detached = value == "(detached)";
                    repo.branch = (!repo.detached).then(|| value.to_owned());
                }
                "branch.upstream" => repo.upstream = Some(value.to_owned()),
                "branch.ab" => {
                    let mut parts = value.split_whitespace();
                    repo.ahead = parts
                        .next()
                        .and_then(|a| a.trim_start_matches('+').parse().ok());
                    repo.behind = parts
                        .next()
                        .and_then(|b| b.trim_start_matches('-').parse().ok());
                }
                _ => {}
            }
            continue;
        }
        match line.split(' ').next() {
            Some("1" | "2") => repo.changed_files += 1,
            Some("u") => {
                repo.changed_files += 1;
                repo.conflicted_files += 1;
            }
            Some("?") => {
                repo.changed_files += 1;
                repo.untracked_files += 1;
            }
            _ => {}
        }
    }
}

/// Parses `git worktree list --porcelain`: blocks separated by blank lines.
fn parse_worktrees(out: &str, now: DateTime<Utc>) -> Vec<Worktree> {
    let mut worktrees: Vec<Worktree> = Vec::new();
    for line in out.lines() {
        let (key, value) = line.split_once(' ').unwrap_or((line, ""));
        if key == "worktree" {
            let metadata = std::fs::metadata(value).ok();
            let modified = metadata.as_ref().and_then(modified);
            worktrees.push(Worktree {
                path: value.to_owned(),
                primary: worktrees.is_empty(),
                modified,
                age_seconds: modified.map(|m| age_seconds(now, m)),
                ..Worktree::default()
            });
            continue;
        }
        let Some(current) = worktrees.last_mut() else {
            continue;
        };
        match key {
            "HEAD" => current.head = Some(value.to_owned()),
            "branch" => {
                current.branch = Some(
                    value
                        .strip_prefix("refs/heads/")
                        .unwrap_or(value)
                        .to_owned(),
                );
            }
            "detached" => current.detached = true,
            "locked" => current.locked = true,
            "prunable" => current.prunable = true,
            _ => {}
        }
    }
    worktrees
}

impl GitSection {
    /// `1 repository (1 not on its expected branch, 1 rebase in progress), 2 worktree dirs`.
    pub(crate) fn summary(&self) -> String {
        let mut notes = Vec::new();
        let wrong = self
            .repos
            .iter()
            .filter(|r| r.expected_branch.is_some() && r.branch != r.expected_branch)
            .count();
        if wrong > 0 {
            notes.push(format!("{wrong} not on its expected branch"));
        }
        let rebasing = self.repos.iter().filter(|r| r.rebase_in_progress).count();
        if rebasing > 0 {
            notes.push(format!("{rebasing} rebase in progress"));
        }
        let merging = self.repos.iter().filter(|r| r.merge_in_progress).count();
        if merging > 0 {
            notes.push(format!("{merging} merge in progress"));
        }
        let mut line = plural(self.repos.len(), "repository", "repositories");
        if !notes.is_empty() {
            line.push_str(&format!(" ({})", notes.join(", ")));
        }
        line.push_str(&format!(
            ", {}",
            plural(
                self.worktree_dirs.len(),
                "worktree directory",
                "worktree directories"
            )
        ));
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_porcelain_v2_status() {
        let out = "# branch.oid 1234abcd\n# branch.head main\n# branch.upstream origin/main\n\
                   # branch.ab +2 -1\n1 .M N... 100644 100644 100644 a b file.rs\n\
                   2 R. N... 100644 100644 100644 a b R100 new.rs\told.rs\n\
                   u UU N... 100644 100644 100644 100644 a b c both.rs\n? new file.txt\n";
        let mut repo = Repo::default();
        apply_status(&mut repo, out);
        assert_eq!(repo.branch.as_deref(), Some("main"));
        assert_eq!(repo.head.as_deref(), Some("1234abcd"));
        assert!(!repo.detached);
        assert_eq!(repo.upstream.as_deref(), Some("origin/main"));
        assert_eq!((repo.ahead, repo.behind), (Some(2), Some(1)));
        assert_eq!(repo.changed_files, 4);
        assert_eq!(repo.conflicted_files, 1);
        assert_eq!(repo.untracked_files, 1);

        let mut detached = Repo::default();
        apply_status(
            &mut detached,
            "# branch.oid (initial)\n# branch.head (detached)\n",
        );
        assert!(detached.detached);
        assert_eq!(detached.branch, None);
        assert_eq!(detached.head, None);
        assert_eq!(detached.ahead, None);
    }

    #[test]
    fn reads_worktree_list() {
        let out = "worktree /nonexistent/main\nHEAD aaaa\nbranch refs/heads/main\n\n\
                   worktree /nonexistent/wt\nHEAD bbbb\ndetached\nlocked reason here\nprunable gitdir file points to non-existent location\n\n";
        let worktrees = parse_worktrees(out, Utc::now());
        assert_eq!(worktrees.len(), 2);
        assert!(worktrees[0].primary);
        assert_eq!(worktrees[0].branch.as_deref(), Some("main"));
        assert_eq!(worktrees[0].age_seconds, None);
        assert!(!worktrees[1].primary);
        assert!(worktrees[1].detached && worktrees[1].locked && worktrees[1].prunable);
        assert_eq!(worktrees[1].head.as_deref(), Some("bbbb"));
    }
}
