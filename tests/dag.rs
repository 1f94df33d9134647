//! DAG execution end to end, headless (one scripted-agent process per
//! step): parallel branches, `when`, retries, outputs, the run's timeout
//! and `retort rerun`. Overlap is read from the attempts retort records
//! (`RUN/attempts.json`), never from wall-clock thresholds.

mod support;

use serde_json::Value;
use support::{Sandbox, scripted_agent, stderr};

const DIAMOND: &str = r#"
name = "diamond"
[[steps]]
id = "a"
description = "Look around."
[[steps]]
id = "b"
description = "Branch b."
needs = ["a"]
[[steps]]
id = "c"
description = "Branch c."
needs = ["a"]
[[steps]]
id = "d"
description = "Join: b said {{ steps.b.output }}; c was {{ steps.c.outcome }}."
needs = ["b", "c"]
"#;

fn write_formula(sandbox: &Sandbox, text: &str) -> std::path::PathBuf {
    let path = sandbox.work().join("diamond.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn retort_headless(sandbox: &Sandbox, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let agent = scripted_agent();
    let state = sandbox.state();
    let mut all: Vec<&str> = args.to_vec();
    all.extend([
        "--agent",
        &agent,
        "--backend",
        "headless",
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    sandbox
        .retort(&all)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn run_formula(sandbox: &Sandbox, formula: &str, env: &[(&str, &str)]) -> std::process::Output {
    let path = write_formula(sandbox, formula);
    retort_headless(sandbox, &["run", path.to_str().unwrap()], env)
}

/// The run directories, oldest first.
fn runs(sandbox: &Sandbox) -> Vec<std::path::PathBuf> {
    let mut runs: Vec<_> = std::fs::read_dir(sandbox.state().join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    runs.sort_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap());
    runs
}

fn json(path: &std::path::Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// (step, attempt, started_ms, ended_ms, outcome) of every attempt.
fn attempts_of(run: &std::path::Path) -> Vec<(String, u64, u64, u64, String)> {
    json(&run.join("attempts.json"))
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["step"].as_str().unwrap().to_string(),
                a["attempt"].as_u64().unwrap(),
                a["started_ms"].as_u64().unwrap(),
                a["ended_ms"].as_u64().unwrap(),
                a["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn step<'a>(
    attempts: &'a [(String, u64, u64, u64, String)],
    id: &str,
) -> &'a (String, u64, u64, u64, String) {
    attempts.iter().rev().find(|a| a.0 == id).unwrap()
}

/// The sandbox's run history.
fn open_history(sandbox: &Sandbox) -> retort_journal::History {
    retort_journal::History::open(&retort_journal::history::history_file(&sandbox.state())).unwrap()
}

/// Each step's (outcome, reason) in `run.json`.
fn outcomes(run: &std::path::Path) -> Vec<(String, String, String)> {
    json(&run.join("run.json"))["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_string(),
                s["outcome"].as_str().unwrap().to_string(),
                s["reason"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_diamond_runs_its_two_branches_at_once() {
    let sandbox = Sandbox::new();
    let output = run_formula(&sandbox, DIAMOND, &[("AGENT_SLEEP_MS", "2000")]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{err}");
    assert_eq!(sandbox.phase("diamond"), "PHASE:done\n");
    assert!(
        err.contains("retort: running b, c"),
        "progress shows both branches:\n{err}"
    );

    let run = &runs(&sandbox)[0];
    let attempts = attempts_of(run);
    assert_eq!(attempts.len(), 4, "{attempts:?}");
    let (a, b, c, d) = (
        step(&attempts, "a"),
        step(&attempts, "b"),
        step(&attempts, "c"),
        step(&attempts, "d"),
    );
    // The branches start after a, overlap each other, and d starts after both.
    assert!(a.3 <= b.2 && a.3 <= c.2, "{attempts:?}");
    assert!(b.2 < c.3 && c.2 < b.3, "b and c overlap: {attempts:?}");
    assert!(d.2 >= b.3 && d.2 >= c.3, "{attempts:?}");
    // Three layers of 2-second steps: about 6 s, not the 8 s of one at a time.
    let total = d.3 - a.2;
    assert!(total >= 6000, "{attempts:?}");
    eprintln!("diamond of 2-second steps: {total} ms from a's start to d's end");
}

#[test]
fn outputs_reach_later_templates_and_when_skips_with_its_reason() {
    let sandbox = Sandbox::new();
    let formula = DIAMOND
        .replace(
            "description = \"Branch b.\"",
            "description = \"Branch b.\"\nwhen = \"steps.a.output.contains('found a')\"",
        )
        .replace(
            "description = \"Branch c.\"",
            "description = \"Branch c.\"\nwhen = \"steps.a.output == 'nothing'\"",
        );
    let output = run_formula(&sandbox, &formula, &[("AGENT_OUTPUT", "found STEP")]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{err}");

    let run = &runs(&sandbox)[0];
    let outcomes = outcomes(run);
    assert_eq!(outcomes[1].0, "b");
    assert_eq!(outcomes[1].1, "done");
    assert_eq!(outcomes[2].0, "c");
    assert_eq!(outcomes[2].1, "skipped");
    assert!(
        outcomes[2]
            .2
            .contains("`when` is false: steps.a.output == 'nothing'"),
        "{outcomes:?}"
    );
    assert_eq!(outcomes[3].1, "done", "a skipped step satisfies d");
    let prompt = std::fs::read_to_string(run.join("prompts/d.md")).unwrap();
    assert!(
        prompt.contains("Join: b said found b; c was skipped."),
        "{prompt}"
    );
    assert_eq!(
        std::fs::read_to_string(run.join("steps/a.output")).unwrap(),
        "found a"
    );
}

#[test]
fn a_crashed_step_is_retried_and_every_attempt_recorded() {
    let sandbox = Sandbox::new();
    let formula = DIAMOND.replace(
        "description = \"Branch c.\"",
        "description = \"Branch c.\"\nretries = 2\nretry_delay = \"1s\"",
    );
    let output = run_formula(&sandbox, &formula, &[("AGENT_EXIT_ONCE_AT", "c")]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{err}");
    assert_eq!(sandbox.phase("diamond"), "PHASE:done\n");
    let run = &runs(&sandbox)[0];
    let attempts = attempts_of(run);
    let c: Vec<_> = attempts.iter().filter(|a| a.0 == "c").collect();
    assert_eq!(c.len(), 2, "{attempts:?}");
    assert_eq!((c[0].1, c[0].4.as_str()), (1, "failed"));
    assert_eq!((c[1].1, c[1].4.as_str()), (2, "done"));
    assert!(
        c[1].2 >= c[0].3 + 1000,
        "the retry waits retry_delay: {attempts:?}"
    );
    let recorded = json(&run.join("attempts.json"));
    assert!(recorded[attempts.iter().position(|a| a.0 == "c").unwrap()]["retry_at_ms"].is_u64());
    // The journal entry lists the retried attempt under its step.
    let journal_dir = sandbox.state().join("journal").join("diamond");
    let day = std::fs::read_dir(&journal_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let journal = std::fs::read_to_string(day.path()).unwrap();
    let line = journal
        .lines()
        .skip_while(|l| !l.starts_with("- `c` c — done"))
        .nth(1)
        .unwrap_or_default();
    assert!(
        line.starts_with("  - attempt 1: failed in ")
            && line.contains(", retried after 1s: step `c` was not signalled"),
        "{journal}"
    );
    // The run history has a row for every attempt, c's first one with the
    // wait before its retry.
    let run_id = run.file_name().unwrap().to_str().unwrap();
    let history = open_history(&sandbox);
    let rows = history.step_attempts(run_id).unwrap();
    let mut kinds: Vec<_> = rows
        .iter()
        .map(|r| (r.step.as_str(), r.attempt, r.outcome.as_str()))
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            ("a", 1, "done"),
            ("b", 1, "done"),
            ("c", 1, "failed"),
            ("c", 2, "done"),
            ("d", 1, "done")
        ],
        "{rows:?}"
    );
    let c: Vec<_> = rows.iter().filter(|r| r.step == "c").collect();
    assert_eq!(c.len(), 2, "{rows:?}");
    assert_eq!((c[0].attempt, c[0].outcome.as_str()), (1, "failed"));
    assert!(
        c[0].reason
            .as_deref()
            .unwrap()
            .starts_with("step `c` was not signalled"),
        "{rows:?}"
    );
    let waited = c[0].retry_after_ms.unwrap();
    assert!(waited >= 1000, "retry_delay 1s: {rows:?}");
    assert!(
        c[1].started_at >= c[0].ended_at + chrono::Duration::milliseconds(1000),
        "{rows:?}"
    );
    assert_eq!((c[1].attempt, c[1].outcome.as_str()), (2, "done"));
    assert_eq!(c[1].retry_after_ms, None);
    assert_eq!(c[1].reason, None);
    assert_eq!(history.retried_attempts(run_id).unwrap(), 1);
    drop(history);
    // `retort history` counts them.
    let listed = sandbox.ok(&["history", "--format", "json"]);
    let listed: Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed[0]["run_id"], run_id);
    assert_eq!(listed[0]["retried_attempts"], 1, "{listed}");
    let line = sandbox.ok(&["history"]);
    assert!(line.contains("(1 retried attempt)"), "{line}");

    // A step that signals failed is never retried.
    let sandbox = Sandbox::new();
    let output = run_formula(
        &sandbox,
        &formula,
        &[("AGENT_FAIL_AT", "c"), ("AGENT_REASON", "no disk")],
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let run = &runs(&sandbox)[0];
    assert_eq!(attempts_of(run).iter().filter(|a| a.0 == "c").count(), 1);
    let outcomes = outcomes(run);
    assert_eq!(outcomes[3].1, "skipped");
    assert!(outcomes[3].2.contains("not started"), "{outcomes:?}");
}

#[test]
fn the_run_timeout_stops_the_running_step_and_starts_nothing_more() {
    let sandbox = Sandbox::new();
    let formula = DIAMOND.replace("name = \"diamond\"", "name = \"diamond\"\ntimeout = \"3s\"");
    let output = run_formula(&sandbox, &formula, &[("AGENT_HANG_AT", "b")]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    let phase = sandbox.phase("diamond");
    assert!(
        phase.starts_with("PHASE:failed") && phase.contains("the run's timeout of 3s was reached"),
        "{phase}"
    );
    let run = &runs(&sandbox)[0];
    let outcomes = outcomes(run);
    assert_eq!(outcomes[1].0, "b");
    assert_eq!(outcomes[1].1, "failed");
    assert!(
        outcomes[1]
            .2
            .contains("the run's timeout of 3s was reached"),
        "{outcomes:?}"
    );
    assert_eq!(outcomes[2].1, "done", "c ran beside b");
    assert_eq!(outcomes[3].1, "skipped");
}

#[test]
fn rerun_from_a_step_reuses_the_steps_before_it() {
    let sandbox = Sandbox::new();
    let formula = DIAMOND.replace(
        "description = \"Join:",
        "description = \"Run {{ run.id }}. Join:",
    );
    let output = run_formula(&sandbox, &formula, &[("AGENT_OUTPUT", "first STEP")]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let first = runs(&sandbox)[0].clone();
    let first_id = first.file_name().unwrap().to_str().unwrap().to_string();

    let output = retort_headless(
        &sandbox,
        &["rerun", &first_id, "--from", "c"],
        &[("AGENT_OUTPUT", "second STEP")],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let second = runs(&sandbox)[1].clone();
    let report = json(&second.join("run.json"));
    assert_eq!(report["rerun_of"], first_id.as_str());
    // The run history records it as a rerun.
    let history =
        retort_journal::History::open(&retort_journal::history::history_file(&sandbox.state()))
            .unwrap();
    let of = history
        .rerun_of(second.file_name().unwrap().to_str().unwrap())
        .unwrap();
    assert_eq!(of.as_deref(), Some(first_id.as_str()));
    let outcomes = outcomes(&second);
    let ran: Vec<String> = attempts_of(&second).into_iter().map(|a| a.0).collect();
    assert_eq!(ran.len(), 2);
    assert_eq!(ran, ["c", "d"]);
    assert!(
        outcomes[0]
            .2
            .contains(&format!("reused from run {first_id}")),
        "{outcomes:?}"
    );
    // d sees b's output from the first run.
    let prompt = std::fs::read_to_string(second.join("prompts/d.md")).unwrap();
    assert!(prompt.contains("b said first b"), "{prompt}");

    // A step whose need did not end done cannot be rerun on its own.
    let output = retort_headless(&sandbox, &["rerun", &first_id, "--only", "nope"], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("has no step `nope`"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_chain_run_one_step_at_a_time_keeps_to_the_run_timeout_too() {
    let sandbox = Sandbox::new();
    let chain = r#"
name = "chain"
max_parallel = 1
timeout = "2s"
[[steps]]
id = "a"
description = "A."
[[steps]]
id = "b"
description = "B."
needs = ["a"]
[[steps]]
id = "c"
description = "C."
needs = ["b"]
"#;
    let output = run_formula(&sandbox, chain, &[("AGENT_HANG_AT", "b")]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let phase = sandbox.phase("chain");
    assert!(
        phase.contains("step `b`: the run's timeout of 2s was reached"),
        "{phase}"
    );
    let run = &runs(&sandbox)[0];
    assert!(
        !run.join("attempts.json").exists(),
        "a chain one step at a time runs in the sequential loop"
    );
    let outcomes = outcomes(run);
    assert_eq!(
        outcomes.iter().map(|o| o.1.as_str()).collect::<Vec<_>>(),
        ["done", "failed", "skipped"]
    );
}

#[test]
fn in_tmux_each_branch_gets_a_session_of_its_own() {
    let sandbox = Sandbox::new();
    let path = write_formula(&sandbox, DIAMOND);
    let agent = scripted_agent();
    let output = sandbox
        .retort(&[
            "run",
            path.to_str().unwrap(),
            "--agent",
            &agent,
            "--ready",
            "agent>",
            "--state-dir",
            sandbox.state().to_str().unwrap(),
        ])
        .env("AGENT_OUTPUT", "said STEP")
        .output()
        .unwrap();
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{err}");
    let run = &runs(&sandbox)[0];
    let report = json(&run.join("run.json"));
    let sessions: Vec<&str> = report["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    // a, b and d in one conversation; c in a second session.
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    assert!(sessions[1].ends_with("-2"), "{sessions:?}");
    // Each session's start names its agent command.
    for session in &sessions {
        let line = format!("agent `{agent}` in tmux session {session} ");
        assert!(err.contains(&line), "no `{line}` in:\n{err}");
    }
    // Each session's agent signalled its own step: c's came from session 2.
    assert_eq!(
        std::fs::read_to_string(run.join("steps/c.output")).unwrap(),
        "said c"
    );
    let prompt = std::fs::read_to_string(run.join("prompts/d.md")).unwrap();
    assert!(prompt.contains("b said said b; c was done."), "{prompt}");
    assert!(sandbox.tmux_sessions().is_empty(), "sessions ended");
}

/// Two branches with nothing in common, each in its own session.
const TWO_BRANCHES: &str = r#"
name = "branches"
[[steps]]
id = "slow"
description = "The slow branch."
[[steps]]
id = "quick"
description = "The quick branch: say how it ends in {{ run.phase_file }}."
"#;

#[test]
fn a_phase_line_written_in_one_session_ends_only_that_sessions_step() {
    // quick's agent writes PHASE:escalate to its $PHASE_FILE at once while
    // slow's agent still works: slow must still end done, by its own signal.
    let sandbox = Sandbox::new();
    let output = run_formula(
        &sandbox,
        TWO_BRANCHES,
        &[
            ("AGENT_SLEEP_MS", "2000"),
            ("AGENT_SLEEP_AT", "slow"),
            ("AGENT_PHASE_AT", "quick"),
        ],
    );
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(3), "escalated:\n{err}");
    let run = &runs(&sandbox)[0];
    let outcomes = outcomes(run);
    assert_eq!(
        outcomes
            .iter()
            .map(|(id, outcome, _)| (id.as_str(), outcome.as_str()))
            .collect::<Vec<_>>(),
        [("slow", "done"), ("quick", "escalated")],
        "{outcomes:?}\n{err}"
    );
    let phase = sandbox.phase("branches");
    assert!(
        phase.starts_with("PHASE:escalate") && phase.contains("step `quick`"),
        "{phase}"
    );
    // Each session has a phase file of its own: quick is the second session.
    assert_eq!(
        std::fs::read_to_string(run.join("agent-2.phase")).unwrap(),
        "PHASE:escalate\n"
    );
    assert!(!run.join("agent.phase").exists(), "slow's agent wrote none");
    // Its prompt names that file too.
    let prompt = std::fs::read_to_string(run.join("prompts/quick.md")).unwrap();
    let named = format!(
        "say how it ends in {}.",
        run.join("agent-2.phase").display()
    );
    assert!(prompt.contains(&named), "{prompt}");
}

#[test]
fn progress_lines_show_an_agents_reason_cleaned_and_without_secrets() {
    let sandbox = Sandbox::new();
    let token = "forge-token-dag-test-7c1d0e";
    let output = run_formula(
        &sandbox,
        DIAMOND,
        &[
            ("FORGE_TOKEN", token),
            ("AGENT_FAIL_AT", "b"),
            ("AGENT_REASON", &format!("pushing with {token} was refused")),
        ],
    );
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(!err.contains(token), "a secret in a progress line:\n{err}");
    assert!(
        err.contains("failed in ") && err.contains("step `b`: pushing with [redacted] was refused"),
        "{err}"
    );
    let run = &runs(&sandbox)[0];
    let attempts = std::fs::read_to_string(run.join("attempts.json")).unwrap();
    assert!(!attempts.contains(token), "{attempts}");
    // The history's row of b's attempt has its reason cleaned too.
    let rows = open_history(&sandbox)
        .step_attempts(run.file_name().unwrap().to_str().unwrap())
        .unwrap();
    let b = rows.iter().find(|r| r.step == "b").unwrap();
    assert_eq!(
        b.reason.as_deref(),
        Some("step `b`: pushing with [redacted] was refused"),
        "{rows:?}"
    );
}
