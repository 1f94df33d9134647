//! The remote services' sections: the forge (pull requests, issues by
//! label) and CI (Woodpecker pipelines).

use std::fmt::Write as _;

use super::text::{duration, inline_code, one_line, push_capped_list, span};
use super::{MAX_LIST_ITEMS, open};
use crate::ci::CiSection;
use crate::forge::ForgeSection;
use crate::snapshot::plural;

/// Pipelines listed in the CI section.
const MAX_PIPELINES: usize = 20;

pub(super) fn render_forge(out: &mut String, forge: &ForgeSection) {
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

pub(super) fn render_ci(out: &mut String, ci: &CiSection) {
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
