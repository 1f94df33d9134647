//! Renders a [`Snapshot`] as Markdown: what a prompt gets, and what an
//! operator reads at a glance from `retort preflight`.
//!
//! One `###` heading per section (level 3, so the block nests under a
//! prompt's own `## Preflight snapshot` heading), in the order of the JSON;
//! numbers with units; every list capped at [`MAX_LIST_ITEMS`] with
//! `… and N more`, every text block (log tails, command output) at
//! [`MAX_TEXT_LINES`] lines with a note of how many were left out. A section
//! that is not `ok` opens with `**Status: error** — reason`; an unavailable
//! one says only that.
//!
//! ```text
//! Host `build-01`, collected 2025-01-01 12:00:00 UTC in 9 ms. Sizes in MB are MiB (2^20 bytes).
//!
//! ### System
//!
//! - RAM: 23823 MB available of 24105 MB
//! - Swap: 0 MB used of 0 MB
//! - Disk /: 13% used (11034 MB of 257844 MB)
//! - Load: 0.10 0.20 0.30 (1, 5, 15 min) on 2 CPUs
//! - Uptime: 3d 4h
//!
//! ### Docker
//!
//! **Status: unavailable** — no Docker daemon: nothing at /var/run/docker.sock (is dockerd running?)
//!
//! ### tmux
//! …
//! ```

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use crate::ci::CiSection;
use crate::commands::CommandsSection;
use crate::docker::DockerSection;
use crate::escalations::EscalationsSection;
use crate::forge::ForgeSection;
use crate::git::{GitSection, Repo};
use crate::locks::LocksSection;
use crate::logs::LogsSection;
use crate::phase_files::PhaseFilesSection;
use crate::snapshot::{
    CollectorStatus, Snapshot, disk_line, load_line, memory_line, plural, session_count, swap_line,
};
use crate::system::{Load, SystemSection};
use crate::tmux::{TmuxSection, TmuxSession};

/// Longest list (disks, sessions, files, …) rendered in full; the rest is
/// summarised as `… and N more`.
pub const MAX_LIST_ITEMS: usize = 50;

/// Longest text block (a log tail, a command's output) rendered in full, in
/// lines; the rest is summarised as `(N more lines)`.
pub const MAX_TEXT_LINES: usize = 40;

/// Pipelines listed in the CI section.
const MAX_PIPELINES: usize = 20;

/// Renders the whole snapshot. See the module docs for the shape.
pub(crate) fn render(snapshot: &Snapshot) -> String {
    let mut out = String::new();
    let host = if snapshot.hostname.is_empty() {
        "(unknown host)".to_owned()
    } else {
        format!("`{}`", snapshot.hostname)
    };
    let took = if snapshot.duration_ms > 0 {
        format!(" in {} ms", snapshot.duration_ms)
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "Host {host}, collected {}{took}. Sizes in MB are MiB (2^20 bytes).",
        timestamp(snapshot.collected_at)
    );
    let renderers: [&dyn Fn(&mut String); 11] = [
        &|out| render_system(out, &snapshot.system),
        &|out| render_docker(out, &snapshot.docker),
        &|out| render_tmux(out, &snapshot.tmux),
        &|out| render_phase_files(out, &snapshot.phase_files),
        &|out| render_locks(out, &snapshot.locks),
        &|out| render_logs(out, &snapshot.logs),
        &|out| render_git(out, &snapshot.git),
        &|out| render_escalations(out, &snapshot.escalations),
        &|out| render_forge(out, &snapshot.forge),
        &|out| render_ci(out, &snapshot.ci),
        &|out| render_commands(out, &snapshot.commands),
    ];
    for render in renderers {
        if !out.ends_with("\n\n") {
            out.push('\n');
        }
        render(&mut out);
    }
    out
}

