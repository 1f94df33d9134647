//! systemd units: `systemd-analyze verify` accepts them, and the timers'
//! `OnCalendar=` lines elapse exactly when croner says the cron expression
//! runs.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use chrono::{TimeZone, Utc};
use common::{assert_systemd_matches_croner, formula, systemd_analyze};
use retort_schedule::{GeneratedFile, Schedule, systemd};

/// Cron expressions covering every form the grammar allows.
const TABLE: &[&str] = &[
    "*/20 * * * *",
    "* * * * *",
    "0 * * * *",
    "0 0 * * *",
    "30 2 * * *",
    "0 3 * * 0",
    "0 3 * * 7",
    "0 9 * * MON",
    "0 9 * * mon-fri",
    "0 9 * * 1-5",
    "15 6 * * 5-7",
    "0 12 * * SAT,SUN",
    "0 12 * * 0,3,6",
    "0 0 * * 1-7/2",
    "0 4 */3 * *",
    "0 5 1,16 * *",
    "0 0 1 * *",
    "0 0 1 1 *",
    "0 0 29 2 *",
    "0 0 31 * *",
    "0 0 1 * MON",
    "0 0 13 * FRI",
    "0 0 1-7 * MON",
    "30 8 1-31/2 * TUE",
    "0 0 15 JAN,JUL 3",
    "5-59/15 */6 * * *",
    "0-20/10 * * * *",
    "0,30 9-17 * * *",
    "7 1-23/4 * * *",
    "0 0 * FEB-APR *",
    "0 0 * */4 *",
    "0 0 10-20/5 3-9/3 *",
    "59 23 31 12 *",
    "@hourly",
    "@daily",
    "@weekly",
    "@monthly",
    "@yearly",
];

#[test]
fn on_calendar_elapses_match_croner_for_the_table() {
    let Some(analyze) = systemd_analyze() else {
        return;
    };
    let schedules: Vec<Schedule> = TABLE.iter().map(|e| Schedule::parse(e).unwrap()).collect();
    let bases = [
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 5, 0).unwrap(),
        // Across a leap day and a year end.
        Utc.with_ymd_and_hms(2028, 2, 27, 23, 59, 30).unwrap(),
        Utc.with_ymd_and_hms(2027, 12, 31, 23, 59, 0).unwrap(),
    ];
    assert_systemd_matches_croner(&analyze, &schedules, &bases, 12);
}

#[test]
fn on_calendar_with_a_time_zone_names_it() {
    let Some(analyze) = systemd_analyze() else {
        return;
    };
    let s = Schedule::parse("0 0 * * *").unwrap();
    let lines = retort_schedule::on_calendar(&s, Some("Europe/Berlin"));
    assert_eq!(lines, ["*-*-* 00:00:00 Europe/Berlin"]);
    let base = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
    let elapses = common::systemd_elapses(&analyze, &lines, base, 1);
    // Berlin is UTC+1 in January.
    assert_eq!(
        elapses[0][0],
        Utc.with_ymd_and_hms(2026, 1, 1, 23, 0, 0).unwrap()
    );
}

fn write(dir: &std::path::Path, files: &[GeneratedFile]) -> Vec<std::path::PathBuf> {
    files
        .iter()
        .map(|f| {
            let p = dir.join(&f.file_name);
            fs::write(&p, &f.contents).unwrap();
            p
        })
        .collect()
}

#[test]
fn units_pass_systemd_analyze_verify_with_awkward_paths() {
    let Some(analyze) = systemd_analyze() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    // Spaces, a specifier and a dollar in every path; quotes and a
    // backslash in the formula and state paths (systemd refuses them in
    // an executable's name: see the next test).
    let root = tmp.path().join("my factory's \"100%\" $HOME\\x");
    let bin = tmp.path().join("bin 100% $HOME");
    fs::create_dir_all(&bin).unwrap();
    let retort = bin.join("retort");
    fs::write(&retort, "#!/bin/sh\nexit 0\n").unwrap();
    fs::set_permissions(&retort, fs::Permissions::from_mode(0o755)).unwrap();
    let mut with_tz = formula(&root, "daily-update", "0 0 * * *");
    with_tz.time_zone = Some("UTC".to_string());
    let mut formulas = [
        formula(&root, "run-supervisor", "*/20 * * * *"),
        with_tz,
        formula(&root, "security_review", "0 0 1 * SUN"),
    ];
    for f in &mut formulas {
        f.retort_path = retort.clone();
        f.working_dir = Some(root.join("work dir"));
    }
    let files = systemd(&formulas).unwrap();
    let names: Vec<&str> = files.iter().map(|f| f.file_name.as_str()).collect();
    assert_eq!(
        names,
        [
            "retort-run-supervisor.service",
            "retort-run-supervisor.timer",
            "retort-daily-update.service",
            "retort-daily-update.timer",
            "retort-security_review.service",
            "retort-security_review.timer",
        ]
    );
    let units = tmp.path().join("units");
    fs::create_dir(&units).unwrap();
    let paths = write(&units, &files);
    let out = Command::new(&analyze)
        .arg("verify")
        .args(&paths)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "verify failed:\n{stderr}");
    assert!(stderr.trim().is_empty(), "verify warned:\n{stderr}");

    // A service pointing at a missing binary fails verify: the check bites.
    let mut missing = formula(&root, "broken", "0 0 * * *");
    missing.retort_path = bin.join("no-such-retort");
    let paths = write(&units, &systemd(&[missing]).unwrap());
    let out = Command::new(&analyze)
        .arg("verify")
        .args(&paths)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-retort"));
}

#[test]
fn service_and_timer_contents() {
    let root = std::path::Path::new("/srv/retort");
    let mut f = formula(root, "run-supervisor", "0 0 1 * MON");
    f.time_zone = Some("UTC".to_string());
    let files = systemd(&[f]).unwrap();
    let service = &files[0].contents;
    assert!(
        service.starts_with("# Generated by retort schedule"),
        "{service}"
    );
    for line in [
        "Type=oneshot",
        "EnvironmentFile=/srv/retort/secrets.env",
        r#"ExecStart="/srv/retort/bin/retort" run "/srv/retort/formulas/run-supervisor.toml" --quiet --state-dir "/srv/retort/state""#,
        "StandardOutput=journal",
        "StandardError=journal",
    ] {
        assert!(
            service.lines().any(|l| l == line),
            "no `{line}` in\n{service}"
        );
    }
    let timer = &files[1].contents;
    let calendars: Vec<&str> = timer
        .lines()
        .filter_map(|l| l.strip_prefix("OnCalendar="))
        .collect();
    assert_eq!(calendars, ["*-*-01 00:00:00 UTC", "Mon *-*-* 00:00:00 UTC"]);
    assert!(timer.lines().any(|l| l == "Persistent=true"), "{timer}");
    assert!(
        timer.lines().any(|l| l == "WantedBy=timers.target"),
        "{timer}"
    );
}

#[test]
fn a_retort_path_systemd_cannot_execute_is_refused() {
    let mut f = formula(std::path::Path::new("/srv/retort"), "x", "0 0 * * *");
    f.retort_path = "/opt/bob's tools/retort".into();
    let e = systemd(&[f]).unwrap_err();
    assert!(
        matches!(
            e,
            retort_schedule::RenderError::Path {
                what: "retort path",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("plainer path"), "{e}");
}
