//! The Nomad renderer: one periodic job file (`retort-NAME.nomad.hcl`) per
//! formula, in HCL, the form operators commit.
//!
//! A [`NomadKind::Batch`] job runs the formula on one client each period; a
//! [`NomadKind::Sysbatch`] job runs it on every client (node) each period.
//! Both use `periodic { crons, prohibit_overlap = true, time_zone }` and a
//! `raw_exec` task (retort drives tmux and agent processes of the host, which
//! an isolating driver would hide). The task is `/bin/sh -c` changing into
//! the working directory (if any), sourcing the env file with `set -a` and
//! then `exec`ing `retort run FORMULA --quiet --state-dir STATE`; every path is a separate argument, so none is parsed
//! as shell code. A failed run is not restarted or rescheduled: as under
//! cron, the next period runs it again (a retry could repeat an escalation).
//! Field names are Nomad's job specification
//! (<https://developer.hashicorp.com/nomad/docs/job-specification>).

use crate::formula::{RenderError, ScheduledFormula, text, validate_all, wrapper};
use crate::output::{GeneratedFile, MARKER};

/// Which kind of Nomad job to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NomadKind {
    /// `type = "batch"`: one run per period, on one client.
    Batch,
    /// `type = "sysbatch"`: one run per period on every eligible client.
    Sysbatch,
}

/// `retort-NAME.nomad.hcl` for each formula, in order. Without a time
/// zone the job says `time_zone = "Local"`: the Nomad servers' zone, as
/// cron and systemd use the machine's.
///
/// # Errors
/// Any of [`ScheduledFormula::validate`]'s and [`RenderError::DuplicateName`].
pub fn nomad(
    formulas: &[ScheduledFormula],
    kind: NomadKind,
) -> Result<Vec<GeneratedFile>, RenderError> {
    validate_all(formulas)?;
    Ok(formulas
        .iter()
        .map(|f| GeneratedFile {
            file_name: format!("retort-{}.nomad.hcl", f.name),
            contents: job(f, kind),
        })
        .collect())
}

fn job(f: &ScheduledFormula, kind: NomadKind) -> String {
    let (type_name, reschedule) = match kind {
        NomadKind::Batch => (
            "batch",
            "\n    reschedule {\n      attempts  = 0\n      unlimited = false\n    }\n",
        ),
        // sysbatch jobs take no reschedule block.
        NomadKind::Sysbatch => ("sysbatch", ""),
    };
    let mut args: Vec<String> = Vec::new();
    let command = match wrapper(f) {
        Some((script, paths)) => {
            args.extend(["-c".to_string(), script, format!("retort-{}", f.name)]);
            args.extend(paths.into_iter().map(|(_, path)| path));
            args.push(text(&f.retort_path));
            "/bin/sh".to_string()
        }
        None => text(&f.retort_path),
    };
    args.extend([
        "run".to_string(),
        text(&f.formula_path),
        "--quiet".to_string(),
        "--state-dir".to_string(),
        text(&f.state_dir),
    ]);
    let args = args
        .iter()
        .map(|a| string(a))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "# {MARKER} --format nomad: regenerate rather than edit.\n\
         # Formula: {formula}\n\
         job {id} {{\n  \
           type = \"{type_name}\"\n  \
           # Nomad 1.5 and later read \"*\" as every datacenter; name yours on older versions.\n  \
           datacenters = [\"*\"]\n\
         \n  \
           periodic {{\n    \
             crons            = [{cron}]\n    \
             prohibit_overlap = true\n    \
             time_zone        = {zone}\n  \
           }}\n\
         \n  \
           group \"retort\" {{\n    \
             restart {{\n      \
               attempts = 0\n      \
               mode     = \"fail\"\n    \
             }}\n{reschedule}\n    \
             task \"run\" {{\n      \
               driver = \"raw_exec\"\n\
         \n      \
               config {{\n        \
                 command = {command}\n        \
                 args    = [{args}]\n      \
               }}\n    \
             }}\n  \
           }}\n\
         }}\n",
        formula = text(&f.formula_path),
        id = string(&format!("retort-{}", f.name)),
        cron = string(&f.schedule.portable()),
        zone = string(f.time_zone.as_deref().unwrap_or("Local")),
        command = string(&command),
    )
}

/// `s` as an HCL quoted string: `\` and `"` escaped, and `${` / `%{`
/// written `$${` / `%%{` so HCL does not read them as templates.
fn string(s: &str) -> String {
    let escaped = s
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace("${", "$${")
        .replace("%{", "%%{");
    format!("\"{escaped}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hcl_strings_escape_templates() {
        assert_eq!(string(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(string("${x} %{y}"), r#""$${x} %%{y}""#);
    }
}
