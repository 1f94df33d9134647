//! `retort run`, end to end: the real binary, a real tmux server, real
//! files; only the LLM is stood in for, by `tests/agent/scripted-agent.sh`.

mod support;

use std::time::{Duration, Instant};

use support::{Sandbox, scripted_agent, seed_formula, stderr};

const SEED_STEPS: [(&str, &str); 5] = [
    ("preflight", "Review pre-collected metrics"),
    ("health-assessment", "Evaluate health of each subsystem"),
    (
        "decide-actions",
        "Fix what you can, escalate what you cannot",
    ),
    ("report", "Post health summary to Matrix"),
    ("journal", "Write health journal entry"),
];

/// `retort run` of the seed formula with the scripted agent, in `sandbox`.
fn seed_run(sandbox: &Sandbox) -> std::process::Command {
    let formula = seed_formula();
    let state = sandbox.state();
    sandbox.retort(&[
        "run",
        formula.to_str().unwrap(),
        "--agent",
        &scripted_agent(),
        "--state-dir",
        state.to_str().unwrap(),
    ])
}

fn run_seed(sandbox: &Sandbox, agent_env: &[(&str, &str)]) -> std::process::Output {
    let mut command = seed_run(sandbox);
    command.envs(agent_env.iter().copied());
    command.output().expect("retort runs")
}

fn journal_text(sandbox: &Sandbox) -> String {
    let dir = sandbox.state().join("journal/run-supervisor");
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("journal dir {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "one journal file: {files:?}");
    let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
    let today = chrono::Utc::now().format("%Y-%m-%d.md").to_string();
    assert_eq!(name, today, "journal file is named for the UTC day");
    std::fs::read_to_string(&files[0]).unwrap()
}

#[test]
fn seed_formula_runs_to_phase_done_with_five_prompts_in_order() {
    let sandbox = Sandbox::new();
    std::fs::write(
        sandbox.work().join("AGENTS.md"),
        "# Agents\nThe dev-agent works issues from the backlog.\n",
    )
    .unwrap();

    let output = run_seed(&sandbox, &[]);

    assert_eq!(
        output.status.code(),
        Some(0),
        "stderr:\n{}",
        stderr(&output)
    );
    let phase = sandbox.phase("run-supervisor");
    assert_eq!(phase, "PHASE:done\n");

    // Five prompts, in dependency order, each under the right current_step.
    let received = sandbox.received();
    let names: Vec<&str> = received.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "1-preflight.txt",
            "2-health-assessment.txt",
            "3-decide-actions.txt",
            "4-report.txt",
            "5-journal.txt"
        ]
    );
    for (number, ((_, text), (id, title))) in received.iter().zip(SEED_STEPS).enumerate() {
        let heading = format!("## Step {} of 5: {title} (`{id}`)", number + 1);
        assert!(
            text.contains(&heading),
            "prompt {id} lacks {heading:?}:\n{text}"
        );
        assert!(
            text.contains(&format!("When step `{id}` is complete")),
            "{text}"
        );
        assert!(text.contains("retort signal done"), "{text}");
    }

    // The first prompt carries the formula, the context file and the snapshot.
    let first = &received[0].1;
    assert!(first.starts_with("# run-supervisor\n"), "{first}");
    assert!(
        first.contains("Factory health monitoring: assess metrics"),
        "{first}"
    );
    assert!(first.contains("## Context: AGENTS.md"), "{first}");
    assert!(
        first.contains("The dev-agent works issues from the backlog."),
        "{first}"
    );
    assert!(first.contains("## Preflight snapshot"), "{first}");
    assert!(first.contains("MB available of"), "{first}");
    assert!(
        !received[1].1.contains("## Preflight snapshot"),
        "only the first prompt has it"
    );

    // What the agent read is what retort saved as sent.
    let run_dir = sandbox.run_dir();
    for ((_, text), (id, _)) in received.iter().zip(SEED_STEPS) {
        let sent = std::fs::read_to_string(run_dir.join(format!("prompts/{id}.md"))).unwrap();
        assert_eq!(text.trim_end(), sent.trim_end(), "prompt of {id} as sent");
        let signal = std::fs::read_to_string(run_dir.join(format!("steps/{id}.signal"))).unwrap();
        assert!(signal.contains(r#""signal":"done""#), "{signal}");
    }
    let snapshot: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("snapshot.json")).unwrap())
            .unwrap();
    assert!(snapshot["system"]["memory"]["total_mb"].as_u64().unwrap() > 0);

    // The session's environment.
    let env = std::fs::read_to_string(sandbox.transcript().join("env.txt")).unwrap();
    assert!(
        env.contains(&format!("RETORT_RUN_DIR={}\n", run_dir.display())),
        "{env}"
    );
    // The agent's own phase file, not retort's.
    assert!(
        env.contains(&format!(
            "PHASE_FILE={}\n",
            run_dir.join("agent.phase").display()
        )),
        "{env}"
    );
    assert!(
        env.contains(&format!("retort={}\n", support::retort())),
        "{env}"
    );

    // The journal entry.
    let journal = journal_text(&sandbox);
    assert!(journal.starts_with("## run-supervisor run — "), "{journal}");
    assert!(journal.contains(" UTC\n"), "{journal}");
    assert!(journal.contains("PHASE:done"), "{journal}");
    assert!(journal.contains("### Health status\n- RAM: "), "{journal}");
    for (id, title) in SEED_STEPS {
        assert!(
            journal.contains(&format!("- `{id}` {title} — done (")),
            "{journal}"
        );
    }

    // The run summary.
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(summary["phase"], "done");
    assert_eq!(summary["steps"].as_array().unwrap().len(), 5);
    assert_eq!(summary["pruned"]["keep"], "30days", "the default keep");
    assert_eq!(summary["pruned"]["run_dirs"], 0);
    assert_eq!(summary["warnings"], serde_json::json!([]));

    assert_eq!(
        sandbox.tmux_sessions(),
        Vec::<String>::new(),
        "tmux is left clean"
    );
}

