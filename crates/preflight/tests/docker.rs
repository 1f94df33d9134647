//! The Docker collector: a missing daemon or CLI is `unavailable`, never an
//! error; with a daemon (where one runs), the containers match `docker ps`.

mod support;

use std::path::PathBuf;
use std::process::Command;

use retort_preflight::{CollectorStatus, collect};
use support::quiet_config;

#[tokio::test]
async fn no_daemon_at_the_socket_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("docker.sock");
    let mut config = quiet_config(dir.path());
    config.docker.enabled = true;
    config.docker.host = Some(format!("unix://{}", socket.display()));
    let snapshot = collect(&config).await;
    let docker = &snapshot.docker;
    assert_eq!(
        docker.status,
        CollectorStatus::Unavailable,
        "{:?}",
        docker.reason
    );
    let reason = docker.reason.as_deref().unwrap();
    // With the CLI installed the socket is checked; without it, the CLI is missing.
    assert!(
        reason
            == format!(
                "no Docker daemon: nothing at {} (is dockerd running?)",
                socket.display()
            )
            || reason == "Docker is not installed (`docker` not found on PATH)",
        "{reason}"
    );
    assert!(docker.containers.is_empty());
    assert!(
        !snapshot
            .health_summary()
            .iter()
            .any(|l| l.starts_with("Docker")),
        "an unavailable Docker is not news: {:?}",
        snapshot.health_summary()
    );
    assert!(snapshot.to_markdown().contains(&format!(
        "### Docker\n\n**Status: unavailable** — {reason}\n"
    )));
}

#[tokio::test]
async fn a_socket_nobody_answers_on_is_unavailable_through_the_cli() {
    if Command::new("docker").arg("--version").output().is_err() {
        eprintln!("skipped: no docker CLI here");
        return;
    }
    // A socket file that refuses connections: the CLI itself reports it.
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("docker.sock");
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let mut config = quiet_config(dir.path());
    config.docker.enabled = true;
    config.docker.host = Some(format!("unix://{}", socket.display()));
    let docker = collect(&config).await.docker;
    assert_eq!(
        docker.status,
        CollectorStatus::Unavailable,
        "{:?}",
        docker.reason
    );
    assert!(docker.reason.unwrap().starts_with("no Docker daemon: "));
}

#[tokio::test]
async fn a_missing_cli_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = quiet_config(dir.path());
    config.docker.enabled = true;
    config.docker.command = PathBuf::from("retort-no-such-docker-cli");
    let docker = collect(&config).await.docker;
    assert_eq!(docker.status, CollectorStatus::Unavailable);
    assert_eq!(
        docker.reason.as_deref(),
        Some("Docker is not installed (`retort-no-such-docker-cli` not found on PATH)")
    );
    config.docker.command = dir.path().join("bin/docker");
    let docker = collect(&config).await.docker;
    assert_eq!(docker.status, CollectorStatus::Unavailable);
    assert!(
        docker
            .reason
            .unwrap()
            .starts_with("Docker is not installed")
    );
}

#[tokio::test]
async fn with_a_daemon_containers_match_docker_ps() {
    let ps = Command::new("docker")
        .args(["ps", "--all", "--quiet", "--no-trunc"])
        .output();
    let Ok(ps) = ps.as_ref().map(|o| (o.status.success(), o)) else {
        eprintln!("skipped: no docker CLI here");
        return;
    };
    if !ps.0 {
        eprintln!("skipped: no Docker daemon here");
        return;
    }
    let ids: Vec<String> = String::from_utf8_lossy(&ps.1.stdout)
        .lines()
        .map(|id| id.chars().take(12).collect())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let mut config = quiet_config(dir.path());
    config.docker.enabled = true;
    config.docker.stats = false;
    let docker = collect(&config).await.docker;
    assert_eq!(docker.status, CollectorStatus::Ok, "{:?}", docker.reason);
    let mut got: Vec<String> = docker.containers.iter().map(|c| c.id.clone()).collect();
    let mut want = ids;
    got.sort();
    want.sort();
    assert_eq!(got, want);
}
