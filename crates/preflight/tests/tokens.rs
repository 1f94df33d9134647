//! API tokens: sent where the APIs document them, printed nowhere. Alone in
//! its own test binary because it sets environment variables.

mod support;

use retort_preflight::{CiConfig, CollectorStatus, ForgeConfig, collect};
use support::quiet_config;
use support::server::{Response, Server};

const FORGE_TOKEN: &str = "forge-s3cret-7f3a9c";
const CI_TOKEN: &str = "ci-s3cret-b41d02";

#[test]
fn tokens_are_sent_and_never_printed() {
    // SAFETY: this is the only test in this binary, the harness's main thread just
    // waits for it, and the runtime (the only other threads) is built afterwards, so
    // nothing reads the environment concurrently.
    unsafe {
        std::env::set_var("RETORT_TEST_FORGE_TOKEN", FORGE_TOKEN);
        std::env::set_var("RETORT_TEST_CI_TOKEN", CI_TOKEN);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    // A server that accepts only the right tokens, in each API's own scheme.
    let server = Server::start(|request| {
        let auth = request.header("authorization").unwrap_or("");
        let ok = if request.path().starts_with("/api/v1/") {
            auth == format!("token {FORGE_TOKEN}")
        } else {
            auth == format!("Bearer {CI_TOKEN}")
        };
        if ok {
            Response::json("[]").total(0)
        } else {
            Response::status(401, r#"{"message":"token is required"}"#)
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let mut config = quiet_config(dir.path());
    config.forge = Some(ForgeConfig {
        timeout: None,
        url: server.url(),
        repo: "factory/app".into(),
        token_env: Some("RETORT_TEST_FORGE_TOKEN".into()),
        labels: vec!["blocked".into()],
        blocked_label: "blocked".into(),
    });
    config.ci = Some(CiConfig {
        timeout: None,
        url: server.url(),
        repo_id: 3,
        token_env: Some("RETORT_TEST_CI_TOKEN".into()),
        window: std::time::Duration::from_secs(86_400),
        running_over: std::time::Duration::from_secs(1200),
        pending_over: std::time::Duration::from_secs(1800),
    });
    let snapshot = runtime.block_on(collect(&config));
    assert_eq!(
        snapshot.forge.status,
        CollectorStatus::Ok,
        "{:?}",
        snapshot.forge.reason
    );
    assert_eq!(
        snapshot.ci.status,
        CollectorStatus::Ok,
        "{:?}",
        snapshot.ci.reason
    );
    assert_eq!(server.requests().len(), 3);

    // Swapped tokens: both rejected, and the reasons name the variable, not the token.
    config.forge.as_mut().unwrap().token_env = Some("RETORT_TEST_CI_TOKEN".into());
    config.ci.as_mut().unwrap().token_env = Some("RETORT_TEST_FORGE_TOKEN".into());
    let rejected = runtime.block_on(collect(&config));
    assert_eq!(rejected.forge.status, CollectorStatus::Unavailable);
    assert!(
        rejected
            .forge
            .reason
            .as_deref()
            .unwrap()
            .contains("answered 401 Unauthorized; check the token in RETORT_TEST_CI_TOKEN"),
        "{:?}",
        rejected.forge.reason
    );
    assert_eq!(rejected.ci.status, CollectorStatus::Unavailable);

    for snapshot in [&snapshot, &rejected] {
        let everything = format!(
            "{}\n{}\n{:?}\n{:?}",
            serde_json::to_string(snapshot).unwrap(),
            snapshot.to_markdown(),
            snapshot.health_summary(),
            snapshot
        );
        assert!(!everything.contains(FORGE_TOKEN), "the forge token leaked");
        assert!(!everything.contains(CI_TOKEN), "the CI token leaked");
    }
    assert!(!format!("{config:?}").contains(FORGE_TOKEN));
}
