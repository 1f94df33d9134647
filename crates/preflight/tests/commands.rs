//! Formula-declared commands: run without a shell, output captured and
//! capped, exit status and signal recorded, timeouts enforced on the whole
//! process group; and every collector concurrent.

mod support;

use std::time::{Duration, Instant};

use retort_preflight::{CollectorStatus, CommandConfig, collect};
use support::quiet_config;

fn command(name: &str, run: &[&str]) -> CommandConfig {
    CommandConfig {
        name: name.to_owned(),
        run: run.iter().map(|s| (*s).to_owned()).collect(),
        timeout: None,
        max_output_bytes: 16 * 1024,
    }
}

#[tokio::test]
async fn commands_run_without_a_shell_and_record_what_happened() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("marker.txt"), "in the working directory\n").unwrap();
    let mut config = quiet_config(dir.path());
    let mut big = command("big", &["head", "-c", "100000", "/dev/zero"]);
    big.max_output_bytes = 1000;
    config.commands = vec![
        command("echo", &["echo", "$HOME", "*", "a;b"]),
        command("cwd", &["cat", "marker.txt"]),
        command("fails", &["sh", "-c", "echo oops >&2; exit 4"]),
        big,
        command("missing", &["retort-no-such-program"]),
        command("empty", &[]),
        command("echo", &["true"]),
    ];
    let snapshot = collect(&config).await;
    let section = &snapshot.commands;
    assert_eq!(section.status, CollectorStatus::Error);
    let names: Vec<&str> = section.results.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        ["echo", "cwd", "fails", "big", "missing", "empty", "echo"]
    );
    let [echo, cwd, fails, big, missing, empty, duplicate] = &section.results[..] else {
        panic!()
    };
    // No shell: `$HOME`, `*` and `;` reach the program as they are.
    assert_eq!(echo.stdout, "$HOME * a;b\n");
    assert_eq!(
        (echo.status, echo.exit_code, echo.signal),
        (CollectorStatus::Ok, Some(0), None)
    );
    assert_eq!(cwd.stdout, "in the working directory\n");
    assert_eq!(fails.status, CollectorStatus::Ok);
    assert_eq!(fails.exit_code, Some(4));
    assert_eq!(fails.stderr, "oops\n");
    assert_eq!(big.stdout.len(), 1000);
    assert_eq!(big.stdout_bytes, 100_000);
    assert!(big.stdout_truncated);
    assert_eq!(missing.status, CollectorStatus::Error);
    assert!(
        missing
            .reason
            .as_deref()
            .unwrap()
            .starts_with("cannot start `retort-no-such-program`"),
        "{:?}",
        missing.reason
    );
    assert_eq!(empty.status, CollectorStatus::Error);
    assert_eq!(duplicate.status, CollectorStatus::Error);
    assert!(
        duplicate
            .reason
            .as_deref()
            .unwrap()
            .contains("already named `echo`")
    );

    let markdown = snapshot.to_markdown();
    assert!(
        markdown.contains("**echo** (`echo $HOME * a;b`): exit status 0, "),
        "{markdown}"
    );
    assert!(
        markdown.contains("**fails** (`sh -c echo oops >&2; exit 4`): **exit status 4**"),
        "{markdown}"
    );
    assert!(
        markdown.contains("Standard error:\n\n```text\noops\n```"),
        "{markdown}"
    );
    assert!(
        markdown.contains("output (first 1000 bytes of 97.7 KiB):"),
        "{markdown}"
    );
}

#[tokio::test]
async fn a_command_past_its_timeout_is_killed_with_its_children() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("child.pid");
    let mut config = quiet_config(dir.path());
    // The shell starts a grandchild that would keep stdout open for a minute.
    let mut slow = command(
        "slow",
        &[
            "sh",
            "-c",
            "sleep 60 & echo $! > child.pid; echo started; wait",
        ],
    );
    slow.timeout = Some(Duration::from_millis(500));
    config.commands = vec![slow, command("quick", &["echo", "done"])];
    let started = Instant::now();
    let snapshot = collect(&config).await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "took {took:?}");
    let slow = &snapshot.commands.results[0];
    assert_eq!(slow.status, CollectorStatus::Error);
    assert_eq!(
        slow.reason.as_deref(),
        Some("timed out after 500ms and was killed")
    );
    assert_eq!(slow.signal, Some(9));
    assert_eq!(snapshot.commands.results[1].stdout, "done\n");

    let grandchild: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(3);
    while std::path::Path::new(&format!("/proc/{grandchild}")).exists()
        && !std::fs::read_to_string(format!("/proc/{grandchild}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
    {
        assert!(
            Instant::now() < deadline,
            "grandchild {grandchild} survived the timeout"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn collectors_run_concurrently() {
    // Three commands of 600 ms each, next to every local collector: the whole
    // preflight takes about as long as the slowest, not the sum.
    let dir = tempfile::tempdir().unwrap();
    let mut config = retort_preflight::Config {
        cwd: Some(dir.path().to_path_buf()),
        ..retort_preflight::Config::default()
    };
    // `docker stats` samples for 2 s where a daemon runs; not what this is about.
    config.docker.stats = false;
    config.commands = (0..3)
        .map(|i| command(&format!("sleep{i}"), &["sleep", "0.6"]))
        .collect();
    let started = Instant::now();
    let snapshot = collect(&config).await;
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(600), "took {took:?}");
    assert!(
        took < Duration::from_millis(1500),
        "took {took:?}: not concurrent"
    );
    assert!(snapshot.duration_ms >= 600 && snapshot.duration_ms < 1500);
    for result in &snapshot.commands.results {
        assert_eq!(result.exit_code, Some(0), "{result:?}");
        assert!(result.duration_ms >= 600, "{result:?}");
    }
    assert_eq!(snapshot.system.status, CollectorStatus::Ok);
    assert!(
        snapshot.system.duration_ms < 600,
        "{}",
        snapshot.system.duration_ms
    );
}
