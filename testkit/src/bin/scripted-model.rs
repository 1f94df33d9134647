//! `scripted-model SCENARIO.toml`: serves a scenario on 127.0.0.1 until
//! killed, so a person can run the real Claude Code against it by hand.
//!
//! Prints the base URL on the first line (`http://127.0.0.1:PORT`), then one
//! line per request received (method, path, model, how it was answered).
//! The scenario format is in `retort_testkit::scenario`'s docs.

use std::process::ExitCode;
use std::time::Duration;

use retort_testkit::{ModelServer, Scenario};

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
        "try: HOME=$(mktemp -d) ANTHROPIC_BASE_URL={} ANTHROPIC_API_KEY=<any> CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 claude",
        server.url()
    );
    let mut seen = 0;
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let requests = server.requests();
        for request in &requests[seen..] {
            let request_view = request.messages();
            println!(
                "{} {} model={} tools={} -> {:?}",
                request.method,
                request.path,
                request_view.model(),
                request_view.tool_names().len(),
                request.answer
            );
        }
        seen = requests.len();
    }
}
