//! The CI collector against a local HTTP server answering in the documented
//! shape of Woodpecker's `GET /api/repos/{repo_id}/pipelines` (2.x field
//! names, and 3.x's `*_at` names), with paging, stuck pipelines, error
//! statuses, slow answers and malformed bodies.

mod support;

use std::time::Duration;

use chrono::Utc;
use retort_preflight::{CiConfig, CollectorStatus, collect};
use support::quiet_config;
use support::server::{Response, Server};

/// A `Pipeline` object as Woodpecker 2.x serves it; times are unix seconds,
/// 0 for "not yet". `ago` is how long ago it was created, `ran` how long
/// after creation it started (None: not started), `took` how long it ran
/// (None: not finished).
fn pipeline(
    number: u64,
    status: &str,
    branch: &str,
    ago: i64,
    ran: Option<i64>,
    took: Option<i64>,
) -> serde_json::Value {
    let now = Utc::now().timestamp();
    let created = now - ago;
    let started = ran.map_or(0, |r| created + r);
    let finished = match (ran, took) {
        (Some(_), Some(t)) => started + t,
        _ => 0,
    };
    serde_json::json!({
        "id": number + 900, "number": number, "author": "dev-agent", "parent": 0,
        "event": "push", "status": status, "errors": null,
        "created": created, "updated": created, "started": started, "finished": finished,
        "deploy_to": "", "deploy_task": "", "commit": "3333333333333333333333333333333333333333",
        "branch": branch, "ref": format!("refs/heads/{branch}"), "refspec": "",
        "title": "", "message": "work", "timestamp": created, "sender": "dev-agent",
        "author_avatar": "", "author_email": "dev@example.org",
        "forge_url": format!("http://forge/factory/app/commit/{number}"),
        "reviewed_by": "", "reviewed": 0
    })
}

fn ci_config(url: &str) -> CiConfig {
    CiConfig {
        timeout: None,
        url: url.to_owned(),
        repo_id: 3,
        token_env: None,
        window: Duration::from_secs(24 * 3600),
        running_over: Duration::from_secs(20 * 60),
        pending_over: Duration::from_secs(30 * 60),
    }
}

