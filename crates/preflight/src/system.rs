//! The system collector: memory, swap, load average, disk usage, uptime,
//! CPU count and the processes using the most resident memory.
//!
//! Memory, swap, load and uptime come from `sysinfo` (on Linux:
//! `/proc/meminfo`, `/proc/loadavg`, `/proc/uptime`); processes from one
//! read of `/proc/PID/stat` each (see [`top_processes`]);
//! disks from `statvfs(3)` through `rustix`, computed the way GNU coreutils
//! `df` does. All of it is blocking I/O (a `statvfs` on a hung network mount
//! can block indefinitely), so [`collect`] runs it on a dedicated, detached
//! OS thread: the async caller can time out and move on, and a stuck thread
//! never holds up the tokio runtime or its shutdown.

use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sysinfo::System;

use crate::config::SystemConfig;
use crate::snapshot::{CollectorStatus, impl_section, status_from};

/// Memory, swap, disks, load average, uptime, CPUs and the largest processes.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema, PartialEq)]
pub struct SystemSection {
    /// How the system collector fared.
    pub status: CollectorStatus,
    /// Human-readable explanation when `status` is not `Ok` (always serialised; `null` when absent).
    pub reason: Option<String>,
    /// How long the collector took, in milliseconds.
    pub duration_ms: u64,
    /// RAM figures.
    pub memory: Memory,
    /// Swap figures.
    pub swap: Swap,
    /// One entry per configured disk path that could be measured, in configuration order.
    pub disks: Vec<Disk>,
    /// Load averages.
    pub load: Load,
    /// Seconds since the machine booted (`/proc/uptime`); 0 when unknown.
    pub uptime_seconds: u64,
    /// CPUs this process may run on (what `nproc` prints; a cgroup CPU quota
    /// lowers it too). Compare load averages with it.
    pub cpus: u32,
    /// The processes with the most resident memory, largest first (at most
    /// `[preflight.system] top_processes`, default 10). Threads are not
    /// listed apart from their process.
    pub top_processes: Vec<Process>,
}

impl_section!(SystemSection);

/// RAM, in MiB (2^20 bytes), truncated.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
pub struct Memory {
    /// Memory available for starting new work without swapping: Linux's `MemAvailable`
    /// from `/proc/meminfo` (the "available" column of `free -m`), in MiB.
    pub available_mb: u64,
    /// Total usable RAM (`MemTotal`), in MiB.
    pub total_mb: u64,
}

/// Swap space, in MiB (2^20 bytes), truncated.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
pub struct Swap {
    /// Swap in use (`SwapTotal - SwapFree`), in MiB.
    pub used_mb: u64,
    /// Total swap (`SwapTotal`), in MiB; 0 when the machine has no swap.
    pub total_mb: u64,
}

/// Usage of the file system holding one configured path, as `df -m PATH` reports it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
pub struct Disk {
    /// The configured path, exactly as given (not necessarily a mount point).
    pub mount: String,
    /// Percentage of the space available to unprivileged users that is used, rounded
    /// up: df's `Use%` column (0–100; may exceed 100 when root's reserve is in use).
    pub used_percent: u32,
    /// Space used (`(f_blocks - f_bfree) * f_frsize`), in MiB.
    pub used_mb: u64,
    /// File-system size (`f_blocks * f_frsize`), in MiB.
    pub total_mb: u64,
}

/// System load averages: the first three fields of Linux's `/proc/loadavg`, the
/// number of runnable or uninterruptibly sleeping tasks averaged (exponentially
/// damped) over 1, 5 and 15 minutes. Not normalised by CPU count.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema, PartialEq)]
pub struct Load {
    /// 1-minute load average.
    pub one: f64,
    /// 5-minute load average.
    pub five: f64,
    /// 15-minute load average.
    pub fifteen: f64,
}

/// One process, as `ps -o pid,rss,etimes,args` shows it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
pub struct Process {
    /// Process id.
    pub pid: u32,
    /// The executable's name (`/proc/PID/comm`, at most 15 bytes on Linux).
    pub name: String,
    /// The full command line, arguments joined by spaces, capped at 200
    /// characters; the name when the command line is empty (kernel threads,
    /// zombies).
    pub command: String,
    /// Resident memory (RSS), in MiB.
    pub rss_mb: u64,
    /// Seconds since the process started.
    pub age_seconds: u64,
}

/// Longest command line kept for a process, in characters.
const MAX_COMMAND_CHARS: usize = 200;

