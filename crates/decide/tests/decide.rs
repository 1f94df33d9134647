//! The decide phase across runs: `for`, `repeat`, resolution, cooldowns,
//! proposals and the gate, against a real SQLite history.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{Duration, TimeZone, Utc};
use retort_check::parse_source;
use retort_decide::decide::{self, ActionPlan, Decision};
use retort_decide::finding::FindingState;
use retort_decide::ruleset::RuleSet;
use retort_formula::formula::LoadedFormula;
use retort_journal::history::{History, ProposalStatus};
use retort_preflight::{CollectorStatus, Disk, Snapshot};

const FORMULA: &str = r#"
name = "sup"
[[steps]]
id = "look"
description = "Look."

[[rules]]
id = "memory-crisis"
priority = "P0"
when = "system.memory.available_mb < 500"
message = "RAM {{ system.memory.available_mb }} MB"
repeat = "1h"
action = "free-memory"

[[rules]]
id = "disk-pressure"
priority = "P1"
each = "system.disks"
label = "item.mount"
when = "item.used_percent > 80"
message = "Disk {{ item.mount }} {{ item.used_percent }}%"
for = 3
action = "prune"

[[rules]]
id = "load-note"
priority = "info"
when = "system.load.one > 8.0"
message = "load {{ system.load.one }}"

[[actions]]
id = "free-memory"
run = ["sh", "-c", "echo freed $RETORT_FINGERPRINT"]
mode = "auto"
cooldown = "30m"

[[actions]]
id = "prune"
run = ["echo", "prune", "{{ item.mount }}"]
mode = "propose"
cooldown = "2h"
"#;

/// A machine state at `minute` minutes past 10:00.
#[derive(Clone, Copy, Default)]
struct State {
    minute: i64,
    ram: u64,
    disk: u32,
    load: f64,
    blind: bool,
}

fn snapshot(s: State) -> Snapshot {
    let mut snapshot = Snapshot {
        collected_at: Utc.with_ymd_and_hms(2026, 11, 21, 10, 0, 0).unwrap()
            + Duration::minutes(s.minute),
        ..Default::default()
    };
    let system = &mut snapshot.system;
    system.status = if s.blind {
        CollectorStatus::Error
    } else {
        CollectorStatus::Ok
    };
    system.reason = s.blind.then(|| "timed out".to_string());
    system.memory.available_mb = s.ram;
    system.memory.total_mb = 8000;
    system.load.one = s.load;
    system.disks = vec![Disk {
        mount: "/".into(),
        used_percent: s.disk,
        used_mb: 1,
        total_mb: 2,
    }];
    snapshot
}

struct Replay {
    _dir: tempfile::TempDir,
    history: PathBuf,
    loaded: LoadedFormula,
    rules: RuleSet,
    runs: usize,
}

impl Replay {
    fn new(formula: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let loaded = parse_source(Path::new("sup.toml"), formula.to_string()).unwrap();
        let rules = RuleSet::build(&loaded).unwrap();
        Replay {
            history: dir.path().join("history.sqlite"),
            _dir: dir,
            loaded,
            rules,
            runs: 0,
        }
    }

    /// One run: decide, record, run the auto actions, as `retort run` does.
    fn run(&mut self, state: State) -> Decision {
        self.runs += 1;
        let run_id = format!("run-{}", self.runs);
        let evaluation = self.rules.evaluate(&snapshot(state), &BTreeMap::new());
        let mut history = History::open(&self.history).unwrap();
        let mut decision = decide::commit(
            &mut history,
            &self.rules,
            &evaluation,
            &run_id,
            self.loaded.formula.name(),
            Path::new("/tmp"),
        )
        .unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let warnings = runtime.block_on(decide::run_actions(
            &mut decision,
            &history,
            &run_id,
            &mut decide::ActionHooks {
                interrupt: &retort_os::interrupt::Interrupt::never(),
                started: &mut |_| {},
                progress: &mut |_| {},
            },
        ));
        assert_eq!(warnings, Vec::<String>::new());
        history
            .finish_run(&format!("run-{}", self.runs), "done", None, Utc::now())
            .unwrap();
        decision
    }

