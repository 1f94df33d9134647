//! Durations as people read them, in one style for every stage: the
//! journal's run and step times and the preflight summary's ages.
//!
//! The style is compact, at most two units, the largest first, cut (never
//! rounded up) to the unit shown: `850ms`, `45s`, `12m`, `3h 05m`,
//! `2d 4h`. Minutes after hours are two digits, so that a column of ages
//! lines up. Seconds are shown only under a minute: a supervisor that runs
//! every 20 minutes reads ages and run times at a glance, and the exact
//! figures are kept elsewhere (`run.json`, the run history, in ms).

use std::time::Duration;

/// `duration` in the compact style: `0s`; under a second in milliseconds
/// (`850ms`); under a minute in seconds (`45s`); under an hour in minutes
/// (`12m`); under a day in hours and minutes (`3h 05m`); else in days and
/// hours (`2d 4h`). Each figure is cut to its unit: 59 min 59 s is `59m`.
pub fn compact(duration: Duration) -> String {
    let secs = duration.as_secs();
    if secs == 0 {
        return match duration.as_millis() {
            0 => "0s".to_string(),
            ms => format!("{ms}ms"),
        };
    }
    let (days, hours, mins) = (secs / 86_400, secs / 3_600 % 24, secs / 60 % 60);
    if days > 0 {
        format!("{days}d {hours}h")
    } else if hours > 0 {
        format!("{hours}h {mins:02}m")
    } else if mins > 0 {
        format!("{mins}m")
    } else {
        format!("{secs}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_duration_gets_its_two_largest_units_cut_not_rounded() {
        let secs = Duration::from_secs;
        assert_eq!(compact(Duration::ZERO), "0s");
        assert_eq!(compact(Duration::from_micros(999)), "0s");
        assert_eq!(compact(Duration::from_millis(850)), "850ms");
        assert_eq!(compact(secs(1)), "1s");
        assert_eq!(compact(Duration::from_millis(45_999)), "45s");
        assert_eq!(compact(secs(3 * 60 + 12)), "3m");
        assert_eq!(compact(secs(59 * 60 + 59)), "59m");
        assert_eq!(compact(secs(3 * 3600 + 5 * 60)), "3h 05m");
        assert_eq!(compact(secs(2 * 3600)), "2h 00m");
        assert_eq!(compact(secs(2 * 86_400 + 4 * 3600 + 59)), "2d 4h");
        assert_eq!(compact(secs(3 * 86_400)), "3d 0h");
        assert_eq!(compact(Duration::MAX), "213503982334601d 7h");
    }
}