/// Writes `### TITLE` and, unless the section is plainly `ok`, its status
/// paragraph. Returns whether the section's figures should follow (not when
/// it is unavailable: nothing was collected).
fn open(out: &mut String, title: &str, status: CollectorStatus, reason: Option<&str>) -> bool {
    let _ = writeln!(out, "### {title}\n");
    match (status, reason) {
        (CollectorStatus::Ok, None) => true,
        (CollectorStatus::Ok, Some(note)) => {
            let _ = writeln!(out, "Note: {note}\n");
            true
        }
        (status, reason) => {
            let _ = writeln!(
                out,
                "**Status: {status}** — {}\n",
                reason.unwrap_or("no reason given")
            );
            status != CollectorStatus::Unavailable
        }
    }
}

fn render_system(out: &mut String, system: &SystemSection) {
    if !open(out, "System", system.status, system.reason.as_deref()) {
        return;
    }
    // In an Error section, failed parts read as zero: show only what was collected.
    let ok = system.status == CollectorStatus::Ok;
    let mut items = Vec::new();
    if ok || system.memory.total_mb > 0 {
        items.push(memory_line(&system.memory));
        items.push(swap_line(&system.swap));
    }
    items.extend(system.disks.iter().map(disk_line));
    if ok || system.load != Load::default() {
        let cpus = if system.cpus > 0 {
            format!(" on {}", plural(system.cpus as usize, "CPU", "CPUs"))
        } else {
            String::new()
        };
        items.push(format!("{} (1, 5, 15 min){cpus}", load_line(&system.load)));
    }
    if system.uptime_seconds > 0 {
        items.push(format!("Uptime: {}", duration(system.uptime_seconds)));
    }
    if items.is_empty() && system.top_processes.is_empty() {
        out.push_str("No figures were collected.\n");
        return;
    }
    push_capped_list(out, &items, MAX_LIST_ITEMS);
    if !system.top_processes.is_empty() {
        let _ = writeln!(out, "\nLargest processes by resident memory:\n");
        let items: Vec<String> = system
            .top_processes
            .iter()
            .map(|p| {
                format!(
                    "{} MB {} (pid {}, up {})",
                    p.rss_mb,
                    inline_code(&crate::files::cap_chars(&p.command, 100)),
                    p.pid,
                    duration(p.age_seconds)
                )
            })
            .collect();
        push_capped_list(out, &items, MAX_LIST_ITEMS);
    }
}

fn render_docker(out: &mut String, docker: &DockerSection) {
    if !open(out, "Docker", docker.status, docker.reason.as_deref()) {
        return;
    }
    if docker.containers.is_empty() {
        out.push_str("No containers.\n");
        return;
    }
    let _ = writeln!(out, "{}:\n", docker.summary());
    let items: Vec<String> = docker
        .containers
        .iter()
        .map(|c| {
            let mut item = format!("{} ({}): {}", c.name, inline_code(&c.image), c.state);
            match c.health.as_deref() {
                Some("healthy") | None => {}
                Some(health) => {
                    let _ = write!(item, ", **{health}**");
                }
            }
            if c.health.as_deref() == Some("healthy") {
                item.push_str(", healthy");
            }
            if c.restart_count > 0 {
                let _ = write!(
                    item,
                    ", {}",
                    plural(c.restart_count as usize, "restart", "restarts")
                );
            }
            if let Some(cpu) = c.cpu_percent {
                let _ = write!(item, ", CPU {cpu:.1}%");
            }
            if let Some(mb) = c.memory_mb {
                let _ = write!(item, ", {mb} MB");
            }
            item
        })
        .collect();
    push_capped_list(out, &items, MAX_LIST_ITEMS);
}