#[test]
fn agent_exiting_without_signalling_fails_the_step_at_once() {
    let sandbox = Sandbox::new();
    let started = Instant::now();

    let output = run_seed(
        &sandbox,
        &[
            ("AGENT_EXIT_AT", "health-assessment"),
            ("AGENT_EXIT_STATUS", "7"),
        ],
    );

    // The step timeout is 30 minutes; the run must end long before that.
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(
        output.status.code(),
        Some(1),
        "stderr:\n{}",
        stderr(&output)
    );
    let phase = sandbox.phase("run-supervisor");
    assert_eq!(
        phase,
        "PHASE:failed\nReason: step `health-assessment` was not signalled: the agent exited with status 7 before signalling\n"
    );
    assert_eq!(sandbox.received().len(), 2, "no prompt after the failure");

    let journal = journal_text(&sandbox);
    assert!(journal.contains("PHASE:failed"), "{journal}");
    assert!(
        journal.contains("- `preflight` Review pre-collected metrics — done ("),
        "{journal}"
    );
    assert!(journal.contains("— failed ("), "{journal}");
    assert!(journal.contains("exited with status 7"), "{journal}");
    assert!(
        journal.contains("- `report` Post health summary to Matrix — skipped\n"),
        "{journal}"
    );
    assert_eq!(
        sandbox.tmux_sessions(),
        Vec::<String>::new(),
        "tmux is left clean"
    );
}

#[test]
fn escalation_ends_the_run_with_phase_escalate_and_status_3() {
    let sandbox = Sandbox::new();

    let output = run_seed(
        &sandbox,
        &[
            ("AGENT_ESCALATE_AT", "decide-actions"),
            (
                "AGENT_REASON",
                "disk at 97% and nothing safe left to delete",
            ),
        ],
    );

    assert_eq!(
        output.status.code(),
        Some(3),
        "stderr:\n{}",
        stderr(&output)
    );
    let phase = sandbox.phase("run-supervisor");
    assert_eq!(
        phase,
        "PHASE:escalate\nReason: step `decide-actions`: disk at 97% and nothing safe left to delete\n"
    );
    let journal = journal_text(&sandbox);
    assert!(journal.contains("PHASE:escalate"), "{journal}");
    assert!(journal.contains("— escalated ("), "{journal}");
    assert_eq!(
        sandbox.tmux_sessions(),
        Vec::<String>::new(),
        "tmux is left clean"
    );
}

#[test]
fn a_failed_signal_fails_the_run_with_the_agents_reason() {
    let sandbox = Sandbox::new();

    let output = run_seed(
        &sandbox,
        &[
            ("AGENT_FAIL_AT", "report"),
            ("AGENT_REASON", "Matrix is unreachable"),
        ],
    );

    assert_eq!(
        output.status.code(),
        Some(1),
        "stderr:\n{}",
        stderr(&output)
    );
    let phase = sandbox.phase("run-supervisor");
    assert_eq!(
        phase,
        "PHASE:failed\nReason: step `report`: Matrix is unreachable\n"
    );
    assert_eq!(sandbox.received().len(), 4);
}

