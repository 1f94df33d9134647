//! The tmux backend, against a private real tmux server per test.

use std::path::{Path, PathBuf};
use std::time::Duration;

use retort_agent::session::{
    AgentExit, AgentSession, DEFAULT_SUBMIT_DELAY, SessionSpec, TmuxServer,
};

struct Server {
    dir: tempfile::TempDir,
    server: TmuxServer,
}

impl Server {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("rs")
            .tempdir_in("/tmp")
            .unwrap();
        let server = TmuxServer {
            socket: Some(dir.path().join("sock")),
        };
        Server { dir, server }
    }

    fn spec(&self, name: &str, command: &str) -> SessionSpec {
        SessionSpec {
            name: name.into(),
            command: command.into(),
            exit_file: self.path("agent.exit"),
            env_file: self.path("agent.env"),
            cwd: self.dir.path().to_path_buf(),
            env: vec![
                ("GREETING".into(), "hello from retort".into()),
                (
                    "PATH".into(),
                    format!("/opt/retort-test-bin:{}", std::env::var("PATH").unwrap()),
                ),
            ],
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let socket = self.server.socket.as_ref().unwrap();
        let _ = std::process::Command::new("tmux")
            .arg("-S")
            .arg(socket)
            .arg("kill-server")
            .output();
    }
}

async fn wait_for_file(path: &Path) -> String {
    for _ in 0..100 {
        if let Ok(text) = std::fs::read_to_string(path)
            && !text.is_empty()
        {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{} never appeared", path.display());
}

#[tokio::test]
async fn a_prompt_file_is_pasted_into_the_pane_and_submitted() {
    let server = Server::new();
    let received = server.path("received.txt");
    let command = format!("head -n 3 > {}", received.display());
    let session = AgentSession::start(&server.server, &server.spec("paste", &command))
        .await
        .unwrap();
    let prompt = server.path("prompt.md");
    std::fs::write(&prompt, "first line\nsecond line\n").unwrap();

    session
        .deliver(&prompt, "retort-test-buffer", DEFAULT_SUBMIT_DELAY)
        .await
        .unwrap();

    let text = wait_for_file(&received).await;
    assert_eq!(text, "first line\nsecond line\n\n", "the paste, then Enter");
    assert_eq!(wait_for_file(&server.path("agent.exit")).await, "0\n");
    assert_eq!(session.agent_exit(), Some(AgentExit::Exited(0)));
    session.kill().await.unwrap();
}

/// Every process's command line, NUL-separated words joined by spaces.
fn command_lines() -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| std::fs::read(entry.ok()?.path().join("cmdline")).ok())
        .map(|bytes| String::from_utf8_lossy(&bytes).replace('\0', " "))
        .collect()
}

#[tokio::test]
async fn secrets_in_the_environment_are_on_no_command_line() {
    let server = Server::new();
    let out = server.path("token.txt");
    let secret = "tok-9f3b'quoted' \"and\" $NOT_EXPANDED";
    let mut spec = server.spec(
        "secret",
        &format!("printf '%s' \"$FORGE_TOKEN\" > {}; sleep 30", out.display()),
    );
    spec.env.push(("FORGE_TOKEN".into(), secret.into()));
    let session = AgentSession::start(&server.server, &spec).await.unwrap();

    assert_eq!(
        wait_for_file(&out).await,
        secret,
        "the value arrives exactly"
    );
    let leaks: Vec<String> = command_lines()
        .into_iter()
        .filter(|line| line.contains("tok-9f3b"))
        .collect();
    assert!(leaks.is_empty(), "on a command line: {leaks:?}");
    assert!(
        !server.path("agent.env").exists(),
        "the environment file is removed once read"
    );
    session.kill().await.unwrap();
}

#[test]
fn the_environment_file_is_the_users_alone() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.env");
    retort_agent::session::write_env_file(
        &path,
        &[
            ("A_B".into(), "it's".into()),
            ("1BAD".into(), "x".into()),
            ("BAD-NAME".into(), "y".into()),
        ],
    )
    .unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "export A_B='it'\\''s'\n",
        "names a shell cannot export are left out"
    );
}

#[tokio::test]
async fn the_session_carries_the_environment_it_was_given() {
    let server = Server::new();
    let out = server.path("env.txt");
    let command = format!(
        "printf '%s|%s|%s' \"$GREETING\" \"$PATH\" \"$PWD\" > {}",
        out.display()
    );
    let session = AgentSession::start(&server.server, &server.spec("env", &command))
        .await
        .unwrap();

    let text = wait_for_file(&out).await;
    let fields: Vec<&str> = text.split('|').collect();
    assert_eq!(fields[0], "hello from retort");
    assert!(
        fields[1].starts_with("/opt/retort-test-bin:"),
        "PATH is ours: {}",
        fields[1]
    );
    assert_eq!(
        Path::new(fields[2]).canonicalize().unwrap(),
        server.dir.path().canonicalize().unwrap()
    );
    session.kill().await.unwrap();
}

#[tokio::test]
async fn the_agents_exit_status_is_recorded_and_the_pane_stays_readable() {
    let server = Server::new();
    let session = AgentSession::start(
        &server.server,
        &server.spec("exit", "echo giving up; exit 5"),
    )
    .await
    .unwrap();

    assert_eq!(wait_for_file(&server.path("agent.exit")).await, "5\n");
    assert_eq!(session.agent_exit(), Some(AgentExit::Exited(5)));
    assert!(
        session.exists().await,
        "the pane stays open after the agent exits"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let pane = session.capture(50).await.unwrap();
    assert!(pane.contains("giving up"), "{pane}");
    assert!(
        pane.contains("[retort] the agent exited with status 5"),
        "{pane}"
    );
    // Delivering to an agent that has exited sends nothing and is no error.
    let prompt = server.path("p.md");
    std::fs::write(&prompt, "too late\n").unwrap();
    session
        .deliver(&prompt, "late", DEFAULT_SUBMIT_DELAY)
        .await
        .unwrap();
    session.kill().await.unwrap();
}

#[tokio::test]
async fn a_killed_session_is_noticed_at_once() {
    let server = Server::new();
    let session = AgentSession::start(&server.server, &server.spec("doomed", "sleep 600"))
        .await
        .unwrap();
    assert_eq!(session.agent_exit(), None);

    session.kill().await.unwrap();

    tokio::time::timeout(Duration::from_secs(5), session.gone())
        .await
        .expect("the pane's death is noticed");
    assert_eq!(session.agent_exit(), Some(AgentExit::Gone));
    assert!(!session.exists().await);
    session
        .kill()
        .await
        .expect("killing a gone session is not an error");
}

#[tokio::test]
async fn a_session_name_in_use_is_refused_with_tmuxs_reason() {
    let server = Server::new();
    let first = AgentSession::start(&server.server, &server.spec("twin", "sleep 600"))
        .await
        .unwrap();
    // Files of its own, as every session of a run has: sharing the first's
    // env file would rewrite it while the first pane may still be reading
    // it, and end that pane (and the name with it) under load.
    let second = SessionSpec {
        env_file: server.path("second.env"),
        exit_file: server.path("second.exit"),
        ..server.spec("twin", "sleep 600")
    };
    let error = AgentSession::start(&server.server, &second)
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("duplicate session: twin"),
        "{error}"
    );
    first.kill().await.unwrap();
}