    fn preview(&self, state: State) -> Decision {
        let evaluation = self.rules.evaluate(&snapshot(state), &BTreeMap::new());
        decide::preview(
            &self.rules,
            &evaluation,
            &self.history,
            "sup",
            Path::new("/tmp"),
        )
    }
}

fn healthy(minute: i64) -> State {
    State {
        minute,
        ram: 4000,
        disk: 40,
        load: 0.5,
        blind: false,
    }
}

/// `fingerprint:state` for each finding, `state` as runs record it.
fn findings(decision: &Decision) -> Vec<String> {
    decision
        .findings
        .iter()
        .map(|f| format!("{}:{}", f.fingerprint, f.run_record().state))
        .collect()
}

fn plans(decision: &Decision) -> Vec<String> {
    decision
        .actions
        .iter()
        .map(|a| {
            let plan = match &a.plan {
                ActionPlan::Run => "run".to_string(),
                ActionPlan::Propose { id } => format!("propose #{}", id.unwrap_or(0)),
                ActionPlan::CoolingDown { until } => {
                    format!("cooling until {}", until.format("%H:%M"))
                }
                ActionPlan::AlreadyProposed { id } => format!("already #{id}"),
                ActionPlan::Broken { error } => format!("broken: {error}"),
            };
            format!("{} {}: {plan}", a.action, a.fingerprint)
        })
        .collect()
}

#[test]
fn a_finding_fires_after_for_runs_and_a_blip_is_forgotten() {
    let mut replay = Replay::new(FORMULA);
    let disk = |minute, disk| State {
        disk,
        ..healthy(minute)
    };

    let one = replay.run(disk(0, 85));
    assert_eq!(findings(&one), ["disk-pressure[/]:pending"]);
    assert!(!one.gate.open, "a pending finding does not open the gate");
    assert_eq!(one.gate.reason, "nothing firing (1 pending)");

    // The blip passes before `for`: forgotten, never reported resolved.
    let two = replay.run(healthy(20));
    assert_eq!(findings(&two), Vec::<String>::new());
    assert_eq!(two.gate.reason, "healthy");

    let runs: Vec<Vec<String>> = [40, 60, 80, 100]
        .into_iter()
        .map(|minute| findings(&replay.run(disk(minute, 90))))
        .collect();
    assert_eq!(
        runs,
        [
            vec!["disk-pressure[/]:pending"],
            vec!["disk-pressure[/]:pending"],
            vec!["disk-pressure[/]:new"],
            vec!["disk-pressure[/]:firing"],
        ]
    );
}

#[test]
fn a_firing_finding_is_new_again_after_repeat_and_resolves_once() {
    let mut replay = Replay::new(FORMULA);
    let crisis = |minute| State {
        ram: 300,
        ..healthy(minute)
    };
    let states: Vec<Vec<String>> = [0, 20, 40, 60, 80]
        .into_iter()
        .map(|minute| findings(&replay.run(crisis(minute))))
        .collect();
    assert_eq!(
        states,
        [
            vec!["memory-crisis:new"],
            vec!["memory-crisis:firing"],
            vec!["memory-crisis:firing"],
            vec!["memory-crisis:new"], // repeat = 1h after 10:00
            vec!["memory-crisis:firing"],
        ]
    );

    let recovered = replay.run(healthy(100));
    assert_eq!(findings(&recovered), ["memory-crisis:resolved"]);
    let resolved = &recovered.findings[0];
    assert_eq!(resolved.message, "RAM 300 MB", "the last message, kept");
    assert_eq!(resolved.first_seen.format("%H:%M").to_string(), "10:00");
    assert!(recovered.gate.open, "the all-clear run starts the agent");
    assert_eq!(recovered.gate.reason, "1 finding resolved: memory-crisis");
    assert!(recovered.context().previous.unwrap().alerts);

    let after = replay.run(healthy(120));
    assert_eq!(findings(&after), Vec::<String>::new(), "reported once");
    assert!(!after.gate.open);
    let previous = after.context().previous.unwrap();
    assert!(!previous.alerts);
    assert_eq!(previous.findings[0].state, "resolved");
}

