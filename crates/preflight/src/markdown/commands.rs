//! The Commands section: each configured command's exit and output.

use std::fmt::Write as _;

use super::text::{human_bytes, inline_code, push_text_block};
use super::{MAX_LIST_ITEMS, open};
use crate::commands::CommandsSection;
use crate::snapshot::CollectorStatus;

pub(super) fn render_commands(out: &mut String, commands: &CommandsSection) {
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