/// Bytes in one MiB, the unit of every `*_mb` field.
const MIB: u64 = 1 << 20;

/// Whole MiB in `bytes`, truncated.
fn to_mb(bytes: u64) -> u64 {
    bytes / MIB
}

/// Collects the system section without blocking the async runtime. Never
/// fails: problems are reported through the section's `status` and `reason`.
pub(crate) async fn collect(config: SystemConfig) -> SystemSection {
    crate::off_thread("system", move || collect_blocking(&config))
        .await
        .unwrap_or_else(|reason| SystemSection {
            status: CollectorStatus::Error,
            reason: Some(reason),
            ..SystemSection::default()
        })
}

/// Collects everything synchronously. Each part fails on its own: the section is
/// `Error` with every failure listed in `reason` (joined by `; `), while the
/// parts that worked are still filled in. A disk path that cannot be measured is
/// left out of `disks`.
pub(crate) fn collect_blocking(config: &SystemConfig) -> SystemSection {
    let mut problems = Vec::new();

    let mut sys = match System::new() {
        Ok(sys) => Some(sys),
        Err(err) => {
            problems.push(format!("cannot query the system: {err}"));
            None
        }
    };

    let (memory, swap) = match sys.as_mut().map(read_memory) {
        Some(Ok(figures)) => figures,
        Some(Err(err)) => {
            problems.push(format!("memory: {err}"));
            (Memory::default(), Swap::default())
        }
        None => (Memory::default(), Swap::default()),
    };

    let load = match System::load_average() {
        Ok(avg) => Load {
            one: avg.one,
            five: avg.five,
            fifteen: avg.fifteen,
        },
        Err(err) => {
            problems.push(format!("load average: {err}"));
            Load::default()
        }
    };

    let mut disks = Vec::with_capacity(config.disks.len());
    for path in &config.disks {
        match measure_disk(path) {
            Ok(disk) => disks.push(disk),
            Err(err) => problems.push(format!("disk {}: {err}", path.display())),
        }
    }

    let uptime_seconds = System::uptime().unwrap_or_else(|err| {
        problems.push(format!("uptime: {err}"));
        0
    });
    let cpus = std::thread::available_parallelism()
        .map(|n| u32::try_from(n.get()).unwrap_or(u32::MAX))
        .unwrap_or_else(|err| {
            problems.push(format!("CPU count: {err}"));
            0
        });

    let top_processes = if config.top_processes > 0 {
        let uptime = precise_uptime().unwrap_or(uptime_seconds as f64);
        top_processes(config.top_processes, uptime)
    } else {
        Vec::new()
    };

    let (status, reason) = status_from(problems);
    SystemSection {
        status,
        reason,
        duration_ms: 0,
        memory,
        swap,
        disks,
        load,
        uptime_seconds,
        cpus,
        top_processes,
    }
}

/// The `n` processes with the largest resident memory.
///
/// Reads `/proc/PID/stat` once per process (the name, `rss` in pages and
/// `starttime` in clock ticks after boot, as proc(5) documents them), then
/// `/proc/PID/cmdline` of the `n` chosen ones only: one small read per
/// process, so a machine with a thousand processes costs a few
/// milliseconds. Processes that exit meanwhile are skipped.
fn top_processes(n: usize, uptime_seconds: f64) -> Vec<Process> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let page = u64::try_from(rustix::param::page_size()).unwrap_or(4096);
    let ticks = rustix::param::clock_ticks_per_second().max(1);
    let mut all: Vec<(u64, u32, String, u64)> = entries
        .filter_map(|entry| {
            let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let (name, rss_pages, start_ticks) = parse_stat(&stat)?;
            Some((rss_pages.saturating_mul(page), pid, name, start_ticks))
        })
        .collect();
    all.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    all.truncate(n);
    all.into_iter()
        .map(|(rss, pid, name, start_ticks)| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let args: Vec<String> = cmdline
                .split(|b| *b == 0)
                .filter(|arg| !arg.is_empty())
                .map(|arg| String::from_utf8_lossy(arg).into_owned())
                .collect();
            let command = if args.is_empty() {
                name.clone()
            } else {
                crate::files::cap_chars(&args.join(" "), MAX_COMMAND_CHARS)
            };
            let started = start_ticks as f64 / ticks as f64;
            Process {
                pid,
                name,
                command,
                rss_mb: to_mb(rss),
                age_seconds: (uptime_seconds - started).max(0.0) as u64,
            }
        })
        .collect()
}

