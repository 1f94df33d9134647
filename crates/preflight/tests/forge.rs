//! The forge collector against a local HTTP server answering in the
//! documented shapes of the Forgejo/Gitea API v1: pull requests, issues per
//! label (counted through `X-Total-Count`), error statuses, slow answers,
//! malformed bodies and an unreachable server.

mod support;

use std::time::{Duration, Instant};

use chrono::{FixedOffset, TimeDelta, Utc};
use retort_preflight::{CollectorStatus, ForgeConfig, collect};
use support::quiet_config;
use support::server::{Response, Server, closed_port_url};

/// A `PullRequest` object as the API documents it (trimmed of nothing the
/// collector might trip over: every usual field is present).
fn pull(
    number: u64,
    title: &str,
    head: &str,
    login: &str,
    minutes_ago: i64,
    draft: bool,
) -> String {
    let offset = FixedOffset::east_opt(3600).unwrap();
    let updated = (Utc::now() - TimeDelta::minutes(minutes_ago) - TimeDelta::seconds(20))
        .with_timezone(&offset);
    let created = updated - TimeDelta::hours(3);
    serde_json::json!({
        "id": number + 1000, "url": format!("http://forge/api/v1/repos/factory/app/pulls/{number}"),
        "number": number,
        "user": {"id": 7, "login": login, "full_name": "", "email": format!("{login}@example.org")},
        "title": title, "body": "Fixes the thing.", "labels": [], "milestone": null,
        "assignee": null, "assignees": null, "state": "open", "is_locked": false, "comments": 0,
        "html_url": format!("http://forge/factory/app/pulls/{number}"),
        "diff_url": format!("http://forge/factory/app/pulls/{number}.diff"),
        "patch_url": format!("http://forge/factory/app/pulls/{number}.patch"),
        "mergeable": true, "merged": false, "merged_at": null, "merge_commit_sha": null,
        "merged_by": null, "allow_maintainer_edit": false,
        "base": {"label": "main", "ref": "main", "sha": "1111111111111111111111111111111111111111", "repo_id": 1, "repo": null},
        "head": {"label": head, "ref": head, "sha": "2222222222222222222222222222222222222222", "repo_id": 1, "repo": null},
        "merge_base": "1111111111111111111111111111111111111111", "due_date": null,
        "created_at": created.to_rfc3339(), "updated_at": updated.to_rfc3339(), "closed_at": null,
        "draft": draft
    })
    .to_string()
}

/// An `Issue` object as the API documents it.
fn issue(number: u64, title: &str, label: &str, hours_ago: i64) -> String {
    let updated = Utc::now() - TimeDelta::hours(hours_ago) - TimeDelta::seconds(20);
    serde_json::json!({
        "id": number + 5000, "url": format!("http://forge/api/v1/repos/factory/app/issues/{number}"),
        "html_url": format!("http://forge/factory/app/issues/{number}"), "number": number,
        "user": {"id": 1, "login": "operator"}, "original_author": "", "original_author_id": 0,
        "title": title, "body": "", "ref": "",
        "labels": [{"id": 3, "name": label, "color": "e11d21", "description": "", "url": ""}],
        "milestone": null, "assignee": null, "assignees": null, "state": "open", "is_locked": false,
        "comments": 2, "created_at": updated.to_rfc3339(), "updated_at": updated.to_rfc3339(),
        "closed_at": null, "due_date": null, "pull_request": null,
        "repository": {"id": 1, "name": "app", "owner": "factory", "full_name": "factory/app"},
        "pin_order": 0
    })
    .to_string()
}

fn forge_config(url: &str) -> ForgeConfig {
    ForgeConfig {
        timeout: None,
        url: url.to_owned(),
        repo: "factory/app".to_owned(),
        token_env: None,
        labels: vec!["backlog".into(), "in-progress".into(), "blocked".into()],
        blocked_label: "blocked".to_owned(),
    }
}