#[tokio::test]
async fn recent_pipelines_and_stuck_counts_across_pages() {
    // Page 1: 50 pipelines, newest first; page 2: 3 more in the window and one older.
    let mut page1 = vec![
        pipeline(200, "running", "main", 25 * 60, Some(10), None), // running 25 min: stuck
        pipeline(199, "running", "fix-12", 6 * 60, Some(60), None), // running 5 min
        pipeline(198, "pending", "fix-9", 40 * 60, None, None),    // pending 40 min: stuck
        pipeline(197, "pending", "main", 2 * 60, None, None),      // pending 2 min
        pipeline(196, "failure", "fix-12", 3600, Some(5), Some(190)),
    ];
    for n in 0..45 {
        page1.push(pipeline(
            195 - n,
            "success",
            "main",
            3600 + 60 * i64::try_from(n).unwrap(),
            Some(5),
            Some(120),
        ));
    }
    let page2 = vec![
        pipeline(150, "success", "main", 20 * 3600, Some(5), Some(100)),
        pipeline(149, "killed", "main", 21 * 3600, Some(5), Some(10)),
        pipeline(148, "error", "main", 23 * 3600, None, None),
        pipeline(147, "success", "main", 25 * 3600, Some(5), Some(100)), // outside the window
    ];
    let pages = [
        serde_json::Value::Array(page1).to_string(),
        serde_json::Value::Array(page2).to_string(),
    ];
    let server = Server::start(move |request| {
        if request.path() != "/api/repos/3/pipelines" {
            return Response::status(404, "{}");
        }
        match request.query("page").as_deref() {
            Some("1") => Response::json(pages[0].clone()),
            Some("2") => Response::json(pages[1].clone()),
            _ => Response::json("[]"),
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let mut config = quiet_config(dir.path());
    config.ci = Some(ci_config(&server.url()));
    let snapshot = collect(&config).await;
    let ci = &snapshot.ci;
    assert_eq!(ci.status, CollectorStatus::Ok, "{:?}", ci.reason);
    assert_eq!(ci.pipelines.len(), 53);
    assert_eq!(ci.running_too_long, 1);
    assert_eq!(ci.pending_too_long, 1);
    assert_eq!(ci.status_counts["success"], 46);
    assert_eq!(ci.status_counts["running"], 2);
    assert_eq!(ci.status_counts["pending"], 2);
    assert_eq!(ci.status_counts["killed"], 1);
    assert!(!ci.pipelines.iter().any(|p| p.number == 147));

    let stuck: Vec<u64> = ci
        .pipelines
        .iter()
        .filter(|p| p.stuck)
        .map(|p| p.number)
        .collect();
    assert_eq!(stuck, [200, 198]);
    let running = &ci.pipelines[0];
    assert_eq!((running.number, running.branch.as_str()), (200, "main"));
    assert!(running.finished.is_none());
    assert!(
        (1480..1520).contains(&running.duration_seconds.unwrap()),
        "{running:?}"
    );
    let failed = ci.pipelines.iter().find(|p| p.number == 196).unwrap();
    assert_eq!(failed.duration_seconds, Some(190));
    assert_eq!(failed.pending_seconds, None);
    let pending = ci.pipelines.iter().find(|p| p.number == 198).unwrap();
    assert!(pending.started.is_none() && pending.duration_seconds.is_none());
    assert!(
        (2395..2430).contains(&pending.pending_seconds.unwrap()),
        "{pending:?}"
    );

    let pages: Vec<String> = server
        .requests()
        .iter()
        .filter_map(|r| r.query("page"))
        .collect();
    assert_eq!(pages, ["1", "2"]);

    let markdown = snapshot.to_markdown();
    assert!(
        markdown.contains("Woodpecker repository 3 at "),
        "{markdown}"
    );
    assert!(
        markdown.contains(
            ": 53 pipelines (1 error, 1 failure, 1 killed, 2 pending, 2 running, 46 success)."
        ),
        "{markdown}"
    );
    assert!(
        markdown.contains("**1 running over 20m**, **1 pending over 30m**."),
        "{markdown}"
    );
    assert!(
        markdown.contains("- #200 running, push on `main`, 24m so far — **stuck**\n")
            || markdown.contains("- #200 running, push on `main`, 25m so far — **stuck**\n"),
        "{markdown}"
    );
    assert!(
        markdown.contains("- #198 pending, push on `fix-9`, waiting 40m — **stuck**"),
        "{markdown}"
    );
    assert!(
        markdown.contains("- #196 failure, push on `fix-12`, took 3m"),
        "{markdown}"
    );
    assert!(markdown.contains("- … and 33 more"), "{markdown}");
    assert!(
        snapshot.health_summary().contains(
            &"CI: 53 pipelines in 24h (1 running over 20m, 1 pending over 30m)".to_owned()
        ),
        "{:?}",
        snapshot.health_summary()
    );
}

#[tokio::test]
async fn woodpecker_3_field_names_are_read_too() {
    let now = Utc::now().timestamp();
    let body = serde_json::json!([{
        "id": 5, "number": 42, "event": "pull_request", "status": "success", "branch": "fix-1",
        "created_at": now - 600, "updated_at": now - 300, "enqueued_at": now - 600,
        "started_at": now - 590, "finished_at": now - 290, "commit": "abc", "ref": "refs/pull/1/head"
    }])
    .to_string();
    let server = Server::start(move |_| Response::json(body.clone()));
    let dir = tempfile::tempdir().unwrap();
    let mut config = quiet_config(dir.path());
    config.ci = Some(ci_config(&server.url()));
    let ci = collect(&config).await.ci;
    assert_eq!(ci.status, CollectorStatus::Ok, "{:?}", ci.reason);
    assert_eq!(ci.pipelines.len(), 1);
    assert_eq!(ci.pipelines[0].duration_seconds, Some(300));
    assert_eq!(ci.pipelines[0].event, "pull_request");
}

#[tokio::test]
async fn failures_are_classified() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(Response, CollectorStatus, &str); 4] = [
        (
            Response::status(404, r#"{"error":"not found"}"#),
            CollectorStatus::Error,
            "answered 404 Not Found",
        ),
        (
            Response::status(401, "Unauthorized"),
            CollectorStatus::Unavailable,
            "answered 401 Unauthorized",
        ),
        (
            Response::json(r#"{"pipelines": []}"#),
            CollectorStatus::Error,
            "something other than the documented JSON",
        ),
        (
            Response::json("[]").delayed(Duration::from_secs(3)),
            CollectorStatus::Error,
            "timed out after 450ms",
        ),
    ];
    for (response, want, words) in cases {
        let server = Server::start(move |_| response.clone());
        let mut config = quiet_config(dir.path());
        let mut ci = ci_config(&server.url());
        ci.timeout = Some(Duration::from_millis(500));
        config.ci = Some(ci);
        let ci = collect(&config).await.ci;
        assert_eq!(ci.status, want, "{words}: {:?}", ci.reason);
        let reason = ci.reason.unwrap();
        assert!(reason.contains(words), "{reason}");
    }
}
