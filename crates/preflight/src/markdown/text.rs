//! The Markdown building blocks every section uses: capped lists, fenced
//! text blocks, inline code, and the ways figures are written (durations,
//! spans, sizes, timestamps, short commit ids).

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use super::MAX_TEXT_LINES;
use crate::snapshot::plural;

/// Writes `- item` lines, at most `max`, then `- … and N more`.
pub(super) fn push_capped_list(out: &mut String, items: &[String], max: usize) {
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
pub(super) fn push_text_block(out: &mut String, lines: &[String]) {
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

pub(super) fn longest_backtick_run(text: &str) -> usize {
    text.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

/// `text` as inline code, with a longer delimiter when it holds backticks.
pub(super) fn inline_code(text: &str) -> String {
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
pub(super) fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

/// The first 7 hex digits of a commit id.
pub(super) fn short(commit: &str) -> &str {
    commit.get(..7).unwrap_or(commit)
}

/// `2025-01-01 12:00:00 UTC`.
pub(super) fn timestamp(at: DateTime<Utc>) -> String {
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
pub(super) fn human_bytes(bytes: u64) -> String {
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
