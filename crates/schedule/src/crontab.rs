//! The crontab renderer: one block of lines for a user crontab.
//!
//! The block is fenced by [`BEGIN`] and [`END`] comment lines, so a later
//! install can replace it whole (`docs/schedules.md` shows the command).
//! Each formula gets a comment line and one entry:
//!
//! ```text
//! */20 * * * * /bin/sh -c 'set -a; . "$1"; set +a; shift; exec "$@"' retort-NAME 'ENV' 'RETORT' run 'FORMULA' --quiet --state-dir 'STATE'
//! ```
//!
//! With a working directory, the script starts `cd "$1" || exit; shift;`
//! and the directory comes before the env file.
//!
//! The paths travel as `sh` positional arguments, each single-quoted, so no
//! path is ever parsed as shell code; the env file is sourced with `set -a`
//! so its `NAME=value` lines reach retort's environment and never the
//! command line. `%`, which cron turns into a newline, is written `\%`.

use crate::formula::{RenderError, ScheduledFormula, text, validate_all, wrapper};
use crate::output::MARKER;

/// First line of the block.
pub const BEGIN: &str = "# BEGIN retort schedule";
/// Last line of the block.
pub const END: &str = "# END retort schedule";

/// The crontab block for `formulas` (in the given order), ending in a
/// newline. Schedules are written in [`crate::Schedule::portable`] form.
///
/// # Errors
/// Any of [`ScheduledFormula::validate`]'s, [`RenderError::DuplicateName`],
/// [`RenderError::TimeZone`] for a formula with a time zone, and
/// [`RenderError::Path`] for a path holding a backslash (cron's `\%`
/// unescaping would make it ambiguous).
pub fn crontab(formulas: &[ScheduledFormula]) -> Result<String, RenderError> {
    validate_all(formulas)?;
    let mut out = format!(
        "{BEGIN}. {MARKER} --format crontab: regenerate rather than edit.\n\
         # Times are the machine's local time. Secrets come from each env file, never this line.\n"
    );
    for f in formulas {
        if f.time_zone.is_some() {
            return Err(RenderError::TimeZone(f.name.clone()));
        }
        let mut words = Vec::new();
        if let Some((script, args)) = wrapper(f) {
            words.push("/bin/sh".to_string());
            words.push("-c".to_string());
            words.push(quote(&script));
            words.push(format!("retort-{}", f.name));
            for (what, path) in args {
                words.push(quote_path(what, &path)?);
            }
        }
        words.push(quote_path("retort path", &text(&f.retort_path))?);
        words.push("run".to_string());
        words.push(quote_path("formula path", &text(&f.formula_path))?);
        words.push("--quiet".to_string());
        words.push("--state-dir".to_string());
        words.push(quote_path("state dir", &text(&f.state_dir))?);
        let command = words.join(" ").replace('%', r"\%");
        out.push_str(&format!(
            "# {}: `{}` — {}\n{} {}\n",
            f.name,
            f.schedule.as_str(),
            text(&f.formula_path),
            f.schedule.portable(),
            command
        ));
    }
    out.push_str(END);
    out.push('\n');
    Ok(out)
}

/// `s` in single quotes for `sh`, a `'` written `'\''`.
pub(crate) fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn quote_path(what: &'static str, path: &str) -> Result<String, RenderError> {
    if path.contains('\\') {
        return Err(RenderError::Path {
            what,
            path: path.to_string(),
            problem: "holds a backslash, which cron's `\\%` unescaping makes ambiguous in a \
                      crontab line: rename it, or use --format systemd",
        });
    }
    Ok(quote(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_survives_single_quotes() {
        assert_eq!(quote("it's"), r"'it'\''s'");
    }
}
