//! The Git section: each repository's branch, state and worktrees, and the
//! worktree directories matched by globs.

use std::fmt::Write as _;

use super::text::{duration, inline_code, push_capped_list, short};
use super::{MAX_LIST_ITEMS, open};
use crate::git::{GitSection, Repo};
use crate::snapshot::{CollectorStatus, plural};

pub(super) fn render_git(out: &mut String, git: &GitSection) {
    if !open(out, "Git", git.status, git.reason.as_deref()) {
        return;
    }
    if git.repos.is_empty() {
        out.push_str("No repositories.\n");
    }
    for repo in git.repos.iter().take(MAX_LIST_ITEMS) {
        render_repo(out, repo);
    }
    let globs: Vec<String> = git.worktree_globs.iter().map(|g| inline_code(g)).collect();
    if !globs.is_empty() && git.worktree_dirs.is_empty() {
        let _ = writeln!(out, "\nNo worktree directories match {}.", globs.join(", "));
    } else if !globs.is_empty() {
        let _ = writeln!(
            out,
            "\n{} matching {}:\n",
            plural(
                git.worktree_dirs.len(),
                "worktree directory",
                "worktree directories"
            ),
            globs.join(", ")
        );
        let items: Vec<String> = git
            .worktree_dirs
            .iter()
            .map(|d| format!("{} (modified {} ago)", d.path, duration(d.age_seconds)))
            .collect();
        push_capped_list(out, &items, MAX_LIST_ITEMS);
    }
}

fn render_repo(out: &mut String, repo: &Repo) {
    if repo.status != CollectorStatus::Ok {
        let _ = writeln!(
            out,
            "- **{}**: **{}** — {}",
            repo.path,
            repo.status,
            repo.reason.as_deref().unwrap_or("no reason given")
        );
        return;
    }
    let mut facts = Vec::new();
    match (&repo.branch, &repo.expected_branch) {
        (Some(branch), Some(expected)) if branch != expected => facts.push(format!(
            "on {}, **expected {}**",
            inline_code(branch),
            inline_code(expected)
        )),
        (Some(branch), Some(_)) => facts.push(format!("on {} as expected", inline_code(branch))),
        (Some(branch), None) => facts.push(format!("on {}", inline_code(branch))),
        (None, expected) => {
            let at = repo
                .head
                .as_deref()
                .map(|h| format!(" at {}", short(h)))
                .unwrap_or_default();
            let mut fact = format!("**detached HEAD**{at}");
            if let Some(expected) = expected {
                let _ = write!(fact, ", expected {}", inline_code(expected));
            }
            facts.push(fact);
        }
    }
    if repo.rebase_in_progress {
        facts.push("**rebase in progress**".to_owned());
    }
    if repo.merge_in_progress {
        facts.push("**merge in progress**".to_owned());
    }
    if repo.changed_files == 0 {
        facts.push("clean".to_owned());
    } else {
        let mut parts = Vec::new();
        if repo.conflicted_files > 0 {
            parts.push(format!("**{} conflicted**", repo.conflicted_files));
        }
        if repo.untracked_files > 0 {
            parts.push(format!("{} untracked", repo.untracked_files));
        }
        let detail = if parts.is_empty() {
            String::new()
        } else {
            format!(" ({})", parts.join(", "))
        };
        facts.push(format!(
            "{}{detail}",
            plural(repo.changed_files as usize, "changed file", "changed files")
        ));
    }
    match (&repo.upstream, repo.ahead, repo.behind) {
        (Some(upstream), Some(ahead), Some(behind)) => facts.push(format!(
            "{ahead} ahead, {behind} behind {}",
            inline_code(upstream)
        )),
        (Some(upstream), _, _) => facts.push(format!("upstream {} is gone", inline_code(upstream))),
        (None, _, _) => facts.push("no upstream".to_owned()),
    }
    let _ = writeln!(out, "- **{}**: {}", repo.path, facts.join("; "));
    let linked: Vec<String> = repo
        .worktrees
        .iter()
        .filter(|w| Some(&w.path) != repo.root.as_ref())
        .map(|w| {
            let mut item = format!("worktree {}: ", w.path);
            match (&w.branch, &w.head) {
                (Some(branch), _) => item.push_str(&inline_code(branch)),
                (None, Some(head)) => {
                    let _ = write!(item, "detached at {}", short(head));
                }
                (None, None) => item.push_str("bare"),
            }
            match w.age_seconds {
                Some(age) => {
                    let _ = write!(item, ", modified {} ago", duration(age));
                }
                None => item.push_str(", directory missing"),
            }
            if w.locked {
                item.push_str(", locked");
            }
            if w.prunable {
                item.push_str(", **prunable**");
            }
            item
        })
        .collect();
    for item in linked.iter().take(MAX_LIST_ITEMS) {
        let _ = writeln!(out, "  - {item}");
    }
    if linked.len() > MAX_LIST_ITEMS {
        let _ = writeln!(out, "  - … and {} more", linked.len() - MAX_LIST_ITEMS);
    }
}
