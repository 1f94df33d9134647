//! tmux missing from PATH. Alone in its own test binary because it changes the
//! process environment.

use retort_preflight::{CollectorStatus, Config, collect};

#[test]
fn missing_tmux_binary_is_unavailable() {
    let empty = tempfile::tempdir().unwrap();
    // SAFETY: this is the only test in this binary, the harness's main thread just
    // waits for it, and the runtime (the only other threads) is built afterwards, so
    // nothing reads the environment concurrently.
    unsafe { std::env::set_var("PATH", empty.path()) };

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let snapshot = runtime.block_on(collect(&Config::default()));
    assert_eq!(snapshot.tmux.status, CollectorStatus::Unavailable);
    assert_eq!(
        snapshot.tmux.reason.as_deref(),
        Some("tmux is not installed (not found on PATH)")
    );
    assert!(snapshot.tmux.sessions.is_empty());
    assert!(
        snapshot
            .health_summary()
            .contains(&"tmux: unavailable: tmux is not installed (not found on PATH)".to_owned())
    );
}
