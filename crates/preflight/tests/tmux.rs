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

/// Waits until every pane of `session` is dead (at most 5 s).
fn wait_dead(socket: &Path, session: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let output = tmux(socket)
            .args(["list-panes", "-t", session, "-F", "#{pane_dead}"])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&output.stdout).trim() == "1" {
            return;
        }
        assert!(Instant::now() < deadline, "pane of {session} never died");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn panes_show_their_process_and_dead_panes_their_exit() {
    let server = PrivateServer::start(&["agent"]);
    let run = |args: &[&str]| {
        let output = tmux(&server.socket).args(args).output().unwrap();
        assert!(output.status.success(), "tmux {args:?}: {output:?}");
    };
    // Only new panes keep their corpse with remain-on-exit; set it first.
    run(&["set-option", "-g", "remain-on-exit", "on"]);
    run(&["new-session", "-d", "-s", "crashed", "sh -c 'exit 3'"]);
    run(&["new-session", "-d", "-s", "killed", "sh -c 'kill -9 $$'"]);
    run(&["split-window", "-t", "agent", "-d", "sleep 300"]);
    wait_dead(&server.socket, "crashed");
    wait_dead(&server.socket, "killed");

    let snapshot = collect(&config_for(&server.socket)).await;
    let tmux = &snapshot.tmux;
    assert_eq!(tmux.status, CollectorStatus::Ok, "{:?}", tmux.reason);
    let session = |name: &str| tmux.sessions.iter().find(|s| s.name == name).unwrap();

    let agent = session("agent");
    assert_eq!(agent.panes.len(), 2, "{agent:?}");
    assert!(
        agent
            .panes
            .iter()
            .all(|p| !p.dead && p.exit_status.is_none())
    );
    assert_eq!(agent.panes[1].current_command, "sleep");
    assert_eq!(
        (agent.panes[1].window_index, agent.panes[1].pane_index),
        (0, 1)
    );
    let pid = agent.panes[1].pid;
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(
        comm.trim(),
        "sleep",
        "pane pid {pid} is not the pane's process"
    );
    assert!(agent.panes[0].id.starts_with('%'));
    assert!(agent.idle_seconds < 60);

    let crashed = &session("crashed").panes[0];
    assert!(crashed.dead, "{crashed:?}");
    assert_eq!((crashed.exit_status, crashed.exit_signal), (Some(3), None));
    let killed = &session("killed").panes[0];
    assert!(killed.dead, "{killed:?}");
    assert_eq!((killed.exit_status, killed.exit_signal), (None, Some(9)));

    assert!(
        snapshot
            .health_summary()
            .contains(&"tmux: 3 sessions, 2 dead panes".to_owned()),
        "{:?}",
        snapshot.health_summary()
    );
    let markdown = snapshot.to_markdown();
    assert!(
        markdown.contains(&format!(
            "  - pane {} (0.0): **dead** (exit status 3), was `sh`, pid {}",
            crashed.id, crashed.pid
        )),
        "{markdown}"
    );
    assert!(
        markdown.contains("**dead** (killed by signal 9)"),
        "{markdown}"
    );
    assert!(
        markdown.contains(&format!("(0.1): `sleep`, pid {pid}")),
        "{markdown}"
    );
}