fn render_tmux(out: &mut String, tmux: &TmuxSection) {
    if !open(out, "tmux", tmux.status, tmux.reason.as_deref()) {
        return;
    }
    if tmux.sessions.is_empty() {
        out.push_str("No sessions.\n");
        return;
    }
    let _ = writeln!(out, "{}:\n", session_count(tmux.sessions.len()));
    for session in tmux.sessions.iter().take(MAX_LIST_ITEMS) {
        let _ = writeln!(out, "- {}", session_item(session));
        let panes: Vec<String> = session
            .panes
            .iter()
            .map(|pane| {
                let place = format!(
                    "pane {} ({}.{})",
                    pane.id, pane.window_index, pane.pane_index
                );
                if pane.dead {
                    let how = match (pane.exit_status, pane.exit_signal) {
                        (Some(code), _) => format!("exit status {code}"),
                        (None, Some(signal)) => format!("killed by signal {signal}"),
                        (None, None) => "exit status unknown".to_owned(),
                    };
                    format!(
                        "{place}: **dead** ({how}), was {}, pid {}",
                        inline_code(&pane.current_command),
                        pane.pid
                    )
                } else {
                    format!(
                        "{place}: {}, pid {}",
                        inline_code(&pane.current_command),
                        pane.pid
                    )
                }
            })
            .collect();
        for pane in panes.iter().take(MAX_LIST_ITEMS) {
            let _ = writeln!(out, "  - {pane}");
        }
        if panes.len() > MAX_LIST_ITEMS {
            let _ = writeln!(out, "  - … and {} more", panes.len() - MAX_LIST_ITEMS);
        }
    }
    if tmux.sessions.len() > MAX_LIST_ITEMS {
        let _ = writeln!(out, "- … and {} more", tmux.sessions.len() - MAX_LIST_ITEMS);
    }
}

/// `alpha: 1 window, detached, created …, last activity … (idle 30m)`.
fn session_item(session: &TmuxSession) -> String {
    let windows = plural(session.windows as usize, "window", "windows");
    let attached = if session.attached {
        "attached"
    } else {
        "detached"
    };
    format!(
        "{}: {windows}, {attached}, created {}, last activity {} (idle {})",
        session.name,
        timestamp(session.created),
        timestamp(session.last_activity),
        duration(session.idle_seconds)
    )
}

/// `N files matching `g1`, `g2`:` or `No files match …`.
fn files_intro(out: &mut String, count: usize, omitted: u64, globs: &[String]) {
    let globs: Vec<String> = globs.iter().map(|g| inline_code(g)).collect();
    let globs = globs.join(", ");
    if count == 0 {
        let _ = writeln!(out, "No files match {globs}.");
    } else {
        let total = count + omitted as usize;
        let _ = writeln!(
            out,
            "{} matching {globs}{}:\n",
            plural(total, "file", "files"),
            if omitted > 0 {
                format!(" ({count} listed)")
            } else {
                String::new()
            }
        );
    }
}

fn render_phase_files(out: &mut String, section: &PhaseFilesSection) {
    if !open(
        out,
        "Phase files",
        section.status,
        section.reason.as_deref(),
    ) {
        return;
    }
    files_intro(out, section.files.len(), section.omitted, &section.globs);
    let items: Vec<String> = section
        .files
        .iter()
        .map(|f| {
            let line = if f.first_line.is_empty() {
                "(empty)".to_owned()
            } else {
                inline_code(&f.first_line)
            };
            format!(
                "{}: {line} (modified {} ago)",
                f.path,
                duration(f.age_seconds)
            )
        })
        .collect();
    push_capped_list(out, &items, MAX_LIST_ITEMS);
}

fn render_locks(out: &mut String, section: &LocksSection) {
    if !open(out, "Lock files", section.status, section.reason.as_deref()) {
        return;
    }
    files_intro(out, section.files.len(), section.omitted, &section.globs);
    let items: Vec<String> = section
        .files
        .iter()
        .map(|f| {
            let holder = match f.pid {
                Some(pid) if f.alive => format!("PID {pid}, alive"),
                Some(pid) => format!("PID {pid}, **dead**"),
                None if f.content.is_empty() => "**no PID** (empty)".to_owned(),
                None => format!("**no PID** ({})", inline_code(&f.content)),
            };
            format!(
                "{}: {holder} (modified {} ago)",
                f.path,
                duration(f.age_seconds)
            )
        })
        .collect();
    push_capped_list(out, &items, MAX_LIST_ITEMS);
}

