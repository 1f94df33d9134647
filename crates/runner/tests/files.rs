//! The files a run leaves: signal files and the phase file.

use retort_agent::signal::{self, Signal, SignalRecord};
use retort_os::paths::file_safe;
use retort_runner::phase::{Phase, phase_text, write_phase_file};
use retort_runner::state::{RunDir, StateDir, new_run_id, run_id_started};

#[test]
fn phase_files_say_the_outcome_and_fold_the_reason_onto_one_line() {
    assert_eq!(phase_text(Phase::Done, None), "PHASE:done\n");
    assert_eq!(phase_text(Phase::Done, Some("ignored")), "PHASE:done\n");
    assert_eq!(
        phase_text(Phase::Failed, Some("step `x` timed out\n after 30m")),
        "PHASE:failed\nReason: step `x` timed out after 30m\n"
    );
    assert_eq!(
        phase_text(Phase::Escalate, Some("disk full")),
        "PHASE:escalate\nReason: disk full\n"
    );
    assert_eq!(
        [Phase::Done, Phase::Failed, Phase::Escalate].map(Phase::exit_code),
        [0, 1, 3]
    );
}

#[test]
fn the_phase_file_is_replaced_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deep/f.phase");
    write_phase_file(&path, Phase::Failed, Some("first")).unwrap();
    write_phase_file(&path, Phase::Done, None).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "PHASE:done\n");
    let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, ["f.phase"], "no temporary files left behind");
}

#[test]
fn signals_round_trip_through_the_run_directory() {
    let dir = tempfile::tempdir().unwrap();
    let state = StateDir::resolve(Some(dir.path())).unwrap();
    let run = RunDir::create(&state.runs_dir(), "20261121-112000-3fa9").unwrap();
    assert!(
        !run.steps_dir().exists(),
        "no steps/ before an agent starts"
    );
    run.create_agent_dirs().unwrap();
    assert!(signal::current_step(&run).is_err(), "no step sent yet");
    std::fs::write(run.current_step_file(), "report\n").unwrap();
    assert_eq!(signal::current_step(&run).unwrap(), "report");

    assert_eq!(signal::read(&run, "report").unwrap(), None);
    let record = SignalRecord {
        step: "report".into(),
        signal: Signal::Escalate,
        reason: Some("Matrix token expired".into()),
        at: chrono::Utc::now(),
    };
    signal::write(&run, &record).unwrap();
    assert_eq!(signal::read(&run, "report").unwrap(), Some(record));

    std::fs::write(run.signal_file("broken"), "not json").unwrap();
    let error = signal::read(&run, "broken").unwrap_err();
    assert!(
        error.to_string().contains("is not a signal record"),
        "{error}"
    );
}

#[test]
fn run_ids_and_names_are_safe_for_files_and_tmux() {
    let id = new_run_id(chrono::Utc::now());
    assert_eq!(id.len(), "20261121-112000-3fa9c1e0".len(), "{id}");
    assert!(
        id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
        "{id}"
    );
    let started = chrono::DateTime::parse_from_rfc3339("2026-11-21T11:20:07Z").unwrap();
    assert_eq!(
        run_id_started(&new_run_id(started.to_utc())),
        Some(started.to_utc()),
        "a run id gives back its start, to the second"
    );
    for not_a_run_id in [
        "20261121-112000",
        "20261121-112000-3FA9",
        "20261121-112000-3fa9x",
        "20261321-112000-3fa9",
        "20261121_112000-3fa9",
        ".20261121-112000-3f",
        "2026112é-112000-3fa",
        "20261121-112000-3fa9c1",
        "20261121-112000-3fa9c1e0f",
        "20261121-112000-3fa9C1E0",
        "20261121-256000-3fa9c1e0",
        "",
    ] {
        assert_eq!(run_id_started(not_a_run_id), None, "{not_a_run_id:?}");
    }
    assert_eq!(file_safe("run.supervisor:v2/x"), "run_supervisor_v2_x");
    assert_eq!(file_safe(""), "_");
}

#[test]
fn run_ids_of_both_lengths_give_their_start() {
    // State directories written before run ids had 8 hex digits hold
    // run directories named with 4: retention must still read their age.
    let started = chrono::DateTime::parse_from_rfc3339("2026-11-21T11:20:00Z")
        .unwrap()
        .to_utc();
    assert_eq!(run_id_started("20261121-112000-3fa9"), Some(started));
    assert_eq!(run_id_started("20261121-112000-3fa9c1e0"), Some(started));
}

#[test]
fn run_ids_started_in_one_second_differ() {
    let started = chrono::Utc::now();
    let ids: std::collections::BTreeSet<String> = (0..64).map(|_| new_run_id(started)).collect();
    assert_eq!(ids.len(), 64, "{ids:?}");
}