#[test]
fn a_step_that_outlives_its_timeout_fails() {
    let sandbox = Sandbox::new();
    let formula = sandbox.work().join("slow.toml");
    std::fs::write(
        &formula,
        r#"
name = "slow"
[[steps]]
id = "quick"
description = "Say hello."
[[steps]]
id = "stuck"
description = "This one never ends."
needs = ["quick"]
timeout = "2s"
"#,
    )
    .unwrap();

    let output = sandbox
        .retort(&[
            "run",
            formula.to_str().unwrap(),
            "--agent",
            &scripted_agent(),
            "--state-dir",
            sandbox.state().to_str().unwrap(),
        ])
        .env("AGENT_HANG_AT", "stuck")
        .output()
        .unwrap();

    assert_eq!(
        output.status.code(),
        Some(1),
        "stderr:\n{}",
        stderr(&output)
    );
    let phase = sandbox.phase("slow");
    assert_eq!(
        phase,
        "PHASE:failed\nReason: step `stuck` timed out after 2s\n"
    );
    assert_eq!(
        sandbox.tmux_sessions(),
        Vec::<String>::new(),
        "tmux is left clean"
    );
}

#[test]
fn a_session_that_disappears_fails_the_step() {
    let sandbox = Sandbox::new();

    let output = run_seed(&sandbox, &[("AGENT_KILL_SESSION_AT", "decide-actions")]);

    assert_eq!(
        output.status.code(),
        Some(1),
        "stderr:\n{}",
        stderr(&output)
    );
    let phase = sandbox.phase("run-supervisor");
    assert_eq!(
        phase,
        "PHASE:failed\nReason: step `decide-actions` was not signalled: the agent's tmux session disappeared before signalling\n"
    );
}

#[test]
fn an_agent_command_that_cannot_start_fails_with_its_exit_status() {
    let sandbox = Sandbox::new();
    let formula = seed_formula();

    let output = sandbox
        .retort(&[
            "run",
            formula.to_str().unwrap(),
            "--agent",
            "no-such-agent-binary --model {{ model }}",
            "--state-dir",
            sandbox.state().to_str().unwrap(),
        ])
        .output()
        .unwrap();

    assert_eq!(
        output.status.code(),
        Some(1),
        "stderr:\n{}",
        stderr(&output)
    );
    let phase = sandbox.phase("run-supervisor");
    assert_eq!(
        phase,
        "PHASE:failed\nReason: step `preflight` was not signalled: the agent exited with status 127 before signalling\n"
    );
    let pane = std::fs::read_to_string(sandbox.run_dir().join("agent-pane.txt")).unwrap();
    assert!(
        pane.contains("no-such-agent-binary"),
        "the pane shows the shell's complaint:\n{pane}"
    );
}

#[test]
fn a_run_does_not_overlap_the_formulas_run_in_progress() {
    let sandbox = Sandbox::new();
    let state = sandbox.state();
    let mut first = seed_run(&sandbox)
        .env("AGENT_HANG_AT", "preflight")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let current = state.join("runs");
    let started = Instant::now();
    while support::tree(&current)
        .iter()
        .all(|f| !f.ends_with("current_step"))
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "first run never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let second = seed_run(&sandbox).output().unwrap();

    assert_eq!(
        second.status.code(),
        Some(75),
        "EX_TEMPFAIL: try again later"
    );
    let message = stderr(&second);
    assert!(
        message.contains(&format!(
            "another run of this formula is in progress (pid {} since ",
            first.id()
        )),
        "{message}"
    );
    let phase = std::fs::read_to_string(state.join("run-supervisor.phase")).unwrap();
    assert!(
        phase.starts_with("PHASE:running\nRun: "),
        "the phase file is the first run's: {phase}"
    );
    assert_eq!(sandbox.tmux_sessions().len(), 1, "no second session");

    // SIGTERM ends the first run cleanly: phase file, journal, no session.
    std::process::Command::new("kill")
        .arg(first.id().to_string())
        .status()
        .unwrap();
    let status = first.wait().unwrap();
    assert_eq!(status.code(), Some(143), "128 + SIGTERM");
    let phase = std::fs::read_to_string(state.join("run-supervisor.phase")).unwrap();
    assert_eq!(
        phase,
        "PHASE:failed\nReason: step `preflight`: retort was interrupted by SIGTERM\n"
    );
    assert!(journal_text(&sandbox).contains("interrupted by SIGTERM"));
    assert_eq!(
        sandbox.tmux_sessions(),
        Vec::<String>::new(),
        "tmux is left clean"
    );
}

/// A two-step formula whose own agent is the scripted agent, with `agent`
/// lines added to its `[agent]` table; each step may take 20 seconds.
fn formula_with_agent(sandbox: &Sandbox, agent: &str) -> std::path::PathBuf {
    let formula = sandbox.work().join("starting.toml");
    let command = scripted_agent();
    std::fs::write(
        &formula,
        format!(
            r#"
name = "starting"
[agent]
command = '{command}'
{agent}
[[steps]]
id = "first"
description = "The first prompt: it must not be lost."
timeout = "20s"
[[steps]]
id = "second"
description = "The second prompt."
needs = ["first"]
timeout = "20s"
"#
        ),
    )
    .unwrap();
    formula
}

