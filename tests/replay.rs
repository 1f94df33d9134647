//! The decide phase end to end: recorded snapshots replayed through a
//! formula as a cron-like sequence of separate `retort run --snapshot`
//! processes, against one real SQLite history, with real action scripts
//! and the scripted agent.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{Value, json};
use support::{Sandbox, scripted_agent, stderr, stdout, tree};

const FORMULA: &str = r#"
name = "replay"
description = "Supervisor under replay"

[gate]
agent = "on-findings"

[[rules]]
id = "memory-crisis"
priority = "P0"
when = "system.memory.available_mb < 500 || (system.swap.used_mb > 3072 && system.memory.available_mb < 2000)"
message = "RAM {{ system.memory.available_mb }} MB available"
repeat = "1h"
action = "free-memory"

[[rules]]
id = "disk-pressure"
priority = "P1"
each = "system.disks"
label = "item.mount"
when = "item.used_percent > 80"
message = "Disk {{ item.mount }} at {{ item.used_percent }}%"
for = 3
action = "prune-docker"

[[rules]]
id = "stale-pr"
priority = "P3"
each = "forge.pull_requests.filter(p, !p.draft)"
label = "string(item.number)"
when = "item.idle_seconds != null && item.idle_seconds > 1200"
message = "PR #{{ item.number }} ({{ item.head_branch }}) idle for {{ item.idle_seconds }} s"
for = 3
action = "nudge"

[[actions]]
id = "free-memory"
run = ["actions/free-memory.sh"]
mode = "auto"
timeout = "10s"
cooldown = "30m"

[[actions]]
id = "prune-docker"
run = ["actions/log.sh", "prune-docker", "{{ item.mount }}"]
mode = "propose"

[[actions]]
id = "nudge"
run = ["actions/log.sh", "nudge", "{{ item.head_branch }}"]
mode = "propose"

[[steps]]
id = "assess"
title = "Assess"
description = """
{% for f in findings.new %}NEW {{ f.fingerprint }}
{% endfor %}{% for f in findings.resolved %}RESOLVED {{ f.fingerprint }}
{% endfor %}{% for a in actions.run %}RAN {{ a.action }}: {{ a.result.stdout }}
{% endfor %}{% for a in actions.proposed %}PROPOSED #{{ a.plan.id }} {{ a.action }}
{% endfor %}{% if findings.firing | length == 0 %}{% if previous and previous.alerts %}ALL CLEAR after {{ previous.run_id }}{% else %}QUIET{% endif %}{% endif %}
"""

[[steps]]
id = "report"
title = "Report"
description = "Report."
needs = ["assess"]
"#;

/// The machine as one recorded snapshot describes it.
#[derive(Clone, Copy)]
struct Machine {
    minute: i64,
    ram_mb: u64,
    disk_percent: u32,
    /// Minutes since PR #42 was last updated.
    pr_idle: i64,
}

const HEALTHY: Machine = Machine {
    minute: 0,
    ram_mb: 6000,
    disk_percent: 40,
    pr_idle: 2,
};

