//! Notifications end to end: `retort run` with `[[notify]]` tables and the
//! scripted agent, against a loopback webhook server and a real Synapse
//! homeserver (the notify crate's harness, `crates/notify/tests/synapse`).
//! Two identical escalations within `repeat` notify once; an undelivered
//! message is retried by the next run; `retort show` lists deliveries;
//! `retort check` refuses a bad table.

mod support;
#[path = "../crates/notify/tests/synapse/mod.rs"]
#[allow(dead_code)]
mod synapse;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use support::{Sandbox, scripted_agent, stderr, stdout};

/// A loopback HTTP server that records each request's body and answers
/// with the next status of its script (200 once the script is used up).
struct Hook {
    port: u16,
    bodies: Arc<Mutex<Vec<Value>>>,
}

impl Hook {
    fn start(statuses: &[u16]) -> Hook {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(statuses.to_vec()));
        let seen = Arc::clone(&bodies);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some((name, value)) = line.split_once(':')
                        && name.eq_ignore_ascii_case("content-length")
                    {
                        length = value.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                seen.lock()
                    .unwrap()
                    .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
                let status = {
                    let mut script = script.lock().unwrap();
                    if script.is_empty() {
                        200
                    } else {
                        script.remove(0)
                    }
                };
                let mut stream = stream;
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
                );
            }
        });
        Hook { port, bodies }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks/secret-path", self.port)
    }

    fn bodies(&self) -> Vec<Value> {
        self.bodies.lock().unwrap().clone()
    }
}

