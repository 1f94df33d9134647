//! The systemd renderer: `retort-NAME.service` and `retort-NAME.timer` per
//! formula.
//!
//! The service is `Type=oneshot`, reads secrets with `EnvironmentFile=`,
//! starts in `WorkingDirectory=` when the formula has one,
//! runs `retort run FORMULA --quiet --state-dir STATE` with absolute paths
//! and sends its output to the journal. The timer carries the
//! `OnCalendar=` lines of [`crate::on_calendar`] with `Persistent=true` (a
//! run missed while the machine was off happens at the next boot) and
//! `AccuracySec=1s` (systemd's default of 1 min would drift runs off cron's
//! minute). Quoting follows systemd.service(5) "Command lines" and
//! systemd.unit(5) "Specifiers": every path is double-quoted with `\` and
//! `"` escaped, `%` is written `%%` and `$` `$$`.

use crate::calendar::on_calendar;
use crate::formula::{RenderError, ScheduledFormula, text, validate_all};
use crate::output::{GeneratedFile, MARKER};

/// `retort-NAME.service` and `retort-NAME.timer` for each formula, in order.
///
/// # Errors
/// Any of [`ScheduledFormula::validate`]'s, [`RenderError::DuplicateName`],
/// and [`RenderError::Path`] for a retort path holding `'`, `"` or `\\`.
pub fn systemd(formulas: &[ScheduledFormula]) -> Result<Vec<GeneratedFile>, RenderError> {
    validate_all(formulas)?;
    for f in formulas {
        let retort = text(&f.retort_path);
        if retort.contains(['\'', '"', '\\']) {
            return Err(RenderError::Path {
                what: "retort path",
                path: retort,
                problem: "holds a quote or backslash, which systemd refuses in an executable \
                          name (\"Executable name contains special characters\"): install \
                          retort at a plainer path, or link to it from one",
            });
        }
    }
    let mut files = Vec::with_capacity(formulas.len() * 2);
    for f in formulas {
        files.push(GeneratedFile {
            file_name: format!("retort-{}.service", f.name),
            contents: service(f),
        });
        files.push(GeneratedFile {
            file_name: format!("retort-{}.timer", f.name),
            contents: timer(f),
        });
    }
    Ok(files)
}

fn service(f: &ScheduledFormula) -> String {
    let formula = text(&f.formula_path);
    let mut out = format!(
        "# {MARKER} --format systemd: regenerate rather than edit.\n\
         # Started by retort-{name}.timer. Formula: {formula}\n\
         [Unit]\n\
         Description=retort formula {name}\n\
         Wants=network-online.target\n\
         After=network-online.target\n\
         \n\
         [Service]\n\
         Type=oneshot\n",
        name = f.name,
    );
    if let Some(env) = &f.env_file {
        out.push_str(&format!("EnvironmentFile={}\n", specifiers(&text(env))));
    }
    if let Some(dir) = &f.working_dir {
        out.push_str(&format!("WorkingDirectory={}\n", specifiers(&text(dir))));
    }
    out.push_str(&format!(
        "ExecStart={} run {} --quiet --state-dir {}\n\
         StandardOutput=journal\n\
         StandardError=journal\n\
         SyslogIdentifier=retort-{}\n",
        exec_path(&text(&f.retort_path)),
        exec_arg(&formula),
        exec_arg(&text(&f.state_dir)),
        f.name,
    ));
    out
}

fn timer(f: &ScheduledFormula) -> String {
    let zone = f.time_zone.as_deref();
    let mut out = format!(
        "# {MARKER} --format systemd: regenerate rather than edit.\n\
         # cron: {cron}{tz}\n\
         [Unit]\n\
         Description=Schedule of retort formula {name} (cron {cron})\n\
         \n\
         [Timer]\n",
        cron = f.schedule.as_str().trim(),
        tz = zone.map(|z| format!(" in {z}")).unwrap_or_default(),
        name = f.name,
    );
    for line in on_calendar(&f.schedule, zone) {
        out.push_str(&format!("OnCalendar={line}\n"));
    }
    out.push_str(&format!(
        "Persistent=true\n\
         AccuracySec=1s\n\
         Unit=retort-{}.service\n\
         \n\
         [Install]\n\
         WantedBy=timers.target\n",
        f.name
    ));
    out
}

/// `%` doubled, for settings where systemd expands specifiers.
fn specifiers(s: &str) -> String {
    s.replace('%', "%%")
}

/// The `ExecStart=` executable: as [`exec_arg`] but `$` kept, since
/// systemd expands variables in the arguments only (verified with
/// `systemd-analyze verify` 252: `$$` there is taken literally).
fn exec_path(s: &str) -> String {
    let escaped = s
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('%', "%%");
    format!("\"{escaped}\"")
}

/// One `ExecStart=` argument: double-quoted, `\` and `"` escaped, specifiers
/// and `$` variable references doubled.
fn exec_arg(s: &str) -> String {
    let escaped = s
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('%', "%%")
        .replace('$', "$$");
    format!("\"{escaped}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_args_are_quoted_and_escaped() {
        assert_eq!(exec_arg("/a b/c"), r#""/a b/c""#);
        assert_eq!(exec_arg(r#"/x"y\z"#), r#""/x\"y\\z""#);
        assert_eq!(exec_arg("/100%/$HOME"), r#""/100%%/$$HOME""#);
        assert_eq!(exec_path("/100%/$HOME"), r#""/100%%/$HOME""#);
    }
}
