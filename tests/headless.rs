//! `retort run --backend headless`, end to end: no tmux, one agent process
//! per step with its prompt on standard input, as agents' print modes run.
//! The agent is `tests/agent/scripted-agent.sh`, the only stand-in.

mod support;

use support::{Sandbox, scripted_agent, seed_formula, stderr};

fn run_headless(
    sandbox: &Sandbox,
    formula: &std::path::Path,
    env: &[(&str, &str)],
) -> std::process::Output {
    sandbox
        .retort(&[
            "run",
            formula.to_str().unwrap(),
            "--agent",
            &scripted_agent(),
            "--backend",
            "headless",
            "--state-dir",
            sandbox.state().to_str().unwrap(),
        ])
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// Whether process `pid` is still alive 2 seconds from now (an ended
/// process may take a moment to be reaped).
fn alive(pid: &str) -> bool {
    let proc = std::path::Path::new("/proc").join(pid.trim());
    for _ in 0..40 {
        if !proc.exists() {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    true
}

#[test]
fn the_seed_formula_runs_headless_one_process_per_step_without_tmux() {
    let sandbox = Sandbox::new();

    let output = run_headless(&sandbox, &seed_formula(), &[]);

    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "stderr:\n{err}");
    assert!(err.contains("headless: one process per step"), "{err}");
    let phase = sandbox.phase("run-supervisor");
    assert_eq!(phase, "PHASE:done\n");

    // Each step's prompt reached a process of its own, in order, and the
    // steps of the one session are numbered for `--continue`-style use.
    let received: Vec<String> = sandbox
        .received()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(
        received,
        [
            "1-preflight.txt",
            "2-health-assessment.txt",
            "3-decide-actions.txt",
            "4-report.txt",
            "5-journal.txt"
        ]
    );
    let steps = std::fs::read_to_string(sandbox.transcript().join("headless-steps.txt")).unwrap();
    assert_eq!(
        steps,
        "preflight 1\nhealth-assessment 2\ndecide-actions 3\nreport 4\njournal 5\n"
    );
    // The first prompt carries the formula's header, as in a session.
    assert!(
        sandbox.received()[0]
            .1
            .contains("Factory health monitoring")
    );

    // Each step's output is kept, and no tmux server was ever started.
    let run = sandbox.run_dir();
    let log = std::fs::read_to_string(run.join("agent-output/report.log")).unwrap();
    assert!(
        log.contains("scripted agent (a stand-in for an LLM agent)"),
        "{log}"
    );
    assert!(log.contains("signalled done"), "{log}");
    assert_eq!(sandbox.tmux_sessions(), Vec::<String>::new());
    assert!(!run.join("agent-pane.txt").exists());
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).unwrap()).unwrap();
    assert_eq!(summary["backend"], "headless");
    assert_eq!(summary["sessions"], serde_json::json!([]));
}

#[test]
fn a_headless_agent_that_exits_without_signalling_fails_its_step() {
    let sandbox = Sandbox::new();

    let output = run_headless(
        &sandbox,
        &seed_formula(),
        &[
            ("AGENT_EXIT_AT", "decide-actions"),
            ("AGENT_EXIT_STATUS", "9"),
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
        "PHASE:failed\nReason: step `decide-actions` was not signalled: the agent exited with status 9 before signalling\n"
    );
    assert_eq!(sandbox.received().len(), 3, "no prompt after the failure");
}

#[test]
fn a_headless_agent_that_escalates_ends_the_run_with_its_reason() {
    let sandbox = Sandbox::new();

    let output = run_headless(
        &sandbox,
        &seed_formula(),
        &[
            ("AGENT_ESCALATE_AT", "health-assessment"),
            ("AGENT_REASON", "disk at 97% on the forge host"),
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
        "PHASE:escalate\nReason: step `health-assessment`: disk at 97% on the forge host\n"
    );
}

#[test]
fn a_hung_headless_agent_times_out_and_its_whole_process_group_is_ended() {
    let sandbox = Sandbox::new();
    let formula = sandbox.work().join("slow.toml");
    std::fs::write(
        &formula,
        "name = \"slow\"\n[[steps]]\nid = \"quick\"\ndescription = \"Say hello.\"\n[[steps]]\nid = \"stuck\"\ndescription = \"This one never ends.\"\nneeds = [\"quick\"]\ntimeout = \"2s\"\n",
    )
    .unwrap();

    let output = run_headless(&sandbox, &formula, &[("AGENT_HANG_AT", "stuck")]);

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
    // The agent's own child, which would sleep for ever, is gone with it.
    let child = std::fs::read_to_string(sandbox.transcript().join("hang-pid.txt")).unwrap();
    assert!(!alive(&child), "process {} outlived the run", child.trim());
}
