//! The system collector against the kernel's own reports and the real `df`.

use std::path::PathBuf;
use std::process::Command;

use retort_preflight::{CollectorStatus, Config, collect};

/// A `/proc/meminfo` field, in kB (KiB).
fn meminfo_kib(field: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap();
    let line = text
        .lines()
        .find(|line| line.starts_with(&format!("{field}:")))
        .unwrap_or_else(|| panic!("{field} missing from /proc/meminfo"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn assert_close(what: &str, got: u64, want: u64, tolerance: u64) {
    assert!(
        got.abs_diff(want) <= tolerance,
        "{what}: got {got}, expected {want} ± {tolerance}"
    );
}

#[tokio::test]
async fn memory_and_swap_match_proc_meminfo() {
    let before = meminfo_kib("MemAvailable");
    let snapshot = collect(&Config::default()).await;
    let after = meminfo_kib("MemAvailable");
    let system = &snapshot.system;
    assert_eq!(system.status, CollectorStatus::Ok, "{:?}", system.reason);
    assert_eq!(system.reason, None);

    assert_close(
        "memory.total_mb",
        system.memory.total_mb,
        meminfo_kib("MemTotal") / 1024,
        1,
    );
    let available = (before + after) / 2 / 1024;
    assert_close(
        "memory.available_mb",
        system.memory.available_mb,
        available,
        available / 10,
    );
    assert!(system.memory.available_mb <= system.memory.total_mb);

    let swap_total = meminfo_kib("SwapTotal");
    assert_close("swap.total_mb", system.swap.total_mb, swap_total / 1024, 1);
    let swap_used = (swap_total - meminfo_kib("SwapFree")) / 1024;
    assert_close(
        "swap.used_mb",
        system.swap.used_mb,
        swap_used,
        1 + swap_used / 10,
    );
}

/// `df -Pm PATH`'s data row: (total MB, used MB, Use%).
fn df(path: &str) -> (u64, u64, u32) {
    let output = Command::new("df").args(["-Pm", path]).output().unwrap();
    assert!(output.status.success(), "df failed: {output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    let row = text.lines().nth(1).expect("df printed no data row");
    // Read from the right: `... total used avail capacity% mount`.
    let fields: Vec<&str> = row.split_whitespace().rev().collect();
    assert_eq!(fields[0], path, "unexpected df row {row:?}");
    let percent = fields[1].trim_end_matches('%').parse().unwrap();
    (
        fields[4].parse().unwrap(),
        fields[3].parse().unwrap(),
        percent,
    )
}

#[tokio::test]
async fn root_disk_matches_df() {
    let snapshot = collect(&Config::default()).await;
    let (df_total, df_used, df_percent) = df("/");
    let system = &snapshot.system;
    assert_eq!(system.status, CollectorStatus::Ok, "{:?}", system.reason);
    assert_eq!(system.disks.len(), 1);
    let disk = &system.disks[0];
    assert_eq!(disk.mount, "/");
    // df rounds sizes up, we truncate: at most 1 apart.
    assert_close("disk total_mb", disk.total_mb, df_total, 1);
    assert_close(
        "disk used_percent",
        u64::from(disk.used_percent),
        u64::from(df_percent),
        1,
    );
    // Usage can move between the two measurements; allow 1% of the disk.
    assert_close("disk used_mb", disk.used_mb, df_used, 1 + df_total / 100);
    assert!(disk.used_mb <= disk.total_mb);
}

#[tokio::test]
async fn load_matches_proc_loadavg() {
    let snapshot = collect(&Config::default()).await;
    let text = std::fs::read_to_string("/proc/loadavg").unwrap();
    let proc: Vec<f64> = text
        .split_whitespace()
        .take(3)
        .map(|field| field.parse().unwrap())
        .collect();
    let load = &snapshot.system.load;
    for (what, got, want) in [
        ("one", load.one, proc[0]),
        ("five", load.five, proc[1]),
        ("fifteen", load.fifteen, proc[2]),
    ] {
        assert!(
            (got - want).abs() <= 0.5,
            "load.{what}: got {got}, /proc/loadavg says {want}"
        );
    }
}

#[tokio::test]
async fn missing_disk_path_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir");
    let mut config = Config::default();
    config.system.disks = vec![PathBuf::from("/"), missing.clone()];
    let snapshot = collect(&config).await;
    let system = &snapshot.system;
    assert_eq!(system.status, CollectorStatus::Error);
    let reason = system.reason.as_deref().unwrap();
    assert!(
        reason.contains(&missing.display().to_string()),
        "reason does not name the path: {reason}"
    );
    assert!(
        reason.contains("No such file or directory"),
        "reason lacks the OS error: {reason}"
    );
    // The rest is still collected; the failed disk is left out.
    assert_eq!(system.disks.len(), 1);
    assert_eq!(system.disks[0].mount, "/");
    assert!(system.memory.total_mb > 0);

    // The journal gets one line saying so.
    let summary = snapshot.health_summary();
    assert!(
        summary
            .iter()
            .any(|line| line.starts_with("System: error: ") && line.contains("no-such-dir")),
        "{summary:?}"
    );
}

#[tokio::test]
async fn hostname_matches_the_kernel() {
    let snapshot = collect(&Config::default()).await;
    let kernel = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(snapshot.hostname, kernel.trim());
    let age = chrono::Utc::now() - snapshot.collected_at;
    assert!(
        age >= chrono::TimeDelta::zero() && age < chrono::TimeDelta::seconds(30),
        "collected_at {} is not just now",
        snapshot.collected_at
    );
}

#[tokio::test]
async fn uptime_cpus_and_the_largest_processes() {
    // Make this test process the largest one: 400 MiB, every page touched.
    let ballast = vec![1u8; 400 << 20];
    let rss_kib = |pid: u32| -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    let mut config = Config::default();
    config.system.top_processes = 3;
    let snapshot = collect(&config).await;
    let system = &snapshot.system;
    assert_eq!(system.status, CollectorStatus::Ok, "{:?}", system.reason);

    let uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_close("uptime_seconds", system.uptime_seconds, uptime as u64, 5);
    let nproc = Command::new("nproc").output().unwrap();
    let nproc: u32 = String::from_utf8_lossy(&nproc.stdout)
        .trim()
        .parse()
        .unwrap();
    assert_eq!(system.cpus, nproc);

    assert_eq!(system.top_processes.len(), 3);
    let rss: Vec<u64> = system.top_processes.iter().map(|p| p.rss_mb).collect();
    assert!(
        rss.windows(2).all(|w| w[0] >= w[1]),
        "not largest first: {rss:?}"
    );
    let me = system
        .top_processes
        .iter()
        .find(|p| p.pid == std::process::id())
        .unwrap_or_else(|| panic!("this 400 MB process is missing: {:?}", system.top_processes));
    assert_close("rss_mb", me.rss_mb, rss_kib(me.pid) / 1024, 20);
    assert!(me.rss_mb >= 400, "{me:?}");
    assert!(me.age_seconds < 600, "{me:?}");
    // The test binary: target/debug/deps/system-HASH.
    assert!(me.command.contains("/system-"), "{me:?}");
    assert!(!me.name.is_empty());
    let markdown = snapshot.to_markdown();
    assert!(
        markdown.contains("Largest processes by resident memory:"),
        "{markdown}"
    );
    assert!(
        markdown.contains(&format!("(pid {}, up ", me.pid)),
        "{markdown}"
    );
    assert!(markdown.contains(&format!("on {nproc} CPU")), "{markdown}");
    drop(ballast);
}
