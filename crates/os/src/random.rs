//! Random bits from the operating system (`getrandom(2)` on Linux, through
//! the `getrandom` crate), for names that must not collide: run ids.

use std::time::{SystemTime, UNIX_EPOCH};

/// 32 random bits from the operating system's generator.
///
/// Should the generator fail (it does not on Linux 3.17 or later, where
/// `getrandom(2)` blocks only until the pool is first seeded at boot), the
/// bits come from the clock's nanoseconds mixed with the process id
/// instead: unique enough between the processes of one machine, though
/// not unpredictable.
pub fn random_u32() -> u32 {
    getrandom::u32().unwrap_or_else(|_| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.subsec_nanos());
        nanos ^ std::process::id().rotate_left(16)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_differ() {
        // 32 random bits: eight equal draws in a row happen once in 2^224.
        let first = random_u32();
        assert!((0..8).any(|_| random_u32() != first));
    }
}