/// A two-step formula whose first step the scripted agent escalates (with
/// `AGENT_ESCALATE_AT=look`), and the given `[[notify]]` tables.
fn formula(sandbox: &Sandbox, notify: &str) -> PathBuf {
    let path = sandbox.work().join("watch.toml");
    let text = format!(
        r#"name = "watch"
description = "Looks at the factory"

[[steps]]
id = "look"
title = "Look"
description = "Look at the factory."

[[steps]]
id = "fix"
title = "Fix"
description = "Fix it."
needs = ["look"]

{notify}
"#
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn run(sandbox: &Sandbox, formula: &Path, escalate: bool, env: &[(&str, &str)]) -> Output {
    let mut command = sandbox.retort(&[
        "run",
        formula.to_str().unwrap(),
        "--backend",
        "headless",
        "--agent",
        &scripted_agent(),
        "--state-dir",
        sandbox.state().to_str().unwrap(),
        "--quiet",
    ]);
    if escalate {
        command
            .env("AGENT_ESCALATE_AT", "look")
            .env("AGENT_REASON", "the disk cannot be freed safely");
    }
    command.envs(env.iter().copied());
    command.output().unwrap()
}

fn run_ids(sandbox: &Sandbox) -> Vec<String> {
    let output = sandbox
        .retort(&[
            "history",
            "--format",
            "json",
            "--state-dir",
            sandbox.state().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let runs: Value = serde_json::from_str(&stdout(&output)).unwrap();
    let mut ids: Vec<String> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run_id"].as_str().unwrap().to_string())
        .collect();
    ids.reverse();
    ids
}

fn show_json(sandbox: &Sandbox, run_id: &str) -> Value {
    let output = sandbox
        .retort(&[
            "show",
            run_id,
            "--format",
            "json",
            "--state-dir",
            sandbox.state().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    serde_json::from_str(&stdout(&output)).unwrap()
}

#[test]
fn two_identical_escalations_within_repeat_reach_a_webhook_once_and_show_lists_it() {
    let sandbox = Sandbox::new();
    let hook = Hook::start(&[]);
    let formula = formula(
        &sandbox,
        &format!(
            "[[notify]]\nkind = \"webhook\"\nurl = \"{}\"\non = [\"escalate\", \"failed\"]\nrepeat = \"4h\"\n",
            hook.url()
        ),
    );
    for _ in 0..2 {
        let output = run(&sandbox, &formula, true, &[]);
        assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    }
    let bodies = hook.bodies();
    assert_eq!(
        bodies.len(),
        1,
        "one message for two escalations: {bodies:?}"
    );
    let body = &bodies[0];
    assert_eq!(body["kind"], "escalate");
    assert_eq!(body["formula"], "watch");
    assert_eq!(body["fingerprint"], "look");
    assert!(
        body["text"]
            .as_str()
            .unwrap()
            .contains("the disk cannot be freed safely"),
        "{body}"
    );

    let ids = run_ids(&sandbox);
    assert_eq!(ids.len(), 2);
    assert_eq!(body["run_id"], ids[0].as_str());
    // The step after the escalation was skipped, yet a human heard.
    let first = show_json(&sandbox, &ids[0]);
    assert_eq!(first["summary"]["steps"][1]["outcome"], "skipped");
    let deliveries = first["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 1, "{first}");
    assert_eq!(deliveries[0]["status"], "delivered");
    assert_eq!(deliveries[0]["attempts"], 1);
    let target = deliveries[0]["target"].as_str().unwrap();
    assert!(target.starts_with(&format!("webhook http://127.0.0.1:{}", hook.port)));
    assert!(
        !target.contains("secret-path"),
        "the URL's path is never shown: {target}"
    );
    assert_eq!(show_json(&sandbox, &ids[1])["deliveries"], json!([]));

    let text = stdout(
        &sandbox
            .retort(&[
                "show",
                &ids[0],
                "--state-dir",
                sandbox.state().to_str().unwrap(),
            ])
            .output()
            .unwrap(),
    );
    assert!(text.contains("notifications:"), "{text}");
    assert!(
        text.contains("escalate `look` to webhook http://127.0.0.1:"),
        "{text}"
    );
    assert!(text.contains(": delivered (1 attempt)"), "{text}");
}

#[test]
fn a_message_the_webhook_could_not_take_is_retried_by_the_next_run() {
    let sandbox = Sandbox::new();
    let hook = Hook::start(&[503, 503]);
    let formula = formula(
        &sandbox,
        &format!(
            "[[notify]]\nkind = \"webhook\"\nurl = \"{}\"\non = [\"escalate\"]\n",
            hook.url()
        ),
    );
    let output = run(&sandbox, &formula, true, &[]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let first = run_ids(&sandbox)[0].clone();
    let pending = show_json(&sandbox, &first);
    assert_eq!(pending["deliveries"][0]["status"], "pending", "{pending}");
    assert_eq!(
        pending["deliveries"][0]["attempts"], 2,
        "at the escalation and at the run's end"
    );
    assert!(
        pending["summary"]["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("not delivered")),
        "{pending}"
    );

    // A healthy run delivers what the last one could not.
    let output = run(&sandbox, &formula, false, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 3, "two refusals, then the retry: {bodies:?}");
    assert!(bodies.iter().all(|b| b["run_id"] == first.as_str()));
    let delivered = show_json(&sandbox, &first);
    assert_eq!(
        delivered["deliveries"][0]["status"], "delivered",
        "{delivered}"
    );
    assert_eq!(delivered["deliveries"][0]["attempts"], 3);
}

/// An agent for the branches of `parallel_formula`, one process a step
/// (headless): `look` escalates; `wait` waits (up to 10 s) for the file
/// `$HEARD`, which the test writes once the webhook has the escalation,
/// and writes `heard` or `not heard` to `$SAID` before it signals done.
const WAITING_AGENT: &str = r#"#!/usr/bin/env bash
cat > /dev/null
case "$RETORT_STEP" in
  look) retort signal escalate --reason "the disk cannot be freed safely" ;;
  *)
    for _ in $(seq 1 200); do
      if [ -e "$HEARD" ]; then echo heard > "$SAID"; break; fi
      sleep 0.05
    done
    [ -e "$SAID" ] || echo "not heard" > "$SAID"
    retort signal done
    ;;
esac
"#;

/// Two independent steps, run at once by the scheduler.
fn parallel_formula(sandbox: &Sandbox, notify: &str) -> PathBuf {
    let path = sandbox.work().join("branches.toml");
    let text = format!(
        r#"name = "branches"
description = "Looks at the factory while it waits"

[[steps]]
id = "look"
description = "Look at the factory."

[[steps]]
id = "wait"
description = "Wait for the news."

{notify}
"#
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn an_escalation_in_a_parallel_branch_is_announced_while_the_other_branch_runs() {
    let sandbox = Sandbox::new();
    let hook = Hook::start(&[]);
    let formula = parallel_formula(
        &sandbox,
        &format!(
            "[[notify]]\nkind = \"webhook\"\nurl = \"{}\"\non = [\"escalate\", \"failed\"]\n",
            hook.url()
        ),
    );
    let agent = sandbox.work().join("waiting-agent.sh");
    std::fs::write(&agent, WAITING_AGENT).unwrap();
    let heard = sandbox.work().join("heard");
    let said = sandbox.work().join("said");
    // The test's side of the webhook: `heard` appears once it has the
    // escalation.
    let watcher = {
        let bodies = Arc::clone(&hook.bodies);
        let heard = heard.clone();
        std::thread::spawn(move || {
            for _ in 0..400 {
                if bodies
                    .lock()
                    .unwrap()
                    .iter()
                    .any(|b| b["kind"] == "escalate")
                {
                    std::fs::write(&heard, "").unwrap();
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        })
    };
    let output = sandbox
        .retort(&[
            "run",
            formula.to_str().unwrap(),
            "--backend",
            "headless",
            "--agent",
            &format!("bash {}", agent.display()),
            "--state-dir",
            sandbox.state().to_str().unwrap(),
            "--quiet",
        ])
        .env("HEARD", &heard)
        .env("SAID", &said)
        .output()
        .unwrap();
    watcher.join().unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert_eq!(
        std::fs::read_to_string(&said).unwrap(),
        "heard\n",
        "the escalation reached the webhook while `wait` still ran"
    );
    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 1, "announced once: {bodies:?}");
    assert_eq!(bodies[0]["kind"], "escalate");
    assert_eq!(bodies[0]["fingerprint"], "look");
    assert!(
        bodies[0]["text"]
            .as_str()
            .unwrap()
            .contains("the disk cannot be freed safely"),
        "{}",
        bodies[0]
    );
}

#[test]
fn two_identical_escalations_within_repeat_reach_a_matrix_room_once() {
    let synapse = synapse::Synapse::shared();
    let user = synapse.user();
    let alias = synapse::unique("factory");
    let room_id = synapse.create_room(user, &alias);
    let sandbox = Sandbox::new();
    let formula = formula(
        &sandbox,
        &format!(
            "[[notify]]\nkind = \"matrix\"\nhomeserver = \"{}\"\nroom = \"#{alias}:localhost\"\n\
             token_env = \"RETORT_TEST_MATRIX_TOKEN\"\non = [\"escalate\"]\nrepeat = \"4h\"\n",
            synapse.base
        ),
    );
    let env = [("RETORT_TEST_MATRIX_TOKEN", user.token.as_str())];
    for _ in 0..2 {
        let output = run(&sandbox, &formula, true, &env);
        assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
        assert!(
            !stderr(&output).contains(&user.token),
            "the token is never printed"
        );
    }
    let messages = synapse.messages(user, &room_id);
    assert_eq!(messages.len(), 1, "{messages:?}");
    let body = messages[0]["content"]["body"].as_str().unwrap();
    assert!(body.contains("Escalation in watch"), "{body}");
    assert!(body.contains("the disk cannot be freed safely"), "{body}");

    // Without the token, the run warns and still ends as the agent said.
    let output = run(&sandbox, &formula, false, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let last = run_ids(&sandbox).pop().unwrap();
    let warnings = show_json(&sandbox, &last)["summary"]["warnings"].to_string();
    assert!(warnings.contains("RETORT_TEST_MATRIX_TOKEN"), "{warnings}");
    assert!(warnings.contains("is not set"), "{warnings}");
}

#[test]
fn check_refuses_a_notify_table_with_a_secret_where_its_variable_name_belongs() {
    let sandbox = Sandbox::new();
    let formula = formula(
        &sandbox,
        "[[notify]]\nkind = \"matrix\"\nhomeserver = \"https://matrix.example.org\"\n\
         room = \"#ops:example.org\"\ntoken_env = \"syt_abc-def.ghi\"\nurl = \"https://x.example.org\"\n",
    );
    let diagnostics = sandbox.check_json(&[formula.to_str().unwrap()]);
    let text = diagnostics.to_string();
    assert!(
        text.contains("`[[notify]]`: `token_env` is not the name of an environment variable"),
        "{text}"
    );
    assert!(
        text.contains("`url` is not a key of a matrix target"),
        "{text}"
    );
    assert!(
        !text.contains("syt_abc-def.ghi"),
        "the would-be secret is not repeated: {text}"
    );
}