#[test]
fn a_rule_over_an_uncollected_section_keeps_its_findings_as_they_were() {
    let mut replay = Replay::new(FORMULA);
    let crisis = State {
        ram: 300,
        ..healthy(0)
    };
    assert_eq!(findings(&replay.run(crisis)), ["memory-crisis:new"]);

    // Preflight failed: the zeros it reports are not a crisis, nor a
    // recovery; nor is the run healthy: each rule is a finding saying it
    // could not be evaluated, and the gate opens (`on_error` = "open").
    let blind = replay.run(State {
        minute: 20,
        ram: 0,
        disk: 0,
        load: 0.0,
        blind: true,
    });
    assert_eq!(
        findings(&blind),
        [
            "memory-crisis!error:new",
            "disk-pressure!error:new",
            "load-note!error:new"
        ]
    );
    assert_eq!(
        blind.findings[0].message,
        "rule `memory-crisis` could not be evaluated: `system` was not collected (error: timed out)"
    );
    assert!(blind.gate.open);
    assert_eq!(
        blind.gate.reason,
        "3 rules could not be evaluated: memory-crisis, disk-pressure, load-note (on_error = \"open\")"
    );
    assert_eq!(
        blind.problems[0],
        "memory-crisis: failed: `system` was not collected (error: timed out)"
    );

    let back = replay.run(State {
        minute: 40,
        ..crisis
    });
    assert_eq!(
        findings(&back),
        ["memory-crisis:firing"],
        "not new: it never stopped"
    );
    assert_eq!(
        back.findings[0].consecutive, 2,
        "the blind run did not count"
    );
}

#[test]
fn auto_actions_cool_down_and_proposals_wait_for_a_human() {
    let mut replay = Replay::new(FORMULA);
    let bad = |minute| State {
        ram: 300,
        disk: 95,
        ..healthy(minute)
    };
    // Disk needs 3 runs; memory fires at once, and its auto action runs.
    let first = replay.run(bad(0));
    assert_eq!(plans(&first), ["free-memory memory-crisis: run"]);
    let result = first.actions[0].result.as_ref().unwrap();
    assert_eq!(result.stdout, "freed memory-crisis\n");
    let history = History::open(&replay.history).unwrap();
    let recorded = history.action_runs_of_run("run-1").unwrap();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].outcome, "ok");
    assert_eq!(recorded[0].stdout, "freed memory-crisis\n");

    assert_eq!(
        plans(&replay.run(bad(20))),
        ["free-memory memory-crisis: cooling until 10:30"]
    );
    let third = replay.run(bad(40));
    assert_eq!(
        plans(&third),
        [
            "free-memory memory-crisis: run",
            "prune disk-pressure[/]: propose #1"
        ]
    );
    assert_eq!(
        third.actions[1].argv,
        ["echo", "prune", "/"],
        "rendered with the item"
    );
    assert_eq!(
        plans(&replay.run(bad(60))),
        [
            "free-memory memory-crisis: cooling until 11:10",
            "prune disk-pressure[/]: already #1"
        ]
    );
    assert!(third.actions[1].result.is_none(), "a proposal is not run");

    // Rejected: proposed again only once the cooldown (2 h) has passed.
    assert!(
        history
            .decide_proposal(
                1,
                ProposalStatus::Rejected,
                "ops",
                Some("not now"),
                Utc::now()
            )
            .unwrap()
    );
    assert_eq!(
        plans(&replay.run(bad(80)))[1],
        "prune disk-pressure[/]: cooling until 12:40"
    );
    assert_eq!(
        plans(&replay.run(bad(160)))[1],
        "prune disk-pressure[/]: propose #2"
    );

    // The disk recovers before anyone decides: the proposal expires.
    let recovered = replay.run(State {
        disk: 50,
        ..bad(180)
    });
    assert_eq!(recovered.expired.len(), 1);
    let expired = history.proposal(2).unwrap().unwrap();
    assert_eq!(expired.status, ProposalStatus::Expired);
    assert_eq!(expired.decided_by.as_deref(), Some("retort"));
    assert_eq!(
        expired.note.as_deref(),
        Some("finding `disk-pressure[/]` resolved at 2026-11-21 13:00 UTC")
    );
}