fn at(minute: i64) -> String {
    (chrono::DateTime::parse_from_rfc3339("2026-11-21T10:00:00Z").unwrap()
        + chrono::Duration::minutes(minute))
    .with_timezone(&chrono::Utc)
    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn snapshot(m: Machine) -> Value {
    support::snapshot_json(json!({
        "collected_at": at(m.minute),
        "hostname": "factory-1",
        "system": {
            "status": "ok", "reason": null,
            "memory": { "available_mb": m.ram_mb, "total_mb": 16000 },
            "swap": { "used_mb": 0, "total_mb": 4096 },
            "disks": [
                { "mount": "/", "used_percent": m.disk_percent, "used_mb": 100, "total_mb": 200 },
                { "mount": "/data", "used_percent": 30, "used_mb": 30, "total_mb": 100 }
            ],
            "load": { "one": 0.5, "five": 0.4, "fifteen": 0.3 }
        },
        "forge": {
            "status": "ok", "reason": null,
            "url": "https://forge.example", "repo": "factory/app",
            "open_pull_requests": 2,
            "pull_requests": [
                { "number": 42, "title": "Fix the poller", "head_branch": "fix/poller",
                  "author": "dev-agent", "draft": false,
                  "updated_at": at(m.minute - m.pr_idle), "idle_seconds": m.pr_idle * 60,
                  "url": "https://forge.example/factory/app/pulls/42" },
                { "number": 43, "title": "WIP: idea", "head_branch": "wip/idea",
                  "author": "dev-agent", "draft": true,
                  "updated_at": at(m.minute - 600), "idle_seconds": 36000,
                  "url": "https://forge.example/factory/app/pulls/43" }
            ]
        }
    }))
}

struct Factory {
    sandbox: Sandbox,
    formula: PathBuf,
    runs: usize,
}

/// What one run did, from the outside.
struct Run {
    number: usize,
    output: Output,
    /// Prompts the agent received, in order.
    prompts: Vec<String>,
    /// Lines the action scripts logged during the run.
    actions: Vec<String>,
    /// The run's journal entry.
    journal: String,
    /// `decision.json` of the run.
    decision: Value,
}

impl Run {
    fn started_agent(&self) -> bool {
        !self.prompts.is_empty()
    }

    /// `fingerprint:state` of every finding.
    fn findings(&self) -> Vec<String> {
        self.decision["findings"]["all"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                let state = match (f["state"].as_str().unwrap(), f["new"].as_bool().unwrap()) {
                    ("firing", true) => "new",
                    (state, _) => state,
                };
                format!("{}:{state}", f["fingerprint"].as_str().unwrap())
            })
            .collect()
    }

    fn assert_done(&self) {
        assert_eq!(
            self.output.status.code(),
            Some(0),
            "run {} stderr:\n{}",
            self.number,
            stderr(&self.output)
        );
    }
}

impl Factory {
    fn new() -> Self {
        let sandbox = Sandbox::new();
        let formula = sandbox.work().join("replay.toml");
        std::fs::write(&formula, FORMULA).unwrap();
        let actions = sandbox.work().join("actions");
        std::fs::create_dir(&actions).unwrap();
        script(
            &actions.join("free-memory.sh"),
            "echo \"free-memory $RETORT_FINGERPRINT $RETORT_PRIORITY\" >> \"$ACTION_LOG\"\necho \"freed 512 MB\"\n",
        );
        script(
            &actions.join("log.sh"),
            "echo \"$* ($RETORT_ACTION for $RETORT_FINGERPRINT)\" >> \"$ACTION_LOG\"\necho \"did $1\"\n",
        );
        Factory {
            sandbox,
            formula,
            runs: 0,
        }
    }

    fn action_log(&self) -> PathBuf {
        self.sandbox.path("actions.log")
    }

