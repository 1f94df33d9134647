//! The tmux collector against a real, private tmux server.

use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use retort_preflight::{CollectorStatus, Config, collect};

/// A tmux server on a socket in a temporary directory; killed on drop.
struct PrivateServer {
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl PrivateServer {
    fn start(sessions: &[&str]) -> PrivateServer {
        let dir = tempfile::tempdir().unwrap();
        let server = PrivateServer {
            socket: dir.path().join("sock"),
            _dir: dir,
        };
        for name in sessions {
            let output = tmux(&server.socket)
                .args(["new-session", "-d", "-s", name])
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "tmux new-session {name} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        server
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        let _ = tmux(&self.socket)
            .arg("kill-server")
            .stderr(Stdio::null())
            .status();
    }
}

fn tmux(socket: &Path) -> Command {
    let mut command = Command::new("tmux");
    command
        .arg("-S")
        .arg(socket)
        .env_remove("TMUX")
        .stdin(Stdio::null());
    command
}

fn config_for(socket: &Path) -> Config {
    let mut config = Config::default();
    config.tmux.socket = Some(socket.to_path_buf());
    config
}

#[tokio::test]
async fn lists_sessions_of_a_private_server() {
    let server = PrivateServer::start(&["alpha", "beta"]);
    let before = Utc::now();
    let snapshot = collect(&config_for(&server.socket)).await;
    let tmux = &snapshot.tmux;
    assert_eq!(tmux.status, CollectorStatus::Ok, "{:?}", tmux.reason);
    assert_eq!(tmux.reason, None);

    let names: Vec<&str> = tmux.sessions.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["alpha", "beta"]);
    for session in &tmux.sessions {
        assert_eq!(session.windows, 1, "{session:?}");
        assert!(!session.attached, "{session:?}");
        for (what, at) in [
            ("created", session.created),
            ("last_activity", session.last_activity),
        ] {
            assert!(
                at > before - TimeDelta::minutes(1) && at <= Utc::now() + TimeDelta::seconds(1),
                "{} {what} {at} is not within the last minute",
                session.name
            );
        }
    }

    assert!(
        snapshot
            .health_summary()
            .contains(&"tmux: 2 sessions".to_owned()),
        "{:?}",
        snapshot.health_summary()
    );
    let markdown = snapshot.to_markdown();
    assert!(markdown.contains("### tmux"), "{markdown}");
    assert!(markdown.contains("2 sessions:"), "{markdown}");
    assert!(
        markdown.contains("- alpha: 1 window, detached, created "),
        "{markdown}"
    );
    assert!(
        markdown.contains("- beta: 1 window, detached, created "),
        "{markdown}"
    );
}

#[tokio::test]
async fn killed_session_disappears() {
    let server = PrivateServer::start(&["keep", "drop"]);
    let output = tmux(&server.socket)
        .args(["kill-session", "-t", "drop"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let snapshot = collect(&config_for(&server.socket)).await;
    let names: Vec<&str> = snapshot
        .tmux
        .sessions
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(names, ["keep"]);
}

#[tokio::test]
async fn no_server_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("nobody-listens");
    let snapshot = collect(&config_for(&socket)).await;
    let tmux = &snapshot.tmux;
    assert_eq!(tmux.status, CollectorStatus::Unavailable);
    assert!(tmux.sessions.is_empty());
    assert_eq!(
        tmux.reason.as_deref(),
        Some(format!("no tmux server is running (socket {})", socket.display()).as_str())
    );
    let summary = snapshot.health_summary();
    let line = format!(
        "tmux: unavailable: no tmux server is running (socket {})",
        socket.display()
    );
    assert!(summary.contains(&line), "{summary:?}");
}

#[tokio::test]
async fn unresponsive_server_times_out() {
    // A socket that accepts connections (in the kernel backlog) but never answers:
    // the tmux client waits forever, so only the collector timeout can end it.
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("silent");
    let _listener = UnixListener::bind(&socket).unwrap();
    let config = Config {
        collector_timeout: Duration::from_millis(500),
        ..config_for(&socket)
    };
    let started = Instant::now();
    let snapshot = collect(&config).await;
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "collect took {:?}",
        started.elapsed()
    );
    let tmux = &snapshot.tmux;
    assert_eq!(tmux.status, CollectorStatus::Error);
    let reason = tmux.reason.as_deref().unwrap();
    assert_eq!(reason, "the tmux collector timed out after 500ms");
    // The system collector is unaffected.
    assert_eq!(snapshot.system.status, CollectorStatus::Ok);
}
