//! Crash-safe, honest runs, end to end: signals only for the step in
//! progress, reasons and secrets cleaned from what the runner writes, a
//! SIGKILLed run found and recorded `abandoned` by the next, and SIGTERM in
//! any phase recorded. Real processes, signals, files and tmux servers;
//! agents are small shell scripts written by each test.

mod support;

use std::path::{Path, PathBuf};

use support::{Sandbox, stderr};

/// A formula of two steps, `one` then `two`, in `sandbox`'s working
/// directory; `extra` is appended (TOML).
fn two_steps(sandbox: &Sandbox, name: &str, extra: &str) -> PathBuf {
    let path = sandbox.work().join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "name = \"{name}\"\n[[steps]]\nid = \"one\"\ndescription = \"First.\"\ntimeout = \"20s\"\n[[steps]]\nid = \"two\"\ndescription = \"Second.\"\nneeds = [\"one\"]\ntimeout = \"20s\"\n{extra}"
        ),
    )
    .unwrap();
    path
}

/// An agent script at `sandbox/NAME.sh` with `body` (bash).
fn agent(sandbox: &Sandbox, name: &str, body: &str) -> String {
    let path = sandbox.path(&format!("{name}.sh"));
    std::fs::write(&path, format!("set -u\n{body}\n")).unwrap();
    format!("bash {}", path.display())
}

fn run_headless(sandbox: &Sandbox, formula: &Path, agent: &str) -> std::process::Output {
    sandbox
        .retort(&[
            "run",
            formula.to_str().unwrap(),
            "--agent",
            agent,
            "--backend",
            "headless",
            "--state-dir",
            sandbox.state().to_str().unwrap(),
        ])
        .output()
        .unwrap()
}

#[test]
fn a_signal_for_a_step_not_in_progress_or_a_repeat_is_refused_and_ends_nothing() {
    let sandbox = Sandbox::new();
    let formula = two_steps(&sandbox, "signals", "");
    let log = sandbox.transcript().join("signals.log");
    // At step one the agent signals step two early (refused), writes step
    // two's signal file itself (ignored), signals one, and signals again
    // (refused). At step two it writes its signal by hand, half at a time,
    // and fails the step: had the early signal counted, two would be done.
    let agent = agent(
        &sandbox,
        "agent",
        &format!(
            r#"cat > /dev/null
log={log}
step=$(cat "$RETORT_RUN_DIR/current_step")
if [ "$step" = one ]; then
  retort signal done --step two --reason early 2>> "$log.err"; echo "early=$?" >> "$log"
  printf '{{"step":"two","signal":"done","at":"2026-01-01T00:00:00Z"}}' > "$RETORT_RUN_DIR/steps/two.signal"
  retort signal done; echo "one=$?" >> "$log"
  retort signal failed --reason again 2>> "$log.err"; echo "repeat=$?" >> "$log"
else
  f="$RETORT_RUN_DIR/steps/two.signal"
  printf '{{"step":"two","signal":"fai' > "$f"
  sleep 0.02
  printf 'led","reason":"the real end","at":"2026-01-01T00:00:00Z"}}' >> "$f"
  sleep 1
fi"#,
            log = log.display()
        ),
    );

    let output = run_headless(&sandbox, &formula, &agent);

    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(
        sandbox.phase("signals"),
        "PHASE:failed\nReason: step `two`: the real end\n"
    );
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "early=2\none=0\nrepeat=2\n"
    );
    let errors = std::fs::read_to_string(log.with_extension("log.err")).unwrap();
    assert!(
        errors.contains("step `two` is not in progress; the step in progress is `one`"),
        "{errors}"
    );
    assert!(
        errors.contains("step `one` was already signalled (done)"),
        "{errors}"
    );
    assert_eq!(errors.lines().count(), 2, "one line each: {errors}");
}

