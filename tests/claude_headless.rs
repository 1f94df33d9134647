//! `retort run --backend headless` with the real Claude Code CLI
//! (`tests/claude-code/install.sh`) against the testkit's scripted model:
//! one stream-json process a session, each step a turn, and what each
//! turn's `result` frame says: tokens and cost, 429s, denied commands, a
//! turn that ends without a signal, budgets. No `--agent`: the formula's
//! own `claude --model sonnet` is found first on the machine's PATH.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use retort_runner::holds::usd;
use retort_testkit::{ClaudeCode, Machine, ModelServer, Reply, Rule, Scenario, Setup, Usage, When};
use serde_json::Value;
use support::{retort, seed_formula, stderr};

/// Sonnet's prices as Claude Code 2.1.197 computes `total_cost_usd`
/// (`--model sonnet` is `claude-sonnet-5`), USD per token: input, output,
/// cache write, cache read.
const SONNET: [f64; 4] = [3e-6, 15e-6, 3.75e-6, 0.3e-6];

fn cost(usage: Usage) -> f64 {
    usage.input_tokens as f64 * SONNET[0]
        + usage.output_tokens as f64 * SONNET[1]
        + usage.cache_creation_input_tokens as f64 * SONNET[2]
        + usage.cache_read_input_tokens as f64 * SONNET[3]
}

/// A machine where Claude Code was used before, with `claude` (the real
/// CLI) first on its PATH, and a state directory.
struct Site {
    machine: Machine,
    server: ModelServer,
    state: tempfile::TempDir,
}

impl Site {
    fn new(scenario: Scenario) -> Site {
        let claude = ClaudeCode::find().unwrap();
        let machine = Machine::new(Setup::used_before()).unwrap();
        machine
            .add_command(
                "claude",
                &format!("#!/bin/sh\nexec '{}' \"$@\"\n", claude.bin().display()),
            )
            .unwrap();
        Site {
            machine,
            server: ModelServer::start(scenario).unwrap(),
            state: tempfile::tempdir().unwrap(),
        }
    }

    /// `retort ARGS` in the machine's working folder with exactly the
    /// machine's environment (HOME, PATH, the scripted model's URL and key).
    fn retort(&self, args: &[&str]) -> Command {
        let mut command = Command::new(retort());
        command
            .args(args)
            .args(["--state-dir", self.state.path().to_str().unwrap()])
            .current_dir(self.machine.work_dir())
            .env_clear()
            .envs(self.machine.env(&self.server))
            .env("TMUX_TMPDIR", self.machine.root());
        command
    }

    /// `retort run FORMULA --backend headless`, timed.
    fn run(&self, formula: &Path) -> (Output, Duration) {
        let clock = Instant::now();
        let output = self
            .retort(&["run", formula.to_str().unwrap(), "--backend", "headless"])
            .output()
            .unwrap();
        (output, clock.elapsed())
    }

    fn phase(&self, name: &str) -> String {
        std::fs::read_to_string(self.state.path().join(format!("{name}.phase"))).unwrap()
    }

    fn runs(&self) -> Vec<PathBuf> {
        let mut runs: Vec<PathBuf> = std::fs::read_dir(self.state.path().join("runs"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        runs.sort();
        runs
    }

    fn run_json(&self, run: &Path) -> Value {
        serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).unwrap()).unwrap()
    }

    /// A formula of `steps` steps (`Step 1`, …) on sonnet, with `extra`
    /// TOML before its steps.
    fn formula(&self, name: &str, steps: usize, extra: &str) -> PathBuf {
        let mut text = format!("name = \"{name}\"\nmodel = \"sonnet\"\n{extra}\n");
        for n in 1..=steps {
            text.push_str(&format!(
                "[[steps]]\nid = \"s{n}\"\ndescription = \"Step {n}: check the disks.\"\n"
            ));
            if n > 1 {
                text.push_str(&format!("needs = [\"s{}\"]\n", n - 1));
            }
        }
        let path = self.machine.root().join(format!("{name}.toml"));
        std::fs::write(&path, text).unwrap();
        path
    }
}

