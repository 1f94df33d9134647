//! Helpers shared by the real-CLI tests.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Output, Stdio};

use retort_testkit::{ClaudeCode, Machine, ModelServer};
use serde_json::Value;

/// The CLI, or a panic naming install.sh.
pub fn claude() -> ClaudeCode {
    ClaudeCode::find().unwrap_or_else(|error| panic!("{error}"))
}

/// Parses stream-json output: one JSON object per line.
pub fn frames(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect()
}

/// The frames of `type` (and `subtype`, when given).
pub fn of_type<'a>(frames: &'a [Value], kind: &str, subtype: Option<&str>) -> Vec<&'a Value> {
    frames
        .iter()
        .filter(|f| f["type"] == kind && subtype.is_none_or(|s| f["subtype"] == s))
        .collect()
}

/// Runs `claude -p --output-format stream-json --verbose PROMPT [extra…]`.
pub fn print_mode(
    claude: &ClaudeCode,
    machine: &Machine,
    server: &ModelServer,
    prompt: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (Output, Vec<Value>) {
    let mut args = vec!["-p", "--output-format", "stream-json", "--verbose"];
    args.extend_from_slice(extra);
    args.push(prompt);
    let output = claude
        .command(machine, server, args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let frames = frames(&output.stdout);
    (output, frames)
}

/// A `claude -p --input-format stream-json …` process fed turn by turn.
pub struct Conversation {
    pub child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Conversation {
    pub fn start(
        claude: &ClaudeCode,
        machine: &Machine,
        server: &ModelServer,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Conversation {
        let mut args = vec![
            "-p",
            "--input-format",
            "stream-json",
            "--output-format",
            "stream-json",
            "--verbose",
        ];
        args.extend_from_slice(extra);
        let mut child = claude
            .command(machine, server, args)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Conversation {
            child,
            stdin,
            stdout,
        }
    }

    /// Sends one user turn (the input frame) and reads frames up to and
    /// including its `result` frame.
    pub fn turn(&mut self, prompt: &str) -> Vec<Value> {
        let frame = serde_json::json!({
            "type": "user",
            "message": {"role": "user", "content": prompt},
        });
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{frame}").unwrap();
        stdin.flush().unwrap();
        let mut frames = Vec::new();
        loop {
            let mut line = String::new();
            assert!(
                self.stdout.read_line(&mut line).unwrap() > 0,
                "stdout closed before a result; frames: {frames:#?}"
            );
            let frame: Value = serde_json::from_str(&line).unwrap();
            let done = frame["type"] == "result";
            frames.push(frame);
            if done {
                return frames;
            }
        }
    }

    /// Closes stdin and waits for the exit status.
    pub fn finish(mut self) -> std::process::ExitStatus {
        drop(self.stdin.take());
        self.child.wait().unwrap()
    }
}

impl Drop for Conversation {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