fn render_logs(out: &mut String, section: &LogsSection) {
    if !open(out, "Logs", section.status, section.reason.as_deref()) {
        return;
    }
    files_intro(out, section.files.len(), section.omitted, &section.globs);
    for file in section.files.iter().take(MAX_LIST_ITEMS) {
        let _ = writeln!(
            out,
            "**{}** — {}, modified {} ago{}",
            file.path,
            human_bytes(file.size_bytes),
            duration(file.age_seconds),
            if file.last_lines.is_empty() {
                ", empty.\n".to_owned()
            } else {
                format!(
                    "; last {}:\n",
                    plural(file.last_lines.len(), "line", "lines")
                )
            }
        );
        if !file.last_lines.is_empty() {
            push_text_block(out, &file.last_lines);
        }
    }
    if section.files.len() > MAX_LIST_ITEMS {
        let _ = writeln!(
            out,
            "… and {} more files\n",
            section.files.len() - MAX_LIST_ITEMS
        );
    }
}

fn render_git(out: &mut String, git: &GitSection) {
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

fn render_escalations(out: &mut String, section: &EscalationsSection) {
    if !open(
        out,
        "Escalations",
        section.status,
        section.reason.as_deref(),
    ) {
        return;
    }
    files_intro(out, section.files.len(), section.omitted, &section.globs);
    let items: Vec<String> = section
        .files
        .iter()
        .map(|f| {
            let heading = f
                .heading
                .as_deref()
                .map(|h| format!("\"{}\"", one_line(h)))
                .unwrap_or_else(|| "(no heading)".to_owned());
            format!(
                "{}: {heading} (modified {} ago)",
                f.path,
                duration(f.age_seconds)
            )
        })
        .collect();
    push_capped_list(out, &items, MAX_LIST_ITEMS);
}

fn render_forge(out: &mut String, forge: &ForgeSection) {
    if !open(out, "Forge", forge.status, forge.reason.as_deref()) {
        return;
    }
    let _ = writeln!(
        out,
        "{} at {}: {}{}\n",
        forge.repo,
        forge.url,
        plural(
            forge.open_pull_requests as usize,
            "open pull request",
            "open pull requests"
        ),
        if forge.pull_requests.is_empty() {
            "."
        } else {
            ":"
        }
    );
    let items: Vec<String> = forge
        .pull_requests
        .iter()
        .map(|p| {
            let mut item = format!(
                "#{} {} — {}",
                p.number,
                one_line(&p.title),
                inline_code(&p.head_branch)
            );
            if !p.author.is_empty() {
                let _ = write!(item, " by {}", p.author);
            }
            if let Some(idle) = p.idle_seconds {
                let _ = write!(item, ", updated {} ago", duration(idle));
            }
            if p.draft {
                item.push_str(" (draft)");
            }
            item
        })
        .collect();
    push_capped_list(out, &items, MAX_LIST_ITEMS);
    if !forge.labels.is_empty() {
        let counts: Vec<String> = forge
            .labels
            .iter()
            .map(|l| format!("{} {}", inline_code(&l.name), l.open_issues))
            .collect();
        let _ = writeln!(out, "\nOpen issues by label: {}.", counts.join(", "));
    }
    if !forge.blocked.is_empty() {
        let _ = writeln!(
            out,
            "\nIssues labelled {}:\n",
            inline_code(&forge.blocked_label)
        );
        let items: Vec<String> = forge
            .blocked
            .iter()
            .map(|i| {
                let idle = i
                    .idle_seconds
                    .map(|s| format!(", updated {} ago", duration(s)))
                    .unwrap_or_default();
                format!("#{} {}{idle}", i.number, one_line(&i.title))
            })
            .collect();
        push_capped_list(out, &items, MAX_LIST_ITEMS);
    }
}

fn render_ci(out: &mut String, ci: &CiSection) {
    if !open(out, "CI", ci.status, ci.reason.as_deref()) {
        return;
    }
    let counts: Vec<String> = ci
        .status_counts
        .iter()
        .map(|(status, n)| format!("{n} {status}"))
        .collect();
    let _ = writeln!(
        out,
        "Woodpecker repository {} at {}, last {}: {}{}.",
        ci.repo_id,
        ci.url,
        span(ci.window_seconds),
        plural(ci.pipelines.len(), "pipeline", "pipelines"),
        if counts.is_empty() {
            String::new()
        } else {
            format!(" ({})", counts.join(", "))
        }
    );
    let stuck = |n: u64, what: &str, limit: u64| {
        let text = format!("{n} {what} over {}", span(limit));
        if n > 0 { format!("**{text}**") } else { text }
    };
    let _ = writeln!(
        out,
        "{}, {}.\n",
        stuck(ci.running_too_long, "running", ci.running_limit_seconds),
        stuck(ci.pending_too_long, "pending", ci.pending_limit_seconds)
    );
    let items: Vec<String> = ci
        .pipelines
        .iter()
        .map(|p| {
            let mut item = format!(
                "#{} {}, {} on {}",
                p.number,
                p.status,
                p.event,
                inline_code(&p.branch)
            );
            match (p.status.as_str(), p.duration_seconds, p.pending_seconds) {
                (_, _, Some(wait)) => {
                    let _ = write!(item, ", waiting {}", duration(wait));
                }
                ("running", Some(secs), _) => {
                    let _ = write!(item, ", {} so far", duration(secs));
                }
                (_, Some(secs), _) => {
                    let _ = write!(item, ", took {}", duration(secs));
                }
                _ => {}
            }
            if p.stuck {
                item.push_str(" — **stuck**");
            }
            item
        })
        .collect();
    push_capped_list(out, &items, MAX_PIPELINES);
}

fn render_commands(out: &mut String, commands: &CommandsSection) {
    if !open(out, "Commands", commands.status, commands.reason.as_deref()) {
        return;
    }
    for result in commands.results.iter().take(MAX_LIST_ITEMS) {
        let how = match (result.status, result.exit_code, result.signal) {
            (CollectorStatus::Ok, Some(0), _) => "exit status 0".to_owned(),
            (CollectorStatus::Ok, Some(code), _) => format!("**exit status {code}**"),
            (CollectorStatus::Ok, None, Some(signal)) => format!("**killed by signal {signal}**"),
            (status, _, _) => format!(
                "**{status}**: {}",
                result.reason.as_deref().unwrap_or("no reason given")
            ),
        };
        let _ = writeln!(
            out,
            "**{}** ({}): {how}, {} ms{}",
            result.name,
            inline_code(&result.run.join(" ")),
            result.duration_ms,
            if result.stdout.is_empty() {
                ", no output.\n".to_owned()
            } else if result.stdout_truncated {
                format!(
                    "; output (first {} of {}):\n",
                    human_bytes(result.stdout.len() as u64),
                    human_bytes(result.stdout_bytes)
                )
            } else {
                "; output:\n".to_owned()
            }
        );
        if !result.stdout.is_empty() {
            let lines: Vec<String> = result.stdout.lines().map(str::to_owned).collect();
            push_text_block(out, &lines);
        }
        let failed = result.status != CollectorStatus::Ok || result.exit_code != Some(0);
        if failed && !result.stderr.trim().is_empty() {
            out.push_str("Standard error:\n\n");
            let lines: Vec<String> = result.stderr.lines().map(str::to_owned).collect();
            push_text_block(out, &lines);
        }
    }
    if commands.results.len() > MAX_LIST_ITEMS {
        let _ = writeln!(
            out,
            "… and {} more commands\n",
            commands.results.len() - MAX_LIST_ITEMS
        );
    }
}

/// Writes `- item` lines, at most `max`, then `- … and N more`.
fn push_capped_list(out: &mut String, items: &[String], max: usize) {
    for item in items.iter().take(max) {
        let _ = writeln!(out, "- {item}");
    }
    if items.len() > max {
        let _ = writeln!(out, "- … and {} more", items.len() - max);
    }
}

/// Writes the last [`MAX_TEXT_LINES`] of `lines` in a fenced `text` block
/// (its fence longer than any backtick run inside), noting how many earlier
/// lines were left out, then a blank line.
fn push_text_block(out: &mut String, lines: &[String]) {
    let skip = lines.len().saturating_sub(MAX_TEXT_LINES);
    if skip > 0 {
        let _ = writeln!(
            out,
            "({} left out; the last {MAX_TEXT_LINES} follow)\n",
            plural(skip, "earlier line", "earlier lines")
        );
    }
    let shown = &lines[skip..];
    let longest = shown
        .iter()
        .map(|l| longest_backtick_run(l))
        .max()
        .unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    let _ = writeln!(out, "{fence}text");
    for line in shown {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(out, "{fence}\n");
}

fn longest_backtick_run(text: &str) -> usize {
    text.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

/// `text` as inline code, with a longer delimiter when it holds backticks.
fn inline_code(text: &str) -> String {
    let text = one_line(text);
    let run = longest_backtick_run(&text);
    if run == 0 {
        format!("`{text}`")
    } else {
        let delimiter = "`".repeat(run + 1);
        format!("{delimiter} {text} {delimiter}")
    }
}

/// `text` with line breaks replaced by spaces, so it cannot break a list.
fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

/// The first 7 hex digits of a commit id.
fn short(commit: &str) -> &str {
    commit.get(..7).unwrap_or(commit)
}

/// `2025-01-01 12:00:00 UTC`.
fn timestamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// An age or a wait of `secs` seconds in retort's one duration style
/// ([`retort_os::duration::compact`]): `45s`, `12m`, `3h 05m`, `2d 4h`.
pub(crate) fn duration(secs: u64) -> String {
    retort_os::duration::compact(std::time::Duration::from_secs(secs))
}

/// A configured span in its simplest unit: `24h`, `20m`, `90s`.
pub(crate) fn span(secs: u64) -> String {
    if secs >= 3600 && secs.is_multiple_of(3600) {
        format!("{}h", secs / 3600)
    } else if secs >= 60 && secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

/// `512 bytes`, `12.3 KiB`, `4.0 MiB`, `1.2 GiB`.
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return plural(bytes as usize, "byte", "bytes");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(45), "45s");
        assert_eq!(duration(12 * 60 + 5), "12m");
        assert_eq!(duration(3 * 3600 + 5 * 60), "3h 05m");
        assert_eq!(duration(2 * 86_400 + 4 * 3600 + 59), "2d 4h");
    }

    #[test]
    fn sizes() {
        assert_eq!(human_bytes(1), "1 byte");
        assert_eq!(human_bytes(512), "512 bytes");
        assert_eq!(human_bytes(12_595), "12.3 KiB");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
    }

    #[test]
    fn code_survives_backticks_and_newlines() {
        assert_eq!(inline_code("ls"), "`ls`");
        assert_eq!(inline_code("a`b"), "`` a`b ``");
        assert_eq!(inline_code("a\nb"), "`a b`");
        let mut out = String::new();
        push_text_block(&mut out, &["```".to_owned(), "x".to_owned()]);
        assert_eq!(out, "````text\n```\nx\n````\n\n");
    }

    #[test]
    fn long_text_blocks_keep_their_end() {
        let lines: Vec<String> = (0..45).map(|i| format!("l{i}")).collect();
        let mut out = String::new();
        push_text_block(&mut out, &lines);
        assert!(out.starts_with("(5 earlier lines left out; the last 40 follow)\n\n```text\nl5\n"));
        assert!(out.ends_with("l44\n```\n\n"));
    }
}