const CALL: Usage = Usage::new(1000, 50).with_cache(200, 4000);
const AFTER: Usage = Usage::new(1200, 20);

/// Every step: the agent runs `retort signal done`, then says so.
fn signalling() -> Scenario {
    Scenario::new()
        .rule(Rule::new(When::AfterToolResult, Reply::text("Signalled.")).usage(AFTER))
        .rule(
            Rule::new(
                When::prompt_contains("retort signal done"),
                Reply::bash("retort signal done"),
            )
            .usage(CALL),
        )
}

#[test]
fn the_seed_formula_runs_headless_on_claude_code_and_records_tokens_and_cost() {
    let site = Site::new(signalling());

    let (output, took) = site.run(&seed_formula());

    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "stderr:\n{err}");
    assert_eq!(site.phase("run-supervisor"), "PHASE:done\n");
    assert!(
        err.contains("headless: one process per session, stream-json"),
        "{err}"
    );
    eprintln!("seed formula, 5 steps, one Claude Code process: {took:?}");

    // One process, five turns: each step two model calls.
    assert_eq!(site.server.message_requests().len(), 10);
    let run = &site.runs()[0];
    let summary = site.run_json(run);
    let per_step = CALL.input_tokens + AFTER.input_tokens;
    let step_cost = cost(CALL) + cost(AFTER);
    let steps = summary["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 5);
    for step in steps {
        assert_eq!(step["outcome"], "done", "{step}");
        let usage = &step["usage"];
        assert_eq!(usage["input_tokens"], per_step, "{step}");
        assert_eq!(usage["output_tokens"], 70, "{step}");
        assert_eq!(usage["cache_creation_input_tokens"], 200, "{step}");
        assert_eq!(usage["cache_read_input_tokens"], 4000, "{step}");
        let usd = usage["cost_usd"].as_f64().unwrap();
        assert!((usd - step_cost).abs() < 1e-9, "{usd} ≠ {step_cost}");
    }
    let total = summary["usage"]["cost_usd"].as_f64().unwrap();
    assert!((total - 5.0 * step_cost).abs() < 1e-9, "{total}");
    assert_eq!(summary["usage"]["input_tokens"], 5 * per_step);
    assert!(
        err.contains(&format!("out, ${:.4})", 5.0 * step_cost)),
        "summary line: {err}"
    );

    // The settings grant `retort signal` and the phase-file echoes only.
    let settings: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("claude-settings.json")).unwrap())
            .unwrap();
    assert_eq!(settings["permissions"]["allow"][0], "Bash(retort signal:*)");
    assert!(settings.get("hooks").is_none(), "{settings}");
    let log = std::fs::read_to_string(run.join("agent-output/report.log")).unwrap();
    assert!(log.contains("\"type\":\"result\""), "{log}");

    // The journal and the history say the same.
    let journal = std::fs::read_dir(site.state.path().join("journal/run-supervisor"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let journal = std::fs::read_to_string(journal).unwrap();
    assert!(
        journal.contains(&format!(
            "- Usage: {} in, 350 out, cache 1000 written / 20000 read tokens; ${:.4}",
            5 * CALL.input_tokens + 5 * AFTER.input_tokens,
            5.0 * step_cost
        )),
        "{journal}"
    );
    let db = rusqlite_cost(site.state.path(), summary["run_id"].as_str().unwrap());
    assert!((db - 5.0 * step_cost).abs() < 1e-9, "{db}");
}

/// The cost the run history recorded for `run_id`.
fn rusqlite_cost(state: &Path, run_id: &str) -> f64 {
    let history = retort_journal::History::open(&state.join("history.sqlite")).unwrap();
    history
        .spend_of_run(run_id)
        .unwrap()
        .unwrap()
        .cost_usd
        .unwrap()
}

#[test]
fn a_429_ends_the_step_rate_limited_and_later_runs_keep_the_gate_closed() {
    let site = Site::new(
        Scenario::new()
            .rule(Rule::new(When::AfterToolResult, Reply::text("Signalled.")).usage(AFTER))
            .when(When::prompt_contains("Step 2"), Reply::rate_limited(3600))
            .rule(
                Rule::new(
                    When::prompt_contains("retort signal done"),
                    Reply::bash("retort signal done"),
                )
                .usage(CALL),
            ),
    );
    let formula = site.formula("limited", 3, "");

    let (output, took) = site.run(&formula);

    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "stderr:\n{err}");
    assert!(took < Duration::from_secs(60), "{took:?}");
    eprintln!("429 to rate-limited: {took:?}");
    let phase = site.phase("limited");
    assert!(
        phase.starts_with("PHASE:failed\nReason: step `s2`: rate-limited until "),
        "{phase}"
    );
    assert!(phase.contains("Request rejected (429)"), "{phase}");
    let summary = site.run_json(&site.runs()[0]);
    assert_eq!(summary["steps"][1]["outcome"], "rate-limited");
    assert_eq!(summary["steps"][2]["outcome"], "skipped");
    let holds: Value = serde_json::from_str(
        &std::fs::read_to_string(site.state.path().join("holds.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(holds[0]["agent"], "claude-code");
    let until = chrono::DateTime::parse_from_rfc3339(holds[0]["until"].as_str().unwrap()).unwrap();
    let hour = until.signed_duration_since(chrono::Utc::now());
    assert!(hour > chrono::Duration::minutes(58) && hour <= chrono::Duration::hours(1));

    // The dry run shows the hold; the next run of any formula on Claude
    // Code starts no agent until it ends.
    let requests = site.server.message_requests().len();
    let dry = site
        .retort(&["run", seed_formula().to_str().unwrap(), "--dry-run"])
        .output()
        .unwrap();
    let plan = String::from_utf8_lossy(&dry.stdout);
    assert!(plan.contains("  hold        rate-limited until "), "{plan}");
    let (output, _) = site.run(&seed_formula());
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "stderr:\n{err}");
    assert!(
        err.contains("retort: gate closed (always): rate-limited until "),
        "{err}"
    );
    assert_eq!(
        site.server.message_requests().len(),
        requests,
        "no agent started"
    );
    let second = site.run_json(&site.runs()[1]);
    assert_eq!(second["gate"]["open"], false);
    assert_eq!(second["steps"], serde_json::json!([]));
}

#[test]
fn a_denied_command_fails_the_step_at_once_naming_it() {
    let site = Site::new(
        Scenario::new()
            .when(When::AfterToolResult, Reply::text("I could not clean up."))
            .when(
                When::prompt_contains("Step 1"),
                Reply::bash("docker system prune -f"),
            ),
    );
    let formula = site.formula("denied", 2, "");

    let (output, took) = site.run(&formula);

    assert_eq!(
        output.status.code(),
        Some(1),
        "stderr:\n{}",
        stderr(&output)
    );
    assert!(took < Duration::from_secs(60), "{took:?}");
    eprintln!("denial to failure: {took:?}");
    assert_eq!(
        site.phase("denied"),
        "PHASE:failed\nReason: step `s1`: the agent was denied permission for Bash `docker system prune -f` and did not signal; retort grants only `retort signal` and `[agent] allowed_tools` (to allow it: allowed_tools = [\"Bash(docker system prune -f)\"])\n"
    );
    // No reminder after a denial: two model calls, the call and its reply.
    assert_eq!(site.server.message_requests().len(), 2);
}

#[test]
fn a_turn_without_a_signal_gets_one_reminder_then_fails() {
    let site = Site::new(
        Scenario::new()
            .when(
                When::prompt_contains("You have not signalled"),
                Reply::text("Still thinking about it."),
            )
            .when(
                When::prompt_contains("Step 1"),
                Reply::text("The disks look fine."),
            ),
    );
    let formula = site.formula("quiet", 2, "");

    let (output, took) = site.run(&formula);

    assert_eq!(
        output.status.code(),
        Some(1),
        "stderr:\n{}",
        stderr(&output)
    );
    eprintln!("unsignalled turn, reminder, failure: {took:?}");
    let phase = site.phase("quiet");
    assert!(
        phase.starts_with("PHASE:failed\nReason: step `s1`: the agent stopped without signalling"),
        "{phase}"
    );
    assert!(phase.contains("Still thinking about it."), "{phase}");
    let requests = site.server.message_requests();
    assert_eq!(requests.len(), 2, "the step, then the reminder");
    assert!(
        requests[1]
            .messages()
            .last_user_text()
            .contains("run `retort signal done` now")
    );
}

#[test]
fn a_run_that_reaches_its_budget_stops_and_the_days_budget_closes_the_gate() {
    let site = Site::new(signalling());
    let step_cost = cost(CALL) + cost(AFTER);
    // Two steps reach the run's budget with their last replies (the second
    // step is signalled before); what they spent is past the day's budget.
    let run_usd = 1.9 * step_cost;
    let formula = site.formula(
        "thrifty",
        3,
        &format!(
            "[budget]\nrun_usd = {run_usd}\nday_usd = {}\n",
            1.95 * step_cost
        ),
    );

    let (output, _) = site.run(&formula);

    assert_eq!(
        output.status.code(),
        Some(1),
        "stderr:\n{}",
        stderr(&output)
    );
    assert_eq!(
        site.phase("thrifty"),
        format!(
            "PHASE:failed\nReason: budget reached: {} of {} (`[budget] run_usd`)\n",
            usd(2.0 * step_cost),
            usd(run_usd)
        )
    );
    let summary = site.run_json(&site.runs()[0]);
    let outcomes: Vec<&str> = summary["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["done", "done", "skipped"]);
    assert_eq!(site.server.message_requests().len(), 4);

    let (output, _) = site.run(&formula);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "stderr:\n{err}");
    assert!(err.contains("over the day's budget until "), "{err}");
    assert!(err.contains(" 00:00 UTC"), "{err}");
    assert_eq!(site.server.message_requests().len(), 4, "no agent started");

    // `retort status` says so too, with what was spent.
    let status = site
        .retort(&["status", "--format", "json"])
        .output()
        .unwrap();
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    let budget = &status["formulas"][0]["day_budget"];
    assert!(
        (budget["spent_usd"].as_f64().unwrap() - 2.0 * step_cost).abs() < 1e-9,
        "{budget}"
    );
    assert!(
        budget["held_until"]
            .as_str()
            .is_some_and(|t| t.contains("T00:00:00")),
        "{budget}"
    );
    let text = site.retort(&["status"]).output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains(&format!(
            "budget     {} spent today (UTC) of {}: the gate stays closed until ",
            usd(2.0 * step_cost),
            usd(1.95 * step_cost)
        )),
        "{text}"
    );
}

#[test]
fn a_turn_that_runs_past_the_budget_is_stopped_with_its_process_group() {
    let site = Site::new(
        Scenario::new().rule(
            Rule::new(When::prompt_contains("Step 1"), Reply::bash("sleep 31.7"))
                .usage(Usage::new(1000, 50)),
        ),
    );
    let formula = site.formula(
        "spendy",
        2,
        "[agent]\nallowed_tools = [\"Bash(sleep 31.7)\"]\n[budget]\nrun_usd = 0.001\n",
    );

    let (output, took) = site.run(&formula);

    assert_eq!(
        output.status.code(),
        Some(1),
        "stderr:\n{}",
        stderr(&output)
    );
    assert!(took < Duration::from_secs(20), "{took:?}");
    eprintln!("a turn past the budget stopped after {took:?}");
    // The reply's first frame: 1000 input tokens and 1 output token.
    assert_eq!(
        site.phase("spendy"),
        "PHASE:failed\nReason: step `s1`: budget reached: $0.003 of $0.001 (`[budget] run_usd`), during the agent's turn\n"
    );
    // The agent's tool, in its process group, is gone with it.
    let sleeping = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .filter(|cmdline| cmdline.as_slice() == b"sleep\x0031.7\x00")
        .count();
    assert_eq!(sleeping, 0, "the agent's `sleep 31.7` outlived the run");
}

#[test]
fn a_phase_line_the_agent_writes_to_its_phase_file_ends_the_step() {
    // The seed formula's way: the agent writes `PHASE:escalate` to
    // $PHASE_FILE (a command its settings allow) instead of running
    // `retort signal`.
    let site = Site::new(
        Scenario::new()
            .when(When::AfterToolResult, Reply::text("Escalated."))
            .when(
                When::prompt_contains("Step 1"),
                Reply::bash("echo 'PHASE:escalate' > \"$PHASE_FILE\""),
            ),
    );
    let formula = site.formula("phased", 2, "");

    let (output, took) = site.run(&formula);

    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(3), "stderr:\n{err}");
    eprintln!("phase line to escalation: {took:?}");
    let phase = site.phase("phased");
    assert!(
        phase.starts_with("PHASE:escalate") && phase.contains("step `s1`"),
        "{phase}"
    );
    let run = &site.runs()[0];
    let steps = site.run_json(run)["steps"].clone();
    assert_eq!(steps[0]["outcome"], "escalated", "{steps}");
    assert_eq!(steps[1]["outcome"], "skipped", "{steps}");
    assert_eq!(
        std::fs::read_to_string(run.join("agent.phase")).unwrap(),
        "PHASE:escalate\n"
    );
    // No reminder: the phase line was the step's end.
    assert!(
        site.server.message_requests().iter().all(|r| !r
            .messages()
            .last_user_text()
            .contains("You have not signalled")),
        "reminded"
    );
}

