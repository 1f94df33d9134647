//! `claude -p` with stream-json output and input, against the scripted model.

mod support;

use retort_testkit::{Machine, ModelServer, Reply, Rule, Scenario, Setup, Usage, When};
use support::{Conversation, claude, of_type, print_mode};

#[test]
fn a_denied_bash_call_is_reported_with_usage_cost_and_turns() {
    let server = ModelServer::start(
        Scenario::new()
            .rule(
                Rule::new(
                    When::prompt_contains("Step 1"),
                    Reply::bash("retort signal done"),
                )
                .usage(Usage::new(1000, 50).with_cache(2000, 10000)),
            )
            .rule(
                Rule::new(
                    When::AfterToolResult,
                    Reply::text("Step 1 could not signal."),
                )
                .usage(Usage::new(3000, 100)),
            )
            .when(When::SideRequest, Reply::text("Title")),
    )
    .unwrap();
    let machine = Machine::new(Setup::used_before()).unwrap();
    let (output, frames) = print_mode(
        &claude(),
        &machine,
        &server,
        "Step 1: check the disks",
        &[],
        &[],
    );
    assert!(output.status.success(), "{output:?}");

    let init = of_type(&frames, "system", Some("init"))[0];
    assert_eq!(init["permissionMode"], "default");
    assert_eq!(init["apiKeySource"], "ANTHROPIC_API_KEY");
    assert_eq!(init["claude_code_version"], "2.1.197");
    assert_eq!(init["cwd"], machine.work_dir().to_str().unwrap());
    assert!(
        init["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "Bash"),
        "{init}"
    );

    let assistant = of_type(&frames, "assistant", None);
    assert_eq!(assistant.len(), 2, "{frames:#?}");
    let call = &assistant[0]["message"]["content"][0];
    assert_eq!(call["type"], "tool_use");
    assert_eq!(call["name"], "Bash");
    assert_eq!(call["input"]["command"], "retort signal done");
    // The assistant frame's usage is message_start's (output_tokens 1).
    assert_eq!(assistant[0]["message"]["usage"]["input_tokens"], 1000);
    assert_eq!(assistant[0]["message"]["usage"]["output_tokens"], 1);
    let denied = &of_type(&frames, "user", None)[0]["message"]["content"][0];
    assert_eq!(denied["type"], "tool_result");
    assert_eq!(denied["is_error"], true);
    assert_eq!(denied["content"], "This command requires approval");

    let result = frames.last().unwrap();
    assert_eq!(result["type"], "result", "{frames:#?}");
    assert_eq!(result["subtype"], "success");
    assert_eq!(result["is_error"], false);
    assert_eq!(result["api_error_status"], serde_json::Value::Null);
    assert_eq!(result["num_turns"], 2);
    assert_eq!(result["result"], "Step 1 could not signal.");
    assert_eq!(result["stop_reason"], "end_turn");
    assert_eq!(result["terminal_reason"], "completed");
    assert_eq!(result["usage"]["input_tokens"], 4000);
    assert_eq!(result["usage"]["output_tokens"], 150);
    assert_eq!(result["usage"]["cache_creation_input_tokens"], 2000);
    assert_eq!(result["usage"]["cache_read_input_tokens"], 10000);
    // Priced as claude-opus-4-8 (the default model): per million tokens
    // $5 input, $25 output, $6.25 cache write, $0.50 cache read.
    let expected = 4000.0 * 5e-6 + 150.0 * 25e-6 + 2000.0 * 6.25e-6 + 10000.0 * 0.5e-6;
    let cost = result["total_cost_usd"].as_f64().unwrap();
    assert!(
        (cost - expected).abs() < 1e-9,
        "total_cost_usd {cost}, expected {expected}"
    );
    let model_usage = result["modelUsage"].as_object().unwrap();
    assert_eq!(
        model_usage.keys().collect::<Vec<_>>(),
        ["claude-opus-4-8[1m]"]
    );
    let denials = result["permission_denials"].as_array().unwrap();
    assert_eq!(denials.len(), 1);
    assert_eq!(denials[0]["tool_name"], "Bash");
    assert_eq!(denials[0]["tool_input"]["command"], "retort signal done");

    // What the server saw: the start-up probe, then two main requests.
    let requests = server.requests();
    assert_eq!(
        (requests[0].method.as_str(), requests[0].path.as_str()),
        ("HEAD", "/")
    );
    let messages = server.message_requests();
    assert_eq!(messages.len(), 2, "{requests:#?}");
    for request in &messages {
        assert_eq!(request.path, "/v1/messages?beta=true");
        assert_eq!(request.header("x-api-key"), Some("<redacted>"));
        assert_eq!(request.header("anthropic-version"), Some("2023-06-01"));
        assert!(request.messages().stream());
        assert_eq!(request.messages().model(), "claude-opus-4-8");
    }
    assert!(
        messages[0]
            .messages()
            .last_user_text()
            .contains("Step 1: check the disks")
    );
    assert!(messages[1].messages().last_user_has_tool_result());
}

#[test]
fn a_rate_limit_ends_the_run_at_once_or_is_retried_after_a_short_retry_after() {
    let claude = claude();
    let machine = Machine::new(Setup::used_before()).unwrap();

    // retry-after: 3600 → no retry, an error result, exit status 1.
    let server = ModelServer::start(
        Scenario::new().when(When::prompt_contains("Step"), Reply::rate_limited(3600)),
    )
    .unwrap();
    let (output, frames) = print_mode(&claude, &machine, &server, "Step 1", &[], &[]);
    assert_eq!(output.status.code(), Some(1), "{frames:#?}");
    let result = frames.last().unwrap();
    assert_eq!(result["type"], "result");
    assert_eq!(result["subtype"], "success");
    assert_eq!(result["is_error"], true);
    assert_eq!(result["api_error_status"], 429);
    assert_eq!(
        result["result"],
        "API Error: Request rejected (429) · Number of request tokens has exceeded your per-minute rate limit"
    );
    assert_eq!(result["total_cost_usd"], 0);
    assert_eq!(server.message_requests().len(), 1);
    drop(server);

    // retry-after: 1 → an api_retry frame, a second request after 1 s, success.
    let server = ModelServer::start(
        Scenario::new()
            .rule(Rule::new(When::prompt_contains("Step"), Reply::rate_limited(1)).times(1))
            .when(When::prompt_contains("Step"), Reply::text("Recovered.")),
    )
    .unwrap();
    let (output, frames) = print_mode(&claude, &machine, &server, "Step 1", &[], &[]);
    assert!(output.status.success(), "{frames:#?}");
    let retry = of_type(&frames, "system", Some("api_retry"));
    assert_eq!(retry.len(), 1, "{frames:#?}");
    assert_eq!(retry[0]["attempt"], 1);
    assert_eq!(retry[0]["max_retries"], 10);
    assert_eq!(retry[0]["retry_delay_ms"], 1000);
    assert_eq!(retry[0]["error_status"], 429);
    assert_eq!(retry[0]["error"], "rate_limit");
    let result = frames.last().unwrap();
    assert_eq!(result["is_error"], false);
    assert_eq!(result["result"], "Recovered.");
    assert_eq!(server.message_requests().len(), 2);
}

#[test]
fn with_no_retries_401_and_529_end_the_run_with_their_status() {
    let claude = claude();
    let machine = Machine::new(Setup::used_before()).unwrap();
    let server = ModelServer::start(
        Scenario::new()
            .when(When::prompt_contains("key"), Reply::Unauthorized)
            .when(When::prompt_contains("busy"), Reply::Overloaded),
    )
    .unwrap();
    let no_retries = [("CLAUDE_CODE_MAX_RETRIES", "0")];
    let (output, frames) = print_mode(&claude, &machine, &server, "bad key", &[], &no_retries);
    assert_eq!(output.status.code(), Some(1));
    let result = frames.last().unwrap();
    assert_eq!(result["is_error"], true);
    assert_eq!(result["api_error_status"], 401);
    assert_eq!(result["result"], "Invalid API key · Fix external API key");

    let (output, frames) = print_mode(&claude, &machine, &server, "busy", &[], &no_retries);
    assert_eq!(output.status.code(), Some(1));
    let result = frames.last().unwrap();
    assert_eq!(result["api_error_status"], 529);
    let text = result["result"].as_str().unwrap();
    assert!(text.starts_with("API Error: 529 Overloaded."), "{text}");
    assert!(text.contains(&server.addr().to_string()), "{text}");
    assert_eq!(server.message_requests().len(), 2);
}

#[test]
fn stream_json_input_runs_several_turns_in_one_process_with_allowed_tools() {
    let server = ModelServer::start(
        Scenario::new()
            .when(
                When::prompt_contains("Step 1"),
                Reply::bash("retort signal done --reason 'disks fine'"),
            )
            .when(
                When::prompt_contains("Step 2"),
                Reply::bash(r#"echo 'PHASE:done' > "$PHASE_FILE""#),
            )
            .when(
                When::prompt_contains("Step 3"),
                Reply::bash(r#"echo 'PHASE:failed' > "$PHASE_FILE""#),
            )
            .when(When::AfterToolResult, Reply::text("Turn over.")),
    )
    .unwrap();
    let machine = Machine::new(Setup::used_before()).unwrap();
    let calls = machine.root().join("retort-calls.txt");
    let phase = machine.root().join("phase");
    machine
        .add_command(
            "retort",
            &format!("#!/bin/sh\necho \"$*\" >> '{}'\n", calls.display()),
        )
        .unwrap();
    let allowed = [
        "--allowedTools",
        "Bash(retort signal:*)",
        r#"Bash(echo 'PHASE:done' > "$PHASE_FILE")"#,
        "Bash(echo 'PHASE:*)",
    ];
    let phase_env = [("PHASE_FILE", phase.to_str().unwrap())];
    let mut conversation = Conversation::start(&claude(), &machine, &server, &allowed, &phase_env);

    let first = conversation.turn("Step 1: signal");
    let result = first.last().unwrap();
    assert_eq!(result["num_turns"], 2);
    assert_eq!(result["permission_denials"], serde_json::json!([]));
    assert_eq!(
        std::fs::read_to_string(&calls).unwrap(),
        "signal done --reason disks fine\n"
    );
    let session = result["session_id"].clone();

    let second = conversation.turn("Step 2: phase file");
    let result = second.last().unwrap();
    assert_eq!(result["session_id"], session, "one session across turns");
    assert_eq!(result["permission_denials"], serde_json::json!([]));
    assert_eq!(std::fs::read_to_string(&phase).unwrap(), "PHASE:done\n");
    // Each turn opens with its own init frame; cost is cumulative.
    assert_eq!(of_type(&second, "system", Some("init")).len(), 1);
    assert!(
        second.last().unwrap()["total_cost_usd"].as_f64()
            > first.last().unwrap()["total_cost_usd"].as_f64()
    );

    // A prefix rule does not cover a redirect: denied.
    let third = conversation.turn("Step 3: another phase");
    let result = third.last().unwrap();
    let denials = result["permission_denials"].as_array().unwrap();
    assert_eq!(denials.len(), 1, "{result}");
    assert_eq!(
        denials[0]["tool_input"]["command"],
        r#"echo 'PHASE:failed' > "$PHASE_FILE""#
    );
    assert_eq!(std::fs::read_to_string(&phase).unwrap(), "PHASE:done\n");

    assert!(conversation.finish().success());
}