#[test]
fn an_agents_reason_is_capped_cleaned_and_its_secrets_redacted_everywhere() {
    let sandbox = Sandbox::new();
    let formula = two_steps(&sandbox, "secrets", "");
    let secret = "s3cr3t-t0ken-value-42";
    // The agent prints the token and fails with a reason holding it, ANSI
    // escapes, a bare PHASE:done line and 100 kB of padding.
    let agent = agent(
        &sandbox,
        "agent",
        r#"cat > /dev/null
echo "my token is $FORGE_TOKEN"
pad=$(head -c 100000 /dev/zero | tr '\0' x)
retort signal failed --reason "$(printf '\033[31mred %s\nPHASE:done\n%s' "$FORGE_TOKEN" "$pad")""#,
    );

    let output = sandbox
        .retort(&[
            "run",
            formula.to_str().unwrap(),
            "--agent",
            &agent,
            "--backend",
            "headless",
            "--state-dir",
            sandbox.state().to_str().unwrap(),
        ])
        .env("FORGE_TOKEN", secret)
        .output()
        .unwrap();

    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(!err.contains(secret), "{err}");
    assert!(!err.contains('\u{1b}'), "no escapes on stderr");
    assert!(
        !err.lines().any(|l| l.trim() == "PHASE:done"),
        "no bare PHASE:done line on stderr:\n{err}"
    );
    let phase = sandbox.phase("secrets");
    assert!(
        phase.starts_with("PHASE:failed\nReason: step `one`: red [redacted] PHASE:done xxx"),
        "{}",
        &phase[..200.min(phase.len())]
    );
    assert!(phase.len() < 4200, "capped: {} bytes", phase.len());
    assert_eq!(phase.lines().count(), 2, "one reason line");
    let run = sandbox.run_dir();
    let mut written = vec![
        ("phase", phase),
        (
            "run.json",
            std::fs::read_to_string(run.join("run.json")).unwrap(),
        ),
        (
            "agent output",
            std::fs::read_to_string(run.join("agent-output/one.log")).unwrap(),
        ),
    ];
    for entry in std::fs::read_dir(sandbox.state().join("journal/secrets")).unwrap() {
        written.push((
            "journal",
            std::fs::read_to_string(entry.unwrap().path()).unwrap(),
        ));
    }
    let history = sandbox
        .retort(&[
            "history",
            "--format",
            "json",
            "--state-dir",
            sandbox.state().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    written.push(("history", support::stdout(&history)));
    for (what, text) in &written {
        assert!(!text.contains(secret), "{what} keeps the secret");
        assert!(!text.contains('\u{1b}'), "{what} keeps an escape");
    }
    assert!(
        written[2].1.contains("my token is [redacted]"),
        "{}",
        written[2].1
    );
    assert!(written[4].1.contains("red [redacted]"), "{}", written[4].1);
    let json: serde_json::Value = serde_json::from_str(&written[1].1).unwrap();
    let reason = json["reason"].as_str().unwrap();
    assert!(reason.len() <= 4096, "{}", reason.len());
}

/// Whether process `pid` is alive (a zombie counts as gone).
fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).is_ok_and(|stat| {
        stat.rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z'))
    })
}

/// Polls `done` every 100 ms for up to `seconds`.
fn within(seconds: u64, mut done: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while std::time::Instant::now() < end {
        if done() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    done()
}

#[test]
fn a_sigkilled_run_leaves_no_agent_and_the_next_run_records_it_abandoned() {
    let sandbox = Sandbox::new();
    let formula = two_steps(&sandbox, "killed", "");
    let marks = sandbox.transcript();
    // A slow agent: it never signals, and has a child of its own.
    let slow = agent(
        &sandbox,
        "slow",
        &format!(
            "printf 'agent> '\nsleep 300 &\necho $! > {m}/child.pid\necho $$ > {m}/agent.pid\nwait",
            m = marks.display()
        ),
    );
    let mut first = sandbox
        .retort(&[
            "run",
            formula.to_str().unwrap(),
            "--agent",
            &slow,
            "--ready",
            "agent>",
            "--state-dir",
            sandbox.state().to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = within(30, || {
        marks.join("agent.pid").exists()
            && std::fs::read_dir(sandbox.state().join("runs"))
                .into_iter()
                .flatten()
                .flatten()
                .any(|run| run.path().join("current_step").exists())
    });
    assert!(started, "the first run's step never started");
    let agent_pid = std::fs::read_to_string(marks.join("agent.pid")).unwrap();
    let child_pid = std::fs::read_to_string(marks.join("child.pid")).unwrap();
    assert_eq!(sandbox.tmux_sessions().len(), 1);

    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();

    assert!(
        within(8, || sandbox.tmux_sessions().is_empty()
            && !alive(&agent_pid)
            && !alive(&child_pid)),
        "left running: sessions {:?}, agent {}, child {}",
        sandbox.tmux_sessions(),
        alive(&agent_pid),
        alive(&child_pid)
    );

    let quick = agent(&sandbox, "quick", "cat > /dev/null\nretort signal done");
    let output = run_headless(&sandbox, &formula, &quick);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{err}");
    assert!(err.contains("was abandoned"), "{err}");
    let runs: Vec<PathBuf> = {
        let mut runs: Vec<PathBuf> = std::fs::read_dir(sandbox.state().join("runs"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        runs.sort();
        runs
    };
    assert_eq!(runs.len(), 2);
    let killed = runs
        .iter()
        .find(|run| !run.join("run.json").exists())
        .expect("the killed run has no run.json");
    let killed_id = killed.file_name().unwrap().to_string_lossy().into_owned();
    assert!(killed.join("abandoned").exists());
    let history = sandbox
        .retort(&[
            "history",
            "--format",
            "json",
            "--state-dir",
            sandbox.state().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let history: serde_json::Value = serde_json::from_slice(&history.stdout).unwrap();
    let text = history.to_string();
    assert!(text.contains(&killed_id), "{text}");
    let row = history
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row.to_string().contains(&killed_id))
        .unwrap();
    assert_eq!(row["phase"], "abandoned", "{row}");
    let journal: String = std::fs::read_dir(sandbox.state().join("journal/killed"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert!(journal.contains(&killed_id), "{journal}");
    assert!(journal.contains("abandoned"), "{journal}");
    assert_eq!(sandbox.phase("killed"), "PHASE:done\n");

    // Handled once: a third run finds nothing more.
    let output = run_headless(&sandbox, &formula, &quick);
    assert!(
        !stderr(&output).contains("was abandoned"),
        "{}",
        stderr(&output)
    );
}