    fn action_lines(&self) -> Vec<String> {
        std::fs::read_to_string(self.action_log())
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn command(&self, args: &[&str]) -> std::process::Command {
        let mut command = self.sandbox.retort(args);
        command.env("ACTION_LOG", self.action_log());
        command
    }

    fn save_snapshot(&self, machine: Machine) -> PathBuf {
        let path = self
            .sandbox
            .path(&format!("snapshot-{}.json", machine.minute));
        std::fs::write(
            &path,
            serde_json::to_vec_pretty(&snapshot(machine)).unwrap(),
        )
        .unwrap();
        path
    }

    /// One cron tick: `retort run --snapshot` as its own process.
    fn run(&mut self, machine: Machine) -> Run {
        self.runs += 1;
        let number = self.runs;
        let snapshot = self.save_snapshot(machine);
        let transcript = self.sandbox.transcript().join(format!("run-{number}"));
        std::fs::create_dir_all(&transcript).unwrap();
        let logged_before = self.action_lines().len();
        let journal_before = self.journal().len();
        let runs_before = self.run_dirs();

        let output = self
            .command(&[
                "run",
                self.formula.to_str().unwrap(),
                "--snapshot",
                snapshot.to_str().unwrap(),
                "--agent",
                &scripted_agent(),
                "--state-dir",
                self.sandbox.state().to_str().unwrap(),
            ])
            .env("AGENT_TRANSCRIPT", &transcript)
            .output()
            .unwrap();

        let mut prompts: Vec<(String, String)> = std::fs::read_dir(&transcript)
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.file_name() != "env.txt")
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read_to_string(e.path()).unwrap(),
                )
            })
            .collect();
        prompts.sort();
        let new_dirs: Vec<PathBuf> = self
            .run_dirs()
            .into_iter()
            .filter(|d| !runs_before.contains(d))
            .collect();
        assert_eq!(
            new_dirs.len(),
            1,
            "run {number} made one run directory; stderr:\n{}",
            stderr(&output)
        );
        let decision =
            serde_json::from_slice(&std::fs::read(new_dirs[0].join("decision.json")).unwrap())
                .unwrap();
        Run {
            number,
            prompts: prompts.into_iter().map(|(_, text)| text).collect(),
            actions: self.action_lines()[logged_before..].to_vec(),
            journal: self.journal()[journal_before..].to_string(),
            decision,
            output,
        }
    }

    fn run_dirs(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.sandbox.state().join("runs"))
            .map(|entries| entries.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default()
    }

    fn journal(&self) -> String {
        let dir = self.sandbox.state().join("journal/replay");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|e| e.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        files.sort();
        files
            .iter()
            .map(|f| std::fs::read_to_string(f).unwrap())
            .collect()
    }
}

fn script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, format!("#!/usr/bin/env bash\nset -eu\n{body}")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Every file under `dir` with its content, for "nothing was written".
fn contents(dir: &Path) -> Vec<(String, Vec<u8>)> {
    tree(dir)
        .into_iter()
        .map(|name| {
            let bytes = std::fs::read(dir.join(&name)).unwrap_or_default();
            (name, bytes)
        })
        .collect()
}