#[test]
fn in_parallel_sessions_a_phase_line_ends_only_its_sessions_step() {
    // Two independent steps, each in a stream-json process of its own: s2's
    // agent (the second session's) writes `PHASE:escalate` to its
    // $PHASE_FILE, s1's signals done.
    let site = Site::new(
        Scenario::new()
            .when(When::AfterToolResult, Reply::text("Over."))
            .when(
                When::prompt_contains("Step 2"),
                Reply::bash("echo 'PHASE:escalate' > \"$PHASE_FILE\""),
            )
            .when(
                When::prompt_contains("Step 1"),
                Reply::bash("retort signal done"),
            ),
    );
    let formula = site.machine.root().join("branches.toml");
    std::fs::write(
        &formula,
        "name = \"branches\"\nmodel = \"sonnet\"\n\
         [[steps]]\nid = \"s1\"\ndescription = \"Step 1: check the disks.\"\n\
         [[steps]]\nid = \"s2\"\ndescription = \"Step 2: check the load.\"\n",
    )
    .unwrap();

    let (output, _) = site.run(&formula);

    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(3), "stderr:\n{err}");
    let run = &site.runs()[0];
    let steps = site.run_json(run)["steps"].clone();
    assert_eq!(steps[0]["id"], "s1", "{steps}");
    assert_eq!(steps[0]["outcome"], "done", "{steps}");
    assert_eq!(steps[1]["outcome"], "escalated", "{steps}");
    assert!(
        steps[1]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("step `s2`"),
        "{steps}"
    );
    // The second session's phase file; the first session's agent wrote none.
    assert_eq!(
        std::fs::read_to_string(run.join("agent-2.phase")).unwrap(),
        "PHASE:escalate\n"
    );
    assert!(!run.join("agent.phase").exists());
}
