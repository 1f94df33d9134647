//! `scripted-model SCENARIO.toml`: serves a scenario on 127.0.0.1 until
//! killed, so a person can run the real Claude Code against it by hand.
//!
//! Prints the base URL on the first line (`http://127.0.0.1:PORT`), then one
//! line per request received (method, path, model, how it was answered).
//! The scenario format is in `retort_testkit::scenario`'s docs.

use std::process::ExitCode;
use std::time::Duration;

use retort_testkit::{Answer, ModelServer, Scenario};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [path] = args.as_slice() else {
        eprintln!("usage: scripted-model SCENARIO.toml");
        return ExitCode::from(2);
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) => {
            eprintln!("scripted-model: cannot read {path}: {error}");
            return ExitCode::from(2);
        }
    };
    let scenario = match Scenario::from_toml(&text) {
        Ok(scenario) => scenario,
        Err(error) => {
            eprintln!("scripted-model: {path} is not a scenario:\n{error}");
            return ExitCode::from(2);
        }
    };
    let server = match ModelServer::start(scenario) {
        Ok(server) => server,
        Err(error) => {
            eprintln!("scripted-model: cannot listen on 127.0.0.1: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", server.url());
    println!(
        "scripted-model: serving {path}; crates/testkit/README.md says how to run claude against it"
    );
    let mut seen = 0;
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let requests = server.requests();
        for request in &requests[seen..] {
            let answer = match request.answer {
                Answer::Rule(index) => format!("rule {}", index + 1),
                Answer::Fallback => "no rule matched: fallback text".to_owned(),
                Answer::Endpoint(status) | Answer::Invalid(status) => status.to_string(),
            };
            if request.is_messages() {
                let view = request.messages();
                println!(
                    "{} {} model={} tools={} -> {answer}",
                    request.method,
                    request.path,
                    view.model(),
                    view.tool_names().len()
                );
            } else {
                println!("{} {} -> {answer}", request.method, request.path);
            }
        }
        seen = requests.len();
    }
}
