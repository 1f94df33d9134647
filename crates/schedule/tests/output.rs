//! `--output DIR`: files written whole with mode 0644; a file retort did
//! not generate is never replaced unless forced.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::formula;
use retort_schedule::{Format, Overwrite, WriteError, render, write_files};

#[test]
fn writes_regenerates_and_refuses_foreign_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("units");
    let formulas = [formula(
        Path::new("/srv/retort"),
        "run-supervisor",
        "*/20 * * * *",
    )];
    let files = render(Format::Systemd, &formulas).unwrap();
    let written = write_files(&dir, &files, Overwrite::Generated).unwrap();
    assert_eq!(written.len(), 2);
    for (path, file) in written.iter().zip(&files) {
        assert_eq!(fs::read_to_string(path).unwrap(), file.contents);
        let mode = fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644, "{}", path.display());
    }
    // Regenerating replaces our own files.
    let later = render(
        Format::Systemd,
        &[formula(
            Path::new("/srv/retort"),
            "run-supervisor",
            "0 * * * *",
        )],
    )
    .unwrap();
    write_files(&dir, &later, Overwrite::Generated).unwrap();
    let timer = fs::read_to_string(dir.join("retort-run-supervisor.timer")).unwrap();
    assert!(timer.contains("OnCalendar=*-*-* *:00:00"), "{timer}");

    // An operator's own timer of the same name is left alone, and so is
    // every other file of the batch.
    fs::write(
        dir.join("retort-run-supervisor.timer"),
        "[Timer]\nOnCalendar=daily\n",
    )
    .unwrap();
    let service_before = fs::read_to_string(dir.join("retort-run-supervisor.service")).unwrap();
    let e = write_files(&dir, &files, Overwrite::Generated).unwrap_err();
    assert!(matches!(&e, WriteError::NotOurs(p) if p.ends_with("retort-run-supervisor.timer")));
    assert!(e.to_string().contains("--force"), "{e}");
    assert_eq!(
        fs::read_to_string(dir.join("retort-run-supervisor.timer")).unwrap(),
        "[Timer]\nOnCalendar=daily\n"
    );
    assert_eq!(
        fs::read_to_string(dir.join("retort-run-supervisor.service")).unwrap(),
        service_before
    );
    // Forced, it is replaced; no temporary files are left behind.
    write_files(&dir, &files, Overwrite::Always).unwrap();
    assert_eq!(
        fs::read_to_string(dir.join("retort-run-supervisor.timer")).unwrap(),
        files[1].contents
    );
    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "retort-run-supervisor.service",
            "retort-run-supervisor.timer"
        ]
    );
}

#[test]
fn every_format_names_its_files_and_marks_them() {
    let formulas = [
        formula(Path::new("/srv/retort"), "a", "@daily"),
        formula(Path::new("/srv/retort"), "b", "@hourly"),
    ];
    for (format, names) in [
        (Format::Crontab, vec!["retort.crontab"]),
        (
            Format::Systemd,
            vec![
                "retort-a.service",
                "retort-a.timer",
                "retort-b.service",
                "retort-b.timer",
            ],
        ),
        (
            Format::Nomad,
            vec!["retort-a.nomad.hcl", "retort-b.nomad.hcl"],
        ),
        (
            Format::NomadSysbatch,
            vec!["retort-a.nomad.hcl", "retort-b.nomad.hcl"],
        ),
    ] {
        let files = render(format, &formulas).unwrap();
        let got: Vec<&str> = files.iter().map(|f| f.file_name.as_str()).collect();
        assert_eq!(got, names, "{format:?}");
        for f in &files {
            let first = f.contents.lines().next().unwrap();
            assert!(
                first.contains(retort_schedule::MARKER),
                "{format:?}: {first}"
            );
            assert!(f.contents.ends_with('\n'));
        }
    }
}
