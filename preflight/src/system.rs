//! The system collector: memory, swap, load average and disk usage.
//!
//! Memory, swap and load come from `sysinfo` (on Linux: `/proc/meminfo` and
//! `/proc/loadavg`); disks from `statvfs(3)` through `rustix`, computed the way
//! GNU coreutils `df` does. All of it is blocking I/O (a `statvfs` on a hung
//! network mount can block indefinitely), so [`collect`] runs it on a dedicated,
//! detached OS thread: the async caller can time out and move on, and a stuck
//! thread never holds up the tokio runtime or its shutdown.

use std::io;
use std::path::{Path, PathBuf};

use sysinfo::System;
use tokio::sync::oneshot;

use crate::snapshot::{CollectorStatus, Disk, Load, Memory, Swap, SystemSection};

/// Bytes in one MiB, the unit of every `*_mb` field.
const MIB: u64 = 1 << 20;

/// Whole MiB in `bytes`, truncated.
fn to_mb(bytes: u64) -> u64 {
    bytes / MIB
}

/// Collects the system section for the given disk paths without blocking the
/// async runtime. Never fails: problems are reported through the section's
/// `status` and `reason`.
pub(crate) async fn collect(disks: Vec<PathBuf>) -> SystemSection {
    let (tx, rx) = oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("retort-preflight-system".to_owned())
        .spawn(move || {
            // The receiver may be gone if the caller timed out; nothing to do then.
            let _ = tx.send(collect_blocking(&disks));
        });
    if let Err(err) = spawned {
        return failed_section(format!(
            "could not start the system collector thread: {err}"
        ));
    }
    match rx.await {
        Ok(section) => section,
        Err(_) => failed_section("the system collector thread ended without a result".to_owned()),
    }
}

/// A section with nothing collected, status `Error` and the given reason.
pub(crate) fn failed_section(reason: String) -> SystemSection {
    SystemSection {
        status: CollectorStatus::Error,
        reason: Some(reason),
        ..SystemSection::default()
    }
}

/// Collects everything synchronously. Each part fails on its own: the section is
/// `Error` with every failure listed in `reason` (joined by `; `), while the
/// parts that worked are still filled in. A disk path that cannot be measured is
/// left out of `disks`.
pub(crate) fn collect_blocking(disk_paths: &[PathBuf]) -> SystemSection {
    let mut problems = Vec::new();

    let (memory, swap) = match read_memory() {
        Ok(figures) => figures,
        Err(err) => {
            problems.push(format!("memory: {err}"));
            (Memory::default(), Swap::default())
        }
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

    let mut disks = Vec::with_capacity(disk_paths.len());
    for path in disk_paths {
        match measure_disk(path) {
            Ok(disk) => disks.push(disk),
            Err(err) => problems.push(format!("disk {}: {err}", path.display())),
        }
    }

    let (status, reason) = if problems.is_empty() {
        (CollectorStatus::Ok, None)
    } else {
        (CollectorStatus::Error, Some(problems.join("; ")))
    };
    SystemSection {
        status,
        reason,
        memory,
        swap,
        disks,
        load,
    }
}

/// Reads RAM and swap through sysinfo (Linux: `/proc/meminfo`; "available" is
/// `MemAvailable`, or sysinfo's estimate on kernels older than 3.14).
fn read_memory() -> Result<(Memory, Swap), String> {
    let mut sys = System::new().map_err(|err| format!("cannot query the system: {err}"))?;
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
    fn mb_truncates_mebibytes() {
        assert_eq!(to_mb(MIB - 1), 0);
        assert_eq!(to_mb(MIB), 1);
        assert_eq!(to_mb(3 * MIB + MIB / 2), 3);
    }
}