fn healthy_forge() -> Server {
    Server::start(|request| match request.path() {
        "/api/v1/repos/factory/app/pulls" => Response::json(format!(
            "[{},{}]",
            pull(12, "Fix the flaky poller", "fix-12", "dev-agent", 5, false),
            pull(
                9,
                "Draft: new gate\nsecond line",
                "gate",
                "planner",
                180,
                true
            )
        ))
        .total(2),
        "/api/v1/repos/factory/app/issues" => match request.query("labels").as_deref() {
            Some("backlog") => {
                Response::json(format!("[{}]", issue(30, "Add metrics", "backlog", 2))).total(12)
            }
            Some("in-progress") => Response::json("[]").total(0),
            Some("blocked") => Response::json(format!(
                "[{}]",
                issue(7, "Blocked on credentials", "blocked", 50)
            ))
            .total(1),
            _ => Response::status(400, r#"{"message":"bad label"}"#),
        },
        _ => Response::status(404, r#"{"message":"not found"}"#),
    })
}

#[tokio::test]
async fn open_pull_requests_and_issue_counts() {
    let server = healthy_forge();
    let dir = tempfile::tempdir().unwrap();
    let mut config = quiet_config(dir.path());
    config.forge = Some(forge_config(&server.url()));
    let snapshot = collect(&config).await;
    let forge = &snapshot.forge;
    assert_eq!(forge.status, CollectorStatus::Ok, "{:?}", forge.reason);
    assert_eq!(forge.repo, "factory/app");
    assert_eq!(forge.open_pull_requests, 2);
    let first = &forge.pull_requests[0];
    assert_eq!(first.number, 12);
    assert_eq!(first.title, "Fix the flaky poller");
    assert_eq!(first.head_branch, "fix-12");
    assert_eq!(first.author, "dev-agent");
    assert!(!first.draft);
    assert!(
        (315..=340).contains(&first.idle_seconds.unwrap()),
        "{first:?}"
    );
    assert_eq!(first.url, "http://forge/factory/app/pulls/12");
    assert!(forge.pull_requests[1].draft);
    let counts: Vec<(&str, u64)> = forge
        .labels
        .iter()
        .map(|l| (l.name.as_str(), l.open_issues))
        .collect();
    assert_eq!(
        counts,
        [("backlog", 12), ("in-progress", 0), ("blocked", 1)]
    );
    assert_eq!(forge.blocked.len(), 1);
    assert_eq!(forge.blocked[0].number, 7);
    assert_eq!(forge.blocked[0].title, "Blocked on credentials");

    // What was asked: open pull requests, open issues (not pulls) per label; no token.
    let requests = server.requests();
    assert_eq!(requests.len(), 4, "{requests:?}");
    let pulls = requests
        .iter()
        .find(|r| r.path().ends_with("/pulls"))
        .unwrap();
    assert_eq!(pulls.query("state").as_deref(), Some("open"));
    for r in requests.iter().filter(|r| r.path().ends_with("/issues")) {
        assert_eq!(r.query("type").as_deref(), Some("issues"));
        assert_eq!(r.query("state").as_deref(), Some("open"));
    }
    assert!(requests.iter().all(|r| r.header("authorization").is_none()));

    let markdown = snapshot.to_markdown();
    assert!(
        markdown.contains(&format!(
            "factory/app at {}: 2 open pull requests:",
            server.url()
        )),
        "{markdown}"
    );
    assert!(
        markdown.contains("- #12 Fix the flaky poller — `fix-12` by dev-agent, updated 5m ago\n"),
        "{markdown}"
    );
    assert!(
        markdown.contains("- #9 Draft: new gate second line — `gate`"),
        "{markdown}"
    );
    assert!(
        markdown.contains("Open issues by label: `backlog` 12, `in-progress` 0, `blocked` 1."),
        "{markdown}"
    );
    assert!(
        markdown.contains("- #7 Blocked on credentials, updated 2d 2h ago"),
        "{markdown}"
    );
    assert!(
        snapshot.health_summary().contains(
            &"Forge: 2 open pull requests; issues: backlog 12, in-progress 0, blocked 1".to_owned()
        ),
        "{:?}",
        snapshot.health_summary()
    );
}

#[tokio::test]
async fn error_statuses_are_errors_and_a_rejected_token_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    for (status, want, words) in [
        (
            500,
            CollectorStatus::Error,
            "answered 500 Internal Server Error",
        ),
        (404, CollectorStatus::Error, "answered 404 Not Found"),
        (
            401,
            CollectorStatus::Unavailable,
            "answered 401 Unauthorized; configure token_env",
        ),
        (403, CollectorStatus::Unavailable, "answered 403 Forbidden"),
    ] {
        let server = Server::start(move |_| Response::status(status, r#"{"message":"no"}"#));
        let mut config = quiet_config(dir.path());
        config.forge = Some(forge_config(&server.url()));
        let forge = collect(&config).await.forge;
        assert_eq!(forge.status, want, "{status}: {:?}", forge.reason);
        let reason = forge.reason.unwrap();
        assert!(reason.contains(words), "{status}: {reason}");
        assert!(reason.contains(&server.url()), "{reason}");
        // Four requests failed the same way: said once, with the count of the others.
        assert!(reason.contains("(and 3 more failed requests)"), "{reason}");
    }
}

#[tokio::test]
async fn partial_failure_keeps_what_was_collected() {
    let server = Server::start(|request| match request.query("labels").as_deref() {
        Some("blocked") => Response::status(502, "<html>bad gateway</html>"),
        Some(_) => Response::json("[]").total(4),
        None => Response::json(format!("[{}]", pull(1, "One", "b", "x", 1, false))).total(1),
    });
    let dir = tempfile::tempdir().unwrap();
    let mut config = quiet_config(dir.path());
    config.forge = Some(forge_config(&server.url()));
    let forge = collect(&config).await.forge;
    assert_eq!(forge.status, CollectorStatus::Error);
    assert!(
        forge
            .reason
            .as_deref()
            .unwrap()
            .contains("answered 502 Bad Gateway")
    );
    assert_eq!(forge.open_pull_requests, 1);
    assert_eq!(forge.labels.len(), 2, "{:?}", forge.labels);
}

#[tokio::test]
async fn malformed_bodies_are_errors() {
    for body in [
        "{\"not\": \"a list\"}",
        "[{\"number\": \"twelve\"}]",
        "<html>",
        "",
    ] {
        let server = Server::start(move |_| Response::json(body).total(1));
        let dir = tempfile::tempdir().unwrap();
        let mut config = quiet_config(dir.path());
        config.forge = Some(forge_config(&server.url()));
        let forge = collect(&config).await.forge;
        assert_eq!(forge.status, CollectorStatus::Error, "{body}");
        let reason = forge.reason.unwrap();
        assert!(
            reason.contains("answered something other than the documented JSON"),
            "{body}: {reason}"
        );
    }
}

#[tokio::test]
async fn a_slow_forge_times_out_without_holding_up_the_rest() {
    let server = Server::start(|_| Response::json("[]").delayed(Duration::from_secs(3)));
    let dir = tempfile::tempdir().unwrap();
    let mut config = quiet_config(dir.path());
    let mut forge = forge_config(&server.url());
    forge.timeout = Some(Duration::from_millis(600));
    config.forge = Some(forge);
    config.system.enabled = true;
    let started = Instant::now();
    let snapshot = collect(&config).await;
    let took = started.elapsed();
    assert!(took < Duration::from_millis(1500), "took {took:?}");
    assert_eq!(snapshot.forge.status, CollectorStatus::Error);
    let reason = snapshot.forge.reason.unwrap();
    assert!(reason.contains("timed out after 540ms"), "{reason}");
    assert_eq!(snapshot.system.status, CollectorStatus::Ok);
}

#[tokio::test]
async fn an_unreachable_forge_or_missing_token_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = quiet_config(dir.path());
    let url = closed_port_url();
    config.forge = Some(forge_config(&url));
    let forge = collect(&config).await.forge;
    assert_eq!(
        forge.status,
        CollectorStatus::Unavailable,
        "{:?}",
        forge.reason
    );
    assert!(
        forge
            .reason
            .unwrap()
            .starts_with(&format!("cannot reach {url}/api/v1/"))
    );

    let mut with_token = forge_config(&url);
    with_token.token_env = Some("RETORT_TEST_NO_SUCH_TOKEN_VARIABLE".to_owned());
    config.forge = Some(with_token);
    let forge = collect(&config).await.forge;
    assert_eq!(forge.status, CollectorStatus::Unavailable);
    assert_eq!(
        forge.reason.as_deref(),
        Some("no token: the environment variable RETORT_TEST_NO_SUCH_TOKEN_VARIABLE is not set")
    );

    let mut bad = forge_config(&url);
    bad.repo = "no-slash".to_owned();
    config.forge = Some(bad);
    let forge = collect(&config).await.forge;
    assert_eq!(forge.status, CollectorStatus::Error);
    assert!(forge.reason.unwrap().contains("\"owner/name\""));
}

#[tokio::test]
async fn unconfigured_forge_and_ci_are_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot = collect(&quiet_config(dir.path())).await;
    assert_eq!(snapshot.forge.status, CollectorStatus::Unavailable);
    assert_eq!(
        snapshot.forge.reason.as_deref(),
        Some("not configured: the formula has no [preflight.forge] table")
    );
    assert_eq!(snapshot.ci.status, CollectorStatus::Unavailable);
    assert!(
        !snapshot
            .health_summary()
            .iter()
            .any(|l| l.starts_with("Forge"))
    );
}