#[test]
fn a_day_of_cron_runs_fires_reports_and_resolves_findings_exactly_once() {
    let mut factory = Factory::new();
    let m = |minute: i64, ram_mb: u64, disk_percent: u32, pr_idle: i64| Machine {
        minute,
        ram_mb,
        disk_percent,
        pr_idle,
    };

    // 1. Healthy: no agent, no action, PHASE:done, journal says healthy.
    let run = factory.run(Machine { ..HEALTHY });
    run.assert_done();
    assert!(!run.started_agent());
    assert_eq!(run.findings(), Vec::<String>::new());
    assert_eq!(run.actions, Vec::<String>::new());
    assert_eq!(
        std::fs::read_to_string(factory.sandbox.state().join("replay.phase")).unwrap(),
        "PHASE:done\n"
    );
    assert!(
        run.journal
            .contains("- Gate: closed (on-findings): healthy — no agent started\n"),
        "{}",
        run.journal
    );
    assert!(
        run.journal.contains("### Findings\n- None: healthy\n"),
        "{}",
        run.journal
    );
    assert!(
        stderr(&run.output)
            .contains("retort: gate closed (on-findings): healthy — no agent started"),
        "{}",
        stderr(&run.output)
    );
    assert_eq!(factory.sandbox.tmux_sessions(), Vec::<String>::new());

    // 2. Memory crisis: fires at once; the auto action runs before the
    //    agent, which gets the finding and the action's output first.
    let run = factory.run(m(20, 300, 40, 2));
    run.assert_done();
    assert_eq!(run.findings(), ["memory-crisis:new"]);
    assert_eq!(run.actions, ["free-memory memory-crisis P0"]);
    assert_eq!(run.prompts.len(), 2, "the agent ran both steps");
    let first = &run.prompts[0];
    assert!(first.contains("## Findings"), "{first}");
    assert!(
        first.contains("- [P0] memory-crisis: RAM 300 MB available — new"),
        "{first}"
    );
    assert!(
        first.contains("- free-memory for memory-crisis: ran, exit 0 in "),
        "{first}"
    );
    assert!(first.contains("stdout: freed 512 MB"), "{first}");
    assert!(first.contains("NEW memory-crisis\n"), "{first}");
    assert!(first.contains("RAN free-memory: freed 512 MB"), "{first}");
    assert!(!first.contains("ALL CLEAR"), "{first}");
    assert!(
        run.journal
            .contains("- free-memory for memory-crisis: ran, exit 0 in "),
        "{}",
        run.journal
    );

    // 3. Still in crisis 20 minutes later: firing, not new; the action is
    //    cooling down (30m); the gate stays open (on-findings).
    let run = factory.run(m(40, 300, 40, 2));
    run.assert_done();
    assert_eq!(run.findings(), ["memory-crisis:firing"]);
    assert_eq!(run.actions, Vec::<String>::new(), "cooling down");
    assert!(run.started_agent());
    assert!(!run.prompts[0].contains("NEW memory-crisis"));
    assert!(
        run.prompts[0].contains(
            "free-memory for memory-crisis: held back: cooling down until 2026-11-21 10:50 UTC"
        ),
        "{}",
        run.prompts[0]
    );

    // 4. Memory recovers, disk pressure appears for one run: the crisis is
    //    reported resolved (the agent posts the all-clear), the disk is
    //    only pending (`for = 3`).
    let run = factory.run(m(60, 6000, 85, 2));
    run.assert_done();
    assert_eq!(
        run.findings(),
        ["memory-crisis:resolved", "disk-pressure[/]:pending"]
    );
    assert!(run.started_agent(), "a resolution opens the gate");
    assert!(
        run.prompts[0].contains("RESOLVED memory-crisis\n"),
        "{}",
        run.prompts[0]
    );
    assert!(
        run.prompts[0].contains("ALL CLEAR after 2026"),
        "{}",
        run.prompts[0]
    );
    assert!(
        run.journal
            .contains("- [P0] memory-crisis: RAM 300 MB available — resolved\n"),
        "{}",
        run.journal
    );
    assert!(
        run.journal
            .contains("- [P1] disk-pressure[/]: Disk / at 85% — pending, 1 of 3 runs\n"),
        "{}",
        run.journal
    );

    // 5. The disk blip is over before it fired: forgotten, and the resolved
    //    crisis is not reported again.
    let run = factory.run(m(80, 6000, 40, 2));
    run.assert_done();
    assert_eq!(run.findings(), Vec::<String>::new());
    assert!(!run.started_agent());
    assert!(
        run.journal.contains("### Findings\n- None: healthy\n"),
        "{}",
        run.journal
    );

    // 6–8. Disk pressure and a stale PR for three consecutive
    //      runs: pending, pending, then both fire and are proposed. (The
    //      draft PR, idle far longer, is left out by the rule's filter.)
    let run = factory.run(m(100, 6000, 90, 25));
    assert_eq!(
        run.findings(),
        ["disk-pressure[/]:pending", "stale-pr[42]:pending"]
    );
    assert!(!run.started_agent());
    let run = factory.run(m(120, 6000, 90, 45));
    assert!(!run.started_agent());

    // A dry run now shows what the next run would decide, and writes nothing.
    let state = factory.sandbox.state();
    let before = contents(&state);
    let snapshot = factory.save_snapshot(m(140, 6000, 90, 65));
    let dry = factory
        .command(&[
            "run",
            factory.formula.to_str().unwrap(),
            "--snapshot",
            snapshot.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
            "--dry-run",
        ])
        .output()
        .unwrap();
    assert_eq!(dry.status.code(), Some(0), "{}", stderr(&dry));
    let plan = stdout(&dry);
    assert!(
        plan.contains(
            "  gate        open (on-findings): 2 findings firing: disk-pressure[/], stale-pr[42]\n"
        ),
        "{plan}"
    );
    assert!(
        plan.contains("    [P1] disk-pressure[/]: Disk / at 90% — new\n"),
        "{plan}"
    );
    assert!(
        plan.contains(
            "    prune-docker for disk-pressure[/]: would propose `actions/log.sh prune-docker /`\n"
        ),
        "{plan}"
    );
    assert_eq!(contents(&state), before, "a dry run writes nothing");
    assert_eq!(factory.action_lines().len(), 1, "and runs nothing");

    let run = factory.run(m(140, 6000, 90, 65));
    run.assert_done();
    assert_eq!(run.findings(), ["disk-pressure[/]:new", "stale-pr[42]:new"]);
    assert!(run.started_agent());
    assert_eq!(run.actions, Vec::<String>::new(), "proposals are not run");
    let first = &run.prompts[0];
    assert!(first.contains("PROPOSED #1 prune-docker\n"), "{first}");
    assert!(first.contains("PROPOSED #2 nudge\n"), "{first}");
    assert!(
        run.journal.contains(
            "- prune-docker for disk-pressure[/]: proposed as #1 (`retort approve 1` runs it)\n"
        ),
        "{}",
        run.journal
    );

    // 9. Still firing: the pending proposals are not made again.
    let run = factory.run(m(160, 6000, 90, 85));
    run.assert_done();
    assert_eq!(
        run.findings(),
        ["disk-pressure[/]:firing", "stale-pr[42]:firing"]
    );
    assert!(run.started_agent());
    assert!(
        run.journal.contains(
            "- prune-docker for disk-pressure[/]: held back: proposal #1 is still pending\n"
        ),
        "{}",
        run.journal
    );

    // A human lists, approves one, rejects the other.
    let state = factory.sandbox.state();
    let state_arg = ["--state-dir", state.to_str().unwrap()];
    let listed = factory
        .command(&[&["proposals"][..], &state_arg].concat())
        .output()
        .unwrap();
    assert_eq!(listed.status.code(), Some(0));
    let listed = stdout(&listed);
    assert!(
        listed.contains("#1 pending — prune-docker for disk-pressure[/] [P1]\n    finding:  Disk / at 90%\n    command:  actions/log.sh prune-docker /\n"),
        "{listed}"
    );
    assert!(
        listed.contains("#2 pending — nudge for stale-pr[42] [P3]\n"),
        "{listed}"
    );

    let approved = factory
        .command(&[&["approve", "1"][..], &state_arg].concat())
        .env("USER", "ops")
        .output()
        .unwrap();
    assert_eq!(approved.status.code(), Some(0), "{}", stderr(&approved));
    assert_eq!(stdout(&approved), "did prune-docker\n");
    assert_eq!(
        factory.action_lines().last().unwrap(),
        "prune-docker / (prune-docker for disk-pressure[/])"
    );
    let again = factory
        .command(&[&["approve", "1"][..], &state_arg].concat())
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(
        stderr(&again).contains("proposal #1 is approved (by ops at "),
        "{}",
        stderr(&again)
    );
    let rejected = factory
        .command(
            &[
                &["reject", "2", "--reason", "the agent is busy"][..],
                &state_arg,
            ]
            .concat(),
        )
        .env("USER", "ops")
        .output()
        .unwrap();
    assert_eq!(rejected.status.code(), Some(0), "{}", stderr(&rejected));
    let all = stdout(
        &factory
            .command(&[&["proposals", "--all"][..], &state_arg].concat())
            .output()
            .unwrap(),
    );
    assert!(all.contains("#2 rejected — nudge"), "{all}");
    assert!(all.contains("by ops: the agent is busy"), "{all}");
    assert_eq!(
        stdout(
            &factory
                .command(&[&["proposals"][..], &state_arg].concat())
                .output()
                .unwrap()
        ),
        "No pending proposals.\n"
    );

    // 10. Recovery: both findings resolve, reported in this run only.
    let run = factory.run(m(180, 6000, 40, 2));
    run.assert_done();
    assert_eq!(
        run.findings(),
        ["disk-pressure[/]:resolved", "stale-pr[42]:resolved"]
    );
    assert!(run.started_agent());
    assert!(
        run.prompts[0].contains("ALL CLEAR after"),
        "{}",
        run.prompts[0]
    );

    // 11. And then quiet again.
    let run = factory.run(m(200, 6000, 40, 2));
    run.assert_done();
    assert_eq!(run.findings(), Vec::<String>::new());
    assert!(!run.started_agent());

    // Across the whole day: which runs started the agent, and each
    // resolution reported exactly once.
    let journal = factory.journal();
    assert_eq!(journal.matches("## replay run — ").count(), 11);
    assert_eq!(journal.matches("- None: no agent was started").count(), 5);
    assert_eq!(
        journal
            .matches("memory-crisis: RAM 300 MB available — resolved")
            .count(),
        1
    );
    assert_eq!(
        journal
            .matches("disk-pressure[/]: Disk / at 90% — resolved")
            .count(),
        1
    );
    assert_eq!(journal.matches("— new\n").count(), 3);
    assert_eq!(
        factory.action_lines(),
        [
            "free-memory memory-crisis P0",
            "prune-docker / (prune-docker for disk-pressure[/])",
        ],
        "the auto action once (cooldown), the approved proposal once"
    );
    assert_eq!(factory.sandbox.tmux_sessions(), Vec::<String>::new());
}

