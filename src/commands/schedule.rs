//! `retort schedule`: what runs every scheduled formula by itself (a
//! crontab block, systemd units, Nomad jobs), and `retort schedule list`,
//! their next run times.
//!
//! Formulas are found as `check` finds them: each PATH is a file, or a
//! directory searched for `*.toml`. A file found in a directory counts when
//! it has a top-level `schedule` key (so `Cargo.toml` and formulas run by
//! hand are passed over); a file named on the command line without one is
//! skipped with a warning. Each counted formula is checked as a run checks
//! it (a required var without a default is an error: scheduled runs get no
//! `--var`); any error stops the command before anything is written. The
//! rendering is `retort_schedule`'s, with absolute paths: this binary
//! (`std::env::current_exe`), each formula, the state directory (resolved
//! now, since cron and systemd start jobs without `$XDG_STATE_HOME`), the
//! env file, and the working directory (`--workdir`, else the current one:
//! a scheduled run starts where a `retort run` typed here would).

use std::path::{Path, PathBuf};

use chrono::{DateTime, Local};
use serde::Serialize;

use retort_check::check::{CheckOptions, Purpose, check_file};
use retort_formula::document;
use retort_runner::state::StateDir;
use retort_schedule::{
    Format, GeneratedFile, Overwrite, Schedule, ScheduledFormula, WriteError, render, write_files,
};

use crate::cli::{ListFormat, ScheduleArgs, ScheduleCommand, ScheduleFormat};
use crate::{EXIT_FAILED, EXIT_INVALID, invalid, out};

/// Runs `retort schedule` or `retort schedule list`; returns the exit
/// status: 0, 1 when a file cannot be written or the binary's own path is
/// unknown, 2 for an invalid formula, a missing path, no scheduled formula
/// at all, a formula the format cannot carry, or an operator's file in the
/// way of `--output` (without `--force`).
pub fn schedule(args: ScheduleArgs) -> u8 {
    match args.command {
        Some(ScheduleCommand::List {
            paths,
            format,
            count,
        }) => list(&paths, format, count),
        None => generate(&args),
    }
}

/// A scheduled formula, checked.
struct Found {
    /// The formula's `name`.
    name: String,
    /// Absolute path of its file.
    path: PathBuf,
    /// Its `schedule`.
    schedule: Schedule,
}

/// Every scheduled formula under `paths` (the current directory when
/// none), checked; or the exit status, once every problem is printed.
fn find(paths: &[PathBuf]) -> Result<Vec<Found>, u8> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let default = [PathBuf::from(".")];
    let paths = if paths.is_empty() {
        &default[..]
    } else {
        paths
    };
    let mut candidates = Vec::new();
    for path in paths {
        let files = match retort_check::files::formula_files(std::slice::from_ref(path)) {
            Ok(found) => found.formulas,
            Err((path, error)) => {
                return Err(invalid(&format!("cannot read {}: {error}", path.display())));
            }
        };
        let named = !path.is_dir();
        for file in files {
            match (has_schedule(&file), named) {
                (true, _) => candidates.push(file),
                (false, true) => eprintln!(
                    "warning: {} has no top-level `schedule`, so it is not scheduled (add e.g. \
                     `schedule = \"*/20 * * * *\"` above its first table)",
                    file.display()
                ),
                (false, false) => {}
            }
        }
    }
    if candidates.is_empty() {
        let list: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        return Err(invalid(&format!(
            "no formula with a `schedule` in {}: give a formula a top-level \
             `schedule = \"*/20 * * * *\"` (five-field cron), or name the files or directories \
             that hold them",
            list.join(", ")
        )));
    }
    let options = CheckOptions {
        vars: Default::default(),
        cwd,
        purpose: Purpose::Run,
    };
    let mut found = Vec::new();
    let mut failed = false;
    for file in candidates {
        let path = std::path::absolute(&file).unwrap_or(file);
        if found.iter().any(|f: &Found| f.path == path) {
            continue;
        }
        let ready = check_file(&path, &options).and_then(|checked| checked.into_ready());
        let ready = match ready {
            Ok((ready, _warnings)) => ready,
            Err(error) => {
                eprintln!("{:?}", miette::Report::new(error));
                failed = true;
                continue;
            }
        };
        let formula = ready.loaded.formula;
        let Some(text) = formula.schedule.as_ref() else {
            continue;
        };
        match Schedule::parse(text.get_ref()) {
            Ok(schedule) => found.push(Found {
                name: formula.name().to_string(),
                path,
                schedule,
            }),
            // The check refuses what `parse` refuses; kept for safety.
            Err(error) => {
                eprintln!("error: {}: `schedule`: {error}", path.display());
                failed = true;
            }
        }
    }
    match failed {
        true => Err(EXIT_INVALID),
        false => Ok(found),
    }
}