/// The name, `rss` (field 24, pages) and `starttime` (field 22, clock
/// ticks after boot) of a `/proc/PID/stat` line. The name (field 2) is in
/// parentheses and may itself contain spaces and parentheses, so the other
/// fields are counted from the last `)`.
fn parse_stat(stat: &str) -> Option<(String, u64, u64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_owned();
    let rest: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
    // `rest[0]` is field 3 (state), so field N is `rest[N - 3]`.
    let start = rest.get(22 - 3)?.parse().ok()?;
    let rss = rest.get(24 - 3)?.parse().ok()?;
    Some((name, rss, start))
}

/// Seconds since boot with their fraction, from `/proc/uptime`.
fn precise_uptime() -> Option<f64> {
    std::fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Reads RAM and swap through sysinfo (Linux: `/proc/meminfo`; "available" is
/// `MemAvailable`, or sysinfo's estimate on kernels older than 3.14).
fn read_memory(sys: &mut System) -> Result<(Memory, Swap), String> {
    sys.refresh_memory();
    let total = sys.total_memory();
    if total == 0 {
        // sysinfo swallows read errors and leaves zeros; no real machine has 0 RAM.
        return Err("could not read memory information (total RAM reads as 0)".to_owned());
    }
    let memory = Memory {
        available_mb: to_mb(sys.available_memory()),
        total_mb: to_mb(total),
    };
    let swap = Swap {
        used_mb: to_mb(sys.used_swap()),
        total_mb: to_mb(sys.total_swap()),
    };
    Ok((memory, swap))
}

/// Measures the file system holding `path` with `statvfs`, as GNU coreutils `df`
/// does (see [`df_use_percent`]).
fn measure_disk(path: &Path) -> io::Result<Disk> {
    let vfs = rustix::fs::statvfs(path).map_err(io::Error::from)?;
    let frsize = vfs.f_frsize;
    let used_blocks = vfs.f_blocks.saturating_sub(vfs.f_bfree);
    Ok(Disk {
        mount: path.display().to_string(),
        used_percent: df_use_percent(used_blocks, vfs.f_bavail),
        used_mb: to_mb(used_blocks.saturating_mul(frsize)),
        total_mb: to_mb(vfs.f_blocks.saturating_mul(frsize)),
    })
}

/// df's `Use%`: `ceil(used * 100 / (used + available))`, where `used` is
/// `f_blocks - f_bfree` and `available` is `f_bavail` (the space unprivileged
/// users may still use), so blocks reserved for root count as neither. This is
/// the computation in GNU coreutils `src/df.c` (`get_dev`: `u100 / nonroot_total
/// + (u100 % nonroot_total != 0)`). Returns 0 when both are 0 (df prints `-`).
pub(crate) fn df_use_percent(used_blocks: u64, avail_blocks: u64) -> u32 {
    let used = u128::from(used_blocks);
    let nonroot_total = used + u128::from(avail_blocks);
    if nonroot_total == 0 {
        return 0;
    }
    let u100 = used * 100;
    let pct = u100.div_ceil(nonroot_total);
    u32::try_from(pct).unwrap_or(u32::MAX)
}

/// The machine's host name (`gethostname(2)` via sysinfo), or `""` when unknown.
pub(crate) fn hostname() -> String {
    System::host_name().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn df_percent_rounds_up_like_df() {
        // 11787 used, 81267 available: 12.67% -> df prints 13%.
        assert_eq!(df_use_percent(11787, 81267), 13);
        assert_eq!(df_use_percent(50, 50), 50);
        assert_eq!(df_use_percent(1, 1_000_000), 1);
        assert_eq!(df_use_percent(0, 100), 0);
        assert_eq!(df_use_percent(0, 0), 0);
        assert_eq!(df_use_percent(100, 0), 100);
        assert_eq!(df_use_percent(u64::MAX, u64::MAX), 50);
    }

    #[test]
    fn reads_proc_stat_lines() {
        let line = "4242 (tmux: server (x)) S 1 4242 4242 0 -1 4194560 1 0 0 0 2 3 0 0 20 0 1 0 987654 12345678 2560 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        assert_eq!(
            parse_stat(line),
            Some(("tmux: server (x)".to_owned(), 2560, 987_654))
        );
        assert_eq!(parse_stat("1 (init) S"), None);
    }

    #[test]
    fn mb_truncates_mebibytes() {
        assert_eq!(to_mb(MIB - 1), 0);
        assert_eq!(to_mb(MIB), 1);
        assert_eq!(to_mb(3 * MIB + MIB / 2), 3);
    }
}