fn run_formula(
    sandbox: &Sandbox,
    formula: &std::path::Path,
    env: &[(&str, &str)],
) -> std::process::Output {
    sandbox
        .retort(&[
            "run",
            formula.to_str().unwrap(),
            "--state-dir",
            sandbox.state().to_str().unwrap(),
        ])
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

#[test]
fn an_agent_slow_to_start_gets_its_first_prompt_once_it_shows_its_ready_text() {
    let sandbox = Sandbox::new();
    let formula = formula_with_agent(&sandbox, "ready = \"agent>\"");

    // The agent takes 1.5 s to start and throws away what was typed before.
    let output = run_formula(&sandbox, &formula, &[("AGENT_STARTUP_MS", "1500")]);

    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "stderr:\n{err}");
    let discarded = std::fs::read_to_string(sandbox.transcript().join("discarded.txt")).unwrap();
    assert_eq!(
        discarded, "0\n",
        "nothing was pasted before the agent was ready"
    );
    let received = sandbox.received();
    assert_eq!(received.len(), 2, "{received:?}");
    assert!(
        received[0]
            .1
            .contains("The first prompt: it must not be lost.")
    );
    let ready_line = err
        .lines()
        .find(|line| line.starts_with("retort: agent ready after "))
        .unwrap_or_else(|| panic!("no ready line in:\n{err}"));
    let seconds: f64 = ready_line
        .trim_start_matches("retort: agent ready after ")
        .trim_end_matches('s')
        .parse()
        .unwrap();
    assert!(seconds >= 1.5, "{ready_line}");
}

#[test]
fn without_a_ready_text_the_first_prompt_waits_for_the_screen_to_settle() {
    let sandbox = Sandbox::new();
    let formula = formula_with_agent(&sandbox, "");

    let output = run_formula(&sandbox, &formula, &[("AGENT_STARTUP_MS", "1500")]);

    assert_eq!(
        output.status.code(),
        Some(0),
        "stderr:\n{}",
        stderr(&output)
    );
    let discarded = std::fs::read_to_string(sandbox.transcript().join("discarded.txt")).unwrap();
    assert_eq!(
        discarded, "0\n",
        "nothing was pasted before the agent was ready"
    );
    assert_eq!(sandbox.received().len(), 2);
}

#[test]
fn an_agent_that_never_shows_its_ready_text_fails_the_run_with_its_screen() {
    let sandbox = Sandbox::new();
    let formula = formula_with_agent(&sandbox, "ready = \"Welcome back\"\nready_timeout = \"1s\"");

    let output = run_formula(&sandbox, &formula, &[]);

    assert_eq!(
        output.status.code(),
        Some(1),
        "stderr:\n{}",
        stderr(&output)
    );
    let phase = sandbox.phase("starting");
    assert!(
        phase.starts_with(
            "PHASE:failed\nReason: step `first`: the agent was not ready: its screen did not show `Welcome back` (its ready text) within 1s; it last showed `agent>` (whole screen in "
        ),
        "{phase}"
    );
    assert!(sandbox.received().is_empty(), "no prompt was pasted");
    let pane = std::fs::read_to_string(sandbox.run_dir().join("agent-pane.txt")).unwrap();
    assert!(
        pane.contains("scripted agent (a stand-in for an LLM agent)"),
        "{pane}"
    );
    assert_eq!(
        sandbox.tmux_sessions(),
        Vec::<String>::new(),
        "tmux is left clean"
    );
}

#[test]
fn a_session_tmux_cannot_start_is_a_failed_run_with_its_journal_and_summary() {
    let sandbox = Sandbox::new();
    // tmux cannot make its socket under a file.
    let not_a_dir = sandbox.path("not-a-dir");
    std::fs::write(&not_a_dir, "").unwrap();

    let output = seed_run(&sandbox)
        .env("TMUX_TMPDIR", &not_a_dir)
        .output()
        .unwrap();

    assert_eq!(
        output.status.code(),
        Some(1),
        "stderr:\n{}",
        stderr(&output)
    );
    let phase = sandbox.phase("run-supervisor");
    assert!(
        phase.starts_with("PHASE:failed\nReason: cannot start the agent's tmux session: "),
        "{phase}"
    );
    // The run is recorded like any other: the journal, and run.json, by
    // which a later run knows whose directory it is.
    let journal = journal_text(&sandbox);
    assert!(journal.contains("PHASE:failed"), "{journal}");
    assert!(
        journal.contains("- `preflight` Review pre-collected metrics — skipped"),
        "{journal}"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sandbox.run_dir().join("run.json")).unwrap())
            .unwrap();
    assert_eq!(summary["phase"], "failed");
    assert_eq!(summary["formula"], "run-supervisor");
    assert_eq!(summary["steps"].as_array().map(Vec::len), Some(5));
}