#[test]
fn the_gate_opens_by_its_mode_and_info_never_opens_it() {
    let modes = |gate: &str| {
        let formula = format!("{FORMULA}\n[gate]\n{gate}\n");
        let mut replay = Replay::new(&formula);
        let crisis = |minute| State {
            ram: 300,
            ..healthy(minute)
        };
        [
            replay.run(State {
                load: 9.0,
                ..healthy(0)
            }),
            replay.run(crisis(20)),
            replay.run(crisis(40)),
            replay.run(healthy(60)),
        ]
        .map(|d| d.gate.open)
    };
    assert_eq!(modes("agent = \"on-findings\""), [false, true, true, true]);
    assert_eq!(
        modes("agent = \"on-new-findings\""),
        [false, true, false, true]
    );
    assert_eq!(
        modes("agent = \"on-findings\"\nopen_on_resolved = false"),
        [false, true, true, false]
    );
    assert_eq!(modes("agent = \"always\""), [true, true, true, true]);

    // Without rules, a formula runs its agent every time, as before rules existed.
    let plain = Replay::new("name = \"plain\"\n[[steps]]\nid = \"a\"\ndescription = \"A\"\n")
        .preview(healthy(0));
    assert!(plain.gate.open);
    assert_eq!(
        plain.gate.describe(),
        "open (always): every run starts the agent"
    );
    assert_eq!(plain.to_markdown(), "", "no findings section in its prompt");
}

#[test]
fn a_preview_reads_the_history_and_writes_nothing() {
    let mut replay = Replay::new(FORMULA);
    let crisis = State {
        ram: 300,
        ..healthy(0)
    };
    replay.run(crisis);
    let before = std::fs::read(&replay.history).unwrap();

    let preview = replay.preview(State {
        minute: 40,
        ..crisis
    });
    assert_eq!(findings(&preview), ["memory-crisis:firing"], "knows run 1");
    assert!(preview.preview);
    assert_eq!(
        preview.actions[0].line(true),
        "free-memory for memory-crisis: would run `sh -c echo freed $RETORT_FINGERPRINT`"
    );
    assert_eq!(std::fs::read(&replay.history).unwrap(), before);
    assert_eq!(
        History::open(&replay.history)
            .unwrap()
            .runs("sup")
            .unwrap()
            .len(),
        1
    );

    // A history that is not a database: the preview says so and goes on.
    // (Its WAL, kept between runs, would still hold every page: it goes.)
    std::fs::write(&replay.history, "not a database").unwrap();
    for suffix in ["-wal", "-shm"] {
        let mut name = replay.history.clone().into_os_string();
        name.push(suffix);
        let _ = std::fs::remove_file(name);
    }
    let preview = replay.preview(crisis);
    assert_eq!(findings(&preview), ["memory-crisis:new"]);
    assert!(
        preview
            .problems
            .last()
            .unwrap()
            .ends_with("deciding as if there were no history"),
        "{:?}",
        preview.problems
    );
    assert_eq!(std::fs::read(&replay.history).unwrap(), b"not a database");
}

#[test]
fn the_first_prompts_findings_say_what_fires_what_ran_and_the_previous_run() {
    let mut replay = Replay::new(FORMULA);
    replay.run(State {
        ram: 300,
        ..healthy(0)
    });
    let decision = replay.run(State {
        ram: 300,
        disk: 99,
        ..healthy(20)
    });
    let markdown = decision.to_markdown();
    assert_eq!(
        markdown,
        "retort evaluated the formula's rules against the snapshot (2026-11-21 10:20 UTC).

Firing:

- [P0] memory-crisis: RAM 300 MB — firing for 2 runs

Pending (not yet for enough runs):

- [P1] disk-pressure[/]: Disk / 99% — pending, 1 of 3 runs

Actions:

- free-memory for memory-crisis: held back: cooling down until 2026-11-21 10:30 UTC

Previous run: run-1 at 2026-11-21 10:00 UTC, PHASE:done; alerts: memory-crisis."
    );
    let findings = decision.context().findings;
    assert_eq!(findings.firing[0].fingerprint, "memory-crisis");
    assert_eq!(findings.new.len(), 0);
    assert_eq!(findings.pending[0].needed, 3);
    assert_eq!(decision.in_state(FindingState::Firing).count(), 1);
}