/// Whether `file` looks like a scheduled formula: its TOML has a top-level
/// `schedule` key, or it does not parse and mentions `schedule` (so the
/// check reports its errors rather than passing it over).
fn has_schedule(file: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(file) else {
        // Unreadable: let the check say so.
        return true;
    };
    let (table, errors) = document::parse(&text);
    match errors.is_empty() {
        true => table.get_ref().get("schedule").is_some(),
        false => text.contains("schedule"),
    }
}

fn generate(args: &ScheduleArgs) -> u8 {
    let found = match find(&args.paths) {
        Ok(found) => found,
        Err(code) => return code,
    };
    let retort = match std::env::current_exe() {
        Ok(path) => path,
        Err(error) => {
            eprintln!("error: cannot tell where this retort binary is: {error}");
            return EXIT_FAILED;
        }
    };
    let state = match StateDir::resolve(args.state_dir.as_deref()) {
        Ok(state) => absolute(state.path()),
        Err(error) => return invalid(&error.to_string()),
    };
    let workdir = match &args.workdir {
        Some(dir) => absolute(dir),
        None => absolute(&std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."))),
    };
    if !workdir.is_dir() {
        return invalid(&format!(
            "--workdir {} is not a directory: give the directory runs should start in",
            workdir.display()
        ));
    }
    let env_file = args.env_file.as_deref().map(absolute);
    if let Some(env) = &env_file
        && !env.is_file()
    {
        eprintln!(
            "warning: env file {} does not exist (yet): every scheduled run fails until it does \
             (one NAME=value a line; mode 0600)",
            env.display()
        );
    }
    let formulas: Vec<ScheduledFormula> = found
        .into_iter()
        .map(|f| ScheduledFormula {
            name: f.name,
            formula_path: f.path,
            schedule: f.schedule,
            retort_path: retort.clone(),
            state_dir: state.clone(),
            env_file: env_file.clone(),
            working_dir: Some(workdir.clone()),
            time_zone: None,
        })
        .collect();
    let format = match args.format {
        ScheduleFormat::Crontab => Format::Crontab,
        ScheduleFormat::Systemd => Format::Systemd,
        ScheduleFormat::Nomad => Format::Nomad,
        ScheduleFormat::NomadSysbatch => Format::NomadSysbatch,
    };
    let files = match render(format, &formulas) {
        Ok(files) => files,
        Err(error) => return invalid(&error.to_string()),
    };
    let Some(dir) = &args.output else {
        out(&printed(&files));
        return 0;
    };
    let overwrite = match args.force {
        true => Overwrite::Always,
        false => Overwrite::Generated,
    };
    let dir = absolute(dir);
    match write_files(&dir, &files, overwrite) {
        Ok(paths) => {
            let list: String = paths.iter().map(|p| format!("{}\n", p.display())).collect();
            out(&list);
            eprintln!("{}", install_hint(args.format, &dir, &formulas));
            0
        }
        Err(error @ WriteError::NotOurs(_)) => invalid(&error.to_string()),
        Err(error) => {
            eprintln!("error: {error}");
            EXIT_FAILED
        }
    }
}

/// The files as printed without `--output`: one file as it is; several,
/// each under a `# ==> NAME <==` line (a comment in units and HCL alike).
fn printed(files: &[GeneratedFile]) -> String {
    if let [file] = files {
        return file.contents.clone();
    }
    files
        .iter()
        .map(|f| format!("# ==> {} <==\n{}", f.file_name, f.contents))
        .collect::<Vec<_>>()
        .join("\n")
}

/// How to install what `--output DIR` wrote.
fn install_hint(format: ScheduleFormat, dir: &Path, formulas: &[ScheduledFormula]) -> String {
    let dir = dir.display();
    match format {
        ScheduleFormat::Crontab => format!(
            "install (replaces an earlier retort block, keeps the rest of the crontab):\n  \
             {{ crontab -l 2>/dev/null | sed '/^# BEGIN retort schedule/,/^# END retort \
             schedule/d'; cat {dir}/retort.crontab; }} | crontab -"
        ),
        ScheduleFormat::Systemd => {
            let timers: Vec<String> = formulas
                .iter()
                .map(|f| format!("retort-{}.timer", f.name))
                .collect();
            format!(
                "install (as your user; /etc/systemd/system and no --user for the system):\n  \
                 cp {dir}/retort-*.service {dir}/retort-*.timer ~/.config/systemd/user/\n  \
                 systemctl --user daemon-reload && systemctl --user enable --now {}",
                timers.join(" ")
            )
        }
        ScheduleFormat::Nomad | ScheduleFormat::NomadSysbatch => {
            let jobs: Vec<String> = formulas
                .iter()
                .map(|f| format!("  nomad job run {dir}/retort-{}.nomad.hcl", f.name))
                .collect();
            format!("submit:\n{}", jobs.join("\n"))
        }
    }
}

/// One formula as `schedule list --format json` prints it.
#[derive(Debug, Serialize)]
struct Listed {
    name: String,
    formula: String,
    schedule: String,
    /// RFC 3339 times in the local time zone.
    next: Vec<String>,
}

fn list(paths: &[PathBuf], format: ListFormat, count: usize) -> u8 {
    let found = match find(paths) {
        Ok(found) => found,
        Err(code) => return code,
    };
    let now = Local::now();
    let listed: Vec<(Listed, Vec<DateTime<Local>>)> = found
        .into_iter()
        .map(|f| {
            let next = f.schedule.next_runs(&now, count);
            let item = Listed {
                name: f.name,
                formula: f.path.display().to_string(),
                schedule: f.schedule.as_str().to_string(),
                next: next.iter().map(DateTime::to_rfc3339).collect(),
            };
            (item, next)
        })
        .collect();
    match format {
        ListFormat::Json => {
            let items: Vec<&Listed> = listed.iter().map(|(item, _)| item).collect();
            match serde_json::to_string_pretty(&items) {
                Ok(text) => out(&format!("{text}\n")),
                Err(error) => {
                    eprintln!("error: {error}");
                    return EXIT_FAILED;
                }
            }
        }
        ListFormat::Text => {
            let mut text = String::new();
            for (item, next) in &listed {
                text.push_str(&format!(
                    "{}  `{}`  {}\n",
                    item.name, item.schedule, item.formula
                ));
                for time in next {
                    // Whole minutes, rounded up: runs start on the minute.
                    let seconds = (*time - now).num_seconds().max(0).unsigned_abs();
                    let wait = humantime::format_duration(std::time::Duration::from_secs(
                        seconds.div_ceil(60) * 60,
                    ));
                    text.push_str(&format!(
                        "  {}  (in {wait})\n",
                        time.format("%a %Y-%m-%d %H:%M %:z")
                    ));
                }
            }
            out(&text);
        }
    }
    0
}

/// `path` made absolute against the current directory (not resolving
/// links: the path the operator gave, as the scheduler will use it).
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
