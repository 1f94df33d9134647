//! [`ScheduledFormula`]: what every renderer takes, and the checks that make
//! its names and paths safe to write into crontab lines, units and jobs.

use std::path::{Path, PathBuf};

use crate::cron::Schedule;

/// One formula to schedule: what to run, when, and with what.
///
/// Paths must be absolute (cron and systemd start jobs with a minimal
/// environment and `/` or `$HOME` as working directory). Secrets never go
/// in here: `env_file` names a file of `NAME=value` lines the job reads at
/// start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledFormula {
    /// The formula's `name`; names units (`retort-NAME.service`) and jobs.
    /// Letters, digits, `-` and `_` only (see [`RenderError::Name`]).
    pub name: String,
    /// Absolute path of the formula file.
    pub formula_path: PathBuf,
    /// When it runs.
    pub schedule: Schedule,
    /// Absolute path of the `retort` binary.
    pub retort_path: PathBuf,
    /// Absolute path of the state directory (`retort run --state-dir`).
    pub state_dir: PathBuf,
    /// Absolute path of a file of `NAME=value` lines (tokens, `PATH` for the
    /// agent) loaded into the job's environment; `None` for none. Written so
    /// that both `sh` and systemd's `EnvironmentFile=` read it alike: one
    /// `NAME=value` a line, values with spaces or specials in single quotes.
    pub env_file: Option<PathBuf>,
    /// Absolute path of the directory each run starts in (where the
    /// formula's context files are, and where the agent works); `None` for
    /// the scheduler's own (`$HOME` under cron, `/` under systemd, the
    /// allocation's directory under Nomad). A run whose directory is
    /// missing fails before retort starts, loudly.
    pub working_dir: Option<PathBuf>,
    /// IANA time zone (`UTC`, `Europe/Berlin`) the schedule is read in;
    /// `None` for the scheduler's local time. crontab cannot take one
    /// ([`RenderError::TimeZone`]).
    pub time_zone: Option<String>,
}

/// Why a formula could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The name cannot name a unit, job or crontab comment as is. Names are
    /// refused rather than escaped: `systemd-escape`d unit names
    /// (`retort-a\x20b`) are a trap in every shell an operator types them in.
    #[error(
        "formula name `{name}` cannot name a systemd unit or Nomad job: use letters, digits, \
         `-` and `_` only (1–200 characters), e.g. `{suggestion}`"
    )]
    Name {
        /// The name as given.
        name: String,
        /// The name with every other character replaced by `_`.
        suggestion: String,
    },
    /// A path is relative, or holds a character no format can carry
    /// (a newline or other control character).
    #[error("{what} `{path}` {problem}")]
    Path {
        /// Which path (`formula path`, `retort path`, `state dir`, `env file`,
        /// `working dir`).
        what: &'static str,
        /// The path, lossily printed.
        path: String,
        /// What is wrong and how to fix it.
        problem: &'static str,
    },
    /// The time zone is not a plain IANA name.
    #[error(
        "time zone `{0}` is not an IANA name such as `UTC` or `Europe/Berlin` (letters, digits, \
         `/`, `_`, `+`, `-`)"
    )]
    BadTimeZone(String),
    /// crontab reads schedules in the system's time zone only.
    #[error(
        "formula `{0}` has a time zone, which crontab cannot take (CRON_TZ is cronie's only, \
         and would apply to every later line): use --format systemd or nomad, or write the \
         schedule in the machine's time zone and drop the time zone"
    )]
    TimeZone(String),
    /// Two formulas share a name, so their files would collide.
    #[error("two formulas are named `{0}`: give each a distinct `name`")]
    DuplicateName(String),
}

/// The longest name accepted: unit names may be 255 bytes, and
/// `retort-NAME.service` must fit with room to spare.
const NAME_MAX: usize = 200;

impl ScheduledFormula {
    /// Checks the name, the paths and the time zone.
    ///
    /// # Errors
    /// [`RenderError::Name`], [`RenderError::Path`] or
    /// [`RenderError::BadTimeZone`].
    pub fn validate(&self) -> Result<(), RenderError> {
        let ok_name = !self.name.is_empty()
            && self.name.len() <= NAME_MAX
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !ok_name {
            let mut suggestion: String = self
                .name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .take(NAME_MAX)
                .collect();
            if suggestion.is_empty() {
                suggestion.push_str("supervisor");
            }
            return Err(RenderError::Name {
                name: self.name.clone(),
                suggestion,
            });
        }
        check_path("formula path", &self.formula_path)?;
        check_path("retort path", &self.retort_path)?;
        check_path("state dir", &self.state_dir)?;
        if let Some(env) = &self.env_file {
            check_path("env file", env)?;
        }
        if let Some(dir) = &self.working_dir {
            check_path("working dir", dir)?;
        }
        if let Some(tz) = &self.time_zone {
            let ok = !tz.is_empty()
                && !tz.starts_with('/')
                && !tz.contains("..")
                && tz
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '+' | '-'));
            if !ok {
                return Err(RenderError::BadTimeZone(tz.clone()));
            }
        }
        Ok(())
    }
}

/// Validates every formula and that names are distinct.
pub(crate) fn validate_all(formulas: &[ScheduledFormula]) -> Result<(), RenderError> {
    for (i, f) in formulas.iter().enumerate() {
        f.validate()?;
        if formulas[..i].iter().any(|g| g.name == f.name) {
            return Err(RenderError::DuplicateName(f.name.clone()));
        }
    }
    Ok(())
}

fn check_path(what: &'static str, path: &Path) -> Result<(), RenderError> {
    let error = |problem| RenderError::Path {
        what,
        path: path.to_string_lossy().into_owned(),
        problem,
    };
    let Some(text) = path.to_str() else {
        return Err(error(
            "is not valid UTF-8, which unit files and job files cannot carry: rename it",
        ));
    };
    if !path.is_absolute() {
        return Err(error(
            "is relative; schedulers start jobs elsewhere: give an absolute path",
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(error(
            "holds a control character (a newline?), which no crontab line or unit can carry: \
             rename it",
        ));
    }
    Ok(())
}

/// The `sh -c` wrapper a formula's command needs, if any: the script and
/// the arguments it takes before the command (`$1`, …), each a path passed
/// as a positional argument so that no path is parsed as shell code. It
/// changes into the working directory (exiting when it cannot) and sources
/// the env file with `set -a`, in that order, then `exec`s the rest.
pub(crate) fn wrapper(f: &ScheduledFormula) -> Option<(String, Vec<(&'static str, String)>)> {
    let mut script = String::new();
    let mut args = Vec::new();
    if let Some(dir) = &f.working_dir {
        script.push_str(r#"cd "$1" || exit; shift; "#);
        args.push(("working dir", text(dir)));
    }
    if let Some(env) = &f.env_file {
        script.push_str(r#"set -a; . "$1"; set +a; shift; "#);
        args.push(("env file", text(env)));
    }
    if script.is_empty() {
        return None;
    }
    script.push_str(r#"exec "$@""#);
    Some((script, args))
}

/// `path` as UTF-8; [`ScheduledFormula::validate`] has checked it is.
pub(crate) fn text(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}