#[test]
fn a_formula_with_a_bad_rule_is_refused_with_the_place_and_the_fix() {
    let sandbox = Sandbox::new();
    let formula = sandbox.work().join("bad.toml");
    std::fs::write(
        &formula,
        FORMULA.replace(
            "system.memory.available_mb < 500 ||",
            "system.memory.availble_mb < 500 ||",
        ),
    )
    .unwrap();
    let snapshot = sandbox.path("snapshot.json");
    std::fs::write(&snapshot, snapshot_text(HEALTHY)).unwrap();

    for command in ["render", "run"] {
        let output = sandbox
            .retort(&[
                command,
                formula.to_str().unwrap(),
                "--snapshot",
                snapshot.to_str().unwrap(),
                "--state-dir",
                sandbox.state().to_str().unwrap(),
            ])
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{command}");
        let report = stderr(&output);
        assert!(
            report
                .contains("rule `memory-crisis`: the snapshot has no `system.memory.availble_mb`"),
            "{report}"
        );
        assert!(report.contains("bad.toml:11:"), "{report}");
        assert!(report.contains("did you mean `available_mb`?"), "{report}");
        if command == "render" {
            assert_eq!(
                tree(&sandbox.state()),
                Vec::<String>::new(),
                "render writes nothing"
            );
        }
    }
    // A run claims its formula before its rules are compiled (beside the
    // preflight): its phase file then says why it failed, so that no
    // earlier `PHASE:done` stands for it.
    let phase = std::fs::read_to_string(sandbox.state().join("replay.phase")).unwrap();
    assert!(phase.starts_with("PHASE:failed\n"), "{phase}");
    assert!(phase.contains("availble_mb"), "{phase}");
    assert!(
        !sandbox
            .state()
            .join("runs")
            .read_dir()
            .unwrap()
            .any(|_| true),
        "no run directory"
    );
}

#[test]
fn a_snapshot_that_is_not_one_is_refused() {
    let sandbox = Sandbox::new();
    let formula = sandbox.work().join("replay.toml");
    std::fs::write(&formula, FORMULA).unwrap();
    let snapshot = sandbox.path("snapshot.json");
    std::fs::write(&snapshot, "{\"hostname\": 3}").unwrap();
    let output = sandbox
        .retort(&[
            "render",
            formula.to_str().unwrap(),
            "--snapshot",
            snapshot.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains(&format!(
            "cannot use {} as the snapshot: ",
            snapshot.display()
        )),
        "{}",
        stderr(&output)
    );
}

fn snapshot_text(machine: Machine) -> Vec<u8> {
    serde_json::to_vec_pretty(&snapshot(machine)).unwrap()
}
